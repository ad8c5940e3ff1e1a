package logtime

import (
	"fmt"
	"unicode/utf8"
)

type opcode uint8

const (
	opMatch      opcode = iota
	opRune              // r
	opRuneFold          // r, case-insensitive
	opString            // str, exact
	opClass             // cls
	opStar              // single-rune repeat: rune/class in r/fold/cls, min, max, greedy
	opSplit             // try x, then y
	opJmp               // x
	opSave              // caps[x] = pos
	opAssert            // assert in x
	opLook              // lookaround: body at pc+1, continue at y; neg, behind, width in min
	opLookSimple        // lookahead over one-step alternatives in alts
	opLookEnd           // end of a lookaround body
	opBackref           // group x
	opCond              // group x set ? pc+1 : y
	opDir               // directive dir, group x
	opMark              // marks[x] = pos
	opProgress          // loop end: pos != marks[x] ? goto y (loop head) : pc+1 (leave)
	opScan              // scanner x for groups; its compiled pattern at y
	opCollect           // tests only: record (group x start, pos) and fail
)

// inst is one instruction. Fields are used per opcode as documented above.
type inst struct {
	op     opcode
	fold   bool
	greedy bool
	neg    bool
	behind bool
	multi  bool
	x, y   int32
	min    int32
	max    int32 // -1 = unbounded
	r      rune
	str    string
	cls    *charClass
	dir    *directive
	alts   []step
	groups []int32
}

// step is one alternative of a simple lookahead: either an assertion or a
// single-rune test.
type step struct {
	isAssert bool
	assert   assertKind
	multi    bool
	r        rune
	fold     bool
	cls      *charClass
}

// program is a compiled pattern.
type program struct {
	insts    []inst
	ncap     int  // capture slots: 2 per group, group 0 included
	nmark    int  // loop marks
	anchored bool // can only match at position 0
	useFirst bool // first holds every byte a match can start with
	first    [4]uint64
	names    map[string]int
	ngroups  int
}

const maxInsts = 20000

type compiler struct {
	insts     []inst
	nmark     int
	mergeable bool // the last instruction is an opString that may grow
}

func compileRegex(src string, useDirs bool) (*program, error) {
	root, ngroups, names, err := parseRegex(src, useDirs)
	if err != nil {
		return nil, err
	}
	c := &compiler{}
	if err := c.emit(root); err != nil {
		return nil, err
	}
	c.add(inst{op: opMatch})
	prog := &program{insts: c.insts, ncap: 2 * (ngroups + 1), nmark: c.nmark, names: names, ngroups: ngroups}
	prog.anchored = startsAnchored(root)
	var fs firstSet
	if nullable := fs.of(root); !nullable {
		prog.useFirst = true
		prog.first = fs.bits
	}
	return prog, nil
}

func (c *compiler) add(in inst) int {
	c.mergeable = false
	c.insts = append(c.insts, in)
	return len(c.insts) - 1
}

// pc returns the index of the next instruction, which becomes a jump target:
// it must not be merged into the previous string.
func (c *compiler) pc() int32 {
	c.mergeable = false
	return int32(len(c.insts))
}

func isSingle(n *node) bool { return n.kind == nRune || n.kind == nClass }

