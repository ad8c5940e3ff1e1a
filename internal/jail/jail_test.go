package jail

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/clock"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/source"
)

func TestNewErrors(t *testing.T) {
	f := loadFilter(t, "sshd", filter.Options{})
	ok := Spec{Name: "sshd", Filter: f, LogPaths: []string{"/x"}, MaxRetry: 3, FindTime: time.Minute}
	tests := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no name", func(s *Spec) { s.Name = "" }, "no name"},
		{"no filter", func(s *Spec) { s.Filter = nil }, "no filter"},
		{"no logpath", func(s *Spec) { s.LogPaths = nil }, "no logpath"},
		{"bad backend", func(s *Spec) { s.Backend = "systemd" }, `backend "systemd"`},
		{"maxretry 0", func(s *Spec) { s.MaxRetry = 0 }, "maxretry"},
		{"findtime 0", func(s *Spec) { s.FindTime = 0 }, "findtime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			_, err := New(s, &fakeBanner{}, Options{})
			if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want ErrSpec mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := New(ok, nil, Options{}); !errors.Is(err, ErrSpec) {
		t.Errorf("New without banner = %v, want ErrSpec", err)
	}
}

// The failures of the last findtime already in the file when the jail starts count; older
// ones do not. Lines after the start count as usual.
func TestBacklogCountedOnStart(t *testing.T) {
	h := newHarness(t)
	old := repeat(3, func(i int) string {
		return sshLine(t0.Add(-20*time.Minute+time.Duration(i)*time.Second), "root", "192.0.2.1")
	})
	recentA := repeat(2, func(i int) string {
		return sshLine(t0.Add(-5*time.Minute+time.Duration(i)*time.Second), "root", "192.0.2.1")
	})
	recentB := repeat(4, func(i int) string {
		return sshLine(t0.Add(-2*time.Minute+time.Duration(i)*time.Second), "admin", "192.0.2.2")
	})
	h.write("auth.log", old+noise(t0.Add(-3*time.Minute))+recentA+recentB)
	h.start(sshSpec(t, "auth.log"), Options{})

	st := h.waitLines(10)
	if diff := cmp.Diff([]string{"192.0.2.2/32"}, h.banner.targets()); diff != "" {
		t.Errorf("orders after start (-want +got):\n%s", diff)
	}
	if st.TooOld != 3 || st.Failures != 6 || st.LinesSkipped != 3 {
		t.Errorf("status: TooOld %d, Failures %d, LinesSkipped %d; want 3, 6, 3", st.TooOld, st.Failures, st.LinesSkipped)
	}
	if x := h.j.Explain(addr("192.0.2.1")); x.Failures != 2 {
		t.Errorf("Explain(192.0.2.1).Failures = %d, want the 2 recent ones", x.Failures)
	}
	if x := h.j.Explain(addr("192.0.2.2")); x.Failures != 1 {
		t.Errorf("Explain(192.0.2.2).Failures = %d, want 1 (the one after the ban)", x.Failures)
	}

	h.write("auth.log", sshLine(t0, "root", "192.0.2.1"))
	h.waitLines(11)
	if diff := cmp.Diff([]string{"192.0.2.2/32", "192.0.2.1/32"}, h.banner.targets()); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
}

// Crossing maxretry makes exactly one order, with the lines that counted; the count then
// starts again.
func TestMaxRetryOneOrder(t *testing.T) {
	h := newHarness(t)
	h.write("auth.log", "")
	spec := sshSpec(t, "auth.log")
	spec.MaxRetry = 5
	h.start(spec, Options{})
	var lines []string
	for i := range 5 {
		lines = append(lines, sshLine(t0.Add(time.Duration(i)*time.Second), "root", "2001:db8::7"))
	}
	h.write("auth.log", strings.Join(lines, "")+noise(t0))
	h.waitLines(6)
	orders := h.banner.got()
	if len(orders) != 1 {
		t.Fatalf("%d orders, want 1: %+v", len(orders), orders)
	}
	o := orders[0]
	want := ban.Order{
		Jail: "sshd", Target: netip.PrefixFrom(addr("2001:db8::7"), 128), Time: t0.Add(4 * time.Second), Failures: 5,
	}
	for _, l := range lines {
		want.Lines = append(want.Lines, strings.TrimSuffix(l, "\n"))
	}
	if diff := cmp.Diff(want, o, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	h.write("auth.log", sshLine(t0.Add(10*time.Second), "root", "2001:db8::7"))
	st := h.waitLines(7)
	if n := len(h.banner.got()); n != 1 {
		t.Errorf("%d orders after one more failure, want still 1", n)
	}
	if x := h.j.Explain(addr("2001:db8::7")); x.Failures != 1 {
		t.Errorf("Explain().Failures = %d after the ban and one failure, want 1", x.Failures)
	}
	if st.Orders != 1 || st.Failures != 6 || st.Tracked != 1 || st.LastFailure != t0.Add(10*time.Second) {
		t.Errorf("status: Orders %d, Failures %d, Tracked %d, LastFailure %v", st.Orders, st.Failures, st.Tracked, st.LastFailure)
	}
}

func TestIgnoreUser(t *testing.T) {
	h := newHarness(t)
	h.write("auth.log", "")
	spec := sshSpec(t, "auth.log")
	spec.IgnoreUser = []string{"jdoe", "backup"}
	h.start(spec, Options{})
	h.write("auth.log", repeat(5, func(i int) string { return sshLine(t0, "jdoe", "192.0.2.3") })+
		sshLine(t0, "root", "192.0.2.3"))
	st := h.waitLines(6)
	if st.IgnoredUser != 5 || st.Failures != 1 || st.Matched != 6 {
		t.Errorf("IgnoredUser %d, Failures %d, Matched %d; want 5, 1, 6", st.IgnoredUser, st.Failures, st.Matched)
	}
	if n := len(h.banner.got()); n != 0 {
		t.Errorf("%d orders, want none", n)
	}
}

// Failures from two files of one jail count together (with each backend).
func TestTwoFiles(t *testing.T) {
	for _, backend := range []string{"polling", "auto"} {
		t.Run(backend, func(t *testing.T) { testTwoFiles(t, backend) })
	}
}

func testTwoFiles(t *testing.T, backend string) {
	h := newHarness(t)
	h.write("a.log", "")
	h.write("b.log", "")
	spec := sshSpec(t, "a.log", "b.log")
	spec.Backend = backend
	opts := Options{}
	if backend == "auto" {
		opts.PollInterval = time.Hour // lines come by inotify only
	}
	h.start(spec, opts)
	h.write("a.log", sshLine(t0, "root", "192.0.2.4"))
	h.write("b.log", sshLine(t0.Add(time.Second), "root", "192.0.2.4"))
	h.waitLines(2)
	if n := len(h.banner.got()); n != 0 {
		t.Fatalf("%d orders after 2 failures, want none", n)
	}
	h.write("a.log", sshLine(t0.Add(2*time.Second), "root", "192.0.2.4"))
	h.waitLines(3)
	if diff := cmp.Diff([]string{"192.0.2.4/32"}, h.banner.targets()); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
	// A follower counts its lines after handing them over: the jail may have counted them
	// first.
	h.waitFor("each file's lines", func(st Status) bool {
		return len(st.Files) == 2 && st.Files[0].Lines == 2 && st.Files[1].Lines == 1
	})
}

// A glob that matches nothing warns; a file created later is found at the next look.
func TestGlobPicksUpLaterFile(t *testing.T) {
	h := newHarness(t)
	mustDo(t, os.Mkdir(h.path("apache"), 0o755))
	h.start(sshSpec(t, "apache/*.log"), Options{})
	st := h.j.Status()
	if !hasWarning(st, "matches no file") || len(st.Files) != 0 {
		t.Fatalf("status before the file exists: %+v", st)
	}
	h.write("apache/x.log", repeat(3, func(i int) string { return sshLine(t0, "root", "192.0.2.5") }))
	h.write("apache/x.log.1", "not matched by the glob\n")
	h.tick(0)
	st = h.waitLines(3)
	if diff := cmp.Diff([]string{"192.0.2.5/32"}, h.banner.targets()); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
	if len(st.Files) != 1 || st.Files[0].Path != h.path("apache/x.log") {
		t.Errorf("files: %+v", st.Files)
	}
	if hasWarning(st, "matches no file") {
		t.Errorf("warning not cleared: %q", st.Warnings)
	}

	// The file goes for good: after VanishAfter it is no longer followed, and the glob warns.
	mustDo(t, os.Remove(h.path("apache/x.log")))
	h.waitFor("file gone", func(s Status) bool { return len(s.Files) == 1 && !s.Files[0].Exists })
	h.tick(0)
	h.tick(DefaultVanishAfter)
	st = h.j.Status()
	if len(st.Files) != 0 || !hasWarning(st, "matches no file") {
		t.Errorf("status after the file went: files %+v, warnings %q", st.Files, st.Warnings)
	}
}

// A path that does not exist yet (no glob) is followed from its first line when it appears.
func TestMissingFileWaitedFor(t *testing.T) {
	h := newHarness(t)
	h.start(sshSpec(t, "later.log"), Options{})
	if st := h.j.Status(); !hasWarning(st, "does not exist") {
		t.Errorf("warnings = %q, want one about the missing file", st.Warnings)
	}
	h.write("later.log", repeat(3, func(i int) string { return sshLine(t0, "root", "192.0.2.6") }))
	h.waitLines(3)
	if n := len(h.banner.got()); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
	h.tick(0)
	if st := h.j.Status(); len(st.Warnings) != 0 {
		t.Errorf("warnings = %q after the file appeared, want none", st.Warnings)
	}
}

// Rotation by rename+create and by copytruncate loses no failure and counts none twice.
func TestRotation(t *testing.T) {
	for _, mode := range []string{"rename", "copytruncate"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t)
			h.write("auth.log", "")
			spec := sshSpec(t, "auth.log")
			spec.MaxRetry = 1000
			h.start(spec, Options{})
			n := 0
			fail := func() string {
				n++
				// Lines differ (the port): a copytruncate is found by the file's changed head.
				return sshLinePort(t0.Add(time.Duration(n)*time.Millisecond), "root", "192.0.2.8", 10000+n)
			}
			h.write("auth.log", repeat(40, func(int) string { return fail() }))
			h.waitLines(40)
			switch mode {
			case "rename":
				// The writer still appends to the old file after the rename, then reopens.
				w, err := os.OpenFile(h.path("auth.log"), os.O_WRONLY|os.O_APPEND, 0)
				mustDo(t, err)
				mustDo(t, os.Rename(h.path("auth.log"), h.path("auth.log.1")))
				_, err = w.WriteString(repeat(10, func(int) string { return fail() }))
				mustDo(t, err)
				w.Close()
				h.write("auth.log", repeat(30, func(int) string { return fail() }))
			case "copytruncate":
				data, err := os.ReadFile(h.path("auth.log"))
				mustDo(t, err)
				mustDo(t, os.WriteFile(h.path("auth.log.1"), data, 0o644))
				mustDo(t, os.Truncate(h.path("auth.log"), 0))
				// Written past the old size before the follower looks again.
				h.write("auth.log", repeat(60, func(int) string { return fail() }))
			}
			st := h.waitLines(int64(n))
			time.Sleep(20 * time.Millisecond) // ten polls: nothing more comes
			st = h.j.Status()
			if st.LinesRead != int64(n) || st.Failures != int64(n) {
				t.Errorf("LinesRead %d, Failures %d; want %d each", st.LinesRead, st.Failures, n)
			}
			if x := h.j.Explain(addr("192.0.2.8")); x.Failures != n {
				t.Errorf("Explain().Failures = %d, want %d", x.Failures, n)
			}
			f := st.Files[0]
			if mode == "rename" && f.Rotations != 1 || mode == "copytruncate" && f.Truncations != 1 {
				t.Errorf("file status %+v", f)
			}
		})
	}
}

