package logtime

import (
	"strings"
	"time"
	"unicode/utf8"
)

// machine runs compiled programs with Python's backtracking semantics. It
// keeps its stacks between searches, so a warmed-up machine does not
// allocate. It is owned by one Detector.
type machine struct {
	text    string
	caps    []int
	marks   []int
	stack   []frame // stack[:sp] is in use; it only grows
	sp      int
	steps   int
	aborted bool
	cands   [maxCands]cand
	sc      scanCtx
	collect []cand // opCollect (tests) appends here
	zones   []zoneEntry

	readYear yearSpan // now's year where readings are made
	exYear   yearSpan // now's year in its own zone, for %ExY

	// The time of the current Find, for %ExY.
	now     time.Time
	nowYear int // 0 until needed
}

type frameKind uint8

const (
	fCap        frameKind = iota // caps[a] = b
	fMark                        // marks[a] = b
	fBranch                      // resume at pc, pos
	fStarGreedy                  // star at pc ended at pos; a = lowest end
	fStarLazy                    // star at pc ended at pos after a runes
	fDir                         // directive at pc, from pos; a = next candidate
	fScanSlow                    // run a scanner's compiled pattern at pc, pos
)

// frame is a choice point or an undo record. Offsets fit in 32 bits: Find
// rejects longer lines.
type frame struct {
	pc   int32
	kind frameKind
	pos  int32
	a, b int32
}

// stepLimit bounds the work of one search, so that a pathological pattern
// and an attacker-written line cannot stall a jail. Python has no such limit;
// no fail2ban filter comes near it.
const stepLimit = 1 << 20

func (m *machine) setNow(now time.Time) {
	m.now = now
	m.nowYear = 0
}

// yearPrefixOK says whether p (a year divided by ten) is allowed by %ExY:
// fail2ban accepts the decades from 2000 up to the one three years ahead of
// now (and, with a clock before 2001, the decades of last year and of three
// years ahead).
func (m *machine) yearPrefixOK(p int) bool {
	if m.nowYear == 0 {
		m.nowYear = m.exYear.in(m.now, m.now.Location())
	}
	y := m.nowYear
	if y >= 2001 {
		return p >= 200 && p <= (y+3)/10
	}
	return p == (y-1)/10 || p == (y+3)/10 || (y == 2000 && p == 200)
}

// push stores a frame field by field: building a frame value and copying
// it costs a store-forwarding stall per push.
func (m *machine) push(kind frameKind, pc int32, pos int, a, b int32) {
	if m.sp == len(m.stack) {
		m.grow()
	}
	f := &m.stack[m.sp]
	f.kind, f.pc, f.pos, f.a, f.b = kind, pc, int32(pos), a, b
	m.sp++
}

func (m *machine) grow() {
	m.stack = append(m.stack, make([]frame, len(m.stack)+64)...)
}

func (m *machine) setCap(slot, pos int) {
	m.push(fCap, 0, 0, int32(slot), int32(m.caps[slot]))
	m.caps[slot] = pos
}

// unwind pops frames down to base, undoing captures.
func (m *machine) unwind(base int) {
	for i := m.sp - 1; i >= base; i-- {
		f := &m.stack[i]
		switch f.kind {
		case fCap:
			m.caps[f.a] = int(f.b)
		case fMark:
			m.marks[f.a] = int(f.b)
		}
	}
	m.sp = base
}

// search finds the leftmost match of prog in line[:to] starting at or after
// from, like Python's pattern.search(line, from, to): text before from stays
// visible to lookbehind and \b, and ^ only matches at 0.
func (m *machine) search(prog *program, line string, from, to int) (start, end int, ok bool) {
	if to > len(line) {
		to = len(line)
	}
	if from > to {
		return 0, 0, false
	}
	m.text = line[:to]
	// caps keeps the length of the largest program, so that captures can be
	// saved and restored whole; only this program's slots are reset.
	if len(m.caps) < prog.ncap {
		m.caps = make([]int, prog.ncap)
	}
	for i := range m.caps[:prog.ncap] {
		m.caps[i] = -1
	}
	if len(m.marks) < prog.nmark {
		m.marks = make([]int, prog.nmark)
	}
	m.sp = 0
	m.steps = 0
	m.aborted = false
	text := m.text
	for p := from; p <= len(text); {
		if prog.anchored && p != 0 {
			break
		}
		if prog.useFirst {
			if p == len(text) {
				break
			}
			if c := text[p]; prog.first[c>>6]&(1<<(c&63)) == 0 {
				if c < utf8.RuneSelf {
					p++
				} else {
					_, w := utf8.DecodeRuneInString(text[p:])
					p += w
				}
				continue
			}
		}
		if e, ok := m.run(prog, 0, p); ok {
			m.sp = 0
			m.caps[0], m.caps[1] = p, e
			return p, e, true
		}
		if m.aborted || p == len(text) {
			break
		}
		if c := text[p]; c < utf8.RuneSelf {
			p++
		} else {
			_, w := utf8.DecodeRuneInString(text[p:])
			p += w
		}
	}
	return 0, 0, false
}

