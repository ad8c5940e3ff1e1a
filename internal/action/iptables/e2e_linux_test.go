//go:build linux

package iptables

// End-to-end tests: the real backend against real netfilter, inside network
// namespaces that each test creates and deletes, asserted through the
// network. They need root and iproute2; they skip without them unless
// LOGJAIL_E2E=1, which makes a missing prerequisite a failure (CI).
//
//	sudo LOGJAIL_E2E=1 go test -race -run E2E -v ./internal/action/iptables/
//
// How the namespaces are entered:
//   - The backend runs in a child process: this test binary re-executed under
//     `ip netns exec <server ns>` with LOGJAIL_IPTABLES_HELPER set (TestMain
//     turns it into a line-protocol server: start, ban P, banbatch P..., unban P, stop,
//     startkeep, stopkeep, list, exit). Every thread of that process, and so every iptables it
//     forks and every netlink socket it opens, is in the namespace: no code path of the backend,
//     present or future (a goroutine, a library's own exec), can reach the
//     host's firewall. Locking an OS thread and calling setns would protect
//     only the forks made from that one thread. The helper also refuses to
//     run unless its network namespace is the one the test named. A SIGKILL
//     of the helper is a real crash, which the crash test uses.
//   - Sockets (the echo server in the server namespace, the clients in the
//     attacker and bystander namespaces) are made in-process on a locked OS
//     thread that has entered the namespace with setns. A socket keeps the
//     namespace it was created in, and that thread is never unlocked, so it
//     exits with its goroutine instead of returning to the pool.
//   - Every iptables-save and setup command the test itself runs goes
//     through `ip netns exec <ns>` (nsExec); nothing runs in the host
//     namespace but `ip netns add/delete` and `ip -n <ns> link add` (which
//     creates both veth ends directly inside the namespaces).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/logjail/logjail/internal/action"
)

const (
	e2eEnv = "LOGJAIL_E2E"
	// helperEnv holds the JSON Options of the backend helper mode.
	helperEnv = "LOGJAIL_IPTABLES_HELPER"
	// helperNetnsEnv names the namespace the helper must be running in.
	helperNetnsEnv = "LOGJAIL_IPTABLES_HELPER_NETNS"
	// helperNoRestoreEnv, set to 1, makes iptables-restore fail in the
	// helper, so that StartKeep repairs with one call per change.
	helperNoRestoreEnv = "LOGJAIL_IPTABLES_HELPER_NORESTORE"

	ioTimeout = time.Second
)

// The private network: the server has one veth pair to each client.
var (
	srvAtk4 = netip.MustParseAddr("10.200.1.1")
	atk4    = netip.MustParseAddr("10.200.1.2")
	srvBys4 = netip.MustParseAddr("10.200.2.1")
	bys4    = netip.MustParseAddr("10.200.2.2")
	srvAtk6 = netip.MustParseAddr("fd00:200:0:1::1")
	atk6    = netip.MustParseAddr("fd00:200:0:1::2")
	srvBys6 = netip.MustParseAddr("fd00:200:0:2::1")
	bys6    = netip.MustParseAddr("fd00:200:0:2::2")
)

func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(helperMain(spec, os.Getenv(helperNetnsEnv)))
	}
	os.Exit(m.Run())
}

