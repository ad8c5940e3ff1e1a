package logtime

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// found is what a test expects of Find: the cut text, what remains, and the
// time (zero for "no time").
type found struct {
	OK     bool
	Cut    string
	Rest   string
	Time   time.Time
	Format string
}

func find(t *testing.T, d *Detector, line string, now time.Time) found {
	t.Helper()
	m, ok := d.Find(line, now)
	if !ok {
		return found{}
	}
	if m.Start < 0 || m.End < m.Start || m.End > len(line) {
		t.Fatalf("Find(%q) = bad span [%d,%d)", line, m.Start, m.End)
	}
	return found{OK: true, Cut: line[m.Start:m.End], Rest: line[:m.Start] + line[m.End:], Time: m.Time, Format: d.FormatName(m.Format)}
}

func utc(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
}

func mustNew(t testing.TB, patterns []string, loc *time.Location) *Detector {
	t.Helper()
	d, err := New(patterns, Options{Location: loc})
	if err != nil {
		t.Fatalf("New(%q): %v", patterns, err)
	}
	return d
}

var now2024 = utc(2024, time.June, 22, 12, 0, 0, 0)

// TestFindAutomatic covers each automatic format: what is cut and the time
// read, on a fresh detector per line.
func TestFindAutomatic(t *testing.T) {
	tests := []struct {
		name string
		line string
		want found
	}{
		{"syslog", "Jun 21 16:47:48 host sshd[1]: msg",
			found{true, "Jun 21 16:47:48", " host sshd[1]: msg", utc(2024, 6, 21, 16, 47, 48, 0), ""}},
		{"syslog space-padded day", "Jun  1 06:07:08 host x",
			found{true, "Jun  1 06:07:08", " host x", utc(2024, 6, 1, 6, 7, 8, 0), ""}},
		{"syslog one-digit day", "Jun 1 6:07:08 host x",
			found{true, "Jun 1 6:07:08", " host x", utc(2024, 6, 1, 6, 7, 8, 0), ""}},
		{"syslog lower case", "jun 21 16:47:48 host x",
			found{true, "jun 21 16:47:48", " host x", utc(2024, 6, 21, 16, 47, 48, 0), ""}},
		{"syslog fraction and year", "Jun 21 16:47:48.250 2019 host x",
			found{true, "Jun 21 16:47:48.250 2019", " host x", utc(2019, 6, 21, 16, 47, 48, 250e6), ""}},
		{"syslog weekday", "Fri Jun 21 16:47:48 2019 host x",
			found{true, "Fri Jun 21 16:47:48 2019", " host x", utc(2019, 6, 21, 16, 47, 48, 0), ""}},
		{"year after day", "Jun 21 2019 16:47:48 host x",
			found{true, "Jun 21 2019 16:47:48", " host x", utc(2019, 6, 21, 16, 47, 48, 0), ""}},
		{"apache error log cuts inside the brackets", "[Sun Jul 01 12:00:00.123456 2018] [error] [client 192.0.2.1] x",
			found{true, "Sun Jul 01 12:00:00.123456 2018", "[] [error] [client 192.0.2.1] x", utc(2018, 7, 1, 12, 0, 0, 123456000), ""}},
		{"ctime", "Mon Jan 02 15:04:05 2006 x",
			found{true, "Mon Jan 02 15:04:05 2006", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"ISO T", "2006-01-02T15:04:05 x",
			found{true, "2006-01-02T15:04:05", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"ISO space", "2006-01-02 15:04:05 x",
			found{true, "2006-01-02 15:04:05", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"ISO two spaces, one-digit hour", "2006-01-02  5:04:05 x",
			found{true, "2006-01-02  5:04:05", " x", utc(2006, 1, 2, 5, 4, 5, 0), ""}},
		{"ISO fraction dot", "2006-01-02 15:04:05.5 x",
			found{true, "2006-01-02 15:04:05.5", " x", utc(2006, 1, 2, 15, 4, 5, 5e8), ""}},
		{"ISO fraction comma", "2006-01-02 15:04:05,123 x",
			found{true, "2006-01-02 15:04:05,123", " x", utc(2006, 1, 2, 15, 4, 5, 123e6), ""}},
		{"ISO Z", "2006-01-02T15:04:05.123456Z x",
			found{true, "2006-01-02T15:04:05.123456Z", " x", utc(2006, 1, 2, 15, 4, 5, 123456000), ""}},
		{"ISO +0100", "2006-01-02T15:04:05+0100 x",
			found{true, "2006-01-02T15:04:05+0100", " x", utc(2006, 1, 2, 14, 4, 5, 0), ""}},
		{"ISO -07:00", "2006-01-02T15:04:05-07:00 x",
			found{true, "2006-01-02T15:04:05-07:00", " x", utc(2006, 1, 2, 22, 4, 5, 0), ""}},
		{"ISO space before zone", "2006-01-02 15:04:05 +02 x",
			found{true, "2006-01-02 15:04:05 +02", " x", utc(2006, 1, 2, 13, 4, 5, 0), ""}},
		{"nginx error log", "2006/01/02 15:04:05 [error] 1#1: x",
			found{true, "2006/01/02 15:04:05", " [error] 1#1: x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"syslog-ng dots", "2006.01.02 15:04:05 x",
			found{true, "2006.01.02 15:04:05", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"mixed separators are no date", "2006-01/02 15:04:05 x", found{}},
		{"apache access log", `192.0.2.1 - - [02/Jan/2006:15:04:05 -0700] "GET / HTTP/1.1" 401`,
			found{true, "02/Jan/2006:15:04:05 -0700", `192.0.2.1 - - [] "GET / HTTP/1.1" 401`, utc(2006, 1, 2, 22, 4, 5, 0), ""}},
		{"named", "02-Jan-2006 15:04:05.123 client x",
			found{true, "02-Jan-2006 15:04:05.123", " client x", utc(2006, 1, 2, 15, 4, 5, 123e6), ""}},
		{"day/month/year", "02/01/2006 15:04:05 x",
			found{true, "02/01/2006 15:04:05", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"day/month/short year", "02/01/06 15:04:05 x",
			found{true, "02/01/06 15:04:05", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"cpanel", "01/02/2006:15:04:05 x",
			found{true, "01/02/2006:15:04:05", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"month-day-year", "01-27-2012 16:22:44.252 x",
			found{true, "01-27-2012 16:22:44.252", " x", utc(2012, 1, 27, 16, 22, 44, 252e6), ""}},
		{"epoch", "1136214245 x",
			found{true, "1136214245", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"epoch fraction", "1136214245.123 x",
			found{true, "1136214245.123", " x", utc(2006, 1, 2, 15, 4, 5, 123e6), ""}},
		{"epoch in brackets", "[1136214245] x",
			found{true, "1136214245", "[] x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"epoch in audit()", "type=USER_LOGIN msg=audit(1136214245.000:123): x",
			found{true, "1136214245.000", "type=USER_LOGIN msg=audit(:123): x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"epoch elsewhere is no date", "x 1136214245 y", found{}},
		{"TAI64N", "@4000000043b940e500000000 x",
			found{true, "@4000000043b940e500000000", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"time only, earlier today", "10:11:12 x",
			found{true, "10:11:12", " x", utc(2024, 6, 22, 10, 11, 12, 0), ""}},
		{"time only, later is yesterday", "13:11:12 x",
			found{true, "13:11:12", " x", utc(2024, 6, 21, 13, 11, 12, 0), ""}},
		{"angle brackets", "<01/02/06@15:04:05> x",
			found{true, "<01/02/06@15:04:05>", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"mysql", "060102 15:04:05 x",
			found{true, "060102 15:04:05", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"tomcat", "Jan 2, 2006 3:04:05 PM x",
			found{true, "Jan 2, 2006 3:04:05 PM", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"tomcat 12 AM", "Jan 2, 2006 12:04:05 AM x",
			found{true, "Jan 2, 2006 12:04:05 AM", " x", utc(2006, 1, 2, 0, 4, 5, 0), ""}},
		{"assp", "Jan-02-06 15:04:05 x",
			found{true, "Jan-02-06 15:04:05", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"basic ISO", "20060102T150405 x",
			found{true, "20060102T150405", " x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"zone name in front", "PDT Jan 02 15:04:05 2006 x",
			found{true, "PDT Jan 02 15:04:05 2006", " x", utc(2006, 1, 2, 22, 4, 5, 0), ""}},
		{"leading non-word characters are allowed", "[[2006-01-02 15:04:05]] x",
			found{true, "2006-01-02 15:04:05", "[[]] x", utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"date glued to a word", "x2006-01-02 15:04:05 y", found{}},
		{"no date", "no date here", found{}},
		{"empty", "", found{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, nil, time.UTC)
			got := find(t, d, tt.line, now2024)
			got.Format = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Find(%q) mismatch (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

// TestYearInference: a stamp without a year is this year's unless that is
// more than a day ahead of now.
func TestYearInference(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		line string
		want time.Time
	}{
		{"same day", utc(2024, 6, 22, 12, 0, 0, 0), "Jun 22 11:00:00 x", utc(2024, 6, 22, 11, 0, 0, 0)},
		{"read on new year's day", utc(2025, 1, 1, 0, 0, 5, 0), "Dec 31 23:59:59 x", utc(2024, 12, 31, 23, 59, 59, 0)},
		{"first line of the year", utc(2025, 1, 1, 0, 0, 5, 0), "Jan  1 00:00:01 x", utc(2025, 1, 1, 0, 0, 1, 0)},
		{"less than a day ahead stays", utc(2024, 6, 22, 12, 0, 0, 0), "Jun 23 11:00:00 x", utc(2024, 6, 23, 11, 0, 0, 0)},
		{"more than a day ahead is last year", utc(2024, 6, 22, 12, 0, 0, 0), "Jun 23 13:00:00 x", utc(2023, 6, 23, 13, 0, 0, 0)},
		{"leap day this year", utc(2024, 3, 1, 0, 0, 0, 0), "Feb 29 10:00:00 x", utc(2024, 2, 29, 10, 0, 0, 0)},
		{"explicit year is kept", utc(2024, 6, 22, 12, 0, 0, 0), "Dec 31 23:59:59 2026 x", utc(2026, 12, 31, 23, 59, 59, 0)},
		// %ExY only takes years up to the decade three years ahead (2029
		// here); 2030 is not read as the year, so the stamp has none
		{"year too far ahead is not a year", utc(2024, 6, 22, 12, 0, 0, 0), "Dec 31 23:59:59 2030 x", utc(2023, 12, 31, 23, 59, 59, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, nil, time.UTC)
			got := find(t, d, tt.line, tt.now)
			if diff := cmp.Diff(tt.want, got.Time); diff != "" {
				t.Errorf("Find(%q) at %v time mismatch (-want +got):\n%s", tt.line, tt.now, diff)
			}
		})
	}
}

// TestYearAcrossNewYear runs one detector through midnight on new year's
// eve (it remembers the year of now between lines).
func TestYearAcrossNewYear(t *testing.T) {
	d := mustNew(t, nil, time.UTC)
	steps := []struct {
		now  time.Time
		line string
		want time.Time
	}{
		{utc(2024, 12, 31, 23, 59, 59, 0), "Dec 31 23:59:58 x", utc(2024, 12, 31, 23, 59, 58, 0)},
		{utc(2025, 1, 1, 0, 0, 2, 0), "Jan  1 00:00:01 x", utc(2025, 1, 1, 0, 0, 1, 0)},
		{utc(2025, 1, 1, 0, 0, 3, 0), "Dec 31 23:59:59 x", utc(2024, 12, 31, 23, 59, 59, 0)},
		{utc(2025, 1, 1, 0, 0, 4, 0), "Jan  1 00:00:03 x", utc(2025, 1, 1, 0, 0, 3, 0)},
	}
	for _, s := range steps {
		if got := find(t, d, s.line, s.now); !got.Time.Equal(s.want) {
			t.Errorf("Find(%q) at %v = %v, want %v", s.line, s.now, got.Time, s.want)
		}
	}
}

// TestInvalidDates: the text is still a date (and is cut) but has no time.
func TestInvalidDates(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		now      time.Time
		line     string
		want     found
	}{
		{"February 30", nil, now2024, "2023-02-30 10:00:00 x", found{true, "2023-02-30 10:00:00", " x", time.Time{}, ""}},
		{"leap second", nil, now2024, "2023-02-03 10:00:60 x", found{true, "2023-02-03 10:00:60", " x", time.Time{}, ""}},
		{"hour 25 (%k allows it)", nil, now2024, "Feb  3 25:00:00 x", found{true, "Feb  3 25:00:00", " x", time.Time{}, ""}},
		// Feb 29 read in March 2023 is 2023 (invalid), a day ahead check
		// never runs
		{"Feb 29 in a common year", nil, utc(2023, 3, 1, 0, 0, 0, 0), "Feb 29 10:00:00 x", found{true, "Feb 29 10:00:00", " x", time.Time{}, ""}},
		{"unknown zone name", []string{`%Y-%m-%d %H:%M:%S %Z`}, now2024, "2023-02-03 10:00:00 ABCD x",
			found{true, "2023-02-03 10:00:00 ABCD", " x", time.Time{}, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, tt.patterns, time.UTC)
			got := find(t, d, tt.line, tt.now)
			got.Format = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Find(%q) mismatch (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

// TestLocation: stamps without zone are read in Options.Location; explicit
// zones win.
func TestLocation(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	tests := []struct {
		line string
		want time.Time
	}{
		{"2024-01-15 10:00:00 x", time.Date(2024, 1, 15, 9, 0, 0, 0, time.UTC)},
		{"2024-07-15 10:00:00 x", time.Date(2024, 7, 15, 8, 0, 0, 0, time.UTC)},
		{"2024-07-15 10:00:00Z x", time.Date(2024, 7, 15, 10, 0, 0, 0, time.UTC)},
		{"2024-07-15 10:00:00 -0130 x", time.Date(2024, 7, 15, 11, 30, 0, 0, time.UTC)},
		{"1136214245 x", time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			d := mustNew(t, nil, berlin)
			got := find(t, d, tt.line, now2024)
			if !got.Time.Equal(tt.want) {
				t.Errorf("Find(%q) time = %v, want %v", tt.line, got.Time, tt.want)
			}
		})
	}
	// nil Location is time.Local
	d := mustNew(t, nil, nil)
	got := find(t, d, "2024-07-15 10:00:00 x", now2024)
	if want := time.Date(2024, 7, 15, 10, 0, 0, 0, time.Local); !got.Time.Equal(want) {
		t.Errorf("nil Location: time = %v, want %v", got.Time, want)
	}
}

// TestWPLL: the 12-hour clock without am/pm of {WPLL}: the latest reading
// not after now (plus a few minutes of slack) wins.
func TestWPLL(t *testing.T) {
	at := func(mo time.Month, d, h, mi int) time.Time { return utc(2024, mo, d, h, mi, 0, 0) }
	tests := []struct {
		name string
		now  time.Time
		line string
		want time.Time
	}{
		{"morning reading before now in the afternoon", at(11, 5, 13, 0), "Nov 5 01:30:00 x", at(11, 5, 1, 30)},
		{"afternoon reading when now is later", at(11, 5, 15, 0), "Nov 5 02:30:00 x", at(11, 5, 14, 30)},
		{"pm would be in the future", at(11, 5, 14, 0), "Nov 5 02:30:00 x", at(11, 5, 2, 30)},
		{"yesterday's date, late evening", at(11, 6, 1, 0), "Nov 5 02:00:00 x", at(11, 5, 14, 0)},
		{"twelve o'clock is noon or midnight", at(11, 5, 12, 30), "Nov 5 12:10:00 x", at(11, 5, 12, 10)},
		{"twelve o'clock just after midnight", at(11, 5, 0, 30), "Nov 5 12:10:00 x", at(11, 5, 0, 10)},
		{"a little ahead counts as now", at(11, 5, 13, 0), "Nov 5 01:02:00 x", at(11, 5, 13, 2)},
		{"last year at new year", utc(2025, 1, 1, 0, 30, 0, 0), "Dec 31 11:45:00 x", utc(2024, 12, 31, 23, 45, 0, 0)},
		{"an hour ahead today is not last year", at(11, 6, 1, 0), "Nov 6 02:00:00 x", at(11, 6, 2, 0)},
		{"two days ahead is last year", at(11, 6, 1, 0), "Nov 8 02:00:00 x", utc(2023, 11, 8, 14, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, []string{"{^LN-BEG}{WPLL}"}, time.UTC)
			got := find(t, d, tt.line, tt.now)
			want := found{true, strings.TrimSuffix(tt.line, " x"), " x", tt.want, "{^LN-BEG}{WPLL}"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Find(%q) at %v mismatch (-want +got):\n%s", tt.line, tt.now, diff)
			}
		})
	}
}

// TestDatePatterns runs the datepatterns of fail2ban's stock filters on
// lines of their logs.
func TestDatePatterns(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		line     string
		want     found
	}{
		{"apache-badbots", []string{`^[^\[]*\[({DATE})`, `{^LN-BEG}`},
			`192.0.2.1 - - [02/Jan/2006:15:04:05 +0100] "GET /x HTTP/1.1" 200`,
			found{true, "02/Jan/2006:15:04:05 +0100", `192.0.2.1 - - [] "GET /x HTTP/1.1" 200`, utc(2006, 1, 2, 14, 4, 5, 0), ""}},
		{"apache-fakegooglebot keeps no brackets", []string{`^[^\[]*(\[{DATE}\s*\])`, `{^LN-BEG}`},
			`192.0.2.1 - - [02/Jan/2006:15:04:05 +0100] "GET / HTTP/1.1"`,
			found{true, "[02/Jan/2006:15:04:05 +0100]", `192.0.2.1 - -  "GET / HTTP/1.1"`, utc(2006, 1, 2, 14, 4, 5, 0), ""}},
		{"nginx error", []string{`{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`, `^[^\[]*\[({DATE})`, `{^LN-BEG}`},
			`2006/01/02 15:04:05 [error] 1#1: *1 user "x" was not found`,
			found{true, "2006/01/02 15:04:05", ` [error] 1#1: *1 user "x" was not found`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"counter-strike", []string{`^L %d/%m/%Y - %H:%M:%S`},
			`L 02/01/2006 - 15:04:05: "x" connected`,
			found{true, "L 02/01/2006 - 15:04:05", `: "x" connected`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"dovecot TAI64N", []string{`{^LN-BEG}TAI64N`, `{^LN-BEG}`},
			`@4000000043b940e500000000 imap-login: x`,
			found{true, "@4000000043b940e500000000", ` imap-login: x`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"grafana", []string{`^t=%Y-%m-%dT%H:%M:%S%z`},
			`t=2006-01-02T15:04:05+0000 lvl=eror msg="x"`,
			found{true, "t=2006-01-02T15:04:05+0000", ` lvl=eror msg="x"`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"guacamole continuation line has no date", []string{`^%b %d, %ExY %I:%M:%S %p`, `^WARNING:()**`, `{^LN-BEG}`},
			`WARNING: Authentication attempt from 192.0.2.1 for user "x" failed.`,
			found{true, "", `WARNING: Authentication attempt from 192.0.2.1 for user "x" failed.`, time.Time{}, ""}},
		{"kerio", []string{`^\[%d/%b/%Y %H:%M:%S\]`},
			`[02/Jan/2006 15:04:05] IP address 192.0.2.1 x`,
			found{true, "[02/Jan/2006 15:04:05]", ` IP address 192.0.2.1 x`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"murmur", []string{`^<W>{DATE}`},
			`<W>2006-01-02 15:04:05.123 1 => x`,
			found{true, "<W>2006-01-02 15:04:05.123", ` 1 => x`, utc(2006, 1, 2, 15, 4, 5, 123e6), ""}},
		{"nsd", []string{`{^LN-BEG}Epoch`, `{^LN-BEG}`},
			`[1136214245] nsd[1]: x`,
			found{true, "1136214245", `[] nsd[1]: x`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"openhab", []string{`%d/%b[^/]*/%Y:%H:%M:%S %z`},
			`192.0.2.1 - - [02/Jan./2006:15:04:05 +0000] "GET"`,
			found{true, "02/Jan./2006:15:04:05 +0000", `192.0.2.1 - - [] "GET"`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"oracleims", []string{`^<co ts="{DATE}"\s+`},
			`<co ts="2006-01-02T15:04:05.123-00:00" r="1"/>`,
			found{true, `<co ts="2006-01-02T15:04:05.123-00:00" `, `r="1"/>`, utc(2006, 1, 2, 15, 4, 5, 123e6), ""}},
		{"rfc5424", []string{`^<\d+>\d+\s+{DATE}`},
			`<38>1 2006-01-02T15:04:05.003Z host sshd 1 - - x`,
			found{true, "<38>1 2006-01-02T15:04:05.003Z", ` host sshd 1 - - x`, utc(2006, 1, 2, 15, 4, 5, 3e6), ""}},
		{"selinux", []string{`EPOCH`},
			`type=USER_AUTH msg=audit(1136214245.123:1): x`,
			found{true, "1136214245.123", `type=USER_AUTH msg=audit(:1): x`, utc(2006, 1, 2, 15, 4, 5, 123e6), ""}},
		{"squirrelmail", []string{`^%m/%d/%Y %H:%M:%S`},
			`01/02/2006 15:04:05 [LOGIN_ERROR] x`,
			found{true, "01/02/2006 15:04:05", ` [LOGIN_ERROR] x`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"tine20", []string{`^[^-]+ -- [^-]+ -- - ({DATE})`, `{^LN-BEG}`},
			`abc -- def -- - 2006-01-02T15:04:05+00:00 WARN x`,
			found{true, "2006-01-02T15:04:05+00:00", `abc -- def -- -  WARN x`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"LEPOCH milliseconds", []string{`LEPOCH`},
			`1136214245123 x`,
			found{true, "1136214245123", ` x`, utc(2006, 1, 2, 15, 4, 5, 123e6), ""}},
		{"LEPOCH microseconds", []string{`LEPOCH`},
			`1136214245123456 x`,
			found{true, "1136214245123456", ` x`, utc(2006, 1, 2, 15, 4, 5, 123456e3), ""}},
		{"{EPOCH} inside a pattern", []string{`^ts={EPOCH}`},
			`ts=1136214245 x`,
			found{true, "ts=1136214245", ` x`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
		{"unbounded", []string{`{UNB}%H:%M:%S`},
			`x10:11:12y`,
			found{true, "10:11:12", `xy`, utc(2024, 6, 22, 10, 11, 12, 0), ""}},
		{"stars drop the boundaries", []string{`**%H:%M:%S %d.%m.%Y**`},
			`x20:00:00 01.02.2003y`,
			found{true, "20:00:00 01.02.2003", `xy`, utc(2003, 2, 1, 20, 0, 0, 0), ""}},
		{"word boundary required", []string{`%H:%M:%S %d.%m.%Y`}, `x20:00:00 01.02.2003`, found{}},
		{"day of year", []string{`^%Y %j %H:%M:%S`},
			`2024 060 10:00:00 x`,
			found{true, "2024 060 10:00:00", ` x`, utc(2024, 2, 29, 10, 0, 0, 0), ""}},
		{"week and weekday", []string{`^%y %W %A %ExH:%ExM:%ExS**`},
			`01 11 Wednesday 21:59:59`,
			found{true, "01 11 Wednesday 21:59:59", ``, utc(2001, 3, 14, 21, 59, 59, 0), ""}},
		{"full month name", []string{`^%B %Exd %I:%ExM:%ExS**`},
			`January 23 12:59:59`,
			found{true, "January 23 12:59:59", ``, utc(2024, 1, 23, 0, 59, 59, 0), ""}},
		{"percent sign", []string{`^%%%Y-%m-%d`},
			`%2006-01-02 x`,
			found{true, "%2006-01-02", ` x`, utc(2006, 1, 2, 0, 0, 0, 0), ""}},
		{"extension %s", []string{`^at %s`},
			`at 1136214245 x`,
			found{true, "at 1136214245", ` x`, utc(2006, 1, 2, 15, 4, 5, 0), ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, tt.patterns, time.UTC)
			got := find(t, d, tt.line, now2024)
			got.Format = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Find(%q) with %q mismatch (-want +got):\n%s", tt.line, tt.patterns, diff)
			}
		})
	}
}

// TestMessageDates: a date inside the message (text an attacker may write)
// must not beat the date of the line, even when the detector is used to it.
func TestMessageDates(t *testing.T) {
	d := mustNew(t, nil, time.UTC)
	lines := []struct {
		line string
		cut  string
	}{
		{"Jun 21 16:47:48 host sshd[1]: Invalid user 2024-01-01 00:00:00 from 192.0.2.1", "Jun 21 16:47:48"},
		{"Jun 21 16:47:49 host sshd[1]: Invalid user Jan 01 00:00:00 from 192.0.2.1", "Jun 21 16:47:49"},
		{"2024-06-21 16:47:50 host app: user 'Jun 21 16:47:48' failed", "2024-06-21 16:47:50"},
		{"Jun 21 16:47:51 host sshd[1]: Invalid user [02/Jan/2006:15:04:05 -0700] from 192.0.2.1", "Jun 21 16:47:51"},
		{"Jun 21 16:47:52 host sshd[1]: Invalid user 1136214245 from 192.0.2.1", "Jun 21 16:47:52"},
	}
	for _, l := range lines {
		for i := 0; i < 3; i++ { // again, with the detector's cache warm
			got := find(t, d, l.line, now2024)
			if got.Cut != l.cut {
				t.Errorf("Find(%q) cut %q, want %q", l.line, got.Cut, l.cut)
			}
		}
	}
	// With stock apache patterns the date comes from the first bracket even
	// when the request holds one.
	a := mustNew(t, []string{`^[^\[]*\[({DATE})`, `{^LN-BEG}`}, time.UTC)
	line := `192.0.2.1 - - [02/Jan/2006:15:04:05 +0000] "GET /[03/Jan/2007:00:00:00 +0000] HTTP/1.1" 404`
	if got := find(t, a, line, now2024); got.Cut != "02/Jan/2006:15:04:05 +0000" {
		t.Errorf("Find(%q) cut %q", line, got.Cut)
	}
}

// TestCacheSwitch: the detector follows a log whose format changes, and
// comes back.
func TestCacheSwitch(t *testing.T) {
	d := mustNew(t, nil, time.UTC)
	lines := []struct{ line, cut string }{
		{"Jun 21 16:47:48 host a", "Jun 21 16:47:48"},
		{"Jun 21 16:47:49 host b", "Jun 21 16:47:49"},
		{"2024-06-21 16:47:50 host c", "2024-06-21 16:47:50"},
		{"2024-06-21 16:47:51 host d", "2024-06-21 16:47:51"},
		{"[Jun 21 16:47:52] host e", "Jun 21 16:47:52"},
		{"x: Jun 21 16:47:53 host f", "Jun 21 16:47:53"},
		{"Jun 21 16:47:54 host g", "Jun 21 16:47:54"},
		{"no date at all", ""},
		{"Jun 21 16:47:55 host h", "Jun 21 16:47:55"},
	}
	for _, l := range lines {
		if got := find(t, d, l.line, now2024); got.Cut != l.cut {
			t.Errorf("Find(%q) cut %q, want %q", l.line, got.Cut, l.cut)
		}
	}
}

func TestNone(t *testing.T) {
	d := mustNew(t, []string{"{NONE}"}, time.UTC)
	if !d.None() {
		t.Error("None() = false for {NONE}")
	}
	got := find(t, d, "Jun 21 16:47:48 host x", now2024)
	want := found{OK: true, Rest: "Jun 21 16:47:48 host x", Format: "^"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Find mismatch (-want +got):\n%s", diff)
	}
	if mustNew(t, nil, time.UTC).None() {
		t.Error("None() = true for automatic detection")
	}
}

func TestDefaultKeyword(t *testing.T) {
	// {DEFAULT} adds nothing in fail2ban 1.0.2: alone it means automatic
	// detection, with other patterns it is ignored.
	if n, m := mustNew(t, []string{"{DEFAULT}"}, nil).NumFormats(), mustNew(t, nil, nil).NumFormats(); n != m {
		t.Errorf("{DEFAULT}: %d formats, automatic: %d", n, m)
	}
	if n := mustNew(t, []string{"{DEFAULT}", "%H:%M:%S"}, nil).NumFormats(); n != 1 {
		t.Errorf("{DEFAULT} + pattern: %d formats, want 1", n)
	}
}

func TestFormatName(t *testing.T) {
	d := mustNew(t, nil, time.UTC)
	m, _ := d.Find("2024-06-21 16:47:48 x", now2024)
	want := `{^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\s*Zone offset)?`
	if got := d.FormatName(m.Format); got != want {
		t.Errorf("FormatName = %q, want %q", got, want)
	}
	for _, i := range []int{-1, d.NumFormats()} {
		if got := d.FormatName(i); got != "" {
			t.Errorf("FormatName(%d) = %q, want \"\"", i, got)
		}
	}
	if got := mustNew(t, []string{"^%b %d"}, nil).FormatName(0); got != "^MON Day" {
		t.Errorf("FormatName = %q", got)
	}
}

func TestClone(t *testing.T) {
	d := mustNew(t, nil, time.UTC)
	d.Find("2024-06-21 16:47:48 x", now2024)
	c := d.Clone()
	if c.NumFormats() != d.NumFormats() || c.FormatName(3) != d.FormatName(3) {
		t.Fatal("clone has other formats")
	}
	if c.lastIdx == d.lastIdx || c.hits[0] != 0 {
		t.Error("clone shares the cache")
	}
	for _, x := range []*Detector{d, c} {
		if got := find(t, x, "Jun 21 16:47:48 host", now2024); got.Cut != "Jun 21 16:47:48" {
			t.Errorf("cut %q", got.Cut)
		}
	}
}

// TestCloneConcurrent runs clones on several goroutines (for -race): the
// formats they share must not be written to.
func TestCloneConcurrent(t *testing.T) {
	base := mustNew(t, []string{`^[^\[]*\[({DATE})`, `{^LN-BEG}`}, time.UTC)
	lines := []string{
		`192.0.2.1 - - [02/Jan/2006:15:04:05 +0530] "GET / HTTP/1.1" 404 1`,
		"Jun 21 16:47:48 host sshd[1]: x",
		"2006-01-02T15:04:05.123-07:00 x",
		"garbage",
	}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			d := base.Clone()
			for i := 0; i < 200; i++ {
				d.Find(lines[(i+g)%len(lines)], now2024)
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		want     error
		text     string
	}{
		{"unknown directive", []string{"%Y-%Q"}, ErrSyntax, "unknown directive"},
		{"lone percent", []string{"100%"}, ErrSyntax, "unescaped percent"},
		{"unbalanced", []string{"(%H:%M"}, ErrSyntax, "missing )"},
		{"bad escape", []string{`\q%H`}, ErrSyntax, "bad escape"},
		{"nothing to repeat", []string{"*%H"}, ErrSyntax, "nothing to repeat"},
		{"variable lookbehind", []string{`(?<=a+)%H`}, ErrSyntax, "fixed-width"},
		{"unknown group", []string{`(?P=x)%H`}, ErrSyntax, "unknown group"},
		{"duplicate group", []string{`%H %H`}, ErrSyntax, "redefinition"},
		{"bad flag", []string{`(?x)%H`}, ErrUnsupported, "flag"},
		{"flags not at the start", []string{`%H(?i)(?s)`}, ErrSyntax, "global flags"},
		{"control byte", []string{"%H\x01"}, ErrSyntax, "control"},
		{"duplicate template", []string{"%H:%M", "%H:%M"}, ErrDuplicate, "duplicate"},
		{"huge repeat", []string{`a{2000}%H`}, ErrUnsupported, "repeat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.patterns, Options{})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("New(%q) error = %v, want %v containing %q", tt.patterns, err, tt.want, tt.text)
			}
			if !strings.Contains(err.Error(), strconv.Quote(tt.patterns[len(tt.patterns)-1])) {
				t.Errorf("error %q does not name the pattern", err)
			}
		})
	}
}

func TestMultiLinePatternEntry(t *testing.T) {
	d := mustNew(t, []string{"\n  ^%Y-%m-%d %H:%M:%S\n\n  {^LN-BEG}\n"}, time.UTC)
	if got := find(t, d, "Jun 21 16:47:48 x", now2024); got.Cut != "Jun 21 16:47:48" {
		t.Errorf("cut %q", got.Cut)
	}
	if got := find(t, d, "2024-06-21 16:47:48 x", now2024); got.Format != "^Year-Month-Day 24hour:Minute:Second" {
		t.Errorf("format %q", got.Format)
	}
}

func TestLongLine(t *testing.T) {
	d := mustNew(t, nil, time.UTC)
	line := "Jun 21 16:47:48 " + strings.Repeat("x1:2 Jan ", 20000)
	if got := find(t, d, line, now2024); got.Cut != "Jun 21 16:47:48" {
		t.Errorf("cut %q", got.Cut)
	}
	if got := find(t, d, strings.Repeat("1:2 Jan 3 ", 20000), now2024); got.OK {
		t.Errorf("found %q", got.Cut)
	}
}
