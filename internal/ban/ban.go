// Package ban is the ban manager: the table of the bans in force in every
// jail, their expiry, the ignore list checked before each ban (ignoreip, the
// host's own addresses, the addresses of logged-in administrators), and the
// hand-off of every ban and unban to the jail's action backend.
//
// Each jail has one action.Executor running its backend on a goroutine of its
// own, so a ban never waits for the kernel: Ban records the ban and hands the
// call to the executor, whose result comes back later. The table, not the
// kernel, is the record of what is banned. A call that cannot be handed over
// at once (the executor's queue is full) waits in the jail's own queue, which
// is fed as the executor drains; a call that fails is retried with backoff; a
// backend that replaces another gets every ban in force again.
//
// Expiry runs in Run: a min-heap of the bans that end, and one clock timer on
// the earliest end (and on the earliest retry), not a goroutine per ban.
package ban

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/clock"
	"github.com/logjail/logjail/internal/config"
)

// permanent is the ban time of a ban that never ends (config.Forever).
const permanent = time.Duration(config.Forever)

// Defaults of Options.
const (
	DefaultCacheTTL     = 5 * time.Second
	DefaultAdminPoll    = 30 * time.Second
	DefaultRetries      = 5
	DefaultRetryBackoff = time.Second
	// MaxRetryBackoff caps the wait between two retries of a failed call.
	MaxRetryBackoff = time.Minute
	// stopMargin is added to the executor's call timeout when waiting for a
	// backend to stop: the executor bounds Stop by its call timeout itself.
	stopMargin = 5 * time.Second
)

var (
	// ErrUnknownJail is returned for a jail the manager does not have.
	ErrUnknownJail = errors.New("unknown jail")
	// ErrNotBanned is returned by Unban when the target is not banned.
	ErrNotBanned = errors.New("not banned")
	// ErrStopped is returned once Run has ended.
	ErrStopped = errors.New("ban manager stopped")
	// ErrNoBackend is returned by SetJail for a new jail without a backend.
	ErrNoBackend = errors.New("no backend")
	// ErrRunning is returned by a second call to Run.
	ErrRunning = errors.New("ban manager already running")
)

// Options configures a Manager. Zero values take the defaults.
type Options struct {
	Clock  clock.Clock  // default clock.Real()
	Logger *slog.Logger // nil discards
	// Self returns this host's addresses (for JailSpec.IgnoreSelf); the
	// default reads net.InterfaceAddrs.
	Self func() ([]netip.Addr, error)
	// Admins returns the sessions of logged-in administrators; the default is
	// AdminSessions(DefaultAdminSources()).
	Admins func() ([]Session, error)
	// Executor configures every jail's action.Executor. The manager sets
	// OnStart and OnResult; when given here they are called too, after the
	// manager has handled the outcome.
	Executor action.ExecutorOptions
	// CacheTTL is how long Self's and Admins' answers are reused: a flood of
	// ban orders must not read utmp and /proc per order.
	CacheTTL time.Duration
	// AdminPoll is how often Run reads the admin sessions even when no order
	// comes, so that the age of a session (Session.MinAge) is known from
	// early on. Negative: never.
	AdminPoll time.Duration
	// Retries bounds the retries of a failed ban or unban call (negative:
	// none); the first waits RetryBackoff, each next one twice as long, at
	// most MaxRetryBackoff.
	Retries      int
	RetryBackoff time.Duration
	// Store, when set, records every ban and its end, gives the counts of
	// repeat offenders, and holds the bans a jail finds in force when it
	// starts (see Store).
	Store Store
	// Rand is bantime.rndtime's random source (see NextBanTime); nil:
	// math/rand.
	Rand func(n int64) int64
}

// JailSpec is what the manager knows of a jail.
type JailSpec struct {
	Name       string
	BanTime    time.Duration // config.Forever (-1): permanent
	IgnoreNets []netip.Prefix
	IgnoreSelf bool
	// Increment makes repeat offenders' bans longer (bantime.*); it needs
	// Options.Store for the history.
	Increment config.BanTimeIncrement
	// Subnet bans a whole prefix when enough of its addresses were banned
	// (subnet.*).
	Subnet config.SubnetLimit
}

// Order asks for a ban.
type Order struct {
	Jail   string
	Target netip.Prefix // one address is a /32 or /128 (action.AddrTarget(a).Prefix)
	// Time is when the failure that crossed maxretry happened (for logs); the
	// ban starts at the clock's Now.
	Time     time.Time
	Failures int
	Lines    []string // the lines that counted (copied; bounded by the caller)
	Manual   bool
	For      time.Duration // 0: the jail's BanTime; config.Forever: permanent
	// Force, for a manual ban, overrides ignoreip and admin sessions, never
	// the host's own addresses: a rule against them would cut the host off
	// from itself (its own connections to its public address, replies from
	// local services, the admin's next login).
	Force bool
}

