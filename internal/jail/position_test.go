package jail

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/clock"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/store"
)

var _ Positions = (*store.Store)(nil)

// fakePositions keeps positions in memory. Its saves are committed at once, fail with saveErr,
// or, with hold, wait for release.
type fakePositions struct {
	mu        sync.Mutex
	saved     map[string]store.Position
	saves     int // calls of SavePositionAsync
	lookupErr error
	saveErr   error
	hold      bool
	held      []heldSave
}

type heldSave struct {
	path string
	p    store.Position
	done func(error)
}

func newFakePositions() *fakePositions {
	return &fakePositions{saved: map[string]store.Position{}}
}

func (f *fakePositions) Position(path string) (store.Position, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return store.Position{}, false, f.lookupErr
	}
	p, ok := f.saved[path]
	return p, ok, nil
}

func (f *fakePositions) SavePositionAsync(path string, p store.Position, done func(error)) {
	f.mu.Lock()
	f.saves++
	if f.hold {
		f.held = append(f.held, heldSave{path, p, done})
		f.mu.Unlock()
		return
	}
	err := f.saveErr
	if err == nil {
		f.saved[path] = p
	}
	f.mu.Unlock()
	if done != nil {
		done(err)
	}
}

// release commits the held saves.
func (f *fakePositions) release() {
	f.mu.Lock()
	held := f.held
	f.held, f.hold = nil, false
	for _, s := range held {
		f.saved[s.path] = s.p
	}
	f.mu.Unlock()
	for _, s := range held {
		s.done(nil)
	}
}

func (f *fakePositions) get(path string) (store.Position, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.saved[path]
	return p, ok
}

func (f *fakePositions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saves
}

// checkPosition checks that p is the position of the file now at path at offset off: the same
// device and inode, a head the file starts with.
func checkPosition(t *testing.T, path string, p store.Position, off int64) {
	t.Helper()
	checkPositionHead(t, path, p, off, int(min(fileSize(t, path), store.MaxHead)))
}

