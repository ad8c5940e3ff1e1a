// Command ljbench measures the whole logjail daemon, and fail2ban-server beside it on the same
// workloads, inside network namespaces it makes and deletes. It needs root (namespaces,
// iptables) and is run by scripts/bench-daemon.sh (`make bench-daemon`), which builds it and
// logjail, gives it a scratch directory and checks afterwards that nothing is left.
//
// Benchmarks (-only, comma separated; default all, in this order):
//
//	idle            VmRSS of each daemon with the shipped sshd jail on an empty auth.log
//	latency-steady  ban latency at a steady rate of lines (default 2,000 lines/s)
//	latency-flood   ban latency with lines appended as fast as ljbench can
//	ingest          lines/s and CPU per 1,000 lines for an sshd and an Apache access log
//	memory          bytes per tracked address (1,000,000 addresses by default)
//	startup         start-up with 100,000 bans in force in logjail's state database: a cold
//	                start (no rule in the kernel), a restart after SIGTERM with --keep-on-stop
//	                and one after SIGKILL; time until status answers, until the kernel is
//	                reconciled and every ban applied, RSS, and whether a TCP probe from a
//	                banned address every 10 ms got through meanwhile. fail2ban-server restores
//	                its dbfile's bans one iptables call each: it gets 2,000 (-f2b-startup-bans),
//	                and logjail runs that number too
//
// Ban latency is the time from a failing line's write returning (the timestamp is taken right
// after it) to `nft monitor` in the daemon's namespace printing the rule that bans its address
// (iptables here is iptables-nft: its rules are nf_tables rules, and the monitor hears of each
// one as it is committed). The monitor's line is timestamped when ljbench reads it.
//
// Every daemon runs in a fresh namespace of its own with only lo, from a private temporary
// configuration: logjail with copies of the repository's jail.conf, jail.d/*.conf and
// filter.d/*.conf plus jail.d/bench.local; fail2ban-server in the foreground with Debian's
// /etc/fail2ban minus its jail.d, a private socket, pidfile and log, dbfile = :memory: (startup:
// a file), the pyinotify backend and the iptables-multiport action. Nothing runs in the host's
// namespace but ljbench itself, which only writes files (startup: the state databases too) and
// reads /proc and the daemons' sockets (fail2ban's with fail2ban-client).
//
// The startup benchmark joins the daemon's namespace to a second one by a veth pair (made inside
// the namespaces, never in the host's): a listener on the jail's port in the first, probes from
// a banned and a bystander address in the second. Both are ljbench itself run again as
// "ljbench helper ..." under ip netns exec, and stop by themselves.
//
// Output: a table per benchmark on stdout, and one machine-readable line per result,
// "RESULT {json}"; -json FILE also writes them all as a JSON array.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	repo, work, logjail, f2bEtc string
	nsPrefix                    string
	f2b, quick, profile         bool
	only                        string
	jsonOut                     string
	csvDir                      string
	label                       string
	noConntrack                 bool

	bans, f2bFloodBans        int
	maxretry                  int
	steadyRate, steadyEvery   int
	floodEvery, floodBatch    int
	capSteady, capFlood       time.Duration
	capIngest, f2bCap         time.Duration
	ingestLines               int
	f2bIngestLines            int
	ingestRate                int
	ingestSecs, f2bIngestSecs time.Duration
	memAddrs, f2bMemAddrs     int
	memMaxRetry               []int
	idleSettle                time.Duration
	startupBans               int
	f2bStartupBans            int
	capStartup, probeEvery    time.Duration
}

type bench struct {
	o       options
	ctx     context.Context
	env     *env
	work    string
	logjail string
	out     io.Writer
	logs    map[string]*genLog
	results []json.RawMessage
	failed  []string // runs that failed; the others went on
}

// failedRun records a run that failed, so that the benchmark goes on with the next run; it
// returns the error only when ljbench was interrupted (or nothing at all went wrong).
func (b *bench) failedRun(what string, err error) error {
	if err == nil || b.ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return err
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	b.failed = append(b.failed, msg)
	fmt.Fprintf(b.out, "ljbench: FAILED %s\n", msg)
	return nil
}

var allBenches = []string{"idle", "latency-steady", "latency-flood", "ingest", "memory", "startup"}

func main() {
	os.Exit(run())
}

