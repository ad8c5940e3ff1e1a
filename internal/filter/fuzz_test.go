package filter

import (
	"strings"
	"testing"

	"github.com/logjail/logjail/internal/config"
)

// FuzzMatcher feeds arbitrary lines to filters shaped like the shipped ones. It checks that
// nothing panics and that a failure's host is always an address that stands in the line: no
// line can conjure an address it does not contain.
func FuzzMatcher(f *testing.F) {
	for _, s := range []string{
		`203.0.113.5 - - [22/Nov/2026:13:00:00 +0000] "POST /xmlrpc.php HTTP/1.1" 200 370 "-" "-"`,
		`Nov 22 13:00:00 h sshd[1]: Failed password for invalid user x from 192.0.2.1 port 22 ssh2`,
		`Nov 22 13:00:00 h sshd[1]: Connection from 2001:db8::7 port 4 on 10.0.0.1 port 22`,
		`Nov 22 13:00:00 h sshd[1]: Disconnecting: Too many authentication failures`,
		"\x00\xff[\n",
		`2026-11-22T13:00:00.123+01:00 h sshd[1]: Failed password for root from ::ffff:1.2.3.4 port 2 ssh2`,
	} {
		f.Add(s)
	}
	defs := []config.FilterDef{
		{Name: "access", FailRegex: vals(`^<HOST> \S+ \S+ \[\] "POST /(?:\S*/)?(?:xmlrpc|wp-login)\.php`)},
		{Name: "sshd", FailRegex: vals(
			`^ \S+ sshd\[\d+\]: Failed \S+ for (?:invalid user )?<F-USER>\S+</F-USER> from <HOST> port \d+`,
			`^ \S+ sshd\[\d+\]: (?:error: )?<F-NOFAIL>Connection from</F-NOFAIL> <HOST>`)},
		{Name: "mlf", PrefRegex: &config.Value{Text: `^<F-MLFID> \S+ sshd\[\d+\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$`},
			FailRegex: vals(`^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>`, `^Disconnecting: Too many`, `^Failed \S+ for (?P<c>invalid user )?<F-USER>\S+</F-USER> from <HOST>(?(c) x|)`)},
		{Name: "multi", MaxLines: 3, FailRegex: vals(`^.*begin<SKIPLINES>.*from <HOST>$`)},
	}
	var fs []*Filter
	for _, d := range defs {
		fs = append(fs, mustFilter(f, d))
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, flt := range fs {
			m := flt.NewMatcher() // fresh per input: a host may come from an earlier line of it
			for _, l := range strings.Split(line, "\n") {
				r := m.Process(l, testNow)
				if r.Verdict != Matched {
					continue
				}
				for _, fl := range r.Failures {
					if !fl.Addr.IsValid() {
						if fl.ID == "" {
							t.Fatalf("failure with neither address nor ID from %q", l)
						}
						continue
					}
					if !strings.Contains(line, fl.Host) {
						t.Fatalf("host %q not in line %q", fl.Host, l)
					}
				}
			}
		}
	})
}