// Ban is one ban in force. Lines is shared: do not modify it.
type Ban struct {
	Jail   string
	Target netip.Prefix
	Start  time.Time
	End    time.Time // zero: permanent
	// Failures are those of the orders that made or extended it (a jail skips the orders
	// Redundant calls redundant); Lines are the last order's.
	Failures int
	Lines    []string
	Manual   bool
	Applied  bool   // the backend reported the rule in
	Err      string // the last backend error for it
	// Count is how many times the target was banned in this jail (in every
	// jail with bantime.overalljails), this ban included, by the store's
	// history; 1 without a store.
	Count int
}

// Neighbourhood reports whether b bans a prefix because enough of its
// addresses were banned (subnet.*): an automatic ban of more than one
// address.
func (b Ban) Neighbourhood() bool { return !b.Manual && !b.Target.IsSingleIP() }

// JailStats are a jail's counters (or the sum over every jail).
type JailStats struct {
	Banned       int   // in force now
	TotalBanned  int64 // since the jail was added (extensions not counted)
	Refused      int64 // orders refused by the ignore list
	ActionErrors int64 // failed backend calls
	LastError    string
	Pending      int // ban and unban calls not done yet
	// Neighbourhoods counts the prefixes banned because enough of their
	// addresses were (subnet.*), since the jail was added.
	Neighbourhoods int64
	// Repeat counts the bans in force of targets banned before (Count > 1).
	Repeat int
	// NextEnd is when the next ban in force ends (zero: none, or only
	// permanent ones).
	NextEnd time.Time
}

// IgnoredError is returned by Ban for a target the ignore list protects.
type IgnoredError struct {
	Addr   netip.Prefix
	Reason string // "ignoreip 10.0.0.0/8", "own address", "admin session: utmp root pts/0"
}

func (e *IgnoredError) Error() string {
	return fmt.Sprintf("%v is ignored: %s", action.Target{Prefix: e.Addr}, e.Reason)
}

// Manager owns the ban table. Its methods are safe for concurrent use.
type Manager struct {
	clk       clock.Clock
	log       *slog.Logger
	selfFn    func() ([]netip.Addr, error)
	adminFn   func() ([]Session, error)
	exOpts    action.ExecutorOptions
	ttl       time.Duration
	adminPoll time.Duration
	retries   int
	backoff   time.Duration
	store     Store
	rnd       func(n int64) int64

	cache ignoreCache
	// storeErrs counts failed store writes; storeErrAt (Unix ns) is when
	// one was last logged.
	storeErrs, storeErrAt atomic.Int64

	cfgMu sync.Mutex // serialises SetJail, RemoveJail and Run's shutdown
	// stopping holds, by jail, a backend still stopping after RemoveJail's
	// caller gave up waiting: a new backend of that jail waits for it, since
	// both own the same chain. Guarded by cfgMu.
	stopping map[string]*backendRun

	mu      sync.Mutex
	jails   map[string]*jail
	expiry  expiryHeap // bans that end, earliest first
	retryQ  retryHeap  // failed calls to make again, earliest first
	armed   time.Time  // when Run's timer fires; zero: it is not armed
	running bool
	stopped bool
	wake    chan struct{} // capacity 1: the earliest deadline may have changed

	onArm func(now, next time.Time) // test hook: Run's tick at now armed its timer for next (zero: none)
}

// jail is one jail's state. Fields are guarded by Manager.mu.
type jail struct {
	name  string
	spec  JailSpec
	bans  map[netip.Prefix]*entry
	lens  [2][129]int32 // bans per (family, prefix length), for Lookup
	run   *backendRun   // nil while the backend is swapped, or after a failed swap
	total int64
	// subnets counts the banned addresses of each prefix (spec.Subnet).
	subnets *SubnetTracker
	// neighbourhoods counts the prefix bans it led to.
	neighbourhoods int64
	// refused, actionErrors, lastErr: see JailStats.
	refused      int64
	actionErrors int64
	lastErr      string
	lastErrAt    time.Time
}

// entry is one ban in the table.
type entry struct {
	ban    Ban
	j      *jail
	idx    int    // in Manager.expiry; -1 when not there (permanent, or removed)
	sent   bool   // a ban call for it reached the executor: the rule may exist
	queued *opRef // its ban call while it waits in the jail's queue
	gaveUp bool   // its ban call failed beyond the retries
	// adopt: the ban waits for the backend's list after a start (see
	// reconcile): its rule may be in the kernel already.
	adopt bool
}