// Garbage is counted and skipped; the failures around it count.
func TestGarbage(t *testing.T) {
	h := newHarness(t)
	h.write("auth.log", "")
	spec := sshSpec(t, "auth.log")
	spec.MaxRetry = 100
	h.start(spec, Options{MaxLineSize: 64 << 10})
	good := func(i int) string { return sshLine(t0.Add(time.Duration(i)*time.Second), "root", "192.0.2.9") }
	h.write("auth.log", good(0)+
		strings.Repeat("x", 1<<20)+"\n"+ // 1 MiB line: cut by the follower, skipped
		"\xff\xfe garbage \xc3\x28\n"+ // invalid UTF-8
		"a\x00b\x00c\n"+ // NUL bytes
		strings.TrimSuffix(sshLine(t0, "ro\xffot", "192.0.2.9"), "\n")+"\n"+ // a failure with invalid UTF-8 still counts
		good(1))
	// The follower adds the cut line to its own counts after it sent the lines: the jail may
	// have counted them all before.
	st := h.waitFor("six lines, one cut", func(s Status) bool {
		return s.LinesRead >= 6 && len(s.Files) == 1 && s.Files[0].CutLines >= 1
	})
	if st.Failures != 3 || st.LinesSkipped != 1 || st.LinesInvalid != 3 || st.Files[0].CutLines != 1 {
		t.Errorf("Failures %d, LinesSkipped %d, LinesInvalid %d, CutLines %d; want 3, 1, 3, 1", st.Failures, st.LinesSkipped, st.LinesInvalid, st.Files[0].CutLines)
	}

	// A binary file replaces the log; text written after it is read.
	bin := make([]byte, 1<<20)
	for i := range bin {
		bin[i] = byte(i*7 + i/251)
	}
	mustDo(t, os.WriteFile(h.path("bin"), bin, 0o644))
	mustDo(t, os.Rename(h.path("bin"), h.path("auth.log")))
	h.write("auth.log", "\n"+good(2))
	h.waitFor("the line after the binary", func(s Status) bool { return s.Failures == 4 })
}

