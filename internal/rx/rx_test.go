package rx

import (
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// same checks that r and package regexp give the same groups on s.
func same(t testing.TB, r *Regexp, m *Machine, s string) {
	t.Helper()
	got := r.FindStringSubmatchIndex(m, s)
	want := r.std.FindStringSubmatchIndex(s)
	if !slices.Equal(got, want) {
		t.Fatalf("regex %q on %q: got %v, regexp gives %v", r.String(), s, got, want)
	}
}

func TestFilterRegexes(t *testing.T) {
	host := `\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)))\]?`
	cases := []struct {
		re    string
		lines []string
	}{
		{`^\s*\S+ sshd(?:-session|-auth)?\[\d+\]: (?:error: |fatal: )?(?P<content>.+)$`, []string{
			"web1 sshd[20000]: Failed password for root from 192.0.2.6 port 56838 ssh2",
			"web1 sshd[20000]: error: ",
			"web1 sshd[20000]: error: x",
			"  web1 sshd-session[1]: fatal: Timeout",
			"web1 cron[1]: x",
		}},
		{`^Failed (?:password|keyboard-interactive(?:/pam)?) for (?:invalid user )?(?P<user>.*?) from ` + host + ` port \d+ ssh2$`, []string{
			"Failed password for invalid user ubuntu from 192.0.2.9 port 7873 ssh2",
			"Failed password for root from 10.0.0.1 port 22 ssh2 from 192.0.2.66 port 1 ssh2",
			"Failed password for x from ::ffff:192.0.2.1 port 22 ssh2",
			"Failed password for x from 2001:db8::1 port 22 ssh2",
			"Failed password for x from [2001:db8::1] port 22 ssh2",
			"Failed password for \xff\xfeé from 1.2.3.4 port 22 ssh2",
			"Failed publickey for x from 1.2.3.4 port 22 ssh2",
		}},
		{`^` + host + ` - (?:[^"\\]|\\.)*?\[\] "POST (?:/[^\s"?]*)?/(?:wp-login|xmlrpc)\.php(?:/[^\s"?]*)?(?:\?[^\s"]*)? HTTP/\d(?:\.\d)?" [1245]\d\d (?:\d+|-)`, []string{
			`185.220.101.10 - - [] "POST /xmlrpc.php HTTP/1.1" 200 395 "-" "-"`,
			`185.220.101.10 - "a\"b" [] "POST /blog/wp-login.php?x=1 HTTP/2" 403 -`,
			`185.220.101.10 - - [] "GET /xmlrpc.php HTTP/1.1" 200 395 "-" "-"`,
		}},
		// loopGreedy: greedy loops whose continuation could start inside them
		{`^(?P<h>\S+) .* "POST (/[^\s"?]*)?/(?:wp-login|xmlrpc)\.php`, []string{
			`1.2.3.4 - - [x] "POST /a/b/xmlrpc.php HTTP/1.1" "POST /c"`,
			`1.2.3.4 - é "POST /é/xmlrpc.php" "POST /wp-login.php"`,
			"1.2.3.4 \xff\xfe \"POST /\xe9/wp-login.php",
			`1.2.3.4 "POST /xmlrpc.php`,
			`1.2.3.4 - "GET /xmlrpc.php`,
		}},
		{`(a.*)*b|x(.*)$`, []string{"aaab", "aéaxb", "xé", "x", "aaaa"}},
		{`[^é]*é|.*\z`, []string{"abcé", "abc", "\xe9", ""}},
		{`(?s)(.*)(\n?)`, []string{"a\nb", "\n"}},
		{`(?i)user agent: (?:masscan|zgrab|sqlmap)\b`, []string{"UA User Agent: SQLMAP/1", "user agent: zgrabber"}},
		{`(?m)^a$\n^b`, []string{"x\na\nb", "a\nb\n"}},
		{`\bfoo\b|(é+)ç`, []string{"xfoo foo", "ééç", "\xe9\xe9ç"}},
		// a class of one rune past ASCII that is no literal (U+FFFD, which invalid bytes are)
		{`[a-z]*\x{FFFD}`, []string{"ab\uFFFD", "ab\xff", "ab"}},
		// loopBounded: bounded repeats that give back characters, or stop at runes past ASCII
		// and invalid bytes
		{`\d{1,3}1`, []string{"1231", "11", "1", "12341", "x1111"}},
		{`(?:\d{1,3}\.){3}\d{1,3}`, []string{"1234.5.6.7", "1.2.3.4444", "1.2.3", "12.34.5.67.8", "1.é.3.4.5.6.7"}},
		{`\d{1,3}$`, []string{"1234", "12", "a", ""}},
		{`(\d{1,3})(\d*)`, []string{"12345", "1", "x"}},
		{`(\d{1,3}?)(\d*)`, []string{"12345"}},
		{`^(f{4,6})(f*)(:?)`, []string{"fff", "ffff:", "fffffff:", "ffffé"}},
		{`a{2,5}(a?)(b|a)`, []string{"aaaaaaab", "aab", "aaab"}},
		{`([0-9a-fA-F]{1,4})::?([0-9a-fA-F]{1,4}|:)`, []string{"2001:db8::1", "12345::1", "fffff:", "a:é"}},
		{`(\S{1,3})(é|\xff|.)`, []string{"aéé", "é\xff\xffa", "\xff\xfe", "aé", "ab c"}},
		{`(.{2,4})([^a]{0,2})$`, []string{"aé\xff\xfeb", "\xffa", "abcdefg"}},
		{`(é{1,3})(é|a)`, []string{"éééé", "éa", "é\xc3"}},
		{`(?:a{1,2})*(b)`, []string{"aaaab", "b", "aaa"}},
		{`\[?(\d{1,3})\]?(\]?)`, []string{"[12]]", "1234]", "[x"}},
		{`(?i)k{1,3}(K)`, []string{"kKk", "\u212akk", "KK"}},
	}
	m := new(Machine)
	for _, c := range cases {
		r := MustCompile(c.re)
		for _, l := range c.lines {
			same(t, r, m, l)
			same(t, r, nil, l)
		}
	}
}

// The loop shortcuts are taken where they apply (the comparisons above would pass without).
func TestLoopKinds(t *testing.T) {
	for _, c := range []struct {
		re   string
		want loopKind
	}{
		{`\S+ x`, loopGreedy},
		{`.*? from`, loopLazy},
		{`.* from`, loopGreedy},
		{`(?:/[^\s"?]*)?/x`, loopGreedy},
		{`[ab]*b`, loopGreedy},
		{`a*b`, loopGreedy},
		{`\d{1,3}`, loopBounded},
		{`[0-9a-f]{1,4}:`, loopBounded},
		{`f{4,6}`, loopBounded},
		{`a{2,5}`, loopBounded},
		{`\[?x`, loopBounded},
		{`é{0,2}`, loopBounded},
	} {
		if !hasLoop(MustCompile(c.re), c.want) {
			t.Errorf("%q: no loop of kind %d", c.re, c.want)
		}
	}
	// lazy repeats, repeats with a choice, a capture or a literal of more than one character
	// in each copy
	for _, re := range []string{`\d{1,3}?`, `(\d){1,3}`, `(?:a|bc){1,3}`, `(?:ab){1,3}`, `\d{3}`} {
		if hasLoop(MustCompile(re), loopBounded) {
			t.Errorf("%q: loopBounded", re)
		}
	}
}

func hasLoop(r *Regexp, kind loopKind) bool {
	for _, in := range r.prog {
		if in.op == opAlt && in.loop == kind {
			return true
		}
	}
	return false
}

func TestLongTextGoesToRegexp(t *testing.T) {
	r := MustCompile(`(a|b)*?c(d+)`)
	s := strings.Repeat("ab", 200000) + "cddd"
	same(t, r, new(Machine), s)
}

// randRegex builds a random regex over a small alphabet, with the constructs filters use.
func randRegex(rng *rand.Rand, depth int) string {
	atoms := []string{"a", "b", " ", "é", `\d`, `\S`, `\s`, `[ab]`, `[^a\n]`, `.`, `\.`, "ab", "ba ", `\b`, `^`, `$`, `\n`, `(?i:a)`, `[[:alpha:]]`, `a*`, `(?:)`, `\B`, `(a|)`, `\d{1,3}`, `[0-9a]{2,4}`, `\S{0,2}`, `é{1,2}`}
	if depth <= 0 || rng.IntN(3) == 0 {
		return atoms[rng.IntN(len(atoms))]
	}
	sub := randRegex(rng, depth-1)
	switch rng.IntN(10) {
	case 0:
		return "(" + sub + ")"
	case 1:
		return "(?P<g" + string(rune('a'+rng.IntN(26))) + ">" + sub + ")"
	case 2:
		return "(?:" + sub + "|" + randRegex(rng, depth-1) + ")"
	case 3:
		reps := []string{"*", "+", "?", "*?", "+?", "??", "{1,3}", "{2}", "{0,2}?", "{2,4}", "{0,3}", "{1,3}?", "{3,}"}
		return "(?:" + sub + ")" + reps[rng.IntN(len(reps))]
	case 4:
		return "(?s:" + sub + ")"
	case 5:
		return "(?m:" + sub + ")"
	default:
		return sub + randRegex(rng, depth-1)
	}
}

func randText(rng *rand.Rand, max int) string {
	parts := []string{"a", "b", " ", "é", "1", "\n", ".", "\xff", "ab", "ba ", "12", "1.2"}
	var b strings.Builder
	for n := rng.IntN(max); n > 0; n-- {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	return b.String()
}

// TestAgainstRegexp compares with package regexp on many random regexes and texts.
func TestAgainstRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := new(Machine)
	n := 3000
	if os.Getenv("RX_RANDOM") != "" {
		n, _ = strconv.Atoi(os.Getenv("RX_RANDOM"))
	}
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		expr := randRegex(rng, 4)
		if rng.IntN(3) == 0 {
			expr = "^" + expr
		}
		r, err := Compile(expr)
		if err != nil {
			continue
		}
		for k := 0; k < 30; k++ {
			same(t, r, m, randText(rng, 12))
		}
		for k := 0; k < 3; k++ {
			same(t, r, m, randText(rng, 300))
		}
	}
}

