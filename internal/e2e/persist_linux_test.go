//go:build linux

package e2e

// Bans that outlive the daemon: the state database (STATE/logjail.db), --keep-on-stop, a
// crash, bans that ran out while the daemon was down, repeat offenders counted from the
// history, and neighbourhood bans of a whole /24.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/control"
	ljdaemon "github.com/logjail/logjail/internal/daemon"
	"github.com/logjail/logjail/internal/store"
)

// persistSetup is webSetup with more server flags (--keep-on-stop).
func persistSetup(t *testing.T, files func(log string) map[string]string, flags ...string) (*topo, *daemon, string) {
	t.Helper()
	tp := newTopo(t)
	log := filepath.Join(t.TempDir(), "access.log")
	writeFile(t, log, "")
	tp.startWeb(t, log)
	d := newDaemon(t, tp, newConfig(t, files(log)))
	d.flags = flags
	d.start("wordpress")
	d.waitFollowing("wordpress", log)
	return tp, d, log
}

// --- the probe ---------------------------------------------------------------------------

// probe connects from a peer to the site, again and again, while a test restarts the daemon:
// every connection that is made is a request the ban let through.
type probe struct {
	p     peer
	f     fam
	every time.Duration
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu    sync.Mutex
	phase string // what the test is doing: "stopping", "down", "starting", ...
	st    probeStats
}

type probeStats struct {
	attempts, served, refused, other int
	served1st                        string // when and in which phase the first one was served
	other1st                         error  // the first error that was not "connection refused"
}

func (s probeStats) String() string {
	return fmt.Sprintf("%d attempts: %d served, %d refused, %d other errors (first: %v)", s.attempts, s.served, s.refused, s.other, s.other1st)
}

// startProbe connects from p to the site over f every interval until end (or t's end).
func startProbe(t *testing.T, p peer, f fam, every time.Duration) *probe {
	pr := &probe{p: p, f: f, every: every, stop: make(chan struct{}), done: make(chan struct{}), phase: "running"}
	go pr.run()
	t.Cleanup(func() { pr.end() })
	return pr
}

func (pr *probe) run() {
	defer close(pr.done)
	tick := time.NewTicker(pr.every)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := dial(ctx, pr.p.ns, pr.p.srvAddr(pr.f))
		cancel()
		pr.mu.Lock()
		pr.st.attempts++
		switch {
		case err == nil:
			c.Close()
			if pr.st.served == 0 {
				pr.st.served1st = fmt.Sprintf("at %s, while %s", time.Now().Format("15:04:05.000"), pr.phase)
			}
			pr.st.served++
		case errors.Is(err, syscall.ECONNREFUSED):
			pr.st.refused++
		default:
			if pr.st.other == 0 {
				pr.st.other1st = err
			}
			pr.st.other++
		}
		pr.mu.Unlock()
		select {
		case <-pr.stop:
			return
		case <-tick.C:
		}
	}
}

func (pr *probe) setPhase(s string) {
	pr.mu.Lock()
	pr.phase = s
	pr.mu.Unlock()
}

// end stops the probe and returns its counts.
func (pr *probe) end() probeStats {
	pr.once.Do(func() { close(pr.stop) })
	<-pr.done
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.st
}

// check fails t if the probe was ever served or ran too few times to prove anything.
func (s probeStats) check(t *testing.T, p peer, minAttempts int) {
	t.Helper()
	t.Logf("%s's probe: %s", p.name, s)
	if s.served > 0 {
		t.Errorf("%s, banned, was served %d times during the restart (first %s): %s", p.name, s.served, s.served1st, s)
	}
	if s.refused < minAttempts {
		t.Errorf("%s's probe was refused only %d times, want at least %d to prove the ban held: %s", p.name, s.refused, minAttempts, s)
	}
}

// --- the daemon's log, the database, the kernel -------------------------------------------

// startLog is what the daemon logged during its n-th start (up to the next one).
func (d *daemon) startLog(n int) string {
	logs := d.logs.String()
	i := strings.Index(logs, fmt.Sprintf("=== start %d ===\n", n))
	if i < 0 {
		return ""
	}
	logs = logs[i:]
	if k := strings.Index(logs, fmt.Sprintf("=== start %d ===\n", n+1)); k >= 0 {
		logs = logs[:k]
	}
	return logs
}

