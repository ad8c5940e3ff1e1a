package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/logjail/logjail/internal/store"
)

// The start-up benchmark: the daemon's namespace and a client namespace joined by a veth
// pair; a TCP listener on the jail's port in the daemon's namespace; probes from the client
// namespace, one from a banned address and one from a bystander, every -probe-every.
const (
	startupJail = "sshd"
	startupPort = 2222
	srvLink     = "ljsrv" // the veth end in the daemon's namespace
	cliLink     = "ljcli" // the one in the client namespace
)

var (
	srvAddr       = netip.MustParseAddr("10.250.0.1") // the listener
	probeAddr     = netip.MustParseAddr("10.250.0.2") // banned: one of the bans in force
	bystanderAddr = netip.MustParseAddr("10.250.0.3") // never banned: proves the listener answers
)

// startPhase is one start of the daemon on the same state database and namespace.
type startPhase struct {
	kind daemonKind
	name string // cold, warm, crash
	how  string // how the daemon before it was stopped
	bans int    // bans in force in the database

	stop time.Duration // from the signal to the old daemon's exit (warm, crash)
	// From the new daemon's exec, -1 when not reached:
	socketAt     time.Duration // the first status reply
	servingAt    time.Duration // the first status reply that lists the jail running
	reconciledAt time.Duration // the log's "kernel reconciled" (its own timestamp)
	appliedAt    time.Duration // every ban's rule in the kernel (see startupPhase)
	verifiedAt   time.Duration // banned --json said every ban applied
	kept, banned int           // of the reconcile: rules adopted, rules added
	lifted       int
	rulesAdded   int       // ban rules nft monitor saw added during the phase
	kernelRules  int       // iptables -S of the chain at the end
	applied      int       // banned --json: bans applied, at the end
	listed       int       // banned --json: bans listed
	mem          memStatus // right after every ban was applied
	cpu          cpuTimes  // the new daemon's, from its start until then
	other, steal float64   // CPUs used by other processes of the machine meanwhile, and stolen
	probes       probeStats
	// Cold start: when the probe's rule was seen, and the first refused probe (from exec).
	probeRuleAt, firstRefusedAt time.Duration
	throughAfterRule            int // probes from the banned address that got through after its rule was seen
	// Cold start: when nft monitor saw the first quarter, half, three quarters and all of the
	// rules the reconcile added (from exec).
	quarters   []time.Duration
	logLines   int
	errLines   int // fail2ban: ERROR lines in its log during the phase
	cutSkipped int // "conntrack queue full" warnings in the log
	errors     []string
}

// startupBench writes a state database with -startup-bans bans in force, then starts logjail on
// it three times in one namespace: cold (no rule in the kernel), warm (after SIGTERM with
// --keep-on-stop, the rules stay) and after a crash (SIGKILL), with a probe from a banned
// address every -probe-every throughout.
func (b *bench) startupBench() error {
	type want struct {
		kind daemonKind
		n    int
	}
	wants := []want{{kindLogjail, b.o.startupBans}}
	if b.o.f2b && b.o.f2bStartupBans > 0 {
		// fail2ban bans one iptables call at a time: it gets fewer bans, and logjail runs
		// that number too, for a comparison on the same workload.
		if b.o.f2bStartupBans != b.o.startupBans {
			wants = append(wants, want{kindLogjail, b.o.f2bStartupBans})
		}
		wants = append(wants, want{kindFail2ban, b.o.f2bStartupBans})
	}
	var order []int
	byN := map[int][]*startPhase{}
	notesByN := map[int][]string{}
	for _, w := range wants {
		b.progress("%s: start-up with %d bans in force ...", w.kind, w.n)
		phases, note, err := b.startupRun(w.kind, w.n)
		if err != nil {
			if err := b.failedRun(fmt.Sprintf("startup, %s, %d bans", w.kind, w.n), err); err != nil {
				return err
			}
			continue
		}
		if _, ok := byN[w.n]; !ok {
			order = append(order, w.n)
		}
		byN[w.n] = append(byN[w.n], phases...)
		notesByN[w.n] = append(notesByN[w.n], note)
	}
	header := []string{"daemon", "start", "bans", "old one stopped in", "socket answers", "jail serving", "reconciled", "all applied",
		"rules added", "rules in kernel", "applied (banned)", "probes from banned", "got through", "VmRSS", "VmHWM", "cpu self", "cpu children", "other load"}
	for _, n := range order {
		var rows [][]string
		notes := notesByN[n]
		hasF2b := false
		for _, p := range byN[n] {
			stop := "-"
			if p.how != "" {
				stop = fmtDur(p.stop)
			}
			rows = append(rows, []string{string(p.kind), p.name + p.howLabel(), fmt.Sprint(p.bans), stop, fmtDur(p.socketAt), fmtDur(p.servingAt), fmtDur(p.reconciledAt),
				fmtDur(p.appliedAt), fmt.Sprint(p.rulesAdded), fmt.Sprint(p.kernelRules), fmt.Sprintf("%d/%d", p.applied, p.listed),
				fmt.Sprint(p.probes.n), fmt.Sprint(p.probes.through), mib(p.mem.RSS), mib(p.mem.HWM),
				fmt.Sprintf("%.2f s", p.cpu.Self.Seconds()), fmt.Sprintf("%.2f s", p.cpu.Children.Seconds()), fmtLoad(p.other, p.steal)})
			notes = append(notes, p.notes()...)
			b.emit(p.result(b.o.probeEvery))
			hasF2b = hasF2b || p.kind == kindFail2ban
		}
		notes = append(notes,
			"times from the new daemon's exec; socket answers: first status reply; jail serving: first reply listing the jail (logjail: its backend started: chain listed, adopted);",
			`reconciled: logjail's "kernel reconciled" log line (its own ms timestamp); all applied: the later of that and the last ban rule nft monitor saw added;`,
			"  then checked with banned --json (applied/listed) and iptables -S (rules in kernel)",
			fmt.Sprintf("probes: TCP connects from the banned address %s to the jail's port every %s, during the whole stop and start (cold: from the exec); got through = connected", probeAddr, b.o.probeEvery),
			"VmRSS / VmHWM: of the new daemon right after every ban was applied; cpu children: iptables it waited for;",
			"  other load: CPUs busy with anything but the daemon and ljbench from the exec until every ban was applied (the machine is shared)")
		if hasF2b {
			notes = append(notes,
				"fail2ban: dbfile with the bans in force (bips, bans), restored at start one iptables call each (iptables-multiport); it has no --keep-on-stop: its stop removes its chain;",
				fmt.Sprintf("  its REJECT answers with ICMP port-unreachable, which the kernel rate-limits per peer: most blocked probes time out (%s) instead of being refused; both count as not through;", probeTimeout),
				"  asked with fail2ban-client (a Python process a call, about 0.2 s: its socket and serving times are that coarse); applied (banned): its \"Currently banned\"")
		}
		table(b.out, fmt.Sprintf("start-up with %d bans in force (jail %s, port %d, iptables-nft)", n, startupJail, startupPort), header, rows, notes...)
	}
	return nil
}

