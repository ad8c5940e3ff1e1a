package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// splitWords splits a list on spaces, commas and new lines (fail2ban's splitwords).
func splitWords(v []Value) []Value {
	var out []Value
	for _, l := range v {
		for _, w := range strings.FieldsFunc(l.Text, func(r rune) bool { return r == ',' || isSpaceByte(byte(r)) && r < 0x80 }) {
			out = append(out, Value{Text: w, Pos: l.Pos})
		}
	}
	return out
}

// addrKind is what parseAddr recognised.
type addrKind int

const (
	addrBad  addrKind = iota
	addrNet           // an address or a network
	addrHost          // a host name, to resolve with DNS
)

// parseAddr reads one entry of an address list as fail2ban's IPAddr does: an IPv4 or IPv6
// address ("[...]" allowed around IPv6), optionally followed by "/prefix-length" or, for IPv4,
// "/dotted.net.mask" (or an IPv6 mask such as "/ffff:ffff::"). Host bits of a network are
// cleared; an IPv4-mapped IPv6 address is the IPv4 address. Anything else that looks like a
// DNS name is a host name.
func parseAddr(s string) (netip.Prefix, addrKind, error) {
	t := s
	if len(t) > 2 && t[0] == '[' && t[len(t)-1] == ']' {
		t = t[1 : len(t)-1]
	}
	addrPart, maskPart, hasMask := strings.Cut(t, "/")
	a, err := netip.ParseAddr(addrPart)
	if err != nil {
		if !hasMask && isHostName(s) {
			return netip.Prefix{}, addrHost, nil
		}
		return netip.Prefix{}, addrBad, fmt.Errorf("invalid address %q", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, addrBad, fmt.Errorf("invalid address %q: zones are not supported", s)
	}
	a = a.Unmap()
	bits := a.BitLen()
	if hasMask {
		if strings.ContainsAny(maskPart, ".:") {
			m, err := netip.ParseAddr(maskPart)
			if err != nil || m.Unmap().BitLen() != bits {
				return netip.Prefix{}, addrBad, fmt.Errorf("invalid network mask in %q", s)
			}
			n, ok := maskBits(m.Unmap())
			if !ok {
				return netip.Prefix{}, addrBad, fmt.Errorf("network mask in %q is not contiguous", s)
			}
			bits = n
		} else {
			n, err := strconv.Atoi(maskPart)
			if err != nil || n < 0 || n > a.BitLen() {
				return netip.Prefix{}, addrBad, fmt.Errorf("invalid prefix length in %q (0..%d)", s, a.BitLen())
			}
			bits = n
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, addrBad, fmt.Errorf("invalid network %q", s)
	}
	return p, addrNet, nil
}

// maskBits returns the prefix length of a contiguous network mask.
func maskBits(m netip.Addr) (int, bool) {
	b := m.AsSlice()
	n := 0
	seenZero := false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) != 0 {
				if seenZero {
					return 0, false
				}
				n++
			} else {
				seenZero = true
			}
		}
	}
	return n, true
}

// isHostName reports whether s is a syntactically valid DNS name with at least one letter
// (so that "10.0.0.300" is a bad address, not a name).
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	letter := false
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
				letter = true
			case c >= '0' && c <= '9', c == '-':
			default:
				return false
			}
		}
	}
	return letter
}
