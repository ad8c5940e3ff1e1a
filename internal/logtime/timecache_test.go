package logtime

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
	_ "time/tzdata" // zones with DST, wherever the tests run
	"unsafe"
)

// The time cache (Detector.tc) must give exactly what computing afresh
// gives, for every now: the same date text means another time when now
// crosses the start of a year (stamps without one) or comes within a day of
// the stamp (then it is this year's, not last year's).

// cacheCase is a pattern set and how to write stamps it reads.
type cacheCase struct {
	name     string
	patterns []string
	layout   string // time.Format layout of the stamp; the stamp's zone is the detector's
	zones    bool   // the layout writes the zone: stamps in random zones
	rest     string
}

var cacheCases = []cacheCase{
	{"auto-syslog", nil, "Jan _2 15:04:05", false, " host sshd[1]: x"},
	{"auto-syslog-frac", nil, "Jan _2 15:04:05.000", false, " host sshd[1]: x"},
	{"auto-apache", nil, "[02/Jan/2006:15:04:05 -0700]", true, ` "GET / HTTP/1.1" 401`},
	{"auto-iso", nil, "2006-01-02T15:04:05.000000-07:00", true, " host x"},
	{"dp-sshd", []string{`{^LN-BEG}%b %d %H:%M:%S`}, "Jan _2 15:04:05", false, " host sshd[1]: x"},
	{"dp-access", []string{`\[(%d/%b/%Y:%H:%M:%S %z)\] "`}, "[02/Jan/2006:15:04:05 -0700]", true, ` "GET / HTTP/1.1" 401`},
	{"zone-no-year", []string{`^%b %d %H:%M:%S %z`}, "Jan 02 15:04:05 -0700", true, " x"},
	{"fields-outside-date", []string{`^(%H:%M:%S) %b %d`}, "15:04:05 Jan 02", false, " x"},
	{"yearday", []string{`^%j %H:%M:%S`}, "002 15:04:05", false, " x"},
	{"week", []string{`^%W %w %H:%M:%S`}, "01 1 15:04:05", false, " x"},
	{"day-only", []string{`^%d %H:%M:%S`}, "02 15:04:05", false, " x"},
	{"hour12", []string{`^%b %d %I:%M:%S`}, "Jan 02 03:04:05", false, " x"},
	{"time-only", []string{`^%H:%M:%S`}, "15:04:05", false, " x"},
	{"wpll", []string{`{^LN-BEG}{WPLL}`}, "Jan 02 03:04:05", false, " 192.0.2.1 admin x"},
	{"year", []string{`^%b %d %H:%M:%S %Y`}, "Jan 02 15:04:05 2006", false, " x"},
	{"epoch", nil, "", false, " x"},
}

// edgeStamps are month-days where the year matters: the turn of the year
// and Feb 29.
var edgeStamps = [][2]int{{12, 31}, {1, 1}, {2, 29}, {2, 28}, {3, 1}, {12, 30}, {1, 2}}

var cacheYears = []int{2023, 2024, 2025, 2027, 2028, 2100}

func cacheZones(t testing.TB) []*time.Location {
	zs := []*time.Location{time.UTC, time.FixedZone("", 14*3600), time.FixedZone("", -12*3600), time.FixedZone("", 5*3600+45*60)}
	for _, n := range []string{"America/New_York", "Australia/Lord_Howe", "Pacific/Apia"} {
		z, err := time.LoadLocation(n)
		if err != nil {
			t.Fatalf("LoadLocation(%s): %v", n, err)
		}
		zs = append(zs, z)
	}
	return zs
}

// stampGen makes lines and nows near the edges of a case.
type stampGen struct {
	r     *rand.Rand
	c     cacheCase
	loc   *time.Location // the detector's
	zones []*time.Location
}

