package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		name    string
		opts    map[string]string
		wantErr string
	}{
		{in: "sshd", name: "sshd"},
		{in: "  sshd  ", name: "sshd"},
		{in: "sshd[mode=aggressive]", name: "sshd", opts: map[string]string{"mode": "aggressive"}},
		{in: "sshd[]", name: "sshd"},
		{in: `name[k=v, k2="v,2"]`, name: "name", opts: map[string]string{"k": "v", "k2": "v,2"}},
		{in: `name[k='a]b', k2 = " spaced " ]`, name: "name", opts: map[string]string{"k": "a]b", "k2": "spaced"}},
		{in: `act[a=1][b=2, a=3]`, name: "act", opts: map[string]string{"a": "3", "b": "2"}},
		{in: "act[a=1] [b=2]", name: "act", opts: map[string]string{"a": "1", "b": "2"}},
		{in: "act[a=1,\n  b=two words,]", name: "act", opts: map[string]string{"a": "1", "b": "two words"}},
		{in: "act[x.y-z_1=]", name: "act", opts: map[string]string{"x.y-z_1": ""}},
		{in: "/etc/logjail/filter.d/custom.conf[k=v]", name: "/etc/logjail/filter.d/custom.conf", opts: map[string]string{"k": "v"}},
		{in: `iptables-multiport[port="ssh", protocol="tcp", chain="<known/chain>"]`, name: "iptables-multiport",
			opts: map[string]string{"port": "ssh", "protocol": "tcp", "chain": "<known/chain>"}},
		{in: "", wantErr: "missing name before '['"},
		{in: "[a=1]", wantErr: "missing name before '['"},
		{in: "a b", wantErr: `name "a b" contains spaces`},
		{in: "a[k=v", wantErr: "missing ']' after options"},
		{in: `a[k="v]`, wantErr: `missing closing " in option "k"`},
		{in: "a[k]", wantErr: `missing '=' after option "k"`},
		{in: "a[=v]", wantErr: `expected an option name at "=v]"`},
		{in: "a[k=v] x", wantErr: `unexpected "x" after options`},
		{in: `a[k="v" x]`, wantErr: `unexpected "x]" after quoted value of option "k"`},
		{in: `a]`, wantErr: `unexpected character in name "a]"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			name, opts, err := ParseRef(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRef(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRef(%q): %v", tt.in, err)
			}
			if name != tt.name {
				t.Errorf("ParseRef(%q) name = %q, want %q", tt.in, name, tt.name)
			}
			if diff := cmp.Diff(tt.opts, opts); diff != "" {
				t.Errorf("ParseRef(%q) options mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestSplitRefs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: "", want: nil},
		{in: "a b\nc", want: []string{"a", "b", "c"}},
		{in: `a[x="1 2", y='] ['] b`, want: []string{`a[x="1 2", y='] [']`, "b"}},
		{in: "a[p=1,\n   q=2]\n  b[r=3]", want: []string{"a[p=1,\n   q=2]", "b[r=3]"}},
		{in: "a[p=1][q=2] b", want: []string{"a[p=1][q=2]", "b"}},
		{in: "a [p=1]", want: []string{"a [p=1]"}},
		{in: "a[p=1", want: []string{"a[p=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got []string
			for _, it := range splitRefs(tt.in) {
				got = append(got, it.text)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("splitRefs(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
