package logtime

import "unicode"

// A directive is a %-field of a date pattern. Its regex is the reference
// meaning (what fail2ban's strptime table expands it to); enum, when set, is a
// hand-written matcher that lists, in the order Python's backtracking would
// try them, every way the regex can match at a position. The two are checked
// against each other by TestDirectiveEnumerators and FuzzDirectives.

const maxCands = 24

// cand is one way a directive matches: its group spans [gs, end).
type cand struct{ gs, end int }

type enumFunc func(m *machine, s string, pos int, fold bool, out *[maxCands]cand) int

type directive struct {
	key     string // text after '%'
	name    string // human name, for template names
	group   string // name of the group the regex defines (single-group directives)
	regex   string
	enum    enumFunc
	dynamic bool // depends on the time of the search; enum is always used
}

// directives is the table of supported %-directives. fail2ban 1.0.2 knows all
// of these but %e and %s, which are logjail extensions.
var directives = [...]directive{
	{key: "%", name: "%", regex: "%"},
	{key: "a", name: "DAY", group: "a", regex: `(?P<a>mon|tue|wed|thu|fri|sat|sun)`, enum: enumNames(dayAbbrs[:])},
	{key: "A", name: "DAYNAME", group: "A", regex: `(?P<A>monday|tuesday|wednesday|thursday|friday|saturday|sunday)`},
	{key: "b", name: "MON", group: "b", regex: `(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)`, enum: enumMonthAbbr},
	{key: "B", name: "MONTH", group: "B", regex: `(?P<B>january|february|march|april|may|june|july|august|september|october|november|december)`},
	{key: "c", name: "%c", regex: `(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)\s+(?P<Y>\d\d\d\d)`},
	{key: "d", name: "Day", group: "d", regex: `(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])`, enum: enumDay},
	{key: "e", name: "Day", group: "d", regex: `(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])`, enum: enumDay},
	{key: "f", name: "Microseconds", group: "f", regex: `(?P<f>[0-9]{1,6})`, enum: enumFraction},
	{key: "G", name: "%G", group: "G", regex: `(?P<G>\d\d\d\d)`},
	{key: "H", name: "24hour", group: "H", regex: `(?P<H>[0-1]?\d|2[0-3])`, enum: enumHour},
	{key: "I", name: "12hour", group: "I", regex: `(?P<I>1[0-2]|0[1-9]|[1-9])`, enum: enumHour12},
	{key: "j", name: "Yearday", group: "j", regex: `(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])`},
	{key: "k", name: "%k", group: "H", regex: ` ?(?P<H>[0-2]?\d)`, enum: enumSpaced(enumHourK)},
	{key: "l", name: "%l", group: "I", regex: ` ?(?P<I>1?\d)`, enum: enumSpaced(enumHourL)},
	{key: "m", name: "Month", group: "m", regex: `(?P<m>0?[1-9]|1[0-2])`, enum: enumMonth},
	{key: "M", name: "Minute", group: "M", regex: `(?P<M>[0-5]?\d)`, enum: enumMinute},
	{key: "p", name: "AMPM", group: "p", regex: `(?P<p>am|pm)`, enum: enumNames([]string{"am", "pm"})},
	{key: "s", name: "Epoch", group: "s", regex: `(?P<s>\d{1,11})`},
	{key: "S", name: "Second", group: "S", regex: `(?P<S>[0-5]?\d|6[0-1])`, enum: enumSecond},
	{key: "u", name: "%u", group: "u", regex: `(?P<u>[1-7])`},
	{key: "U", name: "Yearweek", group: "U", regex: `(?P<U>5[0-3]|[0-4]\d|\d)`},
	{key: "V", name: "%V", group: "V", regex: `(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)`},
	{key: "w", name: "Weekday", group: "w", regex: `(?P<w>[0-6])`},
	{key: "W", name: "Yearweek", group: "W", regex: `(?P<W>5[0-3]|[0-4]\d|\d)`},
	{key: "x", name: "%x", regex: `(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])/(?P<y>\d\d)`},
	{key: "X", name: "%X", regex: `(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)`},
	{key: "y", name: "Year2", group: "y", regex: `(?P<y>\d\d)`, enum: enumDigits(2)},
	{key: "Y", name: "Year", group: "Y", regex: `(?P<Y>\d{4})`, enum: enumDigits(4)},
	{key: "z", name: "Zone offset", group: "z", regex: `(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)`, enum: enumZoneOffset},
	{key: "Z", name: "Zone name", group: "Z", regex: `(?P<Z>Z|[A-Z]{3,5})`, enum: enumZoneName},
	{key: "Exd", name: "ExDay", group: "d", regex: `(?P<d>[1-2]\d|0[1-9]|3[0-1])`, enum: enumDayEx},
	{key: "ExH", name: "Ex24hour", group: "H", regex: `(?P<H>[0-1]\d|2[0-3])`, enum: enumHourEx},
	{key: "Exk", name: "%Exk", group: "H", regex: ` ?(?P<H>[0-1]?\d|2[0-3])`, enum: enumSpaced(enumHour)},
	{key: "Exl", name: "%Exl", group: "I", regex: ` ?(?P<I>1[0-2]|\d)`, enum: enumSpaced(enumHourLEx)},
	{key: "ExM", name: "ExMinute", group: "M", regex: `(?P<M>[0-5]\d)`, enum: enumMinuteEx},
	{key: "Exm", name: "ExMonth", group: "m", regex: `(?P<m>0[1-9]|1[0-2])`, enum: enumMonthEx},
	{key: "ExS", name: "ExSecond", group: "S", regex: `(?P<S>[0-5]\d|6[0-1])`, enum: enumSecondEx},
	// The years fail2ban accepts for %ExY run from 2000 to the end of the
	// decade three years ahead of now; the regex text is only the shape.
	{key: "ExY", name: "ExYear", group: "Y", regex: `(?P<Y>\d\d\d\d)`, enum: enumYearEx, dynamic: true},
	{key: "Exy", name: "ExYear2", group: "y", regex: `(?P<y>\d{2})`, enum: enumDigits(2)},
	{key: "ExZ", name: "ExZone name", group: "Z", regex: `(?P<Z>[A-Z](?:[A-Z]{2,4})?)`, enum: enumZoneNameEx},
	{key: "Exz", name: "ExZone offset", group: "z", regex: `(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)`, enum: enumZoneOffsetEx},
}

