package logtime

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Options configure a Detector.
type Options struct {
	// Location is the zone of timestamps that carry none; nil means time.Local.
	Location *time.Location
}

// Match is a timestamp found in a line.
type Match struct {
	// Time is the instant the text denotes. It is the zero Time when the
	// text is empty (a pattern such as `^WARNING:()**` or {NONE} matched) or
	// does not make a valid date (Feb 30, 25:00); the caller then uses the
	// time of the previous line or the read time, as fail2ban does.
	Time time.Time
	// Start and End delimit the date text in the line: what fail2ban cuts
	// out (line[:Start] + line[End:]) before it runs the failregexes.
	Start, End int
	// Format identifies the format that matched, see Detector.FormatName.
	Format int
}

// Detector finds timestamps in log lines. It learns from the lines it sees
// (which format hit last and where) like fail2ban's DateDetector, so it is
// not safe for concurrent use: give each goroutine its own (see Clone).
type Detector struct {
	set *templateSet
	loc *time.Location
	m   machine

	order    []int // positions -> template ids, reordered by use
	hits     []int // by id: lines this template won
	matches  []int // by id: successful searches
	lastUsed []float64
	distance []int

	// Where the last winner matched. Positions kept across lines count
	// characters (code points), as fail2ban's do; they differ from byte
	// offsets only on lines with multi-byte characters before the date.
	lastIdx     int // position of the last winner in order
	firstUnused int
	lastPos     int // start of the last match
	lastPosPrev rune
	lastPosAt   rune
	lastEnd     int // end of the last match
	lastEndPrev rune
	lastEndAt   rune

	reserve []int // captures of the best alternative while searching
	nowSec  float64

	// ASCII prefix of the current line, found lazily: ascScan bytes have
	// been checked, and ascEnd < ascScan means a non-ASCII byte at ascEnd.
	ascScan, ascEnd int

	tc timeCache
}

// timeCache holds the time computed for the last date text: a flood writes
// many lines a second with the same stamp. The key is the template and the
// text of its fields (copied: the caller may reuse the line's memory), with
// their places relative to the start of the date; the value holds for the
// nows in span.
type timeCache struct {
	id    int    // template id, -1 when empty
	text  []byte // line[from:to], from the first field to the end of the last
	offs  []int  // per field: start and end relative to the date, or absent
	tm    time.Time
	valid bool
	span  nowSpan

	// Lines with stamps that never repeat (sub-second ones, say) would only
	// pay for the cache: after missLimit misses in a row, only one line in
	// probeEvery tries it, until one hits.
	misses int // misses in a row
	skip   int // lines left to compute without the cache
}

const (
	missLimit  = 8
	probeEvery = 16
)

// maxCachedText bounds the text kept by the time cache.
const maxCachedText = 256

// absentField marks a field group that took no part in the match.
const absentField = math.MinInt

// templateSet is the immutable part of a detector, shared by its clones.
type templateSet struct {
	templates []*template
	ncap      int
	maxMarks  int
	cacheable []bool // by id: the time cache may hold this template's times
	maxFields int
}

// New builds a detector. Each entry of patterns is one or more fail2ban
// `datepattern` lines; with none, the detector tries all the automatic
// formats. An invalid pattern is an error naming the pattern.
func New(patterns []string, opts Options) (*Detector, error) {
	return newDetector(patterns, opts, true)
}

func newDetector(patterns []string, opts Options, useDirs bool) (*Detector, error) {
	b := &builder{useDirs: useDirs}
	set, err := b.build(splitPatterns(patterns))
	if err != nil {
		return nil, err
	}
	loc := opts.Location
	if loc == nil {
		loc = time.Local
	}
	return newFromSet(set, loc), nil
}

