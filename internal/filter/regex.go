package filter

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"github.com/logjail/logjail/internal/rx"
)

// Engine names the regex engine a pattern runs on.
type Engine string

const (
	// EngineRE2 is Go's regexp: linear time in the length of the line, whatever the line holds.
	EngineRE2 Engine = "re2"
	// EngineBacktrack is dlclark/regexp2, used only for patterns RE2 cannot express (look-around,
	// back-references, conditionals). A per-line timeout bounds it.
	EngineBacktrack Engine = "backtrack"
)

// group indexes of the captures the engine gives meaning to; -1 when the regex lacks the group.
type groups struct {
	ip4, ip6, dns, cidr, fid, user, content    int
	nofail, mlfid, mlfforget, mlfgained, fport int
	skiplines                                  []int
	names                                      []string // every group's name by index ("" for unnamed)
	custom                                     bool     // the regex has named groups beyond the known ones
}

func (g *groups) hasHost() bool {
	return g.ip4 >= 0 || g.ip6 >= 0 || g.dns >= 0 || g.fid >= 0 || g.mlfid >= 0
}

func newGroups(names []string) groups {
	g := groups{ip4: -1, ip6: -1, dns: -1, cidr: -1, fid: -1, user: -1, content: -1,
		nofail: -1, mlfid: -1, mlfforget: -1, mlfgained: -1, fport: -1, names: names}
	for i, n := range names {
		switch {
		case n == "":
		case n == "ip4":
			g.ip4 = i
		case n == "ip6":
			g.ip6 = i
		case n == "dns":
			g.dns = i
		case n == "cidr":
			g.cidr = i
		case n == "fid":
			g.fid = i
		case n == "user":
			g.user = i
		case n == "content":
			g.content = i
		case n == "nofail":
			g.nofail = i
		case n == "mlfid":
			g.mlfid = i
		case n == "mlfforget":
			g.mlfforget = i
		case n == "mlfgained":
			g.mlfgained = i
		case n == "fport":
			g.fport = i
		case strings.HasPrefix(n, "skiplines"):
			g.skiplines = append(g.skiplines, i)
		default:
			g.custom = true
		}
	}
	return g
}

// Regex is one compiled failregex, ignoreregex or prefregex.
type Regex struct {
	Source   string // as written in the filter, tags unexpanded
	Expanded string // after tag expansion and Python-to-Go rewriting
	Engine   Engine
	Unknown  []string // <tags> that were not recognised and match literally

	re2  *rx.Regexp // RE2 syntax, run by our faster backtracker (same results as regexp)
	re2b *regexp2.Regexp
	// lit is a literal the line must contain for the regex to match (empty: none known). A
	// strings.Contains on it rejects most lines far faster than running the regex.
	lit    string
	prefix bool     // lit must be at the very start
	anyLit []string // when lit is empty: one of these must be in the line (from an alternation)
	// heads, when set, replaces lit and anyLit: the text must start with one of these (a regex
	// anchored at ^ that opens with fixed words, such as "^(?:Invalid|Illegal) user "). A
	// check at the start is both cheaper and more selective than a search through the line.
	heads []string
	g     groups
	// head is the regex without a final "(?P<name>.+)$" (prefregex's <F-CONTENT>.+</F-CONTENT>$):
	// that group is always "the rest of the line", and letting the engine walk it costs as much
	// as the rest of the regex. nil when the regex does not end so.
	head *rx.Regexp
}

// splitRest sets head when the regex ends with a named group ".+" and "$", that group being
// the last one, in single-line mode (where '.' matches every remaining byte).
func (r *Regex) splitRest(multiline bool) {
	if multiline || len(r.g.names) < 2 {
		return
	}
	last := len(r.g.names) - 1
	suffix := "(?P<" + r.g.names[last] + ">.+)$"
	if r.g.names[last] == "" || !strings.HasSuffix(r.Expanded, suffix) {
		return
	}
	// the group stays, empty, so that its index is reported where the rest of the line begins
	head, err := rx.Compile(strings.TrimSuffix(r.Expanded, suffix) + "(?P<" + r.g.names[last] + ">)")
	if err != nil || head.NumSubexp() != last {
		return
	}
	r.head = head
}

