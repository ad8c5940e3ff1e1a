package action

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeKeeper is a fakeBackend that also implements Keeper and Lister; its
// List returns what it was told (or fails through do("list")).
type fakeKeeper struct {
	fakeBackend
	listed []Target
}

var (
	_ Keeper = (*fakeKeeper)(nil)
	_ Lister = (*fakeKeeper)(nil)
)

func (f *fakeKeeper) StartKeep(ctx context.Context) error { return f.enter(ctx, "startkeep") }
func (f *fakeKeeper) StopKeep(ctx context.Context) error  { return f.enter(ctx, "stopkeep") }
func (f *fakeKeeper) List(ctx context.Context) ([]Target, error) {
	if err := f.enter(ctx, "list"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.listed), nil
}

func ptr[T any](v T) *T { return &v }

var listOp = Op{Kind: OpList}

// Which of Start/StartKeep and Stop/StopKeep Run calls, for each option, with
// a Keeper and with a plain Backend.
func TestExecutorKeepLifeCycle(t *testing.T) {
	tests := []struct {
		name        string
		opts        ExecutorOptions
		plain       bool // a Backend that is not a Keeper
		setKeep     *bool
		want        []string
		wantCanKeep bool
	}{
		{"default", ExecutorOptions{}, false, nil, []string{"start", "ban 192.0.2.1", "stop"}, true},
		{"keep both", ExecutorOptions{KeepOnStart: true, KeepOnStop: true}, false, nil, []string{"startkeep", "ban 192.0.2.1", "stopkeep"}, true},
		{"adopt, then remove", ExecutorOptions{KeepOnStart: true}, false, nil, []string{"startkeep", "ban 192.0.2.1", "stop"}, true},
		{"fresh, then keep", ExecutorOptions{KeepOnStop: true}, false, nil, []string{"start", "ban 192.0.2.1", "stopkeep"}, true},
		{"keep, then jail removed", ExecutorOptions{KeepOnStart: true, KeepOnStop: true}, false, ptr(false), []string{"startkeep", "ban 192.0.2.1", "stop"}, true},
		{"SetKeepOnStop(true)", ExecutorOptions{}, false, ptr(true), []string{"start", "ban 192.0.2.1", "stopkeep"}, true},
		{"not a Keeper", ExecutorOptions{KeepOnStart: true, KeepOnStop: true}, true, nil, []string{"start", "ban 192.0.2.1", "stop"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &fakeKeeper{}
			var b Backend = k
			if tt.plain {
				b = &k.fakeBackend
			}
			h := newHarness(t, b, tt.opts, ban("192.0.2.1"))
			if got := h.e.CanKeep(); got != tt.wantCanKeep {
				t.Errorf("CanKeep() = %v, want %v", got, tt.wantCanKeep)
			}
			if r := h.next(); r.Err != nil {
				t.Errorf("Result %+v", r)
			}
			if tt.setKeep != nil {
				h.e.SetKeepOnStop(*tt.setKeep)
			}
			if err := h.stop(); err != nil {
				t.Errorf("Run = %v", err)
			}
			if diff := cmp.Diff(tt.want, k.recorded()); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
		})
	}
}

// A failed StartKeep is followed by StopKeep, whatever KeepOnStop says: a
// start that failed must not lift the bans it found.
func TestExecutorStartKeepFails(t *testing.T) {
	startErr := errors.New("no parent chain")
	for _, keepOnStop := range []bool{false, true} {
		t.Run(fmt.Sprintf("KeepOnStop=%v", keepOnStop), func(t *testing.T) {
			k := &fakeKeeper{}
			k.do = func(ctx context.Context, call string) error {
				if call == "startkeep" {
					return startErr
				}
				return nil
			}
			var onStart error
			e, err := NewExecutor(k, nil, ExecutorOptions{KeepOnStart: true, KeepOnStop: keepOnStop, OnStart: func(err error) { onStart = err }})
			if err != nil {
				t.Fatal(err)
			}
			err = e.Run(t.Context())
			if !errors.Is(err, startErr) || err.Error() != "start keep fake: no parent chain" {
				t.Errorf("Run = %v, want the StartKeep error", err)
			}
			if !errors.Is(onStart, startErr) {
				t.Errorf("OnStart got %v", onStart)
			}
			if diff := cmp.Diff([]string{"startkeep", "stopkeep"}, k.recorded()); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
		})
	}
}

