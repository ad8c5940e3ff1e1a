package ban

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/logjail/logjail/internal/action"
)

// backendRun is one backend running under its Executor, from Start to Stop.
// A jail gets a new one when its backend is replaced. Fields other than b,
// ex, cancel, done and err are guarded by Manager.mu.
type backendRun struct {
	b      action.Backend
	ex     *action.Executor
	cancel context.CancelFunc
	done   chan struct{} // closed when Executor.Run has returned
	err    error         // what it returned; read after done

	// pending holds the calls that found the executor's queue full, in order;
	// they are handed over as it drains, and every later call waits behind
	// them, so that a ban and its unban reach the backend in that order.
	pending []*opRef
	// sentQ mirrors the executor's queue (and the call it runs): the calls
	// handed over whose result has not come. Results come in this order
	// (action.Result: exactly one Result with Late false per Op, in order).
	sentQ []*opRef
	// overran is the call whose result was a timeout: its real outcome may
	// still come, as a Result with Late set.
	overran *opRef
	closed  bool // the executor refused a call with ErrClosed
}

// opRef is one backend call the manager makes, or a retry to make.
type opRef struct {
	kind      action.OpKind
	target    netip.Prefix
	e         *entry // ban calls: the ban it applies
	attempt   int    // 0: the first call; n: the nth retry
	cancelled bool   // waiting in pending or in the retry heap, and no longer wanted
	retry     *opRef // the retry scheduled after this call failed

	// Retries only.
	at  time.Time
	j   *jail
	run *backendRun
}

// startRun starts b under a new Executor and waits for the outcome of its
// Start. The executor's context outlives ctx (it is cancelled by stopRun),
// but SetJail's caller can give up waiting: the start is then cancelled.
func (m *Manager) startRun(ctx context.Context, jail string, b action.Backend) (*backendRun, error) {
	run := &backendRun{b: b, done: make(chan struct{})}
	started := make(chan error, 1)
	opts := m.exOpts
	userStart, userResult := opts.OnStart, opts.OnResult
	opts.OnStart = func(err error) {
		started <- err
		if userStart != nil {
			userStart(err)
		}
	}
	opts.OnResult = func(r action.Result) {
		m.onResult(jail, run, r)
		if userResult != nil {
			userResult(r)
		}
	}
	ex, err := action.NewExecutor(b, m.log.With("jail", jail), opts)
	if err != nil {
		return nil, err
	}
	run.ex = ex
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	run.cancel = cancel
	go func() {
		defer close(run.done)
		run.err = ex.Run(rctx)
	}()
	select {
	case err := <-started:
		if err == nil {
			return run, nil
		}
		// The executor stops the backend again after a failed Start; wait
		// for that, so that a retry does not overlap it.
		if werr := m.waitRun(ctx, run); werr != nil {
			return nil, errors.Join(err, werr)
		}
		return nil, run.err
	case <-run.done: // cannot happen before OnStart, but never wait forever
		cancel()
		return nil, fmt.Errorf("start %s: executor ended: %w", b.Name(), run.err)
	case <-ctx.Done():
		cancel()
		if werr := m.waitRun(context.WithoutCancel(ctx), run); werr != nil {
			return nil, errors.Join(ctx.Err(), werr)
		}
		return nil, fmt.Errorf("start %s: %w", b.Name(), ctx.Err())
	}
}

// stopRun stops the backend of run and waits for it, within ctx and the
// executor's own bound. It returns Stop's error.
func (m *Manager) stopRun(ctx context.Context, run *backendRun) error {
	run.cancel()
	if err := m.waitRun(ctx, run); err != nil {
		return err
	}
	return run.err
}

// waitRun waits until run's executor has returned, at most the executor's
// call timeout plus a margin (the executor bounds Stop by its call timeout).
func (m *Manager) waitRun(ctx context.Context, run *backendRun) error {
	bound := m.exOpts.CallTimeout + stopMargin
	t := m.clk.NewTimer(bound)
	defer t.Stop()
	select {
	case <-run.done:
		return nil
	case <-t.C():
		return fmt.Errorf("backend %s not stopped after %v", run.b.Name(), bound)
	case <-ctx.Done():
		return fmt.Errorf("wait for backend %s: %w", run.b.Name(), ctx.Err())
	}
}

// enqueue hands ref to the jail's executor, or queues it behind the calls
// that wait already. Without a backend (during a swap) it does nothing: the
// next backend gets every ban in force. m.mu is held.
func (m *Manager) enqueue(j *jail, ref *opRef) {
	r := j.run
	if r == nil || r.closed {
		return
	}
	if len(r.pending) == 0 && m.submit(j, r, ref) {
		return
	}
	if ref.kind == action.OpBan {
		ref.e.queued = ref
	}
	r.pending = append(r.pending, ref)
}

// feed hands the waiting calls to the executor while it takes them. m.mu is
// held.
func (m *Manager) feed(j *jail, r *backendRun) {
	for len(r.pending) > 0 {
		ref := r.pending[0]
		if !ref.cancelled && !m.submit(j, r, ref) {
			return
		}
		r.pending[0] = nil
		r.pending = r.pending[1:]
	}
	r.pending = nil // let the grown array go
}

