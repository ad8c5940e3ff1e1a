package filter_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/loggen"
)

// BenchmarkMatcher measures whole-filter throughput (date, prefregex, failregexes, host parse)
// per line on generated logs; lines/s = 1e9 / ns/op.
func BenchmarkMatcher(b *testing.B) {
	var access, sshd bytes.Buffer
	if err := loggen.Access(&access, 20000, 1); err != nil {
		b.Fatal(err)
	}
	if err := loggen.SSHD(&sshd, 20000, 1); err != nil {
		b.Fatal(err)
	}
	accessLines := strings.Split(strings.TrimSpace(access.String()), "\n")
	sshdLines := strings.Split(strings.TrimSpace(sshd.String()), "\n")
	cases := []struct {
		name, dir, ref string
		lines          []string
	}{
		{"wordpress", repoRoot, "wordpress", accessLines},
		{"http-flood", repoRoot, "http-flood", accessLines},
		{"badbots", repoRoot, "badbots", accessLines},
		{"sshd", repoRoot, "sshd", sshdLines},
		{"sshd-aggressive", repoRoot, "sshd[mode=aggressive]", sshdLines},
		{"fail2ban-sshd", "/etc/fail2ban", "sshd", sshdLines},
		{"fail2ban-apache-auth", "/etc/fail2ban", "apache-auth", accessLines},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if _, err := os.Stat(c.dir); err != nil {
				b.Skipf("%s: %v", c.dir, err)
			}
			def, diags := config.LoadFilter(c.dir, c.ref, nil)
			if err := diags.Err(); err != nil {
				b.Fatal(err)
			}
			f, err := filter.New(def, filter.Options{Location: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			m := f.NewMatcher()
			now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Process(c.lines[i%len(c.lines)], now)
			}
		})
	}
}
