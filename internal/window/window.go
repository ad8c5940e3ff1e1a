// Package window counts failures per address over a sliding window of
// FindTime and reports when an address reaches MaxRetry of them: the
// decision at the heart of a jail.
//
// A Window is plain synchronous code. Time is always an argument (the
// failure's own time, taken from its log line), it starts no goroutines and
// it is not safe for concurrent use: one jail goroutine owns it.
//
// # Counting
//
// A failure at time f counts at reference time r when f > r-FindTime, as in
// fail2ban: the boundary is exclusive, so a failure exactly FindTime old is
// forgotten. Add counts against the newest failure seen for the address, so
// a line that arrives late (out of order, say from a second log file that
// lags behind) still counts if it lies within FindTime of that newest
// failure, and is dropped otherwise. When an Add brings the address to
// MaxRetry failures, Add reports a ban and the address is forgotten, so each
// crossing yields one ban order; failures that arrive later, even late lines
// older than the crossing, start a new count. Lines older than FindTime
// relative to the wall clock are the jail's to drop before calling Add (as
// fail2ban does); Window never looks at a clock.
//
// Addresses are normalized: an IPv4-mapped IPv6 address and its IPv4 form
// are the same address, and a zone is ignored. The invalid zero Addr is
// never counted.
//
// # Two representations
//
// With MaxRetry up to 16 (every stock jail) the window is exact: each
// address keeps the times of its last MaxRetry-1 failures, which is all
// it can need since the MaxRetry-th one triggers the ban and the reset.
//
// With a larger MaxRetry (a rate jail, say 600 requests a minute) keeping
// every time would cost 8 bytes per failure per address, so the window
// instead keeps a count per sub-bucket of FindTime/16 and the newest time.
// Buckets are aligned to multiples of their width since the Unix epoch. A
// failure is counted only while its whole bucket is within FindTime, so
// the approximation never counts a failure older than FindTime, but it
// forgets a failure up to FindTime/16 early: the effective find time is
// between 15/16 FindTime and FindTime. Every ban it reports is backed by
// MaxRetry failures within FindTime; it may report a ban later than exact
// counting would, or not at all when the failures only just fit.
// Times reports each such failure at the start of its bucket.
//
// # Memory
//
// Addresses live in a slice-backed arena of slots indexed by a map from the
// 16-byte form of the address to a uint32 slot. Neither holds a pointer, so
// the garbage collector does not scan them however many addresses are
// tracked (a netip.Addr key would hold one, and cost 24 more bytes a map
// entry). An intrusive doubly linked list through the slots orders
// addresses by their last counted failure, so that at MaxTracked the
// stalest is evicted in O(1).
//
// A slot costs 28 bytes (key, links, count) plus 8 bytes a time in exact
// mode or 4 bytes a bucket and 8 for the newest time in bucket mode: 60
// bytes with MaxRetry 5, 148 with MaxRetry 16, 100 in bucket mode. The map
// adds 21 bytes a slot of Go's swiss table at a load between 7/16 and 7/8,
// 24 to 48 bytes an address. Measured with 1,000,000 addresses (see
// TestMemoryPerAddress): about 105 bytes an address with MaxRetry 5, 193
// with MaxRetry 16, 145 with MaxRetry 600.
//
// The arena grows by pages of 1024 slots that never move, so growing it
// copies nothing and holds at most one page more than the high-water mark
// (the first page doubles from 16 slots, so that a quiet jail stays small).
// Slots freed by bans, Reset, eviction and Expire are reused; Expire
// rebuilds the arena and the map, whose memory Go never gives back, once
// fewer than a quarter of the slots are in use.
package window

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// DefaultMaxTracked is the cap on tracked addresses when Options.MaxTracked
// is 0.
const DefaultMaxTracked = 100000

