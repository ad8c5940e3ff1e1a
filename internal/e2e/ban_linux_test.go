//go:build linux

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// webSetup is the common start of a test: the network, demoweb writing log, and a daemon on a
// configuration made of the repo's files and files.
func webSetup(t *testing.T, files func(log string) map[string]string) (*topo, *daemon, string) {
	t.Helper()
	tp := newTopo(t)
	log := filepath.Join(t.TempDir(), "access.log")
	writeFile(t, log, "")
	tp.startWeb(t, log)
	d := newDaemon(t, tp, newConfig(t, files(log)))
	d.start("wordpress")
	d.waitFollowing("wordpress", log)
	return tp, d, log
}

// lineCount is the number of lines in path.
func lineCount(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int64(strings.Count(string(b), "\n"))
}

// waitLinesRead waits until jail has read every line of log.
func (d *daemon) waitLinesRead(jail, log string) {
	d.t.Helper()
	waitFor(d.t, 10*time.Second, "every line of "+log+" read", func() (bool, string) {
		n := lineCount(d.t, log)
		j := d.jail(jail)
		return j.LinesRead == n, fmt.Sprintf("lines_read %d, the file has %d lines", j.LinesRead, n)
	})
}

// TestFloodBansAttacker is the first point, as `make demo` shows it: an xmlrpc.php flood
// through demoweb gets the attacker banned after maxretry failures; its next TCP connections
// are refused while the bystander (who failed too, under maxretry) still gets pages; the ban
// is of the attacker's address only (its IPv6 address still connects); every answered request
// is counted once. Then the same flood over IPv6 is banned through ip6tables.
func TestFloodBansAttacker(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const maxretry = 5
	tp, d, log := webSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, maxretry, "1m", "1h")}
	})
	tp.wantChains(t, "wordpress")
	for _, f := range tp.fams() {
		tp.atk.wantServed(t, f, "before the flood")
		tp.bys.wantServed(t, f, "before the flood")
	}
	if n, err := tp.bys.flood(t, ipv4, maxretry-2, 5*time.Second); err != nil || n != maxretry-2 {
		t.Fatalf("bystander's %d failures: %d answered, %v", maxretry-2, n, err)
	}
	d.waitFailures("wordpress", bys4, maxretry-2)

	start := time.Now()
	n, err := tp.atk.flood(t, ipv4, 1000, 10*time.Second)
	if err == nil {
		t.Fatalf("the attacker's flood was answered %d times in %v and never cut off", n, time.Since(start))
	}
	t.Logf("the attacker was cut off after %d answered requests, %v into the flood: %v", n, time.Since(start).Round(time.Millisecond), err)
	if n < maxretry {
		t.Errorf("the attacker was cut off after %d requests, before maxretry = %d failures", n, maxretry)
	}

	b := d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	if b.Manual || b.Failures != maxretry || len(b.Lines) != maxretry || b.End == nil || b.End.Sub(b.Start) != time.Hour {
		t.Errorf("ban %+v: want automatic, %d failures and lines, 1h", b, maxretry)
	}
	for _, l := range b.Lines {
		if !strings.HasPrefix(l, atk4.String()+" ") || !strings.Contains(l, `"POST /xmlrpc.php HTTP/1.1" 200`) {
			t.Errorf("ban line %q is not one of the attacker's requests", l)
		}
	}
	for i := 0; i < 3; i++ { // not a first-packet fluke
		tp.atk.wantRefused(t, ipv4, "banned")
	}
	tp.bys.wantServed(t, ipv4, "while the attacker is banned")
	if tp.v6 {
		tp.atk.wantServed(t, ipv6, "only its IPv4 address is banned")
		tp.bys.wantServed(t, ipv6, "while the attacker is banned")
	}

	rules := tp.wantChains(t, "wordpress")
	if r := rules[ipv4]["lj-wordpress"]; len(r) != 1 || !strings.Contains(r[0], "-s "+atk4.String()+"/32 ") {
		t.Errorf("lj-wordpress holds %q, want one rule for %s", r, atk4)
	}
	if r := rules[ipv6]["lj-wordpress"]; len(r) != 0 {
		t.Errorf("ip6tables lj-wordpress holds %q, want nothing", r)
	}

	// Every answered request is in the log and read once; failures counted once each.
	d.waitLinesRead("wordpress", log)
	j := d.jail("wordpress")
	if j.Banned != 1 || j.TotalBanned != 1 || j.Refused != 0 || j.Failures != int64(n+maxretry-2) || len(j.Errors) != 0 {
		t.Errorf("status: banned %d, total %d, refused %d, failures %d, errors %q; want 1, 1, 0, %d, none",
			j.Banned, j.TotalBanned, j.Refused, j.Failures, j.Errors, n+maxretry-2)
	}
	if e := d.explain("wordpress", bys4); e.Failures != maxretry-2 || e.Ban != nil || e.Ignored {
		t.Errorf("explain bystander: %+v, want %d failures, no ban, not ignored", e, maxretry-2)
	}
	if e := d.explain("wordpress", atk4); e.Ban == nil || e.Ban.Target != atk4.String() {
		t.Errorf("explain attacker: %+v, want its ban", e)
	}

	// The same over IPv6: ip6tables.
	if !tp.v6 {
		return
	}
	if n, err := tp.atk.flood(t, ipv6, 1000, 10*time.Second); err == nil || n < maxretry {
		t.Fatalf("the attacker's IPv6 flood: %d answered, then %v; want at least %d, then cut off", n, err, maxretry)
	}
	d.waitBan("wordpress", hostTarget(atk6), 5*time.Second)
	tp.atk.wantRefused(t, ipv6, "banned")
	tp.atk.wantRefused(t, ipv4, "banned")
	tp.bys.wantServed(t, ipv6, "attacker banned")
	rules = tp.wantChains(t, "wordpress")
	if r := rules[ipv6]["lj-wordpress"]; len(r) != 1 || !strings.Contains(r[0], "-s "+atk6.String()+"/128 ") {
		t.Errorf("ip6tables lj-wordpress holds %q, want one rule for %s", r, atk6)
	}
}