func FuzzAgainstRegexp(f *testing.F) {
	f.Add(`^Failed (?:password|pub) for (.*?) from (\d+\.\d+) port \d+$`, "Failed password for x from 1.2 port 3")
	f.Add(`(a|ab)(c|bcd)(d*)`, "abcd")
	f.Add(`(?m)^\s*(\S+?)\b`, "\n  é\xffx ")
	f.Add(`(?:\d{1,3}\.){3}(\d{1,3})(\d?)`, "1234.5.6.7.8901")
	f.Add(`([0-9a-f]{1,4}:?){2,3}(é{0,2}.)`, "ab12:c:ééé\xff")
	m := new(Machine)
	f.Fuzz(func(t *testing.T, expr, s string) {
		if len(expr) > 200 {
			return
		}
		if _, err := regexp.Compile(expr); err != nil {
			return
		}
		r, err := Compile(expr)
		if err != nil {
			t.Fatalf("regexp compiles %q, rx does not: %v", expr, err)
		}
		same(t, r, m, s)
	})
}

func benchPair(b *testing.B, expr, s string) {
	r := MustCompile(expr)
	b.Run("rx", func(b *testing.B) {
		m := new(Machine)
		for i := 0; i < b.N; i++ {
			r.FindStringSubmatchIndex(m, s)
		}
	})
	b.Run("regexp", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r.std.FindStringSubmatchIndex(s)
		}
	})
}

