package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// OpKind says what an Op asks of a backend.
type OpKind uint8

// The operations a caller can submit. Start and Stop are not operations: the
// Executor runs them itself, around the life of Run.
const (
	OpBan OpKind = iota + 1
	OpUnban
	// OpList reads back the targets the backend bans (Lister.List); its
	// Result carries them in Targets. It takes no Target, and needs a
	// backend that implements Lister.
	OpList
)

func (k OpKind) String() string {
	switch k {
	case OpBan:
		return "ban"
	case OpUnban:
		return "unban"
	case OpList:
		return "list"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one call to make on a backend.
type Op struct {
	Kind   OpKind
	Target Target // zero for OpList
}

// Result is the outcome of one Op.
//
// Every submitted Op gets exactly one Result with Late false: its outcome, or
// the reason it never ran. An Op whose call overran CallTimeout is reported at
// the deadline with an Err that wraps ErrCallTimeout (or the Run context's
// error on shutdown), because the call itself may not be interruptible; when
// that call does return, a second Result with Late set carries what it really
// returned. The Target's state is unknown between the two, and since Ban and
// Unban are idempotent a caller may simply resubmit.
type Result struct {
	Op      Op
	Err     error
	Elapsed time.Duration // from the start of the call (not from Submit)
	Late    bool
	// Targets is what an OpList found (Lister.List), when Err is nil;
	// nil for other Ops.
	Targets []Target
}

// ExecutorOptions configures an Executor. Zero values take the defaults.
type ExecutorOptions struct {
	// QueueSize bounds the Ops waiting to run; Submit fails beyond it.
	QueueSize int
	// CallTimeout bounds each backend call: Start, every Ban and Unban, Stop.
	// The time an Op waits for an overrunning previous call counts against
	// its own timeout. Keep it above the backend's own lock timeout times
	// the kernel calls one operation makes (the iptables backend's Start
	// makes about four per address family), and above the time StartKeep
	// and List take to read every ban in force (see the backend's figures).
	CallTimeout time.Duration
	// OnResult receives every Result, on the Executor's goroutine, in the
	// order the calls end. It must not block for long: it delays the next
	// call. When nil, failures are logged at Warn and successes at Debug.
	OnResult func(Result)
	// OnStart, when set, receives the outcome of Start (nil when it
	// succeeded), once, on the Executor's goroutine, before any Op runs; when
	// Start failed, it is called before the backend is stopped again. It lets
	// a caller wait until the backend is up without waiting for Run to end.
	// It must not block for long. A second Run (ErrRunTwice) does not call it.
	OnStart func(error)
	// KeepOnStart makes Run start a backend that implements Keeper with
	// StartKeep instead of Start: the bans an earlier run left in the kernel
	// stay, and are enforced throughout. A backend that is not a Keeper is
	// started with Start (a warning is logged); CanKeep tells which applies.
	KeepOnStart bool
	// KeepOnStop makes Run end with StopKeep instead of Stop for a backend
	// that implements Keeper: its rules stay in the kernel for the next start
	// to adopt (server --keep-on-stop). SetKeepOnStop changes it while Run
	// runs (a jail removed from the configuration wants Stop). Whatever it
	// says, a failed StartKeep is followed by StopKeep: a failed start never
	// lifts the bans it found.
	KeepOnStop bool
}

// Defaults of ExecutorOptions.
const (
	// DefaultQueueSize is large for the start that puts back every ban in force after a
	// reboot: the queue bounds the bans one BanBatch call takes, and each iptables-restore
	// costs tens of milliseconds more as the chain grows, so 100,000 bans went in 29 s in
	// batches of 256 (ljbench -only startup).
	DefaultQueueSize   = 4096
	DefaultCallTimeout = 30 * time.Second
)

var (
	// ErrQueueFull is returned by Submit when QueueSize Ops are waiting.
	ErrQueueFull = errors.New("action queue full")
	// ErrClosed is returned by Submit once Run has ended or is ending, and
	// wrapped in the Result of each Op that was still queued then.
	ErrClosed = errors.New("action executor closed")
	// ErrCallTimeout is wrapped by the Result of a call that overran
	// CallTimeout.
	ErrCallTimeout = errors.New("backend call timed out")
	// ErrRunTwice is returned by a second call to Run.
	ErrRunTwice = errors.New("action executor already run")
)

// Executor runs the calls to one Backend one at a time on its own goroutine
// (the one that calls Run), so that a slow kernel call never stalls a jail:
// callers Submit and get their Result later through OnResult.
//
// Life cycle: Run calls Start, then runs submitted Ops in order until its
// context is done; then it refuses new Ops, reports the queued ones as not
// run (ErrClosed), and calls Stop with a fresh CallTimeout. Ops submitted
// before Run are kept and run after Start. An Executor runs once. With
// ExecutorOptions.KeepOnStart and KeepOnStop, a backend that implements
// Keeper is started with StartKeep and stopped with StopKeep instead, so
// that its bans outlive the Executor; List (or an OpList) then reads back
// what the kernel holds, on the Executor's goroutine like every other call,
// for the caller to reconcile with its own record.
//
// Each call runs on a short-lived goroutine of its own, so that the Executor
// can stop waiting at the deadline and report. Calls still never overlap, not
// even after a timeout: go-iptables cannot cancel the iptables process it
// waits for, and its check-then-insert is not atomic, so the next call waits
// until the overrunning one has returned. A call still running when Run
// returns is abandoned; its outcome is not reported.
type Executor struct {
	b           Backend
	keeper      Keeper  // b, when it implements Keeper
	lister      Lister  // b, when it implements Lister
	batcher     Batcher // b, when it implements Batcher
	log         *slog.Logger
	timeout     time.Duration
	onResult    func(Result)
	onStart     func(error)
	keepOnStart bool
	keepOnStop  atomic.Bool
	queue       chan request
	ran         atomic.Bool

	mu     sync.Mutex // orders closing against Submit's send
	closed bool

	inflight *call // owned by the Run goroutine: a call that overran its timeout
}

// request is one queued Op. A request with a reply channel comes from List:
// its Result goes there (buffered, so the executor never blocks) instead of
// to OnResult, and a late outcome of it is only logged.
type request struct {
	op    Op
	reply chan Result
}

// call is one backend call running on its own goroutine.
type call struct {
	name    string
	req     *request  // nil for Start and Stop
	batch   []request // the other bans of a BanBatch call, after req
	errs    []error   // BanBatch: one error per target (req's first); read after done
	started time.Time
	done    chan error // buffered: the call's goroutine never blocks
	targets []Target   // OpList: what List returned; read after done
}

// NewExecutor returns an Executor for b. The logger is scoped to the backend
// here; a nil logger discards.
func NewExecutor(b Backend, logger *slog.Logger, opts ExecutorOptions) (*Executor, error) {
	if b == nil {
		return nil, errors.New("new executor: nil backend")
	}
	if opts.QueueSize < 0 || opts.CallTimeout < 0 {
		return nil, fmt.Errorf("new executor: negative queue size %d or call timeout %v", opts.QueueSize, opts.CallTimeout)
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Executor{
		b:           b,
		log:         logger.With("backend", b.Name()),
		timeout:     opts.CallTimeout,
		onResult:    opts.OnResult,
		onStart:     opts.OnStart,
		keepOnStart: opts.KeepOnStart,
		queue:       make(chan request, opts.QueueSize),
	}
	e.keeper, _ = b.(Keeper)
	e.lister, _ = b.(Lister)
	e.batcher, _ = b.(Batcher)
	e.keepOnStop.Store(opts.KeepOnStop)
	return e, nil
}

// CanKeep reports whether the backend implements Keeper, so that KeepOnStart
// and KeepOnStop take effect. Without it a caller that wants its bans to
// survive a restart must apply them all again after Start.
func (e *Executor) CanKeep() bool { return e.keeper != nil }

// CanList reports whether the backend implements Lister, so that OpList and
// List work.
func (e *Executor) CanList() bool { return e.lister != nil }

// SetKeepOnStop sets, until Run stops the backend, whether it stops with
// StopKeep (true) or Stop (false); see ExecutorOptions.KeepOnStop. Safe for
// concurrent use; set it before cancelling Run's context.
func (e *Executor) SetKeepOnStop(keep bool) { e.keepOnStop.Store(keep) }

// Submit queues op and returns at once. It fails with ErrQueueFull when the
// queue is full, ErrClosed once Run is ending, and ErrInvalidTarget (wrapped)
// for a target that Target.Validate refuses. Safe for concurrent use.
//
// OpList takes no Target; it fails with ErrUnsupportedOp (wrapped) when the
// backend does not implement Lister.
func (e *Executor) Submit(op Op) error {
	return e.submit(request{op: op})
}

func (e *Executor) submit(req request) error {
	op := req.op
	switch op.Kind {
	case OpBan, OpUnban:
		if err := op.Target.Validate(); err != nil {
			return fmt.Errorf("submit %v: %w", op.Kind, err)
		}
	case OpList:
		if op.Target != (Target{}) {
			return fmt.Errorf("submit %v: takes no target (got %v)", op.Kind, op.Target)
		}
		if e.lister == nil {
			return fmt.Errorf("submit %v: %w: %s does not implement Lister", op.Kind, ErrUnsupportedOp, e.b.Name())
		}
	default:
		return fmt.Errorf("submit %v: unknown operation", op.Kind)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("submit %v: %w", opName(op), ErrClosed)
	}
	select {
	case e.queue <- req:
		return nil
	default:
		return fmt.Errorf("submit %v: %w (%d waiting)", opName(op), ErrQueueFull, cap(e.queue))
	}
}

// List queues an OpList and waits for its outcome: the targets the backend
// bans, read from the kernel on the executor's goroutine like every other
// call, after the Ops queued before it (and after Start, if Run has not
// started it yet). Its Result goes to the caller, not to OnResult. It fails
// like Submit, with the Result's error (ErrCallTimeout, ErrClosed, ...), or
// with ctx's error when ctx ends first; the call then still runs, and its
// outcome is dropped. Safe for concurrent use.
func (e *Executor) List(ctx context.Context) ([]Target, error) {
	reply := make(chan Result, 1)
	if err := e.submit(request{op: Op{Kind: OpList}, reply: reply}); err != nil {
		return nil, err
	}
	select {
	case r := <-reply:
		if r.Err != nil {
			return nil, fmt.Errorf("list: %w", r.Err)
		}
		return r.Targets, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("list: %w", ctx.Err())
	}
}

// opName is op for messages: "ban 192.0.2.1", "list".
func opName(op Op) string {
	if op.Kind == OpList {
		return op.Kind.String()
	}
	return fmt.Sprintf("%v %v", op.Kind, op.Target)
}

// Pending returns the number of Ops waiting to run.
func (e *Executor) Pending() int { return len(e.queue) }

// Run starts the backend, runs the submitted Ops until ctx is done, then
// stops the backend. It returns nil after a clean stop, the error of Start
// if that failed (the backend is then stopped too), or the error of Stop.
//
// With KeepOnStart and a Keeper backend, "start" is StartKeep; with
// KeepOnStop (or SetKeepOnStop) and a Keeper, "stop" is StopKeep, and after
// a failed StartKeep it is StopKeep in any case.
func (e *Executor) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	name, start := "start", e.b.Start
	keptStart := e.keepOnStart && e.keeper != nil
	switch {
	case keptStart:
		name, start = "start keep", e.keeper.StartKeep
	case e.keepOnStart:
		e.log.Warn("backend cannot keep the rules of an earlier run: starting afresh")
	}
	if err := e.exec(ctx, &call{name: name}, start); err != nil {
		err = fmt.Errorf("%s %s: %w", name, e.b.Name(), err)
		e.started(err)
		return errors.Join(err, e.shutdown(ctx, err, keptStart))
	}
	e.started(nil)
	e.log.Debug("backend started", "keep", keptStart)
	for {
		select {
		case <-ctx.Done():
			return e.shutdown(ctx, ctx.Err(), false)
		case req := <-e.queue:
			if err := ctx.Err(); err != nil {
				// Both were ready and select chose the Op: it is not run.
				e.report(req, Result{Op: req.op, Err: fmt.Errorf("%w: not run: %w", ErrClosed, err)})
				continue
			}
			if req.op.Kind != OpBan || e.batcher == nil {
				e.runOp(ctx, req)
				continue
			}
			// Bans queued together go in one BanBatch call; the first other Op
			// taken from the queue runs right after it, in queue order.
			batch := []request{req}
			var next *request
		collect:
			for len(batch) < maxBatch {
				select {
				case r := <-e.queue:
					if r.op.Kind != OpBan {
						next = &r
						break collect
					}
					batch = append(batch, r)
				default:
					break collect
				}
			}
			if len(batch) == 1 {
				e.runOp(ctx, req)
			} else {
				e.runBatch(ctx, batch)
			}
			if next != nil {
				if err := ctx.Err(); err != nil {
					e.report(*next, Result{Op: next.op, Err: fmt.Errorf("%w: not run: %w", ErrClosed, err)})
					continue
				}
				e.runOp(ctx, *next)
			}
		}
	}
}

// maxBatch bounds the bans of one BanBatch call: one iptables-restore transaction per family.
const maxBatch = DefaultQueueSize

// runBatch bans the targets of reqs (all OpBan) in one BanBatch call and
// reports one Result per request, in order.
func (e *Executor) runBatch(ctx context.Context, reqs []request) {
	targets := make([]Target, len(reqs))
	for i, r := range reqs {
		targets[i] = r.op.Target
	}
	c := &call{name: "ban batch", req: &reqs[0], batch: reqs[1:]}
	start := time.Now()
	err := e.exec(ctx, c, func(cc context.Context) error {
		c.errs = e.batcher.BanBatch(cc, targets)
		return nil
	})
	el := time.Since(start)
	for i, r := range reqs {
		res := Result{Op: r.op, Err: err, Elapsed: el}
		if err == nil && i < len(c.errs) {
			res.Err = c.errs[i]
		}
		e.report(r, res)
	}
}

func (e *Executor) runOp(ctx context.Context, req request) {
	op := req.op
	c := &call{name: op.Kind.String(), req: &req}
	var fn func(context.Context) error
	switch op.Kind {
	case OpBan:
		fn = func(cc context.Context) error { return e.b.Ban(cc, op.Target) }
	case OpUnban:
		fn = func(cc context.Context) error { return e.b.Unban(cc, op.Target) }
	case OpList:
		// c.targets is written before done is sent, and read after it is
		// received.
		fn = func(cc context.Context) (err error) {
			c.targets, err = e.lister.List(cc)
			return err
		}
	}
	start := time.Now()
	err := e.exec(ctx, c, fn)
	r := Result{Op: op, Err: err, Elapsed: time.Since(start)}
	if err == nil {
		r.Targets = c.targets
	}
	e.report(req, r)
}

// exec runs fn on its own goroutine with the per-call timeout and waits for
// it at most that long. A call that overruns stays the inflight call: the
// next exec waits for it (within its own timeout) before it starts.
// c names the call (and, for an Op, carries its request); exec sets the
// rest.
func (e *Executor) exec(ctx context.Context, c *call, fn func(context.Context) error) error {
	name := c.name
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	if err := e.waitIdle(ctx, cctx, name); err != nil {
		cancel()
		return err
	}
	c.started, c.done = time.Now(), make(chan error, 1)
	go func() {
		defer cancel()
		c.done <- fn(cctx)
	}()
	select {
	case err := <-c.done:
		return err
	case <-cctx.Done():
	}
	select {
	case err := <-c.done: // it returned at the deadline
		return err
	default:
	}
	e.inflight = c
	return e.deadlineError(ctx, cctx, name+" still running")
}

// waitIdle waits until an overrunning previous call has returned, and
// reports that call's late outcome.
func (e *Executor) waitIdle(ctx, cctx context.Context, name string) error {
	c := e.inflight
	if c == nil {
		return nil
	}
	select {
	case err := <-c.done:
		e.inflight = nil
		if c.req != nil && c.req.reply == nil {
			r := Result{Op: c.req.op, Err: err, Elapsed: time.Since(c.started), Late: true}
			if err == nil {
				r.Targets = c.targets
			}
			if c.errs != nil {
				r.Err = c.errs[0]
			}
			e.report(*c.req, r)
			for i, b := range c.batch {
				br := Result{Op: b.op, Err: err, Elapsed: r.Elapsed, Late: true}
				if c.errs != nil {
					br.Err = c.errs[i+1]
				}
				e.report(b, br)
			}
		} else {
			e.log.Warn("late backend result", "call", c.name, "elapsed", time.Since(c.started), "err", err)
		}
		return nil
	case <-cctx.Done():
		return e.deadlineError(ctx, cctx, fmt.Sprintf("%s not run: previous %s call still running", name, c.name))
	}
}

// deadlineError says why cctx (derived from parent) ended.
func (e *Executor) deadlineError(parent, cctx context.Context, what string) error {
	if err := parent.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w after %v: %w", what, ErrCallTimeout, e.timeout, cctx.Err())
}

// shutdown refuses new Ops, reports the queued ones as not run and stops the
// backend with a context that outlives ctx: with StopKeep after a failed
// StartKeep (keptStartFailed) or when the rules are to be kept, else with
// Stop.
func (e *Executor) shutdown(ctx context.Context, cause error, keptStartFailed bool) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	for drained := false; !drained; {
		select {
		case req := <-e.queue:
			e.report(req, Result{Op: req.op, Err: fmt.Errorf("%w: not run: %w", ErrClosed, cause)})
		default:
			drained = true
		}
	}
	name, stop := "stop", e.b.Stop
	keep := e.keeper != nil && (keptStartFailed || e.keepOnStop.Load())
	if keep {
		name, stop = "stop keep", e.keeper.StopKeep
	}
	if err := e.exec(context.WithoutCancel(ctx), &call{name: name}, stop); err != nil {
		return fmt.Errorf("%s %s: %w", name, e.b.Name(), err)
	}
	e.log.Debug("backend stopped", "keep", keep)
	return nil
}

// started passes the outcome of Start to OnStart.
func (e *Executor) started(err error) {
	if e.onStart != nil {
		e.onStart(err)
	}
}

// report delivers the Result of req: to List's caller, to OnResult, or to
// the log.
func (e *Executor) report(req request, r Result) {
	if req.reply != nil {
		req.reply <- r // buffered, and it gets exactly one non-late Result
		return
	}
	if e.onResult != nil {
		e.onResult(r)
		return
	}
	attrs := []any{"op", r.Op.Kind}
	if r.Op.Kind == OpList {
		attrs = append(attrs, "targets", len(r.Targets))
	} else {
		attrs = append(attrs, "target", r.Op.Target)
	}
	attrs = append(attrs, "late", r.Late)
	if r.Err != nil {
		e.log.Warn("backend call failed", append(attrs, "err", r.Err)...)
		return
	}
	e.log.Debug("backend call done", append(attrs, "elapsed", r.Elapsed)...)
}