// TestIgnoreIPNeverBanned: the bystander's addresses are in jail.local's ignoreip. It fails
// four times maxretry over each family, and again written as an IPv4-mapped address, and is
// never banned (the orders are refused and counted, explain says why); the CLI refuses a
// manual ban of it and of a prefix holding it; the attacker, with the same failures, is
// banned (the jail works).
func TestIgnoreIPNeverBanned(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const maxretry = 3
	tp, d, log := webSetup(t, func(log string) map[string]string {
		return map[string]string{
			"jail.local": fmt.Sprintf("[DEFAULT]\nignoreip = 127.0.0.0/8 ::1 %s %s\n", bys4, bys6),
			// sshd off and the wordpress jail on, as in every test
			"jail.d/e2e.local": wordpressJail(log, maxretry, "1m", "1h"),
		}
	})
	for _, f := range tp.fams() {
		if n, err := tp.bys.flood(t, f, 4*maxretry, 10*time.Second); err != nil || n != 4*maxretry {
			t.Fatalf("ignored bystander (%s): %d of %d failures answered, then %v", f, n, 4*maxretry, err)
		}
	}
	// Written as an IPv4-mapped IPv6 address (a dual-stack server's log), by hand.
	d.waitLinesRead("wordpress", log)
	appendFile(t, log, failLines(netip.MustParseAddr("::ffff:"+bys4.String()), 4*maxretry, "mapped"))
	waitFor(t, 5*time.Second, "refused ban orders", func() (bool, string) {
		j := d.jail("wordpress")
		return j.Refused >= int64(4*len(tp.fams())+4), fmt.Sprintf("status: %+v", j)
	})
	for _, f := range tp.fams() {
		tp.bys.wantServed(t, f, "ignoreip")
		e := d.explain("wordpress", tp.bys.addr(f))
		if !e.Ignored || !strings.Contains(e.IgnoredWhy, "ignoreip") || e.Ban != nil {
			t.Errorf("explain %s: ignored %v (%q), ban %+v; want ignored by ignoreip, no ban", tp.bys.addr(f), e.Ignored, e.IgnoredWhy, e.Ban)
		}
		o, e2, code := d.cli("ban", "wordpress", tp.bys.addr(f).String())
		if code != 1 || !strings.Contains(e2, "ignore") {
			t.Errorf("logjail ban wordpress %s: exit %d, %q%q; want 1 and a refusal naming the ignore list", tp.bys.addr(f), code, o, e2)
		}
	}
	// A prefix holding an ignored address is refused too.
	if o, e, code := d.cli("ban", "wordpress", "10.201.1.0/24"); code != 1 || !strings.Contains(e, "ignoreip") {
		t.Errorf("logjail ban wordpress 10.201.1.0/24: exit %d, %q%q; want 1 and a refusal naming ignoreip", code, o, e)
	}
	if bans := d.banned(); len(bans) != 0 {
		t.Errorf("bans in force: %+v, want none", bans)
	}
	if r := tp.wantChains(t, "wordpress"); len(r[ipv4]["lj-wordpress"])+len(r[ipv6]["lj-wordpress"]) != 0 {
		t.Errorf("lj-wordpress holds %q, want nothing", r)
	}

	if n, err := tp.atk.flood(t, ipv4, 100, 10*time.Second); err == nil {
		t.Fatalf("the attacker's flood was answered %d times and never cut off", n)
	}
	d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	tp.atk.waitRefused(t, ipv4, "banned")
	tp.bys.wantServed(t, ipv4, "ignoreip, attacker banned")
}