// A logpath that is a directory, or that cannot be opened, is reported, and the jail runs on
// with its other logs.
func TestUnusableLogpaths(t *testing.T) {
	h := newHarness(t)
	mustDo(t, os.Mkdir(h.path("adir"), 0o755))
	h.write("afile", "")
	h.write("ok.log", "")
	paths := []string{"adir", "afile/x.log", "ok.log"}
	unreadable := os.Geteuid() != 0 // chmod 000 does not stop root
	if unreadable {
		h.write("secret.log", "")
		mustDo(t, os.Chmod(h.path("secret.log"), 0))
		paths = append(paths, "secret.log")
	}
	h.start(sshSpec(t, paths...), Options{})
	h.write("ok.log", repeat(3, func(i int) string { return sshLine(t0, "root", "192.0.2.10") }))
	st := h.waitLines(3)
	if n := len(h.banner.got()); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
	byPath := map[string]FileStatus{}
	for _, f := range st.Files {
		byPath[f.Path] = f
	}
	checks := map[string]string{"adir": "directory", "afile/x.log": "not a directory"}
	if unreadable {
		checks["secret.log"] = "permission denied"
	}
	for p, want := range checks {
		f := byPath[h.path(p)]
		if !strings.Contains(f.Error, want) {
			t.Errorf("file %s: Error %q, want %q", p, f.Error, want)
		}
		if !hasError(st, h.path(p)) {
			t.Errorf("Errors %q do not name %s", st.Errors, p)
		}
	}
	// The directory becomes a file: it is followed at the next look.
	mustDo(t, os.Remove(h.path("adir")))
	h.write("adir", "")
	h.tick(0)
	h.write("adir", sshLine(t0, "root", "192.0.2.11"))
	st = h.waitLines(4)
	if f := st.Files[0]; f.Error != "" || !f.Exists {
		t.Errorf("adir after it became a file: %+v", f)
	}
}

