package logtime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds a parser for the subset of Python's `re` syntax that
// fail2ban date patterns use, and a compiler to a program for the
// backtracking machine in vm.go.
//
// Why not Go's regexp: fail2ban's own templates rely on backreferences
// ((?P=_sep)), lookbehind ((?<=^\[)), conditionals ((?(square)...)) and on
// Python's leftmost-first, backtracking choice of *which* text is the date,
// all of which RE2 cannot express or reproduces differently. The machine here
// follows Python's semantics, operates on runes like Python's str matching,
// and allocates nothing per match once warmed up.

// Errors returned when a date pattern does not compile.
var (
	ErrSyntax      = errors.New("invalid date pattern")
	ErrUnsupported = errors.New("unsupported in date pattern")
)

// marker wraps a %-directive in the pattern text between the fail2ban-style
// text rewriting and the parser, so that the parser can compile directives to
// dedicated instructions (see directive.go). User text may not contain it.
const marker = '\x00'

// regionStart, index, regionStart ... regionEnd wrap the text of a default
// pattern that has a hand-written scanner (see scan.go).
const (
	regionStart = '\x01'
	regionEnd   = '\x02'
)

type nodeKind uint8

const (
	nEmpty nodeKind = iota
	nRune
	nClass
	nConcat
	nAlt
	nRepeat
	nGroup
	nAssert
	nBackref
	nLook
	nCond
	nDir
	nScan // a default pattern run by its scanner: scan, groups, subs[0]
)

type assertKind uint8

const (
	aBegin     assertKind = iota // ^
	aEnd                         // $
	aBeginText                   // \A
	aEndText                     // \Z
	aWordB                       // \b
	aNotWordB                    // \B
)

type node struct {
	kind   nodeKind
	r      rune
	fold   bool
	cls    *charClass
	subs   []*node
	min    int
	max    int // -1 = unbounded
	greedy bool
	group  int
	assert assertKind
	multi  bool // multiline ^/$
	behind bool
	neg    bool
	dir    *directive
	scan   int
	groups []int
}

type reFlags struct {
	fold, multi, dotAll bool
}

type parser struct {
	src     string
	pos     int
	flags   reFlags
	groups  *int
	names   map[string]int
	open    map[int]bool // groups not yet closed
	useDirs bool
	refs    []int // numeric group references to check at the end
	depth   int
}

// parseRegex parses Python regex text (possibly holding directive markers)
// into a tree. useDirs selects the dedicated directive instructions; without
// it every directive is read from its regex text (the reference semantics).
func parseRegex(src string, useDirs bool) (*node, int, map[string]int, error) {
	g := 0
	p := &parser{src: src, groups: &g, names: map[string]int{}, open: map[int]bool{}, useDirs: useDirs}
	// Global flags, which Python 3.11 only accepts at the very start.
	for strings.HasPrefix(p.src[p.pos:], "(?") {
		end := p.pos + 2
		for end < len(p.src) && isASCIILetter(rune(p.src[end])) {
			end++
		}
		if end == p.pos+2 || end >= len(p.src) || p.src[end] != ')' {
			break
		}
		f, err := applyFlags(p.flags, p.src[p.pos+2:end], "")
		if err != nil {
			return nil, 0, nil, err
		}
		p.flags = f
		p.pos = end + 1
	}
	n, err := p.parseAlt()
	if err != nil {
		return nil, 0, nil, err
	}
	if p.pos < len(p.src) {
		return nil, 0, nil, fmt.Errorf("%w: unbalanced parenthesis at position %d", ErrSyntax, p.pos)
	}
	for _, r := range p.refs {
		if r > g {
			return nil, 0, nil, fmt.Errorf("%w: invalid group reference %d", ErrSyntax, r)
		}
	}
	return n, g, p.names, nil
}