// New returns a Manager. Run it to expire bans.
func New(o Options) *Manager {
	m := &Manager{
		clk:       o.Clock,
		log:       o.Logger,
		selfFn:    o.Self,
		adminFn:   o.Admins,
		exOpts:    o.Executor,
		ttl:       o.CacheTTL,
		adminPoll: o.AdminPoll,
		retries:   o.Retries,
		backoff:   o.RetryBackoff,
		store:     o.Store,
		rnd:       o.Rand,
		jails:     make(map[string]*jail),
		stopping:  make(map[string]*backendRun),
		wake:      make(chan struct{}, 1),
	}
	if m.clk == nil {
		m.clk = clock.Real()
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.selfFn == nil {
		m.selfFn = interfaceAddrs
	}
	if m.adminFn == nil {
		m.adminFn = func() ([]Session, error) { return AdminSessions(DefaultAdminSources()) }
	}
	if m.ttl <= 0 {
		m.ttl = DefaultCacheTTL
	}
	if m.adminPoll == 0 {
		m.adminPoll = DefaultAdminPoll
	}
	if m.retries == 0 {
		m.retries = DefaultRetries
	}
	if m.backoff <= 0 {
		m.backoff = DefaultRetryBackoff
	}
	if m.exOpts.CallTimeout <= 0 {
		m.exOpts.CallTimeout = action.DefaultCallTimeout
	}
	if m.exOpts.QueueSize <= 0 {
		m.exOpts.QueueSize = action.DefaultQueueSize
	}
	return m
}

// SetJail adds a jail, or updates a running one (ban time and ignore list;
// the bans in force keep their end).
//
// With a non-nil backend different from the current one it (re)starts it: a
// new jail's backend is started, and SetJail returns when Start has succeeded,
// or with its error, and then the jail is not added. For a running jail the
// old backend is stopped first (both would own the same chain), the new one
// started, and every ban in force is applied again on it; if the new one
// fails to start, the old one is started again and SetJail returns the error.
// A nil backend for an existing jail keeps its backend.
func (m *Manager) SetJail(ctx context.Context, spec JailSpec, b action.Backend) error {
	spec, err := checkSpec(spec)
	if err != nil {
		return err
	}
	m.cfgMu.Lock()
	defer m.cfgMu.Unlock()

	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return ErrStopped
	}
	j := m.jails[spec.Name]
	var old *backendRun
	swap := false
	if j != nil {
		if j.spec.Subnet != spec.Subnet {
			j.subnets = NewSubnetTracker(spec.Subnet, 0)
		}
		j.spec = spec
		old = j.run
		if swap = b != nil && (old == nil || !sameBackend(old.b, b)); swap {
			j.run = nil // bans made meanwhile are applied by attach
		}
	}
	m.mu.Unlock()

	if j == nil {
		if b == nil {
			return fmt.Errorf("set jail %s: %w", spec.Name, ErrNoBackend)
		}
		if r := m.stopping[spec.Name]; r != nil {
			if err := m.waitRun(context.WithoutCancel(ctx), r); err != nil {
				m.log.Warn("previous backend still stopping", "jail", spec.Name, "err", err)
			}
			delete(m.stopping, spec.Name)
		}
		// Read before the backend starts: a ban of the store that ran out
		// must not be adopted. Bans made from now on are this jail's own.
		restored := m.restoreBans(spec.Name)
		run, err := m.startRun(ctx, spec.Name, b)
		if err != nil {
			return fmt.Errorf("set jail %s: %w", spec.Name, err)
		}
		m.mu.Lock()
		j := &jail{name: spec.Name, spec: spec, bans: make(map[netip.Prefix]*entry, len(restored)), run: run,
			subnets: NewSubnetTracker(spec.Subnet, 0)}
		for _, b := range restored {
			e := &entry{j: j, idx: -1, ban: b, sent: true, adopt: true}
			j.bans[b.Target] = e
			j.lens[family(b.Target)][b.Target.Bits()]++
			if !b.End.IsZero() {
				heap.Push(&m.expiry, e)
				m.wakeFor(b.End)
			}
			if !b.Manual && b.Target.IsSingleIP() {
				// Recent bans still count towards a neighbourhood; a prefix
				// they complete was banned before the restart, and is
				// restored itself (or was lifted by hand).
				j.subnets.Add(b.Target.Addr(), b.Start)
			}
		}
		m.jails[spec.Name] = j
		m.afterStart(j, run)
		m.mu.Unlock()
		m.log.Info("jail added", "jail", spec.Name, "backend", b.Name(), "restored", len(restored))
		return nil
	}
	if !swap {
		return nil
	}
	if old != nil {
		// Not bounded by ctx: the new backend must not start before the old
		// one has removed its chain. The executor bounds Stop. The old
		// chain goes even with KeepOnStop: the new backend's options
		// (another parent chain) could leave its jump behind.
		old.ex.SetKeepOnStop(false)
		if err := m.stopRun(context.WithoutCancel(ctx), old); err != nil {
			m.log.Warn("stop replaced backend", "jail", spec.Name, "backend", old.b.Name(), "err", err)
		}
	}
	run, err := m.startRun(ctx, spec.Name, b)
	if err != nil {
		err = fmt.Errorf("set jail %s: %w", spec.Name, err)
		if old != nil {
			// The bans must stay enforced: go back to the old backend. Its
			// Start is bounded by the executor's call timeout.
			run, rerr := m.startRun(context.WithoutCancel(ctx), spec.Name, old.b)
			if rerr == nil {
				m.attach(j, run)
				return fmt.Errorf("%w (previous backend %s restored)", err, old.b.Name())
			}
			err = errors.Join(err, fmt.Errorf("restore backend %s: %w", old.b.Name(), rerr))
		}
		m.mu.Lock()
		m.recordError(j, err.Error())
		m.mu.Unlock()
		m.log.Error("jail has no backend", "jail", spec.Name, "err", err)
		return err
	}
	m.attach(j, run)
	return nil
}