// ErrNoHostGroup is returned for a failregex that captures no host and no failure ID.
var ErrNoHostGroup = errors.New("no host group: the regex needs <HOST> (or <ADDR>, <IP4>, <IP6>, <DNS>, <SUBNET>, <F-ID>)")

// compileRegex compiles a fail2ban regex. multiline makes ^ and $ match at line breaks, as
// fail2ban does when maxlines > 1. timeout bounds one match on the backtracking engine.
func compileRegex(src string, dns UseDNS, multiline bool, timeout time.Duration) (*Regex, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty regex")
	}
	exp, unknown, _ := expandTags(src, dns)
	exp = pyToGo(exp)
	r := &Regex{Source: src, Expanded: exp, Unknown: unknown}
	flags := ""
	if multiline {
		flags = "(?m)"
	}
	re, err := rx.Compile(flags + exp)
	if err == nil {
		r.Engine = EngineRE2
		r.re2 = re
		r.g = newGroups(re.SubexpNames())
		r.lit, r.prefix = requiredLiteral(flags + exp)
		if r.heads = requiredHeads(flags + exp); r.heads != nil {
			r.lit, r.prefix = "", false
		} else if !r.prefix {
			// a literal at the start already rejects cheaply; checking a set of words on top of
			// it costs more than it saves
			r.anyLit = requiredAny(flags + exp)
		}
		r.splitRest(multiline)
		return r, nil
	}
	if !needsBacktrack(err) {
		return nil, explainSyntax(src, err)
	}
	opts := regexp2.None
	if multiline {
		opts |= regexp2.Multiline
	}
	bre, err2 := regexp2.Compile(toRegexp2(exp), opts)
	if err2 != nil {
		return nil, fmt.Errorf("%w (and the backtracking engine: %v)", explainSyntax(src, err), err2)
	}
	bre.MatchTimeout = timeout
	r.Engine = EngineBacktrack
	r.re2b = bre
	// regexp2 numbers groups like .NET: unnamed first, then named. Build names by number.
	nums := bre.GetGroupNumbers()
	max := 0
	for _, n := range nums {
		if n > max {
			max = n
		}
	}
	names := make([]string, max+1)
	for _, n := range nums {
		if name := bre.GroupNameFromNumber(n); name != fmt.Sprint(n) {
			names[n] = name
		}
	}
	r.g = newGroups(names)
	return r, nil
}

// explainSyntax turns RE2's terse message into one that says where in the regex, as the admin
// wrote it, the problem is (RE2 reports the offending piece of the expanded regex, not a column).
func explainSyntax(src string, err error) error {
	var se *syntax.Error
	if !asSyntaxError(err, &se) {
		return err
	}
	col := -1
	switch se.Code {
	case syntax.ErrMissingParen:
		col = unbalanced(src, '(', ')')
	case syntax.ErrUnexpectedParen:
		col = unbalanced(src, ')', '(')
	case syntax.ErrMissingBracket:
		col = strings.LastIndexByte(src, '[')
	default:
		col = strings.Index(src, se.Expr)
	}
	if col < 0 {
		return fmt.Errorf("invalid regex: %s: %q", se.Code, se.Expr)
	}
	return fmt.Errorf("invalid regex: %s at column %d: %s", se.Code, col+1, excerpt(src, col))
}

// excerpt shows the regex from col on, shortened.
func excerpt(src string, col int) string {
	s := src[col:]
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// unbalanced returns the index of the first open (for '(') that is never closed, or of the
// first close that was never opened (for ')'), skipping escapes and character classes; -1 if
// none.
func unbalanced(src string, which, other byte) int {
	var opens []int
	inClass := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(src) && src[i+1] == '^' {
				i++
			}
			if i+1 < len(src) && src[i+1] == ']' {
				i++
			}
		case c == '(':
			opens = append(opens, i)
		case c == ')':
			if len(opens) == 0 {
				if which == ')' {
					return i
				}
				continue
			}
			opens = opens[:len(opens)-1]
		}
	}
	if which == '(' && len(opens) > 0 {
		return opens[0]
	}
	_ = other
	return -1
}

func asSyntaxError(err error, se **syntax.Error) bool { return errors.As(err, se) }