func applyFlags(f reFlags, on, off string) (reFlags, error) {
	for _, set := range []struct {
		s string
		v bool
	}{{on, true}, {off, false}} {
		for _, c := range set.s {
			switch c {
			case 'i':
				f.fold = set.v
			case 'm':
				f.multi = set.v
			case 's':
				f.dotAll = set.v
			case 'u':
				// Unicode matching is the default for str patterns.
			default:
				return f, fmt.Errorf("%w: regex flag %q", ErrUnsupported, c)
			}
		}
	}
	return f, nil
}

func (p *parser) more() bool { return p.pos < len(p.src) }

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format+" at position %d", append([]any{ErrSyntax}, append(args, p.pos)...)...)
}

// splice replaces the marker starting at p.pos by the regex text of its
// directive, for the places where a directive cannot be an instruction
// (inside a set, after a backslash, ...), exactly as fail2ban's textual
// substitution would read.
func (p *parser) splice() error {
	d, end, err := p.markerAt(p.pos)
	if err != nil {
		return err
	}
	p.src = p.src[:p.pos] + d.regex + p.src[end:]
	return nil
}

func (p *parser) markerAt(i int) (*directive, int, error) {
	j := strings.IndexByte(p.src[i+1:], marker)
	if j < 0 {
		return nil, 0, fmt.Errorf("%w: stray NUL byte", ErrSyntax)
	}
	key := p.src[i+1 : i+1+j]
	d := directiveByKey(key)
	if d == nil {
		return nil, 0, fmt.Errorf("%w: unknown directive %%%s", ErrSyntax, key)
	}
	return d, i + 2 + j, nil
}

