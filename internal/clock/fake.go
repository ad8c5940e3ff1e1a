package clock

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Fake is a Clock that moves only when told to. It is safe for concurrent
// use: typically the goroutine under test waits on its timers while the test
// calls Advance.
//
// A timer's deadline is absolute (the fake time at NewTimer or Reset plus
// d). When Advance or Set moves the clock forward, every pending timer whose
// deadline is at or before the new time fires, in deadline order (ties in
// the order they were armed), each receiving its own deadline as the value;
// Now then returns the new time. Timers armed by the receivers of those
// values are not fired by the same Advance: call BlockUntil and Advance
// again. Moving the clock backwards with Set fires nothing.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	pending timerHeap
	seq     uint64
	// changed is closed, and replaced, whenever the number of pending
	// timers changes, to wake BlockUntil.
	changed chan struct{}
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake whose time is start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns the channel of a new timer that fires after d. The timer
// counts as pending for BlockUntil until it fires.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	return f.NewTimer(d).C()
}

// NewTimer returns a timer that fires once the fake time has moved by d. A
// d <= 0 fires at once with the current fake time.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1), index: -1}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(t, d)
	return t
}

// Advance moves the fake time forward by d, firing the timers that fall due.
// A negative d is treated as zero.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moveTo(f.now.Add(max(d, 0)))
}

// Set moves the fake time to t. Moving forward fires the timers that fall
// due, as Advance does; moving backward fires nothing, and pending timers
// keep their absolute deadlines.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.Before(f.now) {
		f.now = t
		return
	}
	f.moveTo(t)
}

// Pending returns the number of timers (After channels included) that have
// not fired and have not been stopped.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

// BlockUntil waits until at least n timers (After channels included) are
// pending, so that a test can be sure the goroutine under test has armed
// its timer before it calls Advance.
func (f *Fake) BlockUntil(n int) {
	_ = f.BlockUntilContext(context.Background(), n)
}

// BlockUntilContext is BlockUntil with a way out: it returns ctx.Err() if
// ctx is done first, so that a test can fail instead of hanging.
func (f *Fake) BlockUntilContext(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.pending) >= n {
			f.mu.Unlock()
			return nil
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// moveTo fires every pending timer due at or before t, in order, and sets
// the time to t. f.mu is held.
func (f *Fake) moveTo(t time.Time) {
	fired := false
	for len(f.pending) > 0 && !f.pending[0].when.After(t) {
		ft := heap.Pop(&f.pending).(*fakeTimer)
		if ft.when.After(f.now) {
			f.now = ft.when
		}
		ft.send(ft.when)
		fired = true
	}
	f.now = t
	if fired {
		f.notify()
	}
}

// arm schedules t to fire after d, or fires it now if d <= 0. f.mu is held.
func (f *Fake) arm(t *fakeTimer, d time.Duration) {
	if d <= 0 {
		t.send(f.now)
		return
	}
	f.seq++
	t.when = f.now.Add(d)
	t.seq = f.seq
	heap.Push(&f.pending, t)
	f.notify()
}

// disarm removes t from the pending timers and discards a value not yet
// received; it reports whether either was there. f.mu is held.
func (f *Fake) disarm(t *fakeTimer) bool {
	active := false
	if t.index >= 0 {
		heap.Remove(&f.pending, t.index)
		f.notify()
		active = true
	}
	select {
	case <-t.c:
		active = true
	default:
	}
	return active
}

// notify wakes BlockUntil callers. f.mu is held.
func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

type fakeTimer struct {
	f     *Fake
	c     chan time.Time // capacity 1; written and drained only under f.mu
	when  time.Time
	seq   uint64
	index int // in f.pending; -1 when not pending
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.f.disarm(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	active := t.f.disarm(t)
	t.f.arm(t, d)
	return active
}

// send delivers v without blocking. The buffer is always empty here: a
// timer is armed at most once at a time and disarm drains it before
// re-arming, so the default case only guards the invariant.
func (t *fakeTimer) send(v time.Time) {
	select {
	case t.c <- v:
	default:
	}
}

// timerHeap orders pending timers by deadline, then by arming order.
type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
