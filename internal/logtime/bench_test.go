package logtime

import (
	"fmt"
	"testing"
	"time"
)

// benchLines are ~150-byte lines of the common formats; each benchmark
// feeds the same format line after line, the detector's steady state.
var benchLines = []struct {
	name     string
	patterns []string
	line     string
}{
	{"syslog", nil, "Jun 21 16:47:48 myhost sshd[12345]: Failed password for invalid user admin from 192.0.2.123 port 52144 ssh2 [preauth] more text here ok"},
	{"syslog-year", nil, "Jun 21 16:47:48 2024 myhost sshd[12345]: Failed password for invalid user admin from 192.0.2.123 port 52144 ssh2 [preauth] text"},
	{"iso", nil, "2024-06-21T16:47:48.123456+02:00 myhost sshd[12345]: Failed password for invalid user admin from 192.0.2.123 port 52144 ssh2 text"},
	{"iso-space", nil, "2024-06-21 16:47:48,123 WARNING [auth] Failed login for user admin from 192.0.2.123 port 52144 using password; more text here x"},
	{"nginx-error", nil, "2024/06/21 16:47:48 [error] 1234#1234: *5678 user \"admin\" was not found in \"/etc/nginx/.htpasswd\", client: 192.0.2.123, server: x"},
	{"apache-access", nil, "192.0.2.123 - admin [21/Jun/2024:16:47:48 +0200] \"GET /wp-login.php HTTP/1.1\" 401 1234 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" x"},
	{"apache-error", nil, "[Fri Jun 21 16:47:48.123456 2024] [auth_basic:error] [pid 1234:tid 5678] [client 192.0.2.123:52144] AH01618: user admin not found: /"},
	{"epoch", nil, "1718988468.123 192.0.2.123 TCP_DENIED/403 3932 GET http://example.com/ - HIER_NONE/- text/html more text here for length ok ok ok ok"},
	{"stock-apache", []string{`^[^\[]*\[({DATE})`, `{^LN-BEG}`}, "192.0.2.123 - admin [21/Jun/2024:16:47:48 +0200] \"GET /wp-login.php HTTP/1.1\" 401 1234 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" x"},
	{"stock-nginx", []string{`{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`, `^[^\[]*\[({DATE})`, `{^LN-BEG}`}, "2024/06/21 16:47:48 [error] 1234#1234: *5678 user \"admin\" was not found in \"/etc/nginx/.htpasswd\", client: 192.0.2.123, server: x"},
	{"stock-syslog", []string{`{^LN-BEG}`}, "Jun 21 16:47:48 myhost sshd[12345]: Failed password for invalid user admin from 192.0.2.123 port 52144 ssh2 [preauth] more text here ok"},
	{"tomcat", nil, "Jun 21, 2024 4:47:48 PM org.apache.catalina.realm.LockOutRealm filterLockedAccounts WARNING: An attempt was made to authenticate x"},
	{"full-month", []string{`^%B %d %Y %H:%M:%S`}, "June 21 2024 16:47:48 host app: authentication failure for user admin from 192.0.2.123, more text here ok ok ok"},
	{"wpll", []string{`{^LN-BEG}{WPLL}`}, "Jun 21 04:47:48 192.0.2.123 admin Failed login attempt from the WordPress Limit Login plugin, more text to make the line long ok ok"},
	// the shipped filters' datepatterns (filter.d)
	{"dp-access", []string{`\[(%d/%b/%Y:%H:%M:%S %z)\] "`}, "192.0.2.123 - admin [21/Jun/2024:16:47:48 +0200] \"GET /wp-login.php HTTP/1.1\" 401 1234 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" x"},
	{"dp-sshd", []string{`{^LN-BEG}%b %d %H:%M:%S`}, "Jun 21 16:47:48 myhost sshd[12345]: Failed password for invalid user admin from 192.0.2.123 port 52144 ssh2 [preauth] more text here ok"},
	{"dp-nginx", []string{`{^LN-BEG}%Y/%m/%d %H:%M:%S`}, "2024/06/21 16:47:48 [error] 1234#1234: *5678 user \"admin\" was not found in \"/etc/nginx/.htpasswd\", client: 192.0.2.123, server: x"},
	{"dp-apache-auth", []string{`{^LN-BEG}%a %b %d %H:%M:%S(?:\.%f)? %Y`}, "[Fri Jun 21 16:47:48.123456 2024] [auth_basic:error] [pid 1234:tid 5678] [client 192.0.2.123:52144] AH01618: user admin not found: /"},
	{"dp-btmp", []string{`%Y-%m-%dT%H:%M:%S%z\s*$`}, "ssh:notty    admin         192.0.2.123      2024-06-21T16:47:48+0200"},
	{"dp-wpll", []string{`^{WPLL}`}, "Jun 21 04:47:48 192.0.2.123 admin Failed login attempt from the WordPress Limit Login plugin, more text to make the line long ok ok"},
	{"nodate", nil, "this line has no date at all, it is a continuation of a stack trace: at com.example.Foo.bar(Foo.java:123) and more text here ok ok"},
}

func BenchmarkFind(b *testing.B) {
	now := time.Date(2024, 6, 22, 0, 0, 0, 0, time.UTC)
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			d, err := New(bl.patterns, Options{Location: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := d.Find(bl.line, now); !ok && bl.name != "nodate" {
				b.Fatalf("no date in %q", bl.line)
			}
			b.SetBytes(int64(len(bl.line)))
			b.ReportAllocs()
			for b.Loop() {
				d.Find(bl.line, now)
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	for _, p := range [][]string{nil, {`^[^\[]*\[({DATE})`, `{^LN-BEG}`}} {
		b.Run(fmt.Sprint(len(p)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(p, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFindAllocs keeps Find free of allocations in the steady state, for
// every benchmarked format (and lines without a date).
func TestFindAllocs(t *testing.T) {
	now := time.Date(2024, 6, 22, 0, 0, 0, 0, time.UTC)
	for _, bl := range benchLines {
		t.Run(bl.name, func(t *testing.T) {
			d := mustNew(t, bl.patterns, time.UTC)
			d.Find(bl.line, now)
			if n := testing.AllocsPerRun(100, func() { d.Find(bl.line, now) }); n != 0 {
				t.Errorf("Find(%q) allocates %v times", bl.line, n)
			}
		})
	}
}

// BenchmarkFindNewStamps feeds lines whose stamps all differ (no two lines
// in the same second): the worst case of the time cache, which then always
// misses.
func BenchmarkFindNewStamps(b *testing.B) {
	now := time.Date(2024, 6, 22, 0, 0, 0, 0, time.UTC)
	start := time.Date(2024, 6, 21, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name, layout, rest string
		patterns           []string
	}{
		{"syslog", "Jan _2 15:04:05", " myhost sshd[12345]: Failed password for invalid user admin from 192.0.2.123 port 52144 ssh2", nil},
		{"dp-sshd", "Jan _2 15:04:05", " myhost sshd[12345]: Failed password for invalid user admin from 192.0.2.123 port 52144 ssh2", []string{`{^LN-BEG}%b %d %H:%M:%S`}},
		{"dp-access", "192.0.2.123 - admin [02/Jan/2006:15:04:05 -0700]", ` "GET /wp-login.php HTTP/1.1" 401 1234 "-" "Mozilla/5.0"`, []string{`\[(%d/%b/%Y:%H:%M:%S %z)\] "`}},
		{"iso", "2006-01-02T15:04:05.000000-07:00", " myhost sshd[12345]: Failed password for invalid user admin from 192.0.2.123 port 52144 ssh2", nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			d, err := New(c.patterns, Options{Location: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			lines := make([]string, 4096)
			for i := range lines {
				lines[i] = start.Add(time.Duration(i)*time.Second+time.Duration(i)*time.Microsecond).Format(c.layout) + c.rest
			}
			for _, l := range lines {
				if _, ok := d.Find(l, now); !ok {
					b.Fatalf("no date in %q", l)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				d.Find(lines[i%len(lines)], now)
				i++
			}
		})
	}
}
