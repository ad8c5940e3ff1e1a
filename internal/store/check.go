package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

const sqliteMagic = "SQLite format 3\x00"

// prepareFile creates the database file with mode 0600 when it is missing
// (SQLite gives its -wal and -shm files the mode of the database), tightens
// the mode of an existing one, and checks its header.
//
// It opens the file with package os only before SQLite does: closing any
// descriptor of a file drops every POSIX lock the process holds on it,
// SQLite's included.
func prepareFile(path string, now time.Time, log *slog.Logger) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A WAL without its database (removed by hand) would be replayed
		// into the new one: it goes first.
		for _, suffix := range []string{"-wal", "-journal"} {
			if _, err := os.Lstat(path + suffix); err != nil {
				continue
			}
			dst := fmt.Sprintf("%s.orphan-%d%s", path, now.Unix(), suffix)
			if err := os.Rename(path+suffix, dst); err != nil {
				return fmt.Errorf("move orphan %s aside: %w", suffix, err)
			}
			log.Warn("database file missing but its "+suffix+" file was there; moved aside", "path", path, "moved_to", dst)
		}
		if err := os.Remove(path + "-shm"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove orphan -shm: %w", err)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		return f.Close()
	case err != nil:
		return fmt.Errorf("stat database: %w", err)
	case !fi.Mode().IsRegular():
		// Not ours to move: a directory or device here is a configuration
		// mistake, not a damaged database.
		return fmt.Errorf("database path %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("restrict database mode: %w", err)
		}
	}
	return checkHeader(path)
}

// checkHeader reports an ErrUnusable error when path is neither empty (a new
// database) nor starts with SQLite's magic string.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%w: unreadable: %w", ErrUnusable, err)
		}
		return fmt.Errorf("open database: %w", err)
	}
	defer f.Close()
	var h [len(sqliteMagic)]byte
	n, err := io.ReadFull(f, h[:])
	switch {
	case n == 0 && err == io.EOF:
		return nil
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("read database header: %w", err)
	case string(h[:n]) != sqliteMagic:
		return fmt.Errorf("%w: not an SQLite database", ErrUnusable)
	}
	return nil
}

// check decides whether the open database is usable: an empty file, or a
// logjail database of this or an older schema that passes quick_check.
func (s *Store) check(migs []migration) error {
	ctx := context.Background()
	var appID, version, objects int
	err := s.wdb.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID)
	if err == nil {
		err = s.wdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version)
	}
	if err == nil {
		err = s.wdb.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects)
	}
	if err != nil {
		return fmt.Errorf("read database: %w", classify(err))
	}
	switch {
	case appID == 0 && version == 0 && objects == 0:
		return nil // new
	case appID != applicationID:
		return fmt.Errorf("%w: not a logjail database (application_id %#x, %d schema objects)", ErrUnusable, appID, objects)
	case version > len(migs):
		return fmt.Errorf("%w: schema version %d is newer than this logjail's %d", ErrUnusable, version, len(migs))
	}
	pragma := "quick_check"
	if s.opts.FullCheck {
		pragma = "integrity_check"
	}
	start := time.Now()
	rows, err := s.wdb.QueryContext(ctx, "PRAGMA "+pragma+"(10)")
	if err != nil {
		return fmt.Errorf("%s: %w", pragma, classify(err))
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("%s: %w", pragma, classify(err))
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", pragma, classify(err))
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("%w: %s failed: %s", ErrUnusable, pragma, strings.Join(msgs, "; "))
	}
	s.log.Debug("database checked", "check", pragma, "took", time.Since(start))
	return nil
}

// classify wraps ErrUnusable around the SQLite errors that describe the file
// itself: it is corrupt, or not a database.
func classify(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %w", ErrUnusable, err)
		}
	}
	return err
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// moveAside renames the database at path, and its -wal and -journal files,
// to path+".corrupt-<unix time>" (with a numeric suffix if that exists), and
// removes its -shm. A WAL left beside a new database would be replayed into
// it, so the WAL must go with its database.
func moveAside(path string, now time.Time) (string, error) {
	base := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.%d", base, i)
	}
	// The WAL first: if this is cut short, no WAL is left beside a missing
	// database (see prepareFile for one left by other means).
	for _, suffix := range []string{"-wal", "-journal"} {
		if err := os.Rename(path+suffix, dst+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	if err := os.Remove(path + "-shm"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the renames durable; best effort
		d.Close()
	}
	return dst, nil
}