func (c *compiler) emit(n *node) error {
	if len(c.insts) > maxInsts {
		return fmt.Errorf("%w: pattern too large", ErrUnsupported)
	}
	switch n.kind {
	case nEmpty:
	case nRune:
		if n.fold {
			c.add(inst{op: opRuneFold, r: n.r})
			break
		}
		// merge runs of exact runes into one string compare
		if k := len(c.insts) - 1; k >= 0 && c.insts[k].op == opString && c.mergeable {
			c.insts[k].str += string(n.r)
			return nil
		}
		c.add(inst{op: opString, str: string(n.r)})
		c.mergeable = true // after add, which clears it
		return nil
	case nClass:
		c.add(inst{op: opClass, cls: n.cls})
	case nConcat:
		for _, s := range n.subs {
			if err := c.emit(s); err != nil {
				return err
			}
		}
		return nil
	case nAlt:
		var jumps []int
		for i, s := range n.subs {
			if i < len(n.subs)-1 {
				split := c.add(inst{op: opSplit})
				c.insts[split].x = c.pc()
				if err := c.emit(s); err != nil {
					return err
				}
				jumps = append(jumps, c.add(inst{op: opJmp}))
				c.insts[split].y = c.pc()
			} else if err := c.emit(s); err != nil {
				return err
			}
		}
		for _, j := range jumps {
			c.insts[j].x = c.pc()
		}
	case nGroup:
		c.add(inst{op: opSave, x: int32(2 * n.group)})
		if err := c.emit(n.subs[0]); err != nil {
			return err
		}
		c.add(inst{op: opSave, x: int32(2*n.group + 1)})
	case nAssert:
		c.add(inst{op: opAssert, x: int32(n.assert), multi: n.multi})
	case nBackref:
		c.add(inst{op: opBackref, x: int32(n.group), fold: n.fold})
	case nDir:
		c.add(inst{op: opDir, dir: n.dir, x: int32(n.group), fold: n.fold})
	case nLook:
		if !n.behind {
			if alts, ok := simpleSteps(n.subs[0]); ok {
				c.add(inst{op: opLookSimple, neg: n.neg, alts: alts})
				break
			}
		}
		look := c.add(inst{op: opLook, neg: n.neg, behind: n.behind, min: int32(n.max)})
		if err := c.emit(n.subs[0]); err != nil {
			return err
		}
		c.add(inst{op: opLookEnd})
		c.insts[look].y = c.pc()
	case nCond:
		cond := c.add(inst{op: opCond, x: int32(n.group)})
		if err := c.emit(n.subs[0]); err != nil {
			return err
		}
		j := c.add(inst{op: opJmp})
		c.insts[cond].y = c.pc()
		if err := c.emit(n.subs[1]); err != nil {
			return err
		}
		c.insts[j].x = c.pc()
	case nRepeat:
		if err := c.emitRepeat(n); err != nil {
			return err
		}
	case nScan:
		// scan; jmp after; slow: <pattern>; after:
		gs := make([]int32, len(n.groups))
		for i, g := range n.groups {
			gs[i] = int32(g)
		}
		sc := c.add(inst{op: opScan, x: int32(n.scan), fold: n.fold, groups: gs})
		j := c.add(inst{op: opJmp})
		c.insts[sc].y = c.pc()
		if err := c.emit(n.subs[0]); err != nil {
			return err
		}
		c.insts[j].x = c.pc()
	default:
		return fmt.Errorf("internal: node kind %d", n.kind)
	}
	c.mergeable = false
	return nil
}

func (c *compiler) emitRepeat(n *node) error {
	sub := n.subs[0]
	if isSingle(sub) {
		in := inst{op: opStar, min: int32(n.min), max: int32(n.max), greedy: n.greedy}
		if sub.kind == nRune {
			in.r, in.fold = sub.r, sub.fold
		} else {
			in.cls = sub.cls
		}
		c.add(in)
		return nil
	}
	for i := 0; i < n.min; i++ {
		if err := c.emit(sub); err != nil {
			return err
		}
	}
	if n.max < 0 {
		// L: split body, exit; body: mark; sub; progress -> L or leave
		mark := c.nmark
		c.nmark++
		head := c.add(inst{op: opSplit})
		c.add(inst{op: opMark, x: int32(mark)})
		bodyStart := int32(head + 1)
		if err := c.emit(sub); err != nil {
			return err
		}
		c.add(inst{op: opProgress, x: int32(mark), y: int32(head)})
		exit := c.pc()
		if n.greedy {
			c.insts[head].x, c.insts[head].y = bodyStart, exit
		} else {
			c.insts[head].x, c.insts[head].y = exit, bodyStart
		}
		return nil
	}
	// bounded: nested optionals x(?:x(?:x)?)?
	var splits []int
	for i := n.min; i < n.max; i++ {
		s := c.add(inst{op: opSplit})
		splits = append(splits, s)
		c.insts[s].x = c.pc()
		if err := c.emit(sub); err != nil {
			return err
		}
	}
	exit := c.pc()
	for _, s := range splits {
		if n.greedy {
			c.insts[s].y = exit
		} else {
			c.insts[s].x, c.insts[s].y = exit, c.insts[s].x
		}
	}
	return nil
}