func (p *parser) parseAlt() (*node, error) {
	var alts []*node
	for {
		n, err := p.parseConcat()
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
		if p.more() && p.src[p.pos] == '|' {
			p.pos++
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &node{kind: nAlt, subs: alts}, nil
}

func (p *parser) parseConcat() (*node, error) {
	var items []*node
	for p.more() {
		c := p.src[p.pos]
		if c == '|' || c == ')' {
			break
		}
		atom, err := p.parseAtom()
		if err != nil {
			return nil, err
		}
		if atom == nil { // comment or spliced text
			continue
		}
		atom, err = p.parseQuantifiers(atom)
		if err != nil {
			return nil, err
		}
		items = append(items, atom)
	}
	switch len(items) {
	case 0:
		return &node{kind: nEmpty}, nil
	case 1:
		return items[0], nil
	}
	return &node{kind: nConcat, subs: items}, nil
}

func isQuantStart(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	switch s[i] {
	case '*', '+', '?':
		return true
	case '{':
		_, _, _, ok := parseBraces(s, i)
		return ok
	}
	return false
}

// parseBraces reads {m}, {m,}, {,n}, {m,n} at s[i] the way Python does; ok is
// false when the brace is a literal.
func parseBraces(s string, i int) (lo, hi, end int, ok bool) {
	j := i + 1
	if j < len(s) && s[j] == '}' {
		return 0, 0, 0, false
	}
	a := j
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	loS := s[a:j]
	hiS := loS
	comma := false
	if j < len(s) && s[j] == ',' {
		comma = true
		j++
		b := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		hiS = s[b:j]
	}
	if j >= len(s) || s[j] != '}' {
		return 0, 0, 0, false
	}
	lo, hi = 0, -1
	if loS != "" {
		lo = atoiCap(loS)
	}
	if hiS != "" {
		hi = atoiCap(hiS)
	} else if !comma {
		hi = lo
	}
	return lo, hi, j + 1, true
}

func atoiCap(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
		if n > 1<<20 {
			return 1 << 20
		}
	}
	return n
}

const maxRepeat = 1000

func (p *parser) parseQuantifiers(atom *node) (*node, error) {
	quantified := false
	for p.more() {
		c := p.src[p.pos]
		var lo, hi int
		switch c {
		case '*':
			lo, hi = 0, -1
			p.pos++
		case '+':
			lo, hi = 1, -1
			p.pos++
		case '?':
			lo, hi = 0, 1
			p.pos++
		case '{':
			l, h, end, ok := parseBraces(p.src, p.pos)
			if !ok {
				return atom, nil
			}
			lo, hi = l, h
			p.pos = end
			if hi >= 0 && hi < lo {
				return nil, p.errf("min repeat greater than max repeat")
			}
			if lo > maxRepeat || hi > maxRepeat {
				return nil, fmt.Errorf("%w: repeat count above %d", ErrUnsupported, maxRepeat)
			}
		default:
			return atom, nil
		}
		if quantified {
			return nil, p.errf("multiple repeat")
		}
		if atom.kind == nAssert || atom.kind == nEmpty {
			return nil, p.errf("nothing to repeat")
		}
		greedy := true
		if p.more() && p.src[p.pos] == '?' {
			greedy = false
			p.pos++
		} else if p.more() && p.src[p.pos] == '+' {
			return nil, fmt.Errorf("%w: possessive quantifier", ErrUnsupported)
		}
		atom = &node{kind: nRepeat, subs: []*node{atom}, min: lo, max: hi, greedy: greedy}
		quantified = true
	}
	return atom, nil
}

func (p *parser) parseAtom() (*node, error) {
	c := p.src[p.pos]
	switch c {
	case regionStart:
		return p.parseRegion()
	case regionEnd:
		return nil, p.errf("stray region end")
	case marker:
		d, end, err := p.markerAt(p.pos)
		if err != nil {
			return nil, err
		}
		// %ExY depends on the time of the search, so it is always an
		// instruction; quantifying it quantifies its one group either way.
		if !d.dynamic && (!p.useDirs || d.enum == nil || isQuantStart(p.src, end)) {
			p.src = p.src[:p.pos] + d.regex + p.src[end:]
			return nil, nil
		}
		return p.parseDirective(d, end)
	case '(':
		return p.parseGroup()
	case '[':
		p.pos++
		cls, err := p.parseClass()
		if err != nil {
			return nil, err
		}
		return &node{kind: nClass, cls: cls}, nil
	case '.':
		p.pos++
		return &node{kind: nClass, cls: &charClass{isDot: true, dotNL: p.flags.dotAll}}, nil
	case '^':
		p.pos++
		return &node{kind: nAssert, assert: aBegin, multi: p.flags.multi}, nil
	case '$':
		p.pos++
		return &node{kind: nAssert, assert: aEnd, multi: p.flags.multi}, nil
	case '\\':
		return p.parseEscape()
	case '*', '+', '?':
		return nil, p.errf("nothing to repeat")
	case '{':
		if _, _, _, ok := parseBraces(p.src, p.pos); ok {
			return nil, p.errf("nothing to repeat")
		}
	}
	r, w := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += w
	return p.lit(r), nil
}

func (p *parser) lit(r rune) *node {
	return &node{kind: nRune, r: r, fold: p.flags.fold && unicode.SimpleFold(r) != r}
}

// parseDirective compiles a directive to one instruction. Its regex text is
// still parsed (with the same group numbering and names) to give the
// instruction its group number and the analyses their facts.
func (p *parser) parseDirective(d *directive, end int) (*node, error) {
	sub := &parser{src: d.regex, flags: p.flags, groups: p.groups, names: p.names, open: p.open, useDirs: false, depth: p.depth}
	n, err := sub.parseAlt()
	if err != nil {
		return nil, err // e.g. a group name used twice
	}
	if sub.more() {
		return nil, fmt.Errorf("internal: directive %%%s does not parse", d.key)
	}
	p.pos = end
	g, ok := p.names[d.group]
	if !ok {
		return nil, fmt.Errorf("internal directive %%%s: no group %q", d.key, d.group)
	}
	return &node{kind: nDir, dir: d, group: g, fold: p.flags.fold, subs: []*node{n}}, nil
}

func (p *parser) newGroup(name string) (int, error) {
	if name != "" {
		if _, dup := p.names[name]; dup {
			return 0, fmt.Errorf("%w: redefinition of group name %q", ErrSyntax, name)
		}
	}
	*p.groups++
	g := *p.groups
	if name != "" {
		p.names[name] = g
	}
	return g, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || isASCIILetter(r) || r >= utf8.RuneSelf && isWordRune(r) || i > 0 && isDigitRune(r)) {
			return false
		}
	}
	return true
}

