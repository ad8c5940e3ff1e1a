//go:build linux

package iptables

// End-to-end tests of StartKeep, StopKeep and List, and the benchmark of
// StartKeep+List with many bans; see the top of e2e_linux_test.go for how
// the namespaces are made and entered. Every iptables command here runs in
// the test's own server namespace (nsExec, the helper).
//
//	sudo LOGJAIL_E2E=1 go test -race -run E2EKeep -v ./internal/action/iptables/
//	sudo LOGJAIL_E2E=1 go test -run '^$' -bench E2EStartKeepList -benchtime 3x ./internal/action/iptables/

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// probeTimeout bounds each probe connect: a DROP ban makes every attempt
// wait this long.
const probeTimeout = 200 * time.Millisecond

// probe connects from the attacker's namespace to the server's port 22 in a
// loop, in every family, from start to finish, and counts what happened.
// A banned attacker must never connect.
type probe struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	attempts atomic.Int64
	refused  atomic.Int64 // connection refused (REJECT)
	timeouts atomic.Int64 // no answer (DROP)
	other    atomic.Int64

	mu    sync.Mutex
	leaks []string // connections that got through: when, and to what
}

func (tp *topo) startProbe(t *testing.T) *probe {
	t.Helper()
	p := &probe{stop: make(chan struct{})}
	start := time.Now()
	for _, f := range tp.families() {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			err := inNetns(tp.atk, func() error {
				to := netip.AddrPortFrom(f.srvAtk, 22).String()
				for {
					select {
					case <-p.stop:
						return nil
					default:
					}
					p.attempts.Add(1)
					c, err := net.DialTimeout("tcp", to, probeTimeout)
					var ne interface{ Timeout() bool }
					switch {
					case err == nil:
						c.Close()
						p.mu.Lock()
						p.leaks = append(p.leaks, fmt.Sprintf("%s connected to %s after %v", f.name, to, time.Since(start).Round(time.Millisecond)))
						p.mu.Unlock()
					case errors.Is(err, syscall.ECONNREFUSED):
						p.refused.Add(1)
					case errors.As(err, &ne) && ne.Timeout():
						p.timeouts.Add(1)
					default:
						p.other.Add(1)
					}
				}
			})
			if err != nil {
				t.Errorf("probe %s: %v", f.name, err)
			}
		}()
	}
	return p
}

// finish stops the probe and fails the test if a connection got through, or
// if the probe made too few attempts to mean anything.
func (p *probe) finish(t *testing.T) {
	t.Helper()
	close(p.stop)
	p.wg.Wait()
	t.Logf("probe: %d connects from the banned attacker: %d refused, %d timed out, %d other errors, %d connected",
		p.attempts.Load(), p.refused.Load(), p.timeouts.Load(), p.other.Load(), len(p.leaks))
	for i, l := range p.leaks {
		if i == 5 {
			t.Errorf("and %d more", len(p.leaks)-i)
			break
		}
		t.Errorf("banned attacker got through: %s", l)
	}
	if p.attempts.Load() < 10 {
		t.Errorf("the probe made only %d attempts", p.attempts.Load())
	}
}

// keepTargets returns n targets per family to ban: the attacker's address
// first, then other single addresses and prefixes, as prefixes in CIDR form.
func keepTargets(tp *topo, n int) map[string][]string {
	out := map[string][]string{}
	for _, f := range tp.families() {
		ts := []string{hostPrefix(f.atk)}
		for i := 1; len(ts) < n; i++ {
			if f.name == "ipv4" {
				if i%4 == 0 {
					ts = append(ts, fmt.Sprintf("10.78.%d.0/24", i))
				} else {
					ts = append(ts, fmt.Sprintf("10.77.%d.%d/32", i/250, i%250+1))
				}
			} else {
				if i%4 == 0 {
					ts = append(ts, fmt.Sprintf("fd00:78:%x::/48", i))
				} else {
					ts = append(ts, fmt.Sprintf("fd00:77::%x/128", i))
				}
			}
		}
		out[f.name] = ts
	}
	return out
}

