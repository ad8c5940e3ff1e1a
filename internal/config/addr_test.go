package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    string // prefix, or "host"
		wantErr string
	}{
		{in: "192.0.2.1", want: "192.0.2.1/32"},
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{in: "127.0.0.1/255.0.0.0", want: "127.0.0.0/8"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "[2001:db8::1]", want: "2001:db8::1/128"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "2001:db8::/ffff:ffff::", want: "2001:db8::/32"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1/32"},
		{in: "::1", want: "::1/128"},
		{in: "localhost", want: "host"},
		{in: "mail.example.com", want: "host"},
		{in: "10.0.0.0/33", wantErr: `invalid prefix length in "10.0.0.0/33" (0..32)`},
		{in: "10.0.0.300", wantErr: `invalid address "10.0.0.300"`},
		{in: "10.0.0.0/255.0.255.0", wantErr: "not contiguous"},
		{in: "10.0.0.0/ffff::", wantErr: "invalid network mask"},
		{in: "fe80::1%eth0", wantErr: "zones are not supported"},
		{in: "host/24", wantErr: `invalid address "host/24"`},
		{in: "#", wantErr: `invalid address "#"`},
		{in: "-bad-.example", wantErr: "invalid address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, kind, err := parseAddr(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseAddr(%q) = %v, %v, %v; want error %q", tt.in, p, kind, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAddr(%q): %v", tt.in, err)
			}
			got := "host"
			if kind == addrNet {
				got = p.String()
			}
			if got != tt.want {
				t.Errorf("parseAddr(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	got := texts(splitWords([]Value{{Text: "127.0.0.1/8 ::1,10.0.0.1"}, {Text: ""}, {Text: " a , b "}}))
	if diff := cmp.Diff([]string{"127.0.0.1/8", "::1", "10.0.0.1", "a", "b"}, got); diff != "" {
		t.Errorf("splitWords mismatch (-want +got):\n%s", diff)
	}
}
