//go:build linux

package e2e

// The harness: private networks, the daemon and the demo web site in them, the CLI, the
// firewall as iptables-save sees it, and log lines written by hand.
//
// Safety, as in internal/action/iptables/e2e_linux_test.go: the daemon, demoweb and every
// iptables command run under `ip netns exec <server ns>`, so everything they do to netfilter
// happens there; both ends of each veth pair are created inside the namespaces; client sockets
// are made on a locked OS thread that entered the client's namespace (and is thrown away).
// Nothing runs in the host's namespace but `ip netns add/delete` and `ip -n NS ...`, and the
// CLI, which only talks to the daemon's unix socket.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/logjail/logjail/internal/control"
)

// The private network of every test (each test has its own namespaces, so they do not collide).
// The links are /16s so that the attacker's /24 holds neither the server's address nor the
// bystander's: a prefix ban of it is allowed (a prefix holding one of the host's own addresses
// is refused).
var (
	srvAtk4 = netip.MustParseAddr("10.200.0.1") // the server, on the attacker's link
	atk4    = netip.MustParseAddr("10.200.1.2")
	srvBys4 = netip.MustParseAddr("10.201.0.1") // the server, on the bystander's link
	bys4    = netip.MustParseAddr("10.201.1.2")
	srvAtk6 = netip.MustParseAddr("fd00:200::1")
	atk6    = netip.MustParseAddr("fd00:200::2")
	srvBys6 = netip.MustParseAddr("fd00:201::1")
	bys6    = netip.MustParseAddr("fd00:201::2")
	// atkNet is the attacker's /24, for prefix bans.
	atkNet = netip.MustParsePrefix("10.200.1.0/24")
)

const (
	webPort   = 80 // the wordpress jail's port = http,https
	ioTimeout = 2 * time.Second
)

// topo is one test's private network: a server and two clients, each in its namespace.
type topo struct {
	srv string
	atk peer
	bys peer
	v6  bool // IPv6 works in the namespaces
}

// peer is a client: its namespace, its addresses and the server's on its link.
type peer struct {
	name       string
	ns         string
	a4, a6     netip.Addr
	srv4, srv6 netip.Addr
}

// newTopo makes the namespaces and links of t, and removes them when t ends.
func newTopo(t *testing.T) *topo {
	t.Helper()
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	id := fmt.Sprintf("%d-%08x", os.Getpid(), h.Sum32())
	tp := &topo{
		srv: "lje-srv-" + id,
		atk: peer{name: "attacker", ns: "lje-atk-" + id, a4: atk4, a6: atk6, srv4: srvAtk4, srv6: srvAtk6},
		bys: peer{name: "bystander", ns: "lje-bys-" + id, a4: bys4, a6: bys6, srv4: srvBys4, srv6: srvBys6},
	}
	for _, ns := range []string{tp.srv, tp.atk.ns, tp.bys.ns} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			// Whatever still runs in our namespace was started by this test; never this
			// process itself (a thread of it in the namespace would list it).
			if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
				for _, f := range strings.Fields(string(out)) {
					var pid int
					if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
						t.Logf("killing process %d left in %s", pid, ns)
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns delete %s: %v: %s", ns, err, out)
			}
		})
	}
	run(t, "ip", "-n", tp.srv, "link", "add", "to-atk", "type", "veth", "peer", "name", "eth0", "netns", tp.atk.ns)
	run(t, "ip", "-n", tp.srv, "link", "add", "to-bys", "type", "veth", "peer", "name", "eth0", "netns", tp.bys.ns)
	links := []struct {
		ns, dev string
		a4, a6  netip.Addr
	}{
		{tp.srv, "to-atk", srvAtk4, srvAtk6},
		{tp.srv, "to-bys", srvBys4, srvBys6},
		{tp.atk.ns, "eth0", atk4, atk6},
		{tp.bys.ns, "eth0", bys4, bys6},
	}
	tp.v6 = true
	for _, l := range links {
		run(t, "ip", "-n", l.ns, "addr", "add", l.a4.String()+"/16", "dev", l.dev)
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
	// The safety net: the server namespace must be another network stack than ours.
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(nsExec(t, tp.srv, "readlink", "/proc/self/ns/net")); out == self {
		t.Fatalf("namespace %s is this process's network namespace", tp.srv)
	}
	return tp
}