// attach makes run the jail's backend and applies every ban in force on it.
func (m *Manager) attach(j *jail, run *backendRun) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j.run = run
	for _, e := range j.bans {
		e.ban.Applied, e.ban.Err = false, ""
		e.queued, e.gaveUp = nil, false
		// Its rule may be in the kernel (a backend that kept it): unban it
		// when it ends, and let the list say whether to ban it again.
		e.sent, e.adopt = true, true
	}
	m.afterStart(j, run)
	m.log.Info("backend started", "jail", j.name, "backend", run.b.Name(), "bans", len(j.bans))
}

// afterStart reconciles the kernel with the table once run has started: it
// asks the backend what it holds when it can tell (it kept an earlier run's
// rules: see reconcile); otherwise it bans every ban waiting for it. m.mu is
// held.
func (m *Manager) afterStart(j *jail, run *backendRun) {
	if run.ex.CanList() {
		m.enqueue(j, &opRef{kind: action.OpList})
		return
	}
	m.reconcile(j, nil, false)
}

// RemoveJail stops the jail's backend (which removes its chain with every
// rule in it) and drops the jail's bans. If ctx ends first, the backend goes
// on stopping, and a new backend for a jail of that name waits for it.
func (m *Manager) RemoveJail(ctx context.Context, name string) error {
	m.cfgMu.Lock()
	defer m.cfgMu.Unlock()
	m.mu.Lock()
	j := m.jails[name]
	if j == nil {
		m.mu.Unlock()
		return fmt.Errorf("remove jail %s: %w", name, ErrUnknownJail)
	}
	delete(m.jails, name)
	dropped := make([]Ban, 0, len(j.bans))
	now := m.clk.Now()
	for _, e := range j.bans {
		if e.idx >= 0 {
			heap.Remove(&m.expiry, e.idx)
		}
		dropped = append(dropped, e.ban)
		if m.store != nil {
			m.store.EndBanAsync(name, e.ban.Target, now, ReasonJailRemoved, nil)
		}
	}
	run := j.run
	j.run = nil
	if run != nil {
		// A jail that is gone takes its chain with it, --keep-on-stop or not.
		run.ex.SetKeepOnStop(false)
	}
	m.mu.Unlock()

	slices.SortFunc(dropped, func(a, b Ban) int { return compareBans(&a, &b) })
	for _, b := range dropped {
		m.logUnban(b, "jail removed")
	}
	m.log.Info("jail removed", "jail", name, "bans", len(dropped))
	if run == nil {
		return nil
	}
	if err := m.stopRun(ctx, run); err != nil {
		select {
		case <-run.done:
		default:
			m.stopping[name] = run
		}
		return fmt.Errorf("remove jail %s: %w", name, err)
	}
	return nil
}

