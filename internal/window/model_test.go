package window

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// model is the package's counting rule written the obvious way: every
// failure time of every address in a slice.
type model struct {
	maxRetry int
	findTime int64
	times    map[netip.Addr][]int64
}

func (m *model) add(a netip.Addr, x int64) (bool, int) {
	ts := m.times[a]
	ref := x
	if len(ts) > 0 {
		ref = max(slices.Max(ts), x)
	}
	if x > ref-m.findTime {
		ts = append(ts, x)
	}
	n := 0
	for _, y := range ts {
		if y > ref-m.findTime {
			n++
		}
	}
	if n >= m.maxRetry {
		delete(m.times, a)
		return true, n
	}
	m.times[a] = ts
	return false, n
}

// within returns the failure times of a after now-g, ascending.
func (m *model) within(a netip.Addr, now, g int64) []int64 {
	var out []int64
	for _, y := range m.times[a] {
		if y > now-g {
			out = append(out, y)
		}
	}
	slices.Sort(out)
	return out
}

// randomFailures returns n failures of a few addresses at times that mostly
// go forward but jump back by up to 1.5 findTime now and then, as lines
// from several files that lag differently would.
func randomFailures(r *rand.Rand, n int, findTime int64) (addrs []netip.Addr, times []int64) {
	pool := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"),
	}
	x := t0.UnixNano()
	for range n {
		x += r.Int64N(findTime / 4)
		y := x
		if r.IntN(4) == 0 {
			y -= r.Int64N(findTime + findTime/2)
		}
		addrs = append(addrs, pool[r.IntN(len(pool))])
		times = append(times, y)
	}
	return addrs, times
}

// TestExactAgainstModel checks exact mode against the model on random
// sequences with out-of-order lines.
func TestExactAgainstModel(t *testing.T) {
	const findTime = int64(10 * time.Second)
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		maxRetry := 2 + r.IntN(exactLimit-1)
		t.Run(fmt.Sprintf("seed %d maxretry %d", seed, maxRetry), func(t *testing.T) {
			w := mustNew(t, Options{MaxRetry: maxRetry, FindTime: time.Duration(findTime)})
			m := &model{maxRetry: maxRetry, findTime: findTime, times: map[netip.Addr][]int64{}}
			addrs, times := randomFailures(r, 300, findTime)
			var now int64
			for i, a := range addrs {
				now = max(now, times[i])
				ban, n := w.Add(a, time.Unix(0, times[i]))
				wantBan, wantN := m.add(a, times[i])
				if ban != wantBan || n != wantN {
					t.Fatalf("failure %d, %v at %d: Add = %v, %d; want %v, %d", i, a, times[i], ban, n, wantBan, wantN)
				}
				var want []time.Time
				for _, y := range m.within(a, now, findTime) {
					want = append(want, time.Unix(0, y).UTC())
				}
				if got := w.Times(a, time.Unix(0, now)); !slices.Equal(want, got) {
					t.Fatalf("failure %d: Times(%v) mismatch (-want +got):\n%s", i, a, cmp.Diff(want, got))
				}
			}
			checkInvariants(t, w)
		})
	}
}

// TestBucketsWithinBounds checks the bucket approximation on random
// sequences: it never counts a failure older than FindTime, and it counts
// every failure less than FindTime minus one bucket old.
func TestBucketsWithinBounds(t *testing.T) {
	for _, findTime := range []int64{int64(16 * time.Second), int64(10*time.Second + 7)} {
		for seed := range uint64(100) {
			t.Run(fmt.Sprintf("findtime %d seed %d", findTime, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 2))
				w := mustNewBuckets(t, Options{MaxRetry: 1 << 30, FindTime: time.Duration(findTime)})
				// Without bans the model just keeps every failure.
				m := &model{maxRetry: 1 << 30, findTime: 1 << 62, times: map[netip.Addr][]int64{}}
				span := int64(w.nb) * w.width // <= findTime
				addrs, times := randomFailures(r, 400, findTime)
				var now int64
				for i, a := range addrs {
					now = max(now, times[i])
					_, n := w.Add(a, time.Unix(0, times[i]))
					m.add(a, times[i])
					if got := w.Count(a, time.Unix(0, slices.Max(m.times[a]))); got != n {
						t.Fatalf("failure %d: Add counted %d, Count at the newest %d", i, n, got)
					}
					got := w.Count(a, time.Unix(0, now))
					lo, hi := len(m.within(a, now, span-w.width)), len(m.within(a, now, findTime))
					if got < lo || got > hi {
						t.Fatalf("failure %d, %v at %d: Count = %d, want %d to %d", i, a, times[i], got, lo, hi)
					}
				}
				checkInvariants(t, w)
			})
		}
	}
}