const (
	// exactLimit is the largest MaxRetry kept exactly: MaxRetry-1 times of 8
	// bytes, 120 bytes at most, keep the total near 200 bytes an address.
	exactLimit = 16
	// numBuckets is the number of sub-buckets of FindTime when MaxRetry is
	// above exactLimit: 4 bytes each.
	numBuckets = 16
	// maxTrackedLimit keeps slot numbers, and the sentinel slot 0, in a
	// uint32, and in an int on 32-bit platforms.
	maxTrackedLimit = math.MaxInt32 - 1
	// minShrink is the arena size, in slots, below which Expire does not
	// bother to give memory back.
	minShrink = 4 * pageSlots
)

// Errors returned by New for bad Options.
var (
	ErrMaxRetry   = errors.New("maxretry must be at least 1")
	ErrFindTime   = errors.New("findtime must be positive")
	ErrMaxTracked = errors.New("max tracked addresses out of range")
)

// Options configures a Window.
type Options struct {
	MaxRetry   int           // failures within FindTime that make a ban; >= 1
	FindTime   time.Duration // length of the window; > 0
	MaxTracked int           // cap on tracked addresses; 0 means DefaultMaxTracked
}

// Window counts failures per address. See the package documentation for
// the exact semantics.
type Window struct {
	maxRetry   int
	findTime   int64 // nanoseconds
	maxTracked int

	// index maps an address to its slot in the arena.
	index map[[16]byte]uint32
	// The arena: slot s is element s%pageSlots of pages[s/pageSlots].
	// Slot 0 is the sentinel of the list of tracked addresses, most recent
	// first; freed slots are chained through node.next from free. Slots
	// [0, slots) have been handed out, [slots, room) not yet.
	pages []page
	free  uint32
	slots int
	room  int

	// Exact mode: ring = maxRetry-1 times per slot, else 0.
	ring int
	// Bucket mode: nb buckets of width nanoseconds per slot, else 0.
	nb    int
	width int64

	evicted uint64
}

// page holds pageSlots slots of the arena (page 0 possibly fewer) field by
// field.
type page struct {
	keys  [][16]byte
	nodes []node
	// Exact mode: times[i*ring : i*ring+nodes[i].n] are the failure times
	// of element i, ascending.
	times []int64
	// Bucket mode: counts[i*nb : (i+1)*nb] are the failures of element i
	// per bucket, indexed by bucket number modulo nb; newest[i] is the time
	// of its newest failure.
	counts []uint32
	newest []int64
}

// pageSlots is the number of slots of a page: 60 KiB a page with MaxRetry 5.
const pageSlots = 1024

// node links a slot into the recency list and says how many failures it
// holds; n == 0 marks a free slot.
type node struct {
	prev, next uint32
	n          uint32
}

// New returns an empty Window. It returns an error wrapping ErrMaxRetry,
// ErrFindTime or ErrMaxTracked when o is out of range.
func New(o Options) (*Window, error) {
	return newWindow(o, exactLimit)
}

// newWindow is New with the largest MaxRetry kept exactly as a parameter, so
// that tests can drive bucket mode with small numbers.
func newWindow(o Options, exact int) (*Window, error) {
	if o.MaxRetry < 1 {
		return nil, fmt.Errorf("%w: got %d", ErrMaxRetry, o.MaxRetry)
	}
	if o.FindTime <= 0 {
		return nil, fmt.Errorf("%w: got %v", ErrFindTime, o.FindTime)
	}
	if o.MaxTracked == 0 {
		o.MaxTracked = DefaultMaxTracked
	}
	if o.MaxTracked < 1 || o.MaxTracked > maxTrackedLimit {
		return nil, fmt.Errorf("%w: got %d, want 1 to %d", ErrMaxTracked, o.MaxTracked, maxTrackedLimit)
	}
	w := &Window{
		maxRetry:   o.MaxRetry,
		findTime:   int64(o.FindTime),
		maxTracked: o.MaxTracked,
		index:      make(map[[16]byte]uint32),
	}
	if o.MaxRetry <= exact {
		w.ring = o.MaxRetry - 1
	} else {
		// Buckets never span more than FindTime together, so that no
		// failure older than FindTime is counted.
		w.nb = int(min(numBuckets, w.findTime))
		w.width = w.findTime / int64(w.nb)
	}
	w.extend() // the sentinel
	return w, nil
}

