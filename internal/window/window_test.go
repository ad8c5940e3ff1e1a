package window

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2024, 6, 21, 16, 47, 48, 0, time.UTC)

// at returns t0+d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// addr parses s; "" is the invalid zero Addr.
func addr(t testing.TB, s string) netip.Addr {
	t.Helper()
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

func mustNew(t testing.TB, o Options) *Window {
	t.Helper()
	w, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return w
}

// mustNewBuckets returns a Window in bucket mode whatever o.MaxRetry is.
func mustNewBuckets(t testing.TB, o Options) *Window {
	t.Helper()
	w, err := newWindow(o, 0)
	if err != nil {
		t.Fatalf("newWindow(%+v): %v", o, err)
	}
	if w.nb == 0 {
		t.Fatalf("newWindow(%+v) is not in bucket mode", o)
	}
	return w
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"ok", Options{MaxRetry: 5, FindTime: time.Minute}, nil},
		{"ok large", Options{MaxRetry: 600, FindTime: time.Minute, MaxTracked: 1e6}, nil},
		{"ok tiny findtime", Options{MaxRetry: 600, FindTime: 3}, nil},
		{"maxretry zero", Options{MaxRetry: 0, FindTime: time.Minute}, ErrMaxRetry},
		{"maxretry negative", Options{MaxRetry: -1, FindTime: time.Minute}, ErrMaxRetry},
		{"findtime zero", Options{MaxRetry: 5}, ErrFindTime},
		{"findtime negative", Options{MaxRetry: 5, FindTime: -time.Second}, ErrFindTime},
		{"max tracked negative", Options{MaxRetry: 5, FindTime: time.Minute, MaxTracked: -1}, ErrMaxTracked},
		{"max tracked too large", Options{MaxRetry: 5, FindTime: time.Minute, MaxTracked: maxTrackedLimit + 1}, ErrMaxTracked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(tt.opts)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("New(%+v) error = %v, want %v", tt.opts, err, tt.want)
			}
			if err == nil && tt.opts.MaxTracked == 0 && w.maxTracked != DefaultMaxTracked {
				t.Errorf("maxTracked = %d, want the default %d", w.maxTracked, DefaultMaxTracked)
			}
		})
	}
}

// failure is one call to Add and, in result, what it returned.
type failure struct {
	Addr string
	At   time.Duration // since t0
}

type result struct {
	Ban   bool
	Count int
}

