package ban

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/clock"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// waitLimit bounds every wait for a goroutine (never for a ban's time, which
// the fake clock moves).
const waitLimit = 10 * time.Second

// fakeBackend is a recording action.Backend that keeps its rules as a kernel
// would: Start empties them, Ban adds, Unban removes, Stop drops the chain.
// do, when set, runs first in every call ("start", "ban 192.0.2.1",
// "unban ...", "stop") and may block or fail it.
type fakeBackend struct {
	name string
	sig  chan struct{} // poked at the start and the end of every call
	do   func(ctx context.Context, call string) error

	mu     sync.Mutex
	calls  []string
	rules  map[string]bool // nil: no chain
	active atomic.Int32
	max    atomic.Int32
}

var _ action.Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Name() string { return f.name }

func (f *fakeBackend) Start(ctx context.Context) error {
	return f.call(ctx, "start", func() { f.rules = map[string]bool{} })
}

func (f *fakeBackend) Stop(ctx context.Context) error {
	return f.call(ctx, "stop", func() { f.rules = nil })
}

func (f *fakeBackend) Ban(ctx context.Context, t action.Target) error {
	return f.call(ctx, "ban "+t.String(), func() { f.rules[t.String()] = true })
}

func (f *fakeBackend) Unban(ctx context.Context, t action.Target) error {
	return f.call(ctx, "unban "+t.String(), func() { delete(f.rules, t.String()) })
}

func (f *fakeBackend) call(ctx context.Context, name string, apply func()) error {
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for m := f.max.Load(); n > m && !f.max.CompareAndSwap(m, n); m = f.max.Load() {
	}
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
	poke(f.sig)
	var err error
	if f.do != nil {
		err = f.do(ctx, name)
	}
	f.mu.Lock()
	if err == nil {
		apply()
	}
	f.mu.Unlock()
	poke(f.sig)
	return err
}

// recorded returns the calls so far.
func (f *fakeBackend) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ruleList returns the rules in force, sorted.
func (f *fakeBackend) ruleList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for r := range f.rules {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func (f *fakeBackend) hasCall(c string) bool { return slices.Contains(f.recorded(), c) }

func poke(c chan struct{}) {
	if c == nil {
		return
	}
	select {
	case c <- struct{}{}:
	default:
	}
}

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type tick struct{ now, next time.Time }

// harness runs a Manager on a fake clock.
type harness struct {
	t      *testing.T
	m      *Manager
	clk    *clock.Fake
	sig    chan struct{} // poked by backends and after every handled Result
	ticks  chan tick
	logs   *syncBuffer
	cancel context.CancelFunc
	runErr chan error
	once   sync.Once
	err    error
}

// newHarness starts a Manager with o, defaulting to no own addresses, no
// admin sessions and no admin polling, and runs it until the test ends.
func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	h := &harness{
		t: t, clk: clock.NewFake(t0), sig: make(chan struct{}, 1), ticks: make(chan tick, 1<<16),
		logs: &syncBuffer{}, runErr: make(chan error, 1),
	}
	o.Clock = h.clk
	o.Logger = slog.New(slog.NewTextHandler(h.logs, nil))
	if o.Self == nil {
		o.Self = func() ([]netip.Addr, error) { return nil, nil }
	}
	if o.Admins == nil {
		o.Admins = func() ([]Session, error) { return nil, nil }
	}
	if o.AdminPoll == 0 {
		o.AdminPoll = -1
	}
	user := o.Executor.OnResult
	o.Executor.OnResult = func(r action.Result) {
		if user != nil {
			user(r)
		}
		poke(h.sig)
	}
	h.m = New(o)
	h.m.onArm = func(now, next time.Time) {
		select {
		case h.ticks <- tick{now, next}:
		default:
			panic("harness: ticks channel full")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- h.m.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

// stop cancels Run and returns what it returned.
func (h *harness) stop() error {
	h.t.Helper()
	h.once.Do(func() {
		h.cancel()
		select {
		case h.err = <-h.runErr:
		case <-time.After(waitLimit):
			h.t.Error("Run did not return after cancel")
		}
	})
	return h.err
}

// backend returns a fakeBackend that pokes the harness.
func (h *harness) backend(name string, do func(ctx context.Context, call string) error) *fakeBackend {
	return &fakeBackend{name: name, sig: h.sig, do: do}
}

func (h *harness) setJail(spec JailSpec, b action.Backend) {
	h.t.Helper()
	if err := h.m.SetJail(h.t.Context(), spec, b); err != nil {
		h.t.Fatalf("SetJail(%s): %v", spec.Name, err)
	}
}

func (h *harness) ban(o Order) Ban {
	h.t.Helper()
	b, err := h.m.Ban(o)
	if err != nil {
		h.t.Fatalf("Ban(%s %v): %v", o.Jail, o.Target, err)
	}
	return b
}

// waitFor waits until cond holds; backends and results wake it.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	limit := time.After(waitLimit)
	for !cond() {
		select {
		case <-h.sig:
		case <-limit:
			h.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitArmed waits until Run, in a tick at the current fake time, has armed
// its timer for next (zero: not armed), and that is its latest tick.
func (h *harness) waitArmed(next time.Time) {
	h.t.Helper()
	limit := time.After(waitLimit)
	var last tick
	for {
		select {
		case last = <-h.ticks:
			if len(h.ticks) == 0 && last.now.Equal(h.clk.Now()) && last.next.Equal(next) {
				return
			}
		case <-limit:
			h.t.Fatalf("timed out waiting for Run to arm %v at %v; last tick %+v", next, h.clk.Now(), last)
		}
	}
}

// applied reports whether every ban of jail is applied.
func (h *harness) applied(jail string, n int) func() bool {
	return func() bool {
		bs := h.m.Bans(jail)
		if len(bs) != n {
			return false
		}
		for _, b := range bs {
			if !b.Applied {
				return false
			}
		}
		return h.m.Stats(jail).Pending == 0
	}
}

func pfx(s string) netip.Prefix {
	if strings.Contains(s, "/") {
		return netip.MustParsePrefix(s)
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func order(jail, target string) Order {
	return Order{Jail: jail, Target: pfx(target), Time: t0, Failures: 5, Lines: []string{"line of " + target}}
}

func spec10m(name string) JailSpec { return JailSpec{Name: name, BanTime: 10 * time.Minute} }

func banTargets(bs []Ban) []string {
	var out []string
	for _, b := range bs {
		out = append(out, fmt.Sprintf("%s %v", b.Jail, action.Target{Prefix: b.Target}))
	}
	return out
}