func (in *inst) single(r rune) bool {
	if in.cls != nil {
		return in.cls.has(r)
	}
	return r == in.r || in.fold && foldEq(r, in.r)
}

func (m *machine) assert(k assertKind, multi bool, pos int) bool {
	text := m.text
	switch k {
	case aBegin:
		return pos == 0 || multi && text[pos-1] == '\n'
	case aEnd:
		if multi {
			return pos == len(text) || text[pos] == '\n'
		}
		return pos == len(text) || pos == len(text)-1 && text[pos] == '\n'
	case aBeginText:
		return pos == 0
	case aEndText:
		return pos == len(text)
	case aWordB, aNotWordB:
		if len(text) == 0 {
			return false
		}
		before, after := false, false
		if pos > 0 {
			r, _ := runeBefore(text, pos)
			before = isWordRune(r)
		}
		if pos < len(text) {
			r, _ := runeAt(text, pos)
			after = isWordRune(r)
		}
		return (before != after) == (k == aWordB)
	}
	return false
}

// backRunes returns the offset n runes before pos, or -1.
func (m *machine) backRunes(pos, n int) int {
	for ; n > 0; n-- {
		if pos <= 0 {
			return -1
		}
		_, w := runeBefore(m.text, pos)
		pos -= w
	}
	return pos
}

// run executes prog from pc at pos until the match instruction (or the end of
// a lookaround body). On success the frames it pushed stay on the stack so
// that the caller may keep its captures; on failure the stack is back where
// it was.
func (m *machine) run(prog *program, pc int, pos int) (int, bool) {
	base := m.sp
	insts := prog.insts
	text := m.text
	for {
		m.steps++
		if m.steps > stepLimit {
			m.aborted = true
			m.unwind(base)
			return 0, false
		}
		in := &insts[pc]
		ok := true
		switch in.op {
		case opMatch, opLookEnd:
			return pos, true
		case opString:
			if strings.HasPrefix(text[pos:], in.str) {
				pos += len(in.str)
				pc++
			} else {
				ok = false
			}
		case opRune, opRuneFold, opClass:
			if pos < len(text) {
				r, w := runeAt(text, pos)
				if in.op == opClass && in.cls.has(r) || in.op != opClass && (r == in.r || in.op == opRuneFold && foldEq(r, in.r)) {
					pos += w
					pc++
					break
				}
			}
			ok = false
		case opStar:
			ok = m.star(in, pc, &pos)
			pc++
		case opSplit:
			m.push(fBranch, in.y, pos, 0, 0)
			pc = int(in.x)
		case opJmp:
			pc = int(in.x)
		case opSave:
			m.setCap(int(in.x), pos)
			pc++
		case opAssert:
			ok = m.assert(assertKind(in.x), in.multi, pos)
			pc++
		case opLookSimple:
			ok = m.zeroWidth(in, pos)
			pc++
		case opLook:
			start := pos
			if in.behind {
				start = m.backRunes(pos, int(in.min))
			}
			hit := false
			mark := m.sp
			if start >= 0 {
				var end int
				end, hit = m.run(prog, pc+1, start)
				if m.aborted {
					m.unwind(base)
					return 0, false
				}
				if hit && in.behind && end != pos {
					m.unwind(mark)
					hit = false
				}
			}
			if hit {
				if in.neg {
					m.unwind(mark)
				} else {
					m.keepCaptures(mark)
				}
			}
			ok = hit != in.neg
			pc = int(in.y)
		case opBackref:
			ok = m.backref(in, &pos)
			pc++
		case opCond:
			g := int(in.x)
			if 2*g+1 < len(m.caps) && m.caps[2*g] >= 0 && m.caps[2*g+1] >= 0 {
				pc++
			} else {
				pc = int(in.y)
			}
		case opDir:
			n := in.dir.enum(m, text, pos, in.fold, &m.cands)
			if n == 0 {
				ok = false
				break
			}
			if n > 1 {
				m.push(fDir, int32(pc), pos, 1, 0)
			}
			g := int(in.x)
			m.setCap(2*g, m.cands[0].gs)
			m.setCap(2*g+1, m.cands[0].end)
			pos = m.cands[0].end
			pc++
		case opScan:
			c := &m.sc
			c.reset(m, text, in.fold)
			end := scanners[in.x].fn(c, pos)
			if c.unsure {
				pc = int(in.y)
				break
			}
			if end < 0 {
				ok = false
				break
			}
			m.push(fScanSlow, in.y, pos, 0, 0)
			for k, g := range in.groups {
				s, e := c.caps[2*k], c.caps[2*k+1]
				if m.caps[2*g] != s {
					m.setCap(2*int(g), s)
				}
				if m.caps[2*g+1] != e {
					m.setCap(2*int(g)+1, e)
				}
			}
			pos = end
			pc++
		case opCollect:
			gs := -1
			if g := int(in.x); 2*g < len(m.caps) {
				gs = m.caps[2*g]
			}
			m.collect = append(m.collect, cand{gs: gs, end: pos})
			ok = false
		case opMark:
			x := int(in.x)
			m.push(fMark, 0, 0, int32(x), int32(m.marks[x]))
			m.marks[x] = pos
			pc++
		case opProgress:
			if pos != m.marks[in.x] {
				pc = int(in.y)
			} else {
				pc++
			}
		}
		if ok {
			continue
		}
		// Backtrack to the most recent choice point above base.
		resumed := false
		for !resumed {
			if m.sp == base {
				return 0, false
			}
			m.sp--
			fp := &m.stack[m.sp]
			f := frame{pc: fp.pc, kind: fp.kind, pos: fp.pos, a: fp.a, b: fp.b}
			switch f.kind {
			case fCap:
				m.caps[f.a] = int(f.b)
			case fMark:
				m.marks[f.a] = int(f.b)
			case fBranch, fScanSlow:
				pc, pos = int(f.pc), int(f.pos)
				resumed = true
			case fStarGreedy:
				p := int(f.pos)
				_, w := runeBefore(text, p)
				p -= w
				if p < int(f.a) {
					p = int(f.a)
				}
				if p > int(f.a) {
					m.push(fStarGreedy, f.pc, p, f.a, 0)
				}
				pc, pos = int(f.pc)+1, p
				resumed = true
			case fStarLazy:
				in := &insts[f.pc]
				if int(f.pos) < len(text) && (in.max < 0 || f.a < in.max) {
					r, w := runeAt(text, int(f.pos))
					if in.single(r) {
						p, n := int(f.pos)+w, f.a+1
						if in.max < 0 || n < in.max {
							m.push(fStarLazy, f.pc, p, n, 0)
						}
						pc, pos = int(f.pc)+1, p
						resumed = true
					}
				}
			case fDir:
				in := &insts[f.pc]
				n := in.dir.enum(m, text, int(f.pos), in.fold, &m.cands)
				if k := int(f.a); k < n {
					if k+1 < n {
						m.push(fDir, f.pc, int(f.pos), int32(k+1), 0)
					}
					g := int(in.x)
					m.setCap(2*g, m.cands[k].gs)
					m.setCap(2*g+1, m.cands[k].end)
					pc, pos = int(f.pc)+1, m.cands[k].end
					resumed = true
				}
			}
		}
	}
}

