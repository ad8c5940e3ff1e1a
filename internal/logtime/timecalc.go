package logtime

import (
	"math"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Turning the groups of a match into a time, with fail2ban's rules:
// a missing year is this year unless that is more than a day ahead of now
// (then last year); a missing date is today unless that is ahead of now (then
// yesterday); %I without %p is a morning hour; an explicit zone wins over the
// detector's location. Invalid readings (Feb 30, 25:00, an unknown zone name)
// give no time.

type fieldKind uint8

const (
	fkYear2 fieldKind = iota + 1
	fkYear
	fkMonth
	fkMonthName
	fkMonthAbbr
	fkDay
	fkHour
	fkHour12
	fkAMPM
	fkMinute
	fkSecond
	fkFraction
	fkDayName
	fkDayAbbr
	fkWeekday
	fkYearDay
	fkWeekSun // %U
	fkWeekMon // %W
	fkZone    // z or Z
	fkEpoch   // %s (logjail)
)

type fieldRef struct {
	kind  fieldKind
	group int
}

var fieldNames = map[string]fieldKind{
	"y": fkYear2, "Y": fkYear, "m": fkMonth, "B": fkMonthName, "b": fkMonthAbbr,
	"d": fkDay, "H": fkHour, "I": fkHour12, "p": fkAMPM, "M": fkMinute, "S": fkSecond,
	"f": fkFraction, "A": fkDayName, "a": fkDayAbbr, "w": fkWeekday, "j": fkYearDay,
	"U": fkWeekSun, "W": fkWeekMon, "z": fkZone, "Z": fkZone, "s": fkEpoch,
}

// fieldsOf lists the named groups that carry time fields, in group order
// (when two groups set the same field, the later one wins, as in fail2ban).
func fieldsOf(p *program) []fieldRef {
	var out []fieldRef
	for name, g := range p.names {
		if k, ok := fieldNames[name]; ok {
			out = append(out, fieldRef{k, g})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].group < out[j].group })
	return out
}

// reading collects the fields of one match.
type reading struct {
	year, month, day                int
	hour, minute, second, nsec      int
	hour12, ampm                    int // ampm: 0 none, 1 am, 2 pm, 3 other
	hasHour12                       bool
	weekday, yearDay, week          int
	weekStartsMon                   bool
	hasYear, hasMonth, hasDay       bool
	hasWeekday, hasYearDay, hasWeek bool
	zoneSet                         bool
	zoneOffset                      int // seconds east of UTC
	epoch                           int64
	hasEpoch                        bool
}

// timeOf computes the time of a pattern template's match.
func (t *template) timeOf(m *machine, line string, now time.Time, loc *time.Location) (time.Time, bool) {
	tm, ok, _ := t.timeSpan(m, line, now, loc)
	return tm, ok
}

// nowSpan is a range [lo, hi) of Unix nanoseconds: the values of now for
// which a computed time stays what it is.
type nowSpan struct{ lo, hi int64 }

var (
	alwaysSpan = nowSpan{math.MinInt64, math.MaxInt64}
	noSpan     = nowSpan{}
)

// maxCacheSec bounds the Unix seconds of the nows (and computed times) the
// time cache takes, so that the arithmetic on Unix nanoseconds cannot
// overflow: about the years 1685 to 2255. The spans of their years stay
// within maxSpanSec.
const (
	maxCacheSec = 9e9
	maxSpanSec  = maxCacheSec + 400*86400
)

// unixNano returns t's Unix nanoseconds, and whether t is within
// ±maxCacheSec (else they are not).
func unixNano(t time.Time) (int64, bool) {
	s := t.Unix()
	return s*1e9 + int64(t.Nanosecond()), s >= -maxCacheSec && s <= maxCacheSec
}