// stamp returns a stamp instant (in the zone it is written in).
func (g *stampGen) stamp() time.Time {
	zone := g.loc
	if g.c.zones && g.r.IntN(2) == 0 {
		zone = g.zones[g.r.IntN(len(g.zones))]
	}
	y := cacheYears[g.r.IntN(len(cacheYears))]
	var mo, d int
	if g.r.IntN(3) > 0 {
		e := edgeStamps[g.r.IntN(len(edgeStamps))]
		mo, d = e[0], e[1]
	} else {
		mo, d = 1+g.r.IntN(12), 1+g.r.IntN(28)
	}
	h, mi, s := g.r.IntN(24), g.r.IntN(60), g.r.IntN(60)
	if g.r.IntN(2) == 0 {
		h, mi, s = [2]int{0, 23}[g.r.IntN(2)], [2]int{0, 59}[g.r.IntN(2)], [2]int{0, 59}[g.r.IntN(2)]
	}
	ns := 0
	if g.r.IntN(2) == 0 {
		ns = g.r.IntN(1e9)
	}
	if mo == 2 && d == 29 && !validDate(y, 2, 29) {
		y = 2024 // written in a leap year, read in any
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, ns, zone)
}

func (g *stampGen) line(st time.Time) string {
	switch g.c.name {
	case "epoch":
		return fmt.Sprintf("%d.%03d", st.Unix(), st.Nanosecond()/1e6) + g.c.rest
	case "week":
		return fmt.Sprintf("%02d %d %s", (st.YearDay()+g.r.IntN(7))/7, int(st.Weekday()), st.Format("15:04:05")) + g.c.rest
	}
	return st.Format(g.c.layout) + g.c.rest
}

// now returns a now near an edge of stamp st: the start of a year, or a day
// before the stamp in some year.
func (g *stampGen) now(st time.Time) time.Time {
	deltas := []time.Duration{0, 1, -1, time.Second, -time.Second, time.Millisecond / 2, -time.Hour, time.Hour, 25 * time.Hour, -25 * time.Hour}
	delta := deltas[g.r.IntN(len(deltas))]
	y := cacheYears[g.r.IntN(len(cacheYears))] + g.r.IntN(3) - 1
	zone := g.zones[g.r.IntN(len(g.zones))] // of now's value: only its instant counts
	var n time.Time
	switch g.r.IntN(4) {
	case 0: // a year starts where the stamp is read
		n = time.Date(y, 1, 1, 0, 0, 0, 0, st.Location())
	case 1: // ... or in another zone
		n = time.Date(y, 1, 1, 0, 0, 0, 0, g.zones[g.r.IntN(len(g.zones))])
	case 2: // a day before the stamp in year y
		n = time.Date(y, st.Month(), st.Day(), st.Hour(), st.Minute(), st.Second(), st.Nanosecond(), st.Location()).Add(-24 * time.Hour)
	default: // anywhere around
		lo := time.Date(y-1, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
		n = time.Unix(0, lo+g.r.Int64N(3*366*24*int64(time.Hour))).Add(-delta)
	}
	return n.Add(delta).In(zone)
}

// fresh computes what Find gives without the cache.
func fresh(d *Detector, line string, now time.Time) (Match, bool) {
	d.tc = timeCache{id: -1}
	return d.Find(line, now)
}

func sameFind(t *testing.T, what string, line string, now time.Time, got Match, gotOK bool, want Match, wantOK bool) {
	t.Helper()
	// bit for bit, but for the *Location: compare the instant and how it
	// prints (zone name and offset)
	if gotOK != wantOK || got.Start != want.Start || got.End != want.End || got.Format != want.Format ||
		!got.Time.Equal(want.Time) || got.Time.String() != want.Time.String() || got.Time.IsZero() != want.Time.IsZero() {
		t.Fatalf("%s: Find(%q) at %v (%s) = %v %v, computed afresh %v %v",
			what, line, now, now.UTC().Format(time.RFC3339Nano), got, gotOK, want, wantOK)
	}
}

func TestTimeCacheDifferential(t *testing.T) {
	zones := cacheZones(t)
	steps := 8000
	if testing.Short() {
		steps = 2000
	}
	for ci, c := range cacheCases {
		for _, loc := range []*time.Location{time.UTC, zones[1], zones[2], zones[4], zones[5]} {
			t.Run(c.name+"/"+loc.String(), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(ci), 7))
				g := &stampGen{r: r, c: c, loc: loc, zones: zones}
				cached := mustNew(t, c.patterns, loc)
				ref := mustNew(t, c.patterns, loc)
				st := g.stamp()
				line := g.line(st)
				now := g.now(st)
				hits := 0
				wantHits := c.name != "time-only" && c.name != "wpll" && c.name != "epoch"
				for i := 0; i < steps; i++ {
					if r.IntN(8) == 0 {
						st = g.stamp()
						line = g.line(st)
					}
					switch r.IntN(8) {
					case 0, 1: // a small step, maybe over an edge
						now = now.Add(time.Duration(r.Int64N(int64(4*time.Second))) - 2*time.Second)
					case 2:
						now = g.now(st)
					}
					// a hit sets misses to 0, a miss counts one more
					cached.tc.misses = max(cached.tc.misses, 1)
					m, ok := cached.Find(line, now)
					if cached.tc.misses == 0 {
						hits++
					}
					wm, wok := fresh(ref, line, now)
					sameFind(t, "cached", line, now, m, ok, wm, wok)
				}
				if wantHits && hits < steps/4 || !wantHits && hits > 0 {
					t.Errorf("%d cache hits in %d lines", hits, steps)
				}
			})
		}
	}
}