// addTests are run in both modes: wantBuckets, when set, is the result in
// bucket mode where it differs. FindTime is 16s throughout, so that the 16
// buckets are one second wide.
var addTests = []struct {
	name        string
	maxRetry    int
	adds        []failure
	want        []result
	wantBuckets []result
}{
	{
		name:     "crossing at exactly maxretry",
		maxRetry: 3,
		adds:     []failure{{"192.0.2.1", 0}, {"192.0.2.1", time.Second}, {"192.0.2.1", 2 * time.Second}},
		want:     []result{{false, 1}, {false, 2}, {true, 3}},
	},
	{
		name:     "count resets after crossing",
		maxRetry: 2,
		adds: []failure{
			{"192.0.2.1", 0}, {"192.0.2.1", 1 * time.Second}, {"192.0.2.1", 2 * time.Second},
			{"192.0.2.1", 3 * time.Second}, {"192.0.2.1", 4 * time.Second},
		},
		want: []result{{false, 1}, {true, 2}, {false, 1}, {true, 2}, {false, 1}},
	},
	{
		name:     "maxretry 1 bans every failure",
		maxRetry: 1,
		adds:     []failure{{"192.0.2.1", 0}, {"192.0.2.1", 0}, {"2001:db8::1", time.Hour}},
		want:     []result{{true, 1}, {true, 1}, {true, 1}},
	},
	{
		name:     "equal times all count",
		maxRetry: 3,
		adds:     []failure{{"192.0.2.1", 0}, {"192.0.2.1", 0}, {"192.0.2.1", 0}},
		want:     []result{{false, 1}, {false, 2}, {true, 3}},
	},
	{
		name:     "just inside findtime counts",
		maxRetry: 2,
		adds:     []failure{{"192.0.2.1", 0}, {"192.0.2.1", 16*time.Second - 1}},
		want:     []result{{false, 1}, {true, 2}},
	},
	{
		name:     "exactly findtime old is forgotten",
		maxRetry: 2,
		adds:     []failure{{"192.0.2.1", 0}, {"192.0.2.1", 16 * time.Second}},
		want:     []result{{false, 1}, {false, 1}},
	},
	{
		name:     "sliding window",
		maxRetry: 3,
		adds: []failure{
			{"192.0.2.1", 0}, {"192.0.2.1", 8 * time.Second}, {"192.0.2.1", 16 * time.Second},
			{"192.0.2.1", 20 * time.Second},
		},
		want: []result{{false, 1}, {false, 2}, {false, 2}, {true, 3}},
	},
	{
		// Exact counting keeps the failure at 0.9s until 16.9s; buckets
		// forget it when bucket 16 reuses bucket 0, up to 1s early.
		name:        "buckets forget up to a bucket early",
		maxRetry:    2,
		adds:        []failure{{"192.0.2.1", 900 * time.Millisecond}, {"192.0.2.1", 16500 * time.Millisecond}},
		want:        []result{{false, 1}, {true, 2}},
		wantBuckets: []result{{false, 1}, {false, 1}},
	},
	{
		name:     "out of order within findtime of the newest counts",
		maxRetry: 3,
		adds:     []failure{{"192.0.2.1", 10 * time.Second}, {"192.0.2.1", 5 * time.Second}, {"192.0.2.1", 1 * time.Second}},
		want:     []result{{false, 1}, {false, 2}, {true, 3}},
	},
	{
		name:     "out of order findtime older than the newest is dropped",
		maxRetry: 3,
		adds: []failure{
			{"192.0.2.1", 20 * time.Second}, {"192.0.2.1", 4 * time.Second}, {"192.0.2.1", 0},
			{"192.0.2.1", 10 * time.Second},
		},
		want: []result{{false, 1}, {false, 1}, {false, 1}, {false, 2}},
	},
	{
		name:     "a late line is forgotten by a newer one",
		maxRetry: 4,
		adds: []failure{
			{"192.0.2.1", 10 * time.Second}, {"192.0.2.1", 2 * time.Second}, {"192.0.2.1", 20 * time.Second},
		},
		want: []result{{false, 1}, {false, 2}, {false, 2}},
	},
	{
		name:     "a late line after a crossing starts a new count",
		maxRetry: 2,
		adds:     []failure{{"192.0.2.1", 10 * time.Second}, {"192.0.2.1", 11 * time.Second}, {"192.0.2.1", 9 * time.Second}},
		want:     []result{{false, 1}, {true, 2}, {false, 1}},
	},
	{
		name:     "addresses count separately",
		maxRetry: 2,
		adds: []failure{
			{"192.0.2.1", 0}, {"192.0.2.2", 0}, {"2001:db8::1", 0}, {"2001:db8::2", 0},
			{"192.0.2.2", time.Second}, {"2001:db8::1", time.Second},
		},
		want: []result{{false, 1}, {false, 1}, {false, 1}, {false, 1}, {true, 2}, {true, 2}},
	},
	{
		name:     "IPv4-mapped is the IPv4 address",
		maxRetry: 3,
		adds:     []failure{{"192.0.2.1", 0}, {"::ffff:192.0.2.1", time.Second}, {"::ffff:c000:201", 2 * time.Second}},
		want:     []result{{false, 1}, {false, 2}, {true, 3}},
	},
	{
		name:     "IPv4-compatible and other IPv6 are not the IPv4 address",
		maxRetry: 2,
		adds:     []failure{{"192.0.2.1", 0}, {"::192.0.2.1", time.Second}, {"64:ff9b::192.0.2.1", time.Second}},
		want:     []result{{false, 1}, {false, 1}, {false, 1}},
	},
	{
		name:     "zone ignored",
		maxRetry: 2,
		adds:     []failure{{"fe80::1%eth0", 0}, {"fe80::1", time.Second}},
		want:     []result{{false, 1}, {true, 2}},
	},
	{
		name:     "invalid address never counted",
		maxRetry: 1,
		adds:     []failure{{"", 0}, {"", time.Second}},
		want:     []result{{false, 0}, {false, 0}},
	},
}

