// Package iptables is the built-in ban backend: one iptables chain per jail,
// "lj-<jail>", reached by one jump rule from a parent chain (INPUT by
// default), holding one REJECT or DROP rule per banned address. IPv4 goes
// through iptables and, when enabled, IPv6 through ip6tables.
//
// The backend owns its chain and every rule that jumps to it from the parent
// chain, and nothing else. Start adopts the leftovers of a crash by wiping
// them (it flushes the chain and removes every jump to it before inserting
// its own), so the ban manager must ban again after Start; Stop removes
// everything.
//
// For restarts without a gap the backend also implements action.Keeper and
// action.Lister. StartKeep keeps every ban rule it finds in its chain and
// repairs the rest (duplicates, rules of other options, foreign rules in the
// chain, the jump's position and match) without a moment in which a banned
// address gets through; StopKeep leaves the chain, its jump and its rules in
// the kernel for the next StartKeep. List reads the bans back (iptables -S,
// one call per family) for the ban manager to reconcile with its database.
// Both parse only what this backend writes, word for word: a rule of any
// other shape is never taken for a ban.
//
// The backend runs on Linux only; elsewhere New returns an error wrapping
// action.ErrUnsupportedPlatform.
package iptables

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ChainPrefix starts the name of every chain this backend owns:
// ChainPrefix + jail name.
const ChainPrefix = "lj-"

// maxChainName is the longest chain name iptables accepts
// (XT_EXTENSION_MAXNAMELEN is 29, with the terminating NUL).
const maxChainName = 28

// MaxJailName is the longest jail name whose chain fits maxChainName.
const MaxJailName = maxChainName - len(ChainPrefix)

// DefaultTimeout is the default wait for the xtables lock. go-iptables
// itself waits forever unless told otherwise.
const DefaultTimeout = 5 * time.Second

// maxMultiport is the number of ports one multiport match takes; a range
// counts twice (iptables' XT_MULTI_PORTS).
const maxMultiport = 15

// DefaultServicesFile is where port names are looked up first.
const DefaultServicesFile = "/etc/services"

var jailNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// BlockType is what a ban rule does with a banned address's packets.
type BlockType string

const (
	// BlockReject refuses actively. In a tcp jail the ban rule is
	// "-p tcp -j REJECT --reject-with tcp-reset": a TCP reset is a hard error
	// in every state, so a connect fails at once with "connection refused"
	// and an established connection that reaches the rule dies at once; and
	// it is not rate limited. An ICMP port-unreachable, fail2ban's default,
	// is a soft error for established connections (RFC 1122), is rate
	// limited per peer (icmp_ratelimit), and is even ignored by a connecting
	// socket whose owner holds its lock when it arrives (the end-to-end test
	// saw this on IPv6: TcpExtLockDroppedIcmps, and the connect took the 1s
	// SYN retransmit). In udp and all jails the rule is
	// "-j REJECT --reject-with icmp-port-unreachable" (icmp6-port-unreachable
	// for IPv6), since tcp-reset needs -p tcp.
	BlockReject BlockType = "REJECT"
	// BlockDrop drops silently: the peer waits for its own timeout.
	BlockDrop BlockType = "DROP"
)

// Protocol is the transport protocol the jump rule matches.
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
	// AllProtocols matches every packet; Ports must then be empty.
	AllProtocols Protocol = "all"
)

