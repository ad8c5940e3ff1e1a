package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// An op is one queued write. apply runs inside the batch's transaction; it
// may run twice (a failed batch is rolled back and its ops are retried one
// per transaction), so it keeps no state of its own between runs.
type op interface {
	apply(t *txn) error
}

type opFunc func(t *txn) error

func (f opFunc) apply(t *txn) error { return f(t) }

type queued struct {
	op   op
	done func(error)
}

// writer is the one goroutine that writes: it drains the queue in group
// commits (see the package doc).
type writer struct {
	s *Store

	mu       sync.Mutex
	queue    []queued
	closed   bool
	firstErr error // of ops without a done callback, since the last takeErr

	wake    chan struct{} // capacity 1
	stopped chan struct{}

	stats Stats
}

// Stats counts the writer's work since Open.
type Stats struct {
	Ops     int64 // writes committed or failed
	Batches int64 // transactions committed
	Errors  int64 // writes that failed
	Pending int   // writes queued now
}

func newWriter(s *Store) *writer {
	return &writer{s: s, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// submit queues o; it never blocks. done, if not nil, is called from the
// writer goroutine once o is committed (nil) or has failed.
func (w *writer) submit(o op, done func(error)) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		if done != nil {
			done(ErrClosed)
		}
		return
	}
	w.queue = append(w.queue, queued{op: o, done: done})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// do queues o and waits for its commit.
func (w *writer) do(o op) error {
	ch := make(chan error, 1)
	w.submit(o, func(err error) { ch <- err })
	return <-ch
}

// close stops taking writes, commits what is queued and waits for the
// goroutine to end.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.stopped
}

func (w *writer) takeErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.firstErr
	w.firstErr = nil
	return err
}

func (w *writer) snapshot() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.stats
	st.Pending = len(w.queue)
	return st
}

func (w *writer) run() {
	defer close(w.stopped)
	var batch []queued
	for {
		<-w.wake
		for {
			w.mu.Lock()
			batch, w.queue = w.queue, batch[:0]
			closed := w.closed
			w.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			for rest := batch; len(rest) > 0; {
				n := min(len(rest), w.s.opts.MaxBatch)
				w.commit(rest[:n])
				rest = rest[n:]
			}
			clear(batch) // drop references to the ops and callbacks
		}
	}
}

// commit runs ops in one transaction. If it fails, it is rolled back and
// each op runs again in its own transaction, so that one bad write does not
// fail the others and each gets its own error.
func (w *writer) commit(ops []queued) {
	err := w.tx(ops)
	if err == nil {
		w.finish(ops, nil, 1)
		return
	}
	if len(ops) == 1 {
		w.finish(ops, err, 0)
		return
	}
	w.s.log.Warn("store batch failed, retrying its writes one by one", "writes", len(ops), "err", err)
	for i := range ops {
		err := w.tx(ops[i : i+1])
		batches := int64(0)
		if err == nil {
			batches = 1
		}
		w.finish(ops[i:i+1], err, batches)
	}
}

func (w *writer) tx(ops []queued) error {
	ctx := context.Background()
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &txn{ctx: ctx, tx: tx, st: &w.s.st}
	for _, q := range ops {
		if err := q.op.apply(t); err != nil {
			tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		tx.Rollback() // the driver resets a failed commit; this is for older ones
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// finish reports the outcome of ops: to their done callbacks, and for the
// writes queued without one, in the log (nobody else would see the error)
// and to the next Flush.
func (w *writer) finish(ops []queued, err error, batches int64) {
	unheard := 0
	w.mu.Lock()
	w.stats.Ops += int64(len(ops))
	w.stats.Batches += batches
	if err != nil {
		w.stats.Errors += int64(len(ops))
		for _, q := range ops {
			if q.done == nil {
				unheard++
			}
		}
		if unheard > 0 && w.firstErr == nil {
			w.firstErr = err
		}
	}
	w.mu.Unlock()
	if unheard > 0 {
		w.s.log.Error("store write failed", "writes", unheard, "err", err)
	}
	for _, q := range ops {
		if q.done != nil {
			q.done(err)
		}
	}
}

// txn is the transaction of one batch, with the writer's prepared
// statements bound to it on first use.
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	st    *stmts
	bound [numStmts]*sql.Stmt
}

func (t *txn) stmt(id stmtID) *sql.Stmt {
	if t.bound[id] == nil {
		// The statement was prepared on the writer *sql.DB, whose one
		// connection is the transaction's: database/sql reuses it.
		t.bound[id] = t.tx.StmtContext(t.ctx, t.st.s[id])
	}
	return t.bound[id]
}

func (t *txn) exec(id stmtID, args ...any) (sql.Result, error) {
	return t.stmt(id).ExecContext(t.ctx, args...)
}

func (t *txn) queryRow(id stmtID, args ...any) *sql.Row {
	return t.stmt(id).QueryRowContext(t.ctx, args...)
}

// Flush waits until every write queued before it is committed. It returns
// the first error of a write queued without a done callback since the last
// Flush, if any.
func (s *Store) Flush() error {
	if s.w == nil {
		return ErrReadOnly
	}
	if err := s.w.do(opFunc(func(*txn) error { return nil })); err != nil {
		return err
	}
	return s.w.takeErr()
}

// Stats returns the writer's counters (zero for a read-only Store).
func (s *Store) Stats() Stats {
	if s.w == nil {
		return Stats{}
	}
	return s.w.snapshot()
}

func (s *Store) submit(o op, done func(error)) {
	if s.w == nil {
		if done != nil {
			done(ErrReadOnly)
		}
		return
	}
	s.w.submit(o, done)
}

func (s *Store) do(o op) error {
	if s.w == nil {
		return ErrReadOnly
	}
	return s.w.do(o)
}
