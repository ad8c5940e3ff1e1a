package filter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/config"
)

var testNow = time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)

func vals(lines ...string) []config.Value {
	out := make([]config.Value, len(lines))
	for i, l := range lines {
		out[i] = config.Value{Text: l, Pos: config.Pos{File: "test.conf", Line: 10 + i}}
	}
	return out
}

func mustFilter(t testing.TB, def config.FilterDef) *Filter {
	t.Helper()
	if def.Name == "" {
		def.Name = "test"
	}
	f, err := New(&def, Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestExpandTags(t *testing.T) {
	tests := []struct {
		name, in, want string
		unknown        []string
	}{
		{"user", `for <F-USER>\S+</F-USER> x`, `for (?P<user>\S+) x`, nil},
		{"id", `<F-ID/>`, `(?P<fid>\S+)`, nil},
		{"custom open close", `<F-ALT_USER1>x</F-ALT_USER1>`, `(?P<alt_user1>x)`, nil},
		{"unopened close", `a</F-USER>`, `a</F-USER>`, []string{"</F-USER>"}},
		{"unknown", `<foo> <HOSTNAME>`, `<foo> <HOSTNAME>`, []string{"<foo>", "<HOSTNAME>"}},
		{"escaped", `\<HOST>`, `\<HOST>`, nil},
		{"not a tag", `a < b > c`, `a < b > c`, nil},
		{"tag after <", `user=<<F-USER>x</F-USER>>`, `user=<(?P<user>x)>`, nil},
		{"group names", `(?P<HOST>x)(?<IP4>y)`, `(?P<HOST>x)(?<IP4>y)`, nil},
		{"ip4", `<IP4>`, reIP4, nil},
		{"host no dns", `<HOST>`, reAddr, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unk, _ := expandTags(tt.in, DNSNo)
			if got != tt.want || !cmp.Equal(unk, tt.unknown) {
				t.Errorf("expandTags(%q) = %q %v, want %q %v", tt.in, got, unk, tt.want, tt.unknown)
			}
		})
	}
	if got, _, _ := expandTags("<HOST>", DNSYes); got != reHost {
		t.Errorf("<HOST> with usedns=yes = %q, want the name form", got)
	}
}

func TestPyToGo(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\d{,3}`, `\d{0,3}`},
		{`x\Z`, `x\z`},
		{`a(?#comment)b`, `ab`},
		{`[{,3}]`, `[{,3}]`},
		{`[]a]{,2}`, `[]a]{0,2}`},
		{`\{,3}`, `\{,3}`},
		{`a{2,}`, `a{2,}`},
	}
	for _, tt := range tests {
		if got := pyToGo(tt.in); got != tt.want {
			t.Errorf("pyToGo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCompileEngines(t *testing.T) {
	tests := []struct {
		re     string
		engine Engine
	}{
		{`^Failed password for \S+ from <HOST>`, EngineRE2},
		{`^Failed (?!publickey)\S+ from <HOST>`, EngineBacktrack},
		{`^(?P<x>a)? from <HOST>(?(x) y| z)`, EngineBacktrack},
		{`^(?P<q>["'])x(?P=q) from <HOST>`, EngineBacktrack},
		{`^(a)\1 from <HOST>`, EngineBacktrack},
		{`(?<=from )<HOST>`, EngineBacktrack},
	}
	for _, tt := range tests {
		r, err := compileRegex(tt.re, DNSNo, false, time.Second)
		if err != nil {
			t.Errorf("compile %q: %v", tt.re, err)
			continue
		}
		if r.Engine != tt.engine {
			t.Errorf("compile %q: engine %s, want %s", tt.re, r.Engine, tt.engine)
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		def     config.FilterDef
		wantErr string
		wantPos string
		is      error
	}{
		{"no host", config.FilterDef{FailRegex: vals(`^Failed password for \S+`)}, "no host group", "test.conf:10", ErrNoHostGroup},
		{"second bad", config.FilterDef{FailRegex: vals(`from <HOST>`, `from <HOST> (`)}, "missing closing )", "test.conf:11", nil},
		{"none", config.FilterDef{}, "no failregex", "", ErrNoFailRegex},
		{"bad ignore", config.FilterDef{FailRegex: vals(`from <HOST>`), IgnoreRegex: vals(`[`)}, "ignoreregex", "test.conf:10", nil},
		{"host in prefregex ok", config.FilterDef{PrefRegex: &config.Value{Text: `^<HOST> <F-CONTENT>.+</F-CONTENT>$`}, FailRegex: vals(`^POST`)}, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.def.Name = "t"
			_, err := New(&tt.def, Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.wantPos) {
				t.Fatalf("error = %v, want it to contain %q and %q", err, tt.wantErr, tt.wantPos)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

type got struct {
	Verdict string
	Host    string
	User    string
	Bad     bool
}

func run(f *Filter, lines ...string) []got {
	m := f.NewMatcher()
	var out []got
	for _, l := range lines {
		r := m.Process(l, testNow)
		g := got{Verdict: r.Verdict.String(), Bad: r.BadHost}
		if r.Verdict == Matched {
			g.Host = r.Failures[0].Addr.String()
			if !r.Failures[0].Addr.IsValid() {
				g.Host = "id:" + r.Failures[0].ID
			}
			g.User = r.Failures[0].User
		}
		out = append(out, g)
	}
	return out
}

func TestProcess(t *testing.T) {
	sshdLike := config.FilterDef{FailRegex: vals(
		`^\s*\S+ sshd\[\d+\]: Failed password for (?:invalid user )?<F-USER>\S+</F-USER> from <HOST> port \d+`,
	)}
	tests := []struct {
		name  string
		def   config.FilterDef
		lines []string
		want  []got
	}{
		{"v4 v6 mapped", sshdLike, []string{
			"Nov 22 13:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
			"Nov 22 13:00:00 h sshd[1]: Failed password for invalid user bob from 2001:DB8::1 port 22 ssh2",
			"Nov 22 13:00:00 h sshd[1]: Failed password for root from ::ffff:198.51.100.7 port 22 ssh2",
			"Nov 22 13:00:00 h sshd[1]: Accepted password for root from 192.0.2.1 port 22 ssh2",
		}, []got{
			{Verdict: "matched", Host: "192.0.2.1", User: "root"},
			{Verdict: "matched", Host: "2001:db8::1", User: "bob"},
			{Verdict: "matched", Host: "198.51.100.7", User: "root"},
			{Verdict: "missed"},
		}},
		{"not an address", sshdLike, []string{
			"Nov 22 13:00:00 h sshd[1]: Failed password for root from 999.1.2.3 port 22 ssh2",
			"Nov 22 13:00:00 h sshd[1]: Failed password for root from 192.030.0.6 port 22 ssh2",
			"Nov 22 13:00:00 h sshd[1]: Failed password for root from example.com port 22 ssh2",
		}, []got{{Verdict: "missed", Bad: true}, {Verdict: "missed", Bad: true}, {Verdict: "missed"}}},
		{"ignoreregex", config.FilterDef{
			FailRegex:   vals(`^ \S+ app: login failed from <HOST>`),
			IgnoreRegex: vals(`from 203\.0\.113\.`),
		}, []string{
			"Nov 22 13:00:00 h app: login failed from 192.0.2.1",
			"Nov 22 13:00:00 h app: login failed from 203.0.113.9",
		}, []got{{Verdict: "matched", Host: "192.0.2.1"}, {Verdict: "ignored"}}},
		{"prefregex content", config.FilterDef{
			PrefRegex: &config.Value{Text: `^ \S+ app\[\d+\]: <F-CONTENT>.+</F-CONTENT>$`},
			FailRegex: vals(`^bad login from <HOST>$`, `^user <F-USER>\S+</F-USER> blocked: <HOST>$`),
		}, []string{
			"Nov 22 13:00:00 h app[2]: bad login from 192.0.2.1",
			"Nov 22 13:00:00 h app[2]: user eve blocked: 192.0.2.2",
			"Nov 22 13:00:00 h other[2]: bad login from 192.0.2.3",
		}, []got{{Verdict: "matched", Host: "192.0.2.1"}, {Verdict: "matched", Host: "192.0.2.2", User: "eve"}, {Verdict: "missed"}}},
		{"nofail", config.FilterDef{
			FailRegex: vals(`^ \S+ app: <F-NOFAIL>hello</F-NOFAIL> from <HOST>`, `^ \S+ app: fail from <HOST>`),
		}, []string{
			"Nov 22 13:00:00 h app: hello from 192.0.2.1",
			"Nov 22 13:00:00 h app: fail from 192.0.2.1",
		}, []got{{Verdict: "ignored"}, {Verdict: "matched", Host: "192.0.2.1"}}},
		{"fid", config.FilterDef{FailRegex: vals(`^ \S+ app: session <F-ID>\w+</F-ID> failed`)}, []string{
			"Nov 22 13:00:00 h app: session abc failed",
		}, []got{{Verdict: "matched", Host: "id:abc"}}},
		{"alt user", config.FilterDef{FailRegex: vals(`^ \S+ app: (?:u=<F-USER>\S+</F-USER>|a=<F-ALT_USER>\S+</F-ALT_USER>) from <HOST>`)}, []string{
			"Nov 22 13:00:00 h app: a=mallory from 192.0.2.1",
		}, []got{{Verdict: "matched", Host: "192.0.2.1", User: "mallory"}}},
		{"mlfid connection", config.FilterDef{
			PrefRegex: &config.Value{Text: `^<F-MLFID> \S+ sshd\[\d+\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$`},
			FailRegex: vals(
				`^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>`,
				`^Disconnecting: Too many authentication failures`,
				`^<F-MLFFORGET><F-MLFGAINED>Accepted \w+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>`,
			),
		}, []string{
			"Nov 22 13:00:00 h sshd[7]: Connection from 192.0.2.9 port 4 on 10.0.0.1 port 22",
			"Nov 22 13:00:01 h sshd[7]: Disconnecting: Too many authentication failures",
			"Nov 22 13:00:02 h sshd[8]: Disconnecting: Too many authentication failures",
			"Nov 22 13:00:03 h sshd[9]: Connection from 192.0.2.10 port 4 on 10.0.0.1 port 22",
			"Nov 22 13:00:04 h sshd[9]: Accepted publickey for admin from 192.0.2.10 port 4 ssh2",
		}, []got{
			{Verdict: "ignored"},
			{Verdict: "matched", Host: "192.0.2.9"},
			{Verdict: "ignored"}, // no host known for pid 8: pending
			{Verdict: "ignored"},
			{Verdict: "ignored"}, // successful login
		}},
		{"multi-line", config.FilterDef{
			MaxLines:  3,
			FailRegex: vals(`^ \S+ app: begin <F-ID/>\n \S+ app: from <HOST>$`),
		}, []string{
			"Nov 22 13:00:00 h app: begin x1",
			"Nov 22 13:00:00 h app: from 192.0.2.4",
			"Nov 22 13:00:00 h app: from 192.0.2.5",
		}, []got{{Verdict: "missed"}, {Verdict: "matched", Host: "192.0.2.4"}, {Verdict: "missed"}}}, // the address wins over the ID
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFilter(t, tt.def)
			if diff := cmp.Diff(tt.want, run(f, tt.lines...)); diff != "" {
				t.Errorf("verdicts mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProcessTime(t *testing.T) {
	f := mustFilter(t, config.FilterDef{FailRegex: vals(`fail from <HOST>`)})
	m := f.NewMatcher()
	r := m.Process("Nov 22 13:00:00 h app: fail from 192.0.2.1", testNow)
	if !r.HasDate || !r.Failures[0].Time.Equal(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("time = %v (has date %v)", r.Failures[0].Time, r.HasDate)
	}
	r = m.Process("fail from 192.0.2.1", testNow)
	if r.HasDate || !r.Failures[0].Time.Equal(testNow) {
		t.Errorf("no-date line: time = %v, want read time", r.Failures[0].Time)
	}
}

// TestBacktrackTimeout: a catastrophic pattern on the fallback engine stops at its timeout.
func TestBacktrackTimeout(t *testing.T) {
	def := config.FilterDef{Name: "t", FailRegex: vals(`^(?=x)?(a+)+b from <HOST>`)}
	f, err := New(&def, Options{MatchTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := f.NewMatcher().Process(strings.Repeat("a", 5000)+"c", testNow)
	if r.Verdict != Missed || !r.Timeout {
		t.Errorf("verdict %v timeout %v, want missed with timeout", r.Verdict, r.Timeout)
	}
}

// TestRestOfLineSplit: a regex ending in (?P<content>.+)$ is run without that tail, and the
// tail's span is the rest of the line; when the head's preferred match takes the whole line, the
// full regex decides (it must leave at least one byte for .+).
func TestRestOfLineSplit(t *testing.T) {
	r, err := compileRegex(`^(?P<a>x*)<F-CONTENT>.+</F-CONTENT>$`, DNSNo, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.head == nil {
		t.Fatal("regex was not split")
	}
	for _, tt := range []struct{ in, a, content string }{
		{"xxy", "xx", "y"},
		{"xxx", "xx", "x"},
		{"y", "", "y"},
	} {
		idx, _ := r.match(nil, nil, tt.in)
		a, _ := capture(tt.in, idx, r.g.names2idx("a"))
		c, _ := capture(tt.in, idx, r.g.content)
		if a != tt.a || c != tt.content || idx[0] != 0 || idx[1] != len(tt.in) {
			t.Errorf("%q: a=%q content=%q span=%v, want a=%q content=%q", tt.in, a, c, idx[:2], tt.a, tt.content)
		}
	}
	if idx, _ := r.match(nil, nil, ""); idx != nil {
		t.Errorf("empty line matched: %v", idx)
	}
}

func TestMLFCacheBounded(t *testing.T) {
	c := newMLFCache(3, time.Minute)
	at := func(s int) time.Time { return testNow.Add(time.Duration(s) * time.Second) }
	for i, id := range []string{"a", "b", "c"} {
		c.merge(id, map[string]string{"ip4": "192.0.2.1"}, at(i))
	}
	c.merge("a", map[string]string{}, at(3)) // a seen again: b is now the stalest
	c.merge("d", map[string]string{}, at(4))
	var ids []string
	for _, id := range []string{"a", "b", "c", "d"} {
		if c.entries[id] != nil {
			ids = append(ids, id)
		}
	}
	if diff := cmp.Diff([]string{"a", "c", "d"}, ids); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	c.merge("e", map[string]string{}, at(200)) // everything else expired
	if len(c.entries) != 1 || c.entries["e"] == nil {
		t.Errorf("after expiry: %d entries", len(c.entries))
	}
	for i := 0; i < 10000; i++ { // a flood of distinct connections stays at the cap
		c.merge(strings.Repeat("x", i%50)+string(rune('a'+i%26)), map[string]string{}, at(300+i))
	}
	if len(c.entries) > 3 || len(c.order) > 10 {
		t.Errorf("cache grew: %d entries, %d queued", len(c.entries), len(c.order))
	}
}

func TestMLFCacheBusyConnection(t *testing.T) {
	c := newMLFCache(3, time.Minute)
	for i := 0; i < 10000; i++ {
		c.merge("one", map[string]string{}, testNow) // same time: slots told apart by generation
	}
	if len(c.order) > 4*3+64 {
		t.Errorf("order queue grew to %d for one busy connection", len(c.order))
	}
}

func TestRequiredAny(t *testing.T) {
	tests := []struct {
		re   string
		want []string
	}{
		{`"(?:[^"]*[ ;])?(?:masscan|zgrab|Nikto|\(Hydra\)|[^\s\S])`, []string{"masscan", "zgrab", "Nikto", "(Hydra)"}},
		{`(?:EmailCollector|EmailSiphon)`, []string{"Collector", "Siphon"}},
		{`^\[\] "(?:abcd|efgh)`, []string{"abcd", "efgh"}}, // the alternation, not the common literal
		{`(?:Email(?:Collector|Siphon)|zgrab)`, []string{"Email", "zgrab"}},
		{`(?:abc|x)`, nil},         // a branch without a literal worth checking
		{`(?i)(?:abcd|efgh)`, nil}, // case-insensitive
		{`^\S+ (?:abcd|efgh)+`, []string{"abcd", "efgh"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, requiredAny(tt.re)); diff != "" {
			t.Errorf("requiredAny(%q) (-want +got):\n%s", tt.re, diff)
		}
	}
}
