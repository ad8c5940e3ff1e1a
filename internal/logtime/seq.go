package logtime

import (
	"strings"
	"unicode/utf8"
)

// A seqPlan runs, without the machine, a template whose program is a plain
// sequence — which is what most custom datepatterns compile to:
//
//	(?iu)(?=^|\b|\W)\[(%d/%b/%Y:%H:%M:%S %z)\] "(?=\b|\W|$)
//	(?iu)^(?:\W{0,2})?(%b %d %H:%M:%S)(?=\b|\W|$)
//	(?=^|\b|\W)(%Y-%m-%dT%H:%M:%S%z\s*)$
//
// that is: an optional line-start prefix ^(?:\W{0,2})?; then literals,
// single-rune tests, captures, zero-width tests and directives, in a row;
// then a tail of captures and zero-width tests with at most one greedy
// single-rune repeat, and the end of the program.
//
// The machine would try the ways of each directive in turn, backtracking.
// The plan takes, of the ways of a directive, the only one that what
// follows can start after: the next literal or rune must be there, the next
// directive must be able to start with the next byte, the tail must match.
// The other ways fail at once in the machine too, so when one way is left
// and the rest of the sequence fails after it, the machine finds no match
// at that position either. Two possible ways (or a byte that is not ASCII
// where the test looks at it) make the plan unsure, and the machine runs
// the whole search. The prefix and the tail are tried in the machine's
// order (more \W first; the longest repeat first). So is every start
// position, so the leftmost match is the machine's.
//
// Work is bounded by seqBudget steps (positions, elements and ways looked
// at); past it the machine runs, so that its step limit decides as before:
// the machine's steps for the same work are at most some 150 times ours.
type seqPlan struct {
	prog      *program
	lnBeg     *inst // the \W{0,2} of ^(?:\W{0,2})?, nil without the prefix
	elems     []seqElem
	tail      []seqElem // captures and zero-width tests, around tailStar
	tailStar  int       // index in tail of the repeat, -1 none
	firstByte int       // the only byte a match can start with, or -1
}

type seqKind uint8

const (
	seqLit       seqKind = iota // exact string
	seqRune                     // single-rune instruction
	seqSave                     // capture slot
	seqZero                     // assertion or simple lookahead
	seqWordBegin                // (?=^|\b|\W)
	seqWordEnd                  // (?=\b|\W|$)
	seqDir                      // directive
	seqStar                     // greedy single-rune repeat (tail only)
)

// How the ways of a directive are told apart: by what must follow.
const (
	followAny  uint8 = iota // cannot tell: more than one way makes it unsure
	followLit               // the byte lit
	followRune              // the single-rune instruction next
	followSet               // an ASCII byte of set (or a wide one)
	followTail              // the tail must match
)

type seqElem struct {
	kind   seqKind
	in     *inst
	lit    string
	slot   int
	follow uint8
	fb     byte
	fset   [2]uint64
	next   *inst     // followRune
	num    *numField // numeric directive followed by the literal byte fb
	fast   uint8     // fastYear4, fastZone or 0
	// numWord: e.num is followed by the tail, which starts with
	// (?=\b|\W|$): no way can end between two digits.
	numWord bool
}

// Directives read without their enumerator when the text is plain.
const (
	fastYear4 = 1 + iota // %Y: four ASCII digits are its one way
	fastZone             // %z followed by the literal byte fb (not a digit or ':')
)

const seqBudget = 4096

