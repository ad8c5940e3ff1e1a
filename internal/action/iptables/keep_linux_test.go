//go:build linux

package iptables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/action"
)

// Rules as the fake holds them (spec words joined by spaces).
const (
	jump22    = "-p tcp -m multiport --dports 22 -j lj-sshd"
	jump2222  = "-p tcp -m multiport --dports 2222 -j lj-sshd"
	bridge22  = "-p tcp -m multiport --dports 22 -m comment --comment logjail-bridge -j lj-sshd"
	tcpReset  = " -p tcp -j REJECT --reject-with tcp-reset"
	icmp4     = " -j REJECT --reject-with icmp-port-unreachable"
	icmp6     = " -j REJECT --reject-with icmp6-port-unreachable"
	drop      = " -j DROP"
	acceptLo  = "-i lo -j ACCEPT"
	otherJail = "-p tcp -j lj-web"
)

// repairSetup is what a crash (and an interrupted repair, and a hand or
// two) may leave: see the keep-repair case of TestGoldenKeep.
func repairSetup(e *env) {
	e.v4.add("lj-sshd", "-s 192.0.2.1/32"+tcpReset)
	e.v4.add("lj-sshd", "-s 192.0.2.2/32"+tcpReset)
	e.v4.add("lj-sshd", "-s 192.0.2.1/32"+tcpReset)
	e.v4.add("lj-sshd", "-s 192.0.2.4/32 -j ACCEPT")
	e.v4.add("lj-sshd", "-j RETURN")
	e.v4.add("lj-sshd", "-s 192.0.2.5/32 -j DROP -m comment --comment \"by hand\"")
	e.v4.add("lj-sshd", "-s 192.0.2.6/24"+tcpReset) // not masked: not ours
	e.v4.add("lj-sshd-old", "-j RETURN")
	e.v4.add("lj-web", "-s 203.0.113.1/32"+drop)
	e.v4.add("INPUT", jump22)
	e.v4.add("INPUT", otherJail)
	e.v4.add("INPUT", jump22)
	e.v4.add("INPUT", acceptLo)
	e.v4.add("INPUT", jump2222)
	e.v4.add("INPUT", "-p tcp -m multiport --dports 22 -j lj-sshd-old")
	e.v4.add("INPUT", jump22)
	e.v4.add("INPUT", bridge22)
	e.v6.add("lj-sshd", "-s 2001:db8::1/128"+tcpReset)
	e.v6.add("lj-sshd", "-s 192.0.2.9/32"+tcpReset) // wrong family: not ours
	e.v6.add("INPUT", acceptLo)
	e.v6.add("INPUT", jump22)
}

// repairedState is the state StartKeep makes of repairSetup's with one call
// per change; repairedBatchState with iptables-restore, which writes our
// chain again whole: the first copy of a duplicate stays where it was, and
// a quoted rule goes too.
var repairedState = []string{
	"ipv4 -P INPUT ACCEPT", "ipv4 -P FORWARD ACCEPT", "ipv4 -P OUTPUT ACCEPT",
	"ipv4 -N lj-sshd", "ipv4 -N lj-sshd-old", "ipv4 -N lj-web",
	"ipv4 -A INPUT " + jump22,
	"ipv4 -A INPUT " + otherJail,
	"ipv4 -A INPUT " + acceptLo,
	"ipv4 -A INPUT -p tcp -m multiport --dports 22 -j lj-sshd-old",
	"ipv4 -A lj-sshd -s 192.0.2.2/32" + tcpReset,
	"ipv4 -A lj-sshd -s 192.0.2.1/32" + tcpReset,
	"ipv4 -A lj-sshd -s 192.0.2.5/32 -j DROP -m comment --comment \"by hand\"",
	"ipv4 -A lj-sshd-old -j RETURN",
	"ipv4 -A lj-web -s 203.0.113.1/32" + drop,
	"ipv6 -P INPUT ACCEPT", "ipv6 -P FORWARD ACCEPT", "ipv6 -P OUTPUT ACCEPT",
	"ipv6 -N lj-sshd",
	"ipv6 -A INPUT " + jump22,
	"ipv6 -A INPUT " + acceptLo,
	"ipv6 -A lj-sshd -s 2001:db8::1/128" + tcpReset,
}

