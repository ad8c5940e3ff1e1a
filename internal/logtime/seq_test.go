package logtime

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The datepatterns of the shipped filters (filter.d), and more of the same
// shape, which seq.go runs without the machine.
var seqPatterns = []string{
	`\[(%d/%b/%Y:%H:%M:%S %z)\] "`,
	`{^LN-BEG}%b %d %H:%M:%S`,
	`{^LN-BEG}%Y/%m/%d %H:%M:%S`,
	`%Y-%m-%dT%H:%M:%S%z\s*$`,
	`^{WPLL}`,
	`{^LN-BEG}{WPLL}`,
	`%d/%b/%Y:%H:%M:%S %z`,
	`\[%d/%b/%Y:%H:%M:%S %z\]`,
	`{^LN-BEG}%Y-%m-%d %H:%M:%S`,
	`%Y-%m-%d %H:%M:%S`,
	`{UNB}%H:%M:%S`,
	`%H:%M:%S%z`,
	`%H:%M:%S %z$`,
	`^%m/%d/%y %I:%M:%S %p`,
	`{^LN-BEG}%a %b %e %k:%M:%S %Y`,
	`%ExY-%Exm-%ExdT%ExH:%ExM:%ExS`,
	`%d%m%Y%H%M%S`,
	`%Y%m%d`,
	`%b-%d %H:%M:%S\s*`,
}

func TestSeqPlans(t *testing.T) {
	for _, p := range seqPatterns {
		d := mustNew(t, []string{p}, time.UTC)
		if d.set.templates[0].seq == nil {
			t.Errorf("%q: no sequence plan", p)
		}
	}
	// not plain sequences: the machine runs them
	for _, p := range []string{`^%b(?P<_s>[-/])%d(?P=_s)`, `%H:%M(?::%S)?`, `(?<=at )%H:%M:%S`, `%H:%M:%S\s*x`, `at %H:%M:%S\s*\]`} {
		d := mustNew(t, []string{p}, time.UTC)
		if d.set.templates[0].seq != nil {
			t.Errorf("%q: unexpected sequence plan", p)
		}
	}
}

// seqLine makes a line with zero or more dates (valid, near-valid or
// broken) of the shipped formats in noise, with non-ASCII text and bytes
// that are not UTF-8.
func seqLine(r *rand.Rand) string {
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	num := func(max int) string {
		v := r.IntN(max + 1)
		switch r.IntN(6) {
		case 0:
			return string(rune('0' + v%10)) // one digit
		case 1:
			return pick("0", "00", "6", "60", "61", "99", "31", "32", "12", "13", "24", "٣", "1٣", "０1")
		}
		return string(rune('0'+v/10%10)) + string(rune('0'+v%10))
	}
	month := func() string {
		return pick("Jan", "Jun", "jun", "JUN", "Dec", "Jux", "Ju", "May", "Ｊun", "K", "sep", "Sep")
	}
	zone := func() string {
		return pick("+0200", "-0700", "+02:00", "+0000", "+02", "+2000", "Z", "UTC", "utc", "GMT", "+020", "+0200 ", "+1", "-1130", "CET", "+0٣00")
	}
	year := func() string { return pick("2024", "2026", "1999", "024", "20245", "2٠24", "3000") }
	var parts []string
	for k := r.IntN(5); k >= 0; k-- {
		var d string
		switch r.IntN(8) {
		case 0:
			d = "[" + num(31) + "/" + month() + "/" + year() + ":" + num(23) + ":" + num(59) + ":" + num(61) + " " + zone() + pick("] \"", "]", "] ", "]\"", "] \"GET", "")
		case 1:
			d = month() + pick(" ", "  ", "-") + num(31) + " " + num(23) + ":" + num(59) + ":" + num(61)
		case 2:
			d = year() + "/" + num(12) + "/" + num(31) + pick(" ", "T", "  ") + num(23) + ":" + num(59) + ":" + num(61)
		case 3:
			d = year() + "-" + num(12) + "-" + num(31) + pick("T", " ", "t") + num(23) + ":" + num(59) + ":" + num(61) + zone() + pick("", " ", "  ", "\t", "\n", " x", " \n", "\u00a0")
		case 4:
			d = pick("Mon ", "Fri ", "") + month() + " " + pick("", " ") + num(31) + " " + num(12) + ":" + num(59) + ":" + num(59) + pick("", " 2024", " PM", " am")
		case 5:
			d = num(12) + "/" + num(31) + "/" + num(99) + " " + num(12) + ":" + num(59) + ":" + num(59) + pick(" AM", " pm", "")
		case 6:
			d = num(31) + num(12) + year() + num(23) + num(59) + num(59)
		default:
			d = pick("at ", "") + num(23) + ":" + num(59) + ":" + num(61) + pick("", " ]", "]", "\t]", "x]")
		}
		parts = append(parts, d)
	}
	noise := func() string {
		return pick("", " ", "192.0.2.1 - admin ", "x", "é ", "日本 ", "\xff", "\xe2\x82", "[", "[[", "- - [", "\"GET / HTTP/1.1\" 401 ", "K", "ſ", "_", "12", "1", ":", "\n", "[21/", "Jun 21 ", "-", "+")
	}
	var sb strings.Builder
	sb.WriteString(noise())
	for _, d := range parts {
		sb.WriteString(d)
		sb.WriteString(noise())
	}
	return string(mutateBytes(r, []byte(sb.String()), "0123456789 :-/.TZ+aA[]\"\xc3", "0123456789 :-/[]"))
}

