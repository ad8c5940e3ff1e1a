package logtime

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// allWays lists, in Python's order of trying, every (group start, end) at
// which regex src can match at pos of s: the reference for the directive
// enumerators.
func allWays(m *machine, prog *program, s string, pos int) []cand {
	m.text = s
	m.caps = make([]int, prog.ncap)
	for i := range m.caps {
		m.caps[i] = -1
	}
	m.marks = make([]int, prog.nmark+1)
	m.sp = 0
	m.steps = 0
	m.collect = m.collect[:0]
	m.run(prog, 0, pos)
	var out []cand
	for _, w := range m.collect {
		dup := false
		for _, o := range out {
			dup = dup || o == w
		}
		if !dup {
			out = append(out, w)
		}
	}
	return out
}

// collectProgram compiles src to list its ways (see allWays).
func collectProgram(t *testing.T, src, group string) *program {
	t.Helper()
	root, ngroups, names, err := parseRegex(src, false)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	c := &compiler{}
	if err := c.emit(root); err != nil {
		t.Fatal(err)
	}
	c.add(inst{op: opCollect, x: int32(names[group])})
	return &program{insts: c.insts, ncap: 2 * (ngroups + 1), nmark: c.nmark}
}

// directiveAlphabet makes strings that exercise the directives: digits
// (some not ASCII), spaces, signs, separators, letters in both cases.
var directiveAlphabet = []string{
	"0", "1", "2", "3", "5", "6", "9", " ", ":", "+", "-", "/", ".", "T", "Z", "z",
	"U", "T", "C", "G", "M", "a", "m", "p", "j", "n", "A", "M", "P", "E", "S",
	"\u0663", "\u0661", "\u017f", "\u212a", "é", "\u2003",
}

func TestDirectiveEnumerators(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m := &machine{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	words := []string{"jan", "Jun", "JUL", "mon", "Sun", "sat", "am", "PM", "utc", "GMT", "CEST", "UTC+01", "+01:00", "-0530", "ſep", "Kst"}
	for i := range directives {
		d := &directives[i]
		if d.enum == nil || d.dynamic {
			continue
		}
		t.Run(d.key, func(t *testing.T) {
			progs := map[bool]*program{
				false: collectProgram(t, d.regex, d.group),
				true:  collectProgram(t, "(?i)"+d.regex, d.group),
			}
			for n := 0; n < 3000; n++ {
				var sb strings.Builder
				for k := r.IntN(8); k >= 0; k-- {
					if r.IntN(4) == 0 {
						sb.WriteString(words[r.IntN(len(words))])
					} else {
						sb.WriteString(directiveAlphabet[r.IntN(len(directiveAlphabet))])
					}
				}
				s := sb.String()
				for _, fold := range []bool{false, true} {
					want := allWays(m, progs[fold], s, 0)
					var out [maxCands]cand
					got := out[:d.enum(m, s, 0, fold, &out)]
					if len(got) == 0 {
						got = nil
					}
					if diff := cmp.Diff(want, got, cmp.AllowUnexported(cand{})); diff != "" {
						t.Fatalf("%%%s on %q (fold %v): ways mismatch (-want +got):\n%s", d.key, s, fold, diff)
					}
				}
			}
		})
	}
}

func TestYearEx(t *testing.T) {
	tests := []struct {
		now  int
		year string
		want bool
	}{
		{2026, "1999", false},
		{2026, "2000", true},
		{2026, "2029", true},
		{2026, "2030", false},
		{2027, "2030", true},
		{2027, "2039", true},
		{2027, "2040", false},
		{2097, "2100", true},
		{2097, "2099", true},
		{1999, "1999", true}, // a clock before 2001: the decades of last year and of +3
		{1999, "2000", true},
		{1999, "2010", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.now, tt.year), func(t *testing.T) {
			m := &machine{}
			m.setNow(time.Date(tt.now, 6, 1, 0, 0, 0, 0, time.UTC))
			var out [maxCands]cand
			if got := enumYearEx(m, tt.year, 0, false, &out) == 1; got != tt.want {
				t.Errorf("%%ExY at %d on %s = %v, want %v", tt.now, tt.year, got, tt.want)
			}
		})
	}
}