func (p *parser) readName(term byte) (string, error) {
	start := p.pos
	for p.more() && p.src[p.pos] != term {
		if p.src[p.pos] == marker {
			if err := p.splice(); err != nil {
				return "", err
			}
			continue
		}
		p.pos++
	}
	if !p.more() {
		return "", p.errf("missing %c, unterminated name", term)
	}
	name := p.src[start:p.pos]
	p.pos++
	return name, nil
}

func (p *parser) groupRef(name string) (int, error) {
	if g, ok := p.names[name]; ok {
		return g, nil
	}
	if n, err := strconv.Atoi(name); err == nil && n > 0 && isDigits(name) {
		p.refs = append(p.refs, n)
		return n, nil
	}
	return 0, fmt.Errorf("%w: unknown group name %q", ErrSyntax, name)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func (p *parser) parseGroup() (*node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 200 {
		return nil, fmt.Errorf("%w: nesting too deep", ErrUnsupported)
	}
	p.pos++ // (
	saved := p.flags
	defer func() { p.flags = saved }()
	if !strings.HasPrefix(p.src[p.pos:], "?") {
		g, err := p.newGroup("")
		if err != nil {
			return nil, err
		}
		return p.groupBody(&node{kind: nGroup, group: g})
	}
	p.pos++ // ?
	if !p.more() {
		return nil, p.errf("unexpected end of pattern")
	}
	switch c := p.src[p.pos]; c {
	case ':':
		p.pos++
		return p.groupBody(nil)
	case 'P':
		p.pos++
		if !p.more() {
			return nil, p.errf("unexpected end of pattern")
		}
		switch p.src[p.pos] {
		case '<':
			p.pos++
			name, err := p.readName('>')
			if err != nil {
				return nil, err
			}
			if !isIdent(name) {
				return nil, fmt.Errorf("%w: bad character in group name %q", ErrSyntax, name)
			}
			g, err := p.newGroup(name)
			if err != nil {
				return nil, err
			}
			return p.groupBody(&node{kind: nGroup, group: g})
		case '=':
			p.pos++
			name, err := p.readName(')')
			if err != nil {
				return nil, err
			}
			g, ok := p.names[name]
			if !ok {
				return nil, fmt.Errorf("%w: unknown group name %q", ErrSyntax, name)
			}
			if p.open[g] {
				return nil, fmt.Errorf("%w: cannot refer to an open group", ErrSyntax)
			}
			return &node{kind: nBackref, group: g, fold: p.flags.fold}, nil
		}
		return nil, p.errf("unknown extension ?P%c", p.src[p.pos])
	case '=', '!':
		p.pos++
		return p.groupBody(&node{kind: nLook, neg: c == '!'})
	case '<':
		p.pos++
		if p.more() && (p.src[p.pos] == '=' || p.src[p.pos] == '!') {
			neg := p.src[p.pos] == '!'
			p.pos++
			return p.groupBody(&node{kind: nLook, neg: neg, behind: true})
		}
		return nil, p.errf("unknown extension ?<")
	case '#':
		end := strings.IndexByte(p.src[p.pos:], ')')
		if end < 0 {
			return nil, p.errf("missing ), unterminated comment")
		}
		p.pos += end + 1
		return nil, nil
	case '(':
		p.pos++
		name, err := p.readName(')')
		if err != nil {
			return nil, err
		}
		g, err := p.groupRef(name)
		if err != nil {
			return nil, err
		}
		body, err := p.parseAlt()
		if err != nil {
			return nil, err
		}
		if !p.more() || p.src[p.pos] != ')' {
			return nil, p.errf("missing ), unterminated subpattern")
		}
		p.pos++
		yes, no := body, &node{kind: nEmpty}
		if body.kind == nAlt {
			if len(body.subs) > 2 {
				return nil, fmt.Errorf("%w: conditional with more than two branches", ErrSyntax)
			}
			yes, no = body.subs[0], body.subs[1]
		}
		return &node{kind: nCond, group: g, subs: []*node{yes, no}}, nil
	default:
		// Scoped flags (?i:...) / (?-i:...); global flags elsewhere are an error.
		start := p.pos
		for p.more() && (isASCIILetter(rune(p.src[p.pos])) || p.src[p.pos] == '-') {
			p.pos++
		}
		if !p.more() {
			return nil, p.errf("missing -, : or )")
		}
		spec := p.src[start:p.pos]
		if p.src[p.pos] == ')' {
			return nil, fmt.Errorf("%w: global flags not at the start of the expression", ErrSyntax)
		}
		if p.src[p.pos] != ':' || spec == "" {
			return nil, p.errf("unknown extension ?%s", spec)
		}
		p.pos++
		on, off, _ := strings.Cut(spec, "-")
		f, err := applyFlags(p.flags, on, off)
		if err != nil {
			return nil, err
		}
		p.flags = f
		return p.groupBody(nil)
	}
}

// groupBody parses up to the closing parenthesis; wrap (if not nil) receives
// the body as its only sub-node.
func (p *parser) groupBody(wrap *node) (*node, error) {
	if wrap != nil && wrap.kind == nGroup {
		p.open[wrap.group] = true
	}
	body, err := p.parseAlt()
	if err != nil {
		return nil, err
	}
	if !p.more() || p.src[p.pos] != ')' {
		return nil, p.errf("missing ), unterminated subpattern")
	}
	p.pos++
	if wrap == nil {
		if body.kind == nAssert || body.kind == nEmpty {
			// (?:^) may be repeated, a bare ^ may not
			return &node{kind: nConcat, subs: []*node{body}}, nil
		}
		return body, nil
	}
	if wrap.kind == nGroup {
		delete(p.open, wrap.group)
	}
	wrap.subs = []*node{body}
	if wrap.kind == nLook && wrap.behind {
		w, ok := fixedWidth(body)
		if !ok {
			return nil, fmt.Errorf("%w: look-behind requires fixed-width pattern", ErrSyntax)
		}
		wrap.max = w
	}
	return wrap, nil
}

// fixedWidth returns the width in runes of a node that always consumes the
// same number of runes.
func fixedWidth(n *node) (int, bool) {
	switch n.kind {
	case nEmpty, nAssert, nLook:
		return 0, true
	case nRune, nClass:
		return 1, true
	case nConcat:
		t := 0
		for _, s := range n.subs {
			w, ok := fixedWidth(s)
			if !ok {
				return 0, false
			}
			t += w
		}
		return t, true
	case nAlt, nCond:
		w0 := -1
		for _, s := range n.subs {
			w, ok := fixedWidth(s)
			if !ok || (w0 >= 0 && w != w0) {
				return 0, false
			}
			w0 = w
		}
		return max(w0, 0), true
	case nGroup:
		return fixedWidth(n.subs[0])
	case nRepeat:
		if n.max != n.min {
			return 0, false
		}
		w, ok := fixedWidth(n.subs[0])
		return w * n.min, ok
	case nDir, nScan:
		return fixedWidth(n.subs[0])
	}
	return 0, false
}

func (p *parser) parseEscape() (*node, error) {
	p.pos++ // backslash
	if !p.more() {
		return nil, p.errf("bad escape (end of pattern)")
	}
	if p.src[p.pos] == marker {
		if err := p.splice(); err != nil {
			return nil, err
		}
	}
	c := p.src[p.pos]
	switch c {
	case 'A':
		p.pos++
		return &node{kind: nAssert, assert: aBeginText}, nil
	case 'Z':
		p.pos++
		return &node{kind: nAssert, assert: aEndText}, nil
	case 'b':
		p.pos++
		return &node{kind: nAssert, assert: aWordB}, nil
	case 'B':
		p.pos++
		return &node{kind: nAssert, assert: aNotWordB}, nil
	case 'd', 'D', 'w', 'W', 's', 'S':
		p.pos++
		cls := &charClass{props: propOf(c)}
		cls.finish()
		return &node{kind: nClass, cls: cls}, nil
	}
	if c >= '1' && c <= '9' {
		// group reference, or an octal escape of three digits
		if p.pos+2 < len(p.src) && isOct(c) && isOct(p.src[p.pos+1]) && isOct(p.src[p.pos+2]) {
			v, _ := strconv.ParseUint(p.src[p.pos:p.pos+3], 8, 32)
			p.pos += 3
			if v > 0o377 {
				return nil, p.errf("octal escape value outside of range 0-0o377")
			}
			return p.lit(rune(v)), nil
		}
		end := p.pos + 1
		if end < len(p.src) && p.src[end] >= '0' && p.src[end] <= '9' {
			end++
		}
		g, _ := strconv.Atoi(p.src[p.pos:end])
		p.pos = end
		if g > *p.groups {
			return nil, fmt.Errorf("%w: invalid group reference %d", ErrSyntax, g)
		}
		if p.open[g] {
			return nil, fmt.Errorf("%w: cannot refer to an open group", ErrSyntax)
		}
		return &node{kind: nBackref, group: g, fold: p.flags.fold}, nil
	}
	r, err := p.escapedRune(false)
	if err != nil {
		return nil, err
	}
	return p.lit(r), nil
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }

func propOf(c byte) uint8 {
	switch c {
	case 'd':
		return propDigit
	case 'D':
		return propNotDigit
	case 'w':
		return propWord
	case 'W':
		return propNotWord
	case 's':
		return propSpace
	}
	return propNotSpace
}

// escapedRune reads the character escape at p.pos (after the backslash).
func (p *parser) escapedRune(inClass bool) (rune, error) {
	c := p.src[p.pos]
	switch c {
	case 'a':
		p.pos++
		return '\a', nil
	case 'f':
		p.pos++
		return '\f', nil
	case 'n':
		p.pos++
		return '\n', nil
	case 'r':
		p.pos++
		return '\r', nil
	case 't':
		p.pos++
		return '\t', nil
	case 'v':
		p.pos++
		return '\v', nil
	case 'b':
		if inClass {
			p.pos++
			return '\b', nil
		}
	case 'x', 'u', 'U':
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if p.pos+1+n > len(p.src) {
			return 0, p.errf("incomplete escape \\%c", c)
		}
		h := p.src[p.pos+1 : p.pos+1+n]
		v, err := strconv.ParseUint(h, 16, 32)
		if err != nil || v > utf8.MaxRune {
			return 0, p.errf("bad escape \\%c%s", c, h)
		}
		p.pos += 1 + n
		return rune(v), nil
	case '0':
		end := p.pos + 1
		for end < len(p.src) && end < p.pos+3 && isOct(p.src[end]) {
			end++
		}
		v, _ := strconv.ParseUint(p.src[p.pos:end], 8, 32)
		p.pos = end
		return rune(v), nil
	}
	if c < utf8.RuneSelf && (isASCIILetter(rune(c)) || c >= '0' && c <= '9') {
		return 0, p.errf("bad escape \\%c", c)
	}
	r, w := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += w
	return r, nil
}

func (p *parser) parseClass() (*charClass, error) {
	cls := &charClass{fold: p.flags.fold}
	if p.more() && p.src[p.pos] == '^' {
		cls.neg = true
		p.pos++
	}
	first := true
	for {
		if !p.more() {
			return nil, p.errf("unterminated character set")
		}
		c := p.src[p.pos]
		if c == marker {
			if err := p.splice(); err != nil {
				return nil, err
			}
			continue
		}
		if c == ']' && !first {
			p.pos++
			break
		}
		first = false
		lo, isProp, err := p.classAtom(cls)
		if err != nil {
			return nil, err
		}
		if isProp {
			continue
		}
		// range?
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			if p.src[p.pos] == marker {
				if err := p.splice(); err != nil {
					return nil, err
				}
			}
			hi, hiProp, err := p.classAtom(cls)
			if err != nil {
				return nil, err
			}
			if hiProp {
				return nil, p.errf("bad character range")
			}
			if hi < lo {
				return nil, p.errf("bad character range")
			}
			cls.addRange(lo, hi)
			continue
		}
		cls.addRange(lo, lo)
	}
	cls.finish()
	return cls, nil
}