// newSeqPlan returns a plan for prog, or nil when prog is not of that shape.
func newSeqPlan(prog *program) *seqPlan {
	insts := prog.insts
	p := &seqPlan{prog: prog, tailStar: -1, firstByte: -1}
	pc := 0
	if len(insts) > 3 && insts[0].op == opAssert && assertKind(insts[0].x) == aBegin && !insts[0].multi &&
		insts[1].op == opSplit && insts[1].x == 2 && insts[1].y == 3 &&
		insts[2].op == opStar && insts[2].greedy && insts[2].min == 0 && insts[2].max == 2 && insts[2].cls != nil {
		p.lnBeg = &insts[2]
		pc = 3
	}
	written := map[int]bool{}
	write := func(slot int) bool {
		if slot < 2 || slot >= prog.ncap || written[slot] {
			return false
		}
		written[slot] = true
		return true
	}
	var elems []seqElem
	for ; pc < len(insts) && insts[pc].op != opMatch; pc++ {
		in := &insts[pc]
		switch in.op {
		case opString:
			elems = append(elems, seqElem{kind: seqLit, lit: in.str})
		case opRune, opRuneFold, opClass:
			elems = append(elems, seqElem{kind: seqRune, in: in})
		case opSave:
			if !write(int(in.x)) {
				return nil
			}
			elems = append(elems, seqElem{kind: seqSave, slot: int(in.x)})
		case opAssert, opLookSimple:
			elems = append(elems, seqElem{kind: zeroKind(in), in: in})
		case opDir:
			if in.dir.enum == nil {
				return nil
			}
			g := int(in.x)
			if !write(2*g) || !write(2*g+1) {
				return nil
			}
			elems = append(elems, seqElem{kind: seqDir, in: in})
		case opStar:
			if !in.greedy {
				return nil
			}
			elems = append(elems, seqElem{kind: seqStar, in: in})
		default:
			return nil
		}
	}
	if pc != len(insts)-1 {
		return nil
	}
	// The tail: after the last element that consumes text but is not a
	// repeat; at most one repeat in it.
	cut := len(elems)
	for cut > 0 {
		k := elems[cut-1].kind
		if k != seqSave && !k.zero() && k != seqStar {
			break
		}
		cut--
	}
	p.elems, p.tail = elems[:cut], elems[cut:]
	for i, e := range p.tail {
		if e.kind == seqStar {
			if p.tailStar >= 0 {
				return nil
			}
			p.tailStar = i
		}
	}
	for i := range p.elems {
		e := &p.elems[i]
		switch e.kind {
		case seqStar:
			return nil
		case seqZero, seqWordBegin, seqWordEnd:
			// only before the first element that consumes text
			for _, f := range p.elems[:i] {
				if f.kind != seqSave && !f.kind.zero() {
					return nil
				}
			}
		case seqDir:
			if e.in.dir.key == "Y" {
				e.fast = fastYear4
			}
			j := i + 1
			for j < len(p.elems) && p.elems[j].kind == seqSave {
				j++
			}
			if j == len(p.elems) {
				e.follow = followTail
				k := 0
				for k < len(p.tail) && p.tail[k].kind == seqSave {
					k++
				}
				if f := numFieldOf(e.in.dir.key); f != nil && k < len(p.tail) && p.tail[k].kind == seqWordEnd {
					e.num, e.numWord = f, true
				}
				break
			}
			switch n := &p.elems[j]; n.kind {
			case seqLit:
				e.follow, e.fb = followLit, n.lit[0]
				if f := numFieldOf(e.in.dir.key); f != nil && e.fb < utf8.RuneSelf && !isDig(e.fb) {
					e.num = f
				}
				if e.in.dir.key == "z" && e.fb < utf8.RuneSelf && !isDig(e.fb) && e.fb != ':' {
					e.fast = fastZone
				}
			case seqRune:
				e.follow, e.next = followRune, n.in
			case seqDir:
				if set, ok := dirFirstBytes(n.in); ok {
					e.follow, e.fset = followSet, set
				}
			}
		}
	}
	if prog.useFirst {
		n, only := 0, -1
		for b := 0; b < 256; b++ {
			if prog.first[b>>6]&(1<<(b&63)) != 0 {
				n++
				only = b
			}
		}
		if n == 1 && only < utf8.RuneSelf {
			p.firstByte = only
		}
	}
	return p
}

// dirFirstBytes returns the ASCII bytes a directive can start with.
func dirFirstBytes(in *inst) ([2]uint64, bool) {
	src := in.dir.regex
	if in.fold {
		src = "(?i)" + src
	}
	root, _, _, err := parseRegex(src, false)
	if err != nil {
		return [2]uint64{}, false
	}
	var fs firstSet
	if fs.of(root) {
		return [2]uint64{}, false
	}
	return [2]uint64{fs.bits[0], fs.bits[1]}, true
}

func numFieldOf(key string) *numField {
	switch key {
	case "d", "e":
		return &fieldDay
	case "m":
		return &fieldMonth
	case "H":
		return &fieldHour
	case "M":
		return &fieldMinute
	case "S":
		return &fieldSecond
	}
	return nil
}