func TestExplain(t *testing.T) {
	h := newHarness(t)
	h.write("auth.log", "")
	spec := sshSpec(t, "auth.log")
	spec.MaxRetry = 5
	h.start(spec, Options{})
	l1 := sshLine(t0.Add(-time.Minute), "root", "192.0.2.12")
	l2 := sshLine(t0, "admin", "::ffff:192.0.2.12")
	h.write("auth.log", l1+l2+sshLine(t0, "root", "192.0.2.13"))
	h.waitLines(3)
	x := h.j.Explain(addr("::ffff:192.0.2.12"))
	want := Explain{
		Jail: "sshd", Failures: 2, MaxRetry: 5, FindTime: 10 * time.Minute,
		Times:    []time.Time{t0.Add(-time.Minute), t0},
		Lines:    []string{strings.TrimSuffix(l1, "\n"), strings.TrimSuffix(l2, "\n")},
		ResetsAt: t0.Add(10 * time.Minute),
	}
	if diff := cmp.Diff(want, x); diff != "" {
		t.Errorf("Explain (-want +got):\n%s", diff)
	}
	if x := h.j.Explain(addr("192.0.2.99")); x.Failures != 0 || !x.ResetsAt.IsZero() || x.Lines != nil {
		t.Errorf("Explain of an unknown address = %+v", x)
	}
	// The first failure leaves the window: only the second counts. (h.tick waits for Run to
	// re-arm its timer: a bare Advance raced with the next step's.)
	h.tick(9*time.Minute + 30*time.Second)
	x = h.j.Explain(addr("192.0.2.12"))
	if x.Failures != 1 || len(x.Lines) != 1 || x.Lines[0] != want.Lines[1] {
		t.Errorf("Explain after 9m30s = %+v", x)
	}
	// After the reset, nothing; the window is expired at the next look.
	h.tick(time.Minute)
	if x := h.j.Explain(addr("192.0.2.12")); x.Failures != 0 {
		t.Errorf("Explain after the reset = %+v", x)
	}
	if st := h.j.Status(); st.Tracked != 0 {
		t.Errorf("Tracked = %d after expiry, want 0", st.Tracked)
	}
}