func (c *charClass) addRange(lo, hi rune) {
	for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
		c.addASCII(r)
	}
	if hi >= utf8.RuneSelf {
		c.ranges = append(c.ranges, runeRange{max(lo, utf8.RuneSelf), hi})
	}
}

// classAtom reads one member of a set; for \d-like escapes it records the
// property in cls and reports isProp.
func (p *parser) classAtom(cls *charClass) (rune, bool, error) {
	c := p.src[p.pos]
	if c != '\\' {
		r, w := utf8.DecodeRuneInString(p.src[p.pos:])
		p.pos += w
		return r, false, nil
	}
	p.pos++
	if !p.more() {
		return 0, false, p.errf("bad escape (end of pattern)")
	}
	if p.src[p.pos] == marker {
		if err := p.splice(); err != nil {
			return 0, false, err
		}
	}
	switch e := p.src[p.pos]; e {
	case 'd', 'D', 'w', 'W', 's', 'S':
		p.pos++
		cls.props |= propOf(e)
		return 0, true, nil
	}
	if e := p.src[p.pos]; isOct(e) {
		end := p.pos
		for end < len(p.src) && end < p.pos+3 && isOct(p.src[end]) {
			end++
		}
		v, _ := strconv.ParseUint(p.src[p.pos:end], 8, 32)
		if v > 0o377 {
			return 0, false, p.errf("octal escape value outside of range 0-0o377")
		}
		p.pos = end
		return rune(v), false, nil
	}
	r, err := p.escapedRune(true)
	return r, false, err
}

