package control

import (
	"net/netip"
	"strings"
)

// ParseTarget reads the target of a ban or an unban: one address ("192.0.2.7", "2001:db8::1")
// or a CIDR prefix ("198.51.100.0/24"). One address is returned as a single-address prefix (/32
// or /128). An IPv4-mapped IPv6 form ("::ffff:192.0.2.7") is the IPv4 address. A prefix with
// host bits set ("10.0.0.5/8") is refused rather than silently widened, and so is an address
// with a zone. Errors wrap ErrBadRequest and are written for the person who typed the text.
func ParseTarget(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, BadRequestf("%q is not an IP address or a CIDR prefix", s)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, BadRequestf("%s mixes IPv4-mapped and plain IPv6 addresses", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, BadRequestf("%s has host bits set; did you mean %s?", s, m)
		}
		return p, nil
	}
	a, err := ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseAddr reads one IP address, as `explain` takes it: an IPv4-mapped IPv6 form is the IPv4
// address, a zone is refused. Errors wrap ErrBadRequest.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if s == "" {
			return netip.Addr{}, BadRequestf("an IP address is required")
		}
		return netip.Addr{}, BadRequestf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, BadRequestf("%s: an address with a zone cannot be used here", s)
	}
	return a.Unmap(), nil
}

// FormatTarget writes a target the way Ban.Target carries it: a single-address prefix as the
// bare address, any other prefix in CIDR form.
func FormatTarget(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