// helperMain serves the backend on stdin/stdout, one command per line; it
// answers "ok" or "error <message>"; list answers "ok" and the targets,
// separated by spaces.
func helperMain(spec, netns string) int {
	if err := checkInNetns(netns); err != nil {
		fmt.Fprintf(os.Stderr, "refusing to run the iptables backend: %v\n", err)
		return 3
	}
	var opts Options
	if err := json.Unmarshal([]byte(spec), &opts); err != nil {
		fmt.Fprintf(os.Stderr, "helper options: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := realDeps()
	if os.Getenv(helperNoRestoreEnv) == "1" {
		d.restore = func(context.Context, bool, int, []byte) ([]byte, error) {
			return []byte("iptables-restore: disabled by the test"), errors.New("exit status 2")
		}
	}
	b, err := newBackend(opts, logger, d)
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		return 2
	}
	ctx := context.Background()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		var err error
		switch verb {
		case "start":
			err = b.Start(ctx)
		case "stop":
			err = b.Stop(ctx)
		case "startkeep":
			err = b.StartKeep(ctx)
		case "stopkeep":
			err = b.StopKeep(ctx)
		case "list":
			var ts []action.Target
			if ts, err = b.List(ctx); err == nil {
				var out strings.Builder
				out.WriteString("ok")
				for _, t := range ts {
					out.WriteString(" " + t.Prefix.String())
				}
				fmt.Println(out.String())
				continue
			}
		case "banbatch":
			var ts []action.Target
			for _, a := range strings.Fields(arg) {
				var p netip.Prefix
				if p, err = netip.ParsePrefix(a); err != nil {
					break
				}
				ts = append(ts, action.Target{Prefix: p})
			}
			if err == nil {
				err = errors.Join(b.BanBatch(ctx, ts)...)
			}
		case "ban", "unban":
			var p netip.Prefix
			if p, err = netip.ParsePrefix(arg); err == nil {
				if verb == "ban" {
					err = b.Ban(ctx, action.Target{Prefix: p})
				} else {
					err = b.Unban(ctx, action.Target{Prefix: p})
				}
			}
		case "exit":
			return 0
		default:
			err = fmt.Errorf("unknown command %q", verb)
		}
		if err != nil {
			fmt.Printf("error %s\n", strings.ReplaceAll(err.Error(), "\n", " | "))
		} else {
			fmt.Println("ok")
		}
	}
	return 0
}

// checkInNetns makes sure this process's network namespace is /run/netns/name
// and not the host's.
func checkInNetns(name string) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("invalid namespace name %q", name)
	}
	var self, want, host unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return err
	}
	if err := unix.Stat("/run/netns/"+name, &want); err != nil {
		return err
	}
	if self.Dev != want.Dev || self.Ino != want.Ino {
		return fmt.Errorf("not in network namespace %s", name)
	}
	if err := unix.Stat("/proc/1/ns/net", &host); err == nil && host.Dev == self.Dev && host.Ino == self.Ino {
		return errors.New("in the host's network namespace")
	}
	return nil
}

// requireE2E skips, or with LOGJAIL_E2E=1 fails, when the test cannot run.
func requireE2E(t testing.TB) {
	t.Helper()
	if os.Getenv(e2eEnv) != "1" && testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	if os.Geteuid() != 0 {
		missing(t, "not root (network namespaces and iptables need root)")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing(t, bin+" not found in PATH")
		}
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		missing(t, fmt.Sprintf("ip netns does not work: %v: %s", err, bytes.TrimSpace(out)))
	}
}

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(e2eEnv) == "1" {
		t.Fatalf("%s=1, but %s", e2eEnv, what)
	}
	t.Skipf("skipping end-to-end test: %s (with %s=1 this fails)", what, e2eEnv)
}

// topo is one test's private network: a server and two clients.
type topo struct {
	srv, atk, bys string
	v6            bool // IPv6 and ip6tables work in the server namespace
}