// Ban bans o.Target in o.Jail, unless the ignore list protects it (the error
// is then an *IgnoredError). It records the ban and hands the backend call to
// the jail's executor (with a store, once the ban is committed there); it
// never waits for the kernel. A target already banned in the jail keeps its
// one rule and gets the later of the two ends.
//
// A repeat offender's ban time grows with the jail's bantime.* (counted in
// the store's history); an automatic ban of an address that completes a
// neighbourhood (subnet.*) bans its whole prefix too.
func (m *Manager) Ban(o Order) (Ban, error) {
	p, err := normTarget(o.Target)
	if err != nil {
		return Ban{}, fmt.Errorf("ban %v: %w", o.Target, err)
	}
	if o.For < 0 && o.For != permanent {
		return Ban{}, fmt.Errorf("ban %v: negative duration %v", p, o.For)
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return Ban{}, ErrStopped
	}
	j := m.jails[o.Jail]
	if j == nil {
		m.mu.Unlock()
		return Ban{}, fmt.Errorf("ban %v: %w %q", p, ErrUnknownJail, o.Jail)
	}
	spec := j.spec // IgnoreNets is replaced, never modified: safe to read unlocked
	_, banned := j.bans[p]
	m.mu.Unlock()

	// In whole milliseconds, as the store keeps it: a ban read back after a restart is the
	// same ban, to the last digit.
	now := m.clk.Now().Truncate(time.Millisecond)
	if reason, ignored := m.ignoredBy(&spec, p, o.Force, now); ignored {
		m.mu.Lock()
		j.refused++
		m.mu.Unlock()
		m.log.Info("ban refused", "jail", o.Jail, "target", action.Target{Prefix: p}, "reason", reason,
			"manual", o.Manual, "force", o.Force)
		return Ban{}, &IgnoredError{Addr: p, Reason: reason}
	}
	d := o.For
	count := 1
	if !banned && p.IsSingleIP() {
		prev := m.banCount(&spec, p.Addr())
		count = prev + 1
		if d == 0 && !o.Manual {
			d = NextBanTime(spec.BanTime, spec.Increment, prev, m.rnd)
		}
	}
	if d == 0 {
		d = spec.BanTime
	}
	var end time.Time
	if d != permanent {
		end = now.Add(d)
	}

	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return Ban{}, ErrStopped
	}
	if m.jails[o.Jail] != j { // removed meanwhile
		m.mu.Unlock()
		return Ban{}, fmt.Errorf("ban %v: %w %q", p, ErrUnknownJail, o.Jail)
	}
	if e := j.bans[p]; e != nil {
		oldEnd := e.ban.End
		m.extend(e, o, end)
		b := e.ban
		m.mu.Unlock()
		if b.End.Equal(oldEnd) {
			m.log.Debug("already banned", "jail", o.Jail, "target", action.Target{Prefix: p}, "until", until(b.End), "manual", o.Manual)
			return b, nil
		}
		m.log.Info("ban extended", "jail", o.Jail, "target", action.Target{Prefix: p}, "failures", o.Failures,
			"until", until(b.End), "manual", o.Manual)
		return b, nil
	}
	e := &entry{j: j, idx: -1, ban: Ban{
		Jail: o.Jail, Target: p, Start: now, End: end,
		Failures: o.Failures, Lines: slices.Clone(o.Lines), Manual: o.Manual, Count: count,
	}}
	j.bans[p] = e
	j.lens[family(p)][p.Bits()]++
	j.total++
	if !end.IsZero() {
		heap.Push(&m.expiry, e)
		m.wakeFor(end)
	}
	// The store first: the kernel never holds a ban the store does not.
	m.putBan(e, func() {
		if j.bans[p] == e && m.jails[j.name] == j {
			m.enqueue(j, &opRef{kind: action.OpBan, target: p, e: e})
		}
	})
	b := e.ban
	var hood netip.Prefix
	trigger := false
	if !o.Manual && p.IsSingleIP() && j.subnets.Enabled() {
		hood, trigger = j.subnets.Add(p.Addr(), now)
	}
	m.mu.Unlock()
	args := []any{"jail", o.Jail, "target", action.Target{Prefix: p}, "failures", o.Failures,
		"until", until(end), "manual", o.Manual}
	if count > 1 {
		args = append(args, "count", count, "bantime", durationText(d))
	}
	m.log.Info("ban", args...)
	if trigger {
		m.banNeighbourhood(j, hood, o)
	}
	return b, nil
}

// banCount returns how many times a was banned before, by the store's
// history (0 without a store, or when it cannot tell).
func (m *Manager) banCount(spec *JailSpec, a netip.Addr) int {
	if m.store == nil {
		return 0
	}
	n, err := m.store.BanCount(spec.Name, a, time.Time{}, spec.Increment.OverallJails)
	if err != nil {
		m.storeFailed("count", err)
		return 0
	}
	return n
}

// banNeighbourhood bans prefix hood, whose addresses banned in j just
// reached subnet.maxhosts within subnet.findtime, for the jail's ban time.
// The ignore list refuses a prefix that holds an ignored, own or admin
// address; a prefix banned already is left as it is.
func (m *Manager) banNeighbourhood(j *jail, hood netip.Prefix, o Order) {
	m.mu.Lock()
	_, banned := j.bans[hood]
	hosts := j.spec.Subnet.MaxHosts
	window := j.spec.Subnet.FindTime
	m.mu.Unlock()
	if banned {
		return
	}
	for _, a := range m.ownAddrs(m.clk.Now()) {
		if hood.Contains(a) { // whatever ignoreself says
			m.log.Warn("neighbourhood not banned: it holds an address of this host", "jail", j.name, "prefix", hood,
				"hosts", hosts, "address", a)
			return
		}
	}
	b, err := m.Ban(Order{Jail: j.name, Target: hood, Time: o.Time, Failures: hosts, Lines: o.Lines})
	if err != nil {
		var ig *IgnoredError
		if errors.As(err, &ig) {
			m.log.Warn("neighbourhood not banned: it holds an ignored address", "jail", j.name, "prefix", hood,
				"hosts", hosts, "reason", ig.Reason)
		} else {
			m.log.Warn("neighbourhood ban failed", "jail", j.name, "prefix", hood, "err", err)
		}
		return
	}
	m.mu.Lock()
	j.neighbourhoods++
	m.mu.Unlock()
	m.log.Info("neighbourhood ban", "jail", j.name, "prefix", hood, "hosts", hosts,
		"within", durationText(time.Duration(window)), "until", until(b.End))
}

// durationText writes d for a log line, permanent as such.
func durationText(d time.Duration) string {
	if d == permanent {
		return "permanent"
	}
	return d.String()
}