var (
	dayAbbrs   = [...]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	monthAbbrs = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = [...]string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
	monthNames = [...]string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}
)

func directiveByKey(key string) *directive {
	for i := range directives {
		if directives[i].key == key {
			return &directives[i]
		}
	}
	return nil
}

// directiveAt returns the directive whose key starts s (the text after a
// '%'), as fail2ban's directive regex would pick it: the three-letter Ex keys
// first, then the one-letter keys.
func directiveAt(s string) *directive {
	if len(s) >= 3 && s[:2] == "Ex" {
		if d := directiveByKey(s[:3]); d != nil {
			return d
		}
	}
	if len(s) >= 1 && s[0] != 'E' {
		return directiveByKey(s[:1])
	}
	return nil
}

// --- helpers over the text ---

// digitAt reports a decimal digit (any script, as Python's \d) at s[i].
func digitAt(s string, i int) (w int, ok bool) {
	if i >= len(s) {
		return 0, false
	}
	if c := s[i]; c < 0x80 {
		return 1, c >= '0' && c <= '9'
	}
	r, w := runeAt(s, i)
	return w, isDigitRune(r)
}

// byteIn reports whether s[i] exists and lies in [lo, hi] (ASCII classes).
func byteIn(s string, i int, lo, hi byte) bool {
	return i < len(s) && s[i] >= lo && s[i] <= hi
}

// letterFold matches one pattern letter c (lowercase ASCII) at s[i].
func letterFold(s string, i int, c byte, fold bool) (int, bool) {
	if i >= len(s) {
		return 0, false
	}
	b := s[i]
	if b < 0x80 {
		if b == c || fold && b|0x20 == c {
			return 1, true
		}
		return 0, false
	}
	if !fold {
		return 0, false
	}
	r, w := runeAt(s, i)
	return w, foldEq(r, rune(c))
}

// wordFold matches the lowercase ASCII word at s[i].
func wordFold(s string, i int, word string, fold bool) (int, bool) {
	start := i
	for k := 0; k < len(word); k++ {
		w, ok := letterFold(s, i, word[k], fold)
		if !ok {
			return 0, false
		}
		i += w
	}
	return i - start, true
}

// upperAZ is the class [A-Z], case-insensitive when fold.
func upperAZ(s string, i int, fold bool) (int, bool) {
	if i >= len(s) {
		return 0, false
	}
	b := s[i]
	if b < 0x80 {
		return 1, b >= 'A' && b <= 'Z' || fold && b >= 'a' && b <= 'z'
	}
	if !fold {
		return 0, false
	}
	r, w := runeAt(s, i)
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= 'A' && f <= 'Z' {
			return w, true
		}
	}
	return 0, false
}