// FuzzWindow drives an exact-mode Window with a small cap through Add,
// Reset and Expire, and checks it against the model, with eviction of the
// least recently counted address added to the model here.
//
//	go test -run '^$' -fuzz FuzzWindow ./internal/window/
func FuzzWindow(f *testing.F) {
	f.Add([]byte{4, 2, 0, 0, 0, 0, 1, 0, 10, 0, 2, 0, 10, 1, 0, 250, 0, 3, 20, 0})
	f.Add([]byte{2, 0, 0, 5, 0, 1, 5, 0, 2, 5, 0, 3, 5, 0, 4, 5, 1, 0, 0, 2, 0, 100})
	f.Add([]byte{15, 3, 0, 0, 200, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 5, 0, 2, 5, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		const findTime = int64(10 * time.Second)
		maxRetry, maxTracked := 1+int(data[0])%exactLimit, 1+int(data[1])%4
		w := mustNew(t, Options{MaxRetry: maxRetry, FindTime: time.Duration(findTime), MaxTracked: maxTracked})
		m := &model{maxRetry: maxRetry, findTime: findTime, times: map[netip.Addr][]int64{}}
		var order []netip.Addr // the model's recency list, stalest first
		touch := func(a netip.Addr) {
			order = slices.DeleteFunc(order, func(b netip.Addr) bool { return b == a })
			if _, ok := m.times[a]; ok {
				order = append(order, a)
			}
		}
		var evicted uint64
		x := t0.UnixNano()
		for ops := data[2:]; len(ops) >= 3; ops = ops[3:] {
			a := ipv4(int(ops[1]) % 6)
			// Times move by -12.8s to +12.7s, in tenths of a second.
			x += int64(int8(ops[2])) * int64(100*time.Millisecond)
			switch ops[0] % 8 {
			default: // add
				_, known := m.times[a]
				if !known && len(m.times) >= maxTracked && maxRetry > 1 {
					delete(m.times, order[0])
					order = order[1:]
					evicted++
				}
				before := slices.Clone(m.times[a])
				wantBan, wantN := m.add(a, x)
				ban, n := w.Add(a, time.Unix(0, x))
				if ban != wantBan || n != wantN {
					t.Fatalf("Add(%v, %d) = %v, %d; want %v, %d", a, x, ban, n, wantBan, wantN)
				}
				if wantBan || len(m.times[a]) != len(before) {
					touch(a) // counted, or banned and gone
				}
			case 6: // reset
				w.Reset(a)
				delete(m.times, a)
				touch(a)
			case 7: // expire
				want := 0
				for b, ts := range m.times {
					if slices.Max(ts) <= x-findTime {
						delete(m.times, b)
						touch(b)
						want++
					}
				}
				if got := w.Expire(time.Unix(0, x)); got != want {
					t.Fatalf("Expire(%d) = %d, want %d", x, got, want)
				}
			}
			var got []string
			for _, b := range order {
				got = append(got, b.String())
			}
			if diff := cmp.Diff(got, tracked(w)); diff != "" {
				t.Fatalf("tracked, stalest first, mismatch (-want +got):\n%s", diff)
			}
			if w.Evicted() != evicted {
				t.Fatalf("Evicted() = %d, want %d", w.Evicted(), evicted)
			}
			checkInvariants(t, w)
		}
	})
}