func run() int {
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		return helperMain(os.Args[2:])
	}
	var o options
	flag.StringVar(&o.repo, "repo", ".", "the logjail repository (jail.conf, jail.d/, filter.d/)")
	flag.StringVar(&o.work, "work", "", "scratch directory (required; the caller removes it)")
	flag.StringVar(&o.logjail, "logjail", "bin/logjail", "logjail binary")
	flag.StringVar(&o.f2bEtc, "fail2ban-etc", "/etc/fail2ban", "fail2ban's configuration to copy (never used in place)")
	flag.StringVar(&o.nsPrefix, "ns", fmt.Sprintf("ljbench-%d", os.Getpid()), "prefix of the network namespaces made")
	flag.BoolVar(&o.f2b, "fail2ban", true, "also measure fail2ban-server (skipped with a note when it is not installed)")
	flag.BoolVar(&o.quick, "quick", false, "a smoke run: small volumes, about a minute and a half")
	flag.StringVar(&o.only, "only", strings.Join(allBenches, ","), "benchmarks to run: "+strings.Join(allBenches, ","))
	flag.StringVar(&o.jsonOut, "json", "", "also write every result to this file, as a JSON array")
	flag.StringVar(&o.csvDir, "csv", "", "write every ban's times of each latency run to a CSV file in this directory")
	flag.StringVar(&o.label, "label", "", "what the logjail binary is (printed with the results), e.g. a commit")
	flag.BoolVar(&o.noConntrack, "no-conntrack", false, "diagnostic: run logjail with LOGJAIL_NO_CONNTRACK=1, so that bans cut no connections")
	flag.BoolVar(&o.profile, "profile", false, "run logjail with --cpuprofile DIR/cpu.pprof in each daemon's scratch directory (KEEP=1 in the script keeps it)")
	flag.IntVar(&o.bans, "bans", 1000, "bans per latency run (distinct addresses)")
	flag.IntVar(&o.f2bFloodBans, "f2b-flood-bans", 200, "bans in fail2ban's flood run (logjail runs that workload too, for the ratio)")
	flag.IntVar(&o.maxretry, "maxretry", 1, "maxretry of the latency jail (the crossing line is the maxretry-th failure)")
	flag.IntVar(&o.steadyRate, "steady-rate", 2000, "lines/s of the steady latency run")
	flag.IntVar(&o.steadyEvery, "steady-every", 100, "steady latency run: one failing address every this many lines")
	flag.IntVar(&o.floodEvery, "flood-every", 1000, "flood latency run: one failing address every this many lines")
	flag.IntVar(&o.floodBatch, "flood-batch", 1, "flood latency run: lines per write (failure lines are always written alone)")
	flag.DurationVar(&o.capSteady, "cap-steady", 30*time.Second, "logjail: longest wait for bans after the last steady write")
	flag.DurationVar(&o.capFlood, "cap-flood", 60*time.Second, "logjail: longest wait for bans after the last flood write")
	flag.DurationVar(&o.capIngest, "cap-ingest", 60*time.Second, "logjail: longest wait for the lines to be read after the last write")
	flag.DurationVar(&o.f2bCap, "f2b-cap", 90*time.Second, "fail2ban: longest wait after the last write, in every benchmark")
	flag.IntVar(&o.ingestLines, "ingest-lines", 5_000_000, "lines of each full-speed ingest run")
	flag.IntVar(&o.f2bIngestLines, "f2b-ingest-lines", 200_000, "lines of fail2ban's full-speed ingest runs (logjail runs that volume too)")
	flag.IntVar(&o.ingestRate, "ingest-rate", 10_000, "lines/s of the steady ingest runs")
	flag.DurationVar(&o.ingestSecs, "ingest-secs", 20*time.Second, "duration of logjail's steady ingest runs")
	flag.DurationVar(&o.f2bIngestSecs, "f2b-ingest-secs", 10*time.Second, "duration of fail2ban's steady ingest runs")
	flag.IntVar(&o.memAddrs, "mem-addrs", 1_000_000, "addresses of logjail's memory run")
	flag.IntVar(&o.f2bMemAddrs, "f2b-mem-addrs", 100_000, "addresses of fail2ban's memory run (0: none)")
	memMR := flag.String("mem-maxretry", "5,16,600", "maxretry of logjail's memory runs, one run each: the window keeps maxretry-1 times an address up to 16, buckets above")
	flag.DurationVar(&o.idleSettle, "idle-settle", 5*time.Second, "how long the idle daemon settles before its memory is read")
	flag.IntVar(&o.startupBans, "startup-bans", 100_000, "startup: bans in force in the state database")
	flag.IntVar(&o.f2bStartupBans, "f2b-startup-bans", 2_000, "startup: bans in force in fail2ban's dbfile (it restores one iptables call each; 0: fail2ban not measured here); logjail runs that number too")
	flag.DurationVar(&o.capStartup, "cap-startup", 10*time.Minute, "startup: longest wait for each start to serve, reconcile and apply every ban")
	flag.DurationVar(&o.probeEvery, "probe-every", 10*time.Millisecond, "startup: one TCP connect from the banned address (and one from a bystander) this often")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		quick := map[string]func(){
			"bans":             func() { o.bans = 100 },
			"f2b-flood-bans":   func() { o.f2bFloodBans = 50 },
			"ingest-lines":     func() { o.ingestLines = 500_000 },
			"f2b-ingest-lines": func() { o.f2bIngestLines = 20_000 },
			"ingest-secs":      func() { o.ingestSecs = 3 * time.Second },
			"f2b-ingest-secs":  func() { o.f2bIngestSecs = 2 * time.Second },
			"mem-addrs":        func() { o.memAddrs = 100_000 },
			"f2b-mem-addrs":    func() { o.f2bMemAddrs = 10_000 },
			"idle-settle":      func() { o.idleSettle = 2 * time.Second },
			"f2b-cap":          func() { o.f2bCap = 30 * time.Second },
			"startup-bans":     func() { o.startupBans = 5_000 },
			"f2b-startup-bans": func() { o.f2bStartupBans = 500 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	for _, f := range strings.Split(*memMR, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n < 2 {
			fmt.Fprintf(os.Stderr, "ljbench: -mem-maxretry: %q: want numbers of at least 2 (one failure each must not ban)\n", f)
			return 2
		}
		o.memMaxRetry = append(o.memMaxRetry, n)
	}
	if err := check(&o); err != nil {
		fmt.Fprintln(os.Stderr, "ljbench:", err)
		return 2
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := newEnv(o.nsPrefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ljbench:", err)
		return 1
	}
	b := &bench{o: o, ctx: ctx, env: e, work: o.work, logjail: o.logjail, out: os.Stdout, logs: map[string]*genLog{}}

	// A reader of stdout that goes away (tee killed by the same Ctrl-C) must not kill ljbench
	// in the middle of its cleanup: writes then fail with EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	// Ctrl-C or SIGTERM: stop the benchmark, and clean up; a second signal, or a benchmark
	// that does not stop within 10 s, cleans up from here and exits.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\nljbench: %v: stopping and cleaning up\n", s)
		cancel()
		select {
		case <-sigs:
		case <-time.After(10 * time.Second):
		}
		if err := e.close(); err != nil {
			fmt.Fprintln(os.Stderr, "ljbench: cleanup:", err)
		}
		os.Exit(130)
	}()

	rc := 0
	start := time.Now()
	b.header()
	for _, name := range allBenches {
		if !strings.Contains(","+o.only+",", ","+name+",") {
			continue
		}
		var err error
		switch name {
		case "idle":
			err = b.idleBench()
		case "latency-steady":
			err = b.latencyBench("steady")
		case "latency-flood":
			err = b.latencyBench("flood")
		case "ingest":
			if err = b.ingestBench("sshd"); err == nil {
				err = b.ingestBench("access")
			}
		case "memory":
			err = b.memoryBench()
		case "startup":
			err = b.startupBench()
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(os.Stderr, "ljbench: interrupted")
				rc = 130
				break
			}
			fmt.Fprintf(os.Stderr, "ljbench: %s: %v\n", name, err)
			rc = 1
			if ctx.Err() != nil {
				break
			}
		}
	}
	if len(b.failed) > 0 {
		fmt.Fprintf(b.out, "\nljbench: %d run(s) failed (the others' figures stand):\n", len(b.failed))
		for _, f := range b.failed {
			fmt.Fprintf(b.out, "  %s\n", f)
		}
		if rc == 0 {
			rc = 1
		}
	}
	if err := e.close(); err != nil {
		fmt.Fprintln(os.Stderr, "ljbench: cleanup:", err)
		rc = 1
	}
	if o.jsonOut != "" {
		js, _ := json.MarshalIndent(b.results, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(js, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "ljbench:", err)
			rc = 1
		}
	}
	fmt.Fprintf(b.out, "\nljbench: done in %s\n", time.Since(start).Round(time.Second))
	return rc
}