// candList collects candidates, dropping repeats (a repeat would fail again
// exactly as before, so dropping it changes nothing but time).
type candList struct {
	out *[maxCands]cand
	n   int
}

func (l *candList) add(gs, end int) {
	for i := 0; i < l.n; i++ {
		if l.out[i].gs == gs && l.out[i].end == end {
			return
		}
	}
	if l.n < maxCands {
		l.out[l.n] = cand{gs, end}
		l.n++
	}
}

// --- enumerators; each comment gives the regex alternative order ---

// The name alternatives are exclusive (no name is a prefix of another that
// could also match), so there is at most one way.
func enumNames(names []string) enumFunc {
	return func(_ *machine, s string, pos int, fold bool, out *[maxCands]cand) int {
		return matchNames(names, s, pos, fold, out)
	}
}

func matchNames(names []string, s string, pos int, fold bool, out *[maxCands]cand) int {
	for _, n := range names {
		if w, ok := wordFold(s, pos, n, fold); ok {
			out[0] = cand{pos, pos + w}
			return 1
		}
	}
	return 0
}

func enumMonthAbbr(_ *machine, s string, pos int, fold bool, out *[maxCands]cand) int {
	if pos+3 <= len(s) {
		a, b, c := s[pos], s[pos+1], s[pos+2]
		if a|b|c < 0x80 {
			if fold {
				a, b, c = a|0x20, b|0x20, c|0x20
			}
			if monthIndex3(a, b, c) > 0 {
				out[0] = cand{pos, pos + 3}
				return 1
			}
			return 0
		}
	}
	return matchNames(monthAbbrs[:], s, pos, fold, out)
}

// monthIndex3 maps a lowercase three-letter month abbreviation to 1..12.
func monthIndex3(a, b, c byte) int {
	switch a {
	case 'j':
		switch {
		case b == 'a' && c == 'n':
			return 1
		case b == 'u' && c == 'n':
			return 6
		case b == 'u' && c == 'l':
			return 7
		}
	case 'f':
		if b == 'e' && c == 'b' {
			return 2
		}
	case 'm':
		if b == 'a' && c == 'r' {
			return 3
		}
		if b == 'a' && c == 'y' {
			return 5
		}
	case 'a':
		if b == 'p' && c == 'r' {
			return 4
		}
		if b == 'u' && c == 'g' {
			return 8
		}
	case 's':
		if b == 'e' && c == 'p' {
			return 9
		}
	case 'o':
		if b == 'c' && c == 't' {
			return 10
		}
	case 'n':
		if b == 'o' && c == 'v' {
			return 11
		}
	case 'd':
		if b == 'e' && c == 'c' {
			return 12
		}
	}
	return 0
}

// [1-2]\d | [0 ]?[1-9] | 3[0-1]
func enumDay(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if byteIn(s, pos, '1', '2') {
		if w, ok := digitAt(s, pos+1); ok {
			l.add(pos, pos+1+w)
		}
	}
	if (byteIn(s, pos, '0', '0') || byteIn(s, pos, ' ', ' ')) && byteIn(s, pos+1, '1', '9') {
		l.add(pos, pos+2)
	}
	if byteIn(s, pos, '1', '9') {
		l.add(pos, pos+1)
	}
	if byteIn(s, pos, '3', '3') && byteIn(s, pos+1, '0', '1') {
		l.add(pos, pos+2)
	}
	return l.n
}

// [1-2]\d | 0[1-9] | 3[0-1]
func enumDayEx(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if byteIn(s, pos, '1', '2') {
		if w, ok := digitAt(s, pos+1); ok {
			l.add(pos, pos+1+w)
		}
	}
	if byteIn(s, pos, '0', '0') && byteIn(s, pos+1, '1', '9') {
		l.add(pos, pos+2)
	}
	if byteIn(s, pos, '3', '3') && byteIn(s, pos+1, '0', '1') {
		l.add(pos, pos+2)
	}
	return l.n
}

// 0?[1-9] | 1[0-2]
func enumMonth(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if byteIn(s, pos, '0', '0') && byteIn(s, pos+1, '1', '9') {
		l.add(pos, pos+2)
	}
	if byteIn(s, pos, '1', '9') {
		l.add(pos, pos+1)
	}
	if byteIn(s, pos, '1', '1') && byteIn(s, pos+1, '0', '2') {
		l.add(pos, pos+2)
	}
	return l.n
}

// 0[1-9] | 1[0-2]
func enumMonthEx(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if byteIn(s, pos, '0', '0') && byteIn(s, pos+1, '1', '9') {
		l.add(pos, pos+2)
	}
	if byteIn(s, pos, '1', '1') && byteIn(s, pos+1, '0', '2') {
		l.add(pos, pos+2)
	}
	return l.n
}

