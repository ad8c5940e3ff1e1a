// Package rx runs RE2 regexes (Go's syntax, Go's leftmost-first semantics) on log lines faster
// than package regexp does, for the one call a filter makes per line: FindStringSubmatchIndex.
//
// It is a backtracker over Go's own compiled program (regexp/syntax), like regexp's bitState
// engine, with the same guarantee of linear time: every (instruction, position) pair is
// visited at most once per call, so no crafted line can make it backtrack without end. It is
// faster on log lines because it
//   - joins runs of single characters into one instruction compared with one string compare
//     ("Failed password for " is one step, not twenty),
//   - tests ASCII characters against a 128-bit set instead of searching rune ranges,
//   - runs a loop or a bounded repeat of one character (\S+, \d{1,3}) without a choice per
//     character, and queues no choice that cannot start with the next character,
//   - reads the string directly instead of through regexp's input interface,
//   - keeps its work space in a Machine that the caller owns (one per goroutine) instead of a
//     sync.Pool.
//
// Results are those of regexp.Regexp.FindStringSubmatchIndex, index for index: the fuzz test
// compares both on random regexes and texts. Texts too long for the visited set (see
// maxVisitBits) go to package regexp, which then runs its NFA.
package rx

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

type opcode uint8

const (
	opFail opcode = iota
	opAlt
	opLit   // lit must follow
	opClass // one rune in the set
	opAnyNotNL
	opAny
	opCap
	opEmpty
	opNop
	opMatch
)

type inst struct {
	op   opcode
	loop loopKind // opAlt: how the loop it closes runs (see loops)
	// opAlt: whether a match from out (the first choice), or from arg (the second), may start
	// with anything or nothing (see first), and with a rune past ASCII; outASCII and ascii
	// hold the ASCII characters it may start with
	outAny, argAny, outNonASCII, argNonASCII bool

	out  uint32
	arg  uint32 // opAlt: the second choice; opCap: the register; opEmpty: the EmptyOp
	memo int32  // row in the visited set, or -1: see build
	lit  string // opLit
	// opClass, opLit of one byte: which runes below utf8.RuneSelf match; opAlt: see above
	ascii    [2]uint64
	outASCII [2]uint64    // opAlt: see above
	rune     *syntax.Inst // opClass: the original instruction, for runes at or past utf8.RuneSelf
}

// loopKind marks an opAlt that closes a loop over one character instruction (x* x+ x*? x+?),
// or heads a bounded repeat of one (x{1,3}), that can run without a choice per character.
type loopKind uint8

const (
	loopNone loopKind = iota
	// loopGreedy: a greedy loop over one character instruction (\S+ .* [^"]* a*). It takes all it
	// can, and queues as the choices to come back to only the places where the continuation
	// can start by its first character, in the order the step-by-step loop would leave them
	// (the last one is tried first). When the continuation cannot start inside the loop (\S+
	// then a space) that is the end of the run only.
	loopGreedy
	// loopBounded: the optional copies of a greedy bounded repeat, which Simplify makes a
	// chain: \d{1,3} is \d(?:\d\d?)?, an alt whose first choice is a one-character
	// instruction that leads to the next alt (or to the end of the chain), every alt's second
	// choice the same join. It takes the copies as loopGreedy takes its run, queueing the join
	// where the continuation can start.
	loopBounded
	// loopLazy: a lazy loop over any character (.*? .+?) whose continuation starts with the
	// literal lit (" from "): only the places where lit stands can go on, so the loop jumps
	// to the next one (strings.Index) instead of trying each character.
	loopLazy
)

func (in *inst) matchASCII(c byte) bool { return in.ascii[c>>6]&(1<<(c&63)) != 0 }

// Regexp is a compiled regex. It is safe for concurrent use; each goroutine passes its own
// Machine.
type Regexp struct {
	std      *regexp.Regexp // the same regex, for long texts
	prog     []inst
	start    uint32
	anchored bool   // the regex starts with \A (^ without (?m)): only position 0 can match
	prefix   string // an unanchored match starts with this literal (regexp's prefix scan)
	ncap     int    // 2 * (number of groups + 1)
	maxLen   int    // longest text the visited set covers
	rows     int    // instructions with a row in the visited set
}