// Add records one failure of addr at t, the time of its log line. It reports
// ban when this failure brings addr to MaxRetry failures within FindTime of
// its newest failure; addr is then forgotten. count is the number of failures
// of addr within FindTime after this one: MaxRetry with ban. A failure older
// than FindTime relative to the newest failure of addr is dropped, and count
// is then unchanged.
//
// With a new address at MaxTracked, the address whose last counted failure
// came first is evicted. Add does not allocate for an address already
// tracked.
func (w *Window) Add(addr netip.Addr, t time.Time) (ban bool, count int) {
	if !addr.IsValid() {
		return false, 0
	}
	if w.maxRetry == 1 {
		return true, 1
	}
	k := addr.As16() // maps IPv4 to ::ffff:a.b.c.d and drops the zone
	x := nanos(t)
	s, ok := w.index[k]
	if !ok {
		s = w.insert(k)
		if w.nb == 0 {
			w.times(s)[0] = x
		} else {
			*w.newest(s) = x
			w.counts(s)[mod(floorDiv(x, w.width), w.nb)] = 1
		}
		w.node(s).n = 1
		return false, 1 // MaxRetry >= 2 here
	}
	var n int
	var counted bool
	if w.nb == 0 {
		n, counted = w.addExact(s, x)
	} else {
		n, counted = w.addBucket(s, x)
	}
	if n >= w.maxRetry {
		w.remove(s)
		return true, n
	}
	if counted {
		w.unlink(s)
		w.pushFront(s)
	}
	return false, n
}

// addExact adds x to the times of slot s and returns how many it holds then,
// and whether x was counted. When that reaches maxRetry the times are left
// for remove to discard.
func (w *Window) addExact(s uint32, x int64) (n int, counted bool) {
	nd := w.node(s)
	held := int(nd.n)
	ts := w.times(s)
	cut := subSat(max(ts[held-1], x), w.findTime)
	if x <= cut {
		return held, false
	}
	i := 0
	for i < held && ts[i] <= cut {
		i++
	}
	m := held - i
	if m+1 >= w.maxRetry {
		return m + 1, true
	}
	copy(ts, ts[i:held])
	// Insert x after any equal time, keeping ts ascending.
	j := m
	for j > 0 && ts[j-1] > x {
		ts[j] = ts[j-1]
		j--
	}
	ts[j] = x
	nd.n = uint32(m + 1)
	return m + 1, true
}

// addBucket adds x to the buckets of slot s and returns how many failures
// they hold then, and whether x was counted.
func (w *Window) addBucket(s uint32, x int64) (n int, counted bool) {
	nd := w.node(s)
	c := w.counts(s)
	newest := w.newest(s)
	total := nd.n
	cur, xb := floorDiv(*newest, w.width), floorDiv(x, w.width)
	switch {
	case xb <= cur-int64(w.nb):
		// Its bucket is gone: older than FindTime relative to newest.
		return int(total), false
	case xb > cur:
		// Move the window forward, emptying the buckets it reuses.
		if xb-cur >= int64(w.nb) {
			clear(c)
			total = 0
		} else {
			for b := cur + 1; b <= xb; b++ {
				i := mod(b, w.nb)
				total -= c[i]
				c[i] = 0
			}
		}
		*newest = x
	case x > *newest:
		*newest = x
	}
	c[mod(xb, w.nb)]++
	total++
	nd.n = total
	return int(total), true
}

// Count returns the number of failures of addr within FindTime of now:
// those at a time after now-FindTime.
func (w *Window) Count(addr netip.Addr, now time.Time) int {
	s, ok := w.lookup(addr)
	if !ok {
		return 0
	}
	n := 0
	w.each(s, nanos(now), func(_ int64, k uint32) { n += int(k) })
	return n
}

