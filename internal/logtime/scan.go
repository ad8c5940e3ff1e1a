package logtime

// Hand-written matchers for the automatic formats that real logs use most.
//
// A scanner stands for one default pattern (as compiled from its regex text)
// inside a program: the opScan instruction runs it, and it reports the first
// way, in Python's order of trying, in which the pattern alone matches at a
// position. If what follows the pattern in the program then fails, the
// machine falls back to the pattern's compiled instructions, which retry every
// way in order; so a scanner need not know its context, only be exact about
// the first way and about "no way at all". When unsure (non-ASCII text where
// \d or \s might match, an ambiguity) it says so and the instructions run.
//
// Exactness rests on an argument made per pattern: between two directives
// there is a literal (':', ' ', a separator) that no candidate of the first
// directive can end with one way and continue with another, so at most one
// candidate is viable and a later failure means no match. TestScanners and
// FuzzScanners compare each scanner with the compiled pattern.

const maxScanGroups = 9

type scanner struct {
	pattern string   // the default pattern it implements
	groups  []string // the named groups it sets, in slot order
	fn      func(c *scanCtx, p int) int
}

// scanners by default pattern.
var scanners = [...]scanner{
	{defaultPatterns[0], []string{"Y", "_sep", "m", "d", "H", "M", "S", "f", "z"}, scanISO},
	{defaultPatterns[1], []string{"a", "b", "d", "H", "M", "S", "f", "Y"}, scanSyslog},
	{defaultPatterns[2], []string{"a", "b", "d", "Y", "H", "M", "S", "f"}, scanSyslogYear},
	{defaultPatterns[4], []string{"d", "_sep", "b", "Y", "H", "M", "S", "f", "z"}, scanApache},
	{defaultPatterns[13], []string{"Y", "m", "d", "H", "M", "S", "f", "z"}, scanISOBasic},
	{defaultPatterns[14], []string{"Z", "a", "b", "d", "H", "M", "S", "f", "Y"}, scanZoneSyslog},
	{defaultPatterns[15], []string{"z", "a", "b", "d", "H", "M", "S", "f", "Y"}, scanOffsetSyslog},
	// the variant of fail2ban's nginx-bad-request, nginx-botsearch and
	// sogo-auth filters
	{`%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`, []string{"Y", "_sep", "m", "d", "H", "M", "S", "f", "z"}, scanISOOneSep},
}

func scannerFor(pattern string) int {
	for i := range scanners {
		if scanners[i].pattern == pattern {
			return i
		}
	}
	return -1
}

// scanCtx is the state of one scanner run.
type scanCtx struct {
	m      *machine
	s      string
	fold   bool
	unsure bool
	caps   [2 * maxScanGroups]int
	cands  [maxCands]cand
	zcands [maxCands]cand // zone ways, while cands serves the rest
}

func (c *scanCtx) reset(m *machine, s string, fold bool) {
	c.m, c.s, c.fold, c.unsure = m, s, fold, false
	c.resetCaps()
}

func (c *scanCtx) set(k, s, e int) { c.caps[2*k], c.caps[2*k+1] = s, e }

// peek returns the byte at i (0 past the end); a non-ASCII byte makes the
// run unsure, as \d, \s or case folding might match it.
func (c *scanCtx) peek(i int) byte {
	if i >= len(c.s) {
		return 0
	}
	b := c.s[i]
	if b >= 0x80 {
		c.unsure = true
		return 0
	}
	return b
}

// dir runs a directive at p and returns the end of its first candidate that
// is followed by a byte in next (any candidate if next is ""), or -1. Two
// different viable candidates make the run unsure.
func (c *scanCtx) dir(e enumFunc, p, k int, next string) int {
	n := e(c.m, c.s, p, c.fold, &c.cands)
	chosen := -1
	for i := 0; i < n; i++ {
		cd := c.cands[i]
		if next != "" {
			b := c.peek(cd.end)
			if c.unsure {
				return -1
			}
			if b == 0 || !hasByte(next, b) {
				continue
			}
		}
		if chosen >= 0 {
			c.unsure = true
			return -1
		}
		chosen = i
		c.set(k, cd.gs, cd.end)
		if next == "" {
			break
		}
	}
	if chosen < 0 {
		return -1
	}
	return c.caps[2*k+1]
}

