package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/logjail/logjail/internal/control"
)

// daemonKind is logjail or fail2ban.
type daemonKind string

const (
	kindLogjail  daemonKind = "logjail"
	kindFail2ban daemonKind = "fail2ban"
)

// jailSetup is the one jail a run enables (with every other shipped jail off), in fail2ban's
// language: both daemons read the same keys.
type jailSetup struct {
	name     string // sshd or wordpress
	logpath  string
	maxretry int
	findtime string
	bantime  string
	extra    []string // more "key = value" lines (logjail only: maxtracked)
	port     string   // fail2ban: the jail's port, when not the filter's own (ssh, http,https)
	f2bDB    string   // fail2ban: dbfile; "" is :memory:
	// shipped: logjail's shipped configuration as it is, only [sshd]'s logpath moved (the idle
	// figure); the other fields are ignored.
	shipped bool
}

// daemon is one running logjail server or fail2ban-server, in its own namespace, with an nft
// monitor beside it.
type daemon struct {
	kind  daemonKind
	ns    string
	dir   string
	sock  string
	jail  string
	chain string // the jail's chain: lj-NAME or f2b-NAME
	proc  *proc
	mon   *monitor
	log   string // its stderr / log file
	cl    *control.Client
	env   *env
}

// startDaemon makes a namespace, starts nft monitor and the daemon in it, and waits until the
// jail runs. extraEnv goes to the daemon (GODEBUG for the memory run).
func (b *bench) startDaemon(kind daemonKind, tag string, js jailSetup, extraEnv []string) (*daemon, error) {
	d, err := b.newDaemon(kind, tag, js.name)
	if err != nil {
		return nil, err
	}
	switch kind {
	case kindLogjail:
		err = d.startLogjail(b, js, extraEnv)
	case kindFail2ban:
		err = d.startFail2ban(b, js)
	}
	if err != nil {
		if tail := d.logTail(15); tail != "" {
			err = fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, d.log, tail)
		}
		d.close()
		return nil, err
	}
	return d, nil
}

// newDaemon makes a namespace and its scratch directory and starts nft monitor in it, for a
// daemon of kind with one jail named jail; the daemon itself is not started.
func (b *bench) newDaemon(kind daemonKind, tag, jail string) (*daemon, error) {
	ns, err := b.env.newNS(tag)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.work, filepath.Base(ns))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &daemon{kind: kind, ns: ns, dir: dir, jail: jail, env: b.env}
	monErr, err := os.Create(filepath.Join(dir, "monitor.err"))
	if err != nil {
		return nil, err
	}
	defer monErr.Close()
	prefix := "lj-"
	if kind == kindFail2ban {
		prefix = "f2b-"
	}
	d.chain = prefix + jail
	// nft monitor has failed to print anything once in many starts (its stderr was lost with
	// the scratch directory): try again before giving up, and say what it said.
	for try := 1; ; try++ {
		d.mon, err = startMonitor(b.env, ns, prefix, monErr)
		if err == nil {
			break
		}
		msg, _ := os.ReadFile(monErr.Name())
		err = fmt.Errorf("nft monitor (try %d): %w; running: %v; stderr: %q", try, err, d.mon != nil && d.mon.proc.running(), strings.TrimSpace(string(msg)))
		if d.mon != nil {
			d.mon.stop()
			b.env.forget(d.mon.proc)
			d.mon = nil
		}
		if try == 3 || b.ctx.Err() != nil {
			d.close()
			return nil, err
		}
		b.progress("%v: starting it again", err)
	}
	d.mon.abort = b.ctx.Done()
	return d, nil
}