// timeSpan is timeOf that also reports the nows for which the result is
// the same (the whole range when it does not depend on now; an empty span
// for the readings whose now-dependence is not worked out here).
func (t *template) timeSpan(m *machine, line string, now time.Time, loc *time.Location) (time.Time, bool, nowSpan) {
	var rd reading
	caps := m.caps
	for _, f := range t.fields {
		s, e := caps[2*f.group], caps[2*f.group+1]
		if s < 0 || e < 0 {
			continue
		}
		if !rd.set(f.kind, line[s:e]) {
			return time.Time{}, false, alwaysSpan
		}
	}
	if rd.hasHour12 {
		h := rd.hour12
		switch rd.ampm {
		case 0, 1:
			if h == 12 {
				h = 0
			}
		case 2:
			if h != 12 {
				h += 12
			}
		}
		rd.hour = h
	}
	if rd.hasEpoch {
		return time.Unix(rd.epoch, int64(rd.nsec)).In(loc), true, alwaysSpan
	}
	zone := loc
	if rd.zoneSet {
		zone = m.fixedZone(rd.zoneOffset)
	}
	if t.wpll && rd.hasHour12 && rd.ampm == 0 {
		tm, ok := rd.nearestBefore(now, zone)
		return tm, ok, noSpan
	}
	// Without a year, everything below depends on now through the year of
	// now in zone (span) and, at the end, through which side of the
	// candidate less a day now lies.
	span := alwaysSpan
	assumeYear := !rd.hasYear
	if assumeYear {
		rd.year = m.readYear.in(now, zone)
		span = noSpan
		if m.readYear.lo >= -maxSpanSec && m.readYear.hi <= maxSpanSec {
			span = nowSpan{m.readYear.lo * 1e9, m.readYear.hi * 1e9}
		}
	}
	if !rd.hasMonth || !rd.hasDay {
		if !rd.hasYearDay && rd.hasWeek && rd.hasWeekday {
			rd.yearDay = julianFromWeek(rd.year, rd.week, rd.weekday, rd.weekStartsMon)
			rd.hasYearDay = true
		}
		if rd.hasYearDay {
			d := time.Date(rd.year, 1, rd.yearDay, 0, 0, 0, 0, time.UTC)
			rd.year, rd.month, rd.day = d.Year(), int(d.Month()), d.Day()
			rd.hasMonth, rd.hasDay = true, true
		}
	}
	assumeToday := false
	if !rd.hasMonth && !rd.hasDay {
		_, mo, d := now.In(zone).Date()
		rd.month, rd.day = int(mo), d
		assumeToday = true
		span = noSpan
	}
	if !rd.hasMonth && !assumeToday || !rd.hasDay && !assumeToday {
		return time.Time{}, false, span // fail2ban cannot build a date from half of one
	}
	if !validDate(rd.year, rd.month, rd.day) || !validClock(rd.hour, rd.minute, rd.second) {
		return time.Time{}, false, span
	}
	tm := time.Date(rd.year, time.Month(rd.month), rd.day, rd.hour, rd.minute, rd.second, rd.nsec, zone)
	if assumeToday && tm.After(now) {
		tm = time.Date(rd.year, time.Month(rd.month), rd.day-1, rd.hour, rd.minute, rd.second, rd.nsec, zone)
	}
	if assumeYear {
		// tm.After(now + 24h) is now < tm - 24h
		ahead := tm.After(now.Add(24 * time.Hour))
		if span.lo < span.hi {
			if ns, ok := unixNano(tm); !ok {
				span = noSpan
			} else if pivot := ns - int64(24*time.Hour); ahead {
				span.hi = min(span.hi, pivot)
			} else {
				span.lo = max(span.lo, pivot)
			}
		}
		if ahead {
			if !validDate(rd.year-1, rd.month, rd.day) {
				return time.Time{}, false, span
			}
			tm = time.Date(rd.year-1, time.Month(rd.month), rd.day, rd.hour, rd.minute, rd.second, rd.nsec, zone)
		}
	}
	return tm, true, span
}

// yearSpan remembers the span of the year of the last "now" seen (it rarely
// changes between two lines).
type yearSpan struct {
	zone   *time.Location
	lo, hi int64
	year   int
}

// in returns the year of now in zone.
func (s *yearSpan) in(now time.Time, zone *time.Location) int {
	u := now.Unix()
	if zone == s.zone && u >= s.lo && u < s.hi {
		return s.year
	}
	y := now.In(zone).Year()
	s.zone, s.year = zone, y
	s.lo = time.Date(y, 1, 1, 0, 0, 0, 0, zone).Unix()
	s.hi = time.Date(y+1, 1, 1, 0, 0, 0, 0, zone).Unix()
	return y
}

// wpllSlack is how far after now a {WPLL} reading may lie and still count as
// "before now", for clock skew between the logging host and us.
const wpllSlack = 5 * time.Minute