// An address that reaches maxretry again while its ban would not change sends no order: the
// jail counts it, and forgets the lines it kept for it. Once the ban would change (lifted by
// hand, say), the next crossing sends an order with the lines since.
func TestAlreadyBannedSkipped(t *testing.T) {
	h := newHarness(t)
	h.write("auth.log", "")
	h.start(sshSpec(t, "auth.log"), Options{})
	target := netip.MustParsePrefix("192.0.2.7/32")
	fail := func(from, n int) string {
		return repeat(n, func(i int) string { return sshLine(t0.Add(time.Duration(from+i)*time.Second), "root", "192.0.2.7") })
	}
	h.write("auth.log", fail(0, 3))
	h.waitLines(3)
	h.banner.setBanned(target, true)
	h.write("auth.log", fail(3, 7)) // two crossings, one failure left in the window
	st := h.waitLines(10)
	if n := len(h.banner.got()); n != 1 || st.Orders != 1 || st.AlreadyBanned != 2 || st.Failures != 10 {
		t.Errorf("while banned: %d orders sent, status Orders %d AlreadyBanned %d Failures %d; want 1, 1, 2, 10",
			n, st.Orders, st.AlreadyBanned, st.Failures)
	}
	if x := h.j.Explain(addr("192.0.2.7")); x.Failures != 1 || len(x.Lines) != 1 {
		t.Errorf("Explain while banned = %d failures, %d lines; want 1 and 1 (the lines of the skipped orders forgotten)", x.Failures, len(x.Lines))
	}
	h.j.mu.Lock()
	kept := len(h.j.eng.recent.ents[h.j.eng.recent.idx[addr("192.0.2.7")]].lines)
	h.j.mu.Unlock()
	if kept != 1 {
		t.Errorf("%d lines kept for the address after the skipped orders, want 1", kept)
	}
	h.banner.setBanned(target, false)
	h.write("auth.log", fail(10, 2))
	h.waitLines(12)
	orders := h.banner.got()
	if len(orders) != 2 {
		t.Fatalf("%d orders after the ban would change, want 2", len(orders))
	}
	if o := orders[1]; o.Failures != 3 || len(o.Lines) != 3 || !strings.Contains(o.Lines[0], "14:00:09") {
		t.Errorf("second order: %d failures, lines %q; want 3, from the failure at 14:00:09 on", o.Failures, o.Lines)
	}
}