// star runs a single-rune repeat at *pos and pushes its choice point.
func (m *machine) star(in *inst, pc int, pos *int) bool {
	text := m.text
	p := *pos
	n := 0
	if in.greedy {
		low := -1
		if in.min == 0 {
			low = p
		}
		cls := in.cls
		for (in.max < 0 || n < int(in.max)) && p < len(text) {
			c := text[p]
			if cls != nil && !cls.isDot && c < utf8.RuneSelf {
				// the common case, without calls
				if (cls.ascii[c>>6]&(1<<(c&63)) != 0) == cls.neg {
					break
				}
				p++
			} else {
				r, w := rune(c), 1
				if c >= utf8.RuneSelf {
					r, w = utf8.DecodeRuneInString(text[p:])
				}
				if !in.single(r) {
					break
				}
				p += w
			}
			n++
			if n == int(in.min) {
				low = p
			}
		}
		if n < int(in.min) {
			return false
		}
		if p > low {
			m.push(fStarGreedy, int32(pc), p, int32(low), 0)
		}
		*pos = p
		return true
	}
	for n < int(in.min) {
		if p >= len(text) {
			return false
		}
		r, w := runeAt(text, p)
		if !in.single(r) {
			return false
		}
		p += w
		n++
	}
	if in.max < 0 || n < int(in.max) {
		m.push(fStarLazy, int32(pc), p, int32(n), 0)
	}
	*pos = p
	return true
}

func (m *machine) backref(in *inst, pos *int) bool {
	g := int(in.x)
	if 2*g+1 >= len(m.caps) {
		return false
	}
	s, e := m.caps[2*g], m.caps[2*g+1]
	if s < 0 || e < 0 {
		return false
	}
	ref := m.text[s:e]
	rest := m.text[*pos:]
	if !in.fold {
		if !strings.HasPrefix(rest, ref) {
			return false
		}
		*pos += len(ref)
		return true
	}
	p := 0
	for _, want := range ref {
		if p >= len(rest) {
			return false
		}
		r, w := runeAt(rest, p)
		if !foldEq(r, want) {
			return false
		}
		p += w
	}
	*pos += p
	return true
}

// keepCaptures drops the choice points a successful lookaround left above
// mark (Python never backtracks into a lookaround) but keeps the capture
// undo records, so that backtracking past the lookaround still undoes them.
func (m *machine) keepCaptures(mark int) {
	k := mark
	for i := mark; i < m.sp; i++ {
		if f := m.stack[i]; f.kind == fCap || f.kind == fMark {
			m.stack[k] = f
			k++
		}
	}
	m.sp = k
}