func newFromSet(set *templateSet, loc *time.Location) *Detector {
	n := len(set.templates)
	d := &Detector{
		set:      set,
		loc:      loc,
		order:    make([]int, n),
		hits:     make([]int, n),
		matches:  make([]int, n),
		lastUsed: make([]float64, n),
		distance: make([]int, n),
		lastIdx:  1<<31 - 1,
		lastPos:  1,
		lastEnd:  1<<31 - 1,
		// "no character" on all four sides
		lastPosPrev: -1, lastPosAt: -1, lastEndPrev: -1, lastEndAt: -1,
		reserve: make([]int, set.ncap),
		tc:      timeCache{id: -1, offs: make([]int, 0, 2*set.maxFields), text: make([]byte, 0, 32)},
	}
	for i := range d.order {
		d.order[i] = i
		d.distance[i] = 1<<31 - 1
	}
	d.m.caps = make([]int, set.ncap)
	d.m.marks = make([]int, set.maxMarks)
	d.m.stack = make([]frame, 256)
	return d
}

// Clone returns a detector with the same formats and a fresh state, for use
// by another goroutine.
func (d *Detector) Clone() *Detector { return newFromSet(d.set, d.loc) }

// None reports whether the detector was told by {NONE} that lines carry no
// date: Find then never returns a time and callers use the read time.
func (d *Detector) None() bool {
	return len(d.set.templates) > 0 && d.set.templates[0].none
}

// FormatName returns the human name of format i (fail2ban's template name),
// or "" if there is no such format.
func (d *Detector) FormatName(i int) string {
	if i < 0 || i >= len(d.set.templates) {
		return ""
	}
	return d.set.templates[i].name
}

// NumFormats returns the number of formats; Match.Format is below it.
func (d *Detector) NumFormats() int { return len(d.set.templates) }