// A failed ban order is reported in Errors; a refusal is not.
func TestBanErrors(t *testing.T) {
	h := newHarness(t)
	h.banner.err = errors.New("executor gone")
	h.write("auth.log", "")
	h.start(sshSpec(t, "auth.log"), Options{})
	h.write("auth.log", repeat(3, func(int) string { return sshLine(t0, "root", "192.0.2.14") }))
	h.waitLines(3)
	st := h.waitFor("ban error", func(s Status) bool { return len(s.Errors) > 0 })
	if !hasError(st, "executor gone") {
		t.Errorf("Errors = %q", st.Errors)
	}
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// btmp: a file of utmp records is followed record by record and each record goes through the
// btmp filter.
func TestBtmp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exists bool // else it appears after the start: the filter name makes it btmp
	}{{"existing file", true}, {"file appears later", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			old := btmpRecords(t0.Add(-time.Minute), "192.0.2.20", 2)
			if tc.exists {
				mustDo(t, os.WriteFile(h.path("btmp"), old, 0o600))
			}
			spec := Spec{Name: "btmp", Filter: loadFilter(t, "btmp", filter.Options{}), FilterName: "btmp",
				LogPaths: []string{"btmp"}, Backend: "polling", MaxRetry: 3, FindTime: 10 * time.Minute}
			if tc.exists { // found by content
				spec.FilterName = "custom"
				spec.Filter.Name = "custom"
			}
			h.start(spec, Options{})
			if !tc.exists {
				h.write("btmp", string(old))
			}
			h.waitLines(2)
			if n := len(h.banner.got()); n != 0 {
				t.Fatalf("%d orders after 2 failures", n)
			}
			h.write("btmp", string(btmpRecords(t0, "192.0.2.20", 1)))
			st := h.waitLines(3)
			if diff := cmp.Diff([]string{"192.0.2.20/32"}, h.banner.targets()); diff != "" {
				t.Errorf("orders (-want +got):\n%s", diff)
			}
			if st.Files[0].Format != "btmp" || st.Failures != 3 {
				t.Errorf("status %+v", st)
			}
			o := h.banner.got()[0]
			if len(o.Lines) != 3 || !strings.HasPrefix(o.Lines[2], "root     ssh:notty    192.0.2.20 ") {
				t.Errorf("order lines %q", o.Lines)
			}
		})
	}
}

func TestRecentLinesBounded(t *testing.T) {
	r := newRecentLines(100, 3)
	for i := range 10000 {
		a := addr("10.0.0.0").As4()
		a[2], a[3] = byte(i>>8), byte(i)
		for k := range 5 {
			r.add(netip.AddrFrom4(a), t0.Add(time.Duration(k)*time.Second), "line")
		}
	}
	if r.len() != 100 || len(r.ents) != 100 {
		t.Fatalf("len %d, entries %d; want 100", r.len(), len(r.ents))
	}
	last := addr("10.0.39.15") // i = 9999
	if got := r.get(last, time.Time{}, 10); len(got) != 3 {
		t.Errorf("get(newest address) = %q, want its 3 newest lines", got)
	}
	if got := r.get(addr("10.0.0.0"), time.Time{}, 10); got != nil {
		t.Errorf("get(evicted address) = %q, want nil", got)
	}
	r.expire(t0.Add(4 * time.Second))
	if r.len() != 0 {
		t.Errorf("len %d after expire, want 0", r.len())
	}
	r.add(last, t0, "again")
	if got := r.take(last, time.Time{}, 10); len(got) != 1 || got[0] != "again" || r.len() != 0 {
		t.Errorf("take = %q, len %d", got, r.len())
	}
}

