package action

import (
	"errors"
	"flag"
	"net/netip"
	"testing"
)

// The Makefile's golden target runs `go test ./... -update`; every test
// binary must accept the flag. This package has no golden files.
var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

func TestAddrTarget(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"192.0.2.1", "192.0.2.1/32"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"fe80::1%eth0", "fe80::1/128"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := AddrTarget(netip.MustParseAddr(tt.addr))
			if got.Prefix.String() != tt.want {
				t.Errorf("AddrTarget(%s) = %v, want %s", tt.addr, got.Prefix, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestTargetValidate(t *testing.T) {
	tests := []struct {
		name   string
		prefix netip.Prefix
		ok     bool
	}{
		{"v4 host", netip.MustParsePrefix("192.0.2.1/32"), true},
		{"v4 net", netip.MustParsePrefix("192.0.2.0/24"), true},
		{"v6 host", netip.MustParsePrefix("2001:db8::1/128"), true},
		{"v6 net", netip.MustParsePrefix("2001:db8::/64"), true},
		{"zero", netip.Prefix{}, false},
		{"host bits", netip.MustParsePrefix("192.0.2.1/24"), false},
		{"everything v4", netip.MustParsePrefix("0.0.0.0/0"), false},
		{"everything v6", netip.MustParsePrefix("::/0"), false},
		{"4in6", netip.MustParsePrefix("::ffff:192.0.2.1/128"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Target{Prefix: tt.prefix}.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%v) = %v, want ok=%v", tt.prefix, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidTarget) {
				t.Errorf("Validate(%v) = %v, want it to wrap ErrInvalidTarget", tt.prefix, err)
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1/32":    "192.0.2.1",
		"192.0.2.0/24":    "192.0.2.0/24",
		"2001:db8::1/128": "2001:db8::1",
		"2001:db8::/48":   "2001:db8::/48",
	} {
		if got := (Target{Prefix: netip.MustParsePrefix(in)}).String(); got != want {
			t.Errorf("Target{%s}.String() = %q, want %q", in, got, want)
		}
	}
}
