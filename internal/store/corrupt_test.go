package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logjail/logjail/internal/clock"
)

// fillDB makes a real database with n bans at path and closes it (the WAL
// checkpointed into the file).
func fillDB(t *testing.T, path string, n int) {
	t.Helper()
	s := openAt(t, path, Options{})
	for i := range n {
		s.PutBanAsync(Ban{Jail: "sshd", Target: pfx(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)), Start: t0,
			Lines: []string{strings.Repeat("Failed password for root from somewhere port 22 ssh2 ", 3)}}, nil)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestCorruptMovedAside(t *testing.T) {
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rand.IntN(256))
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		reason  string // in the Warn line
	}{
		{"garbage", func(t *testing.T, path string) {
			os.WriteFile(path, random, 0o600)
		}, "not an SQLite database"},
		{"short garbage", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("hello"), 0o600)
		}, "not an SQLite database"},
		{"truncated database", func(t *testing.T, path string) {
			fillDB(t, path, 3000)
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "database unusable"},
		{"pages overwritten", func(t *testing.T, path string) {
			fillDB(t, path, 3000)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(random[:8*4096], 4*4096); err != nil {
				t.Fatal(err)
			}
		}, "database unusable"},
		{"schema from the future", func(t *testing.T, path string) {
			fillDB(t, path, 1)
			rawExec(t, path, "PRAGMA user_version = 99")
		}, "newer than this logjail"},
		{"another application's database", func(t *testing.T, path string) {
			rawExec(t, path, "CREATE TABLE bans (ip TEXT)", "INSERT INTO bans VALUES ('192.0.2.1')")
		}, "not a logjail database"},
		{"garbage with a WAL", func(t *testing.T, path string) {
			fillDB(t, path, 10)
			os.WriteFile(path, random[:8192], 0o600)
			os.WriteFile(path+"-wal", random[:4096], 0o600)
		}, "not an SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := dbPath(t)
			os.MkdirAll(filepath.Dir(path), 0o700)
			tt.prepare(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			wal, walErr := os.ReadFile(path + "-wal")

			var logs logBuf
			fake := clock.NewFake(t0)
			s := openAt(t, path, Options{Logger: newLogger(&logs), Clock: fake})

			moved := fmt.Sprintf("%s.corrupt-%d", path, t0.Unix())
			got, err := os.ReadFile(moved)
			if err != nil {
				t.Fatalf("moved-aside file: %v", err)
			}
			if !bytes.Equal(got, before) {
				t.Error("the moved-aside file differs from the original")
			}
			if walErr == nil {
				if got, err := os.ReadFile(moved + "-wal"); err != nil || !bytes.Equal(got, wal) {
					t.Errorf("the WAL did not move with its database: %v", err)
				}
			}
			out := logs.String()
			if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "moved aside") ||
				!strings.Contains(out, tt.reason) || !strings.Contains(out, moved) {
				t.Errorf("log does not carry the warning (want %q):\n%s", tt.reason, out)
			}
			// A fresh, working database took its place.
			if bans, err := s.ActiveBans(); err != nil || len(bans) != 0 {
				t.Errorf("ActiveBans of the fresh database = %d, %v", len(bans), err)
			}
			if err := s.PutBan(Ban{Jail: "j", Target: pfx("192.0.2.1"), Start: t0}); err != nil {
				t.Errorf("PutBan on the fresh database: %v", err)
			}
		})
	}
}

func TestCorruptTwiceInOneSecond(t *testing.T) {
	path := dbPath(t)
	os.MkdirAll(filepath.Dir(path), 0o700)
	for i := range 2 {
		os.WriteFile(path, []byte(fmt.Sprintf("garbage number %d, long enough", i)), 0o600)
		s, err := Open(path, Options{Clock: clock.NewFake(t0)})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for _, p := range []string{fmt.Sprintf("%s.corrupt-%d", path, t0.Unix()), fmt.Sprintf("%s.corrupt-%d.1", path, t0.Unix())} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// Errors that say nothing about the file are returned, and nothing moves.
func TestNotMovedAside(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		path := dbPath(t)
		if err := os.MkdirAll(path, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, Options{})
		if err == nil || errors.Is(err, ErrUnusable) {
			t.Fatalf("Open of a directory = %v, want a plain error", err)
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			t.Errorf("the directory was moved: %v", err)
		}
	})
	t.Run("locked", func(t *testing.T) {
		path := dbPath(t)
		fillDB(t, path, 1)
		// Another process holding the write lock looks like this: an
		// exclusive transaction on another connection.
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(t.Context(), "PRAGMA locking_mode = EXCLUSIVE"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
			t.Fatal(err)
		}
		_, err = open(path, Options{BusyTimeout: 50e6}, migrations)
		if err == nil || errors.Is(err, ErrUnusable) {
			t.Fatalf("Open of a locked database = %v, want a plain error", err)
		}
		conn.ExecContext(t.Context(), "ROLLBACK")
		if _, err := os.Stat(path); err != nil {
			t.Errorf("the locked database was moved: %v", err)
		}
	})
}

// A WAL whose database was removed by hand must not be replayed into the
// new database.
func TestOrphanWAL(t *testing.T) {
	path := dbPath(t)
	s := openAt(t, path, Options{})
	for i := range 50 {
		if err := s.PutBan(Ban{Jail: "sshd", Target: pfx(fmt.Sprintf("192.0.2.%d", i)), Start: t0}); err != nil {
			t.Fatal(err)
		}
	}
	wal, err := os.ReadFile(path + "-wal") // safe: SQLite's locks are on the database and -shm files
	if err != nil || len(wal) == 0 {
		t.Fatalf("WAL: %d bytes, %v", len(wal), err)
	}
	s.Close()
	os.Remove(path)
	if err := os.WriteFile(path+"-wal", wal, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuf
	s = openAt(t, path, Options{Logger: newLogger(&logs)})
	if bans, err := s.ActiveBans(); err != nil || len(bans) != 0 {
		t.Errorf("new database has %d bans (%v): the orphan WAL was replayed", len(bans), err)
	}
	if _, err := os.Stat(fmt.Sprintf("%s.orphan-%d-wal", path, t0.Unix())); err != nil {
		t.Errorf("orphan WAL not moved aside: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("no warning:\n%s", logs.String())
	}
}