func newTopo(t testing.TB) *topo {
	t.Helper()
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	id := fmt.Sprintf("%d-%08x", os.Getpid(), h.Sum32())
	tp := &topo{srv: "lj-srv-" + id, atk: "lj-atk-" + id, bys: "lj-bys-" + id}
	for _, ns := range []string{tp.srv, tp.atk, tp.bys} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns delete %s: %v: %s", ns, err, out)
			}
		})
	}
	// Both ends are created inside the namespaces, never in the host's.
	run(t, "ip", "-n", tp.srv, "link", "add", "to-atk", "type", "veth", "peer", "name", "eth0", "netns", tp.atk)
	run(t, "ip", "-n", tp.srv, "link", "add", "to-bys", "type", "veth", "peer", "name", "eth0", "netns", tp.bys)
	links := []struct {
		ns, dev string
		a4, a6  netip.Addr
	}{
		{tp.srv, "to-atk", srvAtk4, srvAtk6},
		{tp.srv, "to-bys", srvBys4, srvBys6},
		{tp.atk, "eth0", atk4, atk6},
		{tp.bys, "eth0", bys4, bys6},
	}
	tp.v6 = true
	for _, l := range links {
		run(t, "ip", "-n", l.ns, "addr", "add", l.a4.String()+"/24", "dev", l.dev)
		if out, err := exec.Command("ip", "-n", l.ns, "addr", "add", l.a6.String()+"/64", "dev", l.dev, "nodad").CombinedOutput(); err != nil {
			t.Logf("no IPv6 in %s: %v: %s", l.ns, err, bytes.TrimSpace(out))
			tp.v6 = false
		}
		run(t, "ip", "-n", l.ns, "link", "set", l.dev, "up")
		run(t, "ip", "-n", l.ns, "link", "set", "lo", "up")
	}
	if tp.v6 {
		if out, err := nsOutput(tp.srv, "ip6tables-save"); err != nil {
			t.Logf("IPv6 parts skipped: ip6tables-save does not work in the namespace: %v: %s", err, out)
			tp.v6 = false
		}
	}
	t.Logf("network namespaces: server %s, attacker %s, bystander %s; IPv6: %v", tp.srv, tp.atk, tp.bys, tp.v6)
	return tp
}

// fam is one address family under test: each side's address and the tools.
type fam struct {
	name        string
	srvAtk, atk netip.Addr
	srvBys, bys netip.Addr
	save, ipt   string
}

// families lists the address families under test: IPv4, and IPv6 if it works.
func (tp *topo) families() []fam {
	fs := []fam{{"ipv4", srvAtk4, atk4, srvBys4, bys4, "iptables-save", "iptables"}}
	if tp.v6 {
		fs = append(fs, fam{"ipv6", srvAtk6, atk6, srvBys6, bys6, "ip6tables-save", "ip6tables"})
	}
	return fs
}

func run(t testing.TB, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
}

// nsOutput runs argv inside namespace ns.
func nsOutput(ns string, argv ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...).CombinedOutput()
	return string(out), err
}

func nsExec(t testing.TB, ns string, argv ...string) string {
	t.Helper()
	out, err := nsOutput(ns, argv...)
	if err != nil {
		t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(argv, " "), err, strings.TrimSpace(out))
	}
	return out
}

var counters = regexp.MustCompile(` \[\d+:\d+\]$`)

// save returns iptables-save (and ip6tables-save) of the server namespace:
// tables, chains with their policies, rules; without comments and counters.
func (tp *topo) save(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range tp.families() {
		for _, l := range strings.Split(nsExec(t, tp.srv, f.save), "\n") {
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			out = append(out, f.name+" "+counters.ReplaceAllString(l, ""))
		}
	}
	return out
}

