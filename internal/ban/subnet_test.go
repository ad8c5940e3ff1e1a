package ban

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/config"
)

// subnetStep is one Add and what it must return; prefix "" is the zero
// Prefix.
type subnetStep struct {
	addr    string
	at      time.Duration // after t0
	prefix  string
	trigger bool
}

func TestSubnetTracker(t *testing.T) {
	const m = time.Minute
	hour := config.SubnetLimit{MaxHosts: 3, FindTime: time.Hour}
	tests := []struct {
		name    string
		limit   config.SubnetLimit
		steps   []subnetStep
		wantLen int // prefixes tracked at the end
	}{
		{"three of a /24", hour, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.0/24", false},
			{"192.0.2.77", 10 * m, "192.0.2.0/24", false},
			{"192.0.2.254", 20 * m, "192.0.2.0/24", true},
		}, 0},
		{"reset after a trigger", hour, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.0/24", false},
			{"192.0.2.2", 1 * m, "192.0.2.0/24", false},
			{"192.0.2.3", 2 * m, "192.0.2.0/24", true},
			{"192.0.2.4", 3 * m, "192.0.2.0/24", false}, // a new count
			{"192.0.2.1", 4 * m, "192.0.2.0/24", false},
			{"192.0.2.5", 5 * m, "192.0.2.0/24", true},
		}, 0},
		{"the same address counts once", hour, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.0/24", false},
			{"192.0.2.1", 1 * m, "192.0.2.0/24", false},
			{"192.0.2.1", 2 * m, "192.0.2.0/24", false},
			{"192.0.2.1", 3 * m, "192.0.2.0/24", false},
			{"192.0.2.2", 4 * m, "192.0.2.0/24", false},
			{"192.0.2.2", 5 * m, "192.0.2.0/24", false},
			{"192.0.2.3", 6 * m, "192.0.2.0/24", true},
		}, 0},
		{"other prefixes count apart", hour, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.0/24", false},
			{"192.0.3.1", 1 * m, "192.0.3.0/24", false},
			{"192.0.2.2", 2 * m, "192.0.2.0/24", false},
			{"192.0.3.2", 3 * m, "192.0.3.0/24", false},
			{"198.51.100.1", 4 * m, "198.51.100.0/24", false},
		}, 3},
		{"exactly FindTime old: no longer counts", hour, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.0/24", false},
			{"192.0.2.2", 30 * m, "192.0.2.0/24", false},
			{"192.0.2.3", 60 * m, "192.0.2.0/24", false}, // .1 is exactly 1h old
		}, 1},
		{"just under FindTime old: counts", hour, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.0/24", false},
			{"192.0.2.2", 30 * m, "192.0.2.0/24", false},
			{"192.0.2.3", 60*m - time.Nanosecond, "192.0.2.0/24", true},
		}, 0},
		{"a ban again renews the address", hour, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.0/24", false},
			{"192.0.2.1", 50 * m, "192.0.2.0/24", false},
			{"192.0.2.2", 60 * m, "192.0.2.0/24", false},
			{"192.0.2.3", 61 * m, "192.0.2.0/24", true}, // .1 counts from 50m
		}, 0},
		{"an older ban again does not age the address", hour, []subnetStep{
			{"192.0.2.1", 50 * m, "192.0.2.0/24", false},
			{"192.0.2.1", 0, "192.0.2.0/24", false}, // late report of an earlier ban
			{"192.0.2.2", 60 * m, "192.0.2.0/24", false},
			{"192.0.2.3", 61 * m, "192.0.2.0/24", true},
		}, 0},
		{"late bans count against the newest", hour, []subnetStep{
			{"192.0.2.1", 120 * m, "192.0.2.0/24", false},
			{"192.0.2.2", 30 * m, "192.0.2.0/24", false}, // 90m older than the newest: dropped
			{"192.0.2.3", 60 * m, "192.0.2.0/24", false}, // exactly 1h older: dropped
			{"192.0.2.4", 61 * m, "192.0.2.0/24", false}, // 59m older: counts
			{"192.0.2.5", 90 * m, "192.0.2.0/24", true},
		}, 0},
		{"v6 /64", hour, []subnetStep{
			{"2001:db8:1:2::a", 0, "2001:db8:1:2::/64", false},
			{"2001:db8:1:3::a", 1 * m, "2001:db8:1:3::/64", false},
			{"2001:db8:1:2:ffff:ffff:ffff:ffff", 2 * m, "2001:db8:1:2::/64", false},
			{"2001:db8:1:2::a", 3 * m, "2001:db8:1:2::/64", false}, // again
			{"2001:db8:1:2:1234::1", 4 * m, "2001:db8:1:2::/64", true},
		}, 1},
		{"IPv4-mapped is IPv4", hour, []subnetStep{
			{"::ffff:192.0.2.1", 0, "192.0.2.0/24", false},
			{"192.0.2.1", 1 * m, "192.0.2.0/24", false}, // the same address
			{"::ffff:192.0.2.2", 2 * m, "192.0.2.0/24", false},
			{"192.0.2.3", 3 * m, "192.0.2.0/24", true},
		}, 0},
		{"a zone is ignored", config.SubnetLimit{MaxHosts: 2, FindTime: time.Hour}, []subnetStep{
			{"fe80::1%eth0", 0, "fe80::/64", false},
			{"fe80::1", 1 * m, "fe80::/64", false},
			{"fe80::1%eth1", 2 * m, "fe80::/64", false},
			{"fe80::2%eth0", 3 * m, "fe80::/64", true},
		}, 0},
		{"other prefix lengths", config.SubnetLimit{MaxHosts: 2, FindTime: time.Hour, Prefix4: 16, Prefix6: 48}, []subnetStep{
			{"192.0.2.1", 0, "192.0.0.0/16", false},
			{"2001:db8:1:2::1", 0, "2001:db8:1::/48", false},
			{"192.0.200.1", 1 * m, "192.0.0.0/16", true},
			{"2001:db8:1:ffff::1", 1 * m, "2001:db8:1::/48", true},
		}, 0},
		{"lengths beyond the family's are cut", config.SubnetLimit{MaxHosts: 2, FindTime: time.Hour, Prefix4: 40, Prefix6: 200}, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.1/32", false},
			{"192.0.2.1", 1 * m, "192.0.2.1/32", false},
			{"2001:db8::1", 2 * m, "2001:db8::1/128", false},
		}, 2},
		{"MaxHosts 1: every ban", config.SubnetLimit{MaxHosts: 1, FindTime: time.Hour}, []subnetStep{
			{"192.0.2.1", 0, "192.0.2.0/24", true},
			{"192.0.2.1", 1 * m, "192.0.2.0/24", true},
		}, 0},
		{"disabled: MaxHosts 0", config.SubnetLimit{FindTime: time.Hour}, []subnetStep{
			{"192.0.2.1", 0, "", false},
			{"192.0.2.2", 0, "", false},
			{"192.0.2.3", 0, "", false},
		}, 0},
		{"disabled: no FindTime", config.SubnetLimit{MaxHosts: 1}, []subnetStep{
			{"192.0.2.1", 0, "", false},
		}, 0},
		{"the zero Addr", hour, []subnetStep{
			{"", 0, "", false},
			{"", 0, "", false},
			{"", 0, "", false},
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSubnetTracker(tt.limit, 0)
			for i, st := range tt.steps {
				var a netip.Addr
				if st.addr != "" {
					a = netip.MustParseAddr(st.addr)
				}
				var want netip.Prefix
				if st.prefix != "" {
					want = netip.MustParsePrefix(st.prefix)
				}
				p, trigger := s.Add(a, t0.Add(st.at))
				if p != want || trigger != st.trigger {
					t.Errorf("step %d: Add(%s, +%v) = %v, %v; want %v, %v", i, st.addr, st.at, p, trigger, want, st.trigger)
				}
			}
			if n := s.Len(); n != tt.wantLen {
				t.Errorf("%d prefixes tracked, want %d", n, tt.wantLen)
			}
		})
	}
}

