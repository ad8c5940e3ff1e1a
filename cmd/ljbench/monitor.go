package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// monitor reads `nft monitor new rules` inside a namespace and timestamps every rule added as
// ljbench reads it: the moment a ban is in the kernel, without polling iptables. iptables-nft
// rules are nf_tables rules, so the monitor sees those of the iptables commands that the
// daemons run.
//
// A rule "insert rule ip filter lj-sshd ... ip saddr 10.1.2.3 ... reject" counts as a ban of
// 10.1.2.3 when its chain has the monitored prefix (lj- for logjail, f2b- for fail2ban).
type monitor struct {
	proc   *proc
	prefix string // chain prefix of ban rules

	mu      sync.Mutex
	bans    map[netip.Addr]time.Time // first time a ban rule for the address was seen
	adds    int                      // ban rules seen, every one (an address banned again counts again)
	lastAdd time.Time                // when the last of them was seen
	chains  map[string]bool          // chains a jump rule was seen to
	changed chan struct{}            // gets a value (non-blocking) after each new event
	lines   int
	ended   chan struct{}
	abort   <-chan struct{} // ends every wait (ljbench is interrupted)
}

func startMonitor(e *env, ns, chainPrefix string, stderr *os.File) (*monitor, error) {
	p, r, err := e.startPipe("nft monitor", ns, []string{"nft", "monitor", "new", "rules"}, stderr)
	if err != nil {
		return nil, err
	}
	m := &monitor{
		proc: p, prefix: chainPrefix,
		bans: make(map[netip.Addr]time.Time), chains: make(map[string]bool),
		changed: make(chan struct{}, 1), ended: make(chan struct{}),
	}
	go m.read(r)
	// nft monitor subscribes to the netlink group before it prints anything and gives no
	// sign of it: a rule added in the namespace and seen proves it listens.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		chain := fmt.Sprintf("ljbench-probe%d-%d", time.Now().UnixNano()%1e6, i)
		if _, err := inNS(context.Background(), ns, "iptables", "-w", "5", "-N", chain); err != nil {
			return m, err
		}
		_, err := inNS(context.Background(), ns, "iptables", "-w", "5", "-A", chain, "-j", "RETURN")
		_, _ = inNS(context.Background(), ns, "iptables", "-w", "5", "-F", chain)
		_, _ = inNS(context.Background(), ns, "iptables", "-w", "5", "-X", chain)
		if err != nil {
			return m, err
		}
		if m.waitLines(1, 300*time.Millisecond) {
			return m, nil
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("nft monitor in %s printed nothing for a rule added there", ns)
		}
	}
}

func (m *monitor) read(r *os.File) {
	defer close(m.ended)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		now := time.Now()
		ev := parseRuleEvent(sc.Text())
		m.mu.Lock()
		m.lines++
		if ev.jumpTo != "" {
			m.chains[ev.jumpTo] = true
		}
		if ev.addr.IsValid() && strings.HasPrefix(ev.chain, m.prefix) {
			m.adds++
			m.lastAdd = now
			if _, ok := m.bans[ev.addr]; !ok {
				m.bans[ev.addr] = now
			}
		}
		m.mu.Unlock()
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
}

// ruleEvent is what ljbench needs of one line of nft monitor.
type ruleEvent struct {
	chain  string     // the rule's chain
	addr   netip.Addr // the rule's source address (ip saddr / ip6 saddr), if one
	jumpTo string     // the chain it jumps to, if it does
}

// parseRuleEvent reads lines such as
//
//	insert rule ip filter lj-sshd meta l4proto tcp ip saddr 10.1.2.3 counter packets 0 bytes 0 reject with tcp reset
//	add rule ip filter INPUT meta l4proto tcp tcp dport 22 counter packets 0 bytes 0 jump lj-sshd
//
// Anything else gives a zero event.
func parseRuleEvent(line string) ruleEvent {
	f := strings.Fields(line)
	if len(f) < 5 || f[1] != "rule" || (f[0] != "add" && f[0] != "insert") {
		return ruleEvent{}
	}
	ev := ruleEvent{chain: f[4]}
	for i := 5; i+1 < len(f); i++ {
		switch {
		case (f[i] == "ip" || f[i] == "ip6") && f[i+1] == "saddr" && i+2 < len(f):
			s := f[i+2]
			if a, err := netip.ParseAddr(s); err == nil {
				ev.addr = a
			} else if p, err := netip.ParsePrefix(s); err == nil && p.IsSingleIP() {
				ev.addr = p.Addr()
			}
		case f[i] == "jump" || f[i] == "goto":
			ev.jumpTo = f[i+1]
		}
	}
	return ev
}

// waitLines waits until the monitor has printed at least n lines.
func (m *monitor) waitLines(n int, timeout time.Duration) bool {
	return m.wait(timeout, func() bool { return m.lines >= n })
}

// banTime returns when a ban of a was seen.
func (m *monitor) banTime(a netip.Addr) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.bans[a]
	return t, ok
}

// ruleAdds returns how many ban rules were seen so far, and when the last one was.
func (m *monitor) ruleAdds() (int, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.adds, m.lastAdd
}

// hasJump reports whether a jump to chain was seen.
func (m *monitor) hasJump(chain string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chains[chain]
}

// snapshot copies the bans seen so far.
func (m *monitor) snapshot() map[netip.Addr]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(map[netip.Addr]time.Time, len(m.bans))
	for a, t := range m.bans {
		c[a] = t
	}
	return c
}

// wait calls cond (under the monitor's lock) after each event until it holds, the monitor
// ends, or timeout passes.
func (m *monitor) wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond) // cond may also depend on time
	defer tick.Stop()
	for {
		m.mu.Lock()
		ok := cond()
		m.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-m.changed:
		case <-tick.C:
		case <-m.ended:
			m.mu.Lock()
			ok := cond()
			m.mu.Unlock()
			return ok
		case <-deadline.C:
			return false
		case <-m.abort:
			return false
		}
	}
}

// waitBan waits until a ban of a is seen.
func (m *monitor) waitBan(a netip.Addr, timeout time.Duration) (time.Time, bool) {
	var t time.Time
	ok := m.wait(timeout, func() bool {
		var seen bool
		t, seen = m.bans[a]
		return seen
	})
	return t, ok
}

func (m *monitor) stop() {
	m.proc.stop(2 * time.Second)
	<-m.ended
}
