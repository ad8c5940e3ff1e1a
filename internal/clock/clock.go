// Package clock is the small time interface that the daemon's goroutines
// take instead of calling package time, so that tests move time by hand
// rather than sleeping for a window or a ban to run out.
//
// Real returns the wall clock. Fake is a manual clock: Advance and Set move
// it, firing the timers that fall due in time order, and BlockUntil lets a
// test wait until the goroutine under test has started waiting on a timer.
//
// Timers follow the Go 1.23+ semantics of time.Timer: once Stop or Reset has
// returned, no value from before the call is received from C.
package clock

import "time"

// Clock tells the time and makes timers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed,
	// like time.After. A d <= 0 fires at once. The channel is never closed.
	After(d time.Duration) <-chan time.Time
	// NewTimer returns a Timer that fires once after d, like time.NewTimer.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer, like *time.Timer.
//
// The channel returned by C is owned by the timer: it is never closed, it
// holds at most one value, and it is the same channel for the life of the
// Timer. After Stop or Reset returns, no value sent before the call is
// received.
type Timer interface {
	// C returns the channel on which the time is delivered when the timer
	// fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether the call
	// stopped the timer: false if it had already fired and its value was
	// received, or if it had been stopped.
	Stop() bool
	// Reset changes the timer to fire after d from now, discarding a value
	// not yet received. It reports whether the timer was active, with the
	// same meaning as Stop's result.
	Reset(d time.Duration) bool
}

// Real returns the Clock of package time.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) NewTimer(d time.Duration) Timer         { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