func TestSubnetTrackerDefaults(t *testing.T) {
	s := NewSubnetTracker(config.SubnetLimit{MaxHosts: 3, FindTime: time.Hour}, 0)
	if !s.Enabled() || s.maxPrefixes != DefaultMaxSubnets {
		t.Errorf("enabled %v, cap %d; want true, %d", s.Enabled(), s.maxPrefixes, DefaultMaxSubnets)
	}
	for addr, want := range map[string]string{
		"192.0.2.77":       "192.0.2.0/24",
		"::ffff:192.0.2.7": "192.0.2.0/24",
		"2001:db8::1":      "2001:db8::/64",
	} {
		if got := s.Prefix(netip.MustParseAddr(addr)); got != netip.MustParsePrefix(want) {
			t.Errorf("Prefix(%s) = %v, want %s", addr, got, want)
		}
	}
	if NewSubnetTracker(config.SubnetLimit{FindTime: time.Hour}, 0).Enabled() {
		t.Error("MaxHosts 0 enabled")
	}
	// A huge MaxHosts allocates nothing in proportion.
	big := NewSubnetTracker(config.SubnetLimit{MaxHosts: math.MaxInt, FindTime: time.Hour}, 0)
	for i := range 300 {
		if _, trigger := big.Add(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), t0); trigger {
			t.Fatal("MaxInt hosts triggered")
		}
	}
	if n := big.Hosts(netip.MustParsePrefix("192.0.2.0/24")); n != 256 {
		t.Errorf("%d hosts, want 256", n)
	}
}

