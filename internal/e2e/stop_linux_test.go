//go:build linux

package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/control"
)

// twoJails is a configuration with two jails on log: wordpress and http-flood, two chains.
func twoJails(log string) map[string]string {
	return map[string]string{"jail.d/e2e.local": wordpressJail(log, 5, "1m", "1h") + fmt.Sprintf(`
[http-flood]
enabled = true
logpath = %s
`, log)}
}

// TestStopRestoresFirewall: the daemon runs two jails with bans in both families (an address,
// a prefix, an IPv6 address) and is stopped, by SIGTERM (systemctl stop) or by `logjail stop`.
// It exits 0, removes its socket, and iptables-save and ip6tables-save of the namespace equal
// what they were before it started: in a pristine namespace, and in one with a firewall of its
// own (a user chain, rules before and after). Through the network, the attacker gets through
// again.
func TestStopRestoresFirewall(t *testing.T) {
	requireE2E(t)
	for _, how := range []string{"SIGTERM", "logjail-stop"} {
		for _, fw := range []string{"pristine", "own-firewall"} {
			t.Run(how+"/"+fw, func(t *testing.T) {
				t.Parallel()
				tp := newTopo(t)
				if fw == "own-firewall" {
					tp.ownFirewall(t)
				}
				before := tp.firewall(t)
				log := filepath.Join(t.TempDir(), "access.log")
				writeFile(t, log, "")
				tp.startWeb(t, log)
				d := newDaemon(t, tp, newConfig(t, twoJails(log)))
				d.start("wordpress", "http-flood")

				d.banCLI("wordpress", atk4.String())
				d.banCLI("http-flood", atkNet.String())
				if tp.v6 {
					d.banCLI("wordpress", atk6.String())
				}
				for _, f := range tp.fams() {
					tp.atk.waitRefused(t, f, "banned")
					tp.bys.wantServed(t, f, "attacker banned")
				}
				rules := tp.wantChains(t, "wordpress", "http-flood")
				if len(rules[ipv4]["lj-wordpress"]) != 1 || len(rules[ipv4]["lj-http-flood"]) != 1 || tp.v6 && len(rules[ipv6]["lj-wordpress"]) != 1 {
					t.Errorf("the chains hold %q, want one ban rule in each", rules)
				}
				if cmp.Equal(before, tp.firewall(t)) {
					t.Fatal("the firewall with the daemon running equals the one before: the comparison sees nothing")
				}

				switch how {
				case "SIGTERM":
					if err := d.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
						t.Fatal(err)
					}
				case "logjail-stop":
					if o := d.mustCLI("stop"); !strings.Contains(o, "logjail stopped") {
						t.Errorf("logjail stop said %q", o)
					}
					// logjail stop waits until the daemon no longer answers: by then its
					// chains must be gone (a script goes on at once), even if the process
					// has not quite exited.
					if diff := cmp.Diff(before, tp.firewall(t)); diff != "" {
						t.Errorf("the firewall when logjail stop returned differs from before the start (-before +after):\n%s", diff)
					}
				}
				d.stopped(20 * time.Second)
				if diff := cmp.Diff(before, tp.firewall(t)); diff != "" {
					t.Errorf("the firewall after the stop differs from before the start (-before +after):\n%s", diff)
				}
				for _, f := range tp.fams() {
					tp.atk.wantServed(t, f, "after the daemon stopped")
				}
				if _, e, code := d.cli("status"); code != 1 || !strings.Contains(e, "not running") {
					t.Errorf("logjail status with no daemon: exit %d, %q; want 1 and one sentence saying it is not running", code, e)
				}
			})
		}
	}
}