// numField describes a field of one or two digits by the values its regex
// accepts in each form (all these regexes accept every two-digit string
// from lo2 to hi2, leading zero included, and every digit from lo1 up).
type numField struct {
	enum     enumFunc
	lo2, hi2 int
	lo1      int
}

var (
	fieldHour   = numField{enumHour, 0, 23, 0}   // [0-1]?\d|2[0-3]
	fieldHourK  = numField{enumHourK, 0, 29, 0}  // [0-2]?\d
	fieldMinute = numField{enumMinute, 0, 59, 0} // [0-5]?\d
	fieldSecond = numField{enumSecond, 0, 61, 0} // [0-5]?\d|6[0-1]
	fieldDay    = numField{enumDay, 1, 31, 1}    // [1-2]\d|[0 ]?[1-9]|3[0-1]
	fieldMonth  = numField{enumMonth, 1, 12, 1}  // 0?[1-9]|1[0-2]
)

// num is dir for a numField, with a fast path for ASCII digits followed by
// a byte of next: then exactly one form can be followed by it (next holds no
// digit), so its value decides.
func (c *scanCtx) num(f *numField, p, k int, next string) int {
	s := c.s
	if next != "" && p+2 < len(s) {
		d0, d1, b := s[p], s[p+1], s[p+2]
		if isDig(d0) && isDig(d1) && b < 0x80 && hasByte(next, b) {
			if v := int(d0-'0')*10 + int(d1-'0'); v >= f.lo2 && v <= f.hi2 {
				c.set(k, p, p+2)
				return p + 2
			}
			return -1
		}
		if isDig(d0) && d1 < 0x80 && hasByte(next, d1) {
			if int(d0-'0') >= f.lo1 {
				c.set(k, p, p+1)
				return p + 1
			}
			return -1
		}
	}
	return c.dir(f.enum, p, k, next)
}

func isDig(b byte) bool { return b >= '0' && b <= '9' }

func hasByte(set string, b byte) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == b {
			return true
		}
	}
	return false
}

func (c *scanCtx) tSet() string {
	if c.fold {
		return "Tt "
	}
	return "T "
}

// fraction: (?:[sep]%f)? at p, greedy; returns the new end.
func (c *scanCtx) fraction(p, k int, seps string) int {
	if b := c.peek(p); b != 0 && hasByte(seps, b) {
		if n := enumFraction(c.m, c.s, p+1, c.fold, &c.cands); n > 0 {
			c.set(k, c.cands[0].gs, c.cands[0].end)
			return c.cands[0].end
		}
	}
	return p
}

// zoneAfterSpaces: (?:\s*%z)? at p.
func (c *scanCtx) zoneAfterSpaces(p, k int) int {
	q := p
	for {
		b := c.peek(q)
		if c.unsure {
			return p
		}
		if b == 0 || asciiType[b]&ctSpace == 0 {
			break
		}
		q++
	}
	if n := enumZoneOffset(c.m, c.s, q, c.fold, &c.cands); n > 0 {
		c.set(k, c.cands[0].gs, c.cands[0].end)
		return c.cands[0].end
	}
	return p
}

// %ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?
func scanISO(c *scanCtx, p int) int { return c.iso(p, true) }

// %ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?
func scanISOOneSep(c *scanCtx, p int) int { return c.iso(p, false) }

