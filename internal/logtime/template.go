package logtime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrDuplicate is returned when two date patterns make the same template.
var ErrDuplicate = errors.New("duplicate date template")

type tmplKind uint8

const (
	kindPattern tmplKind = iota // %-directives and regex
	kindEpoch                   // seconds (or ms/us) since the epoch
	kindTAI64N                  // @4000... labels
)

// Template flags, as fail2ban derives them from the final regex.
const (
	flagWordEnd   = 1
	flagWordBegin = 2
	flagLineEnd   = 4
	flagLineBegin = 8
)

type beginMode uint8

const (
	beginNone beginMode = iota // no boundary added
	beginWord                  // (?=^|\b|\W) in front
	beginLine                  // ^(?:\W{0,2})? in front: {^LN-BEG}
)

// template is one compiled date format. Templates are immutable and shared
// between clones of a Detector.
type template struct {
	name      string
	pattern   string // pattern text for pattern templates, "" otherwise
	kind      tmplKind
	prog      *program
	flags     uint8
	weight    float64
	fields    []fieldRef
	valGroup  int  // epoch/TAI64N: group with the number
	longEpoch bool // LEPOCH: milli- or microseconds allowed
	wpll      bool // {WPLL}: 12-hour clock without am/pm, nearest reading before now
	none      bool // {NONE}
	regex     string
	direct    *directPlan // set when a scanner can run the whole template
	seq       *seqPlan    // set when the program is simple enough for seq.go
}

func (t *template) anchored() bool { return t.flags&(flagLineBegin|flagLineEnd) != 0 }

// builder makes templates; useDirs selects directive instructions (always,
// but for tests that compare with the reference expansion).
type builder struct {
	useDirs bool
}