// splitPatterns splits multi-line entries and drops blank lines, as fail2ban
// reads the datepattern option.
func splitPatterns(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		for _, l := range strings.Split(p, "\n") {
			if l = strings.TrimFunc(l, isSpaceRune); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// build makes the template list from datepattern lines, with fail2ban's
// meaning of the special keys.
func (b *builder) build(lines []string) (*templateSet, error) {
	var base, all []*template
	ensureDefaults := func() error {
		if all != nil {
			return nil
		}
		var err error
		if base, err = b.defaults(); err != nil {
			return err
		}
		all, err = b.allDefaults(base)
		return err
	}
	set := &templateSet{}
	names := map[string]bool{}
	add := func(t *template, ignoreDup bool) error {
		if names[t.name] {
			if ignoreDup {
				return nil
			}
			return fmt.Errorf("%w: %s", ErrDuplicate, t.name)
		}
		names[t.name] = true
		set.templates = append(set.templates, t)
		return nil
	}
	for _, line := range lines {
		if strings.ContainsAny(line, "\x00\x01\x02") {
			return nil, fmt.Errorf("date pattern %q: %w: control character", line, ErrSyntax)
		}
		if err := b.addLine(line, ensureDefaults, &base, &all, add, len(set.templates) > 0); err != nil {
			return nil, fmt.Errorf("date pattern %q: %w", line, err)
		}
	}
	if len(set.templates) == 0 {
		if err := ensureDefaults(); err != nil {
			return nil, err
		}
		for _, t := range all {
			if err := add(t, false); err != nil {
				return nil, err
			}
		}
	}
	for _, t := range set.templates {
		set.ncap = max(set.ncap, t.prog.ncap)
		set.maxMarks = max(set.maxMarks, t.prog.nmark)
		set.cacheable = append(set.cacheable, timeCacheable(t))
		set.maxFields = max(set.maxFields, len(t.fields))
	}
	return set, nil
}

func (b *builder) addLine(line string, ensureDefaults func() error, base, all *[]*template,
	add func(*template, bool) error, nonEmpty bool) error {
	key := line
	if !strings.Contains(line, "%") {
		key = strings.ToUpper(line)
	}
	switch {
	case key == "{DEFAULT}":
		// fail2ban 1.0.2 adds nothing here (its filter returns None for
		// every template); the defaults come only if no template is given
		// at all.
		return nil
	case key == "{^LN-BEG}":
		if err := ensureDefaults(); err != nil {
			return err
		}
		for _, t := range *all {
			if t.flags&flagLineBegin == 0 {
				continue
			}
			if err := add(t, nonEmpty); err != nil {
				return err
			}
		}
		return nil
	case strings.Contains(key, "{DATE}"):
		if err := ensureDefaults(); err != nil {
			return err
		}
		for i, t := range *base {
			sub := t.pattern
			if t.kind != kindPattern {
				sub = t.name
			}
			sub = unboundPattern(sub)
			if si := scannerFor(sub); si >= 0 && b.useDirs {
				sub = markRegion(sub, si)
			}
			p := replaceDate(line, sub)
			dt, err := b.forPattern(p)
			if err != nil {
				return fmt.Errorf("with default %d: %w", i, err)
			}
			if err := add(dt, nonEmpty); err != nil {
				return err
			}
		}
		return nil
	case key == "{NONE}":
		t, err := b.patternTemplate("{UNB}^", beginWord, true)
		if err != nil {
			return err
		}
		t.none = true
		return add(t, false)
	}
	t, err := b.forPattern(line)
	if err != nil {
		return err
	}
	return add(t, false)
}

// forPattern picks the template kind for one pattern the way fail2ban does:
// EPOCH/LEPOCH/TAI64N keys (alone or anchored) and {EPOCH} tokens are the
// special templates, anything else is a %-pattern.
func (b *builder) forPattern(p string) (*template, error) {
	key := p
	if !strings.Contains(p, "%") {
		key = strings.ToUpper(p)
	}
	if strings.Contains(key, "EPOCH") {
		if indexEpochToken(p) >= 0 {
			return b.epochPattern(p, strings.Contains(key, "LEPOCH"))
		}
		switch key {
		case "EPOCH":
			return b.epoch(beginNone, false)
		case "{^LN-BEG}EPOCH", "^EPOCH":
			return b.epoch(beginLine, false)
		case "LEPOCH":
			return b.epoch(beginNone, true)
		case "{^LN-BEG}LEPOCH", "^LEPOCH":
			return b.epoch(beginLine, true)
		}
	}
	switch key {
	case "TAI64N":
		return b.tai64n(beginNone)
	case "{^LN-BEG}TAI64N", "^TAI64N":
		return b.tai64n(beginLine)
	}
	return b.patternTemplate(p, beginWord, true)
}

// replaceDate substitutes every {DATE} (any case, not after a backslash).
func replaceDate(line, sub string) string {
	var sb strings.Builder
	u := asciiUpper(line)
	last := 0
	for i := 0; i+6 <= len(u); i++ {
		if u[i:i+6] == "{DATE}" && (i == 0 || line[i-1] != '\\') {
			sb.WriteString(line[last:i])
			sb.WriteString(sub)
			last = i + 6
			i += 5
		}
	}
	sb.WriteString(line[last:])
	return sb.String()
}

// asciiUpper upper-cases ASCII letters only, keeping byte offsets.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// unboundPattern strips the boundary markers from a default pattern before
// it goes into a {DATE} slot.
func unboundPattern(p string) string {
	p = strings.TrimPrefix(p, "{UNB}")
	p = strings.TrimPrefix(p, "{^LN-BEG}")
	for _, pre := range []string{`(?:^|\b|\W)`, `(^|\b|\W)`} {
		p = strings.TrimPrefix(p, pre)
	}
	return strings.TrimSuffix(p, `(?=\b|\W|$)`)
}

// maxLineLen bounds the lines Find reads (offsets are kept in 32 bits).
const maxLineLen = 1 << 30

// Find returns the timestamp of line. now is the current time: it decides
// the year of dates without one (and the day of times without a date).
func (d *Detector) Find(line string, now time.Time) (Match, bool) {
	if len(line) > maxLineLen {
		return Match{}, false
	}
	d.m.setNow(now)
	d.nowSec = float64(now.UnixNano()) / 1e9
	d.ascScan, d.ascEnd = 0, 0
	id, ok := d.matchTime(line)
	if !ok {
		return Match{}, false
	}
	t := d.set.templates[id]
	caps := d.m.caps
	s, e := caps[0], caps[1]
	if t.prog.ngroups >= 1 {
		s, e = caps[2], caps[3] // the date group
	}
	if s < 0 || e < 0 {
		// the date group did not take part: nothing to cut
		return Match{Start: 0, End: 0, Format: id}, true
	}
	m := Match{Start: s, End: e, Format: id}
	if s == e || t.none {
		return m, true
	}
	var tm time.Time
	var valid bool
	switch t.kind {
	case kindEpoch, kindTAI64N:
		g := t.valGroup
		if g > t.prog.ngroups {
			break // {EPOCH} inside a set, say: there is no number group
		}
		vs, ve := caps[2*g], caps[2*g+1]
		if vs < 0 || ve < 0 {
			break
		}
		if t.kind == kindEpoch {
			tm, valid = epochTime(line[vs:ve], t.longEpoch)
		} else {
			tm, valid = tai64nTime(line[vs:ve])
		}
		tm = tm.In(d.loc)
	default:
		tm, valid = d.patternTime(t, id, line, s, now)
	}
	if valid {
		m.Time = tm
	}
	return m, true
}

// patternTime is t.timeOf for the match in d.m.caps (the date starting at
// s), through the time cache.
func (d *Detector) patternTime(t *template, id int, line string, s int, now time.Time) (time.Time, bool) {
	if !d.set.cacheable[id] {
		return t.timeOf(&d.m, line, now, d.loc)
	}
	c := &d.tc
	if c.skip > 0 {
		c.skip--
		return t.timeOf(&d.m, line, now, d.loc)
	}
	nowNs, nowOK := unixNano(now)
	n := 2 * len(t.fields)
	if cap(c.offs) < n {
		c.offs = make([]int, n)
		c.id = -1
	}
	c.offs = c.offs[:n] // same length as before when c.id == id
	hit := nowOK && c.id == id && nowNs >= c.span.lo && nowNs < c.span.hi
	// the places of the fields, kept for the new entry on a miss
	caps := d.m.caps
	from, to := len(line), 0
	for i, f := range t.fields {
		fs, fe := caps[2*f.group], caps[2*f.group+1]
		rs, re := absentField, absentField
		if fs >= 0 && fe >= 0 {
			rs, re = fs-s, fe-s
			from, to = min(from, fs), max(to, fe)
		}
		if c.offs[2*i] != rs || c.offs[2*i+1] != re {
			c.offs[2*i], c.offs[2*i+1] = rs, re
			hit = false
		}
	}
	if from > to {
		from, to = 0, 0
	}
	if hit && string(c.text) == line[from:to] {
		c.misses = 0
		return c.tm, c.valid
	}
	if c.misses++; c.misses >= missLimit {
		c.skip = probeEvery - 1
	}
	tm, valid, span := t.timeSpan(&d.m, line, now, d.loc)
	if !nowOK || span.lo >= span.hi || to-from > maxCachedText {
		c.id = -1
		return tm, valid
	}
	c.id, c.tm, c.valid, c.span = id, tm, valid, span
	c.text = append(c.text[:0], line[from:to]...)
	return tm, valid
}

// timeCacheable reports whether the times of pattern template t are worth
// caching: not for {WPLL} or templates without a date (their times depend
// on now in ways timeSpan does not track, so they would only miss).
func timeCacheable(t *template) bool {
	if t.kind != kindPattern || t.wpll || t.none {
		return false
	}
	for _, f := range t.fields {
		switch f.kind {
		case fkMonth, fkMonthName, fkMonthAbbr, fkDay, fkYearDay, fkWeekSun, fkWeekMon, fkEpoch:
			return true
		}
	}
	return false
}

func (d *Detector) tmpl(pos int) *template { return d.set.templates[d.order[pos]] }

// searchAt runs the template at position pos of the order on line[from:to],
// counting successful searches as fail2ban's templates count their hits.
func (d *Detector) searchAt(pos int, line string, from, to int) (int, int, bool) {
	id := d.order[pos]
	t := d.set.templates[id]
	if t.direct != nil {
		s, e, res := t.direct.search(&d.m, t.prog, line, from, to)
		switch res {
		case directMatch:
			d.m.caps[0], d.m.caps[1] = s, e
			d.matches[id]++
			return s, e, true
		case directNo:
			return 0, 0, false
		}
	} else if t.seq != nil {
		s, e, res := t.seq.search(&d.m, line, from, to)
		switch res {
		case directMatch:
			d.m.caps[0], d.m.caps[1] = s, e
			d.matches[id]++
			return s, e, true
		case directNo:
			return 0, 0, false
		}
	}
	s, e, ok := d.m.search(t.prog, line, from, to)
	if ok {
		d.matches[id]++
	}
	return s, e, ok
}

// matchTime picks the template for line, following fail2ban's
// DateDetector.matchTime: first the last winner at its last place (a cheap
// check of the characters around it), then all templates in order, where a
// match further into the line than the winner's usual place is only kept in
// reserve, because a date inside the message text (attacker-controlled) must
// not beat the date of the line. It returns the template id; the match is in
// d.m.caps.
func (d *Detector) matchTime(line string) (int, bool) {
	n := len(d.order)
	const far = 1<<31 - 1
	found, foundStart, foundEnd := -1, far, 0
	ignore := -1
	matched := false
	var start, end int
	i := d.lastIdx
	if i < n {
		t := d.tmpl(i)
		if t.anchored() {
			start, end, matched = d.searchAt(i, line, 0, len(line))
			ignore = i
		} else {
			dist, endp := d.toByte(line, d.lastPos), d.toByte(line, d.lastEnd)
			if (charBefore(line, dist) == d.lastPosPrev || charAt(line, dist) == d.lastPosAt && !isAlnumOrNone(d.lastPosAt)) &&
				(charAt(line, endp) == d.lastEndAt || charBefore(line, endp) == d.lastEndPrev && !isAlnumOrNone(d.lastEndPrev)) {
				start, end, matched = d.searchAt(i, line, dist, endp)
			} else {
				start, end, matched = d.searchAt(i, line, 0, len(line))
				ignore = i
			}
		}
		if matched && !(n == 1 || t.anchored() || d.toCP(line, start) == d.lastPos && d.toCP(line, end) == d.lastEnd) {
			// moved: maybe another format now; keep it in reserve
			found, foundStart, foundEnd = i, d.toCP(line, start), end
			copy(d.reserve, d.m.caps)
			matched = false
		}
	}
	if !matched {
		for i = 0; i < n; i++ {
			if i == ignore {
				continue
			}
			start, end, matched = d.searchAt(i, line, 0, len(line))
			if !matched {
				continue
			}
			id := d.order[i]
			if i+1 >= n || d.set.templates[id].anchored() {
				break
			}
			if start == 0 && d.hits[id] > 0 && d.matches[d.order[i+1]] == 0 {
				break
			}
			if cs := d.toCP(line, start); cs > d.distance[id] || cs > d.lastPos {
				// further into the line than usual: a date in the message?
				if cs < foundStart {
					found, foundStart, foundEnd = i, cs, end
					copy(d.reserve, d.m.caps)
				}
				matched = false
				continue
			}
			break
		}
		if !matched && found >= 0 {
			i, end = found, foundEnd
			copy(d.m.caps, d.reserve)
			start = d.m.caps[0]
			matched = true
		}
	}
	if !matched {
		return 0, false
	}
	id := d.order[i]
	d.hits[id]++
	d.lastUsed[id] = d.nowSec
	cs := d.toCP(line, start)
	d.distance[id] = cs
	if d.firstUnused == i {
		d.firstUnused++
	}
	d.lastPos, d.lastPosPrev, d.lastPosAt = cs, charBefore(line, start), charAt(line, start)
	d.lastEnd, d.lastEndPrev, d.lastEndAt = d.toCP(line, end), charEndingAt(line, end), charAt(line, end)
	if i != 0 && i != d.lastIdx {
		i = d.reorder(i)
	}
	d.lastIdx = i
	return id, true
}

func (d *Detector) weight(id int) float64 {
	return float64(d.hits[id]) * d.set.templates[id].weight / float64(max(1, d.distance[id]))
}

// reorder moves the template at position num up (to the first unused place
// or half way), if it weighs more than the one there or that one has not
// been used for five minutes; failing that, one place up.
func (d *Detector) reorder(num int) int {
	id := d.order[num]
	untime := d.lastUsed[id] - 300
	w := d.weight(id)
	pos := num / 2
	if d.firstUnused < num {
		pos = d.firstUnused
	}
	movable := func(p int) bool {
		o := d.order[p]
		return w > d.weight(o) || untime > d.lastUsed[o]
	}
	if !movable(pos) {
		if pos == num-1 {
			return num
		}
		pos = num - 1
		if !movable(pos) {
			return num
		}
	}
	copy(d.order[pos+1:num+1], d.order[pos:num])
	d.order[pos] = id
	for d.firstUnused < len(d.order) && d.hits[d.order[d.firstUnused]] > 0 {
		d.firstUnused++
	}
	return pos
}

// Characters around match boundaries, -1 for "none" (Python's empty slice).

func charAt(s string, i int) rune {
	if i < 0 || i >= len(s) {
		return -1
	}
	r, _ := runeAt(s, i)
	return r
}

func charBefore(s string, i int) rune {
	if i <= 0 || i > len(s) {
		return -1
	}
	r, _ := runeBefore(s, i)
	return r
}

// charEndingAt is Python's line[end-1], which for end 0 is the last
// character of the line.
func charEndingAt(s string, i int) rune {
	if i == 0 {
		if s == "" {
			return -1
		}
		r, _ := runeBefore(s, len(s))
		return r
	}
	return charBefore(s, i)
}

func isAlnumOrNone(r rune) bool { return r >= 0 && isAlnumRune(r) }

// asciiUpTo reports whether line[:n] is ASCII, scanning only what earlier
// calls for this line have not.
func (d *Detector) asciiUpTo(line string, n int) bool {
	n = min(n, len(line))
	if n <= d.ascScan {
		return d.ascEnd >= n
	}
	if d.ascEnd < d.ascScan {
		return false // a non-ASCII byte was found before
	}
	a := d.ascScan + asciiPrefix(line[d.ascScan:], n-d.ascScan)
	d.ascScan, d.ascEnd = n, a
	if a < n {
		d.ascScan = a + 1
	}
	return a >= n
}

func (d *Detector) toCP(line string, b int) int {
	if d.asciiUpTo(line, b) {
		return b
	}
	return byteToCP(line, b)
}

func (d *Detector) toByte(line string, cp int) int {
	if d.asciiUpTo(line, cp) {
		return cp
	}
	return cpToByte(line, cp)
}

// asciiPrefix returns the length of the ASCII prefix of s[:n].
func asciiPrefix(s string, n int) int {
	n = min(n, len(s))
	i := 0
	for ; i+8 <= n; i += 8 {
		if s[i]|s[i+1]|s[i+2]|s[i+3]|s[i+4]|s[i+5]|s[i+6]|s[i+7] >= utf8.RuneSelf {
			break
		}
	}
	for ; i < n && s[i] < utf8.RuneSelf; i++ {
	}
	return i
}

// cpToByte converts a character offset in s to a byte offset; offsets past
// the end stay past the end by as much.
func cpToByte(s string, cp int) int {
	a := asciiPrefix(s, cp)
	if a == cp {
		return cp
	}
	i, c := a, a
	for i < len(s) && c < cp {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
		c++
	}
	return i + (cp - c)
}

// byteToCP converts a byte offset (at most len(s)) to a character offset.
func byteToCP(s string, b int) int {
	a := asciiPrefix(s, b)
	if a == b {
		return b
	}
	return a + utf8.RuneCountInString(s[a:b])
}