// Options configures one jail's iptables backend. Zero values take the
// defaults noted on each field.
type Options struct {
	// Jail names the jail; the backend's chain is ChainPrefix+Jail. Letters,
	// digits, '-' and '_', at most MaxJailName characters.
	Jail string
	// Chain is the parent chain that jumps to ours (default INPUT;
	// DOCKER-USER to protect containers). It must exist at Start.
	Chain string
	// Ports limits the ban to these destination ports: "22", "80,443",
	// "1000:2000", "ssh,http" (names from /etc/services, else a small built-in
	// table). At most 15 ports, a range counting as two. Empty bans every port.
	Ports string
	// Protocol of the jump rule: tcp (default), udp or all (Ports empty).
	Protocol Protocol
	// BlockType is REJECT (default) or DROP.
	BlockType BlockType
	// IPv6 manages ip6tables as well; without it an IPv6 target is refused
	// with action.ErrUnsupportedTarget.
	IPv6 bool
	// Timeout is how long each iptables call waits for the xtables lock
	// (iptables --wait N, whole seconds, rounded up). Default 5s.
	Timeout time.Duration
	// Conntrack deletes the connection-tracking entries whose original source
	// is a banned target after its ban rule is in, so that connections that an
	// ESTABLISHED rule in front of our jump would let through are cut too. It
	// talks to the kernel over netlink (nf_conntrack_netlink), with no
	// conntrack binary, off the ban's call: the bans waiting share one walk of
	// the table per address family. Best effort: failures are logged.
	Conntrack bool
}

// config is Options checked and compiled into the argument lists the backend
// uses.
type config struct {
	jail      string
	chain     string // ours: ChainPrefix + jail
	parent    string
	jump      []string // rule spec in parent
	protocol  Protocol
	block     BlockType
	ipv6      bool
	lockWait  int // seconds
	conntrack bool
}

// ChainName returns the name of the chain the backend owns for jail.
func ChainName(jail string) string { return ChainPrefix + jail }

// CheckJailName reports whether jail can name a chain.
func CheckJailName(jail string) error {
	if !jailNameRE.MatchString(jail) {
		return fmt.Errorf("invalid jail name %q: use only letters, digits, '-' and '_'", jail)
	}
	if len(jail) > MaxJailName {
		return fmt.Errorf("jail name %q is longer than %d characters: chain %q would exceed iptables' %d", jail, MaxJailName, ChainName(jail), maxChainName)
	}
	return nil
}

// compile checks o and builds the config. servicesFile is read only when a
// port is given by name.
func (o Options) compile(servicesFile string) (config, error) {
	if err := CheckJailName(o.Jail); err != nil {
		return config{}, err
	}
	c := config{
		jail:      o.Jail,
		chain:     ChainName(o.Jail),
		parent:    o.Chain,
		ipv6:      o.IPv6,
		conntrack: o.Conntrack,
	}
	if c.parent == "" {
		c.parent = "INPUT"
	}
	if err := checkParent(c.parent); err != nil {
		return config{}, err
	}

	switch BlockType(strings.ToUpper(string(o.BlockType))) {
	case "", BlockReject:
		c.block = BlockReject
	case BlockDrop:
		c.block = BlockDrop
	default:
		return config{}, fmt.Errorf("invalid block type %q: want REJECT or DROP", o.BlockType)
	}

	proto := Protocol(strings.ToLower(string(o.Protocol)))
	switch proto {
	case "":
		proto = TCP
	case TCP, UDP, AllProtocols:
	default:
		return config{}, fmt.Errorf("invalid protocol %q: want tcp, udp or all", o.Protocol)
	}
	c.protocol = proto

	switch {
	case o.Timeout < 0:
		return config{}, fmt.Errorf("invalid lock timeout %v", o.Timeout)
	case o.Timeout == 0:
		c.lockWait = int(DefaultTimeout / time.Second)
	default:
		c.lockWait = int((o.Timeout + time.Second - 1) / time.Second)
	}

	if strings.TrimSpace(o.Ports) != "" {
		if proto == AllProtocols {
			return config{}, fmt.Errorf("ports %q need protocol tcp or udp, not all", o.Ports)
		}
		ports, err := parsePorts(o.Ports, proto, servicesFile)
		if err != nil {
			return config{}, err
		}
		c.jump = []string{"-p", string(proto), "-m", "multiport", "--dports", ports}
	} else if proto != AllProtocols {
		c.jump = []string{"-p", string(proto)}
	}
	c.jump = append(c.jump, "-j", c.chain)
	return c, nil
}