// TestTimeCacheEdges walks now across the edges for one date text.
func TestTimeCacheEdges(t *testing.T) {
	type step struct {
		now  time.Time
		want time.Time // zero: no time
	}
	tests := []struct {
		line  string
		steps []step
	}{
		{"Dec 31 23:59:59 host x", []step{
			{utc(2025, 12, 30, 23, 59, 59, 0), utc(2025, 12, 31, 23, 59, 59, 0)}, // exactly a day ahead: this year
			{utc(2025, 12, 30, 23, 59, 58, 999999999), utc(2024, 12, 31, 23, 59, 59, 0)},
			{utc(2025, 12, 30, 23, 59, 59, 1), utc(2025, 12, 31, 23, 59, 59, 0)},
			{utc(2025, 6, 1, 0, 0, 0, 0), utc(2024, 12, 31, 23, 59, 59, 0)},
			{utc(2026, 1, 1, 0, 0, 0, 0), utc(2025, 12, 31, 23, 59, 59, 0)}, // next year: more than a day ahead
			{utc(2025, 12, 31, 23, 59, 59, 999999999), utc(2025, 12, 31, 23, 59, 59, 0)},
			{utc(2026, 12, 31, 0, 0, 0, 0), utc(2026, 12, 31, 23, 59, 59, 0)},
		}},
		{"Jan  1 00:00:00 host x", []step{
			{utc(2025, 12, 31, 23, 59, 59, 999999999), utc(2025, 1, 1, 0, 0, 0, 0)},
			{utc(2026, 1, 1, 0, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0, 0)},
			{utc(2025, 12, 31, 0, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0, 0)},
			{utc(2026, 1, 1, 0, 0, 0, 1), utc(2026, 1, 1, 0, 0, 0, 0)},
		}},
		{"Feb 29 12:00:00 host x", []step{
			{utc(2024, 3, 1, 0, 0, 0, 0), utc(2024, 2, 29, 12, 0, 0, 0)},
			{utc(2024, 2, 28, 12, 0, 0, 0), utc(2024, 2, 29, 12, 0, 0, 0)},
			{utc(2024, 2, 28, 11, 59, 59, 0), time.Time{}}, // more than a day ahead, and 2023 has no Feb 29
			{utc(2025, 3, 1, 0, 0, 0, 0), time.Time{}},     // no Feb 29 in 2025
			{utc(2024, 12, 31, 23, 59, 59, 0), utc(2024, 2, 29, 12, 0, 0, 0)},
			{utc(2025, 1, 1, 0, 0, 0, 0), time.Time{}},
			{utc(2028, 2, 28, 12, 0, 0, 0), utc(2028, 2, 29, 12, 0, 0, 0)},
		}},
	}
	for _, tt := range tests {
		d := mustNew(t, []string{`{^LN-BEG}%b %d %H:%M:%S`}, time.UTC)
		ref := mustNew(t, []string{`{^LN-BEG}%b %d %H:%M:%S`}, time.UTC)
		for round := 0; round < 2; round++ { // forwards, then backwards
			for i := range tt.steps {
				s := tt.steps[i]
				if round == 1 {
					s = tt.steps[len(tt.steps)-1-i]
				}
				m, ok := d.Find(tt.line, s.now)
				wm, wok := fresh(ref, tt.line, s.now)
				sameFind(t, "edge", tt.line, s.now, m, ok, wm, wok)
				if !ok || !m.Time.Equal(s.want) {
					t.Errorf("Find(%q) at %v = %v, want %v", tt.line, s.now, m.Time, s.want)
				}
			}
		}
	}
}