func run(t *testing.T, argv ...string) {
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

func nsExec(t *testing.T, ns string, argv ...string) string {
	t.Helper()
	out, err := nsOutput(ns, argv...)
	if err != nil {
		t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(argv, " "), err, strings.TrimSpace(out))
	}
	return out
}

// --- traffic -----------------------------------------------------------------------------

// inNetns runs fn on an OS thread that has entered namespace ns; the sockets fn makes stay
// in ns. The thread goes back to its own namespace afterwards; if it cannot, it stays locked
// and is thrown away with its goroutine.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err) // the thread's state is unknown: let it die
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// dial connects from namespace ns to addr within ioTimeout.
func dial(ctx context.Context, ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		d := net.Dialer{Timeout: ioTimeout}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// client is an HTTP client whose connections start in p's namespace.
func (p peer) client(t *testing.T, keepAlive bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dial(ctx, p.ns, addr)
		},
		DisableKeepAlives: !keepAlive,
		Proxy:             nil,
	}
	if keepAlive {
		t.Cleanup(tr.CloseIdleConnections)
	}
	return &http.Client{Transport: tr, Timeout: ioTimeout}
}

// fam is an address family: "ipv4" or "ipv6".
type fam string

const (
	ipv4 fam = "ipv4"
	ipv6 fam = "ipv6"
)

func (tp *topo) fams() []fam {
	if tp.v6 {
		return []fam{ipv4, ipv6}
	}
	return []fam{ipv4}
}

func (p peer) addr(f fam) netip.Addr {
	if f == ipv6 {
		return p.a6
	}
	return p.a4
}

func (p peer) url(f fam, path string) string {
	srv := p.srv4
	if f == ipv6 {
		srv = p.srv6
	}
	return "http://" + netip.AddrPortFrom(srv, webPort).String() + path
}

func (p peer) srvAddr(f fam) string {
	srv := p.srv4
	if f == ipv6 {
		srv = p.srv6
	}
	return netip.AddrPortFrom(srv, webPort).String()
}