var reconciledRE = regexp.MustCompile(`msg="kernel reconciled" jail=(\S+) kept=(\d+) banned=(\d+) lifted=(\d+) listed=(\S+)`)

// reconciled returns what the n-th start's reconciliation of jail did with the kernel: the
// rules it kept, the bans it put back, the rules it lifted. It waits for the log line.
func (d *daemon) reconciled(n int, jail string) (kept, banned, lifted int) {
	d.t.Helper()
	waitFor(d.t, settle, fmt.Sprintf("start %d's kernel reconciled log line of %s", n, jail), func() (bool, string) {
		for _, m := range reconciledRE.FindAllStringSubmatch(d.startLog(n), -1) {
			if m[1] == jail {
				kept, _ = strconv.Atoi(m[2])
				banned, _ = strconv.Atoi(m[3])
				lifted, _ = strconv.Atoi(m[4])
				if m[5] != "true" {
					d.t.Errorf("start %d: %s: the backend could not list its chain: %s", n, jail, m[0])
				}
				return true, ""
			}
		}
		return false, "no such line"
	})
	return kept, banned, lifted
}

// waitLog waits up to timeout for a line of the daemon's log to match re; it reports whether
// one did.
func (d *daemon) waitLog(timeout time.Duration, re string) bool {
	r := regexp.MustCompile(re)
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if r.MatchString(d.logs.String()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// waitConsumed waits until jail has read log to its end: its offset is the file's size. (Not
// waitLinesRead: a daemon that resumes at a saved position does not read every line again.)
func (d *daemon) waitConsumed(jail, log string) {
	d.t.Helper()
	waitFor(d.t, 10*time.Second, "all of "+log+" read", func() (bool, string) {
		fi, err := os.Stat(log)
		if err != nil {
			d.t.Fatal(err)
		}
		for _, f := range d.jail(jail).Files {
			if f.Path == log && f.Exists && f.Offset == fi.Size() {
				return true, ""
			}
		}
		return false, fmt.Sprintf("files %+v, size %d", d.jail(jail).Files, fi.Size())
	})
}

// openState opens the daemon's state database read-only, as `logjail report` does, with the
// daemon running or not. The caller closes it.
func (d *daemon) openState() *store.Store {
	d.t.Helper()
	st, err := store.OpenReadOnly(filepath.Join(d.state, ljdaemon.StateFile), store.Options{})
	if err != nil {
		d.t.Fatalf("open the state database read-only: %v", err)
	}
	return st
}

// storeBans returns the bans in force in the state database, by target.
func (d *daemon) storeBans() map[netip.Prefix]store.Ban {
	d.t.Helper()
	st := d.openState()
	defer st.Close()
	bans, err := st.ActiveBans()
	if err != nil {
		d.t.Fatalf("bans in force in the state database: %v", err)
	}
	out := map[netip.Prefix]store.Ban{}
	for _, b := range bans {
		if _, dup := out[b.Target]; dup {
			d.t.Errorf("the state database holds two bans in force of %v", b.Target)
		}
		out[b.Target] = b
	}
	return out
}

// history returns the history of target in jail, newest first.
func (d *daemon) history(jail string, target netip.Prefix) []store.HistBan {
	d.t.Helper()
	st := d.openState()
	defer st.Close()
	h, err := st.History(store.Query{Jail: jail, Target: target})
	if err != nil {
		d.t.Fatalf("history of %v: %v", target, err)
	}
	return h
}

// bannedBy returns the bans in force as `logjail banned --json` shows them, by target.
func (d *daemon) bannedBy() map[netip.Prefix]control.Ban {
	d.t.Helper()
	out := map[netip.Prefix]control.Ban{}
	for _, b := range d.banned() {
		p, err := control.ParseTarget(b.Target)
		if err != nil {
			d.t.Fatalf("banned: target %q: %v", b.Target, err)
		}
		if _, dup := out[p]; dup {
			d.t.Errorf("banned lists %v twice", p)
		}
		out[p] = b
	}
	return out
}

var ruleSource = regexp.MustCompile(` -s (\S+) `)

// chainTargets returns the source of each rule of lj-<jail> (IPv4), in the chain's order,
// duplicates included.
func (tp *topo) chainTargets(t *testing.T, jail string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, r := range tp.owned(t, ipv4).rules["lj-"+jail] {
		m := ruleSource.FindStringSubmatch(r)
		if m == nil {
			t.Errorf("rule %q of lj-%s has no source", r, jail)
			continue
		}
		p, err := netip.ParsePrefix(m[1])
		if err != nil {
			t.Errorf("rule %q: %v", r, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// sameMS reports whether a and b are the same millisecond (the database stores milliseconds).
func sameMS(a, b time.Time) bool { return a.UnixMilli() == b.UnixMilli() }

// kill sends sig to the daemon and waits for it to end (with a clean exit, for SIGTERM); the
// caller starts it again.
func (d *daemon) kill(sig syscall.Signal) {
	d.t.Helper()
	if err := d.p.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	if sig == syscall.SIGTERM {
		d.stopped(20 * time.Second)
		return
	}
	select {
	case <-d.p.done:
	case <-time.After(10 * time.Second):
		d.t.Fatalf("logjail server did not end within 10s of %v", sig)
	}
}

// --- traffic from other addresses of a peer --------------------------------------------------

// addAddrs gives p's interface more addresses (of its link's /16), so that traffic really
// comes from them.
func (p peer) addAddrs(t *testing.T, addrs ...netip.Addr) {
	t.Helper()
	for _, a := range addrs {
		run(t, "ip", "-n", p.ns, "addr", "add", a.String()+"/16", "dev", "eth0")
	}
}

// dialFrom connects from address src of namespace ns to addr.
func dialFrom(ctx context.Context, ns string, src netip.Addr, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		d := net.Dialer{Timeout: ioTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// wantServedFrom checks that p, from its address src, gets GET / answered with 200.
func (p peer) wantServedFrom(t *testing.T, src netip.Addr, why string) {
	t.Helper()
	c := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialFrom(ctx, p.ns, src, addr)
		},
	}}
	resp, err := c.Get(p.url(ipv4, "/"))
	if err != nil {
		t.Errorf("%s from %s (%s): GET /: %v, want 200", p.name, src, why, err)
		return
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s from %s (%s): GET /: HTTP %d, want 200", p.name, src, why, resp.StatusCode)
	}
}

// wantRefusedFrom checks that p's TCP connect from src is refused at once (the jail's REJECT).
func (p peer) wantRefusedFrom(t *testing.T, src netip.Addr, why string) {
	t.Helper()
	start := time.Now()
	c, err := dialFrom(context.Background(), p.ns, src, p.srvAddr(ipv4))
	if err == nil {
		c.Close()
		t.Errorf("%s from %s (%s): connected, want it banned", p.name, src, why)
		return
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > ioTimeout/2 {
		t.Errorf("%s from %s (%s): connect: %v after %v, want connection refused at once", p.name, src, why, err, time.Since(start))
	}
}

// servedAt connects from p until GET / is answered (every 25ms, until deadline) and returns
// when that attempt started (zero if never).
func (p peer) servedAt(t *testing.T, deadline time.Time) time.Time {
	for ; time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		at := time.Now()
		if code, err := p.get(t, ipv4, "/"); err == nil && code == http.StatusOK {
			return at
		}
	}
	return time.Time{}
}

// wantEndsAt checks that p, banned until end, is served again from end on, within 2s, not
// before.
func (p peer) wantEndsAt(t *testing.T, end time.Time) {
	t.Helper()
	served := p.servedAt(t, end.Add(5*time.Second))
	switch {
	case served.IsZero():
		t.Errorf("%s is still refused 5s after its ban's end %v", p.name, end.Format("15:04:05.000"))
	case served.Before(end.Add(-50 * time.Millisecond)):
		t.Errorf("%s got through at %v, %v before its ban's end", p.name, served.Format("15:04:05.000"), end.Sub(served))
	case served.After(end.Add(2 * time.Second)):
		t.Errorf("%s got through %v after its ban's end, want within 2s", p.name, served.Sub(end))
	default:
		t.Logf("%s got through %v after its ban's end", p.name, served.Sub(end).Round(time.Millisecond))
	}
}

// --- the tests -------------------------------------------------------------------------------

// TestRestartKeepsBans: with --keep-on-stop, a ban holds through a restart (SIGTERM, start).
// The attacker, banned for 20s by its failures, tries to connect every 25ms throughout and is
// never served: the rule stays in the kernel while the daemon is down, and the new start
// adopts it (kept, not lifted and put back). After the restart the ban is the same (start,
// end to the millisecond, count 1, failures), its one rule is in the chain, the bystander is
// served, and the ban ends at its original end, not before.
func TestRestartKeepsBans(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const bantime = 20 * time.Second
	tp, d, log := persistSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, 3, "1m", "20s")}
	}, "--keep-on-stop")

	appendFile(t, log, failLines(atk4, 3, "restart"))
	before := d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	if before.End == nil || before.End.Sub(before.Start) != bantime || before.Count != 1 || before.Failures != 3 {
		t.Fatalf("ban %+v: want 3 failures, count 1, an end 20s after its start", before)
	}
	tp.atk.waitRefused(t, ipv4, "banned")

	pr := startProbe(t, tp.atk, ipv4, 25*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // a few refusals with the daemon up, for comparison
	pr.setPhase("stopping")
	d.kill(syscall.SIGTERM)
	pr.setPhase("down")
	if r := tp.chainTargets(t, "wordpress"); !slices.Equal(r, []netip.Prefix{host(atk4)}) {
		t.Errorf("with the daemon stopped (--keep-on-stop), lj-wordpress holds %v, want the attacker's rule", r)
	}
	time.Sleep(200 * time.Millisecond) // probes while nothing runs
	pr.setPhase("starting")
	d.start("wordpress")
	pr.setPhase("started")
	after := d.waitBan("wordpress", hostTarget(atk4), settle)
	time.Sleep(300 * time.Millisecond) // and a few more once the jail has reconciled
	pr.end().check(t, tp.atk, 10)

	if kept, banned, lifted := d.reconciled(2, "wordpress"); kept != 1 || banned != 0 || lifted != 0 {
		t.Errorf("the restart's reconciliation kept %d, banned %d, lifted %d; want the one rule kept", kept, banned, lifted)
	}
	if after.End == nil || !sameMS(*after.End, *before.End) || !sameMS(after.Start, before.Start) {
		t.Errorf("after the restart the ban runs %v to %v, want %v to %v (the same, to the ms)", after.Start, after.End, before.Start, before.End)
	}
	if after.Count != 1 || after.Failures != before.Failures || after.Manual || len(after.Lines) != len(before.Lines) {
		t.Errorf("after the restart: %+v; want count 1, %d failures, %d lines, automatic", after, before.Failures, len(before.Lines))
	}
	if bans := d.banned(); len(bans) != 1 {
		t.Errorf("bans after the restart: %+v, want only the attacker's", bans)
	}
	tp.wantChains(t, "wordpress")
	if r := tp.chainTargets(t, "wordpress"); !slices.Equal(r, []netip.Prefix{host(atk4)}) {
		t.Errorf("after the restart lj-wordpress holds %v, want one rule for %s", r, atk4)
	}
	tp.atk.wantRefused(t, ipv4, "banned, after the restart")
	tp.bys.wantServed(t, ipv4, "attacker banned, after the restart")

	tp.atk.wantEndsAt(t, *before.End)
	if bans := d.banned(); len(bans) != 0 {
		t.Errorf("bans after the end: %+v", bans)
	}
	if r := tp.chainTargets(t, "wordpress"); len(r) != 0 {
		t.Errorf("lj-wordpress after the end: %v", r)
	}
}

// TestKillKeepsBans: the daemon is killed (SIGKILL: no cleanup) in the middle of a storm of
// 300 bans, with the attacker banned before it. Right after the kill, every rule in the kernel
// is of a ban the database holds in force (the store is written before the kernel). After the
// next start, once it has read its log again: every ban the database held in force is still
// there with its start and end, every address of the storm is banned, and the bans in force
// (`banned`), the database's bans in force and the kernel's rules are the same set, one rule
// each; the reconciliation kept every rule the crash left and lifted none. The attacker's
// probes are never served throughout.
func TestKillKeepsBans(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const storm = 300
	tp, d, log := persistSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, 3, "10m", "1h")}
	})
	appendFile(t, log, failLines(atk4, 3, "attacker"))
	d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	tp.atk.waitRefused(t, ipv4, "banned")
	pr := startProbe(t, tp.atk, ipv4, 25*time.Millisecond)

	var b strings.Builder
	bots := make([]netip.Addr, storm)
	for i := range bots {
		bots[i] = netip.AddrFrom4([4]byte{10, 77, byte(i / 200), byte(i%200 + 1)})
		b.WriteString(failLines(bots[i], 3, fmt.Sprintf("bot%d", i)))
	}
	appendFile(t, log, b.String())
	waitFor(t, 10*time.Second, "the storm's first bans in the kernel", func() (bool, string) {
		n := len(tp.owned(t, ipv4).rules["lj-wordpress"])
		return n >= 30, fmt.Sprintf("%d rules in lj-wordpress", n)
	})
	pr.setPhase("killing")
	d.kill(syscall.SIGKILL)
	pr.setPhase("down")

	// What the crash left: every rule is of a ban in force in the database.
	left := tp.chainTargets(t, "wordpress")
	inDB := d.storeBans()
	t.Logf("killed with %d rules in the kernel and %d bans in force in the database (of %d)", len(left), len(inDB), storm+1)
	if len(inDB) == storm+1 {
		t.Logf("every ban was in the database before the kill: the kill did not land during the storm")
	}
	seen := map[netip.Prefix]bool{}
	for _, p := range left {
		if _, ok := inDB[p]; !ok {
			t.Errorf("after the kill the kernel holds a rule for %v, which the database does not hold in force", p)
		}
		if seen[p] {
			t.Errorf("after the kill the kernel holds two rules for %v", p)
		}
		seen[p] = true
	}
	if _, ok := inDB[host(atk4)]; !ok {
		t.Fatalf("the attacker's ban, applied before the storm, is not in force in the database: %d bans", len(inDB))
	}

	pr.setPhase("starting")
	d.start("wordpress")
	pr.setPhase("started")
	d.waitBan("wordpress", hostTarget(atk4), settle)
	if kept, banned, lifted := d.reconciled(2, "wordpress"); kept != len(seen) || banned != len(inDB)-len(seen) || lifted != 0 {
		t.Errorf("the restart's reconciliation kept %d, banned %d, lifted %d; want %d kept (the rules left), %d banned (the database's others), 0 lifted",
			kept, banned, lifted, len(seen), len(inDB)-len(seen))
	}
	// The storm's lines are read again (the backlog, or from a saved position); the bans they
	// make are the ones the kill cut off.
	waitFor(t, 15*time.Second, "every storm address banned, every ban applied", func() (bool, string) {
		bans := d.banned()
		applied := 0
		for _, b := range bans {
			if b.Applied {
				applied++
			}
		}
		return len(bans) == storm+1 && applied == len(bans), fmt.Sprintf("%d bans, %d applied", len(bans), applied)
	})
	time.Sleep(300 * time.Millisecond)
	pr.end().check(t, tp.atk, 10)

	banned := d.bannedBy()
	now := d.storeBans()
	rules := tp.chainTargets(t, "wordpress")
	for p, s := range inDB {
		b, ok := banned[p]
		switch {
		case !ok:
			t.Errorf("lost: %v was in force in the database at the kill, and is not banned after the restart", p)
		case b.End == nil || !sameMS(*b.End, s.End) || !sameMS(b.Start, s.Start) || b.Count != s.Count:
			t.Errorf("%v: in the database at the kill %v to %v, count %d; after the restart %v to %v, count %d",
				p, s.Start, s.End, s.Count, b.Start, b.End, b.Count)
		}
	}
	for _, a := range append(bots, atk4) {
		if _, ok := banned[host(a)]; !ok {
			t.Errorf("lost: %v failed 3 times and is not banned after the restart", a)
		}
	}
	for p, b := range banned {
		s, ok := now[p]
		switch {
		case !ok:
			t.Errorf("%v is banned, but not in force in the database", p)
		case b.End == nil || !sameMS(*b.End, s.End):
			t.Errorf("%v: banned until %v, the database says %v", p, b.End, s.End)
		}
	}
	for p := range now {
		if _, ok := banned[p]; !ok {
			t.Errorf("stale: the database holds %v in force, which is not banned", p)
		}
	}
	count := map[netip.Prefix]int{}
	for _, p := range rules {
		count[p]++
	}
	for p, n := range count {
		if n != 1 {
			t.Errorf("doubled: %d rules for %v", n, p)
		}
		if _, ok := banned[p]; !ok {
			t.Errorf("stale: a rule for %v, which is not banned", p)
		}
	}
	for p := range banned {
		if count[p] == 0 {
			t.Errorf("lost: %v is banned (applied) and has no rule", p)
		}
	}
	tp.wantChains(t, "wordpress")
	tp.atk.wantRefused(t, ipv4, "banned, after the restart")
	tp.bys.wantServed(t, ipv4, "after the restart")
}