func TestAdd(t *testing.T) {
	for _, mode := range []string{"exact", "buckets"} {
		for _, tt := range addTests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				o := Options{MaxRetry: tt.maxRetry, FindTime: 16 * time.Second}
				var w *Window
				want := tt.want
				if mode == "exact" {
					w = mustNew(t, o)
				} else {
					w = mustNewBuckets(t, o)
					if tt.wantBuckets != nil {
						want = tt.wantBuckets
					}
				}
				var got []result
				for _, f := range tt.adds {
					ban, n := w.Add(addr(t, f.Addr), at(f.At))
					got = append(got, result{ban, n})
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Add results mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestCountAndTimes(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		buckets   bool
		adds      []time.Duration
		now       time.Duration
		wantTimes []time.Time
	}{
		{
			name:      "all within",
			adds:      []time.Duration{3 * s, 1 * s, 2 * s},
			now:       10 * s,
			wantTimes: []time.Time{at(1 * s), at(2 * s), at(3 * s)},
		},
		{
			name:      "boundary exclusive",
			adds:      []time.Duration{0, 1, 2 * s},
			now:       16 * s,
			wantTimes: []time.Time{at(1), at(2 * s)},
		},
		{
			name: "all too old",
			adds: []time.Duration{0, s},
			now:  time.Hour,
		},
		{
			name:      "now before the failures",
			adds:      []time.Duration{10 * s},
			now:       0,
			wantTimes: []time.Time{at(10 * s)},
		},
		{
			name:      "buckets report bucket starts",
			buckets:   true,
			adds:      []time.Duration{1500 * time.Millisecond, 1200 * time.Millisecond, 4 * s},
			now:       5 * s,
			wantTimes: []time.Time{at(s), at(s), at(4 * s)},
		},
		{
			name:      "buckets boundary",
			buckets:   true,
			adds:      []time.Duration{900 * time.Millisecond, 1900 * time.Millisecond},
			now:       16*s + 500*time.Millisecond,
			wantTimes: []time.Time{at(s)},
		},
	}
	a := netip.MustParseAddr("2001:db8::7")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{MaxRetry: 10, FindTime: 16 * time.Second}
			w := mustNew(t, o)
			if tt.buckets {
				w = mustNewBuckets(t, o)
			}
			for _, d := range tt.adds {
				w.Add(a, at(d))
			}
			got := w.Times(a, at(tt.now))
			if diff := cmp.Diff(tt.wantTimes, got); diff != "" {
				t.Errorf("Times mismatch (-want +got):\n%s", diff)
			}
			if n := w.Count(a, at(tt.now)); n != len(tt.wantTimes) {
				t.Errorf("Count = %d, want %d", n, len(tt.wantTimes))
			}
			other := netip.MustParseAddr("2001:db8::8")
			if n, ts := w.Count(other, at(tt.now)), w.Times(other, at(tt.now)); n != 0 || ts != nil {
				t.Errorf("untracked address: Count = %d, Times = %v; want 0, nil", n, ts)
			}
		})
	}
}

func TestReset(t *testing.T) {
	w := mustNew(t, Options{MaxRetry: 3, FindTime: time.Minute})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	w.Add(a, t0)
	w.Add(a, t0)
	w.Add(b, t0)
	w.Reset(netip.MustParseAddr("::ffff:192.0.2.1"))
	w.Reset(netip.MustParseAddr("192.0.2.99")) // untracked: no-op
	w.Reset(netip.Addr{})
	got := []int{w.Count(a, t0), w.Count(b, t0), w.Len()}
	if diff := cmp.Diff([]int{0, 1, 1}, got); diff != "" {
		t.Errorf("Count(a), Count(b), Len after Reset mismatch (-want +got):\n%s", diff)
	}
	if ban, n := w.Add(a, t0); ban || n != 1 {
		t.Errorf("Add after Reset = %v, %d; want false, 1", ban, n)
	}
}