// nearestBefore resolves a 12-hour reading without am/pm ({WPLL}). The year
// is found as for any stamp without one (this year, unless the morning
// reading is more than a day ahead of now); then of the morning and evening
// readings the later one not after now (plus wpllSlack) wins, or the morning
// one if both are ahead. Without a date, today's and yesterday's readings
// are the candidates.
func (rd *reading) nearestBefore(now time.Time, zone *time.Location) (time.Time, bool) {
	h := rd.hour12 % 12
	limit := now.Add(wpllSlack)
	at := func(y, mo, d, hour int) (time.Time, bool) {
		if !validDate(y, mo, d) || !validClock(hour, rd.minute, rd.second) {
			return time.Time{}, false
		}
		return time.Date(y, time.Month(mo), d, hour, rd.minute, rd.second, rd.nsec, zone), true
	}
	var cands [4]time.Time
	n := 0
	add := func(y, mo, d int) {
		for _, hour := range [2]int{h, h + 12} {
			if c, ok := at(y, mo, d, hour); ok {
				cands[n] = c
				n++
			}
		}
	}
	nowz := now.In(zone)
	switch {
	case rd.hasMonth && rd.hasDay:
		y := rd.year
		if !rd.hasYear {
			y = nowz.Year()
			if am, ok := at(y, rd.month, rd.day, h); !ok || am.After(now.Add(24*time.Hour)) {
				y--
			}
		}
		add(y, rd.month, rd.day)
	case !rd.hasMonth && !rd.hasDay:
		for back := 1; back >= 0; back-- {
			d := nowz.AddDate(0, 0, -back)
			add(d.Year(), int(d.Month()), d.Day())
		}
	}
	if n == 0 {
		return time.Time{}, false
	}
	best, found := cands[0], false
	for _, c := range cands[:n] {
		if !c.After(limit) && (!found || c.After(best)) {
			best, found = c, true
		}
	}
	if !found {
		best = cands[0] // all ahead: the earliest
		for _, c := range cands[:n] {
			if c.Before(best) {
				best = c
			}
		}
	}
	return best, true
}

func validClock(h, m, s int) bool {
	return h >= 0 && h <= 23 && m >= 0 && m <= 59 && s >= 0 && s <= 59
}

