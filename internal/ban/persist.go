package ban

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/store"
)

// Store is what the manager needs of the state database; *store.Store
// implements it.
//
// The database, not the kernel, is the record that outlives the daemon, so
// the manager writes to it first: a ban goes to the backend only once its
// PutBan is committed, and an unban only once its EndBan is. A crash at any
// moment then leaves the kernel with a subset of the bans the database holds
// in force (plus, at most, rules of bans whose end was committed), and the
// next start, which reconciles the kernel with the database, ends with
// exactly the bans the database says are in force: none lost, none stale,
// none doubled.
type Store interface {
	// PutBanAsync and EndBanAsync queue a write and call done once it is
	// committed or has failed: from the store's writer goroutine, in the
	// order the writes were queued, or at once (from within the call) when
	// the write is refused.
	PutBanAsync(b store.Ban, done func(error))
	EndBanAsync(jail string, target netip.Prefix, at time.Time, reason string, done func(error))
	// BanCount counts the earlier bans of addr, for repeat offenders.
	BanCount(jail string, addr netip.Addr, since time.Time, allJails bool) (int, error)
	// JailBans returns the bans in force of a jail, for when it starts.
	JailBans(jail string) ([]store.Ban, error)
}

var _ Store = (*store.Store)(nil)

// Reasons a ban ends, as the manager writes them to the store.
const (
	ReasonExpired     = "expired"
	ReasonManual      = "manual"
	ReasonJailRemoved = "jail removed"
	// ReasonExpiredDown: the ban ran out while the daemon was down.
	ReasonExpiredDown = "expired while stopped"
)

// persist queues a write with submit and runs then (with m.mu held) once it
// is committed or has failed. then never runs on the caller's stack while it
// holds m.mu, except through persist itself: a write the store refuses at
// once calls done from within submit, and that case is handled here, after
// submit returns. m.mu is held by the caller. Without a store, then runs at
// once.
func (m *Manager) persist(submit func(done func(error)), what string, then func(err error)) {
	if m.store == nil {
		then(nil)
		return
	}
	// state: 0 while submit runs; 1 once it has returned; 2 when done came
	// first (from within submit, or from the writer racing with it).
	var state atomic.Int32
	var early error
	submit(func(err error) {
		if err != nil {
			m.storeFailed(what, err)
		}
		early = err // before the swap that publishes it; read only if the swap wins
		if state.CompareAndSwap(0, 2) {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		then(err)
	})
	if !state.CompareAndSwap(0, 1) {
		then(early)
	}
}

// storeFailed logs a failed write, at most once a minute with the count of
// those in between: a full disk fails every write, and the bans still go to
// the kernel (a ban is never dropped because it cannot be recorded).
func (m *Manager) storeFailed(what string, err error) {
	n := m.storeErrs.Add(1)
	now := m.clk.Now()
	last := m.storeErrAt.Load()
	if last != 0 && now.UnixNano()-last < int64(time.Minute) {
		return
	}
	if !m.storeErrAt.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	m.log.Error("state database write failed: bans are enforced but will not survive a restart",
		"write", what, "failed_writes", n, "err", err)
}

// putBan records e's ban in the store, then runs then. m.mu is held.
func (m *Manager) putBan(e *entry, then func()) {
	b := e.ban
	sb := store.Ban{
		Jail: b.Jail, Target: b.Target, Start: b.Start, End: b.End,
		Failures: b.Failures, Lines: b.Lines, Manual: b.Manual, Count: b.Count,
	}
	m.persist(func(done func(error)) { m.store.PutBanAsync(sb, done) }, "ban", func(error) {
		if then != nil {
			then()
		}
	})
}

// restoreBans reads the bans in force of jail name from the store: those
// still in force, and ends those that ran out meanwhile.
func (m *Manager) restoreBans(name string) []Ban {
	if m.store == nil {
		return nil
	}
	all, err := m.store.JailBans(name)
	if err != nil {
		m.log.Error("read the bans in force from the state database: the jail starts without them", "jail", name, "err", err)
		return nil
	}
	now := m.clk.Now()
	var out []Ban
	expired := 0
	for _, sb := range all {
		p, err := normTarget(sb.Target)
		if err != nil {
			m.log.Warn("skipping a ban of the state database", "jail", name, "target", sb.Target, "err", err)
			continue
		}
		if !sb.End.IsZero() && !sb.End.After(now) {
			expired++
			m.store.EndBanAsync(name, p, sb.End, ReasonExpiredDown, func(err error) {
				if err != nil {
					m.storeFailed("end", err)
				}
			})
			continue
		}
		out = append(out, Ban{
			Jail: name, Target: p, Start: sb.Start, End: sb.End, Failures: sb.Failures,
			Lines: sb.Lines, Manual: sb.Manual, Count: sb.Count,
		})
	}
	if len(out) > 0 || expired > 0 {
		m.log.Info("bans read back from the state database", "jail", name, "in_force", len(out), "expired_meanwhile", expired)
	}
	return out
}

// reconcile brings the kernel to the table once a backend has started with
// what an earlier run left in it (StartKeep) and listed it: the bans waiting
// for it (adopt) that the kernel holds are applied; the others are banned;
// rules the kernel holds for no ban in the table are lifted (a ban that ended
// while the daemon was down, or whose end was committed just before a crash).
// listed is nil when the backend could not list: then every waiting ban is
// banned again (Ban is idempotent) and nothing is lifted. m.mu is held.
func (m *Manager) reconcile(j *jail, listed []action.Target, ok bool) {
	have := make(map[netip.Prefix]bool, len(listed))
	for _, t := range listed {
		have[t.Prefix] = true
	}
	var kept, banned, lifted int
	waiting := make([]*entry, 0, len(j.bans))
	for _, e := range j.bans {
		if e.adopt {
			waiting = append(waiting, e)
		}
	}
	slices.SortFunc(waiting, func(a, b *entry) int { return compareBans(&a.ban, &b.ban) })
	for _, e := range waiting {
		e.adopt = false
		if have[e.ban.Target] {
			e.ban.Applied, e.ban.Err = true, ""
			kept++
			continue
		}
		banned++
		m.enqueue(j, &opRef{kind: action.OpBan, target: e.ban.Target, e: e})
	}
	if ok {
		for _, t := range listed {
			if j.bans[t.Prefix] == nil {
				lifted++
				m.enqueue(j, &opRef{kind: action.OpUnban, target: t.Prefix})
			}
		}
	}
	m.log.Info("kernel reconciled", "jail", j.name, "kept", kept, "banned", banned, "lifted", lifted, "listed", ok)
}