// maxVisitBits bounds the visited set (instructions x positions), as regexp bounds its own
// backtracker; past it the text goes to regexp's NFA.
const maxVisitBits = 256 * 1024

// Compile parses expr with Go's syntax (syntax.Perl, as regexp.Compile) and compiles it.
func Compile(expr string) (*Regexp, error) {
	std, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, err
	}
	ncap := 2 * (re.MaxCap() + 1)
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, err
	}
	r := &Regexp{std: std, ncap: ncap}
	r.build(prog)
	r.anchored = prog.StartCond()&syntax.EmptyBeginText != 0
	if !r.anchored {
		if p, _ := prog.Prefix(); p != "" {
			r.prefix = p
		}
	}
	r.maxLen = maxVisitBits/max(r.rows, 1) - 1
	return r, nil
}

// MustCompile is Compile that panics on an error, for regexes fixed in the program.
func MustCompile(expr string) *Regexp {
	r, err := Compile(expr)
	if err != nil {
		panic(err)
	}
	return r
}

// NumSubexp is the number of parenthesised groups.
func (r *Regexp) NumSubexp() int { return r.ncap/2 - 1 }

// SubexpNames is regexp's SubexpNames.
func (r *Regexp) SubexpNames() []string { return r.std.SubexpNames() }

// String returns the source text.
func (r *Regexp) String() string { return r.std.String() }