func TestEviction(t *testing.T) {
	tests := []struct {
		name        string
		maxTracked  int
		adds        []failure
		wantTracked []string
		wantEvicted uint64
	}{
		{
			name:        "stalest first",
			maxTracked:  3,
			adds:        []failure{{"192.0.2.1", 0}, {"192.0.2.2", 1}, {"192.0.2.3", 2}, {"192.0.2.4", 3}, {"192.0.2.5", 4}},
			wantTracked: []string{"192.0.2.3", "192.0.2.4", "192.0.2.5"},
			wantEvicted: 2,
		},
		{
			name:       "a failure refreshes",
			maxTracked: 3,
			adds: []failure{
				{"192.0.2.1", 0}, {"192.0.2.2", 1}, {"192.0.2.3", 2}, {"192.0.2.1", 3}, {"192.0.2.4", 4},
			},
			wantTracked: []string{"192.0.2.3", "192.0.2.1", "192.0.2.4"},
			wantEvicted: 1,
		},
		{
			name:       "a dropped late line does not refresh",
			maxTracked: 3,
			adds: []failure{
				{"192.0.2.1", time.Hour}, {"192.0.2.2", time.Hour}, {"192.0.2.3", time.Hour}, {"192.0.2.1", 0},
				{"192.0.2.4", time.Hour},
			},
			wantTracked: []string{"192.0.2.2", "192.0.2.3", "192.0.2.4"},
			wantEvicted: 1,
		},
		{
			name:       "a ban frees a place without eviction",
			maxTracked: 2,
			adds: []failure{
				{"192.0.2.1", 0}, {"192.0.2.2", 1}, {"192.0.2.2", 2}, {"192.0.2.2", 3}, {"192.0.2.3", 4},
			},
			wantTracked: []string{"192.0.2.1", "192.0.2.3"},
			wantEvicted: 0,
		},
		{
			name:        "cap of one",
			maxTracked:  1,
			adds:        []failure{{"192.0.2.1", 0}, {"2001:db8::1", 1}, {"192.0.2.1", 2}},
			wantTracked: []string{"192.0.2.1"},
			wantEvicted: 2,
		},
	}
	for _, mode := range []string{"exact", "buckets"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				o := Options{MaxRetry: 3, FindTime: time.Minute, MaxTracked: tt.maxTracked}
				w := mustNew(t, o)
				if mode == "buckets" {
					w = mustNewBuckets(t, o)
				}
				for _, f := range tt.adds {
					w.Add(addr(t, f.Addr), at(f.At))
				}
				if diff := cmp.Diff(tt.wantTracked, tracked(w)); diff != "" {
					t.Errorf("tracked addresses, stalest first, mismatch (-want +got):\n%s", diff)
				}
				if got := w.Evicted(); got != tt.wantEvicted {
					t.Errorf("Evicted() = %d, want %d", got, tt.wantEvicted)
				}
				checkInvariants(t, w)
			})
		}
	}
}

// tracked returns the tracked addresses in eviction order, stalest first.
func tracked(w *Window) []string {
	var out []string
	for s := w.node(0).prev; s != 0; s = w.node(s).prev {
		out = append(out, netip.AddrFrom16(*w.key(s)).Unmap().String())
	}
	return out
}

// checkInvariants checks the arena against the map.
func checkInvariants(t *testing.T, w *Window) {
	t.Helper()
	n := 0
	for s, p := w.node(0).next, uint32(0); s != 0; p, s = s, w.node(s).next {
		n++
		if n > w.slots {
			t.Fatal("recency list has a cycle")
		}
		if w.node(s).prev != p {
			t.Fatalf("slot %d: prev = %d, want %d", s, w.node(s).prev, p)
		}
		if got, ok := w.index[*w.key(s)]; !ok || got != s {
			t.Fatalf("slot %d: index has %d, %v", s, got, ok)
		}
		if w.node(s).n == 0 {
			t.Fatalf("slot %d in the list holds no failure", s)
		}
	}
	if n != w.Len() {
		t.Fatalf("list has %d slots, map %d", n, w.Len())
	}
	free := 0
	for s := w.free; s != 0; s = w.node(s).next {
		free++
		if w.node(s).n != 0 {
			t.Fatalf("free slot %d holds %d failures", s, w.node(s).n)
		}
	}
	if n+free+1 != w.slots {
		t.Fatalf("%d tracked + %d free + sentinel != %d slots", n, free, w.slots)
	}
	room := 0
	for i, p := range w.pages {
		if i < len(w.pages)-1 && len(p.nodes) != pageSlots {
			t.Fatalf("page %d of %d has %d slots, want %d", i, len(w.pages), len(p.nodes), pageSlots)
		}
		room += len(p.nodes)
	}
	if room != w.room || w.slots > w.room || w.room > w.maxTracked+1 {
		t.Fatalf("pages hold %d slots, room %d, %d handed out, cap %d", room, w.room, w.slots, w.maxTracked)
	}
}