func (c *scanCtx) iso(p int, twoSpaces bool) int {
	const gY, gSep, gm, gd, gH, gM, gS, gf, gz = 0, 1, 2, 3, 4, 5, 6, 7, 8
	e := c.dir(enumYearEx, p, gY, "-/.")
	if e < 0 {
		return -1
	}
	sep := c.s[e]
	c.set(gSep, e, e+1)
	if e = c.num(&fieldMonth, e+1, gm, seps[sep]); e < 0 {
		return -1
	}
	if e = c.num(&fieldDay, e+1, gd, c.tSet()); e < 0 {
		return -1
	}
	p = e + 1
	if twoSpaces && c.s[e] == ' ' && c.peek(p) == ' ' {
		p++ // "  ?": the hour cannot start with a space, so no way back
	}
	if e = c.hms(&fieldHour, p, gH, gM, gS); e < 0 {
		return -1
	}
	e = c.fraction(e, gf, ".,")
	return c.zoneAfterSpaces(e, gz)
}

// %ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?
func scanISOBasic(c *scanCtx, p int) int {
	const gY, gm, gd, gH, gM, gS, gf, gz = 0, 1, 2, 3, 4, 5, 6, 7
	e := c.dir(enumYearEx, p, gY, "")
	if e < 0 {
		return -1
	}
	if e = c.dir(enumMonthEx, e, gm, ""); e < 0 {
		return -1
	}
	if e = c.dir(enumDayEx, e, gd, c.tSet()); e < 0 {
		return -1
	}
	p = e + 1
	if c.s[e] == ' ' && c.peek(p) == ' ' {
		p++
	}
	if e = c.dir(enumHourEx, p, gH, ""); e < 0 {
		return -1
	}
	if e = c.dir(enumMinuteEx, e, gM, ""); e < 0 {
		return -1
	}
	if e = c.dir(enumSecondEx, e, gS, ""); e < 0 {
		return -1
	}
	e = c.fraction(e, gf, ".,")
	return c.zoneAfterSpaces(e, gz)
}

// optDay: (?:%a )? at p; returns the position after it.
func (c *scanCtx) optDay(p, k int) int {
	if s := c.s; p+4 <= len(s) && s[p]|s[p+1]|s[p+2]|s[p+3] < 0x80 {
		a, b, d := s[p], s[p+1], s[p+2]
		if c.fold {
			a, b, d = a|0x20, b|0x20, d|0x20
		}
		if s[p+3] == ' ' && dayIndex3(a, b, d) >= 0 && (c.fold || isASCIILetter(rune(s[p]))) {
			c.set(k, p, p+3)
			return p + 4
		}
		if s[p+3] != ' ' || dayIndex3(a, b, d) < 0 {
			return p
		}
	}
	if n := matchNames(dayAbbrs[:], c.s, p, c.fold, &c.cands); n > 0 {
		e := c.cands[0].end
		if c.peek(e) == ' ' {
			c.set(k, p, e)
			return e + 1
		}
	}
	return p
}

// clock: %k:%M:%S after the space that precedes %k's optional space.
func (c *scanCtx) clock(p, gH, gM, gS int) int {
	if c.peek(p) == ' ' {
		p++ // " ?" of %k: the hour group cannot start with a space
	}
	return c.hms(&fieldHourK, p, gH, gM, gS)
}

// hms scans hour:minute:second at p with the given hour field; returns the end or -1.
func (c *scanCtx) hms(hour *numField, p, gH, gM, gS int) int {
	e := c.num(hour, p, gH, ":")
	if e < 0 {
		return -1
	}
	if e = c.num(&fieldMinute, e+1, gM, ":"); e < 0 {
		return -1
	}
	return c.dir(enumSecond, e+1, gS, "")
}

// (?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?
//
// If the weekday was taken and the rest fails, leaving it out cannot help:
// %b would have to match a weekday name.
func scanSyslog(c *scanCtx, p int) int { return c.syslogAt(p, 0) }

// syslogAt scans the syslog form with its groups shifted by off (1 when a zone group comes
// first, see syslogAfterZone).
func (c *scanCtx) syslogAt(p, off int) int {
	ga, gb, gd, gH, gM, gS, gf, gY := off, off+1, off+2, off+3, off+4, off+5, off+6, off+7
	p = c.optDay(p, ga)
	e := c.dir(enumMonthAbbr, p, gb, " ")
	if e < 0 {
		return -1
	}
	if e = c.num(&fieldDay, e+1, gd, " "); e < 0 {
		return -1
	}
	if e = c.clock(e+1, gH, gM, gS); e < 0 {
		return -1
	}
	e = c.fraction(e, gf, ".")
	if c.peek(e) == ' ' {
		if n := enumYearEx(c.m, c.s, e+1, c.fold, &c.cands); n > 0 {
			c.set(gY, c.cands[0].gs, c.cands[0].end)
			e = c.cands[0].end
		}
	}
	return e
}