// simpleSteps reports whether a lookahead body is an alternation of
// zero-width assertions and single runes without captures, which can be
// tested without running the machine.
func simpleSteps(n *node) ([]step, bool) {
	var subs []*node
	if n.kind == nAlt {
		subs = n.subs
	} else {
		subs = []*node{n}
	}
	out := make([]step, 0, len(subs))
	for _, s := range subs {
		switch s.kind {
		case nAssert:
			out = append(out, step{isAssert: true, assert: s.assert, multi: s.multi})
		case nRune:
			out = append(out, step{r: s.r, fold: s.fold})
		case nClass:
			out = append(out, step{cls: s.cls})
		default:
			return nil, false
		}
	}
	return out, true
}

// startsAnchored reports whether every match must start at position 0.
func startsAnchored(n *node) bool {
	switch n.kind {
	case nAssert:
		return (n.assert == aBegin && !n.multi) || n.assert == aBeginText
	case nConcat:
		for _, s := range n.subs {
			if startsAnchored(s) {
				return true
			}
			if !zeroWidth(s) {
				return false
			}
		}
	case nGroup:
		return startsAnchored(n.subs[0])
	case nAlt:
		for _, s := range n.subs {
			if !startsAnchored(s) {
				return false
			}
		}
		return true
	}
	return false
}

func zeroWidth(n *node) bool {
	switch n.kind {
	case nEmpty, nAssert, nLook:
		return true
	case nGroup:
		return zeroWidth(n.subs[0])
	case nConcat:
		for _, s := range n.subs {
			if !zeroWidth(s) {
				return false
			}
		}
		return true
	}
	return false
}

// firstSet collects the bytes a match can start with.
type firstSet struct{ bits [4]uint64 }

func (f *firstSet) add(b byte) { f.bits[b>>6] |= 1 << (b & 63) }
func (f *firstSet) addWide()   { f.bits[2], f.bits[3] = ^uint64(0), ^uint64(0) }
func (f *firstSet) addAll()    { f.bits = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)} }

func (f *firstSet) addRuneFold(r rune, fold bool) {
	if r < utf8.RuneSelf {
		f.add(byte(r))
		if fold && isASCIILetter(r) {
			f.add(byte(r) ^ 0x20)
		}
		if fold {
			f.addWide()
		}
		return
	}
	var buf [utf8.UTFMax]byte
	utf8.EncodeRune(buf[:], r)
	f.add(buf[0])
	if fold {
		f.addAll()
	}
}

func (f *firstSet) addClass(c *charClass) {
	for b := 0; b < utf8.RuneSelf; b++ {
		if c.has(rune(b)) {
			f.add(byte(b))
		}
	}
	if c.mayMatchWide() {
		f.addWide()
	}
}

// of adds the first bytes of n and reports whether n can match the empty
// string (then the bytes that follow n matter too).
func (f *firstSet) of(n *node) (nullable bool) {
	switch n.kind {
	case nEmpty, nAssert, nLook:
		return true
	case nRune:
		f.addRuneFold(n.r, n.fold)
		return false
	case nClass:
		f.addClass(n.cls)
		return false
	case nConcat:
		for _, s := range n.subs {
			if !f.of(s) {
				return false
			}
		}
		return true
	case nAlt, nCond:
		null := false
		for _, s := range n.subs {
			if f.of(s) {
				null = true
			}
		}
		return null
	case nGroup, nDir, nScan:
		return f.of(n.subs[0])
	case nRepeat:
		null := f.of(n.subs[0])
		return null || n.min == 0
	}
	f.addAll()
	return true
}