// TestBanExpiredWhileDown: a 3s ban, the daemon stopped with --keep-on-stop (its rule stays in
// the kernel) and started again after the ban's end. The ban is not in force after the start,
// its rule is gone, the attacker is served, and the database's history has it ended at its
// end with the reason "expired while stopped".
func TestBanExpiredWhileDown(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp, d, _ := persistSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, 3, "1m", "1h")}
	}, "--keep-on-stop")

	b := d.banCLI("wordpress", atk4.String(), "--for", "3s")
	if b.End == nil || b.End.Sub(b.Start) != 3*time.Second {
		t.Fatalf("ban %+v: want 3s", b)
	}
	tp.atk.waitRefused(t, ipv4, "banned")
	d.kill(syscall.SIGTERM)
	// Past the end, the rule the daemon left is still there: nothing runs to lift it.
	time.Sleep(time.Until(b.End.Add(300 * time.Millisecond)))
	if r := tp.chainTargets(t, "wordpress"); !slices.Equal(r, []netip.Prefix{host(atk4)}) {
		t.Fatalf("after the stop with --keep-on-stop and the ban's end, lj-wordpress holds %v, want the attacker's rule (else this test proves nothing)", r)
	}
	tp.atk.wantRefused(t, ipv4, "the daemon is down and left its rule")

	d.start("wordpress")
	if bans := d.banned(); len(bans) != 0 {
		t.Errorf("right after the start, bans in force: %+v; want none (it ran out while the daemon was down)", bans)
	}
	if kept, banned, lifted := d.reconciled(2, "wordpress"); kept != 0 || banned != 0 || lifted != 1 {
		t.Errorf("the restart's reconciliation kept %d, banned %d, lifted %d; want the stale rule lifted", kept, banned, lifted)
	}
	waitFor(t, settle, "lj-wordpress empty", func() (bool, string) {
		r := tp.chainTargets(t, "wordpress")
		return len(r) == 0, fmt.Sprintf("rules %v", r)
	})
	tp.atk.waitServed(t, ipv4, "its ban ran out while the daemon was down")
	tp.wantChains(t, "wordpress")
	if j := d.jail("wordpress"); j.Banned != 0 || j.NextUnban != nil {
		t.Errorf("status: %d banned, next unban %v; want none", j.Banned, j.NextUnban)
	}

	var h []store.HistBan
	waitFor(t, settle, "the ban ended in the database", func() (bool, string) {
		h = d.history("wordpress", host(atk4))
		return len(h) == 1 && !h[0].Active(), fmt.Sprintf("history %+v", h)
	})
	if h[0].Reason != "expired while stopped" || !sameMS(h[0].Start, b.Start) || !sameMS(h[0].End, *b.End) || !sameMS(h[0].Ended, *b.End) {
		t.Errorf("history: %+v; want the ban of %v to %v, ended at its end, reason %q", h[0], b.Start, b.End, "expired while stopped")
	}
	if s := d.storeBans(); len(s) != 0 {
		t.Errorf("bans in force in the database: %v", s)
	}
}