var repairedBatchState = func() []string {
	var out []string
	for _, l := range repairedState {
		switch {
		case strings.Contains(l, "by hand"):
		case l == "ipv4 -A lj-sshd -s 192.0.2.2/32"+tcpReset:
			out = append(out, "ipv4 -A lj-sshd -s 192.0.2.1/32"+tcpReset)
		case l == "ipv4 -A lj-sshd -s 192.0.2.1/32"+tcpReset:
			out = append(out, "ipv4 -A lj-sshd -s 192.0.2.2/32"+tcpReset)
		default:
			out = append(out, l)
		}
	}
	return out
}()

// TestGoldenKeep runs scripts with StartKeep, StopKeep and List against the
// recording fake, compares the calls with testdata/<name>.golden (rewrite
// with -update), and checks the final tables.
func TestGoldenKeep(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		restart Options // of the backend after "restart"; zero: opts
		setup   func(e *env)
		// restoreFails makes iptables-restore fail, so that StartKeep
		// repairs with one call per change.
		restoreFails bool
		script       []string
		// wantAfter is the final state; nil means "the state before the
		// script".
		wantAfter []string
	}{
		{
			// A clean restart: bans survive StopKeep, the next StartKeep only
			// reads, List returns them, and Ban of an adopted target adds
			// nothing.
			name: "keep-restart",
			opts: Options{Jail: "sshd", Ports: "22", IPv6: true},
			setup: func(e *env) {
				e.v4.add("INPUT", acceptLo)
				e.v6.add("INPUT", acceptLo)
			},
			script: []string{
				"start", "ban 192.0.2.1", "ban 198.51.100.0/24", "ban 2001:db8::1",
				"stopkeep", "ban 192.0.2.9", "state",
				"restart", "startkeep", "list",
				"ban 192.0.2.1", "ban 2001:db8::1", "ban 192.0.2.2", "state",
				"stopkeep", "restart", "startkeep", "list", "stop", "state",
			},
		},
		{
			// Nothing there yet: StartKeep creates the chain and the jump.
			name:   "keep-fresh",
			opts:   Options{Jail: "sshd", Ports: "22", IPv6: true},
			setup:  func(e *env) { e.v4.add("INPUT", acceptLo) },
			script: []string{"list", "startkeep", "list", "ban 192.0.2.1", "stopkeep", "state", "list"},
			wantAfter: []string{
				"ipv4 -P INPUT ACCEPT", "ipv4 -P FORWARD ACCEPT", "ipv4 -P OUTPUT ACCEPT",
				"ipv4 -N lj-sshd",
				"ipv4 -A INPUT " + jump22,
				"ipv4 -A INPUT " + acceptLo,
				"ipv4 -A lj-sshd -s 192.0.2.1/32" + tcpReset,
				"ipv6 -P INPUT ACCEPT", "ipv6 -P FORWARD ACCEPT", "ipv6 -P OUTPUT ACCEPT",
				"ipv6 -N lj-sshd",
				"ipv6 -A INPUT " + jump22,
			},
		},
		{
			// A crash left everything doubled, a bridge of an interrupted
			// StartKeep, the jump of an earlier configuration and foreign
			// rules in our chain; in IPv6 the jump sits below a foreign
			// accept. Foreign rules outside our chain, and the jump of
			// another jail, stay as they are.
			name:      "keep-repair",
			opts:      Options{Jail: "sshd", Ports: "22", IPv6: true},
			setup:     repairSetup,
			script:    []string{"state", "startkeep", "state", "list", "ban 192.0.2.1", "ban 2001:db8::1", "stopkeep", "restart", "startkeep"},
			wantAfter: repairedBatchState,
		},
		{
			// The same, when iptables-restore fails (or is too old to know
			// --wait=N): one call per change, in an order that keeps every
			// ban enforced; a stand-in jump holds the top while the copies of
			// the jump are deleted by spec.
			name:         "keep-repair-calls",
			opts:         Options{Jail: "sshd", Ports: "22", IPv6: true},
			setup:        repairSetup,
			restoreFails: true,
			script:       []string{"startkeep", "state", "list"},
			wantAfter:    repairedState,
		},
		{
			// blocktype REJECT -> DROP between runs, in a udp jail that was
			// a tcp one: every ban is rewritten in place (new rule first);
			// a target banned in both forms keeps the new one only.
			name:    "keep-blocktype",
			opts:    Options{Jail: "sshd", Ports: "22", IPv6: true},
			restart: Options{Jail: "sshd", Ports: "22", Protocol: UDP, BlockType: BlockDrop, IPv6: true},
			setup: func(e *env) {
				e.v4.add("INPUT", acceptLo)
			},
			script: []string{
				"start", "ban 192.0.2.1", "ban 192.0.2.2", "ban 2001:db8::/48", "stopkeep",
				"restart", "ban 192.0.2.2", "startkeep", "state", "list", "ban 192.0.2.2", "ban 192.0.2.3",
				"stopkeep", "restart", "startkeep", "list", "stop", "state",
			},
		},
		{
			// udp REJECT: the ICMP type differs per family.
			name:    "keep-icmp",
			opts:    Options{Jail: "dns", Protocol: UDP, Ports: "53", BlockType: BlockDrop, IPv6: true},
			restart: Options{Jail: "dns", Protocol: UDP, Ports: "53", IPv6: true},
			setup:   func(e *env) {},
			script: []string{
				"start", "ban 192.0.2.1", "ban 2001:db8::1", "stopkeep",
				"restart", "startkeep", "state", "list", "stop", "state",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			tt.setup(e)
			e.restoreFails = tt.restoreFails
			before := e.state()
			b := e.backend(t, tt.opts)
			next := tt.restart
			if next.Jail == "" {
				next = tt.opts
			}
			got := e.run(t, b, tt.script, func() *Backend { return e.backend(t, next) })
			want := tt.wantAfter
			if want == nil {
				want = before
			}
			if diff := cmp.Diff(want, e.state()); diff != "" {
				t.Errorf("tables after the script (-want +got):\n%s", diff)
			}
			checkGolden(t, tt.name, got)
		})
	}
}