// checkPositionHead is checkPosition with the length of the head: the first record of a btmp
// file.
func checkPositionHead(t *testing.T, path string, p store.Position, off int64, wantHead int) {
	t.Helper()
	f, err := os.Open(path)
	mustDo(t, err)
	defer f.Close()
	fi, err := f.Stat()
	mustDo(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	same, err := p.SameHead(f)
	mustDo(t, err)
	if p.Offset != off || p.Dev != uint64(st.Dev) || p.Inode != uint64(st.Ino) || !same || p.HeadLen != wantHead {
		t.Errorf("position %+v; want offset %d, dev %d, inode %d, head of %d bytes (same head: %v)",
			p, off, st.Dev, st.Ino, wantHead, same)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	mustDo(t, err)
	return fi.Size()
}

// again is a second harness on h's directory: a restarted daemon.
func (h *harness) again() *harness {
	return &harness{t: h.t, dir: h.dir, clk: clock.NewFake(t0), banner: &fakeBanner{}}
}

// A jail stopped and started again reads on from where it stopped: the failures of the first
// run are not counted again (three would make a ban), and those written while it was down are.
func TestPositionsResume(t *testing.T) {
	pos := newFakePositions()
	h := newHarness(t)
	a := "192.0.2.30"
	h.write("auth.log", sshLine(t0.Add(-3*time.Minute), "root", a)+noise(t0))
	h.start(sshSpec(t, "auth.log"), Options{Positions: pos}) // no position yet: the backlog
	h.write("auth.log", sshLine(t0.Add(-2*time.Minute), "root", a))
	h.waitLines(3)
	h.stop()
	p, ok := pos.get(h.path("auth.log"))
	if !ok {
		t.Fatal("no position saved when the jail stopped")
	}
	checkPosition(t, h.path("auth.log"), p, fileSize(t, h.path("auth.log")))

	h.write("auth.log", sshLine(t0.Add(-time.Minute), "root", a)) // while stopped
	h2 := h.again()
	h2.start(sshSpec(t, "auth.log"), Options{Positions: pos})
	h2.write("auth.log", noise(t0))
	st := h2.waitLines(2)
	if st.LinesRead != 2 || st.Failures != 1 || len(h2.banner.got()) != 0 {
		t.Errorf("after the restart: LinesRead %d, Failures %d, orders %v; want 2, 1, none", st.LinesRead, st.Failures, h2.banner.targets())
	}
	h2.write("auth.log", sshLine(t0, "root", a)+sshLine(t0, "root", a))
	h2.waitLines(4)
	if diff := cmp.Diff([]string{a + "/32"}, h2.banner.targets()); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
	h2.stop()
	p, _ = pos.get(h.path("auth.log"))
	checkPosition(t, h.path("auth.log"), p, fileSize(t, h.path("auth.log")))
}

// A log rotated while the jail was down is read from its start, however long it is.
func TestPositionsRotatedWhileStopped(t *testing.T) {
	for _, mode := range []string{"rename and create", "rewritten in place"} {
		t.Run(mode, func(t *testing.T) {
			pos := newFakePositions()
			h := newHarness(t)
			h.write("auth.log", "")
			h.start(sshSpec(t, "auth.log"), Options{Positions: pos})
			h.write("auth.log", repeat(5, func(i int) string { return noise(t0) }))
			h.waitLines(5)
			h.stop()
			if _, ok := pos.get(h.path("auth.log")); !ok {
				t.Fatal("no position saved")
			}

			b := "192.0.2.31"
			fresh := repeat(3, func(i int) string {
				return sshLinePort(t0.Add(-time.Duration(i)*time.Second), "root", b, 2000+i)
			}) + repeat(5, func(int) string { return noise(t0) })
			switch mode {
			case "rename and create":
				mustDo(t, os.Rename(h.path("auth.log"), h.path("auth.log.1")))
				h.write("auth.log", fresh)
			case "rewritten in place":
				mustDo(t, os.Truncate(h.path("auth.log"), 0))
				h.write("auth.log", fresh)
			}
			h2 := h.again()
			h2.start(sshSpec(t, "auth.log"), Options{Positions: pos})
			st := h2.waitLines(8)
			if diff := cmp.Diff([]string{b + "/32"}, h2.banner.targets()); diff != "" || st.LinesRead != 8 {
				t.Errorf("LinesRead %d (want 8), orders (-want +got):\n%s", st.LinesRead, diff)
			}
			h2.stop()
			p, _ := pos.get(h.path("auth.log"))
			checkPosition(t, h.path("auth.log"), p, int64(len(fresh)))
		})
	}
}

// Positions are saved at most every PositionInterval, only when they changed, and once more
// when Run returns.
func TestPositionsSavedPeriodically(t *testing.T) {
	pos := newFakePositions()
	h := newHarness(t)
	h.write("auth.log", "")
	spec := sshSpec(t, "auth.log")
	spec.MaxRetry = 100 // no order: a mark is published with its counts
	h.start(spec, Options{Positions: pos, PositionInterval: 3 * time.Second})
	path := h.path("auth.log")
	step := func() {
		h.t.Helper()
		h.clk.Advance(3 * time.Second)
		mustDo(t, h.clk.BlockUntilContext(t.Context(), 1))
	}

	h.write("auth.log", repeat(4, func(int) string { return sshLine(t0, "root", "192.0.2.32") }))
	h.waitLines(4)
	if n := pos.count(); n != 0 {
		t.Fatalf("%d saves before PositionInterval", n)
	}
	step()
	if n := pos.count(); n != 1 {
		t.Fatalf("%d saves after PositionInterval, want 1", n)
	}
	p, _ := pos.get(path)
	checkPosition(t, path, p, fileSize(t, path))
	step()
	if n := pos.count(); n != 1 {
		t.Errorf("%d saves after an interval without lines, want still 1", n)
	}
	h.write("auth.log", noise(t0))
	h.waitLines(5)
	step()
	p, _ = pos.get(path)
	if n := pos.count(); n != 2 {
		t.Errorf("%d saves, want 2", n)
	}
	checkPosition(t, path, p, fileSize(t, path))
	// The glob interval's ticks go on as before.
	h.tick(0)

	h.write("auth.log", noise(t0)) // saved only when Run returns
	h.waitLines(6)
	h.stop()
	p, _ = pos.get(path)
	if n := pos.count(); n != 3 {
		t.Errorf("%d saves after stop, want 3", n)
	}
	checkPosition(t, path, p, fileSize(t, path))
}

// Run returns only once the last positions are committed, or after positionSaveWait.
func TestPositionsFinalSaveWaited(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release bool // else the store never answers
	}{{"committed", true}, {"store stuck", false}} {
		t.Run(tc.name, func(t *testing.T) {
			pos := newFakePositions()
			pos.hold = true
			h := newHarness(t)
			h.write("auth.log", "")
			h.start(sshSpec(t, "auth.log"), Options{Positions: pos, PositionInterval: time.Hour})
			h.write("auth.log", noise(t0))
			h.waitLines(1)
			h.cancel()
			h.cancel = nil
			// Run's timer and the one bounding its wait for the save.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := h.clk.BlockUntilContext(ctx, 2); err != nil {
				t.Fatalf("Run is not waiting for the save: %v", err)
			}
			select {
			case <-h.done:
				t.Fatal("Run returned before the position was committed")
			default:
			}
			if tc.release {
				pos.release()
			} else {
				h.clk.Advance(positionSaveWait)
			}
			select {
			case err := <-h.done:
				mustDo(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			_, ok := pos.get(h.path("auth.log"))
			if ok != tc.release {
				t.Errorf("position saved: %v, want %v", ok, tc.release)
			}
		})
	}
}

// The position after a line that made a ban order is saved only once the order is handed over:
// a store that shares its queue with the ban records never commits it before the ban.
func TestPositionsAfterOrders(t *testing.T) {
	pos := newFakePositions()
	h := newHarness(t)
	h.write("auth.log", "")
	path := h.path("auth.log")
	var during []int64
	h.banner.hook = func(ban.Order) {
		// Run saves now, while the order is being handed over.
		h.clk.Advance(time.Second)
		mustDo(t, h.clk.BlockUntilContext(t.Context(), 1))
		p, _ := pos.get(path)
		during = append(during, p.Offset)
	}
	h.start(sshSpec(t, "auth.log"), Options{Positions: pos, PositionInterval: time.Second})
	first := noise(t0)
	h.write("auth.log", first)
	h.waitLines(1)
	h.write("auth.log", repeat(3, func(int) string { return sshLine(t0, "root", "192.0.2.39") }))
	h.waitLines(4)
	h.stop()
	if diff := cmp.Diff([]int64{int64(len(first))}, during); diff != "" {
		t.Errorf("positions saved while the order was handed over (-want +got):\n%s", diff)
	}
	p, _ := pos.get(path)
	checkPosition(t, path, p, fileSize(t, path))
}

// A failed save is logged (not every time), reported in Status, retried, and never stops the
// jail.
func TestPositionsSaveErrors(t *testing.T) {
	pos := newFakePositions()
	pos.saveErr = errors.New("disk full")
	var logs syncBuffer
	h := newHarness(t)
	h.write("auth.log", "")
	spec := sshSpec(t, "auth.log")
	spec.MaxRetry = 100
	h.start(spec, Options{Positions: pos, PositionInterval: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for i := range 3 {
		h.write("auth.log", sshLine(t0, "root", "192.0.2.33"))
		h.waitLines(int64(i + 1))
		h.clk.Advance(time.Second)
		mustDo(t, h.clk.BlockUntilContext(t.Context(), 1))
	}
	st := h.j.Status()
	if !hasError(st, "3 position saves failed") || !hasError(st, "disk full") || st.Failures != 3 {
		t.Errorf("status: Errors %q, Failures %d", st.Errors, st.Failures)
	}
	if n := strings.Count(logs.String(), "cannot save log position"); n != 1 {
		t.Errorf("%d error logs for 3 failed saves within a minute, want 1:\n%s", n, logs.String())
	}
	// The store recovers: the position failed last is saved at the next interval, without a
	// new line.
	pos.mu.Lock()
	pos.saveErr = nil
	pos.mu.Unlock()
	h.clk.Advance(time.Second)
	mustDo(t, h.clk.BlockUntilContext(t.Context(), 1))
	p, ok := pos.get(h.path("auth.log"))
	if !ok {
		t.Fatal("position not saved after the store recovered")
	}
	checkPosition(t, h.path("auth.log"), p, fileSize(t, h.path("auth.log")))
}

// A position that cannot be read is logged, and the file is read as without one: the backlog.
func TestPositionsLookupError(t *testing.T) {
	pos := newFakePositions()
	pos.lookupErr = errors.New("database locked")
	var logs syncBuffer
	h := newHarness(t)
	h.write("auth.log", repeat(3, func(int) string { return sshLine(t0, "root", "192.0.2.34") }))
	h.start(sshSpec(t, "auth.log"), Options{Positions: pos,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	h.waitLines(3)
	if diff := cmp.Diff([]string{"192.0.2.34/32"}, h.banner.targets()); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "database locked") {
		t.Errorf("lookup error not logged:\n%s", logs.String())
	}
}

// Lines of the old file read after those of the new one (a writer still appending to the
// renamed file) do not move the position back to the old file.
func TestPositionsRotationWhileRunning(t *testing.T) {
	pos := newFakePositions()
	h := newHarness(t)
	h.write("auth.log", "")
	spec := sshSpec(t, "auth.log")
	spec.MaxRetry = 100
	h.start(spec, Options{Positions: pos, PositionInterval: time.Hour})
	h.write("auth.log", noise(t0))
	h.waitLines(1)
	w, err := os.OpenFile(h.path("auth.log"), os.O_WRONLY|os.O_APPEND, 0)
	mustDo(t, err)
	defer w.Close()
	mustDo(t, os.Rename(h.path("auth.log"), h.path("auth.log.1")))
	h.write("auth.log", noise(t0)+noise(t0))
	h.waitLines(3)
	// Read during RotateWait, which runs on the fake clock: it never ends here.
	_, err = w.WriteString(noise(t0) + noise(t0) + noise(t0))
	mustDo(t, err)
	h.waitLines(6)
	h.stop()
	p, _ := pos.get(h.path("auth.log"))
	checkPosition(t, h.path("auth.log"), p, fileSize(t, h.path("auth.log")))
}

// With the real store: the position is committed when Run returns, and the next jail resumes
// from it.
func TestPositionsStore(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "logjail.db"), store.Options{})
	mustDo(t, err)
	defer st.Close()
	h := newHarness(t)
	h.write("auth.log", sshLine(t0, "root", "192.0.2.35")+sshLine(t0, "root", "192.0.2.35"))
	h.start(sshSpec(t, "auth.log"), Options{Positions: st})
	h.waitLines(2)
	h.stop()
	p, ok, err := st.Position(h.path("auth.log"))
	mustDo(t, err)
	if !ok {
		t.Fatal("no position in the store after Run returned")
	}
	checkPosition(t, h.path("auth.log"), p, fileSize(t, h.path("auth.log")))

	h.write("auth.log", sshLine(t0, "root", "192.0.2.35"))
	h2 := h.again()
	h2.start(sshSpec(t, "auth.log"), Options{Positions: st})
	h2.write("auth.log", noise(t0))
	if s := h2.waitLines(2); s.LinesRead != 2 || len(h2.banner.got()) != 0 {
		t.Errorf("after the restart: LinesRead %d, orders %v; want 2, none", s.LinesRead, h2.banner.targets())
	}
}

// btmp files resume too, on record boundaries.
func TestPositionsBtmp(t *testing.T) {
	pos := newFakePositions()
	h := newHarness(t)
	mustDo(t, os.WriteFile(h.path("btmp"), btmpRecords(t0.Add(-time.Minute), "192.0.2.36", 2), 0o600))
	spec := Spec{Name: "btmp", Filter: loadFilter(t, "btmp", filter.Options{}), FilterName: "btmp",
		LogPaths: []string{"btmp"}, Backend: "polling", MaxRetry: 3, FindTime: 10 * time.Minute}
	h.start(spec, Options{Positions: pos})
	h.waitLines(2)
	h.stop()
	p, ok := pos.get(h.path("btmp"))
	if !ok {
		t.Fatal("no position saved")
	}
	checkPositionHead(t, h.path("btmp"), p, 2*384, 384)

	h.write("btmp", string(btmpRecords(t0, "192.0.2.36", 1)))
	h2 := h.again()
	spec.LogPaths = []string{"btmp"}
	h2.start(spec, Options{Positions: pos})
	h2.write("btmp", string(btmpRecords(t0, "192.0.2.37", 1)))
	if s := h2.waitLines(2); s.LinesRead != 2 || len(h2.banner.got()) != 0 {
		t.Errorf("after the restart: LinesRead %d, orders %v; want 2, none", s.LinesRead, h2.banner.targets())
	}
	h2.stop()
	p, _ = pos.get(h.path("btmp"))
	checkPositionHead(t, h.path("btmp"), p, 4*384, 384)
}

// Without Positions nothing changes: the backlog is read at every start.
func TestNoPositions(t *testing.T) {
	h := newHarness(t)
	h.write("auth.log", repeat(2, func(int) string { return sshLine(t0, "root", "192.0.2.38") }))
	h.start(sshSpec(t, "auth.log"), Options{})
	h.waitLines(2)
	h.stop()
	h2 := h.again()
	h2.start(sshSpec(t, "auth.log"), Options{})
	if s := h2.waitLines(2); s.LinesRead != 2 {
		t.Errorf("LinesRead %d, want the backlog's 2", s.LinesRead)
	}
}

// syncBuffer collects a logger's output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