// TestTimeCacheHits checks that repeated stamps are served from the cache
// (else the speed silently goes) and only those.
func TestTimeCacheHits(t *testing.T) {
	now := utc(2026, 11, 22, 0, 0, 0, 0)
	for _, c := range []struct {
		patterns []string
		line     string
	}{
		{nil, "Nov 20 06:25:00 web1 sshd[20000]: x"},
		{[]string{`{^LN-BEG}%b %d %H:%M:%S`}, "Nov 20 06:25:00 web1 sshd[20000]: x"},
		{nil, `192.0.2.1 - - [20/Nov/2026:06:25:00 +0100] "GET / HTTP/1.1" 401`},
		{[]string{`\[(%d/%b/%Y:%H:%M:%S %z)\] "`}, `192.0.2.1 - - [20/Nov/2026:06:25:00 +0100] "GET / HTTP/1.1" 401`},
	} {
		d := mustNew(t, c.patterns, time.UTC)
		m, ok := d.Find(c.line, now)
		if !ok || m.Time.IsZero() {
			t.Fatalf("Find(%q) = %v, %v", c.line, m, ok)
		}
		// a marked entry comes back for the same text ...
		mark := utc(1999, 1, 1, 0, 0, 0, 0)
		d.tc.tm = mark
		if m, _ := d.Find(c.line, now.Add(time.Hour)); !m.Time.Equal(mark) {
			t.Errorf("%q: second Find = %v, not from the cache", c.line, m.Time)
		}
		// ... but not for another one
		other := replaceOnce(c.line, "06:25:00", "06:25:01")
		if m, _ := d.Find(other, now); m.Time.Equal(mark) || m.Time.IsZero() {
			t.Errorf("%q: Find = %v, a stale entry", other, m.Time)
		}
	}
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

// TestTimeCacheReusedLine feeds lines whose memory the caller reuses: the
// cache must keep its own copy of the date text.
func TestTimeCacheReusedLine(t *testing.T) {
	now := utc(2026, 11, 22, 0, 0, 0, 0)
	d := mustNew(t, []string{`{^LN-BEG}%b %d %H:%M:%S`}, time.UTC)
	buf := make([]byte, 0, 64)
	for i := 0; i < 200; i++ {
		st := utc(2026, 11, 20, 6, 25, i/3%60, 0) // three lines per second
		buf = append(buf[:0], st.Format("Jan _2 15:04:05")+" web1 sshd[1]: x"...)
		line := unsafe.String(unsafe.SliceData(buf), len(buf))
		m, ok := d.Find(line, now)
		if !ok || !m.Time.Equal(st) {
			t.Fatalf("line %d %q: Find = %v %v, want %v", i, line, m.Time, ok, st)
		}
	}
}

// TestTimeCacheSkip checks the back-off on stamps that never repeat and its
// end when they do again.
func TestTimeCacheSkip(t *testing.T) {
	now := utc(2026, 11, 22, 0, 0, 0, 0)
	d := mustNew(t, []string{`{^LN-BEG}%b %d %H:%M:%S`}, time.UTC)
	ref := mustNew(t, []string{`{^LN-BEG}%b %d %H:%M:%S`}, time.UTC)
	st := utc(2026, 11, 20, 0, 0, 0, 0)
	check := func(line string) {
		t.Helper()
		m, ok := d.Find(line, now)
		wm, wok := fresh(ref, line, now)
		sameFind(t, "skip", line, now, m, ok, wm, wok)
	}
	for i := 0; i < 100; i++ {
		check(st.Add(time.Duration(i)*time.Second).Format("Jan _2 15:04:05") + " x")
	}
	if d.tc.misses < missLimit {
		t.Fatalf("after 100 new stamps, %d misses in a row", d.tc.misses)
	}
	line := st.Format("Jan _2 15:04:05") + " flood"
	for i := 0; i < 2*probeEvery+2; i++ {
		check(line)
	}
	if d.tc.misses != 0 || d.tc.skip != 0 {
		t.Errorf("repeated stamps: misses %d, skip %d; want the cache back", d.tc.misses, d.tc.skip)
	}
}

// TestTimeCacheKeys feeds lines where the same field text means another
// time: read by another template, or split otherwise into fields.
func TestTimeCacheKeys(t *testing.T) {
	now := utc(2026, 6, 1, 0, 0, 0, 0)
	tests := []struct {
		patterns []string
		lines    []string
		want     []time.Time
	}{
		{ // day and month swapped by the template
			[]string{`^A %d/%m/%Y %H:%M:%S`, `^B %m/%d/%Y %H:%M:%S`},
			[]string{"A 05/06/2024 10:00:00 x", "B 05/06/2024 10:00:00 x"},
			[]time.Time{utc(2024, 6, 5, 10, 0, 0, 0), utc(2024, 5, 6, 10, 0, 0, 0)},
		},
		{ // the year is a field or not, by what follows the fields
			[]string{`^%H:%M:%S (?:%Y(?= \w+ \d+!)|\d+) %b %d`},
			[]string{"10:00:00 2024 Jan 02!", "10:00:00 2024 Jan 02?"},
			[]time.Time{utc(2024, 1, 2, 10, 0, 0, 0), utc(2026, 1, 2, 10, 0, 0, 0)},
		},
	}
	for _, tt := range tests {
		d := mustNew(t, tt.patterns, time.UTC)
		ref := mustNew(t, tt.patterns, time.UTC)
		for i := 0; i < 3*len(tt.lines); i++ {
			line := tt.lines[i%len(tt.lines)]
			m, ok := d.Find(line, now)
			wm, wok := fresh(ref, line, now)
			sameFind(t, "keys", line, now, m, ok, wm, wok)
			if want := tt.want[i%len(tt.lines)]; !ok || !m.Time.Equal(want) {
				t.Errorf("Find(%q) = %v %v, want %v", line, m.Time, ok, want)
			}
		}
		for i := 0; i < 3*len(tt.lines); i++ { // each line twice: through the cache
			line := tt.lines[i/2%len(tt.lines)]
			m, ok := d.Find(line, now)
			wm, wok := fresh(ref, line, now)
			sameFind(t, "keys", line, now, m, ok, wm, wok)
		}
	}
}

// FuzzTimeCache reads a line at three nows through the cache and afresh.
func FuzzTimeCache(f *testing.F) {
	f.Add(uint8(1), "Dec 31 23:59:59 host x", int64(0), int64(86400e9))
	f.Add(uint8(0), "Feb 29 12:00:00.5 host x", int64(-3600e9), int64(366*86400e9))
	f.Add(uint8(16), `192.0.2.1 - - [20/Nov/2026:06:25:00 +0100] "GET / HTTP/1.1" 401`, int64(1), int64(-1))
	base := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC).UnixNano()
	type pair struct{ cached, ref *Detector }
	pairs := make([]pair, len(differentialSets))
	for i, ps := range differentialSets {
		pairs[i].cached, pairs[i].ref = mustNew(f, ps, time.UTC), mustNew(f, ps, time.UTC)
	}
	f.Fuzz(func(t *testing.T, set uint8, line string, d1, d2 int64) {
		p := pairs[int(set)%len(pairs)]
		cached, ref := p.cached.Clone(), p.ref.Clone()
		for _, d := range []int64{d1, d2, d1, d2 + 1, d2 - 1} {
			now := time.Unix(0, base+d%(4*366*86400e9))
			m, ok := cached.Find(line, now)
			wm, wok := fresh(ref, line, now)
			sameFind(t, "fuzz", line, now, m, ok, wm, wok)
		}
	})
}