func (p *startPhase) howLabel() string {
	if p.how == "" {
		return ""
	}
	return " (" + p.how + ")"
}

func (p *startPhase) notes() []string {
	var out []string
	rec := ""
	if p.kind == kindLogjail {
		rec = fmt.Sprintf("reconcile kept %d, banned %d, lifted %d; ", p.kept, p.banned, p.lifted)
	}
	out = append(out, fmt.Sprintf("%s %s: %s%d probes from the banned address in the window (%d refused, %d other), %d from the bystander (%d failed); log %d lines",
		p.kind, p.name, rec, p.probes.n, p.probes.refused, p.probes.other, p.probes.bystander, p.probes.bystanderFailed, p.logLines))
	if p.name == "cold" {
		out = append(out, fmt.Sprintf("%s cold: the probe address's rule was seen at %s, its first refused probe at %s; probes that got through after its rule was seen: %d (before it: expected)",
			p.kind, fmtDur(p.probeRuleAt), fmtDur(p.firstRefusedAt), p.throughAfterRule))
	}
	if len(p.quarters) == 4 {
		q := p.quarters
		out = append(out, fmt.Sprintf("%s %s: rules seen in the kernel: a quarter at %s, half at %s, three quarters at %s, all at %s (%.0f, %.0f, %.0f, %.0f rules/s by quarter)",
			p.kind, p.name, fmtDur(q[0]), fmtDur(q[1]), fmtDur(q[2]), fmtDur(q[3]), p.quarterRate(0), p.quarterRate(1), p.quarterRate(2), p.quarterRate(3)))
	}
	if p.errLines > 0 {
		out = append(out, fmt.Sprintf("%s %s: %d ERROR lines in its log", p.kind, p.name, p.errLines))
	}
	if p.cutSkipped > 0 {
		out = append(out, fmt.Sprintf("%s %s: %d \"conntrack queue full\" warnings (cuts waiting for a walk of the conntrack table, queue of 4096)", p.kind, p.name, p.cutSkipped))
	}
	if p.verifiedAt >= 0 {
		out = append(out, fmt.Sprintf("%s %s: banned --json reported every ban applied at %s", p.kind, p.name, fmtDur(p.verifiedAt)))
	}
	if p.probes.otherSample != "" {
		out = append(out, fmt.Sprintf("%s %s: a probe neither connected nor refused: %s", p.kind, p.name, p.probes.otherSample))
	}
	for _, e := range p.errors {
		out = append(out, fmt.Sprintf("%s %s: %s", p.kind, p.name, e))
	}
	return out
}

// quarterRate is the rate at which the rules of quarter i went in.
func (p *startPhase) quarterRate(i int) float64 {
	from := max(p.reconciledAt, 0)
	if i > 0 {
		from = p.quarters[i-1]
	}
	return ratio(float64(p.bans)/4, (p.quarters[i] - from).Seconds())
}

// quarterTimes returns when (from t0) a quarter, half, three quarters and all of n rules had
// been seen, from the first time each address's rule was; nil when fewer were seen.
func quarterTimes(seen map[netip.Addr]time.Time, t0 time.Time, n int) []time.Duration {
	if n < 4 || len(seen) < n {
		return nil
	}
	ts := make([]time.Duration, 0, len(seen))
	for _, t := range seen {
		ts = append(ts, t.Sub(t0))
	}
	slices.Sort(ts)
	return []time.Duration{ts[n/4-1], ts[n/2-1], ts[3*n/4-1], ts[n-1]}
}

