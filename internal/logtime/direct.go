package logtime

import "unicode/utf8"

// A directPlan runs a template that is nothing but a default pattern with a
// scanner, between fail2ban's boundaries:
//
//	[(?iu)] (?=^|\b|\W) ( pattern ) (?=\b|\W|$)     anywhere
//	[(?iu)] ^(?:\W{0,2})? ( pattern ) (?=\b|\W|$)   at the line start
//
// without the machine. It gives up (and the machine runs) whenever the
// scanner is unsure or the end boundary fails after the scanner's first way
// (the machine would then try the pattern's other ways).
type directPlan struct {
	scan   int
	begin  beginMode
	fold   bool
	groups []int // machine group of each scanner group
}

func newDirectPlan(t *template, scan int, gf, body string, begin beginMode) *directPlan {
	prefix := `(?=^|\b|\W)`
	if begin == beginLine {
		prefix = `^(?:\W{0,2})?`
	} else if begin != beginWord {
		return nil
	}
	// Only when fail2ban's rules made exactly the expected regex.
	if t.regex != gf+prefix+"("+body+`)(?=\b|\W|$)` || t.prog.ngroups != len(scanners[scan].groups)+1 {
		return nil
	}
	p := &directPlan{scan: scan, begin: begin, fold: gf != ""}
	for _, name := range scanners[scan].groups {
		g, ok := t.prog.names[name]
		if !ok || g < 2 {
			return nil
		}
		p.groups = append(p.groups, g)
	}
	return p
}

type directResult uint8

const (
	directNo       directResult = iota // no match
	directMatch                        // match, captures in m.caps
	directFallback                     // run the machine
)

// search is machine.search for the plan's template.
func (p *directPlan) search(m *machine, prog *program, line string, from, to int) (int, int, directResult) {
	if to > len(line) {
		to = len(line)
	}
	if from > to {
		return 0, 0, directNo
	}
	text := line[:to]
	m.text = text
	c := &m.sc
	if p.begin == beginLine {
		if from > 0 {
			return 0, 0, directNo
		}
		// ^(?:\W{0,2})?: greedy, then fewer
		var qs [3]int
		n := 0
		q := 0
		for n < 2 && q < len(text) {
			r, w := runeAt(text, q)
			if isWordRune(r) {
				break
			}
			q += w
			n++
			qs[n] = q
		}
		for k := n; k >= 0; k-- {
			e, res := p.at(m, c, text, qs[k])
			if res != directNo {
				return 0, e, res
			}
		}
		return 0, 0, directNo
	}
	for pos := from; pos < len(text); {
		b := text[pos]
		if (!prog.useFirst || prog.first[b>>6]&(1<<(b&63)) != 0) && wordBeginOK(text, pos) {
			e, res := p.at(m, c, text, pos)
			if res != directNo {
				return pos, e, res
			}
		}
		if b < utf8.RuneSelf {
			pos++
		} else {
			_, w := utf8.DecodeRuneInString(text[pos:])
			pos += w
		}
	}
	return 0, 0, directNo
}

// at runs the scanner for a date starting at q and checks the end boundary.
func (p *directPlan) at(m *machine, c *scanCtx, text string, q int) (int, directResult) {
	c.reset(m, text, p.fold)
	e := scanners[p.scan].fn(c, q)
	if c.unsure {
		return 0, directFallback
	}
	if e < 0 {
		return 0, directNo
	}
	if !wordEndOK(text, e) {
		return 0, directFallback
	}
	caps := m.caps
	for i := range caps {
		caps[i] = -1
	}
	caps[2], caps[3] = q, e
	for k, g := range p.groups {
		caps[2*g], caps[2*g+1] = c.caps[2*k], c.caps[2*k+1]
	}
	return e, directMatch
}

// wordBeginOK is (?=^|\b|\W) at i: false only between two word characters
// (or at the end after a non-word one).
func wordBeginOK(s string, i int) bool {
	if i == 0 {
		return true
	}
	if i >= len(s) {
		r, _ := runeBefore(s, i)
		return isWordRune(r)
	}
	r, _ := runeAt(s, i)
	if !isWordRune(r) {
		return true
	}
	prev, _ := runeBefore(s, i)
	return !isWordRune(prev)
}

// wordEndOK is (?=\b|\W|$) at i (i > 0): false only between two word
// characters.
func wordEndOK(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	r, _ := runeAt(s, i)
	if !isWordRune(r) {
		return true
	}
	prev, _ := runeBefore(s, i)
	return !isWordRune(prev)
}