// Times returns the times of the failures of addr within FindTime of now,
// ascending, in UTC; nil if there are none. With MaxRetry above 16 each time
// is the start of the sub-bucket the failure fell in.
func (w *Window) Times(addr netip.Addr, now time.Time) []time.Time {
	s, ok := w.lookup(addr)
	if !ok {
		return nil
	}
	var out []time.Time
	w.each(s, nanos(now), func(x int64, k uint32) {
		for range k {
			out = append(out, time.Unix(0, x).UTC())
		}
	})
	return out
}

// each calls fn, in ascending time, with each failure time of slot s that
// is within FindTime of now and the number of failures at it.
func (w *Window) each(s uint32, now int64, fn func(x int64, k uint32)) {
	if w.nb == 0 {
		cut := subSat(now, w.findTime)
		for _, x := range w.times(s)[:w.node(s).n] {
			if x > cut {
				fn(x, 1)
			}
		}
		return
	}
	c := w.counts(s)
	hi := floorDiv(*w.newest(s), w.width)
	lo := max(hi, floorDiv(now, w.width)) - int64(w.nb) + 1
	for b := lo; b <= hi; b++ {
		if k := c[mod(b, w.nb)]; k > 0 {
			fn(b*w.width, k)
		}
	}
}

// Reset forgets addr.
func (w *Window) Reset(addr netip.Addr) {
	if s, ok := w.lookup(addr); ok {
		w.remove(s)
	}
}

// Len returns the number of addresses tracked.
func (w *Window) Len() int { return len(w.index) }

// Evicted returns how many addresses have been evicted to stay within
// MaxTracked.
func (w *Window) Evicted() uint64 { return w.evicted }

// Expire forgets the addresses whose newest failure is FindTime old or
// older at now, and returns how many it forgot. It looks at every tracked
// address, O(Len), and gives memory back when fewer than a quarter of the
// arena's slots remain in use. A jail calls it now and then, say every
// FindTime; addresses that Expire has not yet dropped count no failure
// older than FindTime anyway.
func (w *Window) Expire(now time.Time) int {
	cut := subSat(nanos(now), w.findTime)
	dropped := 0
	for pi := range w.pages {
		p := &w.pages[pi] // remove never adds or moves pages
		for i := range min(len(p.nodes), w.slots-pi*pageSlots) {
			n := p.nodes[i].n
			if n == 0 { // free, or the sentinel
				continue
			}
			var newest int64
			if w.nb == 0 {
				newest = p.times[i*w.ring+int(n)-1]
			} else {
				newest = p.newest[i]
			}
			if newest <= cut {
				w.remove(uint32(pi*pageSlots + i))
				dropped++
			}
		}
	}
	if w.room > minShrink && w.Len() < w.room/4 {
		w.compact()
	}
	return dropped
}

func (w *Window) lookup(addr netip.Addr) (uint32, bool) {
	if !addr.IsValid() {
		return 0, false
	}
	s, ok := w.index[addr.As16()]
	return s, ok
}

// The arena's fields for slot s.

func (w *Window) node(s uint32) *node { return &w.pages[s/pageSlots].nodes[s%pageSlots] }

func (w *Window) key(s uint32) *[16]byte { return &w.pages[s/pageSlots].keys[s%pageSlots] }

func (w *Window) times(s uint32) []int64 {
	i := int(s%pageSlots) * w.ring
	return w.pages[s/pageSlots].times[i : i+w.ring : i+w.ring]
}

func (w *Window) counts(s uint32) []uint32 {
	i := int(s%pageSlots) * w.nb
	return w.pages[s/pageSlots].counts[i : i+w.nb : i+w.nb]
}

func (w *Window) newest(s uint32) *int64 { return &w.pages[s/pageSlots].newest[s%pageSlots] }

// insert tracks k in a new slot at the front of the list, evicting the
// stalest address at the cap, and returns the slot.
func (w *Window) insert(k [16]byte) uint32 {
	if w.Len() >= w.maxTracked {
		w.remove(w.node(0).prev)
		w.evicted++
	}
	s := w.free
	if s != 0 {
		w.free = w.node(s).next
	} else {
		s = w.extend()
	}
	*w.key(s) = k
	w.index[k] = s
	w.pushFront(s)
	return s
}