// foreignRules gives the server a firewall of its own, which the backend
// must leave as it is: a user chain, rules before and after.
func (tp *topo) foreignRules(t *testing.T) {
	t.Helper()
	for _, f := range tp.families() {
		nsExec(t, tp.srv, f.ipt, "-N", "keep")
		nsExec(t, tp.srv, f.ipt, "-A", "keep", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT")
		nsExec(t, tp.srv, f.ipt, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
		nsExec(t, tp.srv, f.ipt, "-A", "INPUT", "-j", "keep")
	}
}

// inNetns runs fn on a fresh OS thread that has entered namespace ns. The
// thread stays locked, so it is thrown away when fn returns.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// listen runs echo servers on the given ports in the server namespace.
func (tp *topo) listen(t *testing.T, ports ...int) {
	t.Helper()
	var (
		mu    sync.Mutex
		lns   []net.Listener
		conns []net.Conn
		wg    sync.WaitGroup
	)
	// One cleanup, in this order: stop accepting, close the connections,
	// then wait for the goroutines.
	t.Cleanup(func() {
		mu.Lock()
		for _, ln := range lns {
			ln.Close()
		}
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	for _, port := range ports {
		var ln net.Listener
		err := inNetns(tp.srv, func() (err error) {
			ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
			return err
		})
		if err != nil {
			t.Fatalf("listen on %d in %s: %v", port, tp.srv, err)
		}
		mu.Lock()
		lns = append(lns, ln)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = io.Copy(c, c)
				}()
			}
		}()
	}
}

// dial connects from namespace ns to addr:port within ioTimeout.
func dial(ns string, addr netip.Addr, port int) (net.Conn, error) {
	return dialFrom(ns, netip.Addr{}, addr, port)
}

// dialFrom is dial from source address src (the kernel's choice when invalid).
func dialFrom(ns string, src, addr netip.Addr, port int) (net.Conn, error) {
	d := net.Dialer{Timeout: ioTimeout}
	if src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		c, err = d.Dial("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		return err
	})
	return c, err
}

// echo sends a line on c and waits up to ioTimeout for it to come back.
func echo(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	msg := []byte("logjail\n")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, msg) {
		return fmt.Errorf("echo: got %q", buf)
	}
	return nil
}

func wantConnect(t *testing.T, who, ns string, addr netip.Addr, port int) {
	t.Helper()
	c, err := dial(ns, addr, port)
	if err != nil {
		t.Errorf("%s -> %v: connect: %v, want a connection", who, netip.AddrPortFrom(addr, uint16(port)), err)
		return
	}
	defer c.Close()
	if err := echo(c); err != nil {
		t.Errorf("%s -> %v: echo: %v", who, netip.AddrPortFrom(addr, uint16(port)), err)
	}
}

// wantBlocked checks that a connect fails the way block makes it fail:
// REJECT refused at once, DROP timed out.
func wantBlocked(t *testing.T, who, ns string, addr netip.Addr, port int, block BlockType) {
	t.Helper()
	start := time.Now()
	c, err := dial(ns, addr, port)
	elapsed := time.Since(start)
	ap := netip.AddrPortFrom(addr, uint16(port))
	if err == nil {
		c.Close()
		t.Errorf("%s -> %v: connected, want it banned", who, ap)
		return
	}
	var ne net.Error
	switch block {
	case BlockReject:
		if !errors.Is(err, syscall.ECONNREFUSED) || elapsed > ioTimeout/2 {
			t.Errorf("%s -> %v: %v after %v, want connection refused at once", who, ap, err, elapsed)
		}
	case BlockDrop:
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s -> %v: %v after %v, want a timeout", who, ap, err, elapsed)
		}
	}
}

// helper is the backend running in the server namespace.
type helper struct {
	t     testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	logs  *syncBuffer
	done  chan struct{}
	err   error // of Wait, once done is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startHelper(t testing.TB, ns string, opts Options, env ...string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, lines: make(chan string, 64), logs: &syncBuffer{}, done: make(chan struct{})}
	h.cmd = exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	h.cmd.Env = append(os.Environ(), helperEnv+"="+string(spec), helperNetnsEnv+"="+ns)
	h.cmd.Env = append(h.cmd.Env, env...)
	h.cmd.Stderr = h.logs
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start backend helper: %v", err)
	}
	go func() {
		// Wait closes stdout: read it to the end first.
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 64<<20) // list answers with every target on one line
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.err = h.cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		h.kill()
		if t.Failed() {
			t.Logf("backend helper (%s) stderr:\n%s", ns, h.logs)
		}
	})
	return h
}

func (h *helper) do(cmd string) error {
	h.t.Helper()
	_, err := h.ask(cmd)
	return err
}