// TestStartKeepNeverOpensAGap checks, after every call that changes a table
// during StartKeep, that every target banned before is still banned (by a
// rule of any of our shapes), and that once a jump with the full match is at
// the top of INPUT it stays there. At the end, both hold, with exactly one
// jump and one rule per target. It matters most when iptables-restore fails
// and StartKeep makes one call per change; the batch is checked too.
func TestStartKeepNeverOpensAGap(t *testing.T) {
	for _, restoreFails := range []bool{true, false} {
		t.Run(fmt.Sprintf("restoreFails=%v", restoreFails), func(t *testing.T) {
			testStartKeepNeverOpensAGap(t, restoreFails)
		})
	}
}

func testStartKeepNeverOpensAGap(t *testing.T, restoreFails bool) {
	bans4 := []string{"192.0.2.1", "192.0.2.2", "198.51.100.0/24"}
	tests := []struct {
		name  string
		opts  Options
		setup func(f *fakeIPT)
	}{
		{"duplicate jumps at the top", Options{Jail: "sshd", Ports: "22"}, func(f *fakeIPT) {
			f.add("INPUT", jump22)
			f.add("INPUT", jump22)
			f.add("INPUT", acceptLo)
			f.add("INPUT", jump22)
		}},
		{"jump below a foreign accept", Options{Jail: "sshd", Ports: "22"}, func(f *fakeIPT) {
			f.add("INPUT", acceptLo)
			f.add("INPUT", "-p tcp --dport 22 -j ACCEPT")
			f.add("INPUT", jump22)
		}},
		{"old match and a bridge", Options{Jail: "sshd", Ports: "22"}, func(f *fakeIPT) {
			f.add("INPUT", jump2222)
			f.add("INPUT", bridge22)
			f.add("INPUT", acceptLo)
			f.add("INPUT", jump22)
			f.add("INPUT", jump22)
		}},
		{"blocktype changed, duplicates", Options{Jail: "sshd", Ports: "22", BlockType: BlockDrop}, func(f *fakeIPT) {
			f.add("INPUT", jump22)
			f.add("lj-sshd", "-s 192.0.2.1/32"+tcpReset)
		}},
		{"missing jump", Options{Jail: "sshd", Ports: "22"}, func(f *fakeIPT) {
			f.add("INPUT", acceptLo)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			e.restoreFails = restoreFails
			e.v4.user = append(e.v4.user, "lj-sshd")
			for _, a := range bans4 {
				tail := tcpReset
				if a == "192.0.2.2" {
					tail = drop // a rule of other options
				}
				e.v4.add("lj-sshd", "-s "+tgt(a).Prefix.String()+tail)
			}
			e.v4.add("lj-sshd", "-s "+tgt(bans4[0]).Prefix.String()+tcpReset) // a duplicate
			tt.setup(e.v4)
			b := e.backend(t, tt.opts)

			jumpFirst := func() bool {
				for _, r := range e.v4.rules["INPUT"] {
					switch {
					case r == jump22 || r == bridge22:
						return true
					case strings.HasSuffix(r, " -j lj-sshd") || strings.HasSuffix(r, " -j lj-web"):
						continue // a jump to a jail's chain never accepts
					}
					return false
				}
				return false
			}
			banned := func() []string {
				var missing []string
				for _, a := range bans4 {
					src := "-s " + tgt(a).Prefix.String()
					if !slices.ContainsFunc(e.v4.rules["lj-sshd"], func(r string) bool {
						return r == src+tcpReset || r == src+drop || r == src+icmp4
					}) {
						missing = append(missing, a)
					}
				}
				return missing
			}
			wasFirst := jumpFirst()
			e.v4.changed = func(call string) {
				if m := banned(); len(m) > 0 {
					t.Errorf("after %q: %v no longer banned", call, m)
				}
				first := jumpFirst()
				if wasFirst && !first {
					t.Errorf("after %q: no jump at the top of INPUT any more: %q", call, e.v4.rules["INPUT"])
				}
				wasFirst = wasFirst || first
			}
			calls := 0
			changed := e.v4.changed
			e.v4.changed = func(call string) { calls++; changed(call) }
			if err := b.StartKeep(t.Context()); err != nil {
				t.Fatal(err)
			}
			e.v4.changed = nil
			if !restoreFails && calls != 1 {
				t.Errorf("StartKeep changed the table %d times, want once (iptables-restore)", calls)
			}
			if !jumpFirst() || len(banned()) > 0 {
				t.Errorf("after StartKeep: jump first %v, missing bans %v; tables:\n%s", jumpFirst(), banned(), strings.Join(e.state(), "\n"))
			}
			if n := strings.Count(strings.Join(e.v4.rules["INPUT"], "\n"), "-j lj-sshd"); n != 1 {
				t.Errorf("after StartKeep: %d jumps to lj-sshd, want 1: %q", n, e.v4.rules["INPUT"])
			}
			if got := len(e.v4.rules["lj-sshd"]); got != len(bans4) {
				t.Errorf("after StartKeep: %d rules in lj-sshd, want %d: %q", got, len(bans4), e.v4.rules["lj-sshd"])
			}
			got, err := b.List(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var want []action.Target
			for _, a := range bans4 {
				want = append(want, tgt(a))
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
		})
	}
}

// List leaves out what it did not write and says so, once per rule, and
// never one line per ban beyond maxReported.
func TestListLeavesOutAndReports(t *testing.T) {
	e := newEnv()
	b := e.backend(t, Options{Jail: "x", IPv6: true})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.v4.add("lj-x", "-s 192.0.2.1/32"+tcpReset)
	e.v4.add("lj-x", "-s 192.0.2.1/32"+tcpReset)
	e.v4.add("lj-x", "-s 192.0.2.2/32"+drop)
	e.v4.add("lj-x", "-s 10.0.0.0/8"+tcpReset)
	e.v4.add("lj-x", "-s 192.0.2.3/32 -j ACCEPT")
	for i := range 2 * maxReported {
		e.v6.add("lj-x", fmt.Sprintf("-s 2001:db8::%x/128%s", i+1, icmp6))
	}
	e.v6.add("lj-x", "-s 2001:db8::ffff/128"+tcpReset)
	got, err := b.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::ffff"}
	var gotS []string
	for _, t := range got {
		gotS = append(gotS, t.String())
	}
	if diff := cmp.Diff(want, gotS); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	logs := e.logs.String()
	for _, w := range []string{
		`rule="-A lj-x -s 192.0.2.1/32 -p tcp -j REJECT --reject-with tcp-reset" why="duplicate ban rule"`,
		`rule="-A lj-x -s 192.0.2.2/32 -j DROP" why="ban rule of other options"`,
		`rule="-A lj-x -s 192.0.2.3/32 -j ACCEPT" why="not a ban rule of ours"`,
		fmt.Sprintf(`msg="more rules in our chain left out of the list" backend=iptables jail=x family=ipv6 count=%d`, maxReported),
	} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs lack %s:\n%s", w, logs)
		}
	}
	if n := strings.Count(logs, "level=WARN"); n != 3+maxReported+1 {
		t.Errorf("%d warnings, want %d:\n%s", n, 3+maxReported+1, logs)
	}
}