// OpList runs in order with the other Ops and brings the targets in its
// Result; List does the same for one caller, without OnResult.
func TestExecutorList(t *testing.T) {
	k := &fakeKeeper{listed: []Target{target("192.0.2.1"), target("2001:db8::1")}}
	h := newHarness(t, k, ExecutorOptions{KeepOnStart: true}, listOp, ban("192.0.2.2"))
	if !h.e.CanList() {
		t.Error("CanList() = false")
	}
	r := h.next()
	if r.Op != listOp || r.Err != nil || r.Late {
		t.Fatalf("first Result = %+v, want the list", r)
	}
	if diff := cmp.Diff(k.listed, r.Targets, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}
	if r := h.next(); r.Op != ban("192.0.2.2") || r.Targets != nil {
		t.Errorf("second Result = %+v, want the ban without targets", r)
	}

	k.mu.Lock()
	k.listed = append(k.listed, target("192.0.2.2"))
	k.mu.Unlock()
	if err := h.e.Submit(unban("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	got, err := h.e.List(t.Context())
	if err != nil {
		t.Fatalf("List = %v", err)
	}
	if len(got) != 3 {
		t.Errorf("List = %v, want 3 targets", got)
	}
	// List came after the unban, and its own Result did not go to OnResult.
	if r := h.next(); r.Op != unban("192.0.2.1") {
		t.Errorf("Result %+v, want the unban", r)
	}
	select {
	case r := <-h.results:
		t.Errorf("unexpected Result %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
	want := []string{"startkeep", "list", "ban 192.0.2.2", "unban 192.0.2.1", "list", "stop"}
	if diff := cmp.Diff(want, k.recorded()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
	if _, err := h.e.List(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Run = %v, want ErrClosed", err)
	}
}

func TestExecutorListChecks(t *testing.T) {
	plain, err := NewExecutor(&fakeBackend{}, nil, ExecutorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.CanList() {
		t.Error("CanList() = true for a backend without List")
	}
	if err := plain.Submit(listOp); !errors.Is(err, ErrUnsupportedOp) {
		t.Errorf("Submit(list) to a plain backend = %v, want ErrUnsupportedOp", err)
	}
	if _, err := plain.List(t.Context()); !errors.Is(err, ErrUnsupportedOp) {
		t.Errorf("List of a plain backend = %v, want ErrUnsupportedOp", err)
	}
	e, err := NewExecutor(&fakeKeeper{}, nil, ExecutorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Submit(Op{Kind: OpList, Target: target("192.0.2.1")}); err == nil {
		t.Error("Submit(list with a target) = nil, want an error")
	}
	// Before Run, List waits (for Start); its context bounds the wait.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.List(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("List before Run = %v, want its deadline", err)
	}
}

// A List that fails or overruns: the caller gets the error; a late outcome
// of a List call is logged, not sent to OnResult.
func TestExecutorListFailures(t *testing.T) {
	listErr := errors.New("iptables: lock timeout")
	release := make(chan struct{})
	calls := 0
	k := &fakeKeeper{}
	k.do = func(ctx context.Context, call string) error {
		if call != "list" {
			return nil
		}
		calls++
		switch calls {
		case 1:
			return listErr
		case 2:
			<-release // ignores its context, like go-iptables
		}
		return nil
	}
	h := newHarness(t, k, ExecutorOptions{CallTimeout: 50 * time.Millisecond})
	if _, err := h.e.List(t.Context()); !errors.Is(err, listErr) {
		t.Errorf("List = %v, want the backend's error", err)
	}
	if _, err := h.e.List(t.Context()); !errors.Is(err, ErrCallTimeout) {
		t.Errorf("List = %v, want ErrCallTimeout", err)
	}
	close(release)
	if err := h.e.Submit(listOp); err != nil {
		t.Fatal(err)
	}
	if r := h.next(); r.Op != listOp || r.Late || r.Err != nil {
		t.Errorf("Result %+v, want the submitted list, after the late one was dropped", r)
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// A submitted OpList that overruns is reported at the deadline, and its
// targets come with the Late Result.
func TestExecutorListLate(t *testing.T) {
	release := make(chan struct{})
	k := &fakeKeeper{listed: []Target{target("192.0.2.1")}}
	k.do = func(ctx context.Context, call string) error {
		if call == "list" {
			<-release
		}
		return nil
	}
	h := newHarness(t, k, ExecutorOptions{CallTimeout: 50 * time.Millisecond}, listOp, ban("192.0.2.2"))
	if r := h.next(); r.Op != listOp || !errors.Is(r.Err, ErrCallTimeout) || r.Targets != nil {
		t.Errorf("first Result = %+v, want the list timed out", r)
	}
	close(release)
	if r := h.next(); r.Op != listOp || !r.Late || r.Err != nil || len(r.Targets) != 1 {
		t.Errorf("second Result = %+v, want the late list with its target", r)
	}
	if r := h.next(); r.Op != ban("192.0.2.2") || r.Err != nil {
		t.Errorf("third Result = %+v, want the ban", r)
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestOpKindString(t *testing.T) {
	for k, want := range map[OpKind]string{OpBan: "ban", OpUnban: "unban", OpList: "list", 9: "OpKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
}

func TestTargetCompare(t *testing.T) {
	in := []Target{
		target("2001:db8::1"),
		{Prefix: netip.MustParsePrefix("192.0.2.0/24")},
		target("192.0.2.1"),
		target("192.0.2.0"),
		{Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		{Prefix: netip.MustParsePrefix("2001:db8::/32")},
	}
	slices.SortFunc(in, Target.Compare)
	var got []string
	for _, t := range in {
		got = append(got, t.Prefix.String())
	}
	want := []string{"10.0.0.0/8", "192.0.2.0/24", "192.0.2.0/32", "192.0.2.1/32", "2001:db8::/32", "2001:db8::1/128"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sorted (-want +got):\n%s", diff)
	}
}