// parseRegion reads a default pattern wrapped for its scanner. Without
// directive instructions, or when a quantifier follows (it would apply to the
// last atom of the text, not to the whole), the wrapping is dropped.
func (p *parser) parseRegion() (*node, error) {
	i := p.pos
	j := strings.IndexByte(p.src[i+1:], regionStart)
	if j < 0 {
		return nil, p.errf("stray region start")
	}
	idx, err := strconv.Atoi(p.src[i+1 : i+1+j])
	if err != nil || idx < 0 || idx >= len(scanners) {
		return nil, p.errf("bad region")
	}
	bodyStart := i + 2 + j
	k := strings.IndexByte(p.src[bodyStart:], regionEnd)
	if k < 0 {
		return nil, p.errf("unterminated region")
	}
	bodyEnd := bodyStart + k
	body := p.src[bodyStart:bodyEnd]
	if !p.useDirs || isQuantStart(p.src, bodyEnd+1) {
		p.src = p.src[:i] + body + p.src[bodyEnd+1:]
		return nil, nil
	}
	src := p.src
	p.src, p.pos = body, 0
	n, err := p.parseAlt()
	if err == nil && p.more() {
		err = p.errf("unbalanced parenthesis")
	}
	p.src, p.pos = src, bodyEnd+1
	if err != nil {
		return nil, err
	}
	sc := &scanners[idx]
	groups := make([]int, len(sc.groups))
	for gi, name := range sc.groups {
		g, ok := p.names[name]
		if !ok {
			return nil, fmt.Errorf("internal: scanner group %q missing", name)
		}
		groups[gi] = g
	}
	return &node{kind: nScan, scan: idx, groups: groups, fold: p.flags.fold, subs: []*node{n}}, nil
}

// stripRegions removes scanner region markers, giving the regex text as
// fail2ban sees it.
func stripRegions(s string) string {
	if strings.IndexByte(s, regionStart) < 0 {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case regionStart:
			j := strings.IndexByte(s[i+1:], regionStart)
			i += j + 1
		case regionEnd:
		default:
			sb.WriteByte(s[i])
		}
	}
	return sb.String()
}
