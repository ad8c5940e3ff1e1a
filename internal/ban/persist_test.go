package ban

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/store"
)

// memStore is a Store in memory. Writes are committed by release (in order,
// from the caller's goroutine, like the store's writer goroutine) when hold
// is set, else on a goroutine of their own, in order.
type memStore struct {
	mu      sync.Mutex
	hold    bool
	queue   []func()
	active  map[string]store.Ban // by jail + target
	ended   []string             // "jail target reason", in commit order
	counts  map[netip.Addr]int   // BanCount's answer
	fail    error                // every write fails with it
	work    chan func()
	workers sync.Once
}

func newMemStore(hold bool) *memStore {
	return &memStore{hold: hold, active: map[string]store.Ban{}, counts: map[netip.Addr]int{}, work: make(chan func(), 1024)}
}

func key(jail string, p netip.Prefix) string { return jail + " " + action.Target{Prefix: p}.String() }

func (s *memStore) submit(apply func(), done func(error)) {
	s.mu.Lock()
	fail := s.fail
	commit := func() {
		if fail == nil {
			s.mu.Lock()
			apply()
			s.mu.Unlock()
		}
		if done != nil {
			done(fail)
		}
	}
	if s.hold {
		s.queue = append(s.queue, commit)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.workers.Do(func() {
		go func() {
			for f := range s.work {
				f()
			}
		}()
	})
	s.work <- commit
}

// release commits the writes held so far, and reports how many.
func (s *memStore) release() int {
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, f := range q {
		f()
	}
	return len(q)
}

func (s *memStore) PutBanAsync(b store.Ban, done func(error)) {
	s.submit(func() { s.active[key(b.Jail, b.Target)] = b }, done)
}

func (s *memStore) EndBanAsync(jail string, target netip.Prefix, at time.Time, reason string, done func(error)) {
	s.submit(func() {
		delete(s.active, key(jail, target))
		s.ended = append(s.ended, key(jail, target)+" "+reason)
	}, done)
}

func (s *memStore) BanCount(jail string, a netip.Addr, since time.Time, all bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[a], nil
}

func (s *memStore) JailBans(jail string) ([]store.Ban, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Ban
	for _, b := range s.active {
		if b.Jail == jail {
			out = append(out, b)
		}
	}
	return out, nil
}

func (s *memStore) endedList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ended)
}

func (s *memStore) activeKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.active {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// keepBackend is a fakeBackend that keeps its rules over a restart, like the
// iptables backend with --keep-on-stop: StartKeep adopts the rules (kernel),
// List reads them back.
type keepBackend struct {
	*fakeBackend
}

var (
	_ action.Keeper = keepBackend{}
	_ action.Lister = keepBackend{}
)

func (k keepBackend) StartKeep(ctx context.Context) error {
	return k.call(ctx, "startkeep", func() {
		if k.rules == nil {
			k.rules = map[string]bool{}
		}
	})
}

func (k keepBackend) StopKeep(ctx context.Context) error {
	return k.call(ctx, "stopkeep", func() {})
}

func (k keepBackend) List(ctx context.Context) ([]action.Target, error) {
	var out []action.Target
	err := k.call(ctx, "list", func() {
		for r := range k.rules {
			out = append(out, action.Target{Prefix: pfx(r)})
		}
	})
	slices.SortFunc(out, action.Target.Compare)
	return out, err
}

func TestBanReachesKernelOnlyOnceCommitted(t *testing.T) {
	st := newMemStore(true)
	h := newHarness(t, Options{Store: st})
	b := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), b)

	h.ban(order("sshd", "192.0.2.1"))
	// Nothing reaches the backend while the write is not committed.
	if got := h.m.Stats("sshd").Pending; got != 0 {
		t.Fatalf("pending = %d before the commit, want 0", got)
	}
	if b.hasCall("ban 192.0.2.1") {
		t.Fatal("ban call made before the store committed the ban")
	}
	if n := st.release(); n != 1 {
		t.Fatalf("%d writes held, want 1 (the ban)", n)
	}
	h.waitFor("ban applied", h.applied("sshd", 1))
	if got := st.activeKeys(); !slices.Equal(got, []string{"sshd 192.0.2.1"}) {
		t.Fatalf("store holds %v", got)
	}

	// The unban waits for the end's commit in the same way.
	if _, err := h.m.Unban("sshd", pfx("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if b.hasCall("unban 192.0.2.1") {
		t.Fatal("unban call made before the store committed the end")
	}
	st.release()
	h.waitFor("unban call", func() bool { return b.hasCall("unban 192.0.2.1") })
	if got := st.endedList(); !slices.Equal(got, []string{"sshd 192.0.2.1 manual"}) {
		t.Fatalf("ended %v", got)
	}
}