// get fetches path from the demo site; it returns the HTTP status.
func (p peer) get(t *testing.T, f fam, path string) (int, error) {
	resp, err := p.client(t, false).Get(p.url(f, path))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// wantServed checks that p gets GET / answered with 200 over f.
func (p peer) wantServed(t *testing.T, f fam, why string) {
	t.Helper()
	code, err := p.get(t, f, "/")
	if err != nil {
		t.Errorf("%s (%s, %s): GET %s: %v, want 200", p.name, f, why, p.url(f, "/"), err)
	} else if code != http.StatusOK {
		t.Errorf("%s (%s, %s): GET %s: HTTP %d, want 200", p.name, f, why, p.url(f, "/"), code)
	}
}

// wantRefused checks that p's TCP connect to the site fails at once with "connection refused":
// the jail's REJECT (a TCP reset), not a timeout and not a connection.
func (p peer) wantRefused(t *testing.T, f fam, why string) {
	t.Helper()
	start := time.Now()
	c, err := dial(context.Background(), p.ns, p.srvAddr(f))
	elapsed := time.Since(start)
	if err == nil {
		c.Close()
		t.Errorf("%s (%s, %s): connected to %s, want it banned", p.name, f, why, p.srvAddr(f))
		return
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || elapsed > ioTimeout/2 {
		t.Errorf("%s (%s, %s): connect %s: %v after %v, want connection refused at once", p.name, f, why, p.srvAddr(f), err, elapsed)
	}
}

// wantDropped checks that p's TCP connect to the site times out: a DROP ban.
func (p peer) wantDropped(t *testing.T, f fam, why string) {
	t.Helper()
	c, err := dial(context.Background(), p.ns, p.srvAddr(f))
	if err == nil {
		c.Close()
		t.Errorf("%s (%s, %s): connected to %s, want it dropped", p.name, f, why, p.srvAddr(f))
		return
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%s (%s, %s): connect %s: %v, want a timeout (DROP)", p.name, f, why, p.srvAddr(f), err)
	}
}

// The daemon answers a ban or an unban before the kernel has the change (the rule goes in off
// the request's path), so after one the tests wait for the network to show it.
const settle = 3 * time.Second

// waitRefused waits up to settle for p's connections to be refused, then checks that it stays
// so (wantRefused).
func (p peer) waitRefused(t *testing.T, f fam, why string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for time.Now().Before(deadline) {
		c, err := dial(context.Background(), p.ns, p.srvAddr(f))
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	p.wantRefused(t, f, why)
}

// waitServed waits up to settle for p to be served, then checks that it stays so.
func (p peer) waitServed(t *testing.T, f fam, why string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for time.Now().Before(deadline) {
		if code, err := p.get(t, f, "/"); err == nil && code == http.StatusOK {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.wantServed(t, f, why)
}

// xmlrpcBody is what the demo's attacker posts: a password guess.
const xmlrpcBody = `<?xml version="1.0"?><methodCall><methodName>wp.getUsersBlogs</methodName><params><param><value>admin</value></param><param><value>guess</value></param></params></methodCall>`

// flood posts to /xmlrpc.php over one kept-alive connection (then new ones), as fast as it
// can, until a request fails, max requests were answered, or the time is up. It returns the
// number of requests answered 200 and the error that stopped it (nil if none did).
func (p peer) flood(t *testing.T, f fam, max int, within time.Duration) (int, error) {
	t.Helper()
	c := p.client(t, true)
	deadline := time.Now().Add(within)
	n := 0
	for n < max && time.Now().Before(deadline) {
		resp, err := c.Post(p.url(f, "/xmlrpc.php"), "text/xml", strings.NewReader(xmlrpcBody))
		if err != nil {
			return n, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return n, fmt.Errorf("POST /xmlrpc.php: HTTP %d", resp.StatusCode)
		}
		n++
	}
	return n, nil
}

// --- the firewall -----------------------------------------------------------------------

var chainCounters = regexp.MustCompile(` \[\d+:\d+\]$`)

var builtinChains = map[string]bool{"INPUT": true, "FORWARD": true, "OUTPUT": true, "PREROUTING": true, "POSTROUTING": true}

// firewall returns iptables-save and ip6tables-save of the server namespace: every table, its
// chains with their policies, and its rules, without comments and counters. A table that holds
// nothing (built-in chains only, policy ACCEPT, no rule) is left out: with iptables-nft a
// table exists only once something used it, and an empty one filters nothing. So a pristine
// namespace (no table) equals one where the daemon made and then removed its chains (an empty
// filter table is left).
func (tp *topo) firewall(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range tp.fams() {
		save := "iptables-save"
		if f == ipv6 {
			save = "ip6tables-save"
		}
		var table []string
		empty := true
		for _, l := range strings.Split(nsExec(t, tp.srv, save), "\n") {
			l = strings.TrimSpace(l)
			switch {
			case l == "" || strings.HasPrefix(l, "#"):
				continue
			case strings.HasPrefix(l, "*"):
				table, empty = nil, true
			case strings.HasPrefix(l, ":"):
				l = chainCounters.ReplaceAllString(l, "")
				fs := strings.Fields(l[1:])
				if len(fs) < 2 || !builtinChains[fs[0]] || fs[1] != "ACCEPT" {
					empty = false
				}
			case l == "COMMIT":
				if !empty {
					out = append(out, table...)
					out = append(out, string(f)+" COMMIT")
				}
				continue
			default:
				empty = false
			}
			table = append(table, string(f)+" "+l)
		}
	}
	return out
}

// ownFirewall gives the server a firewall of its own, which the daemon must leave as it is:
// a user chain, rules before and after its jumps, in both families.
func (tp *topo) ownFirewall(t *testing.T) {
	t.Helper()
	for _, f := range tp.fams() {
		ipt := "iptables"
		if f == ipv6 {
			ipt = "ip6tables"
		}
		nsExec(t, tp.srv, ipt, "-N", "admin-keep")
		nsExec(t, tp.srv, ipt, "-A", "admin-keep", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT")
		nsExec(t, tp.srv, ipt, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
		nsExec(t, tp.srv, ipt, "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
		nsExec(t, tp.srv, ipt, "-A", "INPUT", "-j", "admin-keep")
		nsExec(t, tp.srv, ipt, "-A", "OUTPUT", "-p", "udp", "--dport", "9", "-j", "DROP")
	}
}

// owned is what one family's filter table holds of the chains named lj-*.
type owned struct {
	decl  map[string]int      // chain -> times declared
	jumps map[string][]string // chain -> the rules jumping to it
	rules map[string][]string // chain -> its rules
	first string              // the first rule of INPUT
}

func (tp *topo) owned(t *testing.T, f fam) owned {
	t.Helper()
	save := "iptables-save"
	if f == ipv6 {
		save = "ip6tables-save"
	}
	o := owned{decl: map[string]int{}, jumps: map[string][]string{}, rules: map[string][]string{}}
	out, err := nsOutput(tp.srv, save, "-t", "filter")
	if err != nil {
		t.Fatalf("%s -t filter: %v: %s", save, err, out)
	}
	jump := regexp.MustCompile(` -j (lj-\S+)$`)
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, ":lj-"):
			o.decl[strings.Fields(l[1:])[0]]++
		case strings.HasPrefix(l, "-A lj-"):
			c := strings.Fields(l)[1]
			o.rules[c] = append(o.rules[c], l)
		case strings.HasPrefix(l, "-A "):
			if m := jump.FindStringSubmatch(l); m != nil {
				o.jumps[m[1]] = append(o.jumps[m[1]], l)
			}
			if o.first == "" && strings.HasPrefix(l, "-A INPUT ") {
				o.first = l
			}
		}
	}
	return o
}

// wantChains checks, in each family, that the daemon has exactly the chains lj-<jail> of the
// jails named, each declared once with exactly one jump to it, from the top of INPUT for the
// first; that no rule in them is repeated; and it returns the rules of each chain by family.
func (tp *topo) wantChains(t *testing.T, jails ...string) map[fam]map[string][]string {
	t.Helper()
	all := map[fam]map[string][]string{}
	for _, f := range tp.fams() {
		o := tp.owned(t, f)
		want := map[string]bool{}
		for _, j := range jails {
			want["lj-"+j] = true
		}
		for c, n := range o.decl {
			if !want[c] {
				t.Errorf("%s: chain %s declared %d times: no running jail owns it", f, c, n)
			}
		}
		for c := range want {
			if o.decl[c] != 1 || len(o.jumps[c]) != 1 {
				t.Errorf("%s: chain %s declared %d times, %d jumps to it %q; want 1 and 1", f, c, o.decl[c], len(o.jumps[c]), o.jumps[c])
			}
			seen := map[string]bool{}
			for _, r := range o.rules[c] {
				if seen[r] {
					t.Errorf("%s: rule %q twice in %s", f, r, c)
				}
				seen[r] = true
			}
		}
		for c, js := range o.jumps {
			if !want[c] {
				t.Errorf("%s: %d jumps to %s, which no running jail owns: %q", f, len(js), c, js)
			}
		}
		if len(jails) > 0 && !strings.Contains(o.first, " -j lj-") {
			t.Errorf("%s: the first rule of INPUT is %q, want a jump to a jail's chain", f, o.first)
		}
		all[f] = o.rules
	}
	return all
}

// --- configuration ------------------------------------------------------------------------

// newConfig makes a configuration directory: copies of the repo's jail.conf, jail.d/*.conf and
// filter.d/*.conf, and files, by path relative to the directory (jail.local,
// jail.d/e2e.local).
func newConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "etc")
	for _, d := range []string{"jail.d", "filter.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var srcs []string
	for _, g := range []string{"jail.conf", "jail.d/*.conf", "filter.d/*.conf"} {
		m, err := filepath.Glob(filepath.Join(root, g))
		if err != nil || len(m) == 0 {
			t.Fatalf("no %s in %s", g, root)
		}
		srcs = append(srcs, m...)
	}
	for _, src := range srcs {
		rel, _ := filepath.Rel(root, src)
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, rel), string(b))
	}
	for rel, s := range files {
		writeFile(t, filepath.Join(dir, rel), s)
	}
	return dir
}

// wordpressJail is a jail.d/*.local that disables sshd and runs the wordpress jail on log.
func wordpressJail(log string, maxretry int, findtime, bantime string, extra ...string) string {
	return fmt.Sprintf(`# written by the e2e test
[sshd]
enabled = false

[wordpress]
enabled  = true
logpath  = %s
maxretry = %d
findtime = %s
bantime  = %s
%s
`, log, maxretry, findtime, bantime, strings.Join(extra, "\n"))
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendFile appends s to path in one write, as a web server writes a line.
func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// failLine is one wordpress failure of a in Apache's combined format, at time at; tag goes in
// the query string so that every line is unique.
func failLine(a netip.Addr, at time.Time, tag string) string {
	return fmt.Sprintf("%s - - [%s] \"POST /xmlrpc.php?%s HTTP/1.1\" 200 403 \"-\" \"e2e\"\n", a, at.Format("02/Jan/2006:15:04:05 -0700"), tag)
}

// okLine is a request that is no failure.
func okLine(a netip.Addr, at time.Time, tag string) string {
	return fmt.Sprintf("%s - - [%s] \"GET /page?%s HTTP/1.1\" 200 512 \"-\" \"e2e\"\n", a, at.Format("02/Jan/2006:15:04:05 -0700"), tag)
}

// failLines is n failures of a, tagged prefix-1 ... prefix-n.
func failLines(a netip.Addr, n int, prefix string) string {
	var b strings.Builder
	now := time.Now()
	for i := 1; i <= n; i++ {
		b.WriteString(failLine(a, now, fmt.Sprintf("%s-%d", prefix, i)))
	}
	return b.String()
}

// --- processes ----------------------------------------------------------------------------

// syncBuffer collects a process's output.
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

// raceEnv is the environment of the binaries under test: a race-enabled binary otherwise
// sleeps a second when it exits (the race runtime's atexit_sleep_ms), each CLI call included.
func raceEnv() []string {
	return append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// proc is a process started in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error // of Wait, once done is closed
}

func startProc(t *testing.T, name string, logs *syncBuffer, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, logs: logs, done: make(chan struct{})}
	// ip netns exec execs the command in place: p.cmd.Process is the command itself.
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = raceEnv()
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig and waits up to timeout for the process to end; it reports whether it did.
func (p *proc) signal(sig syscall.Signal, timeout time.Duration) bool {
	if !p.running() {
		return true
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// end stops p if it still runs: SIGTERM, then SIGKILL.
func (p *proc) end(t *testing.T) {
	if !p.signal(syscall.SIGTERM, 15*time.Second) {
		t.Errorf("%s (pid %d) did not stop within 15s of SIGTERM: SIGKILL", p.name, p.cmd.Process.Pid)
		p.signal(syscall.SIGKILL, 5*time.Second)
	}
}

// startWeb runs demoweb in the server namespace, writing the access log log.
func (tp *topo) startWeb(t *testing.T, log string) {
	t.Helper()
	logs := &syncBuffer{}
	p := startProc(t, "demoweb", logs, "ip", "netns", "exec", tp.srv, built.demoweb, "--listen", fmt.Sprintf(":%d", webPort), "--log", log)
	t.Cleanup(func() {
		p.end(t)
		if t.Failed() {
			t.Logf("demoweb's log:\n%s", logs)
		}
	})
	waitFor(t, 10*time.Second, "demoweb listening", func() (bool, string) {
		if !p.running() {
			t.Fatalf("demoweb exited: %v\n%s", p.err, logs)
		}
		return strings.Contains(logs.String(), "msg=listening"), logs.String()
	})
}

// daemon is `logjail server` in the server namespace, with its configuration, socket and
// state directory; it can be killed and started again with the same ones.
type daemon struct {
	t      *testing.T
	tp     *topo
	conf   string
	sock   string
	state  string
	wrap   []string // runs the daemon under this command (setpriv ...), inside the namespace
	flags  []string // more server flags (--keep-on-stop), for every start
	logs   *syncBuffer
	p      *proc
	starts int
}

// newDaemon prepares a daemon on configuration conf; start runs it.
func newDaemon(t *testing.T, tp *topo, conf string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{t: t, tp: tp, conf: conf, sock: filepath.Join(dir, "logjail.sock"), state: filepath.Join(dir, "state"), logs: &syncBuffer{}}
	t.Cleanup(func() {
		if d.p != nil && d.p.running() {
			d.p.end(t)
		}
		d.check()
		if t.Failed() {
			t.Logf("logjail server's log (%d starts):\n%s", d.starts, d.logs)
		}
	})
	return d
}

// start runs the daemon and waits until each jail named runs (is in status and not broken).
func (d *daemon) start(jails ...string) {
	t := d.t
	t.Helper()
	if d.p != nil && d.p.running() {
		t.Fatal("daemon already running")
	}
	d.starts++
	fmt.Fprintf(d.logs, "=== start %d ===\n", d.starts)
	argv := append([]string{"ip", "netns", "exec", d.tp.srv}, d.wrap...)
	argv = append(argv, built.logjail, "server", "--config", d.conf, "--socket", d.sock, "--state", d.state, "--log-level", "debug")
	argv = append(argv, d.flags...)
	d.p = startProc(t, "logjail server", d.logs, argv...)
	d.waitJails(jails...)
}

// waitJails waits until status answers and lists each jail named as running.
func (d *daemon) waitJails(jails ...string) {
	t := d.t
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("daemon running jails %v", jails), func() (bool, string) {
		if !d.p.running() {
			t.Fatalf("logjail server exited: %v\n%s", d.p.err, d.logs)
		}
		st, err := d.tryStatus()
		if err != nil {
			return false, err.Error()
		}
		running := map[string]bool{}
		for _, j := range st.Jails {
			running[j.Name] = true
		}
		for _, j := range jails {
			if !running[j] {
				return false, fmt.Sprintf("jails running %v, broken %v", keys(running), st.Broken)
			}
		}
		return true, ""
	})
}

// check fails the test on a data race or a panic in the daemon's output, naming where.
func (d *daemon) check() {
	logs := d.logs.String()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		i := strings.Index(logs, bad)
		if i < 0 {
			continue
		}
		// The first two frames of our own code in each stack of the report.
		var where []string
		lines := strings.Split(logs[i:], "\n")
		for k := 1; k+1 < len(lines) && len(where) < 4; k++ {
			l := strings.TrimSpace(lines[k])
			if strings.HasPrefix(l, "==================") {
				break
			}
			if strings.HasPrefix(l, "github.com/logjail/logjail/") {
				where = append(where, strings.TrimPrefix(l, "github.com/logjail/logjail/")+" at "+strings.Fields(strings.TrimSpace(lines[k+1]))[0])
			}
		}
		d.t.Errorf("logjail server printed %q (%d times): %s", bad, strings.Count(logs, bad), strings.Join(where, "; "))
	}
}

// alive fails the test at once if the daemon has exited.
func (d *daemon) alive(why string) {
	d.t.Helper()
	if d.p == nil {
		d.t.Fatalf("%s: logjail server was never started", why)
	}
	if !d.p.running() {
		d.t.Fatalf("%s: logjail server is not running (exit: %v)", why, d.p.err)
	}
}

// stopped waits for the daemon to exit after a stop and checks its exit status is 0.
func (d *daemon) stopped(timeout time.Duration) {
	t := d.t
	t.Helper()
	select {
	case <-d.p.done:
	case <-time.After(timeout):
		t.Fatalf("logjail server did not exit within %v", timeout)
	}
	if d.p.err != nil {
		t.Errorf("logjail server exited with %v, want status 0", d.p.err)
	}
	if _, err := os.Stat(d.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket %s is still there after a clean stop (stat: %v)", d.sock, err)
	}
}

// cli runs the logjail client on the daemon's socket and returns its output and exit status.
func (d *daemon) cli(args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, built.logjail, append(args, "--socket", d.sock)...)
	cmd.Env = raceEnv()
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		d.t.Fatalf("logjail %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// mustCLI runs the client and fails the test unless it exits 0.
func (d *daemon) mustCLI(args ...string) string {
	d.t.Helper()
	o, e, code := d.cli(args...)
	if code != 0 {
		d.t.Fatalf("logjail %s: exit status %d: %s%s", strings.Join(args, " "), code, o, e)
	}
	return o
}

// jsonCLI runs a client command with --json and decodes its output into v.
func (d *daemon) jsonCLI(v any, args ...string) error {
	o, e, code := d.cli(append(args, "--json")...)
	if code != 0 {
		return fmt.Errorf("logjail %s --json: exit status %d: %s%s", strings.Join(args, " "), code, o, e)
	}
	if err := json.Unmarshal([]byte(o), v); err != nil {
		return fmt.Errorf("logjail %s --json: %v in %q", strings.Join(args, " "), err, o)
	}
	return nil
}

func (d *daemon) tryStatus() (*control.StatusReply, error) {
	var st control.StatusReply
	return &st, d.jsonCLI(&st, "status")
}

func (d *daemon) status() *control.StatusReply {
	d.t.Helper()
	st, err := d.tryStatus()
	if err != nil {
		d.t.Fatal(err)
	}
	return st
}

// jail returns the status of the running jail name.
func (d *daemon) jail(name string) control.JailStatus {
	d.t.Helper()
	for _, j := range d.status().Jails {
		if j.Name == name {
			return j
		}
	}
	d.t.Fatalf("jail %s is not running", name)
	return control.JailStatus{}
}

func (d *daemon) banned() []control.Ban {
	d.t.Helper()
	var rep control.BannedReply
	if err := d.jsonCLI(&rep, "banned"); err != nil {
		d.t.Fatal(err)
	}
	return rep.Bans
}

// ban returns the ban of target in jail, if there is one.
func (d *daemon) ban(jail, target string) (control.Ban, bool) {
	d.t.Helper()
	for _, b := range d.banned() {
		if b.Jail == jail && b.Target == target {
			return b, true
		}
	}
	return control.Ban{}, false
}

// waitBan waits until target is banned in jail and its rule is in the kernel (Applied).
//
// Waiting for Applied matters beyond this ban: the daemon hands its kernel calls to the
// jail's executor in order and answers before they run, so right after a ban or an unban the
// kernel may still be replaying earlier calls (under load, a ban lifted a moment ago can go in
// and out again). Once this ban is applied, every earlier call has run.
func (d *daemon) waitBan(jail, target string, timeout time.Duration) control.Ban {
	d.t.Helper()
	var b control.Ban
	waitFor(d.t, timeout, fmt.Sprintf("a ban of %s in %s, applied", target, jail), func() (bool, string) {
		var ok bool
		b, ok = d.ban(jail, target)
		return ok && b.Applied, fmt.Sprintf("bans: %+v", d.banned())
	})
	return b
}

// banCLI bans target in jail with the CLI and waits until the rule is in the kernel.
func (d *daemon) banCLI(jail, target string, args ...string) control.Ban {
	d.t.Helper()
	d.mustCLI(append([]string{"ban", jail, target}, args...)...)
	return d.waitBan(jail, target, settle)
}

// explain returns what jail knows of a.
func (d *daemon) explain(jail string, a netip.Addr) control.JailExplain {
	d.t.Helper()
	var rep control.ExplainReply
	if err := d.jsonCLI(&rep, "explain", a.String()); err != nil {
		d.t.Fatal(err)
	}
	for _, j := range rep.Jails {
		if j.Jail == jail {
			return j
		}
	}
	d.t.Fatalf("explain %s: no jail %s in %+v", a, jail, rep)
	return control.JailExplain{}
}

// waitFailures waits until jail counts n failures of a in its window.
func (d *daemon) waitFailures(jail string, a netip.Addr, n int) {
	d.t.Helper()
	waitFor(d.t, 10*time.Second, fmt.Sprintf("%d failures of %s counted in %s", n, a, jail), func() (bool, string) {
		e := d.explain(jail, a)
		return e.Failures == n, fmt.Sprintf("explain: %+v", e)
	})
}

// waitFollowing waits until jail follows an existing file at path.
func (d *daemon) waitFollowing(jail, path string) {
	d.t.Helper()
	waitFor(d.t, 10*time.Second, fmt.Sprintf("%s following %s", jail, path), func() (bool, string) {
		j := d.jail(jail)
		for _, f := range j.Files {
			if f.Path == path && f.Exists {
				return true, ""
			}
		}
		return false, fmt.Sprintf("files: %+v, errors: %q", j.Files, j.Errors)
	})
}

// waitFor polls cond every 20ms until it holds or timeout passes; then it fails the test with
// cond's last explanation.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %s", timeout, what, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// hostTarget is how the daemon writes a ban of one address.
func hostTarget(a netip.Addr) string { return a.String() }
