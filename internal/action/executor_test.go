package action

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeBackend records calls and checks that they never overlap. do, when set,
// decides what a call does ("start", "ban 192.0.2.1", "unban ...", "stop").
type fakeBackend struct {
	do func(ctx context.Context, call string) error

	mu        sync.Mutex
	calls     []string
	active    atomic.Int32
	maxActive atomic.Int32
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Name() string { return "fake" }

func (f *fakeBackend) Start(ctx context.Context) error { return f.enter(ctx, "start") }
func (f *fakeBackend) Stop(ctx context.Context) error  { return f.enter(ctx, "stop") }
func (f *fakeBackend) Ban(ctx context.Context, t Target) error {
	return f.enter(ctx, "ban "+t.String())
}
func (f *fakeBackend) Unban(ctx context.Context, t Target) error {
	return f.enter(ctx, "unban "+t.String())
}

func (f *fakeBackend) enter(ctx context.Context, call string) error {
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for m := f.maxActive.Load(); n > m && !f.maxActive.CompareAndSwap(m, n); m = f.maxActive.Load() {
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	if f.do != nil {
		return f.do(ctx, call)
	}
	return nil
}

func (f *fakeBackend) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func target(s string) Target { return AddrTarget(netip.MustParseAddr(s)) }

func ban(s string) Op   { return Op{Kind: OpBan, Target: target(s)} }
func unban(s string) Op { return Op{Kind: OpUnban, Target: target(s)} }

// harness runs an Executor on its own goroutine and collects its Results.
type harness struct {
	t       *testing.T
	e       *Executor
	results chan Result
	cancel  context.CancelFunc
	runErr  chan error
}

func newHarness(t *testing.T, b Backend, opts ExecutorOptions, submitFirst ...Op) *harness {
	t.Helper()
	h := &harness{t: t, results: make(chan Result, 100), runErr: make(chan error, 1)}
	opts.OnResult = func(r Result) { h.results <- r }
	e, err := NewExecutor(b, nil, opts)
	if err != nil {
		t.Fatalf("NewExecutor: %v", err)
	}
	h.e = e
	for _, op := range submitFirst {
		if err := e.Submit(op); err != nil {
			t.Fatalf("Submit(%v) before Run: %v", op, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() { h.runErr <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.runErr:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) next() Result {
	h.t.Helper()
	select {
	case r := <-h.results:
		return r
	case <-time.After(5 * time.Second):
		h.t.Fatal("no Result within 5s")
		return Result{}
	}
}

// stop cancels Run and returns its error.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.runErr:
		h.runErr <- err // for Cleanup
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return within 5s of cancel")
		return nil
	}
}

func TestExecutorRunsInOrder(t *testing.T) {
	b := &fakeBackend{}
	h := newHarness(t, b, ExecutorOptions{}, ban("192.0.2.1"), unban("192.0.2.1"))
	if err := h.e.Submit(ban("2001:db8::1")); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	var got []string
	for range 3 {
		r := h.next()
		if r.Err != nil || r.Late {
			t.Errorf("Result %+v, want success", r)
		}
		got = append(got, fmt.Sprintf("%v %v", r.Op.Kind, r.Op.Target))
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	want := []string{"ban 192.0.2.1", "unban 192.0.2.1", "ban 2001:db8::1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	wantCalls := append(append([]string{"start"}, want...), "stop")
	if diff := cmp.Diff(wantCalls, b.recorded()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
	if err := h.e.Submit(ban("192.0.2.9")); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Run = %v, want ErrClosed", err)
	}
}

func TestExecutorQueueFull(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	b := &fakeBackend{do: func(ctx context.Context, call string) error {
		if call == "ban 192.0.2.1" {
			close(entered)
			<-release
		}
		return nil
	}}
	h := newHarness(t, b, ExecutorOptions{QueueSize: 2})
	if err := h.e.Submit(ban("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	<-entered // the first Op left the queue and blocks the backend
	for _, op := range []Op{ban("192.0.2.2"), ban("192.0.2.3")} {
		if err := h.e.Submit(op); err != nil {
			t.Fatalf("Submit(%v) with room in the queue: %v", op, err)
		}
	}
	done := make(chan error)
	go func() { done <- h.e.Submit(ban("192.0.2.4")) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrQueueFull) {
			t.Errorf("Submit on a full queue = %v, want ErrQueueFull", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Submit on a full queue blocked")
	}
	if n := h.e.Pending(); n != 2 {
		t.Errorf("Pending() = %d, want 2", n)
	}
	close(release)
	for range 3 {
		if r := h.next(); r.Err != nil {
			t.Errorf("Result %+v, want success", r)
		}
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// A call that ignores its context and overruns is reported at the deadline;
// its real outcome follows as a Late result, and the next call waits for it.
func TestExecutorSlowCall(t *testing.T) {
	release := make(chan struct{})
	b := &fakeBackend{do: func(ctx context.Context, call string) error {
		if call == "ban 192.0.2.1" {
			<-release // like go-iptables: no way to interrupt
			return errors.New("late failure")
		}
		return nil
	}}
	const timeout = 100 * time.Millisecond
	h := newHarness(t, b, ExecutorOptions{CallTimeout: timeout}, ban("192.0.2.1"), ban("192.0.2.2"))

	start := time.Now()
	r := h.next()
	if r.Op != ban("192.0.2.1") || r.Late || !errors.Is(r.Err, ErrCallTimeout) || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Fatalf("first Result = %+v, want a timeout of ban 192.0.2.1", r)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("timeout reported after %v, want about %v", el, timeout)
	}
	close(release)

	r = h.next()
	if r.Op != ban("192.0.2.1") || !r.Late || r.Err == nil || r.Err.Error() != "late failure" {
		t.Errorf("second Result = %+v, want the late failure of ban 192.0.2.1", r)
	}
	r = h.next()
	if r.Op != ban("192.0.2.2") || r.Late || r.Err != nil {
		t.Errorf("third Result = %+v, want ban 192.0.2.2 done", r)
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
	if m := b.maxActive.Load(); m != 1 {
		t.Errorf("%d backend calls overlapped, want 1 at a time", m)
	}
}

// A backend that stays stuck: the next Op is not run (and says so within its
// own timeout), Stop is not called while the stuck call runs, and Run still
// returns.
func TestExecutorWedgedBackend(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	b := &fakeBackend{do: func(ctx context.Context, call string) error {
		if call == "ban 192.0.2.1" {
			<-release
		}
		return nil
	}}
	h := newHarness(t, b, ExecutorOptions{CallTimeout: 50 * time.Millisecond}, ban("192.0.2.1"), ban("192.0.2.2"))
	if r := h.next(); !errors.Is(r.Err, ErrCallTimeout) {
		t.Errorf("first Result = %+v, want ErrCallTimeout", r)
	}
	if r := h.next(); r.Op != ban("192.0.2.2") || !errors.Is(r.Err, ErrCallTimeout) {
		t.Errorf("second Result = %+v, want ban 192.0.2.2 not run (ErrCallTimeout)", r)
	}
	err := h.stop()
	if !errors.Is(err, ErrCallTimeout) {
		t.Errorf("Run = %v, want a stop error wrapping ErrCallTimeout", err)
	}
	if diff := cmp.Diff([]string{"start", "ban 192.0.2.1"}, b.recorded()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}

// Cancelling Run interrupts the call in flight (through its context), reports
// the queued Ops as not run, and stops the backend with a fresh context.
func TestExecutorCancel(t *testing.T) {
	entered := make(chan struct{})
	var stopCtxErr error
	b := &fakeBackend{do: func(ctx context.Context, call string) error {
		switch call {
		case "ban 192.0.2.1":
			close(entered)
			<-ctx.Done()
			return fmt.Errorf("ban interrupted: %w", ctx.Err())
		case "stop":
			stopCtxErr = ctx.Err()
		}
		return nil
	}}
	h := newHarness(t, b, ExecutorOptions{}, ban("192.0.2.1"), ban("192.0.2.2"), unban("192.0.2.3"))
	<-entered
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	close(h.results) // Run has returned: no more Results
	got := map[Op]error{}
	for r := range h.results {
		if r.Late {
			continue // the interrupted call may also report its own return late
		}
		if _, dup := got[r.Op]; dup {
			t.Errorf("two Results for %v", r.Op)
		}
		got[r.Op] = r.Err
	}
	if err := got[ban("192.0.2.1")]; !errors.Is(err, context.Canceled) {
		t.Errorf("in-flight ban: %v, want context.Canceled", err)
	}
	for _, op := range []Op{ban("192.0.2.2"), unban("192.0.2.3")} {
		if err := got[op]; !errors.Is(err, ErrClosed) {
			t.Errorf("queued %v: %v, want ErrClosed", op, err)
		}
	}
	calls := b.recorded()
	if calls[len(calls)-1] != "stop" {
		t.Errorf("calls = %q, want Stop last", calls)
	}
	if stopCtxErr != nil {
		t.Errorf("Stop got a done context: %v", stopCtxErr)
	}
	if err := h.e.Submit(ban("192.0.2.4")); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after cancel = %v, want ErrClosed", err)
	}
	if err := h.e.Run(context.Background()); !errors.Is(err, ErrRunTwice) {
		t.Errorf("second Run = %v, want ErrRunTwice", err)
	}
}

func TestExecutorStartFails(t *testing.T) {
	startErr := errors.New("no iptables")
	b := &fakeBackend{do: func(ctx context.Context, call string) error {
		if call == "start" {
			return startErr
		}
		return nil
	}}
	var results []Result
	e, err := NewExecutor(b, nil, ExecutorOptions{OnResult: func(r Result) { results = append(results, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Submit(ban("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(t.Context()); !errors.Is(err, startErr) {
		t.Errorf("Run = %v, want the Start error", err)
	}
	if len(results) != 1 || !errors.Is(results[0].Err, ErrClosed) || !errors.Is(results[0].Err, startErr) {
		t.Errorf("results = %+v, want the queued ban not run because of the Start error", results)
	}
	if diff := cmp.Diff([]string{"start", "stop"}, b.recorded()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
	if err := e.Submit(ban("192.0.2.2")); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after a failed Run = %v, want ErrClosed", err)
	}
}

func TestExecutorSubmitChecks(t *testing.T) {
	e, err := NewExecutor(&fakeBackend{}, nil, ExecutorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Submit(Op{Kind: OpBan, Target: Target{Prefix: netip.MustParsePrefix("192.0.2.1/24")}}); !errors.Is(err, ErrInvalidTarget) {
		t.Errorf("Submit(bad prefix) = %v, want ErrInvalidTarget", err)
	}
	if err := e.Submit(Op{Kind: 9, Target: target("192.0.2.1")}); err == nil {
		t.Error("Submit(unknown kind) = nil, want an error")
	}
	if _, err := NewExecutor(nil, nil, ExecutorOptions{}); err == nil {
		t.Error("NewExecutor(nil backend) = nil error")
	}
	if _, err := NewExecutor(&fakeBackend{}, nil, ExecutorOptions{QueueSize: -1}); err == nil {
		t.Error("NewExecutor(QueueSize -1) = nil error")
	}
}

// Many jails submitting at once: every accepted Op gets exactly one Result.
func TestExecutorConcurrentSubmit(t *testing.T) {
	b := &fakeBackend{}
	h := newHarness(t, b, ExecutorOptions{QueueSize: 8})
	var accepted atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				err := h.e.Submit(ban(fmt.Sprintf("10.0.%d.%d", g, i+1)))
				switch {
				case err == nil:
					accepted.Add(1)
				case !errors.Is(err, ErrQueueFull):
					t.Errorf("Submit: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	for range accepted.Load() {
		if r := h.next(); r.Err != nil {
			t.Errorf("Result %+v", r)
		}
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
	if m := b.maxActive.Load(); m != 1 {
		t.Errorf("%d backend calls overlapped", m)
	}
}

// OnStart reports Start's outcome once, before any Op runs, and (on failure)
// before the backend is stopped again.
func TestExecutorOnStart(t *testing.T) {
	startErr := errors.New("no iptables")
	tests := []struct {
		name     string
		startErr error
		want     []string // backend calls and "onstart <err>" in order
	}{
		{"ok", nil, []string{"start", "onstart <nil>", "ban 192.0.2.1", "stop"}},
		{"fails", startErr, []string{"start", "onstart " + fmt.Sprint(startErr), "stop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBackend{do: func(ctx context.Context, call string) error {
				if call == "start" {
					return tt.startErr
				}
				return nil
			}}
			var (
				mu    sync.Mutex
				calls int
				gotOp = make(chan struct{}, 1)
			)
			e, err := NewExecutor(b, nil, ExecutorOptions{
				OnStart: func(err error) {
					mu.Lock()
					defer mu.Unlock()
					calls++
					b.mu.Lock()
					b.calls = append(b.calls, fmt.Sprintf("onstart %v", errors.Unwrap(err)))
					b.mu.Unlock()
				},
				OnResult: func(Result) { gotOp <- struct{}{} },
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Submit(ban("192.0.2.1")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			if tt.startErr == nil { // else Run ends by itself
				<-gotOp
				cancel()
			}
			defer cancel()
			if err := <-done; !errors.Is(err, tt.startErr) || (tt.startErr == nil) != (err == nil) {
				t.Errorf("Run = %v, want %v", err, tt.startErr)
			}
			if err := e.Run(t.Context()); !errors.Is(err, ErrRunTwice) {
				t.Errorf("second Run = %v, want ErrRunTwice", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != 1 {
				t.Errorf("OnStart called %d times, want 1", calls)
			}
			if diff := cmp.Diff(tt.want, b.recorded()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// batchBackend is a fakeBackend that also bans in batches; a target 192.0.2.66 fails alone.
type batchBackend struct{ fakeBackend }

func (f *batchBackend) BanBatch(ctx context.Context, ts []Target) []error {
	var names []string
	errs := make([]error, len(ts))
	for i, t := range ts {
		names = append(names, t.String())
		if t.String() == "192.0.2.66" {
			errs[i] = errors.New("refused")
		}
	}
	f.enter(ctx, "batch "+strings.Join(names, " "))
	return errs
}

// Bans queued together go in one BanBatch call, each with its own Result in queue order; an
// unban queued among them runs after the bans before it and before those after it.
func TestExecutorBatchesQueuedBans(t *testing.T) {
	b := &batchBackend{}
	h := newHarness(t, b, ExecutorOptions{},
		ban("192.0.2.1"), ban("192.0.2.2"), ban("192.0.2.66"), unban("192.0.2.9"), ban("192.0.2.3"), ban("192.0.2.4"))
	var got []string
	for range 6 {
		r := h.next()
		s := fmt.Sprintf("%v %v", r.Op.Kind, r.Op.Target)
		if r.Err != nil {
			s += " err"
		}
		got = append(got, s)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	want := []string{"ban 192.0.2.1", "ban 192.0.2.2", "ban 192.0.2.66 err", "unban 192.0.2.9", "ban 192.0.2.3", "ban 192.0.2.4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	wantCalls := []string{"start", "batch 192.0.2.1 192.0.2.2 192.0.2.66", "unban 192.0.2.9", "batch 192.0.2.3 192.0.2.4", "stop"}
	if diff := cmp.Diff(wantCalls, b.recorded()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}