// extend merges a new order into the ban e: the later end wins (permanent
// beats any), the failures add up, the newer lines replace the older. m.mu
// is held.
func (m *Manager) extend(e *entry, o Order, end time.Time) {
	b := &e.ban
	prevEnd := b.End
	if !o.Manual && b.before(o.Time) {
		end = b.End
		o.Failures, o.Lines = 0, nil
	}
	switch {
	case b.End.IsZero():
	case end.IsZero():
		b.End = time.Time{}
		if e.idx >= 0 {
			heap.Remove(&m.expiry, e.idx)
		}
	case end.After(b.End):
		b.End = end
		heap.Fix(&m.expiry, e.idx)
	}
	b.Failures += o.Failures
	if len(o.Lines) > 0 {
		b.Lines = slices.Clone(o.Lines)
	}
	b.Manual = b.Manual || o.Manual
	if o.Failures > 0 || !b.End.Equal(prevEnd) {
		m.putBan(e, nil) // the same Start: the store updates the ban in force
	}
	if e.gaveUp { // a new order is a new chance for a call that failed for good
		e.gaveUp = false
		m.enqueue(e.j, &opRef{kind: action.OpBan, target: b.Target, e: e})
	}
}

// before reports whether a failure at t (zero: no time) came before b began: from a log read
// again after a reload or a restart, or in flight when the rule went in, it caused the ban or
// came before it, and does not make it longer. "At" counts as before: a log's time is often
// whole seconds, and a ban that began in the first millisecond of a second has a Start equal to
// its own lines' time.
func (b *Ban) before(t time.Time) bool { return !t.IsZero() && !t.After(b.Start) }

// extendStep is the least an automatic order must move a ban's end for
// Redundant to let it through: a log's times are whole seconds, and a flood
// from a banned address (lines in flight, a log read again, a ban that does
// not reach the traffic the log shows) reaches maxretry again many times a
// second, each order a store write for a few milliseconds more.
const extendStep = time.Second

// Redundant reports whether an automatic order of jail against target, for a
// failure at t, would change nothing of the ban but its failure count and
// lines: target's own ban (the exact prefix) is in force in the jail, its
// rule did not fail for good, and the order would not move its end by
// extendStep or more. Failures at or before the ban's start never do (see
// extend), nor does anything to a permanent ban. The jail skips such orders
// and the copies of the lines they would carry; Ban would take them the same.
func (m *Manager) Redundant(jail string, target netip.Prefix, t time.Time) bool {
	now := m.clk.Now().Truncate(time.Millisecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	j := m.jails[jail]
	if m.stopped || j == nil {
		return false
	}
	e := j.bans[target]
	if e == nil || e.gaveUp {
		return false
	}
	b := &e.ban
	switch {
	case b.End.IsZero() || b.before(t):
		return true
	case j.spec.BanTime == permanent:
		return false
	}
	return now.Add(j.spec.BanTime).Before(b.End.Add(extendStep))
}

// Unban lifts the ban of exactly target (not of a prefix containing it) in
// jail, or in every jail when jail is "". It returns the bans lifted.
func (m *Manager) Unban(jail string, target netip.Prefix) ([]Ban, error) {
	p, err := normTarget(target)
	if err != nil {
		return nil, fmt.Errorf("unban %v: %w", target, err)
	}
	m.mu.Lock()
	js, err := m.selectJails(jail)
	if err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("unban %v: %w", p, err)
	}
	var out []Ban
	for _, j := range js {
		if e := j.bans[p]; e != nil {
			m.remove(e, ReasonManual)
			out = append(out, e.ban)
		}
	}
	m.mu.Unlock()
	for _, b := range out {
		m.logUnban(b, "manual")
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("unban %v: %w", action.Target{Prefix: p}, ErrNotBanned)
	}
	return out, nil
}

// UnbanAll lifts every ban of jail, or of every jail when jail is "".
func (m *Manager) UnbanAll(jail string) []Ban {
	m.mu.Lock()
	js, _ := m.selectJails(jail)
	var out []Ban
	for _, j := range js {
		for _, e := range j.bans {
			m.remove(e, ReasonManual)
			out = append(out, e.ban)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Ban) int { return compareBans(&a, &b) })
	for _, b := range out {
		m.logUnban(b, "manual")
	}
	return out
}

// remove drops e from the table, ends it in the store, and then lifts its
// rule. m.mu is held.
func (m *Manager) remove(e *entry, reason string) {
	j, p := e.j, e.ban.Target
	delete(j.bans, p)
	j.lens[family(p)][p.Bits()]--
	if e.idx >= 0 {
		heap.Remove(&m.expiry, e.idx)
	}
	if q := e.queued; q != nil { // its ban call never reached the executor
		q.cancelled = true
		e.queued = nil
	}
	at := m.clk.Now()
	m.persist(func(done func(error)) { m.store.EndBanAsync(j.name, p, at, reason, done) }, "unban", func(error) {
		// After the commit: a crash before it leaves the ban in the store
		// and its rule in the kernel, and the next start restores both.
		if e.sent && m.jails[j.name] == j {
			m.enqueue(j, &opRef{kind: action.OpUnban, target: p})
		}
	})
}