func TestExpire(t *testing.T) {
	s := time.Second
	tests := []struct {
		name        string
		adds        []failure
		now         time.Duration
		want        int
		wantTracked []string
	}{
		{
			name:        "newest failure decides",
			adds:        []failure{{"192.0.2.1", 0}, {"192.0.2.1", 10 * s}, {"192.0.2.2", 5 * s}, {"192.0.2.3", 11 * s}},
			now:         65 * s,
			want:        1,
			wantTracked: []string{"192.0.2.1", "192.0.2.3"},
		},
		{
			name:        "boundary exclusive",
			adds:        []failure{{"192.0.2.1", 10 * s}, {"192.0.2.2", 10*s + 1}},
			now:         70 * s,
			want:        1,
			wantTracked: []string{"192.0.2.2"},
		},
		{
			name: "all",
			adds: []failure{{"192.0.2.1", 0}, {"2001:db8::1", s}},
			now:  time.Hour,
			want: 2,
		},
		{
			name:        "none",
			adds:        []failure{{"192.0.2.1", 0}, {"2001:db8::1", s}},
			now:         2 * s,
			want:        0,
			wantTracked: []string{"192.0.2.1", "2001:db8::1"},
		},
		{
			name:        "out of order: the newest, not the last added",
			adds:        []failure{{"192.0.2.1", 30 * s}, {"192.0.2.1", 5 * s}, {"192.0.2.2", 20 * s}},
			now:         85 * s,
			want:        1,
			wantTracked: []string{"192.0.2.1"},
		},
	}
	for _, mode := range []string{"exact", "buckets"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				o := Options{MaxRetry: 5, FindTime: time.Minute}
				w := mustNew(t, o)
				if mode == "buckets" {
					w = mustNewBuckets(t, o)
				}
				for _, f := range tt.adds {
					w.Add(addr(t, f.Addr), at(f.At))
				}
				if got := w.Expire(at(tt.now)); got != tt.want {
					t.Errorf("Expire = %d, want %d", got, tt.want)
				}
				if diff := cmp.Diff(tt.wantTracked, tracked(w)); diff != "" {
					t.Errorf("tracked after Expire mismatch (-want +got):\n%s", diff)
				}
				checkInvariants(t, w)
			})
		}
	}
}

// TestExpireCompacts floods a window, expires most of it and checks that the
// arena shrinks while the survivors keep their failures and their order.
func TestExpireCompacts(t *testing.T) {
	for _, mode := range []string{"exact", "buckets"} {
		t.Run(mode, func(t *testing.T) {
			o := Options{MaxRetry: 5, FindTime: time.Minute, MaxTracked: 100000}
			w := mustNew(t, o)
			if mode == "buckets" {
				w = mustNewBuckets(t, o)
			}
			for i := range 50000 {
				w.Add(ipv4(i), t0)
			}
			var survivors []string
			for i := range 100 {
				a := ipv4(i * 7)
				w.Add(a, at(time.Minute))
				w.Add(a, at(time.Minute+time.Second))
				survivors = append(survivors, a.String())
			}
			before := w.room
			if got := w.Expire(at(time.Minute)); got != 50000-100 {
				t.Errorf("Expire = %d, want %d", got, 50000-100)
			}
			if after := w.room; after >= before/4 {
				t.Errorf("arena room for %d slots after Expire, was %d: not compacted", after, before)
			}
			checkInvariants(t, w)
			if diff := cmp.Diff(survivors, tracked(w)); diff != "" {
				t.Errorf("survivors, stalest first, mismatch (-want +got):\n%s", diff)
			}
			for _, s := range survivors {
				a := netip.MustParseAddr(s)
				if n := w.Count(a, at(time.Minute+time.Second)); n != 2 {
					t.Errorf("Count(%v) = %d, want 2", a, n)
				}
			}
			// The compacted window still works, up to the cap.
			for i := range 200000 {
				w.Add(ipv6(i), at(2*time.Minute))
			}
			checkInvariants(t, w)
			if w.Len() != o.MaxTracked {
				t.Errorf("Len() = %d, want %d", w.Len(), o.MaxTracked)
			}
		})
	}
}