const benchHost = `\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)))\]?`

func BenchmarkSSHDFailed(b *testing.B) {
	benchPair(b, `^Failed (?:password|keyboard-interactive(?:/pam)?) for (?:invalid user )?(?P<user>.*?) from `+benchHost+` port \d+ ssh2$`,
		"Failed password for invalid user ubuntu from 192.0.2.9 port 7873 ssh2")
}

func BenchmarkSSHDPrefix(b *testing.B) {
	benchPair(b, `^\s*\S+ sshd(?:-session|-auth)?\[\d+\]: (?:error: |fatal: )?(?P<content>)`,
		"web1 sshd[20000]: Failed password for invalid user ubuntu from 192.0.2.9 port 7873 ssh2")
}

func BenchmarkWordpress(b *testing.B) {
	benchPair(b, `^`+benchHost+` - (?:[^"\\]|\\.)*?\[\] "POST (?:/[^\s"?]*)?/(?:wp-login|xmlrpc)\.php(?:/[^\s"?]*)?(?:\?[^\s"]*)? HTTP/\d(?:\.\d)?" [1245]\d\d (?:\d+|-)`,
		`198.51.100.4 - - [] "POST /xmlrpc.php HTTP/1.1" 200 413 "-" "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:40.0) Gecko/20100101 Firefox/40.1"`)
}