// [lo-hi]?\d, the optional digit taken first.
func optDigitThenDigit(l *candList, s string, pos int, lo, hi byte) {
	if byteIn(s, pos, lo, hi) {
		if w, ok := digitAt(s, pos+1); ok {
			l.add(pos, pos+1+w)
		}
	}
	if w, ok := digitAt(s, pos); ok {
		l.add(pos, pos+w)
	}
}

// [0-1]?\d | 2[0-3]
func enumHour(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	optDigitThenDigit(&l, s, pos, '0', '1')
	if byteIn(s, pos, '2', '2') && byteIn(s, pos+1, '0', '3') {
		l.add(pos, pos+2)
	}
	return l.n
}

// [0-1]\d | 2[0-3]
func enumHourEx(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if byteIn(s, pos, '0', '1') {
		if w, ok := digitAt(s, pos+1); ok {
			l.add(pos, pos+1+w)
		}
	}
	if byteIn(s, pos, '2', '2') && byteIn(s, pos+1, '0', '3') {
		l.add(pos, pos+2)
	}
	return l.n
}

// [0-2]?\d (the group of %k)
func enumHourK(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	optDigitThenDigit(&l, s, pos, '0', '2')
	return l.n
}

// 1?\d (the group of %l)
func enumHourL(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	optDigitThenDigit(&l, s, pos, '1', '1')
	return l.n
}

// 1[0-2] | \d (the group of %Exl)
func enumHourLEx(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if byteIn(s, pos, '1', '1') && byteIn(s, pos+1, '0', '2') {
		l.add(pos, pos+2)
	}
	if w, ok := digitAt(s, pos); ok {
		l.add(pos, pos+w)
	}
	return l.n
}

// 1[0-2] | 0[1-9] | [1-9]
func enumHour12(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if byteIn(s, pos, '1', '1') && byteIn(s, pos+1, '0', '2') {
		l.add(pos, pos+2)
	}
	if byteIn(s, pos, '0', '0') && byteIn(s, pos+1, '1', '9') {
		l.add(pos, pos+2)
	}
	if byteIn(s, pos, '1', '9') {
		l.add(pos, pos+1)
	}
	return l.n
}

// enumSpaced handles " ?(?P<g>...)": the optional space is outside the
// group, and taken first; a group never starts with a space, so there is no
// second way.
func enumSpaced(inner enumFunc) enumFunc {
	return func(m *machine, s string, pos int, fold bool, out *[maxCands]cand) int {
		if pos < len(s) && s[pos] == ' ' {
			return inner(m, s, pos+1, fold, out)
		}
		return inner(m, s, pos, fold, out)
	}
}

// [0-5]?\d
func enumMinute(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	optDigitThenDigit(&l, s, pos, '0', '5')
	return l.n
}

// [0-5]\d
func enumMinuteEx(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	if byteIn(s, pos, '0', '5') {
		if w, ok := digitAt(s, pos+1); ok {
			out[0] = cand{pos, pos + 1 + w}
			return 1
		}
	}
	return 0
}

// [0-5]?\d | 6[0-1]
func enumSecond(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	optDigitThenDigit(&l, s, pos, '0', '5')
	if byteIn(s, pos, '6', '6') && byteIn(s, pos+1, '0', '1') {
		l.add(pos, pos+2)
	}
	return l.n
}

// [0-5]\d | 6[0-1]
func enumSecondEx(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if byteIn(s, pos, '0', '5') {
		if w, ok := digitAt(s, pos+1); ok {
			l.add(pos, pos+1+w)
		}
	}
	if byteIn(s, pos, '6', '6') && byteIn(s, pos+1, '0', '1') {
		l.add(pos, pos+2)
	}
	return l.n
}

// [0-9]{1,6}, greedy
func enumFraction(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	n := 0
	for n < 6 && byteIn(s, pos+n, '0', '9') {
		n++
	}
	for i := 0; i < n; i++ {
		out[i] = cand{pos, pos + n - i}
	}
	return n
}

// \d{n}
func enumDigits(n int) enumFunc {
	return func(_ *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
		p := pos
		for i := 0; i < n; i++ {
			w, ok := digitAt(s, p)
			if !ok {
				return 0
			}
			p += w
		}
		out[0] = cand{pos, p}
		return 1
	}
}