// Bans returns the bans in force in jail (every jail for ""), sorted by jail,
// then start, then target.
func (m *Manager) Bans(jail string) []Ban {
	m.mu.Lock()
	js, _ := m.selectJails(jail)
	n := 0
	for _, j := range js {
		n += len(j.bans)
	}
	out := make([]Ban, 0, n)
	for _, j := range js {
		for _, e := range j.bans {
			out = append(out, e.ban)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Ban) int { return compareBans(&a, &b) })
	return out
}

// Lookup returns a ban in force in jail (any jail for "", by name) that
// covers a: its own ban, else the narrowest prefix ban containing it.
func (m *Manager) Lookup(jail string, a netip.Addr) (Ban, bool) {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return Ban{}, false
	}
	f := 0
	if a.Is6() {
		f = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	js, _ := m.selectJails(jail)
	for _, j := range js {
		for bits := a.BitLen(); bits > 0; bits-- {
			if j.lens[f][bits] == 0 {
				continue
			}
			p, _ := a.Prefix(bits)
			if e := j.bans[p]; e != nil {
				return e.ban, true
			}
		}
	}
	return Ban{}, false
}

// Ignored reports whether the ignore list of jail protects a, and why.
func (m *Manager) Ignored(jail string, a netip.Addr) (reason string, ignored bool) {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return "", false
	}
	m.mu.Lock()
	j := m.jails[jail]
	var spec JailSpec
	if j != nil {
		spec = j.spec
	}
	m.mu.Unlock()
	if j == nil {
		return "", false
	}
	return m.ignoredBy(&spec, netip.PrefixFrom(a, a.BitLen()), false, m.clk.Now())
}

// Stats returns the counters of jail, or their sum over every jail for "".
// LastError is then the most recent of any jail.
func (m *Manager) Stats(jail string) JailStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	js, _ := m.selectJails(jail)
	var s JailStats
	var lastAt time.Time
	for _, j := range js {
		s.Banned += len(j.bans)
		s.TotalBanned += j.total
		s.Refused += j.refused
		s.ActionErrors += j.actionErrors
		s.Neighbourhoods += j.neighbourhoods
		for _, e := range j.bans {
			if e.ban.Count > 1 {
				s.Repeat++
			}
			if end := e.ban.End; !end.IsZero() && (s.NextEnd.IsZero() || end.Before(s.NextEnd)) {
				s.NextEnd = end
			}
		}
		if j.lastErr != "" && !j.lastErrAt.Before(lastAt) {
			s.LastError, lastAt = j.lastErr, j.lastErrAt
		}
		if r := j.run; r != nil {
			s.Pending += len(r.pending) + len(r.sentQ)
		}
	}
	return s
}

// Run expires bans (each within its end: one timer on the earliest), retries
// failed backend calls and reads the admin sessions every AdminPoll. When ctx
// is done it stops every jail's backend, each within the executor's call
// timeout (plus a margin), and returns their errors; the manager then refuses
// new bans and jails (ErrStopped).
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running || m.stopped {
		m.mu.Unlock()
		return ErrRunning
	}
	m.running = true
	m.mu.Unlock()

	timer := m.clk.NewTimer(time.Hour)
	timer.Stop()
	var pollAt time.Time // zero: read now
	for {
		now := m.clk.Now()
		if m.adminPoll > 0 && !now.Before(pollAt) {
			m.pollAdmins(now)
			pollAt = now.Add(m.adminPoll)
		}
		next := m.tick(now, pollAt)
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(next.Sub(m.clk.Now()))
		}
		if m.onArm != nil {
			m.onArm(now, next)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return m.shutdown()
		case <-timer.C():
		case <-m.wake:
		}
	}
}

// tick lifts the bans that have ended, makes the retries that are due, and
// returns when it must run next (zero: when woken). It sets m.armed to that.
func (m *Manager) tick(now, pollAt time.Time) time.Time {
	var ended []Ban
	m.mu.Lock()
	for len(m.expiry) > 0 && !m.expiry[0].ban.End.After(now) {
		e := m.expiry[0]
		m.remove(e, ReasonExpired)
		ended = append(ended, e.ban)
	}
	for len(m.retryQ) > 0 && !m.retryQ[0].at.After(now) {
		m.fireRetry(heap.Pop(&m.retryQ).(*opRef))
	}
	var next time.Time
	if len(m.expiry) > 0 {
		next = m.expiry[0].ban.End
	}
	if len(m.retryQ) > 0 && (next.IsZero() || m.retryQ[0].at.Before(next)) {
		next = m.retryQ[0].at
	}
	if m.adminPoll > 0 && (next.IsZero() || pollAt.Before(next)) {
		next = pollAt
	}
	m.armed = next
	m.mu.Unlock()
	for _, b := range ended {
		m.logUnban(b, "expired")
	}
	return next
}