func (p *startPhase) result(every time.Duration) result {
	sec := func(d time.Duration) any {
		if d < 0 {
			return nil
		}
		return d.Seconds()
	}
	r := result{"bench": "startup", "daemon": string(p.kind), "phase": p.name, "stopped_by": p.how, "bans": p.bans,
		"socket_s": sec(p.socketAt), "serving_s": sec(p.servingAt), "reconciled_s": sec(p.reconciledAt), "applied_s": sec(p.appliedAt),
		"verified_s": sec(p.verifiedAt), "kept": p.kept, "banned": p.banned, "lifted": p.lifted, "rules_added": p.rulesAdded,
		"kernel_rules": p.kernelRules, "applied": p.applied, "listed": p.listed,
		"probe_every_ms": float64(every) / float64(time.Millisecond), "probes": p.probes.n, "probes_through": p.probes.through,
		"probes_refused": p.probes.refused, "probes_other": p.probes.other, "bystander_probes": p.probes.bystander,
		"bystander_failed": p.probes.bystanderFailed, "rss_bytes": p.mem.RSS, "hwm_bytes": p.mem.HWM,
		"cpu_self_s": p.cpu.Self.Seconds(), "cpu_children_s": p.cpu.Children.Seconds(), "log_lines": p.logLines,
		"conntrack_queue_full": p.cutSkipped, "log_errors": p.errLines, "other_load_cpus": p.other, "steal_cpus": p.steal, "errors": p.errors}
	if p.how != "" {
		r["stop_s"] = p.stop.Seconds()
	}
	if p.name == "cold" {
		r["probe_rule_s"], r["probe_first_refused_s"], r["probes_through_after_rule"] = sec(p.probeRuleAt), sec(p.firstRefusedAt), p.throughAfterRule
		if len(p.quarters) == 4 {
			var qs []float64
			for _, q := range p.quarters {
				qs = append(qs, q.Round(time.Millisecond).Seconds())
			}
			r["rules_quarters_s"] = qs
		}
	}
	return r
}

