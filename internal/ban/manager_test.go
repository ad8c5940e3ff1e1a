package ban

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/config"
)

// A ban ends at its end, not a nanosecond before; a permanent one never.
func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		banTime time.Duration
		o       Order
		wantEnd time.Duration // from t0; 0: permanent
	}{
		{"jail bantime", 10 * time.Minute, order("sshd", "192.0.2.7"), 10 * time.Minute},
		{"order for", 10 * time.Minute, Order{Jail: "sshd", Target: pfx("2001:db8::7"), For: time.Hour}, time.Hour},
		{"manual prefix", 10 * time.Minute, Order{Jail: "sshd", Target: pfx("43.229.0.0/16"), Manual: true, For: 90 * time.Second}, 90 * time.Second},
		{"permanent jail", time.Duration(config.Forever), order("sshd", "192.0.2.7"), 0},
		{"permanent order", 10 * time.Minute, Order{Jail: "sshd", Target: pfx("192.0.2.7"), For: time.Duration(config.Forever)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			fb := h.backend("fake", nil)
			h.setJail(JailSpec{Name: "sshd", BanTime: tt.banTime}, fb)
			b := h.ban(tt.o)
			target := action.Target{Prefix: tt.o.Target}.String()
			var wantEnd time.Time
			if tt.wantEnd != 0 {
				wantEnd = t0.Add(tt.wantEnd)
			}
			if !b.End.Equal(wantEnd) || !b.Start.Equal(t0) {
				t.Errorf("Ban = start %v end %v, want start %v end %v", b.Start, b.End, t0, wantEnd)
			}
			h.waitFor("the ban applied", h.applied("sshd", 1))
			h.waitArmed(wantEnd)

			if tt.wantEnd == 0 {
				h.clk.Advance(100 * 365 * 24 * time.Hour)
				if _, ok := h.m.Lookup("sshd", tt.o.Target.Addr()); !ok {
					t.Error("permanent ban gone after 100 years")
				}
				if n := h.clk.Pending(); n != 0 {
					t.Errorf("%d timers pending for a permanent ban, want 0", n)
				}
				return
			}
			// Another ban ends half a second before: Run wakes then, and
			// must leave the first one alone.
			h.ban(Order{Jail: "sshd", Target: pfx("198.51.100.99"), For: tt.wantEnd - 500*time.Millisecond})
			h.waitFor("the other ban applied", h.applied("sshd", 2))
			// Run must have re-armed for the earlier end before the clock jumps: its timer is
			// set relative to the time it reads, and a jump in between would push it back.
			h.waitArmed(t0.Add(tt.wantEnd - 500*time.Millisecond))
			h.clk.Set(wantEnd.Add(-time.Nanosecond))
			h.waitFor("the other ban's expiry", func() bool { return fb.hasCall("unban 198.51.100.99") })
			h.waitArmed(wantEnd)
			if _, ok := h.m.Lookup("sshd", tt.o.Target.Addr()); !ok || fb.hasCall("unban "+target) {
				t.Fatalf("ban lifted before its end (in table: %v)", ok)
			}
			h.clk.Advance(time.Nanosecond)
			h.waitFor("the unban call", func() bool { return fb.hasCall("unban " + target) })
			h.waitArmed(time.Time{})
			if bs := h.m.Bans(""); len(bs) != 0 {
				t.Errorf("Bans after expiry = %v", banTargets(bs))
			}
			if got := fb.ruleList(); len(got) != 0 {
				t.Errorf("rules after expiry = %v", got)
			}
			if want := fmt.Sprintf("msg=unban jail=sshd target=%s reason=expired", target); !strings.Contains(h.logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, h.logs)
			}
		})
	}
}

// A second order for a banned address extends its end (never shortens it)
// and makes no second rule.
func TestReban(t *testing.T) {
	h := newHarness(t, Options{})
	fb := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), fb)
	h.ban(order("sshd", "192.0.2.7"))
	h.waitFor("the ban applied", h.applied("sshd", 1))
	h.waitArmed(t0.Add(10 * time.Minute))

	h.clk.Advance(5 * time.Minute)
	// An order for failures from before the ban (a log read again after a reload) changes nothing.
	stale := order("sshd", "192.0.2.7")
	stale.Time = t0.Add(-time.Second)
	if b := h.ban(stale); !b.End.Equal(t0.Add(10*time.Minute)) || b.Failures != 5 {
		t.Errorf("re-ban for old failures = end %v failures %d, want the ban unchanged", b.End, b.Failures)
	}
	// So does one whose time is the ban's start: a whole-second log time of the lines that
	// made a ban begun in the first millisecond of that second (TestKillKeepsBans, once in CI).
	stale.Time = t0
	if b := h.ban(stale); !b.End.Equal(t0.Add(10*time.Minute)) || b.Failures != 5 {
		t.Errorf("re-ban for failures at the ban's start = end %v failures %d, want the ban unchanged", b.End, b.Failures)
	}
	o := order("sshd", "192.0.2.7")
	o.Time = h.clk.Now()
	b := h.ban(o)
	if want := t0.Add(15 * time.Minute); !b.End.Equal(want) || b.Failures != 10 || !b.Start.Equal(t0) {
		t.Errorf("re-ban = end %v failures %d start %v, want end %v failures 10 start %v", b.End, b.Failures, b.Start, want, t0)
	}
	o.For = time.Minute
	if b := h.ban(o); !b.End.Equal(t0.Add(15 * time.Minute)) {
		t.Errorf("shorter re-ban moved the end to %v", b.End)
	}
	// The timer still fires at the old end; the heap knows better.
	h.clk.Advance(5 * time.Minute)
	h.waitArmed(t0.Add(15 * time.Minute))
	if _, ok := h.m.Lookup("sshd", addr("192.0.2.7")); !ok {
		t.Fatal("extended ban lifted at its first end")
	}
	h.clk.Advance(5 * time.Minute)
	h.waitFor("the unban", func() bool { return fb.hasCall("unban 192.0.2.7") })

	// Permanent beats any end.
	h.ban(order("sshd", "192.0.2.8"))
	h.clk.Advance(time.Second) // a failure after the ban began
	o = order("sshd", "192.0.2.8")
	o.Time = h.clk.Now()
	o.For = time.Duration(config.Forever)
	if b := h.ban(o); !b.End.IsZero() {
		t.Errorf("permanent re-ban end = %v, want zero", b.End)
	}
	h.ban(order("sshd", "192.0.2.8"))
	h.waitFor("the ban applied", h.applied("sshd", 1))
	h.m.mu.Lock()
	if n := len(h.m.expiry); n != 0 {
		t.Errorf("%d bans wait for expiry, want none", n)
	}
	h.m.mu.Unlock()

	want := []string{"start", "ban 192.0.2.7", "unban 192.0.2.7", "ban 192.0.2.8"}
	if diff := cmp.Diff(want, fb.recorded()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if s := h.m.Stats("sshd"); s.TotalBanned != 2 || s.Banned != 1 {
		t.Errorf("Stats = %+v, want TotalBanned 2, Banned 1", s)
	}
}