// TestRepeatOffenderLongerBan: with the shipped bantime.increment (on, factor 1) and a 4s
// bantime, the attacker's first ban lasts 4s; after it ran out and the daemon restarted, its
// next failures get a ban of 8s, count 2 (counted in the database's history); lifted by
// hand, its next failures get 16s, count 3. The history holds the three.
func TestRepeatOffenderLongerBan(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const bantime = 4 * time.Second
	// findtime 3s: the lines of a ban that ran out are too old to count when the restarted
	// daemon reads its log again.
	tp, d, log := persistSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, 3, "3s", "4s")}
	})
	wantBan := func(b control.Ban, count int, want time.Duration) {
		t.Helper()
		if b.Count != count || b.End == nil || b.End.Sub(b.Start) < want-time.Second || b.End.Sub(b.Start) > want+time.Second {
			var got time.Duration
			if b.End != nil {
				got = b.End.Sub(b.Start)
			}
			t.Errorf("ban %d: count %d, lasting %v; want count %d, %v", count, b.Count, got, count, want)
		} else {
			t.Logf("ban %d: count %d, lasting %v", count, b.Count, b.End.Sub(b.Start))
		}
	}

	appendFile(t, log, failLines(atk4, 3, "first"))
	b1 := d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	wantBan(b1, 1, bantime)
	waitFor(t, b1.End.Sub(b1.Start)+3*time.Second, "the first ban's end", func() (bool, string) {
		_, ok := d.ban("wordpress", hostTarget(atk4))
		return !ok, "still banned"
	})
	tp.atk.waitServed(t, ipv4, "the first ban ran out")

	d.kill(syscall.SIGTERM)
	d.start("wordpress")
	d.waitConsumed("wordpress", log)
	if bans := d.banned(); len(bans) != 0 {
		t.Fatalf("after the restart, bans %+v: want none (the old failures are older than findtime)", bans)
	}
	appendFile(t, log, failLines(atk4, 3, "second"))
	b2 := d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	wantBan(b2, 2, 2*bantime)
	tp.atk.waitRefused(t, ipv4, "banned again")
	if j := d.jail("wordpress"); j.Repeat != 1 {
		t.Errorf("status: repeat %d, want 1", j.Repeat)
	}
	if !strings.Contains(d.startLog(2), "count=2 bantime=8s") {
		t.Errorf("the daemon's log has no ban with count=2 bantime=8s")
	}

	d.mustCLI("unban", "wordpress", atk4.String())
	tp.atk.waitServed(t, ipv4, "unbanned by hand")
	appendFile(t, log, failLines(atk4, 3, "third"))
	b3 := d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	wantBan(b3, 3, 4*bantime)

	h := d.history("wordpress", host(atk4))
	var got []string
	for _, x := range h {
		got = append(got, fmt.Sprintf("count %d, %v, %q", x.Count, x.End.Sub(x.Start), x.Reason))
	}
	want := []string{`count 3, 16s, ""`, `count 2, 8s, "manual"`, `count 1, 4s, "expired"`}
	if !slices.Equal(got, want) {
		t.Errorf("history, newest first:\n got %q\nwant %q", got, want)
	}
}