func TestSubnetTrackerHosts(t *testing.T) {
	s := NewSubnetTracker(config.SubnetLimit{MaxHosts: 4, FindTime: time.Hour}, 0)
	p := netip.MustParsePrefix("192.0.2.0/24")
	for i, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.3"} {
		s.Add(netip.MustParseAddr(a), t0.Add(time.Duration(i)*time.Minute))
	}
	if n := s.Hosts(p); n != 3 {
		t.Errorf("Hosts = %d, want 3", n)
	}
	if n := s.Hosts(netip.MustParsePrefix("198.51.100.0/24")); n != 0 {
		t.Errorf("Hosts of an unknown prefix = %d, want 0", n)
	}
}

func TestSubnetTrackerExpire(t *testing.T) {
	s := NewSubnetTracker(config.SubnetLimit{MaxHosts: 3, FindTime: time.Hour}, 0)
	add := func(a string, at time.Duration) { s.Add(netip.MustParseAddr(a), t0.Add(at)) }
	add("192.0.2.1", 0)
	add("198.51.100.1", 10*time.Minute)
	add("198.51.100.2", 20*time.Minute) // 198.51.100.0/24's newest ban
	add("2001:db8::1", 30*time.Minute)

	s.Expire(t0.Add(time.Hour - time.Nanosecond))
	if n := s.Len(); n != 3 {
		t.Fatalf("just before an hour: %d prefixes, want 3", n)
	}
	s.Expire(t0.Add(time.Hour)) // 192.0.2.1 exactly an hour old
	if n := s.Len(); n != 2 || s.Hosts(netip.MustParsePrefix("192.0.2.0/24")) != 0 {
		t.Fatalf("at an hour: %d prefixes, want 2 without 192.0.2.0/24", n)
	}
	s.Expire(t0.Add(80 * time.Minute)) // 198.51.100.0/24 goes by its newest ban (20m), not its first
	if n := s.Len(); n != 1 || s.Hosts(netip.MustParsePrefix("2001:db8::/64")) != 1 {
		t.Fatalf("at 80m: %d prefixes, want 2001:db8::/64 alone", n)
	}
	// Expired: a prefix starts again from nothing.
	add("198.51.100.3", 81*time.Minute)
	if n := s.Hosts(netip.MustParsePrefix("198.51.100.0/24")); n != 1 {
		t.Errorf("198.51.100.0/24 after expiry: %d hosts, want 1", n)
	}
	s.Expire(t0.Add(24 * time.Hour))
	if n := s.Len(); n != 0 {
		t.Errorf("a day later: %d prefixes, want 0", n)
	}
	// An expired tracker works as new.
	add("192.0.2.1", 25*time.Hour)
	add("192.0.2.2", 25*time.Hour)
	if p, trigger := s.Add(netip.MustParseAddr("192.0.2.3"), t0.Add(25*time.Hour)); !trigger || p != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("after Expire: %v, %v; want a trigger of 192.0.2.0/24", p, trigger)
	}
}