// search is machine.search for the plan's program. Without a match the
// captures are all -1, as the machine leaves them.
func (p *seqPlan) search(m *machine, line string, from, to int) (int, int, directResult) {
	s, e, res := p.find(m, line, from, to)
	if res == directNo {
		for i := range m.caps[:p.prog.ncap] {
			m.caps[i] = -1
		}
	}
	return s, e, res
}

func (p *seqPlan) find(m *machine, line string, from, to int) (int, int, directResult) {
	if to > len(line) {
		to = len(line)
	}
	if from > to {
		return 0, 0, directNo
	}
	prog := p.prog
	text := line[:to]
	m.text = text
	steps := 0
	if p.lnBeg != nil {
		if from > 0 {
			return 0, 0, directNo
		}
		// ^(?:\W{0,2})?: two, one, none (and none again, the same)
		var qs [3]int
		n, q := 0, 0
		for n < 2 && q < len(text) {
			r, w := rune(text[q]), 1
			if r >= utf8.RuneSelf {
				r, w = utf8.DecodeRuneInString(text[q:])
				if w == 1 {
					// not UTF-8: stepping back may not find this place
					return 0, 0, directFallback
				}
			}
			if !p.lnBeg.cls.has(r) {
				break
			}
			q += w
			n++
			qs[n] = q
		}
		for k := n; k >= 0; k-- {
			e, res := p.run(m, qs[k], &steps)
			if res != directNo {
				return 0, e, res
			}
		}
		return 0, 0, directNo
	}
	for pos := from; pos <= len(text); {
		if prog.anchored && pos != 0 {
			break
		}
		if p.firstByte >= 0 {
			i := strings.IndexByte(text[pos:], byte(p.firstByte))
			if i < 0 {
				break
			}
			pos += i
		} else if prog.useFirst {
			if pos == len(text) {
				break
			}
			if c := text[pos]; prog.first[c>>6]&(1<<(c&63)) == 0 {
				if c < utf8.RuneSelf {
					pos++
				} else {
					_, w := utf8.DecodeRuneInString(text[pos:])
					pos += w
				}
				continue
			}
		}
		e, res := p.run(m, pos, &steps)
		if res != directNo {
			return pos, e, res
		}
		if pos == len(text) {
			break
		}
		if c := text[pos]; c < utf8.RuneSelf {
			pos++
		} else {
			_, w := utf8.DecodeRuneInString(text[pos:])
			pos += w
		}
	}
	return 0, 0, directNo
}

