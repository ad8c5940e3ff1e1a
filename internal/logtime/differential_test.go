package logtime

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The detectors built with directive instructions and scanners must give
// exactly what the reference build gives, which reads every directive from
// its regex text and runs every format on the backtracking machine.

var differentialSets = [][]string{
	nil,
	{`{^LN-BEG}`},
	{`^[^\[]*\[({DATE})`, `{^LN-BEG}`},
	{`^[^\[]*(\[{DATE}\s*\])`, `{^LN-BEG}`},
	{`{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`, `^[^\[]*\[({DATE})`, `{^LN-BEG}`},
	{`{DATE}`},
	{`^(?:\[)?{DATE}(?:\])?`},
	{`^(?:%A )?{DATE}`},
	{`({DATE})?x`},
	{`{DATE}[^\d]*\d`},
	{`%ExY-%Exm-%Exd %ExH:%ExM:%ExS(?: %Exz)?`},
	{`(?:%Z )?%d/%m/%y %l:%M:%S`},
	{`^%a %b %e %k:%M:%S %Y`},
	{`%x %X`, `%c`},
	{`%H:%M:%S(?: %p)?`},
	{`{^LN-BEG}{WPLL}`},
	// the shipped filters' datepatterns, run by sequence plans (seq.go)
	{`\[(%d/%b/%Y:%H:%M:%S %z)\] "`},
	{`{^LN-BEG}%b %d %H:%M:%S`},
	{`{^LN-BEG}%Y/%m/%d %H:%M:%S`},
	{`%Y-%m-%dT%H:%M:%S%z\s*$`},
	{`^{WPLL}`},
	{`{^LN-BEG}%a %b %d %H:%M:%S(?:\.%f)? %Y`},
}

func newPair(t testing.TB, patterns []string) (fast, ref *Detector) {
	t.Helper()
	fast, err := newDetector(patterns, Options{Location: time.UTC}, true)
	if err != nil {
		t.Fatalf("New(%q): %v", patterns, err)
	}
	ref, err = newDetector(patterns, Options{Location: time.UTC}, false)
	if err != nil {
		t.Fatalf("reference New(%q): %v", patterns, err)
	}
	return fast, ref
}

type result struct {
	M  Match
	OK bool
}

func TestDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := 3000
	if testing.Short() {
		n = 300
	}
	for _, ps := range differentialSets {
		fast, ref := newPair(t, ps)
		for _, line := range mutateLines(r, n) {
			f, fok := fast.Find(line, now)
			g, gok := ref.Find(line, now)
			if diff := cmp.Diff(result{g, gok}, result{f, fok}); diff != "" {
				t.Fatalf("patterns %q, line %q: fast differs from reference (-ref +fast):\n%s", ps, line, diff)
			}
		}
	}
}

func FuzzDifferential(f *testing.F) {
	for _, s := range f2bSamples {
		f.Add(uint8(0), s+" host x")
		f.Add(uint8(2), "192.0.2.1 - - ["+s+"] x")
	}
	f.Add(uint8(16), `192.0.2.1 - - [x] [21/Jun/2024:16:47:48 +0200] [21/Jun/2024:16:47:48 +0200] "GET / HTTP/1.1" 401`)
	f.Add(uint8(17), "Jun 21 16:47:48 host sshd[1]: x")
	f.Add(uint8(19), "ssh:notty admin 192.0.2.1 2024-06-21T16:47:48+0200 \n")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type pair struct{ fast, ref *Detector }
	pairs := make([]pair, len(differentialSets))
	for i, ps := range differentialSets {
		pairs[i].fast, pairs[i].ref = newPair(f, ps)
	}
	f.Fuzz(func(t *testing.T, set uint8, line string) {
		i := int(set) % len(differentialSets)
		ps := differentialSets[i]
		fast, ref := pairs[i].fast.Clone(), pairs[i].ref.Clone()
		for i := 0; i < 2; i++ { // the second time through the cache
			f, fok := fast.Find(line, now)
			g, gok := ref.Find(line, now)
			if diff := cmp.Diff(result{g, gok}, result{f, fok}); diff != "" {
				t.Fatalf("patterns %q, line %q: fast differs from reference (-ref +fast):\n%s", ps, line, diff)
			}
		}
	})
}

// TestDirectPlans checks that the scanners do run whole templates where
// expected (else the speed silently goes).
func TestDirectPlans(t *testing.T) {
	count := func(ps []string) int {
		n := 0
		for _, tm := range mustNew(t, ps, time.UTC).set.templates {
			if tm.direct != nil {
				n++
			}
		}
		return n
	}
	defaults := 0
	for _, sc := range scanners {
		for _, p := range defaultPatterns {
			if sc.pattern == p {
				defaults++
			}
		}
	}
	if got, want := count(nil), 2*defaults; got != want {
		t.Errorf("automatic detection: %d direct templates, want %d", got, want)
	}
	if got, want := count([]string{"{^LN-BEG}"}), defaults; got != want {
		t.Errorf("{^LN-BEG}: %d direct templates, want %d", got, want)
	}
	nginx := `{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`
	if got := count([]string{nginx}); got != 1 {
		t.Errorf("nginx datepattern: %d direct templates, want 1", got)
	}
}