// fmtDur prints a duration from a phase's start; negative is "-".
func fmtDur(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	if ms := d.Round(time.Millisecond); ms < time.Second {
		return fmt.Sprintf("%d ms", ms.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// startupRun sets the namespaces up, writes the database and runs the three starts of one
// daemon.
func (b *bench) startupRun(kind daemonKind, n int) ([]*startPhase, string, error) {
	tag := "start"
	if kind == kindFail2ban {
		tag = "f2bstart"
	}
	d, err := b.newDaemon(kind, tag, startupJail)
	if err != nil {
		return nil, "", err
	}
	defer d.close()
	cns, err := b.env.newNS("probe")
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err := b.env.delNS(cns); err != nil {
			fmt.Fprintln(os.Stderr, "ljbench:", err)
		}
	}()
	if err := vethPair(d.ns, cns); err != nil {
		return nil, "", err
	}
	// The listener and the probes stop by themselves after limit; every wait below is shorter.
	limit := 3*b.o.capStartup + 10*time.Minute
	ln, err := startListener(b.env, d.ns, d.dir, netip.AddrPortFrom(srvAddr, startupPort), limit)
	if err != nil {
		return nil, "", err
	}
	defer ln.stop()
	logPath := filepath.Join(d.dir, "auth.log") // stays empty
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		return nil, "", err
	}
	js := jailSetup{name: startupJail, logpath: logPath, maxretry: 5, findtime: "10m", bantime: "1d", port: fmt.Sprint(startupPort)}

	// The state database, written before the measured starts.
	var conf, dbNote string
	t0 := time.Now()
	switch kind {
	case kindLogjail:
		js.extra = []string{"port = " + js.port}
		if conf, err = d.logjailConf(b, js); err != nil {
			return nil, "", err
		}
		stateDB := filepath.Join(d.dir, "state", "logjail.db")
		probePos, err := writeStartupDB(stateDB, n, t0)
		if err != nil {
			return nil, "", fmt.Errorf("write the state database: %w", err)
		}
		dbDur := time.Since(t0)
		size := fileSize(stateDB) + fileSize(stateDB+"-wal")
		dbNote = fmt.Sprintf("logjail: state database with %d bans in force (the probe address %s is number %d in start order), written in %.2f s (PutBanAsync + Flush), %s",
			n, probeAddr, probePos+1, dbDur.Seconds(), mib(size))
		b.emit(result{"bench": "startup", "daemon": string(kind), "phase": "db", "bans": n, "write_s": dbDur.Seconds(), "db_bytes": size, "probe_position": probePos + 1})
	case kindFail2ban:
		js.f2bDB = filepath.Join(d.dir, "fail2ban.sqlite3")
		if conf, err = d.f2bConf(b, js); err != nil {
			return nil, "", err
		}
		probePos, err := b.f2bInitDB(d, conf, js.f2bDB, n, t0)
		if err != nil {
			return nil, "", fmt.Errorf("fail2ban's database: %w", err)
		}
		dbNote = fmt.Sprintf("fail2ban: dbfile with %d bans in force (the probe address %s is number %d in the order fail2ban restores them, by address as text), made by fail2ban-server and filled in %.2f s, %s",
			n, probeAddr, probePos+1, time.Since(t0).Seconds(), mib(fileSize(js.f2bDB)))
	}
	b.progress("%s", dbNote)

	pr, err := startProber(b.env, cns, d.dir, netip.AddrPortFrom(srvAddr, startupPort), b.o.probeEvery, limit, probeAddr, bystanderAddr)
	if err != nil {
		return nil, "", err
	}
	defer pr.stop()
	// The probes work: the bystander connects before any daemon runs.
	if !pr.waitFor(bystanderAddr, "ok", 5*time.Second) {
		return nil, "", fmt.Errorf("no probe from %s connected to %s:%d within 5 s: the network between the namespaces does not work", bystanderAddr, srvAddr, startupPort)
	}

	restart := "SIGTERM, --keep-on-stop"
	phase := b.startupPhase
	if kind == kindFail2ban {
		restart, phase = "SIGTERM", b.f2bPhase
	}
	var phases []*startPhase
	for _, ph := range []struct {
		name, how string
		sig       syscall.Signal
	}{{"cold", "", 0}, {"warm", restart, syscall.SIGTERM}, {"crash", "SIGKILL", syscall.SIGKILL}} {
		p, err := phase(d, conf, pr, ph.name, ph.how, ph.sig, n)
		if p != nil {
			phases = append(phases, p)
			b.progress("%s: %s start: serving at %s, all applied at %s; %d probes from the banned address, %d got through",
				kind, ph.name, fmtDur(p.servingAt), fmtDur(p.appliedAt), p.probes.n, p.probes.through)
		}
		if err != nil {
			if len(phases) > 0 && b.ctx.Err() == nil {
				_ = b.failedRun(fmt.Sprintf("startup, %s, %s start", kind, ph.name), err)
				return phases, dbNote, nil
			}
			return nil, "", err
		}
		// A moment of probes against the daemon at rest before it is stopped again.
		time.Sleep(time.Second)
	}
	return phases, dbNote, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// stopWith stops the running daemon with sig and waits for it to exit; it returns how long
// that took, and a note when a SIGTERM did not end in a clean exit.
func (b *bench) stopWith(d *daemon, sig syscall.Signal) (time.Duration, string, error) {
	if d.proc == nil || !d.proc.running() {
		return 0, "", errors.New("no daemon running to stop")
	}
	t := time.Now()
	_ = d.proc.cmd.Process.Signal(sig)
	select {
	case <-d.proc.done:
	case <-time.After(60 * time.Second):
		return 0, "", fmt.Errorf("%s did not exit within 60 s of %v", d.kind, sig)
	case <-b.ctx.Done():
		return 0, "", b.ctx.Err()
	}
	el := time.Since(t)
	note := ""
	if sig == syscall.SIGTERM && d.proc.err != nil {
		note = fmt.Sprintf("%s exited with %v after SIGTERM", d.kind, d.proc.err)
	}
	d.env.forget(d.proc)
	return el, note, nil
}

// beginPhase makes the record of one start and stops the running daemon with sig first (none
// for a cold start); from is when the phase began.
func (b *bench) beginPhase(d *daemon, kind daemonKind, name, how string, sig syscall.Signal, n int) (*startPhase, time.Time, error) {
	p := &startPhase{kind: kind, name: name, how: how, bans: n, socketAt: -1, servingAt: -1, reconciledAt: -1, appliedAt: -1, verifiedAt: -1,
		probeRuleAt: -1, firstRefusedAt: -1}
	from := time.Now()
	if sig != 0 {
		stop, note, err := b.stopWith(d, sig)
		if err != nil {
			return nil, from, err
		}
		p.stop = stop
		if note != "" {
			p.errors = append(p.errors, note)
		}
	}
	return p, from, nil
}

// startupPhase stops the running daemon with sig (none for the cold start), starts it again
// with --keep-on-stop and measures the start. all applied: once the daemon logged "kernel
// reconciled" with the number of rules it had to add, the time nft monitor saw the last of
// those added (or the reconcile itself when there were none); banned --json then checks.
func (b *bench) startupPhase(d *daemon, conf string, pr *prober, name, how string, sig syscall.Signal, n int) (*startPhase, error) {
	p, from, err := b.beginPhase(d, kindLogjail, name, how, sig, n)
	if err != nil {
		return nil, err
	}
	capWait := b.o.capStartup
	adds0, _ := d.mon.ruleAdds()
	// Taken after the old daemon was reaped: its whole life's CPU went to ljbench's children's
	// time then, and is no other load.
	sys0 := snapSys()
	t0 := time.Now()
	if sig == 0 {
		from = t0
	}
	if err := d.execLogjail(b, conf, "logjail-"+name+".log", []string{"--keep-on-stop"}, nil); err != nil {
		return nil, err
	}
	fail := func(what string) error {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%s start: %s\n--- last lines of %s ---\n%s", name, what, d.log, d.logTail(15))
	}
	for {
		if !d.proc.running() {
			return nil, fail(fmt.Sprintf("logjail exited: %v", d.proc.err))
		}
		if st, err := d.cl.Status(""); err == nil {
			if p.socketAt < 0 {
				p.socketAt = time.Since(t0)
			}
			if len(st.Broken) > 0 {
				return nil, fail(fmt.Sprintf("broken jails: %+v", st.Broken))
			}
			if len(st.Jails) == 1 && st.Jails[0].Name == startupJail {
				p.servingAt = time.Since(t0)
				break
			}
		}
		if time.Since(t0) > capWait || b.ctx.Err() != nil {
			return nil, fail(fmt.Sprintf("jail %s not serving within %s", startupJail, capWait))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if name == "cold" {
		if err := d.checkNS(); err != nil {
			return nil, err
		}
	}
	lw := &logWatch{path: d.log}
	var rec string
	for rec == "" {
		rec = lw.find(`msg="kernel reconciled"`)
		if rec != "" {
			break
		}
		if !d.proc.running() {
			return nil, fail(fmt.Sprintf("logjail exited: %v", d.proc.err))
		}
		if time.Since(t0) > capWait || b.ctx.Err() != nil {
			return nil, fail(fmt.Sprintf("no \"kernel reconciled\" within %s", capWait))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if at, ok := logTime(rec); ok {
		p.reconciledAt = at.Sub(t0)
	}
	p.kept, _ = strconv.Atoi(logAttr(rec, "kept"))
	p.banned, _ = strconv.Atoi(logAttr(rec, "banned"))
	p.lifted, _ = strconv.Atoi(logAttr(rec, "lifted"))

	// The rules the reconcile added, as nft monitor sees them.
	var last time.Time
	for {
		adds, at := d.mon.ruleAdds()
		p.rulesAdded, last = adds-adds0, at
		if p.rulesAdded >= p.banned {
			break
		}
		if !d.proc.running() {
			return nil, fail(fmt.Sprintf("logjail exited: %v", d.proc.err))
		}
		if time.Since(t0) > capWait || b.ctx.Err() != nil {
			p.errors = append(p.errors, fmt.Sprintf("nft monitor saw %d of the %d rules the reconcile added within %s", p.rulesAdded, p.banned, capWait))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.rulesAdded >= p.banned {
		p.appliedAt = p.reconciledAt
		if p.banned > 0 && last.Sub(t0) > p.appliedAt {
			p.appliedAt = last.Sub(t0)
		}
	}
	p.mem, p.cpu = d.mem(), d.cpu()
	p.other, p.steal = otherLoad(sys0, snapSys(), p.cpu)

	// banned --json: every ban listed and applied (a 100,000-ban reply is tens of MB: asked
	// for only now, so that it weighs on nothing measured above).
	for {
		rep, err := d.cl.Banned(startupJail)
		if err != nil {
			p.errors = append(p.errors, "banned: "+err.Error())
			break
		}
		p.listed, p.applied = len(rep.Bans), 0
		for _, x := range rep.Bans {
			if x.Applied {
				p.applied++
			}
		}
		if p.applied >= n && p.listed == n {
			p.verifiedAt = time.Since(t0)
			break
		}
		if time.Since(t0) > capWait || b.ctx.Err() != nil {
			p.errors = append(p.errors, fmt.Sprintf("banned --json: %d of %d bans listed, %d applied, after %s", p.listed, n, p.applied, capWait))
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	if out, err := inNS(b.ctx, d.ns, "iptables", "-w", "10", "-S", d.chain); err == nil {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "-A "+d.chain+" ") {
				p.kernelRules++
			}
		}
	} else {
		p.errors = append(p.errors, err.Error())
	}
	if p.kernelRules != n {
		p.errors = append(p.errors, fmt.Sprintf("the chain %s holds %d rules, %d bans are in force", d.chain, p.kernelRules, n))
	}
	p.probeFigures(d, pr, from, time.Now(), t0)
	p.logLines, p.cutSkipped = countLog(d.log, "conntrack queue full")
	return p, nil
}

// probeFigures sums up the probes of a phase, from the signal (or exec) at from until to, t0
// being the new daemon's exec.
func (p *startPhase) probeFigures(d *daemon, pr *prober, from, to, t0 time.Time) {
	p.probes = pr.stats(probeAddr, bystanderAddr, from, to)
	if p.probes.n == 0 {
		p.errors = append(p.errors, "no probe ran in the window")
	}
	if p.probes.bystanderFailed > 0 {
		p.errors = append(p.errors, fmt.Sprintf("%d of %d probes from the bystander %s failed: the listener did not answer", p.probes.bystanderFailed, p.probes.bystander, bystanderAddr))
	}
	if p.name == "cold" {
		if at, ok := d.mon.banTime(probeAddr); ok {
			p.probeRuleAt = at.Sub(t0)
			p.throughAfterRule = pr.stats(probeAddr, bystanderAddr, at, to).through
		}
		if !p.probes.firstRefused.IsZero() {
			p.firstRefusedAt = p.probes.firstRefused.Sub(t0)
		}
		p.quarters = quarterTimes(d.mon.snapshot(), t0, p.bans)
		if p.throughAfterRule > 0 {
			p.errors = append(p.errors, fmt.Sprintf("%d probes from the banned address got through after its rule was in", p.throughAfterRule))
		}
	} else if p.probes.through > 0 {
		p.errors = append(p.errors, fmt.Sprintf("%d of %d probes from the banned address got through during the restart, from %s to %s after the signal",
			p.probes.through, p.probes.n, fmtDur(p.probes.firstThrough.Sub(from)), fmtDur(p.probes.lastThrough.Sub(from))))
	}
}

// f2bInitDB lets fail2ban-server make its database (started until its jail runs, then
// SIGTERM), then writes n bans in force of the jail into it the way fail2ban keeps them: bips
// (what it restores) and bans (its history). Times of ban are spread over the two hours
// before now, bantime is the jail's (a day). The probe address is the one in the middle of
// them by time; fail2ban restores them ordered by address as text, and the position returned
// is the probe's in that order.
func (b *bench) f2bInitDB(d *daemon, conf, path string, n int, now time.Time) (int, error) {
	if err := d.execFail2ban(conf); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if !d.proc.running() {
			return 0, fmt.Errorf("fail2ban-server exited at start: %v\n%s", d.proc.err, d.logTail(15))
		}
		if out, err := f2bClient(b, d, "status", startupJail); err == nil && strings.Contains(out, "File list:") {
			break
		}
		if err := b.ctx.Err(); err != nil {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("fail2ban-server: jail %s not running within 60 s\n%s", startupJail, d.logTail(15))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, _, err := b.stopWith(d, syscall.SIGTERM); err != nil {
		return 0, err
	}
	d.proc = nil
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() // after Commit, a no-op
	bips, err := tx.Prepare("INSERT INTO bips(ip, jail, timeofban, bantime, bancount, data) VALUES (?, ?, ?, ?, 1, ?)")
	if err != nil {
		return 0, fmt.Errorf("not a fail2ban database? %w", err)
	}
	bans, err := tx.Prepare("INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES (?, ?, ?, ?, 1, ?)")
	if err != nil {
		return 0, fmt.Errorf("not a fail2ban database? %w", err)
	}
	pos := n / 2
	span := 2 * time.Hour
	var line []byte
	for i := range n {
		a := benchAddr(i)
		if i == pos {
			a = probeAddr
		}
		at := now.Add(-span + time.Duration(i)*span/time.Duration(n+1))
		line = sshdFailure(line[:0], at, a, i)
		data := fmt.Sprintf(`{"matches": [%q], "failures": 5}`, bytes.TrimSuffix(line, []byte("\n")))
		if _, err := bips.Exec(a.String(), startupJail, at.Unix(), 86400, data); err != nil {
			return 0, err
		}
		if _, err := bans.Exec(startupJail, a.String(), at.Unix(), 86400, data); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	var rank int
	if err := db.QueryRow("SELECT count(*) FROM bips WHERE jail = ? AND ip < ?", startupJail, probeAddr.String()).Scan(&rank); err != nil {
		return 0, err
	}
	return rank, nil
}

// f2bClient runs fail2ban-client on the daemon's socket (from the host's namespace: it only
// talks to the socket).
func f2bClient(b *bench, d *daemon, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "fail2ban-client", append([]string{"-s", d.sock}, args...)...).CombinedOutput()
	return string(out), err
}

// f2bPhase is startupPhase for fail2ban-server: it stops the running one with sig (none for
// the cold start) and starts it again on the same dbfile. all applied: nft monitor saw as many
// ban rules added as there are bans (fail2ban re-adds every one at every start).
func (b *bench) f2bPhase(d *daemon, conf string, pr *prober, name, how string, sig syscall.Signal, n int) (*startPhase, error) {
	p, from, err := b.beginPhase(d, kindFail2ban, name, how, sig, n)
	if err != nil {
		return nil, err
	}
	capWait := b.o.capStartup
	adds0, _ := d.mon.ruleAdds()
	logOff := fileSize(d.log)
	sys0 := snapSys()
	t0 := time.Now()
	if sig == 0 {
		from = t0
	}
	if err := d.execFail2ban(conf); err != nil {
		return nil, err
	}
	fail := func(what string) error {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%s start: %s\n--- last lines of %s ---\n%s", name, what, d.log, d.logTail(15))
	}
	for {
		if !d.proc.running() {
			return nil, fail(fmt.Sprintf("fail2ban-server exited: %v", d.proc.err))
		}
		if p.socketAt < 0 {
			if out, err := f2bClient(b, d, "ping"); err == nil && strings.Contains(out, "pong") {
				p.socketAt = time.Since(t0)
			}
		} else if out, err := f2bClient(b, d, "status", startupJail); err == nil && strings.Contains(out, "File list:") {
			p.servingAt = time.Since(t0)
			break
		}
		if time.Since(t0) > capWait || b.ctx.Err() != nil {
			return nil, fail(fmt.Sprintf("jail %s not serving within %s", startupJail, capWait))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		adds, last := d.mon.ruleAdds()
		p.rulesAdded = adds - adds0
		if p.rulesAdded >= n {
			p.appliedAt = last.Sub(t0)
			break
		}
		if !d.proc.running() {
			return nil, fail(fmt.Sprintf("fail2ban-server exited: %v", d.proc.err))
		}
		if time.Since(t0) > capWait || b.ctx.Err() != nil {
			p.errors = append(p.errors, fmt.Sprintf("nft monitor saw %d of %d ban rules added within %s", p.rulesAdded, n, capWait))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.mem, p.cpu = d.mem(), d.cpu()
	p.other, p.steal = otherLoad(sys0, snapSys(), p.cpu)
	if out, err := f2bClient(b, d, "status", startupJail); err == nil {
		for _, l := range strings.Split(out, "\n") {
			if _, v, ok := strings.Cut(l, "Currently banned:"); ok {
				p.listed, _ = strconv.Atoi(strings.TrimSpace(v))
				p.applied = p.listed
			}
		}
	} else {
		p.errors = append(p.errors, "fail2ban-client status: "+err.Error())
	}
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	if out, err := inNS(b.ctx, d.ns, "iptables", "-w", "10", "-S", d.chain); err == nil {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "-A "+d.chain+" -s ") {
				p.kernelRules++
			}
		}
	} else {
		p.errors = append(p.errors, err.Error())
	}
	if p.kernelRules != n {
		p.errors = append(p.errors, fmt.Sprintf("the chain %s holds %d ban rules, %d bans are in force", d.chain, p.kernelRules, n))
	}
	p.probeFigures(d, pr, from, time.Now(), t0)
	p.logLines, p.errLines = countLogFrom(d.log, logOff, " ERROR ")
	return p, nil
}

// writeStartupDB writes n bans in force of the startup jail, all of benchAddr's addresses but
// the one in the middle of the start order, which is probeAddr; it returns that position.
// Starts are spread over the two hours before now (the reconcile bans in start order), ends a
// day after now; one log line each.
func writeStartupDB(path string, n int, now time.Time) (int, error) {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return 0, err
	}
	pos := n / 2
	var mu sync.Mutex
	var first error
	done := func(err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
	}
	span := 2 * time.Hour
	var line []byte
	for i := range n {
		a := benchAddr(i)
		if i == pos {
			a = probeAddr
		}
		start := now.Add(-span + time.Duration(i)*span/time.Duration(n+1))
		line = sshdFailure(line[:0], start, a, i)
		st.PutBanAsync(store.Ban{Jail: startupJail, Target: netip.PrefixFrom(a, 32), Start: start, End: now.Add(24 * time.Hour),
			Failures: 5, Lines: []string{string(bytes.TrimSuffix(line, []byte("\n")))}, Count: 1}, done)
	}
	ferr := st.Flush()
	cerr := st.Close()
	mu.Lock()
	defer mu.Unlock()
	return pos, errors.Join(first, ferr, cerr)
}

// vethPair joins the daemon's namespace and the client namespace: srvAddr on one end,
// probeAddr and bystanderAddr on the other. The pair is made inside the daemon's namespace,
// one end moved at once to the client's: neither end is ever in the host's namespace.
func vethPair(ns, cns string) error {
	cmds := [][]string{
		{"ip", "-n", ns, "link", "add", srvLink, "type", "veth", "peer", "name", cliLink, "netns", cns},
		{"ip", "-n", ns, "addr", "add", srvAddr.String() + "/24", "dev", srvLink},
		{"ip", "-n", ns, "link", "set", srvLink, "up"},
		{"ip", "-n", cns, "addr", "add", probeAddr.String() + "/24", "dev", cliLink},
		{"ip", "-n", cns, "addr", "add", bystanderAddr.String() + "/24", "dev", cliLink},
		{"ip", "-n", cns, "link", "set", cliLink, "up"},
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// logWatch reads a growing log from where it stopped, line by line.
type logWatch struct {
	path string
	off  int64
	part []byte // an unfinished last line
}

// find returns the first complete line since the last call that contains s, or "".
func (w *logWatch) find(s string) string {
	f, err := os.Open(w.path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		k, err := f.ReadAt(buf, w.off)
		if k > 0 {
			w.off += int64(k)
			data := append(w.part, buf[:k]...)
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				line := data[:i]
				data = data[i+1:]
				if bytes.Contains(line, []byte(s)) {
					w.part = append([]byte(nil), data...)
					return string(line)
				}
			}
			w.part = append([]byte(nil), data...)
		}
		if err != nil || k == 0 {
			return ""
		}
	}
}

// logTime is the time= of a logjail log line.
func logTime(line string) (time.Time, bool) {
	if !strings.HasPrefix(line, "time=") {
		return time.Time{}, false
	}
	ts, _, _ := strings.Cut(line[len("time="):], " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, err == nil
}

// logAttr is the value of key= in a logjail log line (unquoted values only).
func logAttr(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v, _, _ := strings.Cut(line[i+len(key)+2:], " ")
	return v
}

// countLog counts a log's lines, and those that contain s.
func countLog(path, s string) (lines, with int) {
	return countLogFrom(path, 0, s)
}

// countLogFrom is countLog from an offset.
func countLogFrom(path string, off int64, s string) (lines, with int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines++
		if strings.Contains(sc.Text(), s) {
			with++
		}
	}
	return lines, with
}

// The helpers: ljbench started again as "ljbench helper ..." inside a namespace, so that no
// thread of ljbench itself ever enters one.
//
//	ljbench helper listen ADDR:PORT LIMIT              accept and close, print "listening" once bound
//	ljbench helper probe ADDR:PORT EVERY LIMIT SRC...  one connect from each SRC every EVERY
//
// Both stop by themselves after LIMIT. The probe prints one line per connect:
// "SRC START_UNIX_NS DURATION_NS OUTCOME [DETAIL]", OUTCOME ok (connected), refused, timeout
// or other.
const helperArg = "helper"

// probeTimeout bounds one probe's connect. On the veth a connect takes well under a
// millisecond; a probe that gets no answer is blocked: a DROP, or a REJECT whose ICMP error
// was rate limited (fail2ban's icmp-port-unreachable: the kernel sends about one a second to
// a peer).
const probeTimeout = 250 * time.Millisecond

func helperMain(args []string) int {
	if err := runHelper(args); err != nil {
		fmt.Fprintln(os.Stderr, "ljbench helper:", err)
		return 1
	}
	return 0
}

func runHelper(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("usage: helper listen ADDR:PORT LIMIT | helper probe ADDR:PORT EVERY LIMIT SRC...")
	}
	dst, err := netip.ParseAddrPort(args[1])
	if err != nil {
		return err
	}
	switch args[0] {
	case "listen":
		limit, err := time.ParseDuration(args[2])
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", dst.String())
		if err != nil {
			return err
		}
		time.AfterFunc(limit, func() { ln.Close() })
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				return err
			}
			c.Close()
		}
	case "probe":
		if len(args) < 5 {
			return errors.New("probe: ADDR:PORT EVERY LIMIT SRC...")
		}
		every, err := time.ParseDuration(args[2])
		if err != nil {
			return err
		}
		limit, err := time.ParseDuration(args[3])
		if err != nil {
			return err
		}
		var dialers []*net.Dialer
		for _, s := range args[4:] {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return err
			}
			dialers = append(dialers, &net.Dialer{Timeout: probeTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))})
		}
		w := bufio.NewWriter(os.Stdout)
		end := time.Now().Add(limit)
		next := time.Now()
		for time.Now().Before(end) {
			for i, dl := range dialers {
				t := time.Now()
				c, err := dl.Dial("tcp4", dst.String())
				el := time.Since(t)
				outcome, detail := "ok", ""
				var ne net.Error
				switch {
				case err == nil:
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.SetLinger(0) // no TIME_WAIT: a long cold start makes thousands
					}
					c.Close()
				case errors.Is(err, syscall.ECONNREFUSED):
					outcome = "refused"
				case errors.As(err, &ne) && ne.Timeout():
					outcome = "timeout"
				default:
					outcome, detail = "other", strings.ReplaceAll(err.Error(), "\n", " ")
				}
				fmt.Fprintf(w, "%s %d %d %s %s\n", args[4+i], t.UnixNano(), el.Nanoseconds(), outcome, detail)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			next = next.Add(every)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			} else {
				next = time.Now() // behind: no burst to catch up
			}
		}
		return nil
	}
	return fmt.Errorf("unknown helper %q", args[0])
}

// helperArgv is the command line of a helper.
func helperArgv(args ...string) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return append([]string{self, helperArg}, args...), nil
}

// listener is a running listen helper.
type listener struct {
	env  *env
	proc *proc
}

func startListener(e *env, ns, dir string, at netip.AddrPort, limit time.Duration) (*listener, error) {
	argv, err := helperArgv("listen", at.String(), limit.String())
	if err != nil {
		return nil, err
	}
	errf, err := os.Create(filepath.Join(dir, "listener.err"))
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	p, r, err := e.startPipe("listener", ns, argv, errf)
	if err != nil {
		return nil, err
	}
	l := &listener{env: e, proc: p}
	ready := make(chan bool, 1)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		ready <- sc.Scan() && sc.Text() == "listening"
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if ok {
			return l, nil
		}
	case <-time.After(10 * time.Second):
	}
	l.stop()
	msg, _ := os.ReadFile(errf.Name())
	return nil, fmt.Errorf("listener on %s in %s did not start: %s", at, ns, strings.TrimSpace(string(msg)))
}

func (l *listener) stop() {
	l.proc.stop(2 * time.Second)
	l.env.forget(l.proc)
}

// prober is a running probe helper and what it printed.
type prober struct {
	env   *env
	proc  *proc
	mu    sync.Mutex
	res   []probeResult
	ended chan struct{}
}

type probeResult struct {
	src     netip.Addr
	at      time.Time
	dur     time.Duration
	outcome string
	detail  string
}

func startProber(e *env, ns, dir string, dst netip.AddrPort, every, limit time.Duration, srcs ...netip.Addr) (*prober, error) {
	args := []string{"probe", dst.String(), every.String(), limit.String()}
	for _, s := range srcs {
		args = append(args, s.String())
	}
	argv, err := helperArgv(args...)
	if err != nil {
		return nil, err
	}
	errf, err := os.Create(filepath.Join(dir, "probe.err"))
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	p, r, err := e.startPipe("probe", ns, argv, errf)
	if err != nil {
		return nil, err
	}
	pr := &prober{env: e, proc: p, ended: make(chan struct{})}
	go pr.read(r)
	return pr, nil
}

func (pr *prober) read(r *os.File) {
	defer close(pr.ended)
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if res, ok := parseProbeLine(sc.Text()); ok {
			pr.mu.Lock()
			pr.res = append(pr.res, res)
			pr.mu.Unlock()
		}
	}
}