// ask sends cmd and returns what follows "ok" in the answer.
func (h *helper) ask(cmd string) (string, error) {
	h.t.Helper()
	if _, err := fmt.Fprintln(h.stdin, cmd); err != nil {
		return "", fmt.Errorf("send %q: %w", cmd, err)
	}
	select {
	case line, ok := <-h.lines:
		switch {
		case !ok:
			return "", fmt.Errorf("%s: backend helper exited", cmd)
		case line == "ok":
			return "", nil
		case strings.HasPrefix(line, "ok "):
			return strings.TrimPrefix(line, "ok "), nil
		case strings.HasPrefix(line, "error "):
			return "", errors.New(strings.TrimPrefix(line, "error "))
		}
		return "", fmt.Errorf("%s: unexpected answer %q", cmd, line)
	case <-time.After(60 * time.Second):
		return "", fmt.Errorf("%s: no answer within 60s", cmd)
	}
}

// list asks the backend for its targets (List), as prefixes in CIDR form.
func (h *helper) list() []string {
	h.t.Helper()
	out, err := h.ask("list")
	if err != nil {
		h.t.Fatalf("backend list: %v", err)
	}
	return strings.Fields(out)
}

func (h *helper) must(cmd string) {
	h.t.Helper()
	if err := h.do(cmd); err != nil {
		h.t.Fatalf("backend %s: %v", cmd, err)
	}
}

// crash kills the backend with SIGKILL: it gets no chance to Stop.
func (h *helper) crash() {
	h.t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		h.t.Fatalf("kill backend helper: %v", err)
	}
	h.wait()
}

// exit ends the helper normally and checks its exit status (a data race in
// the child makes it non-zero).
func (h *helper) exit() {
	h.t.Helper()
	fmt.Fprintln(h.stdin, "exit")
	h.stdin.Close()
	h.wait()
	if h.err != nil {
		h.t.Errorf("backend helper: %v", h.err)
	}
}

func (h *helper) wait() {
	h.t.Helper()
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		h.t.Fatal("backend helper did not exit")
	}
}

func (h *helper) kill() {
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.cmd.Process.Kill()
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		h.t.Error("backend helper did not exit after SIGKILL")
	}
}

func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// TestE2EBan: before a ban both clients connect; after Ban(attacker) the
// attacker's connects to the jail's port fail the way the block type says
// (and its established connection stops), while the bystander and the
// attacker's connects to another port go through; Unban restores the
// attacker; Stop leaves the server's firewall exactly as before Start.
func TestE2EBan(t *testing.T) {
	requireE2E(t)
	for _, block := range []BlockType{BlockReject, BlockDrop} {
		t.Run(string(block), func(t *testing.T) {
			tp := newTopo(t)
			tp.listen(t, 22, 8080)
			tp.foreignRules(t)
			before := tp.save(t)
			fams := tp.families()
			for _, f := range fams {
				wantConnect(t, f.name+" attacker", tp.atk, f.srvAtk, 22)
				wantConnect(t, f.name+" bystander", tp.bys, f.srvBys, 22)
			}

			h := startHelper(t, tp.srv, Options{Jail: "e2e", Ports: "ssh", BlockType: block, IPv6: tp.v6})
			h.must("start")
			tp.wantOwned(t, "lj-e2e", 0)
			for _, f := range fams {
				wantConnect(t, f.name+" attacker after start", tp.atk, f.srvAtk, 22)
			}

			established := map[string]net.Conn{}
			for _, f := range fams {
				c, err := dial(tp.atk, f.srvAtk, 22)
				if err != nil {
					t.Fatalf("%s attacker: %v", f.name, err)
				}
				defer c.Close()
				established[f.name] = c
			}

			for _, f := range fams {
				h.must("ban " + hostPrefix(f.atk))
				h.must("ban " + hostPrefix(f.atk)) // idempotent
			}
			tp.wantOwned(t, "lj-e2e", 1)
			for _, f := range fams {
				wantBlocked(t, f.name+" banned attacker", tp.atk, f.srvAtk, 22, block)
				wantConnect(t, f.name+" bystander", tp.bys, f.srvBys, 22)
				wantConnect(t, f.name+" banned attacker on a port outside the jail", tp.atk, f.srvAtk, 8080)
				// Our jump is the first rule of INPUT, and the chain matches
				// every packet, not only new connections.
				if err := echo(established[f.name]); err == nil {
					t.Errorf("%s: the attacker's established connection still works after the ban", f.name)
				}
			}

			for _, f := range fams {
				h.must("unban " + hostPrefix(f.atk))
				h.must("unban " + hostPrefix(f.atk)) // idempotent
				wantConnect(t, f.name+" unbanned attacker", tp.atk, f.srvAtk, 22)
			}
			h.must("stop")
			if diff := cmp.Diff(before, tp.save(t)); diff != "" {
				t.Errorf("firewall after Stop differs from before Start (-before +after):\n%s", diff)
			}
			h.exit()
		})
	}
}