// Three ASCII digits whose value is an allowed "century-decade" prefix, then
// any digit (see machine.yearPrefixOK).
func enumYearEx(m *machine, s string, pos int, _ bool, out *[maxCands]cand) int {
	if !byteIn(s, pos, '0', '9') || !byteIn(s, pos+1, '0', '9') || !byteIn(s, pos+2, '0', '9') {
		return 0
	}
	p := int(s[pos]-'0')*100 + int(s[pos+1]-'0')*10 + int(s[pos+2]-'0')
	if !m.yearPrefixOK(p) {
		return 0
	}
	w, ok := digitAt(s, pos+3)
	if !ok {
		return 0
	}
	out[0] = cand{pos, pos + 3 + w}
	return 1
}

// offsetCands lists [+-][01]\d(?::?\d{2})? at pos: long forms first.
func offsetCands(l *candList, gs int, s string, pos int) {
	if pos >= len(s) || (s[pos] != '+' && s[pos] != '-') || !byteIn(s, pos+1, '0', '1') {
		return
	}
	w, ok := digitAt(s, pos+2)
	if !ok {
		return
	}
	base := pos + 2 + w
	two := func(i int) (int, bool) {
		w1, ok1 := digitAt(s, i)
		if !ok1 {
			return 0, false
		}
		w2, ok2 := digitAt(s, i+w1)
		return w1 + w2, ok2
	}
	if base < len(s) && s[base] == ':' {
		if w, ok := two(base + 1); ok {
			l.add(gs, base+1+w)
		}
	} else if w, ok := two(base); ok {
		l.add(gs, base+w)
	}
	l.add(gs, base)
}

// Z | UTC | GMT | [+-][01]\d(?::?\d{2})?
func enumZoneOffset(_ *machine, s string, pos int, fold bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if w, ok := letterFold(s, pos, 'z', true); ok && (fold || s[pos] == 'Z') {
		l.add(pos, pos+w)
	}
	for _, name := range [...]string{"utc", "gmt"} {
		if fold {
			if w, ok := wordFold(s, pos, name, true); ok {
				l.add(pos, pos+w)
			}
		} else if pos+3 <= len(s) && s[pos:pos+3] == upper3(name) {
			l.add(pos, pos+3)
		}
	}
	offsetCands(&l, pos, s, pos)
	return l.n
}

func upper3(s string) string {
	switch s {
	case "utc":
		return "UTC"
	case "gmt":
		return "GMT"
	}
	return s
}

// letterRun returns the end offsets after 1..max letters of [A-Z] at pos.
func letterRun(s string, pos int, fold bool, max int, ends *[6]int) int {
	n := 0
	p := pos
	for n < max {
		w, ok := upperAZ(s, p, fold)
		if !ok {
			break
		}
		p += w
		n++
		ends[n] = p
	}
	return n
}

// Z | [A-Z]{3,5}
func enumZoneName(_ *machine, s string, pos int, fold bool, out *[maxCands]cand) int {
	l := candList{out: out}
	if w, ok := letterFold(s, pos, 'z', true); ok && (fold || s[pos] == 'Z') {
		l.add(pos, pos+w)
	}
	var ends [6]int
	n := letterRun(s, pos, fold, 5, &ends)
	for k := n; k >= 3; k-- {
		l.add(pos, ends[k])
	}
	return l.n
}

// abbrLens lists the ends of [A-Z](?:[A-Z]{2,4})? at pos, in regex order.
func abbrEnds(s string, pos int, fold bool, dst *[4]int) int {
	var ends [6]int
	n := letterRun(s, pos, fold, 5, &ends)
	k := 0
	for c := n; c >= 3; c-- {
		dst[k] = ends[c]
		k++
	}
	if n >= 1 {
		dst[k] = ends[1]
		k++
	}
	return k
}

// [A-Z](?:[A-Z]{2,4})?
func enumZoneNameEx(_ *machine, s string, pos int, fold bool, out *[maxCands]cand) int {
	var ends [4]int
	n := abbrEnds(s, pos, fold, &ends)
	for i := 0; i < n; i++ {
		out[i] = cand{pos, ends[i]}
	}
	return n
}

// (?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})? | [A-Z](?:[A-Z]{2,4})?
func enumZoneOffsetEx(_ *machine, s string, pos int, fold bool, out *[maxCands]cand) int {
	l := candList{out: out}
	var ends [4]int
	n := abbrEnds(s, pos, fold, &ends)
	for i := 0; i < n; i++ {
		offsetCands(&l, pos, s, ends[i])
	}
	offsetCands(&l, pos, s, pos)
	for i := 0; i < n; i++ {
		l.add(pos, ends[i])
	}
	return l.n
}