func TestKeepLine(t *testing.T) {
	long := strings.Repeat("é", 1000)
	got := keepLine(long)
	if len(got) > maxKeptLine+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("keepLine: %d bytes, %q...", len(got), got[:20])
	}
	if keepLine("short") != "short" {
		t.Error("short line changed")
	}
}

// btmpRecords encodes n failed logins of root from ip at t, t+1s... as sshd writes them to
// btmp (glibc x86-64 struct utmp).
func btmpRecords(t time.Time, ip string, n int) []byte {
	var out []byte
	a := addr(ip).As4()
	for i := range n {
		b := make([]byte, 384)
		le := binary.LittleEndian
		le.PutUint16(b[0:], 6) // LOGIN_PROCESS
		le.PutUint32(b[4:], uint32(1000+i))
		copy(b[8:40], "ssh:notty")
		copy(b[44:76], "root")
		copy(b[76:332], ip)
		le.PutUint32(b[340:], uint32(t.Add(time.Duration(i)*time.Second).Unix()))
		copy(b[348:352], a[:])
		out = append(out, b...)
	}
	return out
}

// A line that is no failure costs nothing beyond the filter: no allocation of the jail's own.
// Nor does a failure of an address already tracked, once its lines are kept.
func TestNoAllocationPerLine(t *testing.T) {
	f := loadFilter(t, "sshd", filter.Options{})
	spec := sshSpec(t, "/x")
	spec.MaxRetry, spec.FindTime = 1000, time.Hour
	j, err := New(spec, &fakeBanner{}, Options{Clock: clock.NewFake(t0)})
	mustDo(t, err)
	s := newStream(f, nil, 1<<16, DefaultHealthBlock, t0)
	m := f.NewMatcher()
	fl := &file{}
	miss := strings.TrimSuffix(noise(t0), "\n")
	hit := strings.TrimSuffix(sshLine(t0, "root", "192.0.2.1"), "\n")
	for range 100 { // warm up: the address is tracked and has its lines
		s.process(hit, t0)
		j.flush(fl, s, source.Mark{})
	}
	for _, tc := range []struct{ name, line string }{{"miss", miss}, {"tracked failure", hit}} {
		// Mean allocations over many lines, with fractions: the filter's own amortised
		// allocations make testing.AllocsPerRun's whole numbers flip between two values.
		filterAllocs := allocsPerCall(5000, func() { m.Process(tc.line, t0) })
		jailAllocs := allocsPerCall(5000, func() {
			s.process(tc.line, t0)
			j.flush(fl, s, source.Mark{})
		})
		t.Logf("%s: jail %.2f allocations a line, filter alone %.2f", tc.name, jailAllocs, filterAllocs)
		if jailAllocs > filterAllocs+0.5 {
			t.Errorf("%s: %.1f allocations a line, the filter alone %.1f", tc.name, jailAllocs, filterAllocs)
		}
	}
}