// TestE2EConntrack: with an ESTABLISHED,RELATED accept in front of the jail's
// chain (the usual firewall, and why conntrack cutting exists), a ban stops
// only new connections; Conntrack on also cuts the attacker's established
// connection, and leaves the bystander's.
func TestE2EConntrack(t *testing.T) {
	requireE2E(t)
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("conntrack=%v", on), func(t *testing.T) {
			tp := newTopo(t)
			tp.listen(t, 22)
			fams := tp.guardEstablished(t)
			before := tp.save(t)

			h := startHelper(t, tp.srv, Options{Jail: "ct", Chain: "guard", Ports: "22", IPv6: tp.v6, Conntrack: on})
			h.must("start")
			type pair struct{ atk, bys net.Conn }
			conns := map[string]pair{}
			for _, f := range fams {
				a, err := dial(tp.atk, f.srvAtk, 22)
				if err != nil {
					t.Fatalf("%s attacker: %v", f.name, err)
				}
				defer a.Close()
				b, err := dial(tp.bys, f.srvBys, 22)
				if err != nil {
					t.Fatalf("%s bystander: %v", f.name, err)
				}
				defer b.Close()
				if err := errors.Join(echo(a), echo(b)); err != nil {
					t.Fatalf("%s: echo before the ban: %v", f.name, err)
				}
				conns[f.name] = pair{a, b}
			}
			for _, f := range fams {
				h.must("ban " + hostPrefix(f.atk))
			}
			for _, f := range fams {
				wantBlocked(t, f.name+" banned attacker", tp.atk, f.srvAtk, 22, BlockReject)
				if err := echo(conns[f.name].bys); err != nil {
					t.Errorf("%s: bystander's established connection broke: %v", f.name, err)
				}
				// The cut runs on the backend's cutter goroutine, a few milliseconds after Ban.
				err := echo(conns[f.name].atk)
				for deadline := time.Now().Add(3 * time.Second); on && err == nil && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
					err = echo(conns[f.name].atk)
				}
				switch {
				case on && err == nil:
					t.Errorf("%s: attacker's established connection still works with Conntrack on", f.name)
				case !on && err != nil:
					t.Errorf("%s: attacker's established connection broke without Conntrack (%v): the test does not show what conntrack adds", f.name, err)
				}
			}
			for _, f := range fams {
				h.must("unban " + hostPrefix(f.atk))
				wantConnect(t, f.name+" unbanned attacker", tp.atk, f.srvAtk, 22)
			}
			h.must("stop")
			if diff := cmp.Diff(before, tp.save(t)); diff != "" {
				t.Errorf("firewall after Stop differs from before Start (-before +after):\n%s", diff)
			}
			h.exit()
		})
	}
}