// parseProbeLine reads "SRC START_UNIX_NS DURATION_NS OUTCOME [DETAIL]".
func parseProbeLine(line string) (probeResult, bool) {
	f := strings.SplitN(line, " ", 5)
	if len(f) < 4 {
		return probeResult{}, false
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil {
		return probeResult{}, false
	}
	at, err1 := strconv.ParseInt(f[1], 10, 64)
	dur, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return probeResult{}, false
	}
	r := probeResult{src: a, at: time.Unix(0, at), dur: time.Duration(dur), outcome: f[3]}
	if len(f) == 5 {
		r.detail = f[4]
	}
	return r, true
}

// waitFor waits until a probe from src had the outcome.
func (pr *prober) waitFor(src netip.Addr, outcome string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		pr.mu.Lock()
		for _, r := range pr.res {
			if r.src == src && r.outcome == outcome {
				pr.mu.Unlock()
				return true
			}
		}
		pr.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// probeStats sums up the probes that started in a window.
type probeStats struct {
	n, through, refused, other int // from the banned address
	firstRefused, firstThrough time.Time
	lastThrough                time.Time
	bystander, bystanderFailed int
	otherSample                string
}

func (pr *prober) stats(banned, bystander netip.Addr, from, to time.Time) probeStats {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return probeSummary(pr.res, banned, bystander, from, to)
}

func probeSummary(res []probeResult, banned, bystander netip.Addr, from, to time.Time) probeStats {
	var s probeStats
	for _, r := range res {
		if r.at.Before(from) || r.at.After(to) {
			continue
		}
		switch r.src {
		case banned:
			s.n++
			switch r.outcome {
			case "ok":
				s.through++
				if s.firstThrough.IsZero() {
					s.firstThrough = r.at
				}
				s.lastThrough = r.at
			case "refused":
				s.refused++
				if s.firstRefused.IsZero() {
					s.firstRefused = r.at
				}
			default:
				s.other++
				if s.otherSample == "" {
					s.otherSample = strings.TrimSpace(r.outcome + " " + r.detail)
				}
			}
		case bystander:
			s.bystander++
			if r.outcome != "ok" {
				s.bystanderFailed++
			}
		}
	}
	return s
}

func (pr *prober) stop() {
	pr.proc.stop(2 * time.Second)
	pr.env.forget(pr.proc)
	<-pr.ended
}
