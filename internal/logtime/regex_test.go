package logtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// searchRegex compiles src and returns the byte spans of all groups of the
// leftmost match (nil for none), the way the detectors run programs.
func searchRegex(t testing.TB, src, s string) ([][2]int, error) {
	t.Helper()
	prog, err := compileRegex(src, true)
	if err != nil {
		return nil, err
	}
	m := &machine{}
	if _, _, ok := m.search(prog, s, 0, len(s)); !ok {
		if m.aborted {
			return nil, errStepLimit
		}
		return nil, nil
	}
	spans := make([][2]int, prog.ngroups+1)
	for g := range spans {
		spans[g] = [2]int{m.caps[2*g], m.caps[2*g+1]}
	}
	return spans, nil
}

var errStepLimit = errors.New("step limit")

// TestRegexPythonSemantics pins behaviour where Python's re differs from
// Go's regexp (the expected spans come from Python 3.11).
func TestRegexPythonSemantics(t *testing.T) {
	tests := []struct {
		pattern, input string
		want           [][2]int
	}{
		{`(?P<x>a|b)c(?P=x)`, "zacabcb", [][2]int{{1, 4}, {1, 2}}},
		{`(a)\1`, "xaa", [][2]int{{1, 3}, {1, 2}}},
		{`(?<=\[)\d+`, "x[123]", [][2]int{{2, 5}}},
		{`(?<!\[)\d\d`, "[12 34", [][2]int{{4, 6}}},
		{`(?=\d{3})\d`, "a12 345", [][2]int{{4, 5}}},
		{`\d(?!\d)`, "123 4", [][2]int{{2, 3}}},
		{`(?P<o>\[)?\d+(?(o)\])`, "[12 x [34]", [][2]int{{1, 3}, {-1, -1}}},
		{`(<)?\w+(?(1)>|$)`, "<ab x", [][2]int{{4, 5}, {-1, -1}}},
		{`a{,2}b`, "aaab", [][2]int{{1, 4}}},
		{`a{2,}?`, "aaaa", [][2]int{{0, 2}}},
		{`a+?b`, "xaaab", [][2]int{{1, 5}}},
		{`(?i:a)B`, "AB aB", [][2]int{{0, 2}}},
		{`\101\x42\u0043`, "ABC", [][2]int{{0, 3}}},
		{`a(?#comment)b`, "ab", [][2]int{{0, 2}}},
		{`\Aab\Z`, "ab", [][2]int{{0, 2}}},
		{`ab$`, "ab\n", [][2]int{{0, 2}}},
		{`(?m)^b`, "a\nb", [][2]int{{2, 3}}},
		{`(?s)a.b`, "a\nb", [][2]int{{0, 3}}},
		{`\d+`, "x\u0663\u0661y", [][2]int{{1, 5}}},
		{`\w+`, "é日本 x", [][2]int{{0, 8}}},
		{`\bx\b`, "éx x", [][2]int{{4, 5}}},
		{`\s`, "a\u2003b", [][2]int{{1, 4}}},
		{`(a*)*b`, "aab", [][2]int{{0, 3}, {2, 2}}},
		{`(a|)*b`, "ab", [][2]int{{0, 2}, {1, 1}}},
		{`(?:(a)|b)*`, "ab", [][2]int{{0, 2}, {0, 1}}},
		{`(a)|b`, "b", [][2]int{{0, 1}, {-1, -1}}},
		{`[\]a-]+`, "x]-a", [][2]int{{1, 4}}},
		{`[^\d\s]+`, "12 ab3", [][2]int{{3, 5}}},
		{`(?i)[k]`, "\u212a", [][2]int{{0, 3}}},
		{`x*`, "", [][2]int{{0, 0}}},
		{`{DATE}`, "a{DATE}", [][2]int{{1, 7}}},
		{`a{1,3}?c`, "aaac", [][2]int{{0, 4}}},
		{`[a-c]{2}|x`, "xabc", [][2]int{{0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := searchRegex(t, tt.pattern, tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("search(%q, %q) mismatch (-want +got):\n%s", tt.pattern, tt.input, diff)
			}
		})
	}
}

// genRegex makes a random pattern. With python set it may use Python-only
// syntax; otherwise it stays within what Go's regexp means the same way
// (no quantified nullable groups, whose empty iterations the two treat
// differently).
type regexGen struct {
	r      *rand.Rand
	python bool
	groups int
	names  []string
}

func (g *regexGen) atom(depth int) (string, bool) {
	n := 9
	if depth > 2 {
		n = 6
	}
	switch k := g.r.IntN(n + 4); {
	case k < 3:
		return string("abc"[g.r.IntN(3)]), false
	case k == 3:
		return []string{".", `\d`, `\w`, `\s`, `\W`, `[ab]`, `[^a]`, `[a-c0-9]`, `\.`}[g.r.IntN(9)], false
	case k == 4:
		if !g.python { // \B never matches an empty string in Python
			return []string{`\b`, `^`, `$`}[g.r.IntN(3)], true
		}
		return []string{`\b`, `^`, `$`, `\B`}[g.r.IntN(4)], true
	case k == 5:
		return string("1 :-"[g.r.IntN(4)]), false
	case k == 6:
		body, null := g.alt(depth + 1)
		g.groups++
		if g.python && g.r.IntN(3) == 0 {
			name := fmt.Sprintf("g%d", g.groups)
			g.names = append(g.names, name)
			return "(?P<" + name + ">" + body + ")", null
		}
		return "(" + body + ")", null
	case k == 7:
		body, null := g.alt(depth + 1)
		return "(?:" + body + ")", null
	case k == 8 && g.python:
		switch g.r.IntN(4) {
		case 0:
			if len(g.names) > 0 {
				return "(?P=" + g.names[g.r.IntN(len(g.names))] + ")", true
			}
		case 1:
			body, _ := g.alt(depth + 1)
			return []string{"(?=", "(?!"}[g.r.IntN(2)] + body + ")", true
		case 2:
			return []string{`(?<=a)`, `(?<!b)`, `(?<=\d\d)`, `(?<=a|b)`}[g.r.IntN(4)], true
		case 3:
			if g.groups > 0 {
				yes, _ := g.alt(depth + 1)
				no, _ := g.alt(depth + 1)
				return fmt.Sprintf("(?(%d)%s|%s)", 1+g.r.IntN(g.groups), yes, no), true
			}
		}
	}
	return "a", false
}

func (g *regexGen) piece(depth int) (string, bool) {
	a, null := g.atom(depth)
	if null && !g.python {
		return a, null
	}
	if strings.HasPrefix(a, "(?=") || strings.HasPrefix(a, "(?!") || strings.HasPrefix(a, "(?<") || a == `\b` || a == "^" || a == "$" || a == `\B` || strings.HasPrefix(a, "(?(") || strings.HasPrefix(a, "(?P=") {
		return a, null
	}
	switch g.r.IntN(8) {
	case 0:
		return a + "*", true
	case 1:
		return a + "+", null
	case 2:
		return a + "?", true
	case 3:
		lo := g.r.IntN(3)
		return fmt.Sprintf("%s{%d,%d}", a, lo, lo+g.r.IntN(3)), lo == 0 || null
	case 4:
		return a + []string{"*?", "+?", "??"}[g.r.IntN(3)], true
	}
	return a, null
}

func (g *regexGen) alt(depth int) (string, bool) {
	var alts []string
	null := false
	for i := g.r.IntN(2); i >= 0; i-- {
		var sb strings.Builder
		seqNull := true
		for j := 1 + g.r.IntN(3); j > 0; j-- {
			p, n := g.piece(depth)
			sb.WriteString(p)
			seqNull = seqNull && n
		}
		alts = append(alts, sb.String())
		null = null || seqNull
	}
	return strings.Join(alts, "|"), null
}

func randomInput(r *rand.Rand, alphabet []string) string {
	var sb strings.Builder
	for i := r.IntN(12); i > 0; i-- {
		sb.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return sb.String()
}

// TestRegexAgainstRE2 compares leftmost-first matches and groups with Go's
// regexp on ASCII text, where the two dialects agree.
func TestRegexAgainstRE2(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	alphabet := []string{"a", "b", "c", "1", " ", ":", "-", ".", "A", "_"}
	for n := 0; n < 4000; n++ {
		g := &regexGen{r: r}
		pat, _ := g.alt(0)
		if r.IntN(4) == 0 {
			pat = "(?i)" + pat
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			continue
		}
		for k := 0; k < 8; k++ {
			s := randomInput(r, alphabet)
			got, err := searchRegex(t, pat, s)
			if err != nil {
				t.Fatalf("compile %q: %v", pat, err)
			}
			var want [][2]int
			if loc := re.FindStringSubmatchIndex(s); loc != nil {
				for i := 0; i < len(loc); i += 2 {
					want = append(want, [2]int{loc[i], loc[i+1]})
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("search(%q, %q) differs from regexp (-regexp +ours):\n%s", pat, s, diff)
			}
		}
	}
}

// TestRegexAgainstPython compares with Python's re on random patterns with
// backreferences, lookarounds and conditionals, and on non-ASCII text. It
// needs python3 (LOGJAIL_F2B=1, as for the fail2ban comparisons).
func TestRegexAgainstPython(t *testing.T) {
	py := f2bPython(t)
	r := rand.New(rand.NewPCG(9, 10))
	alphabet := []string{"a", "b", "c", "1", "2", " ", ":", "[", "]", "A", "é", "\u0663", "\u2003", "_"}
	type tc struct {
		P string `json:"p"`
		S string `json:"s"`
	}
	var cases []tc
	for n := 0; n < 3000; n++ {
		g := &regexGen{r: r, python: true}
		pat, _ := g.alt(0)
		if r.IntN(4) == 0 {
			pat = "(?i)" + pat
		}
		for k := 0; k < 6; k++ {
			cases = append(cases, tc{pat, randomInput(r, alphabet)})
		}
	}
	in, _ := json.Marshal(cases)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", `
import json, re, signal, sys
class Slow(Exception):
    pass
def alarm(*_):
    raise Slow()
signal.signal(signal.SIGALRM, alarm)
out = []
for c in json.load(sys.stdin):
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        m = re.search(c["p"], c["s"])
        signal.setitimer(signal.ITIMER_REAL, 0)
    except re.error as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        out.append("error")
        continue
    except Slow:
        out.append("error")  # catastrophic backtracking in Python
        continue
    if not m:
        out.append(None)
        continue
    s = c["s"]
    out.append([[len(s[:a].encode()), len(s[:b].encode())] if a >= 0 else [-1, -1] for a, b in (m.span(i) for i in range(m.re.groups + 1))])
json.dump(out, sys.stdout)
`)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var want []json.RawMessage
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, c := range cases {
		got, err := searchRegex(t, c.P, c.S)
		if string(want[i]) == `"error"` || errors.Is(err, errStepLimit) {
			continue // Python refuses it, or we give up on it (see stepLimit)
		}
		if err != nil {
			t.Errorf("compile %q: %v (Python accepts it)", c.P, err)
			bad++
			continue
		}
		var w [][2]int
		if err := json.Unmarshal(want[i], &w); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("search(%q, %q) differs from Python (-python +ours):\n%s", c.P, c.S, diff)
			bad++
		}
		if bad > 10 {
			t.Fatal("too many differences")
		}
	}
}