// TestManualBanUnban drives bans by hand with the CLI: an address (IPv4 and IPv6), a /24, the
// hint when unbanning an address inside a banned prefix, unban --all; and the refusals: an own
// address, a prefix holding one, an ignoreip address, an unknown jail, a malformed address.
func TestManualBanUnban(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp, d, _ := webSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, 5, "1m", "1h", "ignoreip = 127.0.0.0/8 ::1 192.0.2.0/24")}
	})

	// One address.
	d.banCLI("wordpress", atk4.String())
	if b, ok := d.ban("wordpress", atk4.String()); !ok || !b.Manual || b.End == nil || b.End.Sub(b.Start) != time.Hour {
		t.Errorf("after ban %s: %+v (found %v), want a manual ban for the jail's bantime 1h", atk4, b, ok)
	}
	tp.atk.waitRefused(t, ipv4, "banned by hand")
	tp.bys.wantServed(t, ipv4, "attacker banned by hand")
	if tp.v6 {
		tp.atk.wantServed(t, ipv6, "only its IPv4 address is banned")
	}
	if o := d.mustCLI("unban", "wordpress", atk4.String()); !strings.Contains(o, "unbanned "+atk4.String()) {
		t.Errorf("unban output %q", o)
	}
	tp.atk.waitServed(t, ipv4, "unbanned by hand")

	// A prefix; an address inside it cannot be unbanned alone.
	d.banCLI("wordpress", atkNet.String(), "--for", "10m")
	if b, ok := d.ban("wordpress", atkNet.String()); !ok || b.End == nil || b.End.Sub(b.Start) != 10*time.Minute {
		t.Errorf("after ban %s --for 10m: %+v (found %v)", atkNet, b, ok)
	}
	tp.atk.waitRefused(t, ipv4, "its /24 banned")
	tp.bys.wantServed(t, ipv4, "attacker's /24 banned")
	o, e, code := d.cli("unban", "wordpress", atk4.String())
	if code != 1 || !strings.Contains(e, "inside the banned prefix "+atkNet.String()) {
		t.Errorf("unban of an address inside a banned prefix: exit %d, %q%q; want 1 and a hint naming %s", code, o, e, atkNet)
	}
	tp.atk.wantRefused(t, ipv4, "its /24 still banned")
	if tp.v6 {
		d.banCLI("wordpress", atk6.String())
		tp.atk.waitRefused(t, ipv6, "banned by hand")
		tp.bys.wantServed(t, ipv6, "attacker banned by hand")
	}
	rules := tp.wantChains(t, "wordpress")
	if r := rules[ipv4]["lj-wordpress"]; len(r) != 1 || !strings.Contains(r[0], "-s "+atkNet.String()+" ") {
		t.Errorf("lj-wordpress holds %q, want one rule for %s", r, atkNet)
	}

	// unban --all lifts every ban, in both families.
	var rep struct {
		Unbanned []struct{ Target string } `json:"unbanned"`
	}
	if err := d.jsonCLI(&rep, "unban", "--all"); err != nil {
		t.Fatal(err)
	}
	if want := len(tp.fams()); len(rep.Unbanned) != want { // the /24, and the IPv6 address
		t.Errorf("unban --all lifted %+v, want %d bans", rep.Unbanned, want)
	}
	if bans := d.banned(); len(bans) != 0 {
		t.Errorf("after unban --all: %+v", bans)
	}
	for _, f := range tp.fams() {
		tp.atk.waitServed(t, f, "after unban --all")
	}
	rules = tp.wantChains(t, "wordpress")
	if n := len(rules[ipv4]["lj-wordpress"]) + len(rules[ipv6]["lj-wordpress"]); n != 0 {
		t.Errorf("after unban --all the chains hold %q", rules)
	}

	// Refusals, each with one clear message and a non-zero exit.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ban", "wordpress", srvAtk4.String()}, 1, "own address"},
		{[]string{"ban", "wordpress", srvAtk4.String(), "--force"}, 1, "own address"},
		{[]string{"ban", "wordpress", "10.200.0.0/16"}, 1, "own address"},
		{[]string{"ban", "wordpress", "192.0.2.7"}, 1, "ignoreip"},
		{[]string{"ban", "nosuchjail", atk4.String()}, 1, "nosuchjail"},
		{[]string{"ban", "wordpress", "10.200.1.999"}, 2, "10.200.1.999"},
		{[]string{"unban", "wordpress", bys4.String()}, 1, "not banned"},
	} {
		o, e, code := d.cli(c.args...)
		if code != c.code || !strings.Contains(e, c.want) || strings.Contains(e, "goroutine") {
			t.Errorf("logjail %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, o, e, c.code, c.want)
		}
	}
	if bans := d.banned(); len(bans) != 0 {
		t.Errorf("after the refusals: %+v", bans)
	}
	tp.bys.wantServed(t, ipv4, "after the refusals")
}

