package ban

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ignoreCache keeps the host's own addresses and the admin sessions for
// Options.CacheTTL, so that a flood of orders reads them once per TTL.
type ignoreCache struct {
	mu sync.Mutex

	self     []netip.Addr // replaced, never modified
	selfAt   time.Time
	selfRead bool

	admins     []Session
	adminsAt   time.Time
	adminsRead bool
	// seen is when each admin session (by Session.Key) was first read, for
	// Session.MinAge.
	seen map[string]time.Time
}

// ignoredBy checks target p against spec's ignore list: ignoreip, then (with
// IgnoreSelf) the host's own addresses, then (unless force) the admin
// sessions. A prefix is refused when it overlaps an ignored net or contains
// an own or admin address.
func (m *Manager) ignoredBy(spec *JailSpec, p netip.Prefix, force bool, now time.Time) (string, bool) {
	single := p.IsSingleIP()
	if !force {
		for _, n := range spec.IgnoreNets {
			if n.Overlaps(p) {
				return "ignoreip " + n.String(), true
			}
		}
	}
	if spec.IgnoreSelf {
		for _, a := range m.ownAddrs(now) {
			if p.Contains(a) {
				if single {
					return "own address", true
				}
				return "own address " + a.String(), true
			}
		}
	}
	if !force {
		if s, ok := m.adminIn(p, now); ok {
			if single {
				return "admin session: " + s.What, true
			}
			return fmt.Sprintf("admin session: %s (%v)", s.What, s.Addr), true
		}
	}
	return "", false
}

// ownAddrs returns the host's addresses, read at most once per TTL. After a
// failed read it keeps what it had.
func (m *Manager) ownAddrs(now time.Time) []netip.Addr {
	c := &m.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.selfRead && fresh(c.selfAt, now, m.ttl) {
		return c.self
	}
	addrs, err := m.selfFn()
	if err != nil {
		m.log.Warn("read own addresses", "err", err)
	}
	if err == nil || !c.selfRead {
		c.self = make([]netip.Addr, 0, len(addrs))
		for _, a := range addrs {
			if a.IsValid() {
				c.self = append(c.self, a.Unmap().WithZone(""))
			}
		}
	}
	c.selfAt, c.selfRead = now, true
	return c.self
}

// adminIn returns an admin session whose address p contains. Sessions with a
// MinAge count only once they have been seen that long.
func (m *Manager) adminIn(p netip.Prefix, now time.Time) (Session, bool) {
	c := &m.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.adminsRead || !fresh(c.adminsAt, now, m.ttl) {
		m.readAdmins(now)
	}
	for _, s := range c.admins {
		if !p.Contains(s.Addr) {
			continue
		}
		if s.MinAge > 0 && s.Key != "" && now.Sub(c.seen[s.Key]) < s.MinAge {
			continue
		}
		return s, true
	}
	return Session{}, false
}

// pollAdmins reads the admin sessions for Run, so that their ages are known
// even when no order comes.
func (m *Manager) pollAdmins(now time.Time) {
	c := &m.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	m.readAdmins(now)
}

// readAdmins reads the admin sessions and notes when each was first seen.
// The sessions of the very first read count as old: the daemon has just
// started, and they were there before it (possibly the admin who started
// it). After a failed read that returned nothing it keeps what it had.
// m.cache.mu is held.
func (m *Manager) readAdmins(now time.Time) {
	c := &m.cache
	ss, err := m.adminFn()
	if err != nil {
		m.log.Warn("read admin sessions", "err", err)
	}
	c.adminsAt = now
	if err != nil && len(ss) == 0 && c.adminsRead {
		return
	}
	first := !c.adminsRead
	seen := make(map[string]time.Time, len(ss))
	admins := make([]Session, 0, len(ss))
	for _, s := range ss {
		s.Addr = s.Addr.Unmap().WithZone("")
		if !s.Addr.IsValid() {
			continue
		}
		admins = append(admins, s)
		if s.Key == "" {
			continue
		}
		t, ok := c.seen[s.Key]
		switch {
		case ok:
		case first:
			t = now.Add(-s.MinAge)
		default:
			t = now
		}
		seen[s.Key] = t
	}
	c.admins, c.seen, c.adminsRead = admins, seen, true
}

// fresh reports whether a value read at t is still good at now. A clock that
// went backwards makes it stale.
func fresh(t, now time.Time, ttl time.Duration) bool {
	return !now.Before(t) && now.Sub(t) < ttl
}

// interfaceAddrs is the default Options.Self: the addresses of every
// interface.
func interfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("interface addresses: %w", err)
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if x, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, x.Unmap())
		}
	}
	return out, nil
}