// build translates Go's program, joining literal runs.
func (r *Regexp) build(p *syntax.Prog) {
	// how many instructions lead to each one: a character inside a literal run must be
	// reached from the one before it only, or the run cannot be one step
	indeg := make([]int, len(p.Inst))
	for i := range p.Inst {
		in := &p.Inst[i]
		switch in.Op {
		case syntax.InstMatch, syntax.InstFail:
			continue
		case syntax.InstAlt, syntax.InstAltMatch:
			indeg[in.Arg]++
		}
		indeg[in.Out]++
	}
	indeg[p.Start]++
	lit1 := func(in *syntax.Inst) (rune, bool) {
		if in.Op != syntax.InstRune1 || syntax.Flags(in.Arg)&syntax.FoldCase != 0 {
			return 0, false
		}
		c := in.Rune[0]
		return c, c != utf8.RuneError && utf8.ValidRune(c)
	}
	// new index of every old instruction that keeps one (run heads and all others)
	idx := make([]uint32, len(p.Inst))
	inRun := make([]bool, len(p.Inst)) // a character of a run other than its first
	for i := range p.Inst {
		in := &p.Inst[i]
		if _, ok := lit1(in); !ok {
			continue
		}
		for j := in.Out; ; {
			next := &p.Inst[j]
			if _, ok := lit1(next); !ok || indeg[j] != 1 || inRun[j] || int(j) == i {
				break
			}
			inRun[j] = true
			j = next.Out
		}
	}
	n := uint32(0)
	for i := range p.Inst {
		if !inRun[i] {
			idx[i] = n
			n++
		}
	}
	r.prog = make([]inst, n)
	for i := range p.Inst {
		if inRun[i] {
			continue
		}
		in := &p.Inst[i]
		out := &r.prog[idx[i]]
		switch in.Op {
		case syntax.InstFail:
			out.op = opFail
			continue
		case syntax.InstMatch:
			out.op = opMatch
			continue
		case syntax.InstAlt, syntax.InstAltMatch:
			out.op, out.arg = opAlt, idx[in.Arg]
		case syntax.InstCapture:
			out.op, out.arg = opCap, in.Arg
		case syntax.InstEmptyWidth:
			out.op, out.arg = opEmpty, in.Arg
		case syntax.InstNop:
			out.op = opNop
		case syntax.InstRuneAnyNotNL:
			out.op, out.ascii = opAnyNotNL, [2]uint64{^uint64(1 << '\n'), ^uint64(0)}
		case syntax.InstRuneAny:
			out.op, out.ascii = opAny, [2]uint64{^uint64(0), ^uint64(0)}
		case syntax.InstRune1, syntax.InstRune:
			if c, ok := lit1(in); ok {
				var b strings.Builder
				b.WriteRune(c)
				j := in.Out
				for inRun[j] {
					c, _ := lit1(&p.Inst[j])
					b.WriteRune(c)
					j = p.Inst[j].Out
				}
				out.op, out.lit, out.out = opLit, b.String(), idx[j]
				if c < utf8.RuneSelf && j == in.Out {
					out.ascii[c>>6] |= 1 << (c & 63)
				}
				continue
			}
			out.op, out.rune = opClass, in
			for c := rune(0); c < utf8.RuneSelf; c++ {
				if in.MatchRune(c) {
					out.ascii[c>>6] |= 1 << (c & 63)
				}
			}
		}
		out.out = idx[in.Out]
	}
	r.start = idx[p.Start]
	// Only instructions that more than one path leads to need a row in the visited set: one
	// reached from a single predecessor is visited at most as often as that predecessor, and
	// every cycle (a loop) passes through its entry, which two paths lead to. That keeps the
	// bound (each row at most once per position) with fewer checks than a row per instruction.
	in := make([]int, len(r.prog))
	in[r.start] += 2 // the start is entered anew at each position tried
	for i := range r.prog {
		switch r.prog[i].op {
		case opFail, opMatch:
			continue
		case opAlt:
			in[r.prog[i].arg]++
		}
		in[r.prog[i].out]++
	}
	for i := range r.prog {
		if a := &r.prog[i]; a.op == opAlt {
			set, nonASCII, ok := r.first(a.out, 0)
			a.outASCII, a.outNonASCII, a.outAny = set, nonASCII, !ok
			set, nonASCII, ok = r.first(a.arg, 0)
			a.ascii, a.argNonASCII, a.argAny = set, nonASCII, !ok
		}
	}
	r.loops(in)
	for i := range r.prog {
		r.prog[i].memo = -1
		// loopGreedy and loopLazy mark the positions they pass in their row; a loopBounded run
		// marks none (it is no longer than the chain it stands for), so its head needs a row
		// only as any other instruction does
		if in[i] > 1 || r.prog[i].loop == loopGreedy || r.prog[i].loop == loopLazy {
			r.prog[i].memo = int32(r.rows)
			r.rows++
		}
	}
}

// loops finds the loops that loopGreedy, loopBounded and loopLazy can run; in counts the
// instructions that lead to each one.
func (r *Regexp) loops(in []int) {
	for i := range r.prog {
		a := &r.prog[i]
		if a.op != opAlt {
			continue
		}
		greedyBody, lazyBody := &r.prog[a.out], &r.prog[a.arg]
		switch {
		case greedyBody.out == uint32(i) && greedyBody.consumesOne():
			a.loop = loopGreedy
		case r.boundedChain(a, in):
			a.loop = loopBounded
		case lazyBody.out == uint32(i) && (lazyBody.op == opAnyNotNL || lazyBody.op == opAny):
			pc := a.out
			for r.prog[pc].op == opCap || r.prog[pc].op == opNop {
				pc = r.prog[pc].out
			}
			if r.prog[pc].op == opLit {
				a.loop, a.lit = loopLazy, r.prog[pc].lit
			}
		}
	}
}

// boundedChain reports whether alt a heads a loopBounded chain. Only its head may be reached
// from elsewhere: the run skips the instructions after it, so nothing else may go there.
func (r *Regexp) boundedChain(a *inst, in []int) bool {
	join := a.arg
	for range r.prog { // no chain is longer: this bounds a cycle the start cannot reach
		body := &r.prog[a.out]
		if !body.consumesOne() || in[a.out] != 1 {
			return false
		}
		if body.out == join {
			return true
		}
		a = &r.prog[body.out]
		if a.op != opAlt || a.arg != join || in[body.out] != 1 {
			return false
		}
	}
	return false
}