// remove forgets the address in slot s and frees the slot.
func (w *Window) remove(s uint32) {
	w.unlink(s)
	delete(w.index, *w.key(s))
	if w.nb > 0 {
		clear(w.counts(s))
	}
	*w.node(s) = node{next: w.free}
	w.free = s
}

func (w *Window) unlink(s uint32) {
	nd := w.node(s)
	w.node(nd.prev).next = nd.next
	w.node(nd.next).prev = nd.prev
}

func (w *Window) pushFront(s uint32) {
	head := w.node(0)
	nd := w.node(s)
	nd.prev, nd.next = 0, head.next
	w.node(head.next).prev = s
	head.next = s
}

// extend hands out the next slot of the arena, making room if there is
// none. It is only called below the cap, so the arena never holds more than
// maxTracked+1 slots.
func (w *Window) extend() uint32 {
	if w.slots == w.room {
		limit := w.maxTracked + 1
		if w.room < pageSlots {
			// Page 0 doubles, so that a quiet jail stays small.
			w.room = min(max(2*w.room, 16), pageSlots, limit)
			if len(w.pages) == 0 {
				w.pages = append(w.pages, page{})
			}
			w.pages[0] = w.pages[0].resize(w.room, w.ring, w.nb)
		} else {
			n := min(pageSlots, limit-w.room)
			w.pages = append(w.pages, page{}.resize(n, w.ring, w.nb))
			w.room += n
		}
	}
	w.slots++
	return uint32(w.slots - 1)
}

// resize returns p with room for n slots.
func (p page) resize(n, ring, nb int) page {
	p.keys = resize(p.keys, n)
	p.nodes = resize(p.nodes, n)
	if ring > 0 {
		p.times = resize(p.times, n*ring)
	}
	if nb > 0 {
		p.counts = resize(p.counts, n*nb)
		p.newest = resize(p.newest, n)
	}
	return p
}

func resize[T any](s []T, n int) []T {
	t := make([]T, n)
	copy(t, s)
	return t
}

// compact moves the tracked addresses into a new arena and map sized for
// them, keeping their order, so that the memory of a past flood of addresses
// goes back to the garbage collector (a Go map never shrinks).
func (w *Window) compact() {
	old := *w
	w.index = make(map[[16]byte]uint32, old.Len())
	w.pages, w.free, w.slots, w.room = nil, 0, 0, 0
	w.extend()
	// Walk from the stalest so that each pushFront keeps the order.
	for o := old.node(0).prev; o != 0; o = old.node(o).prev {
		s := w.insert(*old.key(o))
		w.node(s).n = old.node(o).n
		if w.nb == 0 {
			copy(w.times(s), old.times(o))
		} else {
			copy(w.counts(s), old.counts(o))
			*w.newest(s) = *old.newest(o)
		}
	}
}

// timeLimit bounds the failure times the window keeps, in nanoseconds from
// the Unix epoch: about the years 1824 to 2116. Time.UnixNano is undefined
// outside 1678 to 2262, and the margin keeps the arithmetic below from
// overflowing. No log line carries a time outside it.
const timeLimit = 1 << 62

// nanos returns t in nanoseconds since the Unix epoch, clamped to
// ±timeLimit.
func nanos(t time.Time) int64 {
	switch s := t.Unix(); {
	case s >= timeLimit/int64(time.Second):
		return timeLimit
	case s <= -timeLimit/int64(time.Second):
		return -timeLimit
	}
	return t.UnixNano()
}

// subSat returns a-b for b > 0, or math.MinInt64 where that would overflow.
func subSat(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

// floorDiv returns ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// mod returns a modulo n in [0, n).
func mod(a int64, n int) int {
	m := int(a % int64(n))
	if m < 0 {
		m += n
	}
	return m
}