// TestSubnetTrackerEviction checks the cap: the stalest prefix (oldest newest
// ban) makes room, and its count is lost.
func TestSubnetTrackerEviction(t *testing.T) {
	const m = time.Minute
	s := NewSubnetTracker(config.SubnetLimit{MaxHosts: 3, FindTime: time.Hour}, 2)
	add := func(a string, at time.Duration) bool {
		_, trigger := s.Add(netip.MustParseAddr(a), t0.Add(at))
		return trigger
	}
	a, b, c := netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")
	add("192.0.2.1", 0)
	add("198.51.100.1", 1*m)
	add("192.0.2.2", 2*m) // A is now newer than B
	add("203.0.113.1", 3*m)
	if s.Len() != 2 || s.Hosts(a) != 2 || s.Hosts(b) != 0 || s.Hosts(c) != 1 {
		t.Fatalf("after C: %d prefixes, hosts A %d B %d C %d; want 2, 2 0 1 (B evicted)", s.Len(), s.Hosts(a), s.Hosts(b), s.Hosts(c))
	}
	// B starts again from nothing, and takes the place of the stalest:
	// A (newest ban 2m), not C (3m).
	add("198.51.100.2", 4*m)
	if s.Len() != 2 || s.Hosts(a) != 0 || s.Hosts(b) != 1 || s.Hosts(c) != 1 {
		t.Fatalf("after B again: hosts A %d B %d C %d; want 0 1 1", s.Hosts(a), s.Hosts(b), s.Hosts(c))
	}
	if add("192.0.2.3", 5*m) {
		t.Error("A triggered with its count evicted")
	}

	// Bounded: many prefixes, never more than the cap.
	s = NewSubnetTracker(config.SubnetLimit{MaxHosts: 3, FindTime: time.Hour}, 100)
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		s.Add(a, t0.Add(time.Duration(i)*time.Millisecond))
		if s.Len() > 100 {
			t.Fatalf("after %d adds: %d prefixes, cap 100", i+1, s.Len())
		}
	}
	if len(s.byLast) != s.Len() {
		t.Errorf("heap %d, map %d", len(s.byLast), s.Len())
	}
	// The survivors are the newest 100 prefixes (i>>8 changes every 256
	// adds; 256 distinct addresses, a trigger every 3, leave one).
	for i := range 100 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte((99_999 - i*256) >> 16), byte((99_999 - i*256) >> 8), 0}), 24)
		if s.Hosts(p) == 0 {
			t.Errorf("newest prefix %v evicted", p)
			break
		}
	}
}

// TestSubnetTrackerHeapConsistent mixes adds, triggers, expiry and eviction,
// checking that the heap and the map agree and the heap is ordered.
func TestSubnetTrackerHeapConsistent(t *testing.T) {
	s := NewSubnetTracker(config.SubnetLimit{MaxHosts: 3, FindTime: 10 * time.Minute}, 50)
	for i := range 20_000 {
		// Times jump about, sometimes backwards.
		at := t0.Add(time.Duration(i*7919%5000) * time.Second)
		a := netip.AddrFrom4([4]byte{10, 0, byte(i * 31 % 120), byte(i * 17 % 5)})
		s.Add(a, at)
		if i%97 == 0 {
			s.Expire(at)
		}
		if len(s.byLast) != len(s.prefixes) {
			t.Fatalf("step %d: heap %d, map %d", i, len(s.byLast), len(s.prefixes))
		}
		for j, n := range s.byLast {
			if n.index != j || s.prefixes[n.prefix] != n {
				t.Fatalf("step %d: heap entry %d (%v) out of place", i, j, n.prefix)
			}
			if j > 0 && n.last.Before(s.byLast[(j-1)/2].last) {
				t.Fatalf("step %d: heap order broken at %d", i, j)
			}
			if len(n.hosts) == 0 || len(n.hosts) >= 3 {
				t.Fatalf("step %d: %v holds %d hosts", i, n.prefix, len(n.hosts))
			}
		}
	}
}