// run matches the sequence at pos. On a match the captures are in m.caps;
// otherwise they hold garbage.
func (p *seqPlan) run(m *machine, pos int, steps *int) (int, directResult) {
	text := m.text
	// No reset of the captures: a match writes every slot (the sequence has
	// no optional parts), and search resets them when there is none.
	caps := m.caps[:p.prog.ncap]
	for i := range p.elems {
		*steps++
		if *steps > seqBudget {
			return 0, directFallback
		}
		e := &p.elems[i]
		switch e.kind {
		case seqLit:
			if len(e.lit) == 1 {
				if pos >= len(text) || text[pos] != e.lit[0] {
					return 0, directNo
				}
				pos++
				continue
			}
			if !strings.HasPrefix(text[pos:], e.lit) {
				return 0, directNo
			}
			pos += len(e.lit)
		case seqRune:
			q, ok := runeStep(e.in, text, pos)
			if !ok {
				return 0, directNo
			}
			pos = q
		case seqSave:
			caps[e.slot] = pos
		case seqZero:
			if !m.zeroWidth(e.in, pos) {
				return 0, directNo
			}
		case seqWordBegin:
			if !wordBeginAt(text, pos) {
				return 0, directNo
			}
		case seqWordEnd:
			if !wordEndAt(text, pos) {
				return 0, directNo
			}
		case seqDir:
			in := e.in
			g := int(in.x)
			if e.numWord && pos < len(text) && isDig(text[pos]) {
				d0 := text[pos]
				if pos+1 < len(text) && isDig(text[pos+1]) {
					// two digits: the one-digit ways end between them
					if v := int(d0-'0')*10 + int(text[pos+1]-'0'); v < e.num.lo2 || v > e.num.hi2 {
						return 0, directNo
					}
					caps[2*g], caps[2*g+1] = pos, pos+2
					pos += 2
					continue
				}
				if pos+1 == len(text) || text[pos+1] < utf8.RuneSelf {
					// one digit: every two-character way is two digits
					if int(d0-'0') < e.num.lo1 {
						return 0, directNo
					}
					caps[2*g], caps[2*g+1] = pos, pos+1
					pos++
					continue
				}
			}
			if e.num != nil && !e.numWord && pos+2 < len(text) {
				// as scanCtx.num: the literal is not a digit, so the digits
				// before it decide
				d0, d1 := text[pos], text[pos+1]
				if isDig(d0) && isDig(d1) && text[pos+2] == e.fb {
					if v := int(d0-'0')*10 + int(d1-'0'); v < e.num.lo2 || v > e.num.hi2 {
						return 0, directNo
					}
					caps[2*g], caps[2*g+1] = pos, pos+2
					pos += 2
					continue
				}
				if isDig(d0) && d1 == e.fb {
					if int(d0-'0') < e.num.lo1 {
						return 0, directNo
					}
					caps[2*g], caps[2*g+1] = pos, pos+1
					pos++
					continue
				}
			}
			switch e.fast {
			case fastYear4:
				// \d{4}: four ASCII digits are the one way
				if pos+4 <= len(text) && isDig(text[pos]) && isDig(text[pos+1]) && isDig(text[pos+2]) && isDig(text[pos+3]) {
					caps[2*g], caps[2*g+1] = pos, pos+4
					pos += 4
					continue
				}
			case fastZone:
				// [+-][01]\d(?::?\d{2})? in ASCII before the literal: its
				// shorter ways end before a digit or ':', not the literal
				if q := zoneEnd(text, pos); q > 0 && q < len(text) && text[q] == e.fb {
					caps[2*g], caps[2*g+1] = pos, q
					pos = q
					continue
				}
			}
			n := in.dir.enum(m, text, pos, in.fold, &m.cands)
			*steps += n
			if n == 0 {
				return 0, directNo
			}
			k := 0
			if n > 1 {
				k = -1
				for j := 0; j < n; j++ {
					ok, sure := p.viable(m, e, m.cands[j].end, steps)
					if !sure {
						return 0, directFallback
					}
					if !ok {
						continue
					}
					if k >= 0 {
						return 0, directFallback // two ways
					}
					k = j
					if e.follow == followTail {
						break // the tail is all that follows: the first way wins
					}
				}
				if k < 0 {
					return 0, directNo
				}
			}
			caps[2*g], caps[2*g+1] = m.cands[k].gs, m.cands[k].end
			pos = m.cands[k].end
		}
	}
	return p.runTail(m, pos, steps)
}

// viable reports whether what follows directive e could start at q; a false
// answer is certain, and sure is false when the test cannot tell.
func (p *seqPlan) viable(m *machine, e *seqElem, q int, steps *int) (ok, sure bool) {
	text := m.text
	switch e.follow {
	case followLit:
		return q < len(text) && text[q] == e.fb, true
	case followRune:
		_, ok := runeStep(e.next, text, q)
		return ok, true
	case followSet:
		if q >= len(text) {
			return false, true
		}
		c := text[q]
		if c >= utf8.RuneSelf {
			return true, true // maybe: one such way is still exact
		}
		return e.fset[c>>6]&(1<<(c&63)) != 0, true
	case followTail:
		_, res := p.runTail(m, q, steps)
		return res == directMatch, res != directFallback
	}
	return true, true
}

// runTail matches the tail at pos: its repeat takes as much as it can, then
// less, as in the machine.
func (p *seqPlan) runTail(m *machine, pos int, steps *int) (int, directResult) {
	if p.tailStar < 0 {
		if !p.tailAt(m, p.tail, pos) {
			return 0, directNo
		}
		return pos, directMatch
	}
	if !p.tailAt(m, p.tail[:p.tailStar], pos) {
		return 0, directNo
	}
	in := p.tail[p.tailStar].in
	text := m.text
	q := pos
	n := 0
	for (in.max < 0 || n < int(in.max)) && q < len(text) {
		c := text[q]
		if c >= utf8.RuneSelf {
			return 0, directFallback
		}
		if !in.single(rune(c)) {
			break
		}
		q++
		n++
	}
	if n < int(in.min) {
		return 0, directNo
	}
	low := pos + int(in.min)
	after := p.tail[p.tailStar+1:]
	for ; q >= low; q-- {
		*steps++
		if *steps > seqBudget {
			return 0, directFallback
		}
		if p.tailAt(m, after, q) {
			return q, directMatch
		}
	}
	return 0, directNo
}