func validDate(y, m, d int) bool {
	if y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= daysIn(m, y)
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// julianFromWeek gives the day of the year of a %U/%W week and a weekday
// (Monday = 0), the way Python's strptime computes it.
func julianFromWeek(year, week, weekday int, startsMon bool) int {
	first := (int(time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Weekday()) + 6) % 7 // Monday = 0
	if !startsMon {
		first = (first + 1) % 7
		weekday = (weekday + 1) % 7
	}
	if week == 0 {
		return 1 + weekday - first
	}
	week0 := (7 - first) % 7
	return 1 + week0 + 7*(week-1) + weekday
}

// fixedZone returns a zone for the offset; the machine keeps the few it
// has made (time.FixedZone allocates for offsets that are not whole hours).
func (m *machine) fixedZone(offset int) *time.Location {
	if offset == 0 {
		return time.UTC
	}
	for _, z := range m.zones {
		if z.offset == offset {
			return z.loc
		}
	}
	loc := time.FixedZone("", offset)
	if len(m.zones) < maxZones {
		m.zones = append(m.zones, zoneEntry{offset, loc})
	}
	return loc
}

const maxZones = 16

type zoneEntry struct {
	offset int
	loc    *time.Location
}

// set stores one field; false means fail2ban would reject the value.
func (rd *reading) set(k fieldKind, v string) bool {
	switch k {
	case fkYear2:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		if n <= 2000 {
			n += 2000
		}
		rd.year, rd.hasYear = n, true
	case fkYear:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		rd.year, rd.hasYear = n, true
	case fkMonth:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		rd.month, rd.hasMonth = n, true
	case fkMonthAbbr, fkMonthName:
		names := monthAbbrs[:]
		if k == fkMonthName {
			names = monthNames[:]
		}
		n := nameIndex(names, v)
		if n < 0 {
			return false
		}
		rd.month, rd.hasMonth = n+1, true
	case fkDay:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		rd.day, rd.hasDay = n, true
	case fkHour, fkMinute, fkSecond:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		switch k {
		case fkHour:
			rd.hour = n
		case fkMinute:
			rd.minute = n
		default:
			rd.second = n
		}
	case fkHour12:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		rd.hour12, rd.hasHour12 = n, true
	case fkAMPM:
		switch {
		case v == "":
			rd.ampm = 0
		case lowerIs(v, "am"):
			rd.ampm = 1
		case lowerIs(v, "pm"):
			rd.ampm = 2
		default:
			rd.ampm = 3
		}
	case fkFraction:
		// fail2ban drops sub-seconds; we keep them when they are plain digits.
		ns := 0
		for i := 0; i < 9; i++ {
			ns *= 10
			if i < len(v) {
				if v[i] < '0' || v[i] > '9' {
					return true
				}
				ns += int(v[i] - '0')
			}
		}
		if len(v) <= 9 {
			rd.nsec = ns
		}
	case fkDayName, fkDayAbbr:
		names := dayAbbrs[:]
		if k == fkDayName {
			names = dayNames[:]
		}
		n := nameIndex(names, v)
		if n < 0 {
			return false
		}
		rd.weekday, rd.hasWeekday = n, true
	case fkWeekday:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		n--
		if n < 0 {
			n = 6
		}
		rd.weekday, rd.hasWeekday = n, true
	case fkYearDay:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		rd.yearDay, rd.hasYearDay = n, true
	case fkWeekSun, fkWeekMon:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		rd.week, rd.hasWeek, rd.weekStartsMon = n, true, k == fkWeekMon
	case fkZone:
		if v == "Z" || v == "UTC" || v == "GMT" {
			rd.zoneSet, rd.zoneOffset = true, 0
			return true
		}
		off, ok := zoneOffset(v)
		if !ok {
			return false
		}
		rd.zoneSet, rd.zoneOffset = true, off
	case fkEpoch:
		n, ok := pyInt(v)
		if !ok {
			return false
		}
		rd.epoch, rd.hasEpoch = int64(n), true
	}
	return true
}

// nameIndex finds v (case-insensitively) in a list of lowercase names.
func nameIndex(names []string, v string) int {
	if len(v) == 3 && v[0]|v[1]|v[2] < utf8.RuneSelf {
		a, b, c := v[0]|0x20, v[1]|0x20, v[2]|0x20
		for i, n := range names {
			if len(n) == 3 && n[0] == a && n[1] == b && n[2] == c && isASCIILetter(rune(v[0])) && isASCIILetter(rune(v[1])) && isASCIILetter(rune(v[2])) {
				return i
			}
		}
		return -1
	}
	for i, n := range names {
		if lowerIs(v, n) {
			return i
		}
	}
	return -1
}

// lowerIs reports whether Python's v.lower() == name (lowercase ASCII),
// without allocating.
func lowerIs(v, name string) bool {
	i := 0
	for _, r := range v {
		if i >= len(name) || r == '\u0130' { // İ lowers to two characters
			return false
		}
		if unicode.ToLower(r) != rune(name[i]) {
			return false
		}
		i++
	}
	return i == len(name)
}

// pyInt parses an integer the way Python's int() reads a str: surrounding
// whitespace, a sign, digits of any script, single underscores between
// digits.
func pyInt(s string) (int, bool) {
	switch len(s) {
	case 2:
		if a, b := s[0]-'0', s[1]-'0'; a <= 9 && b <= 9 {
			return int(a)*10 + int(b), true
		}
	case 1:
		if a := s[0] - '0'; a <= 9 {
			return int(a), true
		}
	}
	if n := len(s); n > 0 && n <= 9 {
		// the common case: plain ASCII digits
		v := 0
		i := 0
		for ; i < n; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				break
			}
			v = v*10 + int(c-'0')
		}
		if i == n {
			return v, true
		}
	}
	s = strings.TrimFunc(s, isSpaceRune)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	n := 0
	prevUnderscore := true // no leading underscore
	for i := 0; i < len(s); {
		r, w := runeAt(s, i)
		i += w
		if r == '_' {
			if prevUnderscore {
				return 0, false
			}
			prevUnderscore = true
			continue
		}
		d := -1
		if isDigitRune(r) {
			d = digitValue(r)
		}
		if d < 0 {
			return 0, false
		}
		if n > 1e12 {
			return 0, false // far out of any valid range
		}
		n = n*10 + d
		prevUnderscore = false
	}
	if prevUnderscore {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// tzAbbrOffsets holds the zone abbreviations fail2ban knows, in minutes east
// of UTC (fixed offsets: CET never turns into CEST by itself).
var tzAbbrOffsets = map[string]int{
	"Y": -720,
	"X": -660, "NUT": -660, "SST": -660,
	"W": -600, "CKT": -600, "HAST": -600, "HST": -600, "TAHT": -600, "TKT": -600,
	"V": -540, "AKST": -540, "GAMT": -540, "GIT": -540, "HADT": -540, "HNY": -540,
	"U": -480, "AKDT": -480, "CIST": -480, "HAY": -480, "HNP": -480, "PST": -480, "PT": -480,
	"T": -420, "HAP": -420, "HNR": -420, "MST": -420, "PDT": -420,
	"S": -360, "CST": -360, "EAST": -360, "GALT": -360, "HAR": -360, "HNC": -360, "MDT": -360,
	"R": -300, "CDT": -300, "COT": -300, "EASST": -300, "ECT": -300, "EST": -300, "ET": -300, "HAC": -300, "HNE": -300, "PET": -300,
	"Q": -240, "AST": -240, "BOT": -240, "CLT": -240, "COST": -240, "EDT": -240, "FKT": -240, "GYT": -240, "HAE": -240, "HNA": -240, "PYT": -240,
	"P": -180, "ADT": -180, "ART": -180, "BRT": -180, "CLST": -180, "FKST": -180, "GFT": -180, "HAA": -180, "PMST": -180, "PYST": -180, "SRT": -180, "UYT": -180, "WGT": -180,
	"O": -120, "BRST": -120, "FNT": -120, "PMDT": -120, "UYST": -120, "WGST": -120,
	"N": -60, "AZOT": -60, "CVT": -60, "EGT": -60,
	"Z": 0, "EGST": 0, "GMT": 0, "UTC": 0, "WET": 0, "WT": 0,
	"A": 60, "CET": 60, "DFT": 60, "WAT": 60, "WEDT": 60, "WEST": 60,
	"B": 120, "CAT": 120, "CEDT": 120, "CEST": 120, "EET": 120, "SAST": 120, "WAST": 120,
	"C": 180, "EAT": 180, "EEDT": 180, "EEST": 180, "IDT": 180, "MSK": 180,
	"D": 240, "AMT": 240, "AZT": 240, "GET": 240, "GST": 240, "KUYT": 240, "MSD": 240, "MUT": 240, "RET": 240, "SAMT": 240, "SCT": 240,
	"E": 300, "AMST": 300, "AQTT": 300, "AZST": 300, "HMT": 300, "MAWT": 300, "MVT": 300, "PKT": 300, "TFT": 300, "TJT": 300, "TMT": 300, "UZT": 300, "YEKT": 300,
	"F": 360, "ALMT": 360, "BIOT": 360, "BTT": 360, "IOT": 360, "KGT": 360, "NOVT": 360, "OMST": 360, "YEKST": 360,
	"G": 420, "CXT": 420, "DAVT": 420, "HOVT": 420, "ICT": 420, "KRAT": 420, "NOVST": 420, "OMSST": 420, "THA": 420, "WIB": 420,
	"H": 480, "ACT": 480, "AWST": 480, "BDT": 480, "BNT": 480, "CAST": 480, "HKT": 480, "IRKT": 480, "KRAST": 480, "MYT": 480, "PHT": 480, "SGT": 480, "ULAT": 480, "WITA": 480, "WST": 480,
	"I": 540, "AWDT": 540, "IRKST": 540, "JST": 540, "KST": 540, "PWT": 540, "TLT": 540, "WDT": 540, "WIT": 540, "YAKT": 540,
	"K": 600, "AEST": 600, "ChST": 600, "PGT": 600, "VLAT": 600, "YAKST": 600, "YAPT": 600,
	"L": 660, "AEDT": 660, "LHDT": 660, "MAGT": 660, "NCT": 660, "PONT": 660, "SBT": 660, "VLAST": 660, "VUT": 660,
	"M": 720, "ANAST": 720, "ANAT": 720, "FJT": 720, "GILT": 720, "MAGST": 720, "MHT": 720, "NZST": 720, "PETST": 720, "PETT": 720, "TVT": 720, "WFT": 720,
	"FJST": 780, "NZDT": 780,
	"NFT":  690,
	"ACDT": 630, "LHST": 630,
	"ACST": 570,
	"CCT":  390, "MMT": 390,
	"NPT": 345,
	"SLT": 330,
	"AFT": 270, "IRDT": 270,
	"IRST": 210,
	"HAT":  -150, "NDT": -150,
	"HNT": -210, "NST": -210, "NT": -210,
	"HLV": -270, "VET": -270,
	"MART": -570, "MIT": -570,
}

// zoneOffset reads "ABBR", "+hh", "+hhmm", "+hh:mm" or "ABBR+hh[:]mm" (the
// abbreviation one or three to five upper-case letters) into seconds east of
// UTC; an offset after an abbreviation adds to it, as in fail2ban.
func zoneOffset(v string) (int, bool) {
	// the common forms, +hhmm and +hh:mm in ASCII
	if len(v) >= 5 && (v[0] == '+' || v[0] == '-') && (v[1] == '0' || v[1] == '1') {
		if h, ok := pyInt(v[1:3]); ok {
			mm := ""
			switch {
			case len(v) == 5:
				mm = v[3:5]
			case len(v) == 6 && v[3] == ':':
				mm = v[4:6]
			}
			if m, ok := pyInt(mm); ok && len(mm) == 2 && mm[0] <= '9' && mm[1] <= '9' {
				off := (h*60 + m) * 60
				if v[0] == '-' {
					off = -off
				}
				return off, true
			}
		}
	}
	r := []rune(v)
	i := 0
	for i < len(r) && i < 5 && r[i] >= 'A' && r[i] <= 'Z' {
		i++
	}
	// the abbreviation is one or three to five letters; back off to a valid length
	abbr := ""
	switch {
	case i >= 3:
		abbr = string(r[:i])
	case i >= 1:
		i = 1
		abbr = string(r[:1])
	}
	rest := r[i:]
	base, known := 0, true
	if abbr != "" {
		base, known = tzAbbrOffsets[abbr]
	}
	if len(rest) == 0 {
		if abbr == "" {
			return 0, true
		}
		return base * 60, known
	}
	// [+-][01]\d(?::?\d{2})?
	if rest[0] != '+' && rest[0] != '-' || len(rest) < 3 || rest[1] != '0' && rest[1] != '1' || !isDigitRune(rest[2]) {
		return 0, false
	}
	sign := 1
	if rest[0] == '-' {
		sign = -1
	}
	hh := digitValue(rest[1])*10 + digitValue(rest[2])
	mm := 0
	switch {
	case len(rest) == 3:
	case len(rest) == 5 && isDigitRune(rest[3]) && isDigitRune(rest[4]):
		mm = digitValue(rest[3])*10 + digitValue(rest[4])
	case len(rest) == 6 && rest[3] == ':' && isDigitRune(rest[4]) && isDigitRune(rest[5]):
		mm = digitValue(rest[4])*10 + digitValue(rest[5])
	default:
		return 0, false
	}
	if !known {
		return 0, false
	}
	return (base + sign*(hh*60+mm)) * 60, true
}

// epochTime reads an epoch number: seconds with an optional fraction, or for
// LEPOCH 13 digits of milliseconds (maybe with a fraction) or 16 digits of
// microseconds.
func epochTime(v string, long bool) (time.Time, bool) {
	intPart, frac, _ := strings.Cut(v, ".")
	digits := make([]byte, 0, 32)
	for _, r := range intPart {
		d := digitValue(r)
		if d < 0 {
			return time.Time{}, false
		}
		digits = append(digits, byte('0'+d))
	}
	point := len(digits)
	for _, r := range frac {
		d := digitValue(r)
		if d < 0 {
			return time.Time{}, false
		}
		digits = append(digits, byte('0'+d))
	}
	if long && utf8.RuneCountInString(v) >= 13 {
		if utf8.RuneCountInString(v) >= 16 && !strings.Contains(v, ".") {
			point -= 6
		} else {
			point -= 3
		}
	}
	var sec int64
	for _, c := range digits[:point] {
		sec = sec*10 + int64(c-'0')
	}
	var ns int64
	for i := 0; i < 9; i++ {
		ns *= 10
		if point+i < len(digits) {
			ns += int64(digits[point+i] - '0')
		}
	}
	return time.Unix(sec, ns), true
}

// tai64nTime reads "@4000000041f4104f00000000": 16 hex digits of TAI64
// seconds (2^62 + Unix seconds, leap seconds not corrected, as in fail2ban)
// and 8 of nanoseconds.
func tai64nTime(v string) (time.Time, bool) {
	if len(v) != 25 {
		return time.Time{}, false
	}
	var sec, ns int64
	for i := 2; i < 17; i++ {
		sec = sec<<4 | int64(hexVal(v[i]))
	}
	for i := 17; i < 25; i++ {
		ns = ns<<4 | int64(hexVal(v[i]))
	}
	if ns > 999999999 {
		ns = 0
	}
	return time.Unix(sec, ns), true
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