// TestBanExpires: with bantime = 3s, the ban ends 3 s after it started, within a second: the
// attacker's connections are refused until then and served after; nothing is left in the
// chain, and the window was reset by the ban (no second ban from the same failures).
func TestBanExpires(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const bantime = 3 * time.Second
	tp, d, log := webSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, 5, "1m", "3s")}
	})
	appendFile(t, log, failLines(atk4, 5, "expiry"))
	b := d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	if b.End == nil || b.End.Sub(b.Start) != bantime {
		t.Fatalf("ban %+v: want an end 3s after its start", b)
	}
	tp.atk.waitRefused(t, ipv4, "banned")
	tp.bys.wantServed(t, ipv4, "attacker banned")

	// Connect until it works.
	var served time.Time
	for deadline := b.End.Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		at := time.Now()
		if code, err := tp.atk.get(t, ipv4, "/"); err == nil && code == 200 {
			served = at
			break
		}
	}
	switch {
	case served.IsZero():
		t.Fatalf("the attacker is still refused 5s after its ban's end %v", b.End)
	case served.Before(b.End.Add(-50 * time.Millisecond)):
		t.Errorf("the attacker got through at %v, %v before its ban's end", served, b.End.Sub(served))
	case served.After(b.End.Add(1500 * time.Millisecond)):
		t.Errorf("the ban ended %v after its end (want within a second)", served.Sub(*b.End))
	default:
		t.Logf("the attacker got through %v after the ban's end", served.Sub(*b.End).Round(time.Millisecond))
	}
	if bans := d.banned(); len(bans) != 0 {
		t.Errorf("bans after the expiry: %+v", bans)
	}
	j := d.jail("wordpress")
	if j.Banned != 0 || j.TotalBanned != 1 || time.Duration(j.BanTime) != bantime {
		t.Errorf("status after the expiry: banned %d, total %d, bantime %v; want 0, 1, 3s", j.Banned, j.TotalBanned, time.Duration(j.BanTime))
	}
	if e := d.explain("wordpress", atk4); e.Failures != 0 {
		t.Errorf("explain after the ban: %d failures, want 0 (the count resets at a ban)", e.Failures)
	}
	rules := tp.wantChains(t, "wordpress")
	if r := rules[ipv4]["lj-wordpress"]; len(r) != 0 {
		t.Errorf("lj-wordpress after the expiry: %q", r)
	}
	tp.atk.wantServed(t, ipv4, "after the expiry")
}