// TestKillRestartNoDuplicates: a daemon with bans is killed (SIGKILL: no cleanup) and started
// again, twice. After each restart there is exactly one chain per jail and one jump to it,
// at the top of INPUT, and no rule twice; `unban --all` lets the attacker through (nothing of
// the killed daemon's is left blocking); a new flood is banned with one rule. A last SIGTERM
// leaves the firewall as it was before the first start.
func TestKillRestartNoDuplicates(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp := newTopo(t)
	tp.ownFirewall(t)
	before := tp.firewall(t)
	log := filepath.Join(t.TempDir(), "access.log")
	writeFile(t, log, "")
	tp.startWeb(t, log)
	d := newDaemon(t, tp, newConfig(t, twoJails(log)))
	d.start("wordpress", "http-flood")

	for round := 1; round <= 2; round++ {
		if n, err := tp.atk.flood(t, ipv4, 200, 10*time.Second); err == nil {
			t.Fatalf("round %d: the attacker's flood was answered %d times and never cut off", round, n)
		}
		d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
		if tp.v6 {
			d.banCLI("http-flood", atk6.String())
			tp.atk.waitRefused(t, ipv6, "banned by hand")
		}

		if !d.p.signal(syscall.SIGKILL, 10*time.Second) {
			t.Fatal("SIGKILL did not end the daemon")
		}
		for _, f := range tp.fams() {
			if o := tp.owned(t, f); o.decl["lj-wordpress"] != 1 {
				t.Fatalf("round %d, %s: after SIGKILL lj-wordpress is declared %d times; the test expects the killed daemon's leftovers", round, f, o.decl["lj-wordpress"])
			}
			tp.atk.wantRefused(t, f, "the killed daemon's rule is still in the kernel")
		}

		d.start("wordpress", "http-flood")
		tp.wantChains(t, "wordpress", "http-flood")
		// The restarted daemon bans the attacker again from the failures still in its log's
		// last findtime. Then unban --all must leave nothing blocking.
		d.waitBan("wordpress", hostTarget(atk4), 10*time.Second)
		d.mustCLI("unban", "--all")
		for _, f := range tp.fams() {
			tp.atk.waitServed(t, f, fmt.Sprintf("round %d: after restart and unban --all", round))
		}
		rules := tp.wantChains(t, "wordpress", "http-flood")
		for f, chains := range rules {
			for c, r := range chains {
				if len(r) != 0 {
					t.Errorf("round %d, %s: %s holds %q after unban --all", round, f, c, r)
				}
			}
		}
	}

	if n, err := tp.atk.flood(t, ipv4, 200, 10*time.Second); err == nil {
		t.Fatalf("after the restarts, the attacker's flood was answered %d times and never cut off", n)
	}
	d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	tp.atk.waitRefused(t, ipv4, "banned after the restarts")
	tp.bys.wantServed(t, ipv4, "attacker banned after the restarts")
	rules := tp.wantChains(t, "wordpress", "http-flood")
	if r := rules[ipv4]["lj-wordpress"]; len(r) != 1 || !strings.Contains(r[0], "-s "+atk4.String()+"/32 ") {
		t.Errorf("lj-wordpress holds %q, want one rule for %s", r, atk4)
	}

	if err := d.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.stopped(20 * time.Second)
	if diff := cmp.Diff(before, tp.firewall(t)); diff != "" {
		t.Errorf("the firewall after the last stop differs from before the first start (-before +after):\n%s", diff)
	}
}

// TestStopDuringBanBurst: a botnet of 400 addresses fails five times each, all at once, and the
// daemon is stopped (SIGTERM) while it is still putting the 400 bans into the kernel. It exits
// 0 and leaves the firewall as it found it: no ban applied after its chain was removed, no
// chain made again.
func TestStopDuringBanBurst(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp := newTopo(t)
	tp.ownFirewall(t)
	before := tp.firewall(t)
	log := filepath.Join(t.TempDir(), "access.log")
	writeFile(t, log, "")
	d := newDaemon(t, tp, newConfig(t, map[string]string{"jail.d/e2e.local": wordpressJail(log, 5, "10m", "1h")}))
	d.start("wordpress")
	d.waitFollowing("wordpress", log)

	var b strings.Builder
	for i := range 400 {
		b.WriteString(failLines(netip.AddrFrom4([4]byte{10, 77, byte(i / 200), byte(i%200 + 1)}), 5, fmt.Sprintf("bot%d", i)))
	}
	appendFile(t, log, b.String())
	waitFor(t, 10*time.Second, "the first bans in the kernel", func() (bool, string) {
		n := len(tp.owned(t, ipv4).rules["lj-wordpress"])
		return n >= 5, fmt.Sprintf("%d rules in lj-wordpress", n)
	})
	if n := len(tp.owned(t, ipv4).rules["lj-wordpress"]); n >= 400 {
		t.Logf("every ban was in the kernel before the stop: the test did not stop during the burst")
	} else {
		t.Logf("stopping with %d of 400 bans in the kernel", n)
	}
	if err := d.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.stopped(30 * time.Second)
	if diff := cmp.Diff(before, tp.firewall(t)); diff != "" {
		t.Errorf("the firewall after a stop during a burst of bans differs from before the start (-before +after):\n%s", diff)
	}
}