// The automatic formats, in fail2ban 1.0.2's order. "EPOCH" and "TAI64N" are
// the special templates.
var defaultPatterns = [...]string{
	// ISO 8601 and simple dates: 2005-01-23T21:59:59.981746+01:00,
	// 2005/01/23 21:59:59 (nginx), 2005.01.23 21:59:59 (syslog-ng)
	`%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`,
	// syslog and ctime: [Sun ]Jan 23 21:59:59[.011][ 2005]
	`(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	// year after the day: [Sun ]Jan 23 2005 21:59:59[.011]
	`(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?`,
	// 23/01/2005 21:59:59, 23/01/05 21:59:59, 17-07-2008 17:23:25
	`%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S`,
	// Apache 23/Jan/2005:21:59:59 +0100, named 26-Jul-2007 15:20:52.252
	`%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?`,
	// CPanel 05/20/2008:01:57:39
	`%m/%d/%ExY:%H:%M:%S`,
	// 01-27-2012 16:22:44.252
	`%m-%d-%ExY %k:%M:%S(?:\.%f)?`,
	"EPOCH",
	// time only, at the start of the line
	`{^LN-BEG}%H:%M:%S`,
	// <09/16/08@05:03:30>
	`^<%m/%d/%Exy@%H:%M:%S>`,
	// MySQL 130322 11:46:11
	`%Exy%Exm%Exd  ?%H:%M:%S`,
	// Tomcat Jan 23, 2005 9:59:59 PM
	`%b %d, %ExY %I:%M:%S %p`,
	// ASSP Apr-27-13 02:33:06
	`^%b-%d-%Exy %k:%M:%S`,
	// basic ISO 20050123T215959, 20050123 215959
	`%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?`,
	// monit: a zone name in front, PDT Apr 16 21:05:29
	`(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	// a zone offset in front, +00:00 Jan 23 21:59:59
	`(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	"TAI64N",
}

// The number regexes of the epoch templates.
const (
	epochRE     = `\d{10,11}\b(?:\.\d{3,6})?`
	longEpochRE = `\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?`
)

// defaults builds the seventeen base templates.
func (b *builder) defaults() ([]*template, error) {
	out := make([]*template, 0, len(defaultPatterns))
	for _, p := range defaultPatterns {
		var t *template
		var err error
		switch p {
		case "EPOCH":
			t, err = b.epoch(beginNone, false)
		case "TAI64N":
			t, err = b.tai64n(beginNone)
		default:
			t, err = b.patternTemplate(p, beginWord, true)
		}
		if err != nil {
			return nil, fmt.Errorf("default date template %q: %w", p, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// allDefaults is the list automatic detection uses: first a line-start
// anchored copy (weighted up) of every default that is not anchored yet, then
// the defaults themselves.
func (b *builder) allDefaults(base []*template) ([]*template, error) {
	var anchored, plain []*template
	for _, t := range base {
		if !strings.HasPrefix(t.name, "{^LN-BEG}") && !strings.HasPrefix(t.name, "^") {
			var a *template
			var err error
			switch t.kind {
			case kindEpoch:
				a, err = b.epoch(beginLine, false)
			case kindTAI64N:
				a, err = b.tai64n(beginLine)
			default:
				a, err = b.patternTemplate("{^LN-BEG}"+t.pattern, beginWord, true)
			}
			if err != nil {
				return nil, err
			}
			if a.name != t.name {
				a.weight = 100
				anchored = append(anchored, a)
			}
		}
		plain = append(plain, t)
	}
	return append(anchored, plain...), nil
}

func (b *builder) epoch(begin beginMode, long bool) (*template, error) {
	re := epochRE
	name := "Epoch"
	if long {
		re, name = longEpochRE, "LongEpoch"
	}
	var regex string
	wb := begin
	if begin == beginNone {
		// at line start, just after a '[' that starts the line (nsd), or
		// in SELinux's audit(...)
		regex = `((?:^|(?<=^\[)|(?<=\baudit\())` + re + `)`
	} else {
		regex = `(` + re + `)`
	}
	t := &template{name: name, kind: kindEpoch, weight: 1, valGroup: 1, longEpoch: long}
	if err := b.setRegex(t, regex, wb, true); err != nil {
		return nil, err
	}
	return t, nil
}

// epochPattern is a datepattern holding {EPOCH} or {LEPOCH}: the number is
// group 2, the cut is the whole pattern.
func (b *builder) epochPattern(pattern string, long bool) (*template, error) {
	re := epochRE
	if long {
		re = longEpochRE
	}
	var sb strings.Builder
	sb.WriteByte('(')
	rest := pattern
	for {
		i := indexEpochToken(rest)
		if i < 0 {
			sb.WriteString(rest)
			break
		}
		sb.WriteString(rest[:i])
		sb.WriteString("(" + re + ")")
		j := strings.IndexByte(rest[i:], '}')
		rest = rest[i+j+1:]
	}
	sb.WriteByte(')')
	t := &template{name: pattern, kind: kindEpoch, weight: 1, valGroup: 2, longEpoch: long}
	if err := b.setRegex(t, sb.String(), beginWord, true); err != nil {
		return nil, err
	}
	return t, nil
}

// indexEpochToken finds {EPOCH} or {LEPOCH} (any case) not preceded by a
// backslash.
func indexEpochToken(s string) int {
	u := asciiUpper(s)
	for i := 0; i < len(u); i++ {
		if u[i] != '{' || (i > 0 && s[i-1] == '\\') {
			continue
		}
		if strings.HasPrefix(u[i:], "{EPOCH}") || strings.HasPrefix(u[i:], "{LEPOCH}") {
			return i
		}
	}
	return -1
}

func (b *builder) tai64n(begin beginMode) (*template, error) {
	t := &template{name: "TAI64N", kind: kindTAI64N, weight: 1, valGroup: 1}
	if err := b.setRegex(t, `@[0-9a-f]{24}`, begin, true); err != nil {
		return nil, err
	}
	return t, nil
}

// patternTemplate builds a template from a datepattern with %-directives.
func (b *builder) patternTemplate(pattern string, begin beginMode, wordEnd bool) (*template, error) {
	t := &template{pattern: pattern, kind: kindPattern, weight: 1}
	p := pattern
	if strings.HasPrefix(p, "{UNB}") {
		p = p[len("{UNB}"):]
		begin, wordEnd = beginNone, false
	}
	if begin != beginNone && strings.HasPrefix(p, "{^LN-BEG}") {
		p = p[len("{^LN-BEG}"):]
		begin = beginLine
	}
	if strings.Contains(p, "{WPLL}") {
		t.wpll = true
	}
	scan := -1
	if i := scannerFor(p); i >= 0 && b.useDirs {
		scan = i
		p = markRegion(p, i)
	}
	regex, name, err := expandDirectives(p)
	if err != nil {
		return nil, err
	}
	t.name = name
	gf := ""
	if hasAlphaDirective(p) {
		gf = "(?iu)"
	}
	body := regex
	if err := b.setRegex(t, gf+regex, begin, wordEnd); err != nil {
		return nil, err
	}
	if scan >= 0 {
		t.direct = newDirectPlan(t, scan, gf, body, begin)
	}
	return t, nil
}

// wpllPattern is what {WPLL} stands for: PHP's date('M j h:i:s').
const wpllPattern = "%b %d %I:%M:%S"

// expandDirectives turns the %-directives of a pattern into markers for the
// parser, and builds the template's human name.
func expandDirectives(p string) (regex, name string, err error) {
	var re, nm strings.Builder
	for i := 0; i < len(p); {
		if strings.HasPrefix(p[i:], "{WPLL}") {
			r, _, _ := expandDirectives(wpllPattern)
			re.WriteString(r)
			nm.WriteString("{WPLL}")
			i += len("{WPLL}")
			continue
		}
		c := p[i]
		if c == marker {
			return "", "", fmt.Errorf("%w: NUL byte", ErrSyntax)
		}
		if c == regionStart || c == regionEnd {
			// scanner region: into the regex, not into the name
			j := i + 1
			if c == regionStart {
				j += strings.IndexByte(p[i+1:], regionStart) + 1
			}
			re.WriteString(p[i:j])
			i = j
			continue
		}
		if c != '%' {
			re.WriteByte(c)
			nm.WriteByte(c)
			i++
			continue
		}
		d := directiveAt(p[i+1:])
		if d == nil {
			rest := p[i+1:]
			if len(rest) > 3 {
				rest = rest[:3]
			}
			return "", "", fmt.Errorf("%w: unknown directive or unescaped percent sign at %%%s", ErrSyntax, rest)
		}
		if d.key == "%" {
			re.WriteByte('%')
		} else {
			re.WriteByte(marker)
			re.WriteString(d.key)
			re.WriteByte(marker)
		}
		nm.WriteString(d.name)
		i += 1 + len(d.key)
	}
	return re.String(), nm.String(), nil
}

// hasAlphaDirective reports %a %A %b %B %p %c (not after another '%'): such
// patterns are matched ignoring case, as in fail2ban.
func hasAlphaDirective(p string) bool {
	if strings.Contains(p, "{WPLL}") {
		return true
	}
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '%' && (i == 0 || p[i-1] != '%') && strings.IndexByte("aAbBpc", p[i+1]) >= 0 {
			return true
		}
	}
	return false
}

// setRegex applies fail2ban's rules for boundaries, the date group and the
// flags to a regex, then compiles it.
func (b *builder) setRegex(t *template, regex string, begin beginMode, wordEnd bool) error {
	// The decisions are made on the text fail2ban sees (without scanner
	// regions); the edits keep the regions in place.
	regex = strings.TrimFunc(regex, isSpaceRune)
	// Move the first inline global flag group to the front.
	gf := ""
	if i, j := globalFlagsAt(regex); i >= 0 {
		gf = regex[i:j]
		regex = regex[:i] + regex[j:]
	}
	plain := stripRegions(regex)
	boundBegin := begin != beginNone && !noWordBoundBegin(plain)
	boundEnd := wordEnd && !noWordBoundEnd(plain)
	if !hasPlainGroup(plain) {
		regex = wrapGroup(regex)
	}
	t.flags = 0
	if boundBegin {
		if begin == beginWord {
			t.flags |= flagWordBegin
			regex = `(?=^|\b|\W)` + regex
		} else {
			t.flags |= flagLineBegin
			regex = `^(?:\W{0,2})?` + regex
			if !strings.HasPrefix(t.name, "{^LN-BEG}") {
				t.name = "{^LN-BEG}" + t.name
			}
		}
	}
	if boundEnd {
		t.flags |= flagWordEnd
		regex += `(?=\b|\W|$)`
	}
	plain = stripRegions(regex)
	if t.flags&flagLineBegin == 0 && lineBoundBegin(plain) {
		t.flags |= flagLineBegin
	}
	if t.flags&flagLineEnd == 0 && lineBoundEnd(plain) {
		t.flags |= flagLineEnd
	}
	regex = delWordBounds(regex)
	regex = gf + regex
	t.regex = regex
	prog, err := compileRegex(regex, b.useDirs)
	if err != nil {
		return err
	}
	t.prog = prog
	t.fields = fieldsOf(prog)
	if b.useDirs {
		t.seq = newSeqPlan(prog)
	}
	return nil
}

// globalFlagsAt finds the first "(?letters)" group.
func globalFlagsAt(s string) (int, int) {
	for i := 0; i+3 < len(s); i++ {
		if s[i] != '(' || s[i+1] != '?' {
			continue
		}
		j := i + 2
		for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
			j++
		}
		if j > i+2 && j < len(s) && s[j] == ')' {
			return i, j + 1
		}
	}
	return -1, -1
}

// flagGroupLen returns the length of a "(?word)" group at s[i:], or 0.
func flagGroupLen(s string, i int) int {
	if !strings.HasPrefix(s[i:], "(?") {
		return 0
	}
	j := i + 2
	for j < len(s) && isWordByte(s[j]) {
		j++
	}
	if j > i+2 && j < len(s) && s[j] == ')' {
		return j + 1 - i
	}
	return 0
}

func isWordByte(c byte) bool { return c < 0x80 && asciiType[c]&ctWord != 0 || c >= 0x80 }

// noWordBoundBegin: the regex starts with '(' characters, maybe a flag group,
// then "^", "(^", "(?:^" or "**" (possibly after more '(').
func noWordBoundBegin(s string) bool {
	n := 0
	for n < len(s) && s[n] == '(' {
		n++
	}
	for k := n; k >= 0; k-- {
		rest := s[k:]
		starts := []string{rest}
		if fl := flagGroupLen(s, k); fl > 0 {
			starts = append([]string{s[k+fl:]}, rest)
		}
		for _, r := range starts {
			if strings.HasPrefix(r, "^") || strings.HasPrefix(r, "(^") || strings.HasPrefix(r, "(?:^") {
				return true
			}
			if strings.HasPrefix(strings.TrimLeft(r, "("), "**") {
				return true
			}
		}
	}
	return false
}

// noWordBoundEnd: the regex ends with "$", "$)", `\b`, `\s` or "**" and any
// ')' characters, the ending not being escaped.
func noWordBoundEnd(s string) bool {
	for i := 0; i < len(s); i++ {
		rest := s[i:]
		ok := rest == "$" || rest == "$)" || rest == `\b` || rest == `\s` ||
			strings.HasPrefix(rest, "**") && strings.Trim(rest[2:], ")") == ""
		if ok && (i == 0 || s[i-1] != '\\') {
			return true
		}
	}
	return false
}

// hasPlainGroup reports a capturing "(" that is not "(?", not escaped and not
// the condition of "(?(".
func hasPlainGroup(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '(' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '?' {
			continue
		}
		if i >= 1 && s[i-1] == '\\' {
			continue
		}
		if i >= 2 && s[i-2:i] == "(?" {
			continue
		}
		return true
	}
	return false
}

// wrapGroup puts the regex (after leading flag groups and '^', before a
// trailing '$') into group 1.
func wrapGroup(s string) string {
	i := 0
	if fl := flagGroupLen(s, i); fl > 0 {
		i += fl
	}
	if i < len(s) && s[i] == '^' {
		i++
	}
	if fl := flagGroupLen(s, i); fl > 0 {
		i += fl
	}
	body, tail := s[i:], ""
	if strings.HasSuffix(body, "$") {
		body, tail = body[:len(body)-1], "$"
	}
	return s[:i] + "(" + body + ")" + tail
}

// lineBoundBegin: the regex starts (after a flag group) with "^", or with
// "(^"/"(?:^" not followed by '|'.
func lineBoundBegin(s string) bool {
	for _, r := range []string{s, s[flagGroupLen(s, 0):]} {
		if strings.HasPrefix(r, "^") {
			return true
		}
		for _, p := range []string{"(^", "(?:^"} {
			if strings.HasPrefix(r, p) && !strings.HasPrefix(r[len(p):], "|") {
				return true
			}
		}
	}
	return false
}

// lineBoundEnd: the regex ends with "$" or "$)", the '$' not preceded by '\'
// or '|'.
func lineBoundEnd(s string) bool {
	i := -1
	switch {
	case strings.HasSuffix(s, "$"):
		i = len(s) - 1
	case strings.HasSuffix(s, "$)"):
		i = len(s) - 2
	default:
		return false
	}
	return i == 0 || (s[i-1] != '\\' && s[i-1] != '|')
}

// delWordBounds removes the "**" markers of "no word boundary" at the start
// (after '(' and a flag group) and at the end (before ')' characters).
func delWordBounds(s string) string {
	from := 0
	// leading form: \(*(?:\(\?\w+\))?\(*\*\*
	i := 0
	for i < len(s) && s[i] == '(' {
		i++
	}
	try := func(k int) int {
		for k < len(s) && s[k] == '(' {
			k++
		}
		if strings.HasPrefix(s[k:], "**") {
			return k
		}
		return -1
	}
	at := -1
	for k := i; k >= 0 && at < 0; k-- {
		if fl := flagGroupLen(s, k); fl > 0 {
			at = try(k + fl)
		}
		if at < 0 {
			at = try(k)
		}
	}
	if at >= 0 {
		s = s[:at] + s[at+2:]
		from = at
	}
	// trailing form: (?<!\\)\*\*\)*$
	end := len(s)
	for end > 0 && s[end-1] == ')' {
		end--
	}
	if end-2 >= from && strings.HasSuffix(s[:end], "**") && (end-2 == 0 || s[end-3] != '\\') {
		s = s[:end-2] + s[end:]
	}
	return s
}

// markRegion wraps default pattern p (with scanner i) for the parser.
func markRegion(p string, i int) string {
	return string(regionStart) + strconv.Itoa(i) + string(regionStart) + p + string(regionEnd)
}
