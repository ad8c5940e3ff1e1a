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
)

func (k OpKind) String() string {
	switch k {
	case OpBan:
		return "ban"
	case OpUnban:
		return "unban"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one call to make on a backend.
type Op struct {
	Kind   OpKind
	Target Target
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
}

// ExecutorOptions configures an Executor. Zero values take the defaults.
type ExecutorOptions struct {
	// QueueSize bounds the Ops waiting to run; Submit fails beyond it.
	QueueSize int
	// CallTimeout bounds each backend call: Start, every Ban and Unban, Stop.
	// The time an Op waits for an overrunning previous call counts against
	// its own timeout. Keep it above the backend's own lock timeout times
	// the kernel calls one operation makes (the iptables backend's Start
	// makes about four per address family).
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
}

// Defaults of ExecutorOptions.
const (
	DefaultQueueSize   = 256
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
// before Run are kept and run after Start. An Executor runs once.
//
// Each call runs on a short-lived goroutine of its own, so that the Executor
// can stop waiting at the deadline and report. Calls still never overlap, not
// even after a timeout: go-iptables cannot cancel the iptables process it
// waits for, and its check-then-insert is not atomic, so the next call waits
// until the overrunning one has returned. A call still running when Run
// returns is abandoned; its outcome is not reported.
type Executor struct {
	b        Backend
	log      *slog.Logger
	timeout  time.Duration
	onResult func(Result)
	onStart  func(error)
	queue    chan Op
	ran      atomic.Bool

	mu     sync.Mutex // orders closing against Submit's send
	closed bool

	inflight *call // owned by the Run goroutine: a call that overran its timeout
}

// call is one backend call running on its own goroutine.
type call struct {
	name    string
	op      *Op // nil for Start and Stop
	started time.Time
	done    chan error // buffered: the call's goroutine never blocks
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
	return &Executor{
		b:        b,
		log:      logger.With("backend", b.Name()),
		timeout:  opts.CallTimeout,
		onResult: opts.OnResult,
		onStart:  opts.OnStart,
		queue:    make(chan Op, opts.QueueSize),
	}, nil
}

// Submit queues op and returns at once. It fails with ErrQueueFull when the
// queue is full, ErrClosed once Run is ending, and ErrInvalidTarget (wrapped)
// for a target that Target.Validate refuses. Safe for concurrent use.
func (e *Executor) Submit(op Op) error {
	if op.Kind != OpBan && op.Kind != OpUnban {
		return fmt.Errorf("submit %v: unknown operation", op.Kind)
	}
	if err := op.Target.Validate(); err != nil {
		return fmt.Errorf("submit %v: %w", op.Kind, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("submit %v %v: %w", op.Kind, op.Target, ErrClosed)
	}
	select {
	case e.queue <- op:
		return nil
	default:
		return fmt.Errorf("submit %v %v: %w (%d waiting)", op.Kind, op.Target, ErrQueueFull, cap(e.queue))
	}
}

// Pending returns the number of Ops waiting to run.
func (e *Executor) Pending() int { return len(e.queue) }

// Run starts the backend, runs the submitted Ops until ctx is done, then
// stops the backend. It returns nil after a clean stop, the error of Start
// if that failed (the backend is then stopped too), or the error of Stop.
func (e *Executor) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	if err := e.exec(ctx, "start", nil, e.b.Start); err != nil {
		err = fmt.Errorf("start %s: %w", e.b.Name(), err)
		e.started(err)
		return errors.Join(err, e.shutdown(ctx, err))
	}
	e.started(nil)
	e.log.Debug("backend started")
	for {
		select {
		case <-ctx.Done():
			return e.shutdown(ctx, ctx.Err())
		case op := <-e.queue:
			if err := ctx.Err(); err != nil {
				// Both were ready and select chose the Op: it is not run.
				e.report(Result{Op: op, Err: fmt.Errorf("%w: not run: %w", ErrClosed, err)})
				continue
			}
			e.runOp(ctx, op)
		}
	}
}

func (e *Executor) runOp(ctx context.Context, op Op) {
	fn := func(c context.Context) error { return e.b.Ban(c, op.Target) }
	if op.Kind == OpUnban {
		fn = func(c context.Context) error { return e.b.Unban(c, op.Target) }
	}
	start := time.Now()
	err := e.exec(ctx, op.Kind.String(), &op, fn)
	e.report(Result{Op: op, Err: err, Elapsed: time.Since(start)})
}

// exec runs fn on its own goroutine with the per-call timeout and waits for
// it at most that long. A call that overruns stays the inflight call: the
// next exec waits for it (within its own timeout) before it starts.
func (e *Executor) exec(ctx context.Context, name string, op *Op, fn func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	if err := e.waitIdle(ctx, cctx, name); err != nil {
		cancel()
		return err
	}
	c := &call{name: name, op: op, started: time.Now(), done: make(chan error, 1)}
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
		if c.op != nil {
			e.report(Result{Op: *c.op, Err: err, Elapsed: time.Since(c.started), Late: true})
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
// backend with a context that outlives ctx.
func (e *Executor) shutdown(ctx context.Context, cause error) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	for drained := false; !drained; {
		select {
		case op := <-e.queue:
			e.report(Result{Op: op, Err: fmt.Errorf("%w: not run: %w", ErrClosed, cause)})
		default:
			drained = true
		}
	}
	if err := e.exec(context.WithoutCancel(ctx), "stop", nil, e.b.Stop); err != nil {
		return fmt.Errorf("stop %s: %w", e.b.Name(), err)
	}
	e.log.Debug("backend stopped")
	return nil
}

// started passes the outcome of Start to OnStart.
func (e *Executor) started(err error) {
	if e.onStart != nil {
		e.onStart(err)
	}
}

func (e *Executor) report(r Result) {
	if e.onResult != nil {
		e.onResult(r)
		return
	}
	if r.Err != nil {
		e.log.Warn("backend call failed", "op", r.Op.Kind, "target", r.Op.Target, "late", r.Late, "err", r.Err)
		return
	}
	e.log.Debug("backend call done", "op", r.Op.Kind, "target", r.Op.Target, "late", r.Late, "elapsed", r.Elapsed)
}
