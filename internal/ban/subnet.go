package ban

import (
	"container/heap"
	"net/netip"
	"time"

	"github.com/logjail/logjail/internal/config"
)

// Neighbourhoods: logjail's subnet.* group.

// Defaults of SubnetTracker.
const (
	DefaultSubnetPrefix4 = 24
	DefaultSubnetPrefix6 = 64
	// DefaultMaxSubnets caps the prefixes a SubnetTracker follows. Each holds
	// at most MaxHosts-1 addresses (the MaxHosts-th triggers and resets it),
	// so a tracker holds at most DefaultMaxSubnets × (MaxHosts-1) addresses:
	// with MaxHosts 5, 16,384 addresses, well under a few MB (MaxHosts is
	// meant to be a handful: a /24 holds only 256 addresses, so a MaxHosts
	// above 256 never triggers for IPv4 /24 neighbourhoods). Bans come only
	// after maxretry failures each, so the cap is reached only by bans spread
	// over more neighbourhoods than any attack needs to be seen in; the
	// stalest prefix (the one whose newest ban is oldest) makes room.
	DefaultMaxSubnets = 4096
)

// SubnetTracker detects neighbourhoods: when MaxHosts distinct addresses of
// one prefix (Prefix4 bits of an IPv4 address, Prefix6 of an IPv6 address)
// were banned within FindTime, that prefix is to be banned as a whole.
//
// It is plain synchronous code: time is always an argument, it starts no
// goroutine, and it is not safe for concurrent use (the ban manager owns
// one per jail, under its lock).
//
// Counting follows internal/window: a ban at time b counts at reference time r
// when b > r-FindTime (the boundary is exclusive: a ban exactly FindTime old
// no longer counts), and the reference time of a prefix is its newest ban, so
// a ban reported late still counts if it is within FindTime of the newest one.
// The same address banned again counts once, with its newest time. Feed it
// bans of single addresses only; whether the prefix may be banned (an ignored
// or own address inside it) is for the caller to decide.
type SubnetTracker struct {
	maxHosts     int
	findTime     time.Duration
	bits4, bits6 int
	maxPrefixes  int
	prefixes     map[netip.Prefix]*subnet
	byLast       subnetHeap // every subnet of prefixes, stalest first
}

// subnet is the record of one prefix.
type subnet struct {
	prefix netip.Prefix
	hosts  map[netip.Addr]time.Time // newest ban of each address
	last   time.Time                // newest ban of any address
	index  int                      // in SubnetTracker.byLast
}

// NewSubnetTracker returns a tracker for l. MaxHosts 0 (or a FindTime that
// is not positive) disables it: Add never triggers and tracks nothing.
// Prefix4 and Prefix6 of 0 take DefaultSubnetPrefix4 and
// DefaultSubnetPrefix6; a length beyond the family's is cut to it (a /32
// holds one address, so only MaxHosts 1 would trigger there). maxPrefixes
// caps the prefixes tracked (0 or less: DefaultMaxSubnets).
func NewSubnetTracker(l config.SubnetLimit, maxPrefixes int) *SubnetTracker {
	s := &SubnetTracker{
		maxHosts:    l.MaxHosts,
		findTime:    l.FindTime,
		bits4:       l.Prefix4,
		bits6:       l.Prefix6,
		maxPrefixes: maxPrefixes,
		prefixes:    make(map[netip.Prefix]*subnet),
	}
	if s.maxHosts < 0 || s.findTime <= 0 {
		s.maxHosts = 0
	}
	if s.bits4 <= 0 {
		s.bits4 = DefaultSubnetPrefix4
	}
	if s.bits6 <= 0 {
		s.bits6 = DefaultSubnetPrefix6
	}
	s.bits4, s.bits6 = min(s.bits4, 32), min(s.bits6, 128)
	if s.maxPrefixes <= 0 {
		s.maxPrefixes = DefaultMaxSubnets
	}
	return s
}