// wakeFor wakes Run if t comes before the deadline it waits for. m.mu is held.
func (m *Manager) wakeFor(t time.Time) {
	if !m.armed.IsZero() && !t.Before(m.armed) {
		return
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// shutdown stops every backend and marks the manager stopped.
func (m *Manager) shutdown() error {
	m.cfgMu.Lock()
	defer m.cfgMu.Unlock()
	m.mu.Lock()
	m.stopped = true
	m.armed = time.Time{}
	names := make([]string, 0, len(m.jails))
	runs := make(map[string]*backendRun, len(m.jails))
	for name, j := range m.jails {
		if j.run != nil {
			names = append(names, name)
			runs[name] = j.run
		}
	}
	m.mu.Unlock()
	slices.Sort(names)
	for _, name := range names {
		runs[name].cancel()
	}
	// Every backend was told to stop at once; they stop in parallel, so one
	// bound covers them all.
	bound := m.clk.NewTimer(m.exOpts.CallTimeout + stopMargin)
	defer bound.Stop()
	var errs []error
	for _, name := range names {
		r := runs[name]
		select {
		case <-r.done:
			if r.err != nil {
				errs = append(errs, fmt.Errorf("jail %s: %w", name, r.err))
			}
		case <-bound.C():
			errs = append(errs, fmt.Errorf("jail %s: backend %s not stopped after %v", name, r.b.Name(), m.exOpts.CallTimeout+stopMargin))
			for _, rest := range names {
				if rest > name {
					select {
					case <-runs[rest].done:
						if err := runs[rest].err; err != nil {
							errs = append(errs, fmt.Errorf("jail %s: %w", rest, err))
						}
					default:
						errs = append(errs, fmt.Errorf("jail %s: backend %s not stopped", rest, runs[rest].b.Name()))
					}
				}
			}
			m.log.Warn("backends not stopped in time", "err", errors.Join(errs...))
			return errors.Join(errs...)
		}
	}
	m.log.Info("ban manager stopped", "jails", len(names))
	return errors.Join(errs...)
}

// sameBackend reports whether a and b are the same backend. A backend of a
// type that == cannot compare (a struct holding a slice) is never the same:
// comparing it would panic.
func sameBackend(a, b action.Backend) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// selectJails returns jail, or every jail sorted by name for "". m.mu is held.
func (m *Manager) selectJails(name string) ([]*jail, error) {
	if name != "" {
		j := m.jails[name]
		if j == nil {
			return nil, fmt.Errorf("%w %q", ErrUnknownJail, name)
		}
		return []*jail{j}, nil
	}
	js := make([]*jail, 0, len(m.jails))
	for _, j := range m.jails {
		js = append(js, j)
	}
	slices.SortFunc(js, func(a, b *jail) int { return cmp.Compare(a.name, b.name) })
	return js, nil
}

func (m *Manager) logUnban(b Ban, reason string) {
	m.log.Info("unban", "jail", b.Jail, "target", action.Target{Prefix: b.Target}, "reason", reason)
}

// recordError notes a backend error of j. m.mu is held.
func (m *Manager) recordError(j *jail, msg string) {
	j.actionErrors++
	j.lastErr = msg
	j.lastErrAt = m.clk.Now()
}

// checkSpec validates spec and returns it with its ignore nets normalised.
func checkSpec(spec JailSpec) (JailSpec, error) {
	if spec.Name == "" {
		return spec, errors.New("set jail: empty name")
	}
	if spec.BanTime <= 0 && spec.BanTime != permanent {
		return spec, fmt.Errorf("set jail %s: ban time %v: want a positive duration or config.Forever", spec.Name, spec.BanTime)
	}
	nets := make([]netip.Prefix, 0, len(spec.IgnoreNets))
	for _, n := range spec.IgnoreNets {
		nn, ok := normNet(n)
		if !ok {
			return spec, fmt.Errorf("set jail %s: invalid ignoreip %v", spec.Name, n)
		}
		nets = append(nets, nn)
	}
	spec.IgnoreNets = nets
	return spec, nil
}

// normNet returns p with an IPv4-mapped IPv6 prefix as IPv4 and its host bits
// cleared.
func normNet(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return p, false
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return p, false
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

// normTarget is normNet for a ban target, which must also pass
// action.Target.Validate (not /0).
func normTarget(p netip.Prefix) (netip.Prefix, error) {
	n, ok := normNet(p)
	if !ok {
		return p, fmt.Errorf("%w: %v", action.ErrInvalidTarget, p)
	}
	if err := (action.Target{Prefix: n}).Validate(); err != nil {
		return p, err
	}
	return n, nil
}

func family(p netip.Prefix) int {
	if p.Addr().Is6() {
		return 1
	}
	return 0
}

func compareBans(a, b *Ban) int {
	if c := cmp.Compare(a.Jail, b.Jail); c != 0 {
		return c
	}
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	if c := a.Target.Addr().Compare(b.Target.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Target.Bits(), b.Target.Bits())
}

// until is the "until" of a log line: the end, or "permanent".
func until(end time.Time) any {
	if end.IsZero() {
		return "permanent"
	}
	return end
}

// expiryHeap orders the bans that end by their end.
type expiryHeap []*entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].ban.End.Before(h[j].ban.End) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// retryHeap orders the calls to retry by when. Cancelled ones stay until due.
type retryHeap []*opRef

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(*opRef)) }
func (h *retryHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return r
}
