package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/logjail/logjail/internal/clock"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// logBuf is a concurrency-safe buffer behind a text slog handler.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(buf *logBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func dbPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "state", "logjail.db")
}

func openAt(t *testing.T, path string, o Options) *Store {
	t.Helper()
	if o.Clock == nil {
		o.Clock = clock.NewFake(t0)
	}
	s, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTest(t *testing.T) *Store {
	t.Helper()
	return openAt(t, dbPath(t), Options{})
}

func pfx(s string) netip.Prefix {
	if !strings.Contains(s, "/") {
		a := netip.MustParseAddr(s)
		return netip.PrefixFrom(a, a.BitLen())
	}
	return netip.MustParsePrefix(s)
}

func pragmaInt(t *testing.T, s *Store, name string) int {
	t.Helper()
	var v int
	if err := s.wdb.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpenCreatesSchema(t *testing.T) {
	for _, tt := range []struct {
		name string
		sync Sync
		want int // PRAGMA synchronous
	}{
		{"normal", SyncNormal, 1},
		{"full", SyncFull, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := dbPath(t)
			s := openAt(t, path, Options{Sync: tt.sync})
			if got := pragmaInt(t, s, "user_version"); got != len(migrations) {
				t.Errorf("user_version = %d, want %d", got, len(migrations))
			}
			if got := pragmaInt(t, s, "application_id"); got != applicationID {
				t.Errorf("application_id = %#x, want %#x", got, applicationID)
			}
			if got := pragmaInt(t, s, "synchronous"); got != tt.want {
				t.Errorf("synchronous = %d, want %d", got, tt.want)
			}
			if got := pragmaInt(t, s, "foreign_keys"); got != 1 {
				t.Errorf("foreign_keys = %d, want 1", got)
			}
			var mode string
			if err := s.wdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode = %q, %v; want wal", mode, err)
			}
			for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("mode of %s = %v, want %v", p, got, want)
				}
			}
			// The reader pool cannot write.
			if _, err := s.rdb.Exec("DELETE FROM ban"); err == nil {
				t.Error("a write through the reader pool succeeded")
			}
		})
	}
}