// sortedPrefixes sorts prefixes in CIDR form the way List returns them.
func sortedPrefixes(groups ...[]string) []string {
	var ps []netip.Prefix
	for _, g := range groups {
		for _, s := range g {
			ps = append(ps, netip.MustParsePrefix(s))
		}
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// TestE2EKeepRestart: a backend bans N targets per family and stops with
// StopKeep, and its process exits; the chain, its jump at the top of INPUT
// and the N rules stay, and the attacker is still refused. A second process
// adopts them with StartKeep and List returns exactly the N targets. A probe
// connects from the attacker in a loop from before StopKeep to after
// StartKeep and never gets through. Banning an adopted target adds nothing;
// Unban and Stop work on adopted rules, and Stop leaves the firewall as it
// was. The second case changes the blocktype between the runs: StartKeep
// rewrites every ban rule, and the probe still never gets through.
func TestE2EKeepRestart(t *testing.T) {
	requireE2E(t)
	const n = 40
	for _, next := range []BlockType{BlockReject, BlockDrop} {
		for _, how := range repairPaths(next == BlockDrop) {
			t.Run("then "+string(next)+how.name, func(t *testing.T) {
				testE2EKeepRestart(t, n, next, how)
			})
		}
	}
}

// repairPath is how StartKeep makes its changes in a test.
type repairPath struct {
	name string
	env  []string // for the helper
	log  string   // what the helper logs when StartKeep repaired this way
}

// repairPaths lists the ways to test: with changes to make, both the batch
// (iptables-restore) and one call per change; else the default only.
func repairPaths(changes bool) []repairPath {
	if !changes {
		return []repairPath{{}}
	}
	return []repairPath{
		{name: ", iptables-restore", log: "how=iptables-restore"},
		{name: ", one call per change", env: []string{helperNoRestoreEnv + "=1"}, log: `how="one call per change"`},
	}
}

// check fails the test unless the helper's logs say it repaired the way how
// says.
func (how repairPath) check(t *testing.T, h *helper) {
	t.Helper()
	if how.log != "" && !strings.Contains(h.logs.String(), how.log) {
		t.Errorf("the backend did not repair with %s; its logs:\n%s", how.log, h.logs)
	}
}

func testE2EKeepRestart(t *testing.T, n int, next BlockType, how repairPath) {
	tp := newTopo(t)
	tp.listen(t, 22, 8080)
	tp.foreignRules(t)
	before := tp.save(t)
	fams := tp.families()
	targets := keepTargets(tp, n)
	opts := Options{Jail: "keep", Ports: "ssh", IPv6: tp.v6}

	first := startHelper(t, tp.srv, opts)
	first.must("start")
	for _, f := range fams {
		for _, p := range targets[f.name] {
			first.must("ban " + p)
		}
		wantBlocked(t, f.name+" banned attacker", tp.atk, f.srvAtk, 22, BlockReject)
	}

	probe := tp.startProbe(t)
	first.must("stopkeep")
	first.exit()
	// The daemon is down: everything stays, and keeps working.
	tp.wantOwned(t, "lj-keep", n)
	for _, f := range fams {
		wantBlocked(t, f.name+" attacker while no backend runs", tp.atk, f.srvAtk, 22, BlockReject)
		wantConnect(t, f.name+" bystander while no backend runs", tp.bys, f.srvBys, 22)
	}

	opts.BlockType = next
	second := startHelper(t, tp.srv, opts, how.env...)
	second.must("startkeep")
	time.Sleep(100 * time.Millisecond) // the probe goes on a little after StartKeep
	probe.finish(t)
	how.check(t, second)

	var all []string
	for _, f := range fams {
		all = append(all, targets[f.name]...)
	}
	if diff := cmp.Diff(sortedPrefixes(all), second.list()); diff != "" {
		t.Errorf("List after StartKeep (-want +got):\n%s", diff)
	}
	tp.wantOwned(t, "lj-keep", n)
	tp.wantShape(t, "lj-keep", next)
	for _, f := range fams {
		second.must("ban " + hostPrefix(f.atk)) // adopted: adds nothing
		wantBlocked(t, f.name+" attacker after StartKeep", tp.atk, f.srvAtk, 22, next)
		wantConnect(t, f.name+" bystander", tp.bys, f.srvBys, 22)
		wantConnect(t, f.name+" banned attacker on a port outside the jail", tp.atk, f.srvAtk, 8080)
	}
	tp.wantOwned(t, "lj-keep", n)
	for _, f := range fams {
		second.must("unban " + hostPrefix(f.atk))
		wantConnect(t, f.name+" unbanned attacker", tp.atk, f.srvAtk, 22)
	}
	tp.wantOwned(t, "lj-keep", n-1)
	second.must("stop")
	if diff := cmp.Diff(before, tp.save(t)); diff != "" {
		t.Errorf("firewall after Stop differs from before the first Start (-before +after):\n%s", diff)
	}
	second.exit()
}

// TestE2EKeepRepair: a backend bans and is killed; by hand (as a crash
// between two kernel calls, or an interrupted repair, would leave them) the
// jump is moved below the foreign rules and doubled, the jump of an earlier
// configuration is added, a ban rule is doubled, one is written in another
// blocktype, and a foreign rule is put into our chain. StartKeep, with a
// probe running, leaves exactly one jump at the top and one current rule per
// target, touches no foreign rule outside our chain, and the attacker never
// gets through.
func TestE2EKeepRepair(t *testing.T) {
	requireE2E(t)
	for _, how := range repairPaths(true) {
		t.Run(strings.TrimPrefix(how.name, ", "), func(t *testing.T) { testE2EKeepRepair(t, how) })
	}
}

func testE2EKeepRepair(t *testing.T, how repairPath) {
	tp := newTopo(t)
	tp.listen(t, 22)
	tp.foreignRules(t)
	before := tp.save(t)
	fams := tp.families()
	opts := Options{Jail: "fix", Ports: "22", IPv6: tp.v6}
	jump := []string{"-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "lj-fix"}

	first := startHelper(t, tp.srv, opts)
	first.must("start")
	want := map[string][]string{}
	type extra struct{ other, old, foreign string }
	extras := map[string]extra{
		"ipv4": {"10.77.0.1/32", "10.77.0.2/32", "10.66.0.1/32"},
		"ipv6": {"fd00:77::1/128", "fd00:77::2/128", "fd00:66::1/128"},
	}
	for _, f := range fams {
		x := extras[f.name]
		first.must("ban " + hostPrefix(f.atk))
		first.must("ban " + x.other)
		want[f.name] = []string{hostPrefix(f.atk), x.other, x.old}
	}
	first.crash()
	for _, f := range fams {
		x := extras[f.name]
		ipt := func(args ...string) { nsExec(t, tp.srv, append([]string{f.ipt}, args...)...) }
		ipt(append([]string{"-D", "INPUT"}, jump...)...) // the jump at the top goes
		ipt(append([]string{"-A", "INPUT"}, jump...)...) // and comes back twice, below
		ipt("-A", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "2222", "-j", "lj-fix")
		ipt(append([]string{"-A", "INPUT"}, jump...)...)
		ipt("-A", "lj-fix", "-s", hostPrefix(f.atk), "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
		ipt("-A", "lj-fix", "-s", x.other, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
		ipt("-A", "lj-fix", "-s", x.old, "-j", "DROP")
		ipt("-A", "lj-fix", "-s", x.foreign, "-j", "ACCEPT")
		rules := nsExec(t, tp.srv, f.ipt, "-S")
		if j, r := strings.Count(rules, "-j lj-fix\n"), strings.Count(rules, "-A lj-fix "); j != 3 || r != 6 {
			t.Fatalf("%s: set-up made %d jumps and %d rules, want 3 and 6:\n%s", f.name, j, r, rules)
		}
		wantBlocked(t, f.name+" attacker after the crash", tp.atk, f.srvAtk, 22, BlockReject)
	}

	probe := tp.startProbe(t)
	second := startHelper(t, tp.srv, opts, how.env...)
	second.must("startkeep")
	time.Sleep(100 * time.Millisecond)
	probe.finish(t)
	how.check(t, second)

	tp.wantOwned(t, "lj-fix", 3)
	tp.wantShape(t, "lj-fix", BlockReject)
	var all []string
	for _, f := range fams {
		all = append(all, want[f.name]...)
	}
	if diff := cmp.Diff(sortedPrefixes(all), second.list()); diff != "" {
		t.Errorf("List after StartKeep (-want +got):\n%s", diff)
	}
	// Everything but our chain and its jump is exactly as before.
	var foreign []string
	for _, l := range tp.save(t) {
		if !strings.Contains(l, "lj-fix") {
			foreign = append(foreign, l)
		}
	}
	if diff := cmp.Diff(before, foreign); diff != "" {
		t.Errorf("rules not ours changed (-before +after):\n%s", diff)
	}
	// A second StartKeep finds nothing to do.
	saved := tp.save(t)
	second.must("stopkeep")
	second.must("startkeep")
	if diff := cmp.Diff(saved, tp.save(t)); diff != "" {
		t.Errorf("a second StartKeep changed the firewall (-before +after):\n%s", diff)
	}
	for _, f := range fams {
		wantBlocked(t, f.name+" attacker", tp.atk, f.srvAtk, 22, BlockReject)
		wantConnect(t, f.name+" bystander", tp.bys, f.srvBys, 22)
	}
	second.must("stop")
	if diff := cmp.Diff(before, tp.save(t)); diff != "" {
		t.Errorf("firewall after Stop differs from before the first Start (-before +after):\n%s", diff)
	}
	second.exit()
}

// wantShape checks that every rule in chain is a ban rule of block's shape
// (in a tcp jail).
func (tp *topo) wantShape(t *testing.T, chain string, block BlockType) {
	t.Helper()
	for _, f := range tp.families() {
		tail := " -p tcp -j REJECT --reject-with tcp-reset"
		if block == BlockDrop {
			tail = " -j DROP"
		}
		for _, l := range strings.Split(nsExec(t, tp.srv, f.ipt, "-S", chain), "\n") {
			if strings.HasPrefix(l, "-A ") && !strings.HasSuffix(l, tail) {
				t.Errorf("%s: rule %q in %s, want every rule to end in %q", f.name, l, chain, tail)
			}
		}
	}
}

// BenchmarkE2EStartKeepList measures StartKeep+List (and the StopKeep
// between iterations, which makes no kernel call) over a chain of n IPv4
// ban rules, as a restart with n bans in force costs. The rules are loaded
// with one iptables-restore. It also reports how long loading took, what
// one Ban (iptables -C, then -I) costs with that chain, which is what the
// re-ban after a flushing Start pays per ban, and once how long a StartKeep
// takes that rewrites all n rules (blocktype REJECT -> DROP, one
// iptables-restore).
func BenchmarkE2EStartKeepList(b *testing.B) {
	requireE2E(b)
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("bans=%d", n), func(b *testing.B) {
			tp := newTopo(b)
			var in strings.Builder
			in.WriteString("*filter\n:lj-bench - [0:0]\n-A INPUT -p tcp -m multiport --dports 22 -j lj-bench\n")
			for i := range n {
				fmt.Fprintf(&in, "-A lj-bench -s 10.%d.%d.%d/32 -p tcp -j REJECT --reject-with tcp-reset\n", 100+i>>16, i>>8&255, i&255)
			}
			in.WriteString("COMMIT\n")
			file := b.TempDir() + "/rules"
			if err := os.WriteFile(file, []byte(in.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			nsExec(b, tp.srv, "iptables-restore", "--noflush", file)
			load := time.Since(start)

			h := startHelper(b, tp.srv, Options{Jail: "bench", Ports: "22"})
			var keep, list time.Duration
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				h.must("startkeep")
				t1 := time.Now()
				got := h.list()
				t2 := time.Now()
				h.must("stopkeep")
				keep += t1.Sub(t0)
				list += t2.Sub(t1)
				if len(got) != n {
					b.Fatalf("List returned %d targets, want %d", len(got), n)
				}
			}
			b.StopTimer()
			h.must("startkeep")
			const bans = 20
			t0 := time.Now()
			for i := range bans {
				h.must(fmt.Sprintf("ban 10.250.0.%d/32", i+1))
			}
			ban := time.Since(t0) / bans
			h.must("stopkeep")
			h.exit()

			drop := startHelper(b, tp.srv, Options{Jail: "bench", Ports: "22", BlockType: BlockDrop})
			t0 = time.Now()
			drop.must("startkeep")
			rewrite := time.Since(t0)
			if got := drop.list(); len(got) != n+bans {
				b.Fatalf("List after the rewrite returned %d targets, want %d", len(got), n+bans)
			}
			if !strings.Contains(drop.logs.String(), fmt.Sprintf("rewritten=%d", n+bans)) {
				b.Fatalf("the rewrite did not rewrite %d rules; logs:\n%s", n+bans, drop.logs)
			}
			drop.must("stopkeep")
			drop.exit()

			b.ReportMetric(rewrite.Seconds(), "rewrite-all-s")
			b.ReportMetric(keep.Seconds()/float64(b.N), "startkeep-s/op")
			b.ReportMetric(list.Seconds()/float64(b.N), "list-s/op")
			b.ReportMetric(load.Seconds(), "restore-load-s")
			b.ReportMetric(float64(ban.Microseconds())/1000, "ban-ms")
		})
	}
}