// TestBotnetStaysAtCap adds a million distinct addresses to a window capped
// at ten thousand.
func TestBotnetStaysAtCap(t *testing.T) {
	const addrs, maxTracked = 1000000, 10000
	for _, maxRetry := range []int{5, 600} {
		t.Run(fmt.Sprint("maxretry ", maxRetry), func(t *testing.T) {
			w := mustNew(t, Options{MaxRetry: maxRetry, FindTime: 10 * time.Minute, MaxTracked: maxTracked})
			for i := range addrs {
				var a netip.Addr
				if i%2 == 0 {
					a = ipv4(i)
				} else {
					a = ipv6(i)
				}
				if ban, _ := w.Add(a, at(time.Duration(i)*time.Millisecond)); ban {
					t.Fatalf("ban of %v after one failure", a)
				}
			}
			if w.Len() != maxTracked {
				t.Errorf("Len() = %d, want %d", w.Len(), maxTracked)
			}
			if got, want := w.Evicted(), uint64(addrs-maxTracked); got != want {
				t.Errorf("Evicted() = %d, want %d", got, want)
			}
			checkInvariants(t, w)
			// The newest are the ones kept.
			if n := w.Count(ipv6(addrs-1), at(addrs*time.Millisecond)); n != 1 {
				t.Errorf("Count(newest) = %d, want 1", n)
			}
			if n := w.Count(ipv4(0), at(addrs*time.Millisecond)); n != 0 {
				t.Errorf("Count(first) = %d, want 0", n)
			}
		})
	}
}

// ipv4 returns a distinct IPv4 address for each i < 2^24.
func ipv4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// ipv6 returns a distinct IPv6 address in one /64 for each i, as a botnet
// or a single attacker rotating through its prefix would use.
func ipv6(i int) netip.Addr {
	b := [16]byte{0x20, 0x01, 0x0d, 0xb8}
	for j := 15; j >= 8 && i > 0; j-- {
		b[j] = byte(i)
		i >>= 8
	}
	return netip.AddrFrom16(b)
}

func TestAddDoesNotAllocate(t *testing.T) {
	for _, mode := range []string{"exact", "buckets"} {
		t.Run(mode, func(t *testing.T) {
			o := Options{MaxRetry: 5, FindTime: time.Minute}
			w := mustNew(t, o)
			if mode == "buckets" {
				w = mustNewBuckets(t, o)
			}
			const n = 1000
			for i := range n {
				w.Add(ipv6(i), t0)
			}
			i := 0
			allocs := testing.AllocsPerRun(10000, func() {
				// A full minute per round: nobody reaches maxretry.
				w.Add(ipv6(i%n), at(time.Duration(i/n)*time.Minute))
				i++
			})
			if allocs != 0 {
				t.Errorf("Add of a tracked address: %v allocations, want 0", allocs)
			}
		})
	}
}

// TestTimeLimits feeds times far outside what a log line carries, with the
// largest FindTime: they are clamped, and nothing overflows.
func TestTimeLimits(t *testing.T) {
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	long := time.Duration(1<<63 - 1)
	tests := []struct {
		name    string
		buckets bool
		find    time.Duration
		times   []time.Time
		want    []result
	}{
		{
			name:  "zero time then now",
			find:  long,
			times: []time.Time{{}, t0, t0},
			want:  []result{{false, 1}, {false, 2}, {true, 3}},
		},
		{
			// Clamped to ±2^62 ns, the year 1 is just more than the
			// longest FindTime before the year 3000.
			name:  "year 3000 then year 1",
			find:  long,
			times: []time.Time{far, {}, far},
			want:  []result{{false, 1}, {false, 1}, {false, 2}},
		},
		{
			name:    "buckets of a nanosecond",
			buckets: true,
			find:    15,
			times:   []time.Time{{}, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), {}},
			want:    []result{{false, 1}, {false, 2}, {true, 3}},
		},
		{
			name:    "buckets, year 3000 then year 1",
			buckets: true,
			find:    long,
			times:   []time.Time{far, {}, far},
			want:    []result{{false, 1}, {false, 1}, {false, 2}},
		},
	}
	a := netip.MustParseAddr("192.0.2.1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{MaxRetry: 3, FindTime: tt.find}
			w := mustNew(t, o)
			if tt.buckets {
				w = mustNewBuckets(t, o)
			}
			var got []result
			for _, tm := range tt.times {
				ban, n := w.Add(a, tm)
				got = append(got, result{ban, n})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Add results mismatch (-want +got):\n%s", diff)
			}
			w.Count(a, time.Time{})
			w.Times(a, far)
			w.Expire(time.Time{})
			w.Expire(far)
			checkInvariants(t, w)
		})
	}
}