func TestOpenTightensMode(t *testing.T) {
	path := dbPath(t)
	s := openAt(t, path, Options{})
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestMigration(t *testing.T) {
	path := dbPath(t)
	s := openAt(t, path, Options{})
	ban := Ban{Jail: "sshd", Target: pfx("192.0.2.1"), Start: t0, End: t0.Add(time.Hour), Failures: 5}
	if err := s.PutBan(ban); err != nil {
		t.Fatal(err)
	}
	s.Close()

	t.Run("failing step keeps the old version and the data", func(t *testing.T) {
		bad := append(clone(migrations), migration{name: "broken", sql: `ALTER TABLE ban ADD COLUMN x INTEGER; SELECT nosuchfunc();`})
		_, err := open(path, Options{Clock: clock.NewFake(t0)}, bad)
		if err == nil || errors.Is(err, ErrUnusable) {
			t.Fatalf("open with a broken migration: err = %v, want an error that is not ErrUnusable", err)
		}
		s := openAt(t, path, Options{})
		if got := pragmaInt(t, s, "user_version"); got != 1 {
			t.Errorf("user_version = %d, want 1", got)
		}
		bans, err := s.ActiveBans()
		if err != nil || len(bans) != 1 {
			t.Errorf("ActiveBans = %v, %v; want the one ban", bans, err)
		}
		s.Close()
		if _, err := os.Stat(path); err != nil {
			t.Errorf("database moved: %v", err)
		}
	})

	t.Run("step to version 2", func(t *testing.T) {
		next := append(clone(migrations), migration{name: "note", sql: `ALTER TABLE ban ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';`})
		s, err := open(path, Options{Clock: clock.NewFake(t0)}, next)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := pragmaInt(t, s, "user_version"); got != 2 {
			t.Errorf("user_version = %d, want 2", got)
		}
		var note string
		if err := s.rdb.QueryRow("SELECT note FROM ban").Scan(&note); err != nil || note != "v2" {
			t.Errorf("migrated row: note %q, %v", note, err)
		}
		bans, err := s.ActiveBans()
		if err != nil || len(bans) != 1 {
			t.Errorf("ActiveBans after migration = %v, %v", bans, err)
		}
	})
}

func clone[T any](s []T) []T { return append([]T(nil), s...) }

// Times compare with their Equal method (cmp's rule); addresses by value.
var cmpTime = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func TestPutEndList(t *testing.T) {
	s := openTest(t)
	a := Ban{Jail: "sshd", Target: pfx("192.0.2.1"), Start: t0, End: t0.Add(time.Hour),
		Failures: 5, Lines: []string{"l1", "l2"}, Count: 1}
	b := Ban{Jail: "sshd", Target: pfx("2001:db8::7"), Start: t0.Add(time.Second), Failures: 3, Manual: true, Count: 2}
	c := Ban{Jail: "nginx", Target: pfx("192.0.2.1"), Start: t0.Add(2 * time.Second), End: t0.Add(time.Minute), Failures: 9}
	for _, x := range []Ban{a, b, c} {
		if err := s.PutBan(x); err != nil {
			t.Fatal(err)
		}
	}
	c.Count = 1 // counted by the store
	want := []Ban{c, a, b}
	got, err := s.ActiveBans()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpTime); diff != "" {
		t.Errorf("ActiveBans (-want +got):\n%s", diff)
	}

	// Same start: the ban is extended in place, no second history row.
	a.End = t0.Add(2 * time.Hour)
	a.Failures = 7
	a.Lines = []string{"l3"}
	if err := s.PutBan(a); err != nil {
		t.Fatal(err)
	}
	// End c; end an absent ban (no-op).
	if err := s.EndBan("nginx", c.Target, t0.Add(time.Minute), "expired"); err != nil {
		t.Fatal(err)
	}
	if err := s.EndBan("nginx", pfx("198.51.100.1"), t0, "unban"); err != nil {
		t.Fatalf("EndBan of a ban not in force: %v", err)
	}
	got, err = s.ActiveBans()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Ban{a, b}, got, cmpTime); diff != "" {
		t.Errorf("ActiveBans after extend and end (-want +got):\n%s", diff)
	}

	// Another start for a (jail, target) in force supersedes it.
	a2 := a
	a2.Start, a2.End, a2.Count = t0.Add(3*time.Hour), t0.Add(4*time.Hour), 0
	if err := s.PutBan(a2); err != nil {
		t.Fatal(err)
	}
	a2.Count = 2 // second ban of 192.0.2.1 in sshd
	got, _ = s.ActiveBans()
	if diff := cmp.Diff([]Ban{b, a2}, got, cmpTime); diff != "" {
		t.Errorf("ActiveBans after supersede (-want +got):\n%s", diff)
	}

	hist, err := s.History(Query{})
	if err != nil {
		t.Fatal(err)
	}
	wantHist := []HistBan{
		{ID: 4, Jail: "sshd", Target: a2.Target, Start: a2.Start, End: a2.End, Failures: 7, Count: 2},
		{ID: 3, Jail: "nginx", Target: c.Target, Start: c.Start, End: c.End, Ended: t0.Add(time.Minute), Reason: "expired", Failures: 9, Count: 1},
		{ID: 2, Jail: "sshd", Target: b.Target, Start: b.Start, Failures: 3, Manual: true, Count: 2},
		{ID: 1, Jail: "sshd", Target: a.Target, Start: a.Start, End: a.End, Ended: a2.Start, Reason: ReasonSuperseded, Failures: 7, Count: 1},
	}
	if diff := cmp.Diff(wantHist, hist, cmpTime); diff != "" {
		t.Errorf("History (-want +got):\n%s", diff)
	}
	hist, err = s.History(Query{Jail: "sshd", Target: pfx("192.0.2.1"), Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].ID != 4 {
		t.Errorf("History(sshd, 192.0.2.1, limit 1) = %+v, want ID 4", hist)
	}

	// Expired: End at or before now; permanent bans never.
	exp, err := s.ExpiredActive(t0.Add(4 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Ban{a2}, exp, cmpTime); diff != "" {
		t.Errorf("ExpiredActive (-want +got):\n%s", diff)
	}
}

func TestPutBanInvalid(t *testing.T) {
	s := openTest(t)
	for _, b := range []Ban{
		{Target: pfx("192.0.2.1"), Start: t0},
		{Jail: "sshd", Start: t0},
		{Jail: "sshd", Target: pfx("192.0.2.1")},
	} {
		if err := s.PutBan(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutBan(%+v) = %v, want ErrInvalid", b, err)
		}
		var got error
		s.PutBanAsync(b, func(err error) { got = err })
		if !errors.Is(got, ErrInvalid) {
			t.Errorf("PutBanAsync(%+v) done(%v), want ErrInvalid", b, got)
		}
	}
}

func TestTargetsAndLines(t *testing.T) {
	s := openTest(t)
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	lines[19] = strings.Repeat("x", 5000)
	lines[18] = "bad utf8 \xff\xfe and NUL \x00 end"
	bans := []Ban{
		{Jail: "j", Target: pfx("::ffff:192.0.2.9"), Start: t0, Lines: lines}, // mapped: stored as 192.0.2.9/32
		{Jail: "j", Target: netip.MustParsePrefix("198.51.100.77/24"), Start: t0.Add(time.Second)},
		{Jail: "j", Target: netip.MustParsePrefix("2001:db8:1:2:3::/48"), Start: t0.Add(2 * time.Second)},
	}
	for _, b := range bans {
		if err := s.PutBan(b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ActiveBans()
	if err != nil {
		t.Fatal(err)
	}
	wantTargets := []netip.Prefix{pfx("192.0.2.9"), pfx("198.51.100.0/24"), pfx("2001:db8:1::/48")}
	for i, b := range got {
		if b.Target != wantTargets[i] {
			t.Errorf("target %d = %v, want %v", i, b.Target, wantTargets[i])
		}
	}
	wantLines := append(clone(lines[4:19]), strings.Repeat("x", MaxLineBytes))
	if diff := cmp.Diff(wantLines, got[0].Lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	// The mapped spelling finds the same ban.
	if err := s.EndBan("j", pfx("::ffff:192.0.2.9"), t0, "unban"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ActiveBans(); len(got) != 2 {
		t.Errorf("after EndBan of the mapped address: %d bans, want 2", len(got))
	}
}

func TestBanCount(t *testing.T) {
	s := openTest(t)
	addr := netip.MustParseAddr("203.0.113.5")
	put := func(jail string, target netip.Prefix, start time.Time) {
		t.Helper()
		if err := s.PutBan(Ban{Jail: jail, Target: target, Start: start, End: start.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := s.EndBan(jail, target, start.Add(time.Minute), "expired"); err != nil {
			t.Fatal(err)
		}
	}
	put("sshd", pfx("203.0.113.5"), t0.Add(-48*time.Hour))
	put("sshd", pfx("203.0.113.5"), t0.Add(-2*time.Hour))
	put("sshd", pfx("203.0.113.5"), t0.Add(-1*time.Hour))
	put("nginx", pfx("203.0.113.5"), t0.Add(-30*time.Minute))
	put("nginx", pfx("203.0.113.6"), t0.Add(-30*time.Minute))   // another address
	put("sshd", pfx("203.0.113.0/24"), t0.Add(-10*time.Minute)) // a prefix containing it: not its ban
	if err := s.PutBan(Ban{Jail: "sshd", Target: pfx("203.0.113.5"), Start: t0}); err != nil {
		t.Fatal(err) // in force: counts too
	}
	since := t0.Add(-24 * time.Hour)
	for _, tt := range []struct {
		jail     string
		addr     netip.Addr
		since    time.Time
		allJails bool
		want     int
	}{
		{"sshd", addr, since, false, 3},
		{"sshd", addr, since, true, 4},
		{"sshd", addr, time.Time{}, false, 4},
		{"sshd", addr, time.Time{}, true, 5},
		{"nginx", addr, since, false, 1},
		{"nginx", addr, since, true, 4},
		{"nginx", netip.MustParseAddr("::ffff:203.0.113.5"), since, false, 1},
		{"postfix", addr, since, false, 0},
		{"sshd", netip.MustParseAddr("203.0.113.7"), time.Time{}, true, 0},
	} {
		t.Run(fmt.Sprintf("%s/%v/%v/%v", tt.jail, tt.addr, tt.since.IsZero(), tt.allJails), func(t *testing.T) {
			got, err := s.BanCount(tt.jail, tt.addr, tt.since, tt.allJails)
			if err != nil || got != tt.want {
				t.Errorf("BanCount = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	// Count 0 on PutBan: the store counts this jail's bans of the target.
	got, err := s.ActiveBans()
	if err != nil || len(got) != 1 || got[0].Count != 4 {
		t.Errorf("ActiveBans = %+v, %v; want one ban with Count 4", got, err)
	}
}

func TestPurge(t *testing.T) {
	s := openTest(t)
	old := t0.Add(-40 * 24 * time.Hour)
	// More ended bans than one purge chunk, all old.
	n := PurgeChunk + 123
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		target := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		wg.Add(2)
		done := func(err error) {
			if err != nil {
				errs <- err
			}
			wg.Done()
		}
		s.PutBanAsync(Ban{Jail: "sshd", Target: target, Start: old, End: old.Add(time.Hour)}, done)
		s.EndBanAsync("sshd", target, old.Add(time.Hour), "expired", done)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// An old ban still in force (permanent), and a recent ended one.
	if err := s.PutBan(Ban{Jail: "sshd", Target: pfx("192.0.2.1"), Start: old}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBan(Ban{Jail: "sshd", Target: pfx("192.0.2.2"), Start: t0.Add(-time.Hour), End: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.EndBan("sshd", pfx("192.0.2.2"), t0, "expired"); err != nil {
		t.Fatal(err)
	}
	purged, err := s.Purge(t0.Add(-30 * 24 * time.Hour))
	if err != nil || purged != n {
		t.Fatalf("Purge = %d, %v; want %d", purged, err, n)
	}
	hist, err := s.History(Query{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, h := range hist {
		left = append(left, h.Target.String())
	}
	if diff := cmp.Diff([]string{"192.0.2.2/32", "192.0.2.1/32"}, left); diff != "" {
		t.Errorf("history after purge (-want +got):\n%s", diff)
	}
	if purged, err := s.Purge(t0.Add(time.Second)); err != nil || purged != 1 {
		t.Errorf("second Purge = %d, %v; want 1 (the recent ended ban, never the one in force)", purged, err)
	}
	if bans, _ := s.ActiveBans(); len(bans) != 1 {
		t.Errorf("ActiveBans after purge = %v, want the permanent ban", bans)
	}
}

func TestPositions(t *testing.T) {
	s := openTest(t)
	if _, ok, err := s.Position("/var/log/auth.log"); ok || err != nil {
		t.Fatalf("Position of an unknown file = %v, %v", ok, err)
	}
	p := Position{Dev: 0xfd01, Inode: 1<<63 + 5, Offset: 123456, HeadLen: 3, HeadHash: [32]byte{1, 2, 3}, Saved: t0}
	if err := s.SavePosition("/var/log/auth.log", p); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Position("/var/log/auth.log")
	if err != nil || !ok {
		t.Fatalf("Position = %v, %v", ok, err)
	}
	if diff := cmp.Diff(p, got, cmpTime); diff != "" {
		t.Errorf("Position (-want +got):\n%s", diff)
	}
	p.Offset, p.Saved = 999, time.Time{} // zero Saved: the clock's now
	done := make(chan error, 1)
	s.SavePositionAsync("/var/log/auth.log", p, func(err error) { done <- err })
	s.SavePositionAsync("/var/log/nginx/access.log", Position{Offset: 1}, nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	all, err := s.Positions()
	if err != nil {
		t.Fatal(err)
	}
	p.Saved = t0
	want := map[string]Position{
		"/var/log/auth.log":         p,
		"/var/log/nginx/access.log": {Offset: 1, Saved: t0},
	}
	if diff := cmp.Diff(want, all, cmpTime); diff != "" {
		t.Errorf("Positions (-want +got):\n%s", diff)
	}
	if err := s.DeletePosition("/var/log/auth.log"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Position("/var/log/auth.log"); ok {
		t.Error("position still there after DeletePosition")
	}
	if err := s.SavePosition("", p); !errors.Is(err, ErrInvalid) {
		t.Errorf("SavePosition with no path = %v, want ErrInvalid", err)
	}
}

func TestHead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) *os.File {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	orig := write("orig", "Mar  1 12:00:00 host sshd[1]: first line\nsecond\n")
	n, sum, err := Head(orig, MaxHead)
	if err != nil || n != 48 {
		t.Fatalf("Head = %d, %v", n, err)
	}
	p := Position{HeadLen: n, HeadHash: sum}
	for _, tt := range []struct {
		name, content string
		want          bool
	}{
		{"grown", "Mar  1 12:00:00 host sshd[1]: first line\nsecond\nthird\n", true},
		{"rotated", "Mar  2 00:00:01 host sshd[9]: new file\n", false},
		{"truncated", "Mar  1 12:00:00 host", false},
		{"empty", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.SameHead(write(tt.name, tt.content))
			if err != nil || got != tt.want {
				t.Errorf("SameHead = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if ok, _ := (Position{}).SameHead(write("any", "x")); !ok {
		t.Error("an empty head does not match")
	}
	big := write("big", strings.Repeat("y", 3*MaxHead))
	if n, _, _ := Head(big, 1<<20); n != MaxHead {
		t.Errorf("Head of a big file = %d bytes, want MaxHead", n)
	}
}

func TestAsyncOrderFlushStats(t *testing.T) {
	s := openTest(t)
	const n = 3000
	var (
		mu    sync.Mutex
		order []int
	)
	for i := range n {
		target := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32)
		s.PutBanAsync(Ban{Jail: "sshd", Target: target, Start: t0}, func(err error) {
			if err != nil {
				t.Errorf("ban %d: %v", i, err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != n {
		t.Fatalf("%d callbacks before Flush returned, want %d", len(order), n)
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("callback %d was for write %d: out of order", i, v)
		}
	}
	st := s.Stats()
	if st.Ops != n+1 || st.Errors != 0 || st.Batches > st.Ops || st.Pending != 0 {
		t.Errorf("Stats = %+v", st)
	}
	t.Logf("%d writes in %d batches", st.Ops, st.Batches)
	bans, err := s.ActiveBans()
	if err != nil || len(bans) != n {
		t.Errorf("ActiveBans = %d, %v; want %d", len(bans), err, n)
	}
}

// A failing write in a batch fails alone: the batch is retried write by write.
func TestBatchFailureIsolated(t *testing.T) {
	s := openTest(t)
	hold := make(chan struct{})
	started := make(chan struct{})
	s.submit(opFunc(func(*txn) error {
		select {
		case <-started:
		default:
			close(started)
			<-hold // only on the first run; keep the writer busy while the batch queues up
		}
		return nil
	}), nil)
	<-started
	errs := make([]error, 5)
	var wg sync.WaitGroup
	wg.Add(len(errs))
	for i := range errs {
		done := func(err error) { errs[i] = err; wg.Done() }
		if i == 2 {
			s.submit(opFunc(func(*txn) error { return errors.New("boom") }), done)
			continue
		}
		s.PutBanAsync(Ban{Jail: "j", Target: pfx(fmt.Sprintf("192.0.2.%d", i)), Start: t0}, done)
	}
	close(hold)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 2) {
			t.Errorf("write %d: err = %v", i, err)
		}
	}
	if bans, _ := s.ActiveBans(); len(bans) != 4 {
		t.Errorf("ActiveBans = %d bans, want 4", len(bans))
	}
	// A failed write without a callback is reported by the next Flush, once.
	s.submit(opFunc(func(*txn) error { return errors.New("lost") }), nil)
	if err := s.Flush(); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("Flush = %v, want the failed write's error", err)
	}
	if err := s.Flush(); err != nil {
		t.Errorf("second Flush = %v, want nil", err)
	}
}

func TestClose(t *testing.T) {
	path := dbPath(t)
	s := openAt(t, path, Options{})
	for i := range 100 {
		s.PutBanAsync(Ban{Jail: "j", Target: pfx(fmt.Sprintf("192.0.2.%d", i)), Start: t0}, nil)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := s.PutBan(Ban{Jail: "j", Target: pfx("192.0.2.200"), Start: t0}); !errors.Is(err, ErrClosed) {
		t.Errorf("PutBan after Close = %v, want ErrClosed", err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Errorf("WAL of %d bytes left after Close", fi.Size())
	}
	s = openAt(t, path, Options{})
	if bans, _ := s.ActiveBans(); len(bans) != 100 {
		t.Errorf("after reopen: %d bans, want the 100 queued before Close", len(bans))
	}
}

func TestOpenReadOnly(t *testing.T) {
	path := dbPath(t)
	if _, err := OpenReadOnly(path, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly of a missing file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("OpenReadOnly created the file")
	}
	s := openAt(t, path, Options{})
	if err := s.PutBan(Ban{Jail: "j", Target: pfx("192.0.2.1"), Start: t0}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	r, err := OpenReadOnly(path, Options{Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if bans, err := r.ActiveBans(); err != nil || len(bans) != 1 {
		t.Errorf("ActiveBans = %v, %v", bans, err)
	}
	if rep, err := r.Report(ReportQuery{}); err != nil || rep.Bans != 1 {
		t.Errorf("Report = %+v, %v", rep, err)
	}
	if err := r.PutBan(Ban{Jail: "j", Target: pfx("192.0.2.2"), Start: t0}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("PutBan on a read-only store = %v, want ErrReadOnly", err)
	}
	if err := r.Flush(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Flush on a read-only store = %v", err)
	}

	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(garbage, Options{}); !errors.Is(err, ErrUnusable) {
		t.Errorf("OpenReadOnly of garbage = %v, want ErrUnusable", err)
	}
	if _, err := os.Stat(garbage); err != nil {
		t.Errorf("OpenReadOnly moved the garbage: %v", err)
	}
}

func TestJailBans(t *testing.T) {
	s := openTest(t)
	for i, b := range []Ban{
		{Jail: "sshd", Target: pfx("192.0.2.2"), Start: t0.Add(2 * time.Minute), End: t0.Add(time.Hour)},
		{Jail: "web", Target: pfx("192.0.2.1"), Start: t0, End: t0.Add(time.Hour)},
		{Jail: "sshd", Target: pfx("192.0.2.1"), Start: t0.Add(time.Minute)},
		{Jail: "sshd", Target: pfx("192.0.2.3"), Start: t0, End: t0.Add(time.Hour)},
	} {
		if err := s.PutBan(b); err != nil {
			t.Fatalf("PutBan %d: %v", i, err)
		}
	}
	if err := s.EndBan("sshd", pfx("192.0.2.3"), t0.Add(3*time.Minute), "manual"); err != nil {
		t.Fatal(err)
	}
	got, err := s.JailBans("sshd")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range got {
		names = append(names, b.Jail+" "+b.Target.String())
	}
	if diff := cmp.Diff([]string{"sshd 192.0.2.1/32", "sshd 192.0.2.2/32"}, names); diff != "" {
		t.Errorf("JailBans(sshd) (-want +got):\n%s", diff)
	}
}