// Enabled reports whether the tracker can ever trigger.
func (s *SubnetTracker) Enabled() bool { return s.maxHosts > 0 }

// Prefix returns the neighbourhood of a: its Prefix4 or Prefix6 bits, an
// IPv4-mapped IPv6 address taken as IPv4. The zero Addr has none (the zero
// Prefix).
func (s *SubnetTracker) Prefix(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := s.bits6
	if a.Is4() {
		bits = s.bits4
	}
	p, _ := a.Prefix(bits) // bits is within the family's length
	return p
}

// Add records a ban of the single address a at time at, and reports its
// prefix, and whether MaxHosts distinct addresses of that prefix are now
// banned within FindTime (trigger). After a trigger the prefix's record is
// reset: the next address of it starts a new count. A ban FindTime or more
// older than the prefix's newest is not recorded. A disabled tracker returns
// the zero Prefix and false and records nothing, as it does for the zero
// Addr.
func (s *SubnetTracker) Add(a netip.Addr, at time.Time) (p netip.Prefix, trigger bool) {
	if s.maxHosts <= 0 || !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	p = s.Prefix(a)
	n := s.prefixes[p]
	if n == nil {
		if s.maxHosts == 1 {
			return p, true // one address is enough: nothing to remember
		}
		if len(s.prefixes) >= s.maxPrefixes {
			s.remove(s.byLast[0])
		}
		// The hint is bounded: MaxHosts may be large (and then never reached).
		n = &subnet{prefix: p, hosts: make(map[netip.Addr]time.Time, min(s.maxHosts-1, 8)), last: at}
		s.prefixes[p] = n
		heap.Push(&s.byLast, n)
	}
	if at.After(n.last) {
		n.last = at
		heap.Fix(&s.byLast, n.index)
	}
	oldest := n.last.Add(-s.findTime) // a ban counts when it is after oldest
	for h, t := range n.hosts {
		if !t.After(oldest) {
			delete(n.hosts, h)
		}
	}
	if at.After(oldest) {
		if t, ok := n.hosts[a]; !ok || at.After(t) {
			n.hosts[a] = at
		}
	}
	if len(n.hosts) >= s.maxHosts {
		s.remove(n)
		return p, true
	}
	if len(n.hosts) == 0 {
		s.remove(n) // only a ban too old to count: keep nothing
	}
	return p, false
}

// Expire forgets the prefixes whose newest ban is FindTime or more before
// now: none of their bans can count again. Call it now and then (the ban
// manager's expiry tick); Add also prunes the record it touches.
func (s *SubnetTracker) Expire(now time.Time) {
	oldest := now.Add(-s.findTime)
	for len(s.byLast) > 0 && !s.byLast[0].last.After(oldest) {
		s.remove(s.byLast[0])
	}
}

// Len returns the number of prefixes tracked.
func (s *SubnetTracker) Len() int { return len(s.prefixes) }

// Hosts returns how many distinct addresses of prefix p are recorded (some
// may be older than FindTime until the next Add or Expire), for status and
// explain.
func (s *SubnetTracker) Hosts(p netip.Prefix) int {
	if n := s.prefixes[p]; n != nil {
		return len(n.hosts)
	}
	return 0
}

func (s *SubnetTracker) remove(n *subnet) {
	heap.Remove(&s.byLast, n.index)
	delete(s.prefixes, n.prefix)
}

// subnetHeap orders subnets by their newest ban, the stalest first.
type subnetHeap []*subnet

func (h subnetHeap) Len() int           { return len(h) }
func (h subnetHeap) Less(i, j int) bool { return h[i].last.Before(h[j].last) }
func (h subnetHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *subnetHeap) Push(x any) {
	n := x.(*subnet)
	n.index = len(*h)
	*h = append(*h, n)
}
func (h *subnetHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	n.index = -1
	return n
}