// match runs the regex on s and returns the submatch index pairs, or nil. Errors of the
// backtracking engine (its timeout) count as no match and are returned for counting.
//
// The indexes are appended to dst[:0] when the regex runs on our engine (nil dst allocates).
func (r *Regex) match(m *rx.Machine, dst []int, s string) ([]int, error) {
	if r.heads != nil && !hasAnyPrefix(s, r.heads) {
		return nil, nil
	}
	if r.anyLit != nil && !containsAny(s, r.anyLit) {
		return nil, nil
	}
	if r.lit != "" {
		if r.prefix {
			if !strings.HasPrefix(s, r.lit) {
				return nil, nil
			}
		} else if !strings.Contains(s, r.lit) {
			return nil, nil
		}
	}
	if r.head != nil {
		// the regex minus a final (?P<g>.+)$: g is the rest of the line, when not empty
		if idx := r.head.AppendStringSubmatchIndex(dst, m, s); idx != nil && idx[1] < len(s) {
			idx[1], idx[len(idx)-1] = len(s), len(s)
			return idx, nil
		}
		// the head's preferred match took the whole line: let the full regex decide
	}
	if r.re2 != nil {
		return r.re2.AppendStringSubmatchIndex(dst, m, s), nil
	}
	bm, err := r.re2b.FindStringMatch(s)
	if err != nil || bm == nil {
		return nil, err
	}
	return backtrackIndexes(bm, len(r.g.names), s), nil
}

// backtrackIndexes converts a regexp2 match to byte-offset index pairs like regexp's.
func backtrackIndexes(m *regexp2.Match, n int, s string) []int {
	idx := make([]int, 2*n)
	for i := range idx {
		idx[i] = -1
	}
	// regexp2 reports rune offsets; map them to byte offsets once.
	var runeToByte []int
	conv := func(r int) int {
		if runeToByte == nil {
			runeToByte = make([]int, 0, len(s)+1)
			for b := range s {
				runeToByte = append(runeToByte, b)
			}
			runeToByte = append(runeToByte, len(s))
		}
		if r < len(runeToByte) {
			return runeToByte[r]
		}
		return len(s)
	}
	for i := 0; i < n; i++ {
		g := m.GroupByNumber(i)
		if g == nil || len(g.Captures) == 0 {
			continue
		}
		// the embedded Capture is the last one, as Python reports a repeated group
		idx[2*i] = conv(g.Index)
		idx[2*i+1] = conv(g.Index + g.Length)
	}
	return idx
}

// requiredLiteral finds the longest literal that every match must contain, and whether it must
// stand at the start of the text. It looks only at the top-level concatenation (through
// capturing groups), which is where fail2ban regexes keep their fixed words.
func requiredLiteral(expr string) (string, bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	var subs []*syntax.Regexp
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	} else {
		subs = []*syntax.Regexp{re}
	}
	best, bestPrefix := "", false
	atStart := false // everything before this sub is ^ (begin of text)
	for i, s := range subs {
		if i == 0 && s.Op == syntax.OpBeginText {
			atStart = true
			continue
		}
		for s.Op == syntax.OpCapture && len(s.Sub) == 1 {
			s = s.Sub[0]
		}
		if s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0 {
			lit := string(s.Rune)
			if len(lit) > len(best) {
				best, bestPrefix = lit, atStart && (i == 1)
			}
		}
	}
	if len(best) < 3 && !bestPrefix {
		return "", false
	}
	return best, bestPrefix
}

// MatchString reports whether the regex matches s (for timing and tools; the matcher uses the
// submatch form).
func (r *Regex) MatchString(s string) bool {
	idx, _ := r.match(nil, nil, s)
	return idx != nil
}

// names2idx returns the index of the named group, or -1.
func (g *groups) names2idx(name string) int {
	for i, n := range g.names {
		if n == name {
			return i
		}
	}
	return -1
}

// containsAny reports whether s contains one of lits.
func containsAny(s string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

// maxAnyLits bounds the prefilter set: past it, checking them all costs more than it saves.
const maxAnyLits = 64

// requiredAny finds a set of literals of which every match must contain at least one: from an
// alternation of words such as badbots' list of user agents, "(?:masscan|zgrab|sqlmap)". nil
// when it finds none worth checking (each must be 3 bytes or longer, case-sensitive).
func requiredAny(expr string) []string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	set, ok := anyOf(re.Simplify(), true)
	if !ok || len(set) < 2 || len(set) > maxAnyLits { // a single literal is requiredLiteral's job
		return nil
	}
	return set
}