func (d *daemon) startLogjail(b *bench, js jailSetup, extraEnv []string) error {
	conf, err := d.logjailConf(b, js)
	if err != nil {
		return err
	}
	if err := d.execLogjail(b, conf, "logjail.log", nil, extraEnv); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if !d.proc.running() {
			return fmt.Errorf("logjail server exited at start: %v", d.proc.err)
		}
		if st, err := d.cl.Status(js.name); err == nil && len(st.Jails) == 1 && d.mon.hasJump(d.chain) {
			ready := true
			for _, f := range st.Jails[0].Files {
				ready = ready && f.Exists
			}
			if len(st.Broken) > 0 {
				return fmt.Errorf("logjail reports broken jails: %+v", st.Broken)
			}
			if ready && len(st.Jails[0].Files) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("logjail server: jail %s not running with its chain %s within 30 s", js.name, d.chain)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d.checkNS()
}

// logjailConf writes logjail's configuration for js to d.dir/etc and returns that directory:
// copies of the repository's jail.conf, jail.d/*.conf and filter.d/*.conf, and
// jail.d/bench.local with the one jail.
func (d *daemon) logjailConf(b *bench, js jailSetup) (string, error) {
	conf := filepath.Join(d.dir, "etc")
	for _, sub := range []string{"jail.d", "filter.d"} {
		if err := os.MkdirAll(filepath.Join(conf, sub), 0o755); err != nil {
			return "", err
		}
	}
	copies := []string{"jail.conf"}
	for _, g := range []string{"jail.d/*.conf", "filter.d/*.conf"} {
		m, _ := filepath.Glob(filepath.Join(b.o.repo, g))
		for _, f := range m {
			rel, _ := filepath.Rel(b.o.repo, f)
			copies = append(copies, rel)
		}
	}
	for _, rel := range copies {
		if err := copyFile(filepath.Join(b.o.repo, rel), filepath.Join(conf, rel)); err != nil {
			return "", err
		}
	}
	var sb strings.Builder
	sb.WriteString("# ljbench: one jail on the benchmark's log, every other shipped jail off.\n")
	if js.shipped {
		fmt.Fprintf(&sb, "[sshd]\nlogpath = %s\n", js.logpath)
	} else {
		if js.name != "sshd" {
			sb.WriteString("[sshd]\nenabled = false\n\n")
		}
		fmt.Fprintf(&sb, "[%s]\nenabled = true\nlogpath = %s\nbackend = auto\nmaxretry = %d\nfindtime = %s\nbantime = %s\n",
			js.name, js.logpath, js.maxretry, js.findtime, js.bantime)
		for _, l := range js.extra {
			sb.WriteString(l + "\n")
		}
	}
	if err := os.WriteFile(filepath.Join(conf, "jail.d", "bench.local"), []byte(sb.String()), 0o644); err != nil {
		return "", err
	}
	return conf, nil
}

// execLogjail starts logjail server on the configuration conf, with the socket and state
// directory in d.dir, its stderr in d.dir/logName (which becomes d.log) and the extra server
// flags args; it does not wait for anything. A daemon started earlier must have exited.
func (d *daemon) execLogjail(b *bench, conf, logName string, args, extraEnv []string) error {
	d.sock = filepath.Join(d.dir, "logjail.sock")
	d.log = filepath.Join(d.dir, logName)
	logf, err := os.Create(d.log)
	if err != nil {
		return err
	}
	defer logf.Close()
	argv := []string{b.logjail, "server", "--config", conf, "--socket", d.sock, "--state", filepath.Join(d.dir, "state")}
	argv = append(argv, args...)
	if b.o.profile {
		argv = append(argv, "--cpuprofile", filepath.Join(d.dir, "cpu.pprof"))
	}
	if b.o.noConntrack {
		// The daemon's diagnostic switch (internal/daemon): its jails cut no connections.
		extraEnv = append(extraEnv, "LOGJAIL_NO_CONNTRACK=1")
	}
	if d.proc, err = d.env.start("logjail server", d.ns, argv, extraEnv, nil, logf); err != nil {
		return err
	}
	// A new client for every daemon: an idle connection to an earlier one is dead.
	d.cl = control.NewClient(d.sock)
	return nil
}

// fail2ban's jail names for the same workloads, and the filter each uses: its own stock sshd
// filter, and logjail's wordpress filter (fail2ban has none; the file is in fail2ban's
// language, as bench-regex.sh shows).
func f2bFilter(jail string) string {
	if jail == "wordpress" {
		return "logjail-wordpress"
	}
	return jail
}

func (d *daemon) startFail2ban(b *bench, js jailSetup) error {
	conf, err := d.f2bConf(b, js)
	if err != nil {
		return err
	}
	if err := d.execFail2ban(conf); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if !d.proc.running() {
			return fmt.Errorf("fail2ban-server exited at start: %v", d.proc.err)
		}
		out, err := exec.Command("fail2ban-client", "-s", d.sock, "status", js.name).CombinedOutput()
		if err == nil && strings.Contains(string(out), "File list:") {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fail2ban-server: jail %s not running within 60 s: %s", js.name, strings.TrimSpace(string(out)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d.checkNS()
}

// f2bConf writes fail2ban's configuration for js to d.dir/f2b and returns that directory.
func (d *daemon) f2bConf(b *bench, js jailSetup) (string, error) {
	conf := filepath.Join(d.dir, "f2b")
	for _, sub := range []string{"jail.d", "fail2ban.d"} {
		if err := os.MkdirAll(filepath.Join(conf, sub), 0o755); err != nil {
			return "", err
		}
	}
	// Debian's configuration minus its jail.d (which enables sshd on the systemd journal).
	for _, f := range []string{"fail2ban.conf", "jail.conf", "paths-common.conf", "paths-debian.conf"} {
		if err := copyFile(filepath.Join(b.o.f2bEtc, f), filepath.Join(conf, f)); err != nil {
			return "", err
		}
	}
	for _, sub := range []string{"filter.d", "action.d"} {
		if _, err := os.Stat(filepath.Join(conf, sub)); err == nil {
			continue // written before (the startup benchmark starts it more than once)
		}
		if out, err := exec.Command("cp", "-a", filepath.Join(b.o.f2bEtc, sub), filepath.Join(conf, sub)).CombinedOutput(); err != nil {
			return "", fmt.Errorf("cp %s: %v: %s", sub, err, out)
		}
	}
	if err := copyFile(filepath.Join(b.o.repo, "filter.d", "wordpress.conf"), filepath.Join(conf, "filter.d", "logjail-wordpress.conf")); err != nil {
		return "", err
	}
	d.sock = filepath.Join(d.dir, "f2b.sock")
	d.log = filepath.Join(d.dir, "fail2ban.log")
	db := js.f2bDB
	if db == "" {
		db = ":memory:"
	}
	local := fmt.Sprintf("[Definition]\nloglevel = INFO\nlogtarget = %s\nsocket = %s\npidfile = %s\ndbfile = %s\n", d.log, d.sock, filepath.Join(d.dir, "f2b.pid"), db)
	if err := os.WriteFile(filepath.Join(conf, "fail2ban.local"), []byte(local), 0o644); err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("# ljbench: one jail on the benchmark's log.\n[DEFAULT]\nignoreip = 127.0.0.1/8 ::1\nusedns = no\nbackend = pyinotify\nbanaction = iptables-multiport\n\n")
	port := "ssh"
	if js.name != "sshd" {
		port = "http,https"
	}
	if js.port != "" {
		port = js.port
	}
	if js.shipped {
		// fail2ban's own defaults for the sshd jail (Debian's jail.d enables it).
		fmt.Fprintf(&sb, "[sshd]\nenabled = true\nbackend = pyinotify\nlogpath = %s\n", js.logpath)
	} else {
		fmt.Fprintf(&sb, "[%s]\nenabled = true\nbackend = pyinotify\nfilter = %s\nport = %s\nlogpath = %s\nmaxretry = %d\nfindtime = %s\nbantime = %s\n",
			js.name, f2bFilter(js.name), port, js.logpath, js.maxretry, js.findtime, js.bantime)
	}
	if err := os.WriteFile(filepath.Join(conf, "jail.d", "bench.local"), []byte(sb.String()), 0o644); err != nil {
		return "", err
	}
	return conf, nil
}

// execFail2ban starts fail2ban-server in the foreground on the configuration conf (f2bConf),
// its stderr appended to d.dir/fail2ban.stderr; it does not wait for anything.
func (d *daemon) execFail2ban(conf string) error {
	errf, err := os.OpenFile(filepath.Join(d.dir, "fail2ban.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer errf.Close()
	argv := []string{"fail2ban-server", "-f", "-x", "-c", conf, "-s", d.sock, "-p", filepath.Join(d.dir, "f2b.pid"),
		"--logtarget", d.log, "--loglevel", "INFO"}
	d.proc, err = d.env.start("fail2ban-server", d.ns, argv, nil, errf, errf)
	return err
}

// checkNS makes sure the daemon runs in its namespace, not the host's.
func (d *daemon) checkNS() error {
	got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", d.proc.pid()))
	if err != nil {
		return err
	}
	want, err := inNS(context.Background(), d.ns, "readlink", "/proc/self/ns/net")
	if err != nil {
		return err
	}
	if got != strings.TrimSpace(want) || got == d.env.selfNS {
		return fmt.Errorf("%s (pid %d) is not in namespace %s", d.kind, d.proc.pid(), d.ns)
	}
	return nil
}

func (d *daemon) pid() int { return d.proc.pid() }

func (d *daemon) cpu() cpuTimes {
	c, _ := readCPU(d.pid())
	return c
}

func (d *daemon) mem() memStatus {
	m, _ := readMem(d.pid())
	return m
}

// status is logjail's status of the jail.
func (d *daemon) status() (control.JailStatus, error) {
	if d.cl == nil {
		return control.JailStatus{}, errors.New("not logjail")
	}
	st, err := d.cl.Status(d.jail)
	if err != nil {
		return control.JailStatus{}, err
	}
	if len(st.Jails) != 1 {
		return control.JailStatus{}, fmt.Errorf("status: %d jails", len(st.Jails))
	}
	return st.Jails[0], nil
}

// alive returns an error when the daemon has exited.
func (d *daemon) alive() error {
	if d.proc != nil && !d.proc.running() {
		return fmt.Errorf("%s exited: %v\n%s", d.kind, d.proc.err, d.logTail(15))
	}
	return nil
}

func (d *daemon) logTail(n int) string {
	if d.log == "" {
		return ""
	}
	f, err := os.Open(d.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// close stops the daemon (SIGTERM: both remove their chains), the monitor, and deletes the
// namespace.
func (d *daemon) close() {
	if d.proc != nil {
		d.proc.stop(20 * time.Second)
		d.env.forget(d.proc)
	}
	if d.mon != nil {
		d.mon.stop()
		d.env.forget(d.mon.proc)
	}
	if err := d.env.delNS(d.ns); err != nil {
		fmt.Fprintln(os.Stderr, "ljbench:", err)
	}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