// TestNeighbourhoodBan: with subnet.maxhosts = 3 within subnet.findtime = 1h, three failing
// addresses of the attacker's /24 (its own and two more on its interface) get the /24 banned
// with one rule: an address of it that never failed is refused, an address of the same link
// outside the /24 and the bystander are served; banned, status and the log say so. Two of
// three are not enough. Then three failing addresses of a /24 holding an ignoreip address are
// banned each, and that /24 is not.
func TestNeighbourhoodBan(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	const ignored = "10.201.2.99"
	tp, d, log := persistSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, 2, "1m", "1h",
			"subnet.maxhosts = 3", "subnet.findtime = 1h", "subnet.prefix4 = 24",
			"ignoreip = 127.0.0.0/8 ::1 "+ignored)}
	})
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	atk2, atk3, atkQuiet, atkOut := a("10.200.1.3"), a("10.200.1.4"), a("10.200.1.5"), a("10.200.2.7")
	tp.atk.addAddrs(t, atk2, atk3, atkQuiet, atkOut)
	ign1, ign2, ign3, ignQuiet := a("10.201.2.1"), a("10.201.2.2"), a("10.201.2.3"), a("10.201.2.5")
	tp.bys.addAddrs(t, ign1, ign2, ign3, ignQuiet)
	hood := atkNet // 10.200.1.0/24
	for _, src := range []netip.Addr{atk4, atkQuiet, atkOut} {
		tp.atk.wantServedFrom(t, src, "before any failure")
	}

	// Two addresses of the /24: two bans, no neighbourhood yet.
	appendFile(t, log, failLines(atk4, 2, "n1")+failLines(atk2, 2, "n2"))
	d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	d.waitBan("wordpress", hostTarget(atk2), 5*time.Second)
	if _, ok := d.ban("wordpress", hood.String()); ok {
		t.Errorf("%v banned after two of its addresses, want three", hood)
	}
	tp.atk.wantServedFrom(t, atkQuiet, "two addresses of its /24 banned")

	// The third.
	appendFile(t, log, failLines(atk3, 2, "n3"))
	d.waitBan("wordpress", hostTarget(atk3), 5*time.Second)
	nb := d.waitBan("wordpress", hood.String(), 5*time.Second)
	if !nb.Neighbourhood || nb.Manual || nb.End == nil || nb.End.Sub(nb.Start) != time.Hour {
		t.Errorf("the /24's ban %+v: want a neighbourhood ban, automatic, for the bantime 1h", nb)
	}
	for p, b := range d.bannedBy() {
		if b.Neighbourhood != (p == hood) {
			t.Errorf("ban of %v: neighbourhood %v", p, b.Neighbourhood)
		}
	}
	if !regexp.MustCompile(`msg="neighbourhood ban" jail=wordpress prefix=` + regexp.QuoteMeta(hood.String()) + ` hosts=3`).MatchString(d.logs.String()) {
		t.Errorf("the daemon's log has no neighbourhood ban of %v with hosts=3", hood)
	}
	if j := d.jail("wordpress"); j.Neighbourhoods != 1 {
		t.Errorf("status: neighbourhoods %d, want 1", j.Neighbourhoods)
	}
	tp.wantChains(t, "wordpress")
	n := 0
	for _, p := range tp.chainTargets(t, "wordpress") {
		if p == hood {
			n++
		}
	}
	if n != 1 {
		t.Errorf("lj-wordpress holds %d rules for %v, want 1: %v", n, hood, tp.chainTargets(t, "wordpress"))
	}
	tp.atk.wantRefusedFrom(t, atkQuiet, "never failed, but its /24 is banned")
	tp.atk.wantRefusedFrom(t, atk4, "banned")
	tp.atk.wantServedFrom(t, atkOut, "same link, outside the banned /24")
	tp.bys.wantServed(t, ipv4, "outside the banned /24")

	// A /24 holding an ignoreip address is never banned, its failing addresses are.
	appendFile(t, log, failLines(ign1, 2, "i1")+failLines(ign2, 2, "i2")+failLines(ign3, 2, "i3"))
	for _, x := range []netip.Addr{ign1, ign2, ign3} {
		d.waitBan("wordpress", hostTarget(x), 5*time.Second)
	}
	ignHood := netip.MustParsePrefix("10.201.2.0/24")
	if !d.waitLog(settle, `msg="neighbourhood not banned: it holds an ignored address" jail=wordpress prefix=`+regexp.QuoteMeta(ignHood.String())) {
		t.Errorf("the daemon's log does not say that %v, which holds ignoreip %s, is not banned", ignHood, ignored)
	}
	if b, ok := d.ban("wordpress", ignHood.String()); ok {
		t.Errorf("%v, which holds ignoreip %s, is banned: %+v", ignHood, ignored, b)
	}
	if j := d.jail("wordpress"); j.Neighbourhoods != 1 {
		t.Errorf("status: neighbourhoods %d, want still 1", j.Neighbourhoods)
	}
	for _, p := range tp.chainTargets(t, "wordpress") {
		if ignHood.Overlaps(p) && p.Bits() < 32 {
			t.Errorf("lj-wordpress holds a rule for %v", p)
		}
	}
	tp.bys.wantRefusedFrom(t, ign1, "banned")
	tp.bys.wantServedFrom(t, ignQuiet, "its /24 holds an ignoreip address")
	tp.bys.wantServed(t, ipv4, "never failed")
}