// TestSeqDifferential compares each sequence plan with the machine running
// the same program, on generated lines and windows of them (the detector
// searches near the last date's place first): the same verdict and the same
// captures, or the plan leaves it to the machine.
func TestSeqDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pats := append([]string{}, seqPatterns...)
	for _, ps := range differentialSets {
		pats = append(pats, ps...)
	}
	seen := map[string]bool{}
	for _, p := range pats {
		if seen[p] {
			continue
		}
		seen[p] = true
		d, err := New([]string{p}, Options{Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		m := &d.m
		m.setNow(now)
		matches, fallbacks, total := 0, 0, 0
		for _, tm := range d.set.templates {
			if tm.seq == nil {
				continue
			}
			for i := 0; i < n; i++ {
				line := seqLine(r)
				from, to := 0, len(line)
				if r.IntN(4) == 0 {
					from, to = r.IntN(len(line)+1), r.IntN(len(line)+2)
				}
				s1, e1, res := tm.seq.search(m, line, from, to)
				got := append([]int(nil), m.caps[:tm.prog.ncap]...)
				s2, e2, ok := m.search(tm.prog, line, from, to)
				want := m.caps[:tm.prog.ncap]
				total++
				if res == directFallback {
					fallbacks++
					continue
				}
				if ok {
					matches++
				}
				if ok != (res == directMatch) || ok && (s1 != s2 || e1 != e2 || !cmp.Equal(got[2:], want[2:])) {
					t.Fatalf("%q on %q [%d:%d]: plan %v %d %d %v, machine %v %d %d %v",
						tm.regex, line, from, to, res, s1, e1, got, ok, s2, e2, want)
				}
			}
		}
		if total > 0 {
			t.Logf("%-40q %6d lines, %5d matches, %4d left to the machine", p, total, matches, fallbacks)
			if fallbacks*10 > total && !strings.Contains(p, "%d%m") {
				t.Errorf("%q: %d of %d searches left to the machine", p, fallbacks, total)
			}
		}
	}
}

// TestSeqFind compares whole detectors: with the plans, without them (the
// machine) and the reference build (directives read from their regex), on
// the shipped patterns, line after line (so through the detector's cache).
func TestSeqFind(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	n := 5000
	if testing.Short() {
		n = 500
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, p := range seqPatterns {
		fast, ref := newPair(t, []string{p})
		vm := mustNew(t, []string{p}, time.UTC)
		for _, tm := range vm.set.templates {
			tm.seq = nil
		}
		for i := 0; i < n; i++ {
			line := seqLine(r)
			f, fok := fast.Find(line, now)
			v, vok := vm.Find(line, now)
			g, gok := ref.Find(line, now)
			if diff := cmp.Diff(result{v, vok}, result{f, fok}); diff != "" {
				t.Fatalf("%q, line %q: plan differs from machine (-machine +plan):\n%s", p, line, diff)
			}
			if diff := cmp.Diff(result{g, gok}, result{f, fok}); diff != "" {
				t.Fatalf("%q, line %q: plan differs from reference (-ref +plan):\n%s", p, line, diff)
			}
		}
	}
}

// A search that would take the plan too long is left to the machine.
func TestSeqBudget(t *testing.T) {
	d := mustNew(t, []string{`\[(%d/%b/%Y:%H:%M:%S %z)\] "`}, time.UTC)
	tm := d.set.templates[0]
	line := strings.Repeat("[21/Jun/2024:16:47:48 +0200]x", 1000) + `[21/Jun/2024:16:47:48 +0200] "`
	d.m.setNow(time.Now())
	if _, _, res := tm.seq.search(&d.m, line, 0, len(line)); res != directFallback {
		t.Errorf("long search: %v, want the machine", res)
	}
	m, ok := d.Find(line, time.Now())
	if !ok || m.End != len(line)-3 {
		t.Errorf("Find = %+v, %v", m, ok)
	}
}

// FuzzSeq is TestSeqDifferential on fuzzed lines and windows.
func FuzzSeq(f *testing.F) {
	f.Add(uint8(0), `192.0.2.1 - - [21/Jun/2024:16:47:48 +0200] "GET / HTTP/1.1" 401`, 0, 1000)
	f.Add(uint8(1), "Jun 21 16:47:48 host sshd[1]: x", 0, 1000)
	f.Add(uint8(3), "x 2024-06-21T16:47:48+0200 \n", 0, 1000)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dets := make([]*Detector, len(seqPatterns))
	for i, p := range seqPatterns {
		dets[i] = mustNew(f, []string{p}, time.UTC)
	}
	f.Fuzz(func(t *testing.T, set uint8, line string, from, to int) {
		if len(line) > 4096 || from < 0 || to < 0 {
			return
		}
		d := dets[int(set)%len(dets)].Clone()
		tm := d.set.templates[0]
		m := &d.m
		m.setNow(now)
		s1, e1, res := tm.seq.search(m, line, from, to)
		got := append([]int(nil), m.caps[:tm.prog.ncap]...)
		s2, e2, ok := m.search(tm.prog, line, from, to)
		want := m.caps[:tm.prog.ncap]
		if res == directFallback {
			return
		}
		if ok != (res == directMatch) || ok && (s1 != s2 || e1 != e2 || !cmp.Equal(got[2:], want[2:])) {
			t.Fatalf("%q on %q [%d:%d]: plan %v %d %d %v, machine %v %d %d %v",
				tm.regex, line, from, to, res, s1, e1, got, ok, s2, e2, want)
		}
	})
}