func TestKeepNotStarted(t *testing.T) {
	e := newEnv()
	b := e.backend(t, Options{Jail: "x"})
	ctx := t.Context()
	if _, err := b.List(ctx); !errors.Is(err, action.ErrNotStarted) {
		t.Errorf("List before Start = %v, want ErrNotStarted", err)
	}
	if err := b.StopKeep(ctx); err != nil {
		t.Errorf("StopKeep before Start = %v", err)
	}
	if err := b.StartKeep(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.StopKeep(ctx); err != nil {
		t.Fatal(err)
	}
	e.rec.lines = nil
	if err := b.Ban(ctx, tgt("192.0.2.1")); !errors.Is(err, action.ErrNotStarted) {
		t.Errorf("Ban after StopKeep = %v, want ErrNotStarted", err)
	}
	if _, err := b.List(ctx); !errors.Is(err, action.ErrNotStarted) {
		t.Errorf("List after StopKeep = %v, want ErrNotStarted", err)
	}
	if err := b.StopKeep(ctx); err != nil {
		t.Errorf("second StopKeep = %v", err)
	}
	if len(e.rec.lines) != 0 {
		t.Errorf("calls after StopKeep: %q", e.rec.lines)
	}
	// StartKeep then Stop removes everything.
	if err := b.StartKeep(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(newEnv().state(), e.state()); diff != "" {
		t.Errorf("after StartKeep and Stop (-want +got):\n%s", diff)
	}
}

// A StartKeep that fails keeps what it found, says why, and can be retried.
func TestStartKeepFailure(t *testing.T) {
	t.Run("no parent chain", func(t *testing.T) {
		e := newEnv() // no DOCKER-USER: docker is not running
		e.v4.add("lj-web", "-s 192.0.2.1/32"+drop)
		before := e.state()
		b := e.backend(t, Options{Jail: "web", Chain: "DOCKER-USER", Protocol: AllProtocols, BlockType: BlockDrop})
		err := b.StartKeep(t.Context())
		if err == nil || !strings.Contains(err.Error(), "ipv4: list DOCKER-USER") {
			t.Fatalf("StartKeep = %v, want the failed listing of DOCKER-USER", err)
		}
		if diff := cmp.Diff(before, e.state()); diff != "" {
			t.Errorf("a failed StartKeep changed the tables (-want +got):\n%s", diff)
		}
		if err := b.Ban(t.Context(), tgt("192.0.2.2")); !errors.Is(err, action.ErrNotStarted) {
			t.Errorf("Ban after a failed StartKeep = %v, want ErrNotStarted", err)
		}
		e.v4.builtin = append(e.v4.builtin, "DOCKER-USER")
		if err := b.StartKeep(t.Context()); err != nil {
			t.Fatalf("StartKeep once DOCKER-USER exists = %v", err)
		}
		if got, err := b.List(t.Context()); err != nil || len(got) != 1 || got[0] != tgt("192.0.2.1") {
			t.Errorf("List = %v, %v; want the adopted 192.0.2.1", got, err)
		}
	})
	t.Run("chain neither listed nor created", func(t *testing.T) {
		e := newEnv()
		b := e.backend(t, Options{Jail: "x"})
		lister := &failingList{fakeIPT: e.v4, err: fakeFail("iptables: lock timeout")}
		b.deps.newIPT = func(bool, int) (ipt, error) { return lister, nil }
		e.v4.user = append(e.v4.user, "lj-x") // so that NewChain fails
		err := b.StartKeep(t.Context())
		if err == nil || !strings.Contains(err.Error(), "list chain lj-x: iptables: lock timeout; create it: iptables: Chain already exists.") {
			t.Errorf("StartKeep = %v, want both errors", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		e := newEnv()
		b := e.backend(t, Options{Jail: "x"})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := b.StartKeep(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("StartKeep(canceled) = %v", err)
		}
		if slices.ContainsFunc(e.rec.lines, func(l string) bool { return strings.HasPrefix(l, "ipv4 ") }) {
			t.Errorf("a canceled StartKeep called iptables: %q", e.rec.lines)
		}
	})
}

// failingList is a fakeIPT whose List fails for our chains.
type failingList struct {
	*fakeIPT
	err error
}

func (f *failingList) List(table, chain string) ([]string, error) {
	if strings.HasPrefix(chain, ChainPrefix) {
		f.record("List %s %s", table, chain)
		return nil, f.err
	}
	return f.fakeIPT.List(table, chain)
}

func TestParseBan(t *testing.T) {
	tests := []struct {
		rule string
		v6   bool
		want string // "PREFIX|TAIL", or "" for not a ban rule
	}{
		{"-s 192.0.2.1/32 -p tcp -j REJECT --reject-with tcp-reset", false, "192.0.2.1/32|-p tcp -j REJECT --reject-with tcp-reset"},
		{"-s 198.51.100.0/24 -j DROP", false, "198.51.100.0/24|-j DROP"},
		{"-s 2001:db8::/48 -j REJECT --reject-with icmp6-port-unreachable", true, "2001:db8::/48|-j REJECT --reject-with icmp6-port-unreachable"},
		{"-s 2001:db8::1/128 -j DROP", false, ""},     // wrong family
		{"-s 192.0.2.1/32 -j DROP", true, ""},         // wrong family
		{"-s 192.0.2.1/24 -j DROP", false, ""},        // host bits
		{"-s 0.0.0.0/0 -j DROP", false, ""},           // every address
		{"-s ::ffff:192.0.2.1/128 -j DROP", true, ""}, // IPv4-mapped
		{"-s 192.0.2.1 -j DROP", false, ""},           // no length: iptables always prints one
		{"-j DROP", false, ""},
		{"-s 192.0.2.1/32", false, ""},
		{"-d 192.0.2.1/32 -j DROP", false, ""},
	}
	for _, tt := range tests {
		tg, tail, ok := parseBan(strings.Fields(tt.rule), tt.v6)
		got := ""
		if ok {
			got = tg.Prefix.String() + "|" + tail
		}
		if got != tt.want {
			t.Errorf("parseBan(%q, v6 %v) = %q, want %q", tt.rule, tt.v6, got, tt.want)
		}
	}
}

func TestJumpsToJail(t *testing.T) {
	for line, want := range map[string]bool{
		"-A INPUT -p tcp -j lj-web":            true,
		"-A INPUT -j lj-web -c 5 300":          true,
		"-A INPUT -g lj-web":                   false, // goto: the chain's end returns past INPUT
		"-A INPUT -j keep":                     false,
		"-A INPUT -i lo -j ACCEPT":             false,
		"-A INPUT -p tcp -m comment --comment": false,
	} {
		if got := jumpsToJail(line); got != want {
			t.Errorf("jumpsToJail(%q) = %v, want %v", line, got, want)
		}
	}
}