// TestReloadChangedActionThenStop: a reload that changes a jail's action (port, blocktype),
// disables a jail and enables another moves the bans and the chains: the changed jail has one
// chain with one jump for its new ports and its ban again with the new block type; the
// disabled jail's chain and bans are gone; the new jail has its chain. A stop then leaves the
// firewall as it was before the first start: nothing of the first configuration is left.
func TestReloadChangedActionThenStop(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp := newTopo(t)
	tp.ownFirewall(t)
	before := tp.firewall(t)
	log := filepath.Join(t.TempDir(), "access.log")
	writeFile(t, log, "")
	tp.startWeb(t, log)
	files := twoJails(log)
	d := newDaemon(t, tp, newConfig(t, map[string]string{"jail.local": files["jail.d/e2e.local"]}))
	d.start("wordpress", "http-flood")
	d.banCLI("wordpress", atk4.String())
	tp.atk.waitRefused(t, ipv4, "banned in wordpress")
	if tp.v6 {
		d.banCLI("http-flood", atk6.String())
		tp.atk.waitRefused(t, ipv6, "banned in http-flood")
	}

	writeFile(t, filepath.Join(d.conf, "jail.d", "change.local"), fmt.Sprintf(`[wordpress]
port      = http,8080
blocktype = DROP

[http-flood]
enabled = false

[badbots]
enabled = true
logpath = %s
`, log))
	var rep control.ReloadReply
	if err := d.jsonCLI(&rep, "reload"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Restarted, []string{"wordpress"}) || !slices.Equal(rep.Stopped, []string{"http-flood"}) || !slices.Equal(rep.Started, []string{"badbots"}) {
		t.Errorf("reload: %+v; want wordpress restarted, http-flood stopped, badbots started", rep)
	}
	d.waitJails("wordpress", "badbots")
	waitFor(t, settle, "the wordpress ban applied again", func() (bool, string) {
		b, ok := d.ban("wordpress", atk4.String())
		return ok && b.Applied, fmt.Sprintf("bans %+v", d.banned())
	})
	rules := tp.wantChains(t, "wordpress", "badbots")
	for _, f := range tp.fams() {
		o := tp.owned(t, f)
		if j := o.jumps["lj-wordpress"]; len(j) != 1 || !strings.Contains(j[0], "80,8080") {
			t.Errorf("%s: jumps to lj-wordpress %q, want one for ports 80,8080", f, j)
		}
	}
	if r := rules[ipv4]["lj-wordpress"]; len(r) != 1 || !strings.Contains(r[0], "-s "+atk4.String()+"/32 ") || !strings.Contains(r[0], "-j DROP") {
		t.Errorf("lj-wordpress holds %q, want the attacker's ban, with DROP", r)
	}
	if bans := d.banned(); len(bans) != 1 {
		t.Errorf("bans after the reload: %+v, want only wordpress's", bans)
	}
	tp.atk.wantDropped(t, ipv4, "banned with DROP")
	tp.bys.wantServed(t, ipv4, "after the reload")
	if tp.v6 {
		tp.atk.waitServed(t, ipv6, "its jail was disabled")
	}

	d.mustCLI("stop")
	d.stopped(20 * time.Second)
	if diff := cmp.Diff(before, tp.firewall(t)); diff != "" {
		t.Errorf("the firewall after the stop differs from before the first start (-before +after):\n%s", diff)
	}
}