// Manual bans of a prefix, Lookup by covering prefix, exact Unban.
func TestManualPrefix(t *testing.T) {
	h := newHarness(t, Options{})
	fb := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), fb)
	h.setJail(spec10m("nginx"), h.backend("fake2", nil))

	p := h.ban(Order{Jail: "sshd", Target: pfx("43.229.0.0/16"), Manual: true})
	if !p.Manual || p.Target != pfx("43.229.0.0/16") {
		t.Errorf("Ban = %+v", p)
	}
	// Host bits are cleared; IPv4-mapped IPv6 becomes IPv4; same target: no new ban.
	for _, s := range []string{"43.229.1.2/16", "::ffff:43.229.0.0/112"} {
		if b := h.ban(Order{Jail: "sshd", Target: pfx(s), Manual: true}); b.Target != pfx("43.229.0.0/16") {
			t.Errorf("Ban(%s).Target = %v, want 43.229.0.0/16", s, b.Target)
		}
	}
	h.ban(order("sshd", "43.229.7.8"))
	h.ban(order("nginx", "2001:db8::/48"))
	h.waitFor("bans applied", h.applied("sshd", 2))

	lookups := []struct {
		jail, addr, want string // want: "" for none
	}{
		{"sshd", "43.229.7.8", "43.229.7.8/32"},
		{"sshd", "43.229.7.9", "43.229.0.0/16"},
		{"sshd", "::ffff:43.229.7.9", "43.229.0.0/16"},
		{"", "43.229.7.9", "43.229.0.0/16"},
		{"nginx", "43.229.7.9", ""},
		{"sshd", "43.230.0.1", ""},
		{"", "2001:db8::1", "2001:db8::/48"},
		{"sshd", "2001:db8::1", ""},
		{"nope", "43.229.7.8", ""},
	}
	for _, l := range lookups {
		b, ok := h.m.Lookup(l.jail, addr(l.addr))
		if got := map[bool]string{true: b.Target.String()}[ok]; got != l.want {
			t.Errorf("Lookup(%q, %s) = %q, want %q", l.jail, l.addr, got, l.want)
		}
	}

	if _, err := h.m.Unban("sshd", pfx("43.229.7.0/24")); !errors.Is(err, ErrNotBanned) {
		t.Errorf("Unban(not banned) = %v, want ErrNotBanned", err)
	}
	if _, err := h.m.Unban("nope", pfx("43.229.7.8")); !errors.Is(err, ErrUnknownJail) {
		t.Errorf("Unban(unknown jail) = %v, want ErrUnknownJail", err)
	}
	if got, err := h.m.Unban("", pfx("43.229.7.8")); err != nil || len(got) != 1 {
		t.Errorf("Unban(43.229.7.8) = %v, %v", banTargets(got), err)
	}
	if b, _ := h.m.Lookup("sshd", addr("43.229.7.8")); b.Target != pfx("43.229.0.0/16") {
		t.Errorf("after unban of the address, Lookup = %v, want the prefix", b.Target)
	}
	if got, err := h.m.Unban("", pfx("43.229.0.0/16")); err != nil || len(got) != 1 {
		t.Errorf("Unban(prefix) = %v, %v", banTargets(got), err)
	}
	h.waitFor("the unban calls", func() bool { return len(fb.ruleList()) == 0 && h.m.Stats("").Pending == 0 })
	want := []string{"start", "ban 43.229.0.0/16", "ban 43.229.7.8", "unban 43.229.7.8", "unban 43.229.0.0/16"}
	if diff := cmp.Diff(want, fb.recorded()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(h.logs.String(), "msg=unban jail=sshd target=43.229.0.0/16 reason=manual") {
		t.Errorf("no manual unban logged:\n%s", h.logs)
	}

	bad := []netip.Prefix{pfx("0.0.0.0/0"), pfx("::/0"), {}, pfx("::ffff:0.0.0.0/90")}
	for _, p := range bad {
		if _, err := h.m.Ban(Order{Jail: "sshd", Target: p}); !errors.Is(err, action.ErrInvalidTarget) {
			t.Errorf("Ban(%v) = %v, want ErrInvalidTarget", p, err)
		}
	}
	if _, err := h.m.Ban(order("nope", "192.0.2.1")); !errors.Is(err, ErrUnknownJail) {
		t.Errorf("Ban(unknown jail) = %v, want ErrUnknownJail", err)
	}
	if _, err := h.m.Ban(Order{Jail: "sshd", Target: pfx("192.0.2.1"), For: -5}); err == nil {
		t.Error("Ban(For -5ns) = nil error")
	}
}