// submit hands ref to the executor and reports whether it is done with ref:
// false when the queue is full (or the executor is closing), so ref must wait.
// m.mu is held, which orders sentQ like the executor's queue.
func (m *Manager) submit(j *jail, r *backendRun, ref *opRef) bool {
	if r.closed || r.ex.Pending() >= m.exOpts.QueueSize {
		return false // full: spare Submit the error it would build
	}
	err := r.ex.Submit(action.Op{Kind: ref.kind, Target: action.Target{Prefix: ref.target}})
	switch {
	case err == nil:
		r.sentQ = append(r.sentQ, ref)
		if ref.kind == action.OpBan {
			ref.e.sent = true
			if ref.e.queued == ref {
				ref.e.queued = nil
			}
		}
		return true
	case errors.Is(err, action.ErrQueueFull):
		return false
	case errors.Is(err, action.ErrClosed):
		r.closed = true // stopping: results are no longer wanted
		return false
	default: // an invalid target: normTarget lets none through
		m.recordError(j, err.Error())
		m.log.Error("backend call refused", "jail", j.name, "op", ref.kind, "target", action.Target{Prefix: ref.target}, "err", err)
		return true
	}
}

// onResult handles the outcome of one call, on the executor's goroutine.
func (m *Manager) onResult(name string, r *backendRun, res action.Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ref *opRef
	if res.Late {
		if o := r.overran; o != nil && o.kind == res.Op.Kind && o.target == res.Op.Target.Prefix {
			ref = o
		}
		r.overran = nil
	} else if len(r.sentQ) > 0 {
		ref = r.sentQ[0]
		r.sentQ[0] = nil
		r.sentQ = r.sentQ[1:]
		if len(r.sentQ) == 0 {
			r.sentQ = nil
		}
		if ref.kind != res.Op.Kind || ref.target != res.Op.Target.Prefix {
			m.log.Error("backend result out of order", "jail", name, "op", res.Op.Kind, "target", res.Op.Target,
				"want_op", ref.kind, "want_target", action.Target{Prefix: ref.target})
			ref = nil
		}
	}
	j := m.jails[name]
	if m.stopped || j == nil || j.run != r || ref == nil {
		return // the backend was replaced, removed or is stopping: its state no longer matters
	}
	defer m.feed(j, r)
	if !res.Late && errors.Is(res.Err, action.ErrCallTimeout) && r.overran == nil {
		r.overran = ref
	}
	if ref.kind == action.OpList {
		m.listed(j, res)
		return
	}
	cur := ref.kind == action.OpBan && j.bans[ref.target] == ref.e
	switch {
	case res.Err == nil:
		if cur {
			ref.e.ban.Applied, ref.e.ban.Err = true, ""
		}
		if res.Late && ref.retry != nil { // the overrunning call did it after all
			ref.retry.cancelled = true
		}
	case errors.Is(res.Err, action.ErrClosed):
	case res.Late:
		// Its timeout was counted and a retry scheduled; keep the real error.
		if cur {
			ref.e.ban.Err = res.Err.Error()
		}
		j.lastErr = fmt.Sprintf("%v %v: %v", ref.kind, action.Target{Prefix: ref.target}, res.Err)
		j.lastErrAt = m.clk.Now()
	default:
		m.failed(j, r, ref, res.Err)
	}
}

// failed records a failed call and schedules its retry. m.mu is held.
func (m *Manager) failed(j *jail, r *backendRun, ref *opRef, err error) {
	t := action.Target{Prefix: ref.target}
	m.recordError(j, fmt.Sprintf("%v %v: %v", ref.kind, t, err))
	cur := ref.kind == action.OpBan && j.bans[ref.target] == ref.e
	if cur {
		ref.e.ban.Err = err.Error()
	}
	permanentErr := errors.Is(err, action.ErrUnsupportedTarget) || errors.Is(err, action.ErrInvalidTarget)
	if permanentErr || ref.attempt >= m.retries {
		if cur {
			ref.e.gaveUp = true
		}
		m.log.Warn("backend call failed", "jail", j.name, "op", ref.kind, "target", t, "attempt", ref.attempt+1,
			"retry", false, "err", err)
		return
	}
	d := min(m.backoff<<ref.attempt, MaxRetryBackoff)
	next := &opRef{
		kind: ref.kind, target: ref.target, e: ref.e, attempt: ref.attempt + 1,
		at: m.clk.Now().Add(d), j: j, run: r,
	}
	ref.retry = next
	heap.Push(&m.retryQ, next)
	m.wakeFor(next.at)
	m.log.Warn("backend call failed", "jail", j.name, "op", ref.kind, "target", t, "attempt", ref.attempt+1,
		"retry_in", d, "err", err)
}

// fireRetry makes a retry again if its call is still wanted: the same
// backend, and for a ban the same ban in force, for an unban no ban in force.
// m.mu is held.
func (m *Manager) fireRetry(ref *opRef) {
	j := ref.j
	if ref.cancelled || m.jails[j.name] != j || j.run != ref.run {
		return
	}
	cur := j.bans[ref.target]
	if ref.kind == action.OpBan && cur != ref.e || ref.kind == action.OpUnban && cur != nil {
		return
	}
	ref.at, ref.j, ref.run = time.Time{}, nil, nil
	m.enqueue(j, ref)
}

// listed handles the outcome of the list that follows a start. A list that
// overran its timeout is waited for (its late Result); one that failed
// leaves every waiting ban to be banned again. m.mu is held.
func (m *Manager) listed(j *jail, res action.Result) {
	switch {
	case res.Err == nil:
		m.reconcile(j, res.Targets, true)
	case errors.Is(res.Err, action.ErrClosed):
	case !res.Late && errors.Is(res.Err, action.ErrCallTimeout):
		m.log.Warn("listing the kernel's bans is slow: waiting for it", "jail", j.name, "err", res.Err)
	default:
		m.recordError(j, fmt.Sprintf("list: %v", res.Err))
		m.log.Warn("cannot list the kernel's bans: banning every ban in force again, lifting none", "jail", j.name, "err", res.Err)
		m.reconcile(j, nil, false)
	}
}