// guardEstablished sets up the usual firewall in the server's namespace: established and
// related packets accepted first, then a chain "guard" for the jail's jump. It returns the
// families tested.
func (tp *topo) guardEstablished(t *testing.T) []fam {
	t.Helper()
	fams := tp.families()
	for _, f := range fams {
		nsExec(t, tp.srv, f.ipt, "-N", "guard")
		nsExec(t, tp.srv, f.ipt, "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
		nsExec(t, tp.srv, f.ipt, "-A", "INPUT", "-j", "guard")
	}
	return fams
}

// TestE2EConntrackBurst: a burst of bans (one BanBatch, as the daemon sends a flood) cuts the
// established connections of every banned address and prefix, in fewer walks of the conntrack
// table than targets, and leaves those of the addresses not banned.
func TestE2EConntrackBurst(t *testing.T) {
	requireE2E(t)
	tp := newTopo(t)
	tp.listen(t, 22)
	fams := tp.guardEstablished(t)
	h := startHelper(t, tp.srv, Options{Jail: "burst", Chain: "guard", Ports: "22", IPv6: tp.v6, Conntrack: true})
	h.must("start")

	// In each family, four more attacker addresses banned one by one, and two in a prefix
	// banned whole; the attacker's own address stays unbanned.
	nth := func(a netip.Addr, k int) netip.Addr {
		for range k {
			a = a.Next()
		}
		return a
	}
	type conn struct {
		who string
		c   net.Conn
	}
	var banned, kept []conn
	var targets []string
	for _, f := range fams {
		plen, nodad := 24, []string(nil)
		if f.atk.Is6() {
			plen, nodad = 64, []string{"nodad"}
		}
		srcs := []netip.Addr{nth(f.atk, 6), nth(f.atk, 7), nth(f.atk, 8), nth(f.atk, 9), nth(f.atk, 14), nth(f.atk, 15)}
		for i, a := range srcs {
			run(t, append([]string{"ip", "-n", tp.atk, "addr", "add", netip.PrefixFrom(a, plen).String(), "dev", "eth0"}, nodad...)...)
			if i < 4 {
				targets = append(targets, hostPrefix(a))
			}
		}
		// nth 14 is aligned on 4 in both families (10.200.1.16, fd00:200:0:1::10).
		targets = append(targets, netip.PrefixFrom(srcs[4], f.atk.BitLen()-2).String())
		for _, a := range srcs {
			c, err := dialFrom(tp.atk, a, f.srvAtk, 22)
			if err != nil {
				t.Fatalf("%s attacker %v: %v", f.name, a, err)
			}
			defer c.Close()
			banned = append(banned, conn{fmt.Sprintf("%s attacker %v", f.name, a), c})
		}
		for _, side := range []struct {
			who, ns     string
			src, server netip.Addr
		}{{"attacker not banned", tp.atk, f.atk, f.srvAtk}, {"bystander", tp.bys, f.bys, f.srvBys}} {
			c, err := dialFrom(side.ns, side.src, side.server, 22)
			if err != nil {
				t.Fatalf("%s %s: %v", f.name, side.who, err)
			}
			defer c.Close()
			kept = append(kept, conn{f.name + " " + side.who, c})
		}
	}
	for _, c := range append(slices.Clone(banned), kept...) {
		if err := echo(c.c); err != nil {
			t.Fatalf("%s: echo before the ban: %v", c.who, err)
		}
	}

	h.must("banbatch " + strings.Join(targets, " "))
	for _, c := range banned {
		err := echo(c.c)
		for deadline := time.Now().Add(3 * time.Second); err == nil && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			err = echo(c.c)
		}
		if err == nil {
			t.Errorf("%s: established connection still works after the burst", c.who)
		}
	}
	for _, c := range kept {
		if err := echo(c.c); err != nil {
			t.Errorf("%s: established connection broke: %v", c.who, err)
		}
	}
	h.must("stop")
	h.exit()

	walks, cut := 0, 0
	for _, m := range cutLogRE.FindAllStringSubmatch(h.logs.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		walks++
		cut += n
	}
	t.Logf("%d targets cut in %d walks; log:\n%s", cut, walks, h.logs)
	if cut != len(targets) || walks >= len(targets) {
		t.Errorf("%d targets cut in %d walks, want %d in fewer walks", cut, walks, len(targets))
	}
}

// cutLogRE reads the targets of one walk from the backend's log.
var cutLogRE = regexp.MustCompile(`msg="(?:cut connections|no connections to cut)" .*targets=(\d+)`)