// consumesOne reports whether the instruction takes one character: a class, any character, or
// a literal of one (a{1,3}; build gives it its ascii set).
func (in *inst) consumesOne() bool {
	switch in.op {
	case opClass, opAnyNotNL, opAny:
		return true
	case opLit:
		return utf8.RuneCountInString(in.lit) == 1
	}
	return false
}

// stepRune returns the width of the character the consumesOne instruction in takes at s[p],
// or 0, where s[p] is past ASCII or past the end (the loops test ASCII with matchASCII).
func (in *inst) stepRune(s string, p int) int {
	switch {
	case p >= len(s):
		return 0
	case in.op == opLit:
		if strings.HasPrefix(s[p:], in.lit) {
			return len(in.lit)
		}
		return 0
	}
	c, w := utf8.DecodeRuneInString(s[p:])
	if in.op == opClass && !in.rune.MatchRune(c) {
		return 0
	}
	return w
}

// takesNonASCII reports whether the character instruction may match a rune past ASCII.
func (in *inst) takesNonASCII() bool {
	if in.op != opClass {
		return true
	}
	if syntax.Flags(in.rune.Arg)&syntax.FoldCase != 0 {
		return true // K matches the Kelvin sign
	}
	for _, c := range in.rune.Rune { // ranges, or one rune (\x{FFFD}, which is no opLit)
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// first returns the ASCII characters a match from pc can start with, and whether it may start
// with a rune past ASCII; ok is false when a match from pc may consume nothing first (an
// assertion, the end) or the search goes too deep.
func (r *Regexp) first(pc uint32, depth int) (set [2]uint64, nonASCII, ok bool) {
	if depth > 8 {
		return set, false, false
	}
	in := &r.prog[pc]
	switch in.op {
	case opCap, opNop:
		return r.first(in.out, depth+1)
	case opLit:
		c := in.lit[0]
		if c >= utf8.RuneSelf {
			return set, true, true
		}
		set[c>>6] |= 1 << (c & 63)
		return set, false, true
	case opClass, opAnyNotNL, opAny:
		return in.ascii, in.takesNonASCII(), true
	case opAlt:
		s1, n1, ok1 := r.first(in.out, depth+1)
		s2, n2, ok2 := r.first(in.arg, depth+1)
		return [2]uint64{s1[0] | s2[0], s1[1] | s2[1]}, n1 || n2, ok1 && ok2
	case opFail:
		return set, false, true
	}
	return set, false, false
}

// job is a choice to come back to: go on at pc and pos, or (restore) put back the old value
// pos of capture register pc.
type job struct {
	pc      uint32
	restore bool
	pos     int
}

// Machine is the work space of one matching goroutine; the zero value is ready. It may serve
// many Regexps, one call at a time.
type Machine struct {
	visited []uint64
	jobs    []job
	cap     []int
	width   int // positions per instruction in visited: len(text)+1
}

// FindStringSubmatchIndex is regexp's: nil, or the start and end of the match and of each group
// (-1 for a group that took no part). m may be nil (a Machine is then made for the call).
func (r *Regexp) FindStringSubmatchIndex(m *Machine, s string) []int {
	return r.AppendStringSubmatchIndex(nil, m, s)
}

// AppendStringSubmatchIndex is FindStringSubmatchIndex that appends the indexes to dst[:0] (so
// that a caller matching line after line allocates nothing); nil when there is no match.
func (r *Regexp) AppendStringSubmatchIndex(dst []int, m *Machine, s string) []int {
	if len(s) > r.maxLen {
		return r.std.FindStringSubmatchIndex(s)
	}
	if m == nil {
		m = new(Machine)
	}
	m.reset(r, len(s))
	if r.anchored {
		m.cap[0] = 0
		if r.try(m, s, 0) {
			return append(dst[:0], m.cap...)
		}
		return nil
	}
	for pos := 0; pos <= len(s); {
		if r.prefix != "" {
			i := strings.Index(s[pos:], r.prefix)
			if i < 0 {
				return nil
			}
			pos += i
		}
		m.cap[0] = pos
		if r.try(m, s, pos) {
			return append(dst[:0], m.cap...)
		}
		if pos == len(s) {
			break
		}
		pos += runeWidth(s, pos)
	}
	return nil
}

func (m *Machine) reset(r *Regexp, n int) {
	m.width = n + 1
	words := (r.rows*m.width + 63) / 64
	if cap(m.visited) < words {
		m.visited = make([]uint64, words)
	} else {
		m.visited = m.visited[:words]
		clear(m.visited)
	}
	if cap(m.cap) < r.ncap {
		m.cap = make([]int, r.ncap)
	} else {
		m.cap = m.cap[:r.ncap]
	}
	for i := range m.cap {
		m.cap[i] = -1
	}
	m.jobs = m.jobs[:0]
}

// try runs the backtracker from pc start at pos; on a match m.cap holds the groups.
func (r *Regexp) try(m *Machine, s string, pos int) bool {
	prog := r.prog
	visited := m.visited
	width := m.width
	jobs := append(m.jobs[:0], job{pc: r.start, pos: pos})
	for len(jobs) > 0 {
		j := jobs[len(jobs)-1]
		jobs = jobs[:len(jobs)-1]
		if j.restore {
			m.cap[j.pc] = j.pos
			continue
		}
		pc, pos := j.pc, j.pos
	step:
		in := &prog[pc]
		// visit (pc, pos) once: a second visit would fail as the first did
		if in.memo >= 0 && !firstVisit(visited, uint(int(in.memo)*width+pos)) {
			continue
		}
		switch in.op {
		case opLit:
			if !strings.HasPrefix(s[pos:], in.lit) {
				continue
			}
			pos += len(in.lit)
		case opClass:
			if pos >= len(s) {
				continue
			}
			if c := s[pos]; c < utf8.RuneSelf {
				if !in.matchASCII(c) {
					continue
				}
				pos++
			} else {
				c, w := utf8.DecodeRuneInString(s[pos:])
				if !in.rune.MatchRune(c) {
					continue
				}
				pos += w
			}
		case opAnyNotNL, opAny:
			if pos >= len(s) || in.op == opAnyNotNL && s[pos] == '\n' {
				continue
			}
			pos += runeWidth(s, pos)
		case opAlt:
			switch in.loop {
			case loopGreedy:
				// as the step-by-step loop: at each position, first the choice to go on from
				// there (queued only where the continuation can start), then one more
				// character; a position passed before ends the loop (its choices were queued
				// then, and explored), and the last choice queued is tried first. Marking
				// each (pc, position) passed keeps the work linear.
				body := &prog[in.out]
				p := pos
				for {
					if in.argCanStart(s, p) {
						jobs = append(jobs, job{pc: in.arg, pos: p})
					}
					w := 0
					if p < len(s) && s[p] < utf8.RuneSelf {
						if body.matchASCII(s[p]) {
							w = 1
						}
					} else {
						w = body.stepRune(s, p)
					}
					if w == 0 {
						break
					}
					p += w
					if !firstVisit(visited, uint(int(in.memo)*width+p)) {
						break
					}
				}
				continue
			case loopBounded:
				// as the step-by-step chain: before each copy, the choice to go on at the join
				// without it (queued only where the continuation can start); where a copy
				// does not match, that choice, the last one queued, is taken at once, so it
				// is not queued; after the last copy the join follows.
				a, p := in, pos
				for {
					body := &prog[a.out]
					// the character step as in loopGreedy, written out: as a function it
					// does not inline, and costs 5% of a match
					w := 0
					if p < len(s) && s[p] < utf8.RuneSelf {
						if body.matchASCII(s[p]) {
							w = 1
						}
					} else {
						w = body.stepRune(s, p)
					}
					if w == 0 {
						break
					}
					if in.argCanStart(s, p) {
						jobs = append(jobs, job{pc: in.arg, pos: p})
					}
					p += w
					if body.out == in.arg {
						break
					}
					a = &prog[body.out]
				}
				pc, pos = in.arg, p
				goto step
			case loopLazy:
				if !strings.HasPrefix(s[pos:], in.lit) {
					i := strings.Index(s[pos:], in.lit)
					if i < 0 {
						continue
					}
					q := pos + i
					for p := pos; p < q; {
						w := 1
						if c := s[p]; c >= utf8.RuneSelf {
							_, w = utf8.DecodeRuneInString(s[p:])
						} else if c == '\n' && prog[in.arg].op == opAnyNotNL {
							goto fail
						}
						p += w
						if p < q && !firstVisit(visited, uint(int(in.memo)*width+p)) {
							goto fail
						}
					}
					pos = q
					goto step
				}
			}
			// a choice that cannot start with the next character would be tried and dropped
			// for nothing (what it marks visited on the way would fail again): where the
			// first cannot start the second is taken at once, and the second is queued only
			// where it can start
			if !in.outCanStart(s, pos) {
				pc = in.arg
				goto step
			}
			if in.argCanStart(s, pos) {
				jobs = append(jobs, job{pc: in.arg, pos: pos})
			}
		case opCap:
			if int(in.arg) < len(m.cap) {
				jobs = append(jobs, job{pc: in.arg, restore: true, pos: m.cap[in.arg]})
				m.cap[in.arg] = pos
			}
		case opEmpty:
			if !emptyOK(syntax.EmptyOp(in.arg), s, pos) {
				continue
			}
		case opNop:
		case opMatch:
			m.cap[1] = pos
			m.jobs = jobs[:0] // keep the grown stack for the next call
			return true
		default:
			continue
		}
		pc = in.out
		goto step
	fail:
	}
	m.jobs = jobs[:0]
	return false
}

// outCanStart and argCanStart report whether a match from the first or second choice of alt in
// may start at s[pos:], as far as its first character tells.
func (in *inst) outCanStart(s string, pos int) bool {
	return canStart(&in.outASCII, in.outAny, in.outNonASCII, s, pos)
}

func (in *inst) argCanStart(s string, pos int) bool {
	return canStart(&in.ascii, in.argAny, in.argNonASCII, s, pos)
}

func canStart(ascii *[2]uint64, any, nonASCII bool, s string, pos int) bool {
	switch {
	case any:
		return true
	case pos >= len(s):
		return false
	case s[pos] >= utf8.RuneSelf:
		return nonASCII
	}
	return ascii[s[pos]>>6]&(1<<(s[pos]&63)) != 0
}

// firstVisit marks bit in visited and reports whether it was clear.
func firstVisit(visited []uint64, bit uint) bool {
	w, b := bit/64, uint64(1)<<(bit%64)
	if visited[w]&b != 0 {
		return false
	}
	visited[w] |= b
	return true
}

// runeWidth is the length of the rune at s[pos] (1 for a byte that starts no valid one), as
// regexp steps through a string.
func runeWidth(s string, pos int) int {
	if s[pos] < utf8.RuneSelf {
		return 1
	}
	_, w := utf8.DecodeRuneInString(s[pos:])
	return w
}

// emptyOK reports whether the zero-width assertions op hold at pos.
func emptyOK(op syntax.EmptyOp, s string, pos int) bool {
	r1, r2 := rune(-1), rune(-1)
	if pos > 0 {
		if c := s[pos-1]; c < utf8.RuneSelf {
			r1 = rune(c)
		} else {
			r1, _ = utf8.DecodeLastRuneInString(s[:pos])
		}
	}
	if pos < len(s) {
		if c := s[pos]; c < utf8.RuneSelf {
			r2 = rune(c)
		} else {
			r2, _ = utf8.DecodeRuneInString(s[pos:])
		}
	}
	return op&^syntax.EmptyOpContext(r1, r2) == 0
}