func TestUnbanAll(t *testing.T) {
	h := newHarness(t, Options{})
	a, b := h.backend("a", nil), h.backend("b", nil)
	h.setJail(spec10m("a"), a)
	h.setJail(spec10m("b"), b)
	for _, s := range []string{"192.0.2.1", "192.0.2.2"} {
		h.ban(order("a", s))
		h.ban(order("b", s))
	}
	if got := banTargets(h.m.UnbanAll("a")); !cmp.Equal(got, []string{"a 192.0.2.1", "a 192.0.2.2"}) {
		t.Errorf("UnbanAll(a) = %v", got)
	}
	if got := banTargets(h.m.Bans("")); !cmp.Equal(got, []string{"b 192.0.2.1", "b 192.0.2.2"}) {
		t.Errorf("Bans after UnbanAll(a) = %v", got)
	}
	h.ban(order("a", "192.0.2.3"))
	if got := len(h.m.UnbanAll("")); got != 3 {
		t.Errorf("UnbanAll(\"\") lifted %d bans, want 3", got)
	}
	h.waitFor("no rules", func() bool {
		return len(a.ruleList()) == 0 && len(b.ruleList()) == 0 && h.m.Stats("").Pending == 0
	})
	if got := h.m.UnbanAll("nope"); len(got) != 0 {
		t.Errorf("UnbanAll(unknown) = %v", got)
	}
}