// TestE2ECrashRestart: a backend bans and is killed (no Stop); leftovers are
// made worse by a duplicate jump and the jump of an earlier configuration.
// A second backend's Start leaves one chain, one jump at the top of INPUT and
// no ban (the ban manager re-applies bans); Stop then restores the firewall.
func TestE2ECrashRestart(t *testing.T) {
	requireE2E(t)
	tp := newTopo(t)
	tp.listen(t, 22)
	tp.foreignRules(t)
	before := tp.save(t)
	fams := tp.families()
	opts := Options{Jail: "crash", Ports: "ssh", IPv6: tp.v6}

	first := startHelper(t, tp.srv, opts)
	first.must("start")
	for _, f := range fams {
		first.must("ban " + hostPrefix(f.atk))
		wantBlocked(t, f.name+" banned attacker", tp.atk, f.srvAtk, 22, BlockReject)
	}
	first.crash()
	for _, f := range fams {
		nsExec(t, tp.srv, f.ipt, "-A", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "lj-crash")
		nsExec(t, tp.srv, f.ipt, "-A", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "2222", "-j", "lj-crash")
	}
	tp.wantOwnedCount(t, "lj-crash", 3, 1)

	second := startHelper(t, tp.srv, opts)
	second.must("start")
	tp.wantOwned(t, "lj-crash", 0)
	for _, f := range fams {
		wantConnect(t, f.name+" attacker after restart", tp.atk, f.srvAtk, 22)
		second.must("ban " + hostPrefix(f.atk))
		wantBlocked(t, f.name+" banned attacker", tp.atk, f.srvAtk, 22, BlockReject)
		wantConnect(t, f.name+" bystander", tp.bys, f.srvBys, 22)
	}
	tp.wantOwned(t, "lj-crash", 1)
	second.must("stop")
	if diff := cmp.Diff(before, tp.save(t)); diff != "" {
		t.Errorf("firewall after Stop differs from before the first Start (-before +after):\n%s", diff)
	}
	second.exit()
}

// wantOwned checks, in each family, that chain exists once, that exactly one
// rule jumps to it and that it is the first rule of INPUT, and that the chain
// holds bans rules.
func (tp *topo) wantOwned(t *testing.T, chain string, bans int) {
	t.Helper()
	rules := tp.wantOwnedCount(t, chain, 1, bans)
	for _, f := range tp.families() {
		if first := rules[f.name]; !strings.HasSuffix(first, " -j "+chain) {
			t.Errorf("%s: first rule of INPUT is %q, want the jump to %s", f.name, first, chain)
		}
	}
}

// wantOwnedCount checks the number of jumps to chain and of rules in it, and
// returns each family's first INPUT rule.
func (tp *topo) wantOwnedCount(t *testing.T, chain string, jumps, bans int) map[string]string {
	t.Helper()
	first := map[string]string{}
	for _, f := range tp.families() {
		var decl, j, b int
		for _, l := range strings.Split(nsExec(t, tp.srv, f.save, "-t", "filter"), "\n") {
			switch {
			case strings.HasPrefix(l, ":"+chain+" "):
				decl++
			case strings.HasPrefix(l, "-A "+chain+" "):
				b++
				if !strings.Contains(l, "-j REJECT") && !strings.Contains(l, "-j DROP") {
					t.Errorf("%s: unexpected rule in our chain: %q", f.name, l)
				}
			case strings.HasPrefix(l, "-A ") && strings.HasSuffix(l, " -j "+chain):
				j++
			}
			if strings.HasPrefix(l, "-A INPUT ") && first[f.name] == "" {
				first[f.name] = l
			}
		}
		if decl != 1 || j != jumps || b != bans {
			t.Errorf("%s: chain %s declared %d times, %d jumps to it, %d rules in it; want 1, %d, %d", f.name, chain, decl, j, b, jumps, bans)
		}
	}
	return first
}