// check validates the options and the machine: root, the tools, iptables-nft.
func check(o *options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, iptables): run scripts/bench-daemon.sh, or make bench-daemon")
	}
	if o.work == "" {
		return errors.New("-work DIR is required")
	}
	for _, s := range strings.Split(o.only, ",") {
		if indexOf(allBenches, s) < 0 {
			return fmt.Errorf("-only: unknown benchmark %q (have %s)", s, strings.Join(allBenches, ","))
		}
	}
	if o.bans < 1 || o.bans > maxAddrs || o.maxretry < 1 || o.steadyRate < 1 || o.steadyEvery < 1 || o.floodEvery < 1 {
		return fmt.Errorf("-bans (at most %d), -maxretry, -steady-rate, -steady-every and -flood-every must be positive", maxAddrs)
	}
	if o.startupBans < 2 || o.startupBans > maxAddrs || o.f2bStartupBans < 0 || o.f2bStartupBans == 1 || o.f2bStartupBans > maxAddrs || o.capStartup <= 0 || o.probeEvery < time.Millisecond {
		return fmt.Errorf("-startup-bans: 2 to %d; -f2b-startup-bans 0, or 2 to %[1]d; -cap-startup positive; -probe-every at least 1ms", maxAddrs)
	}
	if o.memAddrs < 1 || o.memAddrs > maxAddrs || o.f2bMemAddrs > maxAddrs {
		return fmt.Errorf("-mem-addrs: 1 to %d", maxAddrs)
	}
	var err error
	if o.logjail, err = filepath.Abs(o.logjail); err != nil {
		return err
	}
	if o.repo, err = filepath.Abs(o.repo); err != nil {
		return err
	}
	if o.work, err = filepath.Abs(o.work); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(o.repo, "jail.conf")); err != nil {
		return fmt.Errorf("-repo %s: %w", o.repo, err)
	}
	if _, err := os.Stat(o.logjail); err != nil {
		return fmt.Errorf("-logjail: %w (make build)", err)
	}
	for _, c := range []string{"ip", "iptables", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s is missing: %w", c, err)
		}
	}
	out, err := exec.Command("iptables", "-V").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nf_tables") {
		return fmt.Errorf("iptables -V says %q: ljbench sees bans through nft monitor, which needs iptables-nft", strings.TrimSpace(string(out)))
	}
	if o.f2b {
		for _, c := range []string{"fail2ban-server", "fail2ban-client"} {
			if _, err := exec.LookPath(c); err != nil {
				fmt.Fprintf(os.Stderr, "ljbench: %s is not installed: fail2ban is not measured\n", c)
				o.f2b = false
			}
		}
	}
	if o.f2b {
		if _, err := os.Stat(filepath.Join(o.f2bEtc, "jail.conf")); err != nil {
			fmt.Fprintf(os.Stderr, "ljbench: %v: fail2ban is not measured\n", err)
			o.f2b = false
		}
	}
	return nil
}

