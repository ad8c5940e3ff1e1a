package clock

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2024, 6, 21, 16, 47, 48, 0, time.UTC)

// fire is one timer firing: which timer, and the time it delivered.
type fire struct {
	Name string
	At   time.Time
}

// received returns the value waiting on c, if any, without blocking.
func received(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestAdvanceFiresInOrder(t *testing.T) {
	tests := []struct {
		name    string
		delays  map[string]time.Duration
		advance []time.Duration
		want    [][]fire // fired per Advance, in deadline order
	}{
		{
			name:    "all due at once",
			delays:  map[string]time.Duration{"c": 3 * time.Second, "a": time.Second, "b": 2 * time.Second},
			advance: []time.Duration{5 * time.Second},
			want: [][]fire{{
				{"a", t0.Add(time.Second)}, {"b", t0.Add(2 * time.Second)}, {"c", t0.Add(3 * time.Second)},
			}},
		},
		{
			name:    "boundary inclusive",
			delays:  map[string]time.Duration{"a": time.Second, "b": time.Second + 1},
			advance: []time.Duration{time.Second, 1},
			want:    [][]fire{{{"a", t0.Add(time.Second)}}, {{"b", t0.Add(time.Second + 1)}}},
		},
		{
			name:    "step by step",
			delays:  map[string]time.Duration{"a": 10 * time.Second, "b": 20 * time.Second},
			advance: []time.Duration{5 * time.Second, 5 * time.Second, 9 * time.Second, time.Hour},
			want:    [][]fire{nil, {{"a", t0.Add(10 * time.Second)}}, nil, {{"b", t0.Add(20 * time.Second)}}},
		},
		{
			name:    "negative advance is zero",
			delays:  map[string]time.Duration{"a": time.Second},
			advance: []time.Duration{-time.Hour, time.Second},
			want:    [][]fire{nil, {{"a", t0.Add(time.Second)}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(t0)
			chans := map[string]<-chan time.Time{}
			for name, d := range tt.delays {
				if name == "a" {
					chans[name] = f.After(d)
				} else {
					chans[name] = f.NewTimer(d).C()
				}
			}
			var got [][]fire
			var elapsed time.Duration
			for _, d := range tt.advance {
				f.Advance(d)
				elapsed += max(d, 0)
				var step []fire
				for name, c := range chans {
					if v, ok := received(c); ok {
						step = append(step, fire{name, v})
					}
				}
				sortFires(step)
				got = append(got, step)
				if now := f.Now(); !now.Equal(t0.Add(elapsed)) {
					t.Errorf("Now() after advancing %v = %v, want %v", elapsed, now, t0.Add(elapsed))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fired mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func sortFires(s []fire) {
	slices.SortFunc(s, func(a, b fire) int { return a.At.Compare(b.At) })
}

func TestTimerStopReset(t *testing.T) {
	// Each step acts on one timer made with NewTimer(10s) at t0.
	type step struct {
		op string        // "advance", "stop", "reset", "recv"
		d  time.Duration // for advance and reset
	}
	type result struct {
		Returned []bool      // results of stop and reset, in order
		Received []time.Time // values drained after the last step
		Pending  int
	}
	tests := []struct {
		name  string
		steps []step
		want  result
	}{
		{
			name:  "stop before firing",
			steps: []step{{op: "stop"}, {op: "advance", d: time.Minute}},
			want:  result{Returned: []bool{true}},
		},
		{
			name:  "stop twice",
			steps: []step{{op: "stop"}, {op: "stop"}},
			want:  result{Returned: []bool{true, false}},
		},
		{
			name:  "stop after firing, value not received, discards it",
			steps: []step{{op: "advance", d: 10 * time.Second}, {op: "stop"}},
			want:  result{Returned: []bool{true}},
		},
		{
			name:  "stop after value received",
			steps: []step{{op: "advance", d: 10 * time.Second}, {op: "recv"}, {op: "stop"}},
			want:  result{Returned: []bool{false}},
		},
		{
			name:  "reset while pending moves the deadline",
			steps: []step{{op: "advance", d: 5 * time.Second}, {op: "reset", d: 10 * time.Second}, {op: "advance", d: 9 * time.Second}},
			want:  result{Returned: []bool{true}, Pending: 1},
		},
		{
			name: "reset while pending fires at the new deadline",
			steps: []step{
				{op: "advance", d: 5 * time.Second}, {op: "reset", d: 10 * time.Second}, {op: "advance", d: 10 * time.Second},
			},
			want: result{Returned: []bool{true}, Received: []time.Time{t0.Add(15 * time.Second)}},
		},
		{
			name: "reset after firing discards the stale value",
			steps: []step{
				{op: "advance", d: 10 * time.Second}, {op: "reset", d: time.Second}, {op: "advance", d: time.Second},
			},
			want: result{Returned: []bool{true}, Received: []time.Time{t0.Add(11 * time.Second)}},
		},
		{
			name: "reset after stop",
			steps: []step{
				{op: "stop"}, {op: "reset", d: time.Second}, {op: "advance", d: time.Second},
			},
			want: result{Returned: []bool{true, false}, Received: []time.Time{t0.Add(time.Second)}},
		},
		{
			name:  "reset to zero fires at once",
			steps: []step{{op: "reset", d: 0}},
			want:  result{Returned: []bool{true}, Received: []time.Time{t0}},
		},
		{
			name:  "reset to negative fires at once",
			steps: []step{{op: "advance", d: time.Second}, {op: "reset", d: -time.Hour}},
			want:  result{Returned: []bool{true}, Received: []time.Time{t0.Add(time.Second)}},
		},
		{
			name:  "fires once",
			steps: []step{{op: "advance", d: 10 * time.Second}, {op: "recv"}, {op: "advance", d: time.Hour}},
			want:  result{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(t0)
			tm := f.NewTimer(10 * time.Second)
			var got result
			for _, s := range tt.steps {
				switch s.op {
				case "advance":
					f.Advance(s.d)
				case "stop":
					got.Returned = append(got.Returned, tm.Stop())
				case "reset":
					got.Returned = append(got.Returned, tm.Reset(s.d))
				case "recv":
					if _, ok := received(tm.C()); !ok {
						t.Fatalf("nothing to receive at %v", f.Now())
					}
				default:
					t.Fatalf("bad op %q", s.op)
				}
			}
			for {
				v, ok := received(tm.C())
				if !ok {
					break
				}
				got.Received = append(got.Received, v)
			}
			got.Pending = f.Pending()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestZeroDurationFiresAtOnce(t *testing.T) {
	f := NewFake(t0)
	for _, d := range []time.Duration{0, -time.Second} {
		if v, ok := received(f.After(d)); !ok || !v.Equal(t0) {
			t.Errorf("After(%v): received %v, %v; want %v, true", d, v, ok, t0)
		}
		if v, ok := received(f.NewTimer(d).C()); !ok || !v.Equal(t0) {
			t.Errorf("NewTimer(%v): received %v, %v; want %v, true", d, v, ok, t0)
		}
	}
	if n := f.Pending(); n != 0 {
		t.Errorf("Pending() = %d, want 0", n)
	}
}

func TestSet(t *testing.T) {
	f := NewFake(t0)
	c := f.After(time.Minute)
	// Backwards: nothing fires and the deadline stays absolute.
	f.Set(t0.Add(-time.Hour))
	if _, ok := received(c); ok {
		t.Fatal("timer fired when the clock moved backwards")
	}
	if got := f.Now(); !got.Equal(t0.Add(-time.Hour)) {
		t.Errorf("Now() = %v, want %v", got, t0.Add(-time.Hour))
	}
	f.Set(t0.Add(time.Minute - 1))
	if _, ok := received(c); ok {
		t.Fatal("timer fired before its deadline")
	}
	f.Set(t0.Add(2 * time.Minute))
	if v, ok := received(c); !ok || !v.Equal(t0.Add(time.Minute)) {
		t.Errorf("received %v, %v; want %v, true", v, ok, t0.Add(time.Minute))
	}
	if got := f.Now(); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("Now() = %v, want %v", got, t0.Add(2*time.Minute))
	}
}

// TestBlockUntil drives a goroutine that loops on a timer, the shape of a
// jail's expiry loop, without sleeping.
func TestBlockUntil(t *testing.T) {
	f := NewFake(t0)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tm := f.NewTimer(time.Second)
		defer tm.Stop()
		for {
			select {
			case v := <-tm.C():
				ticks <- v
				tm.Reset(time.Second)
			case <-ctx.Done():
				return
			}
		}
	}()
	var got []time.Time
	for range 3 {
		if err := f.BlockUntilContext(ctx, 1); err != nil {
			t.Fatalf("BlockUntilContext: %v", err)
		}
		f.Advance(time.Second)
		got = append(got, <-ticks)
	}
	cancel()
	<-done
	want := []time.Time{t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(3 * time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ticks mismatch (-want +got):\n%s", diff)
	}
}

func TestBlockUntilContextDone(t *testing.T) {
	f := NewFake(t0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.BlockUntilContext(ctx, 1); err != context.Canceled {
		t.Errorf("BlockUntilContext with nothing pending = %v, want %v", err, context.Canceled)
	}
	f.After(time.Second)
	if err := f.BlockUntilContext(ctx, 1); err != nil {
		t.Errorf("BlockUntilContext with one pending = %v, want nil", err)
	}
}

// TestConcurrent exercises every method from several goroutines; run with
// -race.
func TestConcurrent(t *testing.T) {
	f := NewFake(t0)
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tm := f.NewTimer(time.Duration(w+1) * time.Millisecond)
			for i := range rounds {
				switch i % 4 {
				case 0:
					tm.Reset(time.Duration(i%7+1) * time.Millisecond)
				case 1:
					tm.Stop()
				case 2:
					_ = f.After(time.Duration(i%5) * time.Millisecond)
				case 3:
					_ = f.Now()
					_ = f.Pending()
				}
				received(tm.C())
			}
			tm.Stop()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range rounds {
			f.Advance(time.Millisecond)
		}
	}()
	// A waiter, released at the latest by the timer armed after the
	// workers are done.
	waited := make(chan error)
	go func() { waited <- f.BlockUntilContext(t.Context(), 1) }()
	wg.Wait()
	f.After(time.Minute)
	if err := <-waited; err != nil {
		t.Errorf("BlockUntilContext: %v", err)
	}
	f.Advance(time.Hour)
	if n := f.Pending(); n != 0 {
		t.Errorf("Pending() after the last Advance = %d, want 0", n)
	}
}

func TestReal(t *testing.T) {
	c := Real()
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Errorf("Real().Now() = %v, before %v", now, before)
	}
	select {
	case <-c.After(time.Millisecond):
	case <-time.After(10 * time.Second):
		t.Fatal("Real().After(1ms) did not fire")
	}
	tm := c.NewTimer(time.Hour)
	if !tm.Stop() {
		t.Error("Stop of a pending real timer = false, want true")
	}
	if tm.Reset(0) {
		t.Error("Reset of a stopped real timer = true, want false")
	}
	select {
	case <-tm.C():
	case <-time.After(10 * time.Second):
		t.Fatal("real timer reset to 0 did not fire")
	}
}