func TestBanUnbannedBeforeCommitNeverReachesKernel(t *testing.T) {
	st := newMemStore(true)
	h := newHarness(t, Options{Store: st})
	b := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), b)
	h.ban(order("sshd", "192.0.2.1"))
	if _, err := h.m.Unban("sshd", pfx("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	h.ban(order("sshd", "192.0.2.1")) // banned again: the kernel must end with the rule
	st.release()
	h.waitFor("ban applied", h.applied("sshd", 1))
	calls := b.recorded()
	if slices.Contains(calls, "unban 192.0.2.1") {
		t.Errorf("an unban call for a ban that never reached the kernel: %v", calls)
	}
	if got := b.ruleList(); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("rules %v", got)
	}
}

func TestStoreFailureStillBans(t *testing.T) {
	st := newMemStore(false)
	st.fail = errors.New("disk full")
	h := newHarness(t, Options{Store: st})
	b := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), b)
	h.ban(order("sshd", "192.0.2.1"))
	h.waitFor("ban applied", h.applied("sshd", 1))
	if !strings.Contains(h.logs.String(), "state database write failed") || !strings.Contains(h.logs.String(), "disk full") {
		t.Errorf("no loud log of the failed write:\n%s", h.logs)
	}
}

func TestRestoreReconcilesKernelWithStore(t *testing.T) {
	st := newMemStore(false)
	now := t0
	put := func(jail, target string, start, end time.Time, count int) {
		st.active[key(jail, pfx(target))] = store.Ban{Jail: jail, Target: pfx(target), Start: start, End: end, Failures: 5, Count: count}
	}
	put("sshd", "192.0.2.1", now.Add(-5*time.Minute), now.Add(5*time.Minute), 2)    // in force, in the kernel
	put("sshd", "192.0.2.2", now.Add(-5*time.Minute), now.Add(7*time.Minute), 1)    // in force, not in the kernel
	put("sshd", "192.0.2.3", now.Add(-20*time.Minute), now.Add(-10*time.Minute), 1) // ran out while down
	put("sshd", "2001:db8::/64", now.Add(-time.Minute), time.Time{}, 1)             // permanent
	put("web", "198.51.100.1", now.Add(-5*time.Minute), now.Add(5*time.Minute), 1)  // another jail
	fb := &fakeBackend{name: "fake", rules: map[string]bool{"192.0.2.1": true, "192.0.2.3": true, "192.0.2.9": true, "2001:db8::/64": true}}

	h := newHarness(t, Options{Store: st, Executor: action.ExecutorOptions{KeepOnStart: true, KeepOnStop: true}})
	fb.sig = h.sig
	kb := keepBackend{fb}
	h.setJail(spec10m("sshd"), kb)
	h.waitFor("reconciled", h.applied("sshd", 3))

	bans := h.m.Bans("sshd")
	if diff := cmp.Diff([]string{"sshd 192.0.2.1", "sshd 192.0.2.2", "sshd 2001:db8::/64"}, sortedTargets(bans)); diff != "" {
		t.Fatalf("bans in force (-want +got):\n%s", diff)
	}
	for _, b := range bans {
		st.mu.Lock()
		want := st.active[key("sshd", b.Target)]
		st.mu.Unlock()
		if !b.End.Equal(want.End) || !b.Start.Equal(want.Start) || b.Count != want.Count {
			t.Errorf("%v: start %v end %v count %d, want the store's %v %v %d", b.Target, b.Start, b.End, b.Count, want.Start, want.End, want.Count)
		}
	}
	if diff := cmp.Diff([]string{"192.0.2.1", "192.0.2.2", "2001:db8::/64"}, fb.ruleList()); diff != "" {
		t.Errorf("kernel rules (-want +got):\n%s", diff)
	}
	calls := fb.recorded()
	for _, c := range []string{"start", "stop", "ban 192.0.2.1", "ban 2001:db8::/64"} {
		if slices.Contains(calls, c) {
			t.Errorf("call %q: the rules in force must be kept, not made again: %v", c, calls)
		}
	}
	if diff := cmp.Diff([]string{"sshd 192.0.2.3 " + ReasonExpiredDown}, st.endedList()); diff != "" {
		t.Errorf("ended in the store (-want +got):\n%s", diff)
	}

	// The restored ban ends at its original time.
	h.clk.Set(now.Add(5 * time.Minute))
	h.waitFor("expired", func() bool { return len(h.m.Bans("sshd")) == 2 && !slices.Contains(fb.ruleList(), "192.0.2.1") })
}