func checkParent(chain string) error {
	switch {
	case len(chain) > maxChainName:
		return fmt.Errorf("invalid chain %q: longer than %d characters", chain, maxChainName)
	case strings.HasPrefix(chain, "-") || strings.HasPrefix(chain, "!"):
		return fmt.Errorf("invalid chain %q", chain)
	case strings.ContainsFunc(chain, func(r rune) bool { return r <= ' ' || r == '"' || r == '\'' || r > '~' }):
		return fmt.Errorf("invalid chain %q: space, quote or non-ASCII character", chain)
	case strings.HasPrefix(chain, ChainPrefix):
		return fmt.Errorf("invalid chain %q: chains named %s* belong to logjail's jails", chain, ChainPrefix)
	}
	return nil
}

// parsePorts turns "ssh,80,1000:2000" into the numeric list multiport takes.
func parsePorts(s string, proto Protocol, servicesFile string) (string, error) {
	var (
		out   []string
		count int
		svc   *services
	)
	port := func(p string) (int, error) {
		if n, err := strconv.Atoi(p); err == nil {
			if n < 0 || n > 65535 {
				return 0, fmt.Errorf("port %d out of range 0-65535", n)
			}
			return n, nil
		}
		if svc == nil {
			svc = loadServices(servicesFile)
		}
		if n, ok := svc.lookup(p, proto); ok {
			return n, nil
		}
		return 0, fmt.Errorf("unknown service %q for %s (not in %s nor in the built-in table)", p, proto, servicesFile)
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return "", fmt.Errorf("invalid ports %q: empty item", s)
		}
		if lo, hi, isRange := strings.Cut(item, ":"); isRange {
			a, err := port(strings.TrimSpace(lo))
			if err != nil {
				return "", fmt.Errorf("invalid ports %q: %w", s, err)
			}
			b, err := port(strings.TrimSpace(hi))
			if err != nil {
				return "", fmt.Errorf("invalid ports %q: %w", s, err)
			}
			if a > b {
				return "", fmt.Errorf("invalid ports %q: range %s is backwards", s, item)
			}
			out = append(out, fmt.Sprintf("%d:%d", a, b))
			count += 2
			continue
		}
		n, err := port(item)
		if err != nil {
			return "", fmt.Errorf("invalid ports %q: %w", s, err)
		}
		out = append(out, strconv.Itoa(n))
		count++
	}
	if count > maxMultiport {
		return "", fmt.Errorf("invalid ports %q: more than %d ports (a range counts as two)", s, maxMultiport)
	}
	return strings.Join(out, ","), nil
}

// builtinServices backs up /etc/services in minimal containers that lack it.
// Read-only.
var builtinServices = map[string]int{
	"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
	"http": 80, "www": 80, "pop3": 110, "imap": 143, "imap2": 143, "ldap": 389,
	"https": 443, "smtps": 465, "submissions": 465, "submission": 587, "ldaps": 636,
	"imaps": 993, "pop3s": 995, "mysql": 3306, "ms-wbt-server": 3389, "sip": 5060,
	"postgresql": 5432, "http-alt": 8080, "sieve": 4190,
}

// services is a parsed services(5) file: "name port/proto aliases... # c".
type services struct {
	ports map[string]int // "ssh/tcp" -> 22
}

func loadServices(path string) *services {
	s := &services{ports: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return s // the built-in table answers
	}
	defer f.Close()
	s.parse(f)
	return s
}

func (s *services) parse(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		num, proto, ok := strings.Cut(f[1], "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || n > 65535 {
			continue
		}
		for _, name := range append([]string{f[0]}, f[2:]...) {
			key := name + "/" + proto
			if _, seen := s.ports[key]; !seen {
				s.ports[key] = n
			}
		}
	}
}

func (s *services) lookup(name string, proto Protocol) (int, bool) {
	if n, ok := s.ports[name+"/"+string(proto)]; ok {
		return n, true
	}
	n, ok := builtinServices[name]
	return n, ok
}