// Two matchers that take whole batches, each on its own stream, and count them in their turn
// count what one stream counts: the same counters, health state and ban orders, with their
// lines, in the same order.
func TestMatchersCountInOrder(t *testing.T) {
	f := loadFilter(t, "sshd", filter.Options{})
	if !f.Independent() {
		t.Fatal("sshd filter not independent: the two matchers are never used")
	}
	var lines []string
	for i := range 20000 {
		at := t0.Add(time.Duration(i) * time.Second)
		switch i % 5 {
		case 0, 3:
			lines = append(lines, strings.TrimSuffix(sshLine(at, "root", fmt.Sprintf("192.0.2.%d", i*7%97)), "\n"))
		case 1:
			lines = append(lines, "no date at all, no failure")
		default:
			lines = append(lines, strings.TrimSuffix(noise(at), "\n"))
		}
	}
	// batches of 1 to 300 lines, as a follower sends them
	rng := rand.New(rand.NewPCG(1, 2))
	var batches [][]source.Line
	for i := 0; i < len(lines); {
		n := min(1+rng.IntN(300), len(lines)-i)
		b := make([]source.Line, n)
		for k := range b {
			b[k] = source.Line{Text: lines[i+k], Read: t0}
		}
		batches = append(batches, b)
		i += n
	}
	type result struct {
		orders       []ban.Order
		st           Status
		h            health
		latest, last time.Time
	}
	const block = 1000
	// slow: the batches come one at a time (most takes get one), else all wait from the start
	// (takes of batchLines lines)
	run := func(two, slow bool) (result, [2]int) {
		banner := &fakeBanner{}
		spec := sshSpec(t, "/nonexistent")
		spec.Filter, spec.MaxRetry, spec.FindTime = f, 3, 48*time.Hour
		j, err := New(spec, banner, Options{Clock: clock.NewFake(t0.Add(time.Duration(len(lines)) * time.Second))})
		if err != nil {
			t.Fatal(err)
		}
		in := make(chan source.Batch, len(batches))
		feed := func() {
			for _, b := range batches {
				in <- source.Batch{Lines: slices.Clone(b)}
			}
			close(in)
		}
		if slow {
			in = make(chan source.Batch)
			go feed()
		} else {
			feed()
		}
		q := newBatchQueue(in, false)
		fl := &file{}
		s := newStream(f, nil, 1<<16, block, t0)
		var counted [2]int
		if !two {
			counted[0] = j.match(fl, s, q, nil)
		} else {
			var wg sync.WaitGroup
			for k := range counted {
				wg.Add(1)
				go func() {
					defer wg.Done()
					counted[k] = j.match(fl, s, q, newStream(f, nil, 1<<16, noBlock, t0))
				}()
			}
			wg.Wait()
		}
		st := j.Status()
		st.Files, st.Tracked = nil, 0
		return result{orders: banner.got(), st: st, h: fl.h, latest: s.latest, last: s.first}, counted
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	want, _ := run(false, false)
	if len(want.orders) == 0 || want.st.LinesRead != int64(len(lines)) {
		t.Fatalf("one stream: %d orders, %d lines read", len(want.orders), want.st.LinesRead)
	}
	// Which matcher takes which batch depends on the scheduler: run until both took some.
	both := false
	for try := 0; try < 20 && (!both || try < 4); try++ {
		slow := try%2 == 1
		got, counted := run(true, slow)
		t.Logf("try %d (slow %v): batches counted by each matcher %v", try, slow, counted)
		both = both || counted[0] > 0 && counted[1] > 0
		if !reflect.DeepEqual(got.st, want.st) {
			t.Fatalf("status %+v, one stream %+v", got.st, want.st)
		}
		if !reflect.DeepEqual(got.orders, want.orders) {
			t.Fatalf("%d orders, one stream %d (or they differ)", len(got.orders), len(want.orders))
		}
		// Health blocks close at the first count that fills them, so a block can be up to a
		// batch longer; the rest of the health state is exact.
		h1, h2 := want.h, got.h
		h1.block, h1.last, h2.block, h2.last = healthBlock{}, healthBlock{}, healthBlock{}, healthBlock{}
		if !reflect.DeepEqual(h1, h2) || !got.latest.Equal(want.latest) || !got.last.Equal(want.last) {
			t.Fatalf("health %+v latest %v first %v, one stream %+v %v %v", got.h, got.latest, got.last, want.h, want.latest, want.last)
		}
		if got.h.last.Lines < block || got.h.last.Lines > block+batchLines+300 {
			t.Fatalf("last health block of %d lines", got.h.last.Lines)
		}
	}
	if !both {
		t.Error("one matcher took every batch in every try: the two were never compared")
	}
}

// allocsPerCall returns the mean number of heap allocations of one call of f, over n calls
// after a warm-up call, on one P (as testing.AllocsPerRun does), with its fraction.
func allocsPerCall(n int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n)
}