func sortedTargets(bs []Ban) []string {
	out := banTargets(bs)
	slices.Sort(out)
	return out
}

func TestRepeatOffenderGetsLongerBan(t *testing.T) {
	st := newMemStore(false)
	st.counts[addr("192.0.2.1")] = 2
	h := newHarness(t, Options{Store: st})
	spec := spec10m("sshd")
	spec.Increment = config.BanTimeIncrement{Enabled: true, Factor: 1}
	h.setJail(spec, h.backend("fake", nil))

	b := h.ban(order("sshd", "192.0.2.1"))
	if got, want := b.End.Sub(b.Start), 40*time.Minute; got != want || b.Count != 3 {
		t.Errorf("repeat offender: %v, count %d; want %v (10m × 2²), count 3", got, b.Count, want)
	}
	b = h.ban(order("sshd", "192.0.2.2"))
	if got := b.End.Sub(b.Start); got != 10*time.Minute || b.Count != 1 {
		t.Errorf("first offence: %v, count %d; want 10m, count 1", got, b.Count)
	}
	// A manual ban says how long itself; it still counts.
	st.mu.Lock()
	st.counts[addr("192.0.2.3")] = 4
	st.mu.Unlock()
	b = h.ban(Order{Jail: "sshd", Target: pfx("192.0.2.3"), Manual: true})
	if got := b.End.Sub(b.Start); got != 10*time.Minute || b.Count != 5 {
		t.Errorf("manual: %v, count %d; want 10m, count 5", got, b.Count)
	}
}

func TestNeighbourhoodBan(t *testing.T) {
	self := addr("203.0.113.7")
	h := newHarness(t, Options{Self: func() ([]netip.Addr, error) { return []netip.Addr{self}, nil }})
	spec := spec10m("web")
	spec.Subnet = config.SubnetLimit{MaxHosts: 3, FindTime: config.Duration(time.Hour), Prefix4: 24, Prefix6: 64}
	spec.IgnoreNets = []netip.Prefix{pfx("198.51.100.200")}
	b := h.backend("fake", nil)
	h.setJail(spec, b)

	h.ban(order("web", "192.0.2.1"))
	h.ban(order("web", "192.0.2.2"))
	if _, ok := h.m.Lookup("web", addr("192.0.2.77")); ok {
		t.Fatal("prefix banned after 2 of 3 hosts")
	}
	h.ban(order("web", "192.0.2.3"))
	nb, ok := h.m.Lookup("web", addr("192.0.2.77"))
	if !ok || nb.Target != pfx("192.0.2.0/24") || !nb.Neighbourhood() {
		t.Fatalf("after 3 hosts: lookup %+v %v, want the /24", nb, ok)
	}
	if got := h.m.Stats("web").Neighbourhoods; got != 1 {
		t.Errorf("Neighbourhoods = %d", got)
	}
	h.waitFor("rules", func() bool { return slices.Contains(b.ruleList(), "192.0.2.0/24") })
	if _, ok := h.m.Lookup("web", addr("192.0.3.1")); ok {
		t.Error("an address outside the /24 is banned")
	}
	if !strings.Contains(h.logs.String(), "neighbourhood ban") {
		t.Errorf("the log does not say so:\n%s", h.logs)
	}

	// A prefix holding an ignored address, or this host's (ignoreself off), is never banned.
	for _, a := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		h.ban(order("web", a))
	}
	for _, p := range []string{"198.51.100.0/24", "203.0.113.0/24"} {
		for _, bb := range h.m.Bans("web") {
			if bb.Target == pfx(p) {
				t.Errorf("%s banned although it holds an ignored or own address", p)
			}
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "neighbourhood not banned: it holds an ignored address") ||
		!strings.Contains(logs, "neighbourhood not banned: it holds an address of this host") {
		t.Errorf("refusals not logged:\n%s", logs)
	}
}