// anyOf returns literals of which any match of re contains one; ok false when unknown. At the
// top level a set of several words (an alternation) is preferred to a single one.
func anyOf(re *syntax.Regexp, top bool) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 || len(string(re.Rune)) < 3 {
			return nil, false
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCapture, syntax.OpPlus:
		return anyOf(re.Sub[0], top)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return anyOf(re.Sub[0], top)
		}
	case syntax.OpConcat:
		// any element that must match gives a set; keep the smallest set of longest words
		var best []string
		for _, sub := range re.Sub {
			set, ok := anyOf(sub, top)
			if !ok {
				continue
			}
			switch {
			case best == nil:
				best = set
			case top && (len(set) > 1) != (len(best) > 1):
				if len(set) > 1 {
					best = set
				}
			case len(set) < len(best) || (len(set) == len(best) && minLen(set) > minLen(best)):
				best = set
			}
		}
		return best, best != nil
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			if sub.Op == syntax.OpNoMatch || (sub.Op == syntax.OpCharClass && len(sub.Rune) == 0) {
				continue // a branch that never matches needs no literal
			}
			set, ok := anyOf(sub, false)
			if !ok {
				return nil, false
			}
			out = append(out, set...)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// hasAnyPrefix reports whether s starts with one of heads.
func hasAnyPrefix(s string, heads []string) bool {
	for _, h := range heads {
		if strings.HasPrefix(s, h) {
			return true
		}
	}
	return false
}

// Bounds of the set of openings: past them the check costs more than it saves.
const (
	maxHeads   = 16
	maxHeadLen = 24
)

// requiredHeads finds the words one of which every match must start with, for a regex anchored
// at the start of the text (^ without (?m)): "^(?:Invalid|Illegal) user <F-USER>..." gives
// "Invalid user " and "Illegal user ". nil when the regex is not so anchored, when a match may
// start with anything (a class, an optional part), or when the set grows past maxHeads.
func requiredHeads(expr string) []string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return nil
	}
	set, _ := headsOf(&syntax.Regexp{Op: syntax.OpConcat, Sub: re.Sub[1:]})
	if len(set) == 0 || len(set) > maxHeads {
		return nil
	}
	for _, h := range set {
		if h == "" {
			return nil // some match starts with no fixed text
		}
	}
	return set
}

// headsOf returns the fixed texts one of which every match of re starts with, and whether
// each of them is a whole match of re (so that what follows re may extend them). nil, false
// when re can start with anything; a set holding "" when it may start with no fixed text.
func headsOf(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return []string{""}, false
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCapture:
		return headsOf(re.Sub[0])
	case syntax.OpPlus, syntax.OpRepeat:
		if re.Op == syntax.OpRepeat && re.Min < 1 {
			break
		}
		set, _ := headsOf(re.Sub[0])
		return set, false
	case syntax.OpQuest:
		set, whole := headsOf(re.Sub[0])
		if !whole {
			return []string{""}, false
		}
		return append(set, ""), true
	case syntax.OpCharClass:
		var set []string
		for i := 0; i < len(re.Rune); i += 2 {
			for c := re.Rune[i]; c <= re.Rune[i+1]; c++ {
				if c >= utf8.RuneSelf || len(set) >= maxHeads {
					return []string{""}, false
				}
				set = append(set, string(c))
			}
		}
		return set, true
	case syntax.OpAlternate:
		var set []string
		whole := true
		for _, sub := range re.Sub {
			s, w := headsOf(sub)
			set = append(set, s...)
			whole = whole && w
			if len(set) > maxHeads {
				return []string{""}, false
			}
		}
		return set, whole
	case syntax.OpConcat:
		set := []string{""}
		for _, sub := range re.Sub {
			next, whole := headsOf(sub)
			if len(set)*len(next) > maxHeads {
				return set, false
			}
			var out []string
			for _, a := range set {
				for _, b := range next {
					if len(a)+len(b) > maxHeadLen {
						return set, false
					}
					out = append(out, a+b)
				}
			}
			set = out
			if !whole {
				return set, false
			}
		}
		return set, true
	}
	return []string{""}, false
}

func minLen(set []string) int {
	m := -1
	for _, s := range set {
		if m < 0 || len(s) < m {
			m = len(s)
		}
	}
	return m
}