// (?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?
func scanSyslogYear(c *scanCtx, p int) int {
	const ga, gb, gd, gY, gH, gM, gS, gf = 0, 1, 2, 3, 4, 5, 6, 7
	p = c.optDay(p, ga)
	e := c.dir(enumMonthAbbr, p, gb, " ")
	if e < 0 {
		return -1
	}
	if e = c.num(&fieldDay, e+1, gd, " "); e < 0 {
		return -1
	}
	if e = c.dir(enumYearEx, e+1, gY, " "); e < 0 {
		return -1
	}
	if e = c.clock(e+1, gH, gM, gS); e < 0 {
		return -1
	}
	return c.fraction(e, gf, ".")
}

// %d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?
func scanApache(c *scanCtx, p int) int {
	const gd, gSep, gb, gY, gH, gM, gS, gf, gz = 0, 1, 2, 3, 4, 5, 6, 7, 8
	e := c.num(&fieldDay, p, gd, "-/")
	if e < 0 {
		return -1
	}
	sep := c.s[e]
	c.set(gSep, e, e+1)
	if e = c.dir(enumMonthAbbr, e+1, gb, seps[sep]); e < 0 {
		return -1
	}
	if e = c.dir(enumYearEx, e+1, gY, ""); e < 0 {
		return -1
	}
	if b := c.peek(e); b == ' ' || b == ':' {
		e++ // "[ :]?": the hour cannot start with either
	}
	if e = c.hms(&fieldHour, e, gH, gM, gS); e < 0 {
		return -1
	}
	e = c.fraction(e, gf, ".")
	if c.peek(e) == ' ' {
		if n := enumZoneOffset(c.m, c.s, e+1, c.fold, &c.cands); n > 0 {
			c.set(gz, c.cands[0].gs, c.cands[0].end)
			e = c.cands[0].end
		}
	}
	return e
}

// seps maps a separator byte to itself as a one-byte set.
var seps = [256]string{'-': "-", '/': "/", '.': "."}

// dayIndex3 maps a lowercase three-letter weekday abbreviation to 0..6.
func dayIndex3(a, b, c byte) int {
	for i, d := range dayAbbrs {
		if d[0] == a && d[1] == b && d[2] == c {
			return i
		}
	}
	return -1
}

// (?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?
func scanZoneSyslog(c *scanCtx, p int) int { return c.zoneThenSyslog(p, enumZoneName) }

// (?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?
func scanOffsetSyslog(c *scanCtx, p int) int { return c.zoneThenSyslog(p, enumZoneOffset) }

// zoneThenSyslog tries each way of the optional zone (followed by a space)
// in order, then none; the syslog part after it is exact (first way or no
// way), so the first zone way with which it matches is the regex's.
func (c *scanCtx) zoneThenSyslog(p int, zone enumFunc) int {
	zc := &c.zcands
	n := zone(c.m, c.s, p, c.fold, zc)
	for i := 0; i < n; i++ {
		e := zc[i].end
		if b := c.peek(e); c.unsure || b != ' ' {
			if c.unsure {
				return -1
			}
			continue
		}
		c.resetCaps()
		if end := c.syslogAfterZone(e + 1); end >= 0 || c.unsure {
			c.set(0, zc[i].gs, zc[i].end)
			return end
		}
	}
	c.resetCaps()
	return c.syslogAfterZone(p)
}

// syslogAfterZone is scanSyslog with its groups one slot later.
func (c *scanCtx) syslogAfterZone(p int) int { return c.syslogAt(p, 1) }

func (c *scanCtx) resetCaps() {
	for i := range c.caps {
		c.caps[i] = -1
	}
}