func TestRemoveJailEndsItsBansInStore(t *testing.T) {
	st := newMemStore(false)
	h := newHarness(t, Options{Store: st, Executor: action.ExecutorOptions{KeepOnStart: true, KeepOnStop: true}})
	fb := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), keepBackend{fb})
	h.ban(order("sshd", "192.0.2.1"))
	h.waitFor("applied", h.applied("sshd", 1))
	if err := h.m.RemoveJail(t.Context(), "sshd"); err != nil {
		t.Fatal(err)
	}
	// Even with KeepOnStop, a removed jail takes its chain with it.
	if !fb.hasCall("stop") || fb.hasCall("stopkeep") {
		t.Errorf("calls %v: want stop, not stopkeep", fb.recorded())
	}
	// The store commits on its own goroutine, which pokes nobody: poll.
	for limit := time.Now().Add(waitLimit); len(st.endedList()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(limit) {
			t.Fatal("timed out waiting for the end in the store")
		}
	}
	if got := st.endedList(); got[0] != "sshd 192.0.2.1 "+ReasonJailRemoved {
		t.Errorf("ended %v", got)
	}
}

// TestRestartWithRealStore runs a manager on the real store, stops it with
// the rules kept, and starts another on the same database and kernel: the
// ban holds throughout and ends at its first end.
func TestRestartWithRealStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logjail.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{name: "fake"}
	opts := Options{Store: st, Executor: action.ExecutorOptions{KeepOnStart: true, KeepOnStop: true}}
	h := newHarness(t, opts)
	fb.sig = h.sig
	spec := spec10m("sshd")
	spec.Increment = config.BanTimeIncrement{Enabled: true, Factor: 1}
	h.setJail(spec, keepBackend{fb})
	first := h.ban(order("sshd", "192.0.2.1"))
	h.waitFor("applied", h.applied("sshd", 1))
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if got := fb.ruleList(); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Fatalf("rules after a keeping stop: %v", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opts.Store = st
	h2 := newHarness(t, opts)
	fb.sig = h2.sig
	h2.clk.Set(t0.Add(time.Minute))
	h2.setJail(spec, keepBackend{fb})
	h2.waitFor("restored", h2.applied("sshd", 1))
	got := h2.m.Bans("sshd")[0]
	if !got.End.Equal(first.End) || got.Count != 1 {
		t.Errorf("restored ban ends %v count %d, want %v count 1", got.End, got.Count, first.End)
	}
	if n := strings.Count(strings.Join(fb.recorded(), "\n"), "ban 192.0.2.1"); n != 1 {
		t.Errorf("%d ban calls for 192.0.2.1 over the restart, want 1: %v", n, fb.recorded())
	}
	// It ends at its first end; banned again, it gets twice the time.
	h2.clk.Set(first.End)
	h2.waitFor("expired", func() bool { return len(h2.m.Bans("sshd")) == 0 && len(fb.ruleList()) == 0 })
	again := h2.ban(order("sshd", "192.0.2.1"))
	if d := again.End.Sub(again.Start); d != 20*time.Minute || again.Count != 2 {
		t.Errorf("second ban: %v count %d, want 20m count 2", d, again.Count)
	}
}