// header prints what is measured with what.
func (b *bench) header() {
	lj, _ := exec.Command("git", "-C", b.o.repo, "describe", "--always", "--dirty").Output()
	if b.o.label != "" {
		lj = []byte(b.o.label)
	}
	sum := "?"
	if bin, err := os.ReadFile(b.logjail); err == nil {
		sum = fmt.Sprintf("%x", sha256.Sum256(bin))[:16]
	}
	f2b := "not measured"
	if b.o.f2b {
		if v, err := exec.Command("fail2ban-server", "-V").Output(); err == nil {
			f2b = "fail2ban-server " + strings.TrimSpace(string(v)) + " (pyinotify backend, iptables-multiport)"
		}
	}
	ipt, _ := exec.Command("iptables", "-V").Output()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	host, _ := os.Hostname()
	fmt.Fprintf(b.out, "ljbench: logjail %s (%s, sha256 %s)\n", strings.TrimSpace(string(lj)), b.logjail, sum)
	if b.o.noConntrack {
		fmt.Fprintln(b.out, "ljbench: DIAGNOSTIC run: logjail without conntrack (bans cut no established connections)")
	}
	fmt.Fprintf(b.out, "ljbench: %s; %s; kernel %s; %d CPUs; host %s; %s\n", f2b, strings.TrimSpace(string(ipt)),
		strings.TrimSpace(string(kernel)), numCPU(), host, time.Now().UTC().Format(time.RFC3339))
	if b.o.quick {
		fmt.Fprintln(b.out, "ljbench: QUICK run: small volumes, figures are a smoke test only")
	}
	b.emit(result{"bench": "env", "logjail": strings.TrimSpace(string(lj)), "logjail_sha256": sum, "no_conntrack": b.o.noConntrack, "fail2ban": f2b, "iptables": strings.TrimSpace(string(ipt)),
		"kernel": strings.TrimSpace(string(kernel)), "cpus": numCPU(), "quick": b.o.quick})
}

func numCPU() int { return runtime.NumCPU() }