// The ignore list: ignoreip (v4, v6, IPv4-mapped), own addresses, admin
// sessions; prefixes that contain any of them; what Force overrides.
func TestIgnore(t *testing.T) {
	spec := JailSpec{
		Name: "sshd", BanTime: 10 * time.Minute, IgnoreSelf: true,
		IgnoreNets: []netip.Prefix{pfx("10.0.0.0/8"), pfx("2001:db8::/32"), pfx("::ffff:192.168.0.0/112")},
	}
	self := []netip.Addr{addr("203.0.113.1"), addr("::ffff:198.51.100.200"), addr("2a01:4f8::1")}
	admins := []Session{{Addr: addr("198.51.100.7"), What: "utmp root pts/0"}, {Addr: addr("2a02::9"), What: "tcp :22 established"}}
	tests := []struct {
		name       string
		target     string
		force      bool
		noSelf     bool   // IgnoreSelf off
		wantReason string // "": banned
	}{
		{"plain", "192.0.2.1", false, false, ""},
		{"ignoreip v4", "10.1.2.3", false, false, "ignoreip 10.0.0.0/8"},
		{"ignoreip v6", "2001:db8:5::1", false, false, "ignoreip 2001:db8::/32"},
		{"ignoreip mapped net", "192.168.4.5", false, false, "ignoreip 192.168.0.0/16"},
		{"ignoreip mapped target", "::ffff:10.9.9.9", false, false, "ignoreip 10.0.0.0/8"},
		{"prefix containing ignoreip", "10.0.0.0/7", false, false, "ignoreip 10.0.0.0/8"},
		{"prefix inside ignoreip", "10.5.0.0/16", false, false, "ignoreip 10.0.0.0/8"},
		{"ignoreip forced", "10.1.2.3", true, false, ""},
		{"own address", "203.0.113.1", false, false, "own address"},
		{"own mapped address", "198.51.100.200", false, false, "own address"},
		{"own v6", "2a01:4f8::1", false, false, "own address"},
		{"own address forced", "203.0.113.1", true, false, "own address"},
		{"prefix containing own", "203.0.113.0/24", true, false, "own address 203.0.113.1"},
		{"own without ignoreself", "203.0.113.1", false, true, ""},
		{"admin", "198.51.100.7", false, false, "admin session: utmp root pts/0"},
		{"admin v6", "2a02::9", false, false, "admin session: tcp :22 established"},
		{"prefix containing admin", "198.51.100.0/25", false, false, "admin session: utmp root pts/0 (198.51.100.7)"},
		{"admin forced", "198.51.100.7", true, false, ""},
		{"neighbour of admin", "198.51.100.8", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{
				Self:   func() ([]netip.Addr, error) { return self, nil },
				Admins: func() ([]Session, error) { return admins, nil },
			})
			s := spec
			s.IgnoreSelf = !tt.noSelf
			h.setJail(s, h.backend("fake", nil))
			o := Order{Jail: "sshd", Target: pfx(tt.target), Manual: true, Force: tt.force}
			b, err := h.m.Ban(o)
			st := h.m.Stats("sshd")
			if tt.wantReason == "" {
				if err != nil || st.Banned != 1 || st.Refused != 0 {
					t.Fatalf("Ban = %v, Stats %+v; want banned", err, st)
				}
				if b.Target != must(normTarget(pfx(tt.target))) {
					t.Errorf("Ban.Target = %v", b.Target)
				}
				return
			}
			var ie *IgnoredError
			if !errors.As(err, &ie) || ie.Reason != tt.wantReason {
				t.Fatalf("Ban = %v, want IgnoredError %q", err, tt.wantReason)
			}
			if st.Banned != 0 || st.Refused != 1 {
				t.Errorf("Stats = %+v, want 0 banned, 1 refused", st)
			}
			if want := fmt.Sprintf("msg=\"ban refused\" jail=sshd target=%v reason=%q", action.Target{Prefix: ie.Addr}, tt.wantReason); !strings.Contains(h.logs.String(), want) {
				t.Errorf("log lacks %s:\n%s", want, h.logs)
			}
			if o.Target.IsSingleIP() && !tt.force {
				if reason, ok := h.m.Ignored("sshd", o.Target.Addr()); !ok || reason != tt.wantReason {
					t.Errorf("Ignored = %q, %v; want %q", reason, ok, tt.wantReason)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Own addresses and admin sessions are read once per CacheTTL, however many
// orders come.
func TestIgnoreCache(t *testing.T) {
	var mu sync.Mutex
	reads := map[string]int{}
	count := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		reads[what]++
	}
	h := newHarness(t, Options{
		CacheTTL: 5 * time.Second,
		Self:     func() ([]netip.Addr, error) { count("self"); return nil, errors.New("no interfaces") },
		Admins:   func() ([]Session, error) { count("admins"); return nil, nil },
	})
	h.setJail(JailSpec{Name: "sshd", BanTime: time.Hour, IgnoreSelf: true}, h.backend("fake", nil))
	for i := range 100 {
		h.ban(order("sshd", fmt.Sprintf("192.0.2.%d", i+1)))
	}
	h.clk.Advance(4 * time.Second)
	h.ban(order("sshd", "192.0.2.200"))
	h.clk.Advance(time.Second)
	h.ban(order("sshd", "192.0.2.201"))
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{"self": 2, "admins": 2}; !cmp.Equal(want, reads) {
		t.Errorf("reads = %v, want %v", reads, want)
	}
	if !strings.Contains(h.logs.String(), "no interfaces") {
		t.Errorf("the failed read of own addresses is not logged:\n%s", h.logs)
	}
}

// A session with a MinAge (an ssh connection) counts only once it has been
// seen that long, except those of the first read.
func TestAdminMinAge(t *testing.T) {
	var mu sync.Mutex
	sessions := []Session{{Addr: addr("198.51.100.1"), What: "tcp :22 established", Key: "k1", MinAge: 2 * time.Minute}}
	set := func(ss ...Session) {
		mu.Lock()
		defer mu.Unlock()
		sessions = ss
	}
	h := newHarness(t, Options{
		CacheTTL: 5 * time.Second,
		Admins: func() ([]Session, error) {
			mu.Lock()
			defer mu.Unlock()
			return sessions, nil
		},
	})
	h.setJail(spec10m("sshd"), h.backend("fake", nil))
	ignored := func(a string) bool {
		_, ok := h.m.Ignored("sshd", addr(a))
		return ok
	}
	if !ignored("198.51.100.1") {
		t.Error("a session of the first read does not count at once")
	}
	k2 := Session{Addr: addr("198.51.100.2"), What: "tcp :22 established", Key: "k2", MinAge: 2 * time.Minute}
	utmp := Session{Addr: addr("198.51.100.3"), What: "utmp root pts/1"}
	set(sessions[0], k2, utmp)
	h.clk.Advance(5 * time.Second)
	if ignored("198.51.100.2") {
		t.Error("a new ssh connection counts as an admin at once")
	}
	if !ignored("198.51.100.3") || !ignored("198.51.100.1") {
		t.Error("a utmp session or an old connection does not count")
	}
	h.clk.Advance(2*time.Minute - 5*time.Second)
	if ignored("198.51.100.2") {
		t.Error("connection counts before its MinAge")
	}
	h.clk.Advance(5 * time.Second)
	if !ignored("198.51.100.2") {
		t.Error("connection older than MinAge does not count")
	}
	set()
	h.clk.Advance(5 * time.Second)
	if ignored("198.51.100.1") || ignored("198.51.100.2") {
		t.Error("sessions that ended still count")
	}
}

// Run reads the admin sessions every AdminPoll, so that a connection made
// while no order came has its age by the time one does.
func TestAdminPoll(t *testing.T) {
	var mu sync.Mutex
	var sessions []Session
	reads := 0
	h := newHarness(t, Options{
		AdminPoll: 30 * time.Second,
		Admins: func() ([]Session, error) {
			mu.Lock()
			defer mu.Unlock()
			reads++
			return sessions, nil
		},
	})
	h.setJail(spec10m("sshd"), h.backend("fake", nil))
	h.waitArmed(t0.Add(30 * time.Second))
	mu.Lock()
	sessions = []Session{{Addr: addr("198.51.100.2"), What: "tcp :22 established", Key: "k2", MinAge: time.Minute}}
	mu.Unlock()
	for i := 1; i <= 4; i++ {
		h.clk.Advance(30 * time.Second)
		h.waitArmed(t0.Add(time.Duration(i+1) * 30 * time.Second))
	}
	mu.Lock()
	if reads != 5 {
		t.Errorf("%d reads in 2 minutes with AdminPoll 30s, want 5", reads)
	}
	mu.Unlock()
	if _, ok := h.m.Ignored("sshd", addr("198.51.100.2")); !ok {
		t.Error("a connection polled for 90s (MinAge 1m) does not count")
	}
}

// A full executor queue delays calls, never loses them, and never blocks Ban.
func TestQueueFull(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, Options{Executor: action.ExecutorOptions{QueueSize: 2}})
	fb := h.backend("fake", func(ctx context.Context, call string) error {
		if strings.HasPrefix(call, "ban ") {
			<-gate
		}
		return nil
	})
	h.setJail(spec10m("sshd"), fb)
	const n = 50
	for i := range n {
		h.ban(order("sshd", fmt.Sprintf("192.0.2.%d", i+1)))
	}
	if p := h.m.Stats("sshd").Pending; p != n {
		t.Errorf("Pending = %d while the backend is blocked, want %d", p, n)
	}
	close(gate)
	h.waitFor("every ban applied", h.applied("sshd", n))
	if got := len(fb.ruleList()); got != n {
		t.Errorf("%d rules, want %d", got, n)
	}
	want := []string{"start"}
	for i := range n {
		want = append(want, fmt.Sprintf("ban 192.0.2.%d", i+1))
	}
	if diff := cmp.Diff(want, fb.recorded()); diff != "" {
		t.Errorf("calls, in order (-want +got):\n%s", diff)
	}
}

// An unban of a ban whose call has not run yet ends with no rule: behind it
// in the executor's queue, or by never sending the ban at all.
func TestUnbanBeforeApply(t *testing.T) {
	tests := []struct {
		name      string
		queueSize int
		before    []string // banned while the first ban blocks, before X
		wantCalls []string // after "start", "ban 192.0.2.1"
		wantRules []string
	}{
		{"in executor queue", 10, nil, []string{"ban 192.0.2.99", "unban 192.0.2.99"}, []string{"192.0.2.1"}},
		{"waiting for room", 1, []string{"192.0.2.2"}, []string{"ban 192.0.2.2"}, []string{"192.0.2.1", "192.0.2.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := make(chan struct{})
			h := newHarness(t, Options{Executor: action.ExecutorOptions{QueueSize: tt.queueSize}})
			fb := h.backend("fake", func(ctx context.Context, call string) error {
				if call == "ban 192.0.2.1" {
					<-gate
				}
				return nil
			})
			h.setJail(spec10m("sshd"), fb)
			h.ban(order("sshd", "192.0.2.1"))
			h.waitFor("the first ban running", func() bool { return fb.hasCall("ban 192.0.2.1") })
			for _, s := range tt.before {
				h.ban(order("sshd", s))
			}
			h.ban(order("sshd", "192.0.2.99"))
			if _, err := h.m.Unban("sshd", pfx("192.0.2.99")); err != nil {
				t.Fatal(err)
			}
			close(gate)
			h.waitFor("the calls done", func() bool { return h.m.Stats("sshd").Pending == 0 })
			want := append([]string{"start", "ban 192.0.2.1"}, tt.wantCalls...)
			if diff := cmp.Diff(want, fb.recorded()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRules, fb.ruleList()); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// A failing call is retried with backoff, a bounded number of times; a
// target the backend cannot enforce is not retried.
func TestRetry(t *testing.T) {
	errBusy := errors.New("xtables lock busy")
	tests := []struct {
		name      string
		fails     int   // ban calls that fail; -1: all
		err       error // what they return
		retries   int
		wantCalls int // ban calls
		wantApply bool
	}{
		{"recovers", 2, errBusy, 5, 3, true},
		{"gives up", -1, errBusy, 2, 3, false},
		{"unsupported target", -1, fmt.Errorf("ipv6 off: %w", action.ErrUnsupportedTarget), 5, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{Retries: tt.retries, RetryBackoff: time.Second})
			var mu sync.Mutex
			failed := 0
			fb := h.backend("fake", func(ctx context.Context, call string) error {
				mu.Lock()
				defer mu.Unlock()
				if strings.HasPrefix(call, "ban ") && (tt.fails < 0 || failed < tt.fails) {
					failed++
					return tt.err
				}
				return nil
			})
			h.setJail(spec10m("sshd"), fb)
			h.ban(order("sshd", "2001:db8::7"))
			end := t0.Add(10 * time.Minute)
			backoff := time.Second
			calls := func() int {
				n := 0
				for _, c := range fb.recorded() {
					if strings.HasPrefix(c, "ban ") {
						n++
					}
				}
				return n
			}
			for i := 1; i < tt.wantCalls; i++ {
				h.waitFor("a failure", func() bool { return h.m.Stats("sshd").ActionErrors == int64(i) })
				h.waitArmed(h.clk.Now().Add(backoff))
				h.clk.Advance(backoff)
				backoff *= 2
			}
			if tt.wantApply {
				h.waitFor("the ban applied", h.applied("sshd", 1))
			} else {
				h.waitFor("the last failure", func() bool { return h.m.Stats("sshd").ActionErrors == int64(tt.wantCalls) })
			}
			h.waitArmed(end)
			if got := calls(); got != tt.wantCalls {
				t.Errorf("%d ban calls, want %d", got, tt.wantCalls)
			}
			b := h.m.Bans("sshd")[0]
			st := h.m.Stats("sshd")
			if b.Applied != tt.wantApply || (b.Err == "") != tt.wantApply {
				t.Errorf("Ban Applied %v Err %q, want applied %v", b.Applied, b.Err, tt.wantApply)
			}
			if st.ActionErrors != int64(tt.wantCalls-map[bool]int{true: 1}[tt.wantApply]) || !strings.Contains(st.LastError, tt.err.Error()) {
				t.Errorf("Stats = %+v", st)
			}
			if !tt.wantApply {
				// A new order for the address is a new chance.
				h.ban(order("sshd", "2001:db8::7"))
				h.waitFor("another call", func() bool { return calls() == tt.wantCalls+1 })
			}
		})
	}
}

// A call that overruns CallTimeout counts as failed; its late outcome is
// still taken into account.
func TestLateResult(t *testing.T) {
	tests := []struct {
		name      string
		unban     bool // unban X once its ban has timed out
		wantCalls []string
		wantRules []string
	}{
		{"late success", false, []string{"start", "ban 192.0.2.7", "ban 192.0.2.7"}, []string{"192.0.2.7"}},
		{"unbanned meanwhile", true, []string{"start", "ban 192.0.2.7", "unban 192.0.2.7"}, nil},
		{"reported before the retry", false, []string{"start", "ban 192.0.2.7", "ban 192.0.2.8"}, []string{"192.0.2.7", "192.0.2.8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := make(chan struct{})
			var once sync.Once
			h := newHarness(t, Options{Executor: action.ExecutorOptions{CallTimeout: 250 * time.Millisecond}})
			fb := h.backend("fake", func(ctx context.Context, call string) error {
				if call == "ban 192.0.2.7" {
					once.Do(func() { <-gate }) // only the first call hangs
				}
				return nil
			})
			h.setJail(spec10m("sshd"), fb)
			h.ban(order("sshd", "192.0.2.7"))
			h.waitFor("the timeout", func() bool { return h.m.Stats("sshd").ActionErrors == 1 })
			if b := h.m.Bans("sshd")[0]; b.Applied || !strings.Contains(b.Err, "timed out") {
				t.Errorf("after the timeout: Applied %v Err %q", b.Applied, b.Err)
			}
			close(gate) // the call returns; the executor reports it with its next call
			switch {
			case len(tt.wantRules) == 2:
				// The next call, another ban, brings the late success: the
				// retry is not needed any more.
				h.ban(order("sshd", "192.0.2.8"))
				h.waitFor("both bans applied", h.applied("sshd", 2))
				h.waitArmed(t0.Add(time.Second))
				h.clk.Advance(time.Second)
				h.waitArmed(t0.Add(10 * time.Minute))
				h.waitFor("the calls done", func() bool { return h.m.Stats("").Pending == 0 })
			case tt.unban:
				if _, err := h.m.Unban("sshd", pfx("192.0.2.7")); err != nil {
					t.Fatal(err)
				}
				h.waitFor("the unban", func() bool { return fb.hasCall("unban 192.0.2.7") && h.m.Stats("").Pending == 0 })
				h.waitArmed(t0.Add(time.Second)) // the retry of the ban, no longer wanted
				h.clk.Advance(time.Second)
				h.waitArmed(time.Time{})
			default:
				h.waitArmed(t0.Add(time.Second))
				h.clk.Advance(time.Second)
				h.waitFor("the ban applied", h.applied("sshd", 1))
			}
			if diff := cmp.Diff(tt.wantCalls, fb.recorded()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRules, fb.ruleList()); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// SetJail with another backend stops the old one, starts the new one and
// applies every ban in force on it, ends unchanged; if the new one fails to
// start, the old one is restarted. A nil backend keeps the running one.
func TestBackendSwap(t *testing.T) {
	startErr := errors.New("no ip6tables")
	tests := []struct {
		name     string
		newFails bool
	}{
		{"swap", false},
		{"new fails, old restored", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			b1 := h.backend("one", nil)
			b2 := h.backend("two", func(ctx context.Context, call string) error {
				if tt.newFails && call == "start" {
					return startErr
				}
				return nil
			})
			h.setJail(spec10m("sshd"), b1)
			h.ban(order("sshd", "192.0.2.1"))
			h.ban(Order{Jail: "sshd", Target: pfx("2001:db8::/64"), Manual: true, For: time.Duration(config.Forever)})
			h.waitFor("bans applied", h.applied("sshd", 2))
			h.clk.Advance(time.Minute)
			before := h.m.Bans("sshd")

			err := h.m.SetJail(t.Context(), spec10m("sshd"), b2)
			active, standby := b2, b1
			if tt.newFails {
				if !errors.Is(err, startErr) {
					t.Fatalf("SetJail = %v, want the start error", err)
				}
				active, standby = b1, b2
			} else if err != nil {
				t.Fatal(err)
			}
			h.waitFor("bans applied again", h.applied("sshd", 2))
			if diff := cmp.Diff(before, h.m.Bans("sshd"), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("bans changed by the swap (-before +after):\n%s", diff)
			}
			wantOne := []string{"start", "ban 192.0.2.1", "ban 2001:db8::/64", "stop"}
			wantTwo := []string{"start", "ban 192.0.2.1", "ban 2001:db8::/64"}
			if tt.newFails {
				wantOne = append(wantOne, wantTwo...)
				wantTwo = []string{"start", "stop"}
			}
			if diff := cmp.Diff(wantOne, b1.recorded()); diff != "" {
				t.Errorf("old backend calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantTwo, b2.recorded()); diff != "" {
				t.Errorf("new backend calls (-want +got):\n%s", diff)
			}

			// Later bans and expiries go to the backend in use.
			h.ban(order("sshd", "192.0.2.2"))
			h.waitFor("ban applied", h.applied("sshd", 3))
			h.clk.Set(t0.Add(10 * time.Minute))
			h.waitFor("expiry", func() bool { return active.hasCall("unban 192.0.2.1") })
			if got := standby.recorded(); strings.Contains(strings.Join(got, ","), "192.0.2.2") {
				t.Errorf("replaced backend got calls after the swap: %v", got)
			}
		})
	}
}

// A spec update changes the ban time of new bans only.
func TestSpecUpdate(t *testing.T) {
	h := newHarness(t, Options{})
	fb := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), fb)
	h.ban(order("sshd", "192.0.2.1"))
	h.setJail(JailSpec{Name: "sshd", BanTime: time.Hour, IgnoreNets: []netip.Prefix{pfx("192.0.2.0/24")}}, nil)
	if b, _ := h.m.Lookup("sshd", addr("192.0.2.1")); !b.End.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("end after update = %v, want unchanged", b.End)
	}
	if b := h.ban(order("sshd", "198.51.100.1")); !b.End.Equal(t0.Add(time.Hour)) {
		t.Errorf("new ban end = %v, want the new ban time", b.End)
	}
	var ie *IgnoredError
	if _, err := h.m.Ban(order("sshd", "192.0.2.5")); !errors.As(err, &ie) {
		t.Errorf("Ban in the new ignoreip = %v", err)
	}
	if got := fb.recorded(); got[0] != "start" || strings.Count(strings.Join(got, ","), "start") != 1 {
		t.Errorf("backend restarted by a spec update: %v", got)
	}
}

func TestSetJailErrors(t *testing.T) {
	startErr := errors.New("iptables: permission denied")
	h := newHarness(t, Options{})
	fb := h.backend("fake", func(ctx context.Context, call string) error {
		if call == "start" {
			return startErr
		}
		return nil
	})
	if err := h.m.SetJail(t.Context(), spec10m("sshd"), fb); !errors.Is(err, startErr) {
		t.Errorf("SetJail(failing start) = %v", err)
	}
	if diff := cmp.Diff([]string{"start", "stop"}, fb.recorded()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if _, err := h.m.Ban(order("sshd", "192.0.2.1")); !errors.Is(err, ErrUnknownJail) {
		t.Errorf("Ban in a jail that failed to start = %v", err)
	}
	bad := []struct {
		spec JailSpec
		b    action.Backend
	}{
		{spec10m("new"), nil},
		{JailSpec{BanTime: time.Minute}, &fakeBackend{}},
		{JailSpec{Name: "x"}, &fakeBackend{}},
		{JailSpec{Name: "x", BanTime: -2}, &fakeBackend{}},
		{JailSpec{Name: "x", BanTime: time.Minute, IgnoreNets: []netip.Prefix{{}}}, &fakeBackend{}},
	}
	for _, c := range bad {
		if err := h.m.SetJail(t.Context(), c.spec, c.b); err == nil {
			t.Errorf("SetJail(%+v, %v) = nil error", c.spec, c.b)
		}
	}
	if errors.Is(h.m.SetJail(t.Context(), spec10m("new"), nil), ErrNoBackend) != true {
		t.Error("SetJail(new, nil) is not ErrNoBackend")
	}
	// Giving up while Start hangs.
	hang := h.backend("hang", func(ctx context.Context, call string) error {
		if call == "start" {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.m.SetJail(ctx, spec10m("hang"), hang); !errors.Is(err, context.Canceled) {
		t.Errorf("SetJail(cancelled) = %v", err)
	}
}

// RemoveJail stops the backend and forgets the bans, their expiry included.
func TestRemoveJail(t *testing.T) {
	h := newHarness(t, Options{})
	fb, other := h.backend("fake", nil), h.backend("other", nil)
	h.setJail(spec10m("sshd"), fb)
	h.setJail(spec10m("nginx"), other)
	h.ban(order("sshd", "192.0.2.1"))
	h.ban(order("sshd", "192.0.2.2"))
	h.ban(order("nginx", "192.0.2.3"))
	h.waitFor("bans applied", h.applied("", 3))
	if err := h.m.RemoveJail(t.Context(), "sshd"); err != nil {
		t.Fatal(err)
	}
	if got := fb.recorded(); got[len(got)-1] != "stop" {
		t.Errorf("backend calls %v, want stop last", got)
	}
	if got := banTargets(h.m.Bans("")); !cmp.Equal(got, []string{"nginx 192.0.2.3"}) {
		t.Errorf("Bans = %v", got)
	}
	if _, ok := h.m.Lookup("", addr("192.0.2.1")); ok {
		t.Error("Lookup finds a ban of a removed jail")
	}
	if _, err := h.m.Ban(order("sshd", "192.0.2.4")); !errors.Is(err, ErrUnknownJail) {
		t.Errorf("Ban in a removed jail = %v", err)
	}
	if err := h.m.RemoveJail(t.Context(), "sshd"); !errors.Is(err, ErrUnknownJail) {
		t.Errorf("second RemoveJail = %v", err)
	}
	if !strings.Contains(h.logs.String(), `msg=unban jail=sshd target=192.0.2.2 reason="jail removed"`) {
		t.Errorf("removed bans not logged:\n%s", h.logs)
	}
	h.m.mu.Lock()
	if n := len(h.m.expiry); n != 1 {
		t.Errorf("%d bans wait for expiry after RemoveJail, want 1", n)
	}
	h.m.mu.Unlock()
	n := len(fb.recorded())
	h.clk.Set(t0.Add(10 * time.Minute))
	h.waitFor("the other jail's expiry", func() bool { return other.hasCall("unban 192.0.2.3") })
	h.waitArmed(time.Time{})
	if got := fb.recorded(); len(got) != n {
		t.Errorf("calls on a removed jail's backend: %v", got[n:])
	}
	// The name can be used again.
	fb2 := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), fb2)
	h.ban(order("sshd", "192.0.2.1"))
	h.waitFor("ban applied", h.applied("sshd", 1))
}

// Run stops every backend when its context ends, and the manager refuses
// work afterwards.
func TestRunStops(t *testing.T) {
	stopErr := errors.New("chain busy")
	h := newHarness(t, Options{})
	a := h.backend("a", nil)
	b := h.backend("b", func(ctx context.Context, call string) error {
		if call == "stop" {
			return stopErr
		}
		return nil
	})
	h.setJail(spec10m("a"), a)
	h.setJail(spec10m("b"), b)
	h.ban(order("a", "192.0.2.1"))
	h.waitFor("ban applied", h.applied("a", 1))
	if err := h.stop(); !errors.Is(err, stopErr) {
		t.Errorf("Run = %v, want the stop error", err)
	}
	for _, fb := range []*fakeBackend{a, b} {
		if got := fb.recorded(); got[len(got)-1] != "stop" {
			t.Errorf("backend %s calls %v, want stop last", fb.name, got)
		}
	}
	if _, err := h.m.Ban(order("a", "192.0.2.2")); !errors.Is(err, ErrStopped) {
		t.Errorf("Ban after Run = %v, want ErrStopped", err)
	}
	if err := h.m.SetJail(t.Context(), spec10m("c"), h.backend("c", nil)); !errors.Is(err, ErrStopped) {
		t.Errorf("SetJail after Run = %v, want ErrStopped", err)
	}
	if err := h.m.Run(t.Context()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v", err)
	}
}

// Many jails ban at once while the control socket reads; run with -race.
func TestConcurrentBan(t *testing.T) {
	h := newHarness(t, Options{Executor: action.ExecutorOptions{QueueSize: 4}})
	jails := []string{"sshd", "nginx", "postfix"}
	backends := map[string]*fakeBackend{}
	for _, j := range jails {
		backends[j] = h.backend(j, nil)
		h.setJail(JailSpec{Name: j, BanTime: time.Hour, IgnoreNets: []netip.Prefix{pfx("10.0.0.0/8")}}, backends[j])
	}
	const perG, goroutines = 100, 12
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				h.m.Bans("")
				h.m.Stats("")
				h.m.Lookup("", addr("192.0.2.1"))
				h.m.Ignored("sshd", addr("10.0.0.1"))
			}
		}()
	}
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := jails[g%len(jails)]
			for i := range perG {
				// Two goroutines of a jail ban the same addresses: re-bans race too.
				a := netip.AddrFrom4([4]byte{198, 18, byte(i), byte(g / len(jails) % 2)})
				if _, err := h.m.Ban(Order{Jail: j, Target: netip.PrefixFrom(a, 32), Failures: 1}); err != nil {
					t.Errorf("Ban: %v", err)
				}
				if i%10 == 0 {
					if _, err := h.m.Ban(order(j, "10.1.2.3")); err == nil {
						t.Error("ignored address banned")
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	want := 2 * perG
	for _, j := range jails {
		h.waitFor("bans applied in "+j, h.applied(j, want))
		st := h.m.Stats(j)
		if st.TotalBanned != int64(want) || st.Refused != int64(goroutines/len(jails)*perG/10) {
			t.Errorf("Stats(%s) = %+v, want %d banned", j, st, want)
		}
		if got := len(backends[j].ruleList()); got != want {
			t.Errorf("%s: %d rules, want %d", j, got, want)
		}
		if m := backends[j].max.Load(); m != 1 {
			t.Errorf("%s: %d backend calls overlapped", j, m)
		}
	}
}

// BenchmarkBan measures orders through the manager, from Ban to the backend
// call done, with a backend that does nothing.
func BenchmarkBan(b *testing.B) {
	m := New(Options{
		Self:      func() ([]netip.Addr, error) { return nil, nil },
		Admins:    func() ([]Session, error) { return nil, nil },
		AdminPoll: -1,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	spec := JailSpec{Name: "bench", BanTime: time.Hour, IgnoreSelf: true, IgnoreNets: []netip.Prefix{pfx("10.0.0.0/8"), pfx("2001:db8::/32")}}
	if err := m.SetJail(ctx, spec, noopBackend{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		a := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := m.Ban(Order{Jail: "bench", Target: netip.PrefixFrom(a, 32), Failures: 5}); err != nil {
			b.Fatal(err)
		}
	}
	for m.Stats("bench").Pending > 0 {
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "orders/s")
}

type noopBackend struct{}

func (noopBackend) Name() string                               { return "noop" }
func (noopBackend) Start(context.Context) error                { return nil }
func (noopBackend) Stop(context.Context) error                 { return nil }
func (noopBackend) Ban(context.Context, action.Target) error   { return nil }
func (noopBackend) Unban(context.Context, action.Target) error { return nil }

// RemoveJail's caller may give up waiting for a slow Stop; a new backend of
// the same jail still starts only once the old one has stopped, since both
// own the same chain.
func TestRemoveJailGiveUp(t *testing.T) {
	h := newHarness(t, Options{})
	gate := make(chan struct{})
	var oldStopped atomic.Bool
	old := h.backend("old", func(ctx context.Context, call string) error {
		if call == "stop" {
			<-gate
			oldStopped.Store(true)
		}
		return nil
	})
	h.setJail(spec10m("sshd"), old)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.m.RemoveJail(ctx, "sshd"); !errors.Is(err, context.Canceled) {
		t.Errorf("RemoveJail(cancelled) = %v", err)
	}
	var startedEarly atomic.Bool
	nb := h.backend("new", func(ctx context.Context, call string) error {
		if call == "start" && !oldStopped.Load() {
			startedEarly.Store(true)
		}
		return nil
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.m.SetJail(t.Context(), spec10m("sshd"), nb); err != nil {
			t.Errorf("SetJail: %v", err)
		}
	}()
	h.waitFor("the old stop running", func() bool { return old.hasCall("stop") })
	close(gate)
	<-done
	if startedEarly.Load() {
		t.Error("the new backend started while the old one was stopping")
	}
}

// Redundant says true only for orders that Ban would take without starting a ban, without
// moving its end by extendStep or more, and without a new call for a rule given up on: each
// case asks Redundant, then gives Ban the same order and checks what it changed.
func TestRedundant(t *testing.T) {
	h := newHarness(t, Options{})
	fb := h.backend("fake", nil)
	h.setJail(spec10m("sshd"), fb)
	h.setJail(JailSpec{Name: "forever", BanTime: permanent}, h.backend("fake2", nil))
	h.ban(order("sshd", "192.0.2.7"))                                       // Start t0, End t0+10m
	h.ban(Order{Jail: "sshd", Target: pfx("192.0.2.8"), For: permanent})    // permanent
	h.ban(Order{Jail: "forever", Target: pfx("192.0.2.9"), For: time.Hour}) // in a permanent jail
	h.ban(order("sshd", "192.0.2.10"))
	h.waitFor("the bans applied", h.applied("sshd", 3))
	h.m.mu.Lock()
	h.m.jails["sshd"].bans[pfx("192.0.2.10")].gaveUp = true
	h.m.mu.Unlock()

	check := func(name, jail, target string, failAt time.Time, want bool) {
		t.Helper()
		got := h.m.Redundant(jail, pfx(target), failAt)
		if got != want {
			t.Errorf("%s: Redundant = %v, want %v", name, got, want)
		}
		before, had := h.m.Lookup(jail, pfx(target).Addr())
		o := Order{Jail: jail, Target: pfx(target), Time: failAt, Failures: 3}
		after, err := h.m.Ban(o)
		if err != nil {
			if got {
				t.Errorf("%s: redundant, but Ban failed: %v", name, err)
			}
			return
		}
		moved := after.End.Sub(before.End)
		changed := !had || moved >= extendStep || before.End.IsZero() != after.End.IsZero()
		if got && changed {
			t.Errorf("%s: redundant, but Ban changed the ban (had %v, end %v -> %v)", name, had, before.End, after.End)
		}
		if !got && !changed && !strings.Contains(name, "gave up") {
			t.Errorf("%s: not redundant, but Ban changed nothing (end %v)", name, after.End)
		}
	}
	check("failure before the ban", "sshd", "192.0.2.7", t0.Add(-time.Second), true)
	check("failure at the ban's start", "sshd", "192.0.2.7", t0, true)
	h.clk.Advance(500 * time.Millisecond)
	check("half a second on", "sshd", "192.0.2.7", h.clk.Now(), true)
	// The last check moved the end by half a second.
	h.clk.Advance(time.Second)
	check("a second on", "sshd", "192.0.2.7", h.clk.Now(), false) // the end moves to now+10m
	check("just extended", "sshd", "192.0.2.7", h.clk.Now(), true)
	check("permanent ban", "sshd", "192.0.2.8", h.clk.Now(), true)
	check("in a permanent jail", "forever", "192.0.2.9", h.clk.Now(), false) // becomes permanent
	check("rule gave up", "sshd", "192.0.2.10", h.clk.Now(), false)
	check("not banned", "sshd", "192.0.2.11", h.clk.Now(), false)
	check("another prefix", "sshd", "192.0.2.0/24", h.clk.Now(), false)
	check("banned in another jail only", "forever", "192.0.2.7", h.clk.Now(), false)
	if h.m.Redundant("nope", pfx("192.0.2.7"), h.clk.Now()) {
		t.Error("Redundant for an unknown jail")
	}
}