// tailAt runs captures and zero-width tests at pos.
func (p *seqPlan) tailAt(m *machine, els []seqElem, pos int) bool {
	for i := range els {
		e := &els[i]
		switch e.kind {
		case seqSave:
			m.caps[e.slot] = pos
		case seqWordBegin:
			if !wordBeginAt(m.text, pos) {
				return false
			}
		case seqWordEnd:
			if !wordEndAt(m.text, pos) {
				return false
			}
		default:
			if !m.zeroWidth(e.in, pos) {
				return false
			}
		}
	}
	return true
}

// zoneEnd returns the end of +hhmm or +hh:mm ([+-][01] and ASCII digits)
// at i, or 0.
func zoneEnd(s string, i int) int {
	if i+5 > len(s) || s[i] != '+' && s[i] != '-' || s[i+1] != '0' && s[i+1] != '1' || !isDig(s[i+2]) {
		return 0
	}
	if isDig(s[i+3]) && isDig(s[i+4]) {
		return i + 5
	}
	if s[i+3] == ':' && i+6 <= len(s) && isDig(s[i+4]) && isDig(s[i+5]) {
		return i + 6
	}
	return 0
}

func (k seqKind) zero() bool { return k == seqZero || k == seqWordBegin || k == seqWordEnd }

// zeroKind recognizes fail2ban's two boundaries among zero-width tests.
func zeroKind(in *inst) seqKind {
	if in.op != opLookSimple || in.neg || len(in.alts) != 3 {
		return seqZero
	}
	a := in.alts
	isBegin := func(s step) bool { return s.isAssert && s.assert == aBegin && !s.multi }
	isEnd := func(s step) bool { return s.isAssert && s.assert == aEnd && !s.multi }
	isWordB := func(s step) bool { return s.isAssert && s.assert == aWordB }
	isNotWord := func(s step) bool {
		c := s.cls
		if s.isAssert || c == nil || c.isDot || c.neg || c.props != propNotWord || len(c.ranges) != 0 {
			return false
		}
		for r := rune(0); r < utf8.RuneSelf; r++ {
			if c.has(r) == isWordRune(r) {
				return false
			}
		}
		return true
	}
	switch {
	case isBegin(a[0]) && isWordB(a[1]) && isNotWord(a[2]):
		return seqWordBegin
	case isWordB(a[0]) && isNotWord(a[1]) && isEnd(a[2]):
		return seqWordEnd
	}
	return seqZero
}

// wordBeginAt is (?=^|\b|\W) at i.
func wordBeginAt(s string, i int) bool {
	if i == 0 {
		return true // ^
	}
	if i >= len(s) {
		r, _ := runeBefore(s, i)
		return isWordRune(r) // \b
	}
	r, _ := runeAt(s, i)
	if !isWordRune(r) {
		return true // \W
	}
	prev, _ := runeBefore(s, i)
	return !isWordRune(prev) // \b
}

// wordEndAt is (?=\b|\W|$) at i.
func wordEndAt(s string, i int) bool {
	if i >= len(s) {
		return true // $
	}
	r, _ := runeAt(s, i)
	if !isWordRune(r) || i == 0 {
		return true // \W, or \b before a word character at 0
	}
	prev, _ := runeBefore(s, i)
	return !isWordRune(prev) // \b
}

// runeStep is a single-rune instruction at pos.
func runeStep(in *inst, text string, pos int) (int, bool) {
	if pos >= len(text) {
		return 0, false
	}
	r, w := runeAt(text, pos)
	if in.op == opClass && in.cls.has(r) || in.op != opClass && (r == in.r || in.op == opRuneFold && foldEq(r, in.r)) {
		return pos + w, true
	}
	return 0, false
}

// zeroWidth is an opAssert or opLookSimple instruction at pos.
func (m *machine) zeroWidth(in *inst, pos int) bool {
	if in.op == opAssert {
		return m.assert(assertKind(in.x), in.multi, pos)
	}
	text := m.text
	hit := false
	for i := range in.alts {
		s := &in.alts[i]
		if s.isAssert {
			hit = m.assert(s.assert, s.multi, pos)
		} else if pos < len(text) {
			r, _ := runeAt(text, pos)
			if s.cls != nil {
				hit = s.cls.has(r)
			} else {
				hit = r == s.r || s.fold && foldEq(r, s.r)
			}
		}
		if hit {
			break
		}
	}
	return hit != in.neg
}
