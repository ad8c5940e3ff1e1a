package logtime

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fuzzSets are the detectors FuzzFind runs every line through.
var fuzzSets = [][]string{
	nil,
	{`{^LN-BEG}`},
	{`^[^\[]*\[({DATE})`, `{^LN-BEG}`},
	{`{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`, `^[^\[]*\[({DATE})`, `{^LN-BEG}`},
	{`^%b %d, %ExY %I:%M:%S %p`, `^WARNING:()**`, `{^LN-BEG}`},
	{`EPOCH`}, {`LEPOCH`}, {`{^LN-BEG}TAI64N`},
	{`{^LN-BEG}{WPLL}`},
	{`{NONE}`},
}

func checkFind(t *testing.T, d *Detector, line string, now time.Time) {
	t.Helper()
	m, ok := d.Find(line, now)
	if !ok {
		if m != (Match{}) {
			t.Fatalf("Find(%q) = %+v, false: want the zero Match", line, m)
		}
		return
	}
	if m.Start < 0 || m.Start > m.End || m.End > len(line) {
		t.Fatalf("Find(%q) span [%d,%d) out of bounds", line, m.Start, m.End)
	}
	if m.Format < 0 || m.Format >= d.NumFormats() {
		t.Fatalf("Find(%q) format %d of %d", line, m.Format, d.NumFormats())
	}
	if m.Start == m.End && !m.Time.IsZero() {
		t.Fatalf("Find(%q) has a time without date text", line)
	}
}

func FuzzFind(f *testing.F) {
	f.Add("Jun 21 16:47:48 host sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2")
	f.Add(`192.0.2.1 - - [02/Jan/2006:15:04:05 -0700] "GET / HTTP/1.1" 401 12`)
	f.Add("2006/01/02 15:04:05 [error] 1#1: *1 no user/password was provided")
	f.Add("[Sun Jul 01 12:00:00.123456 2018] [auth_basic:error] [client 192.0.2.1:1] AH01617")
	dets := make([]*Detector, len(fuzzSets))
	for i, ps := range fuzzSets {
		dets[i] = mustNew(f, ps, time.UTC)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line string) {
		for _, base := range dets {
			d := base.Clone()
			checkFind(t, d, line, now)
			checkFind(t, d, line, now) // through the cache
			want, wok := base.Clone().Find(line, now)
			got, gok := d.Clone().Find(line, now)
			if diff := cmp.Diff(result{want, wok}, result{got, gok}); diff != "" {
				t.Fatalf("Find(%q) not deterministic (-first +second):\n%s", line, diff)
			}
		}
	})
}

func FuzzNew(f *testing.F) {
	f.Add(`^[^\[]*\[({DATE})`)
	f.Add(`{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`)
	f.Add(`^(?:=[^=]+={3,} )?(%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\s*%z)?)`)
	f.Add(`^I\(()**`)
	lines := []string{
		"", "Jun 21 16:47:48 host x", "2006-01-02T15:04:05.123+01:00 x", "[02/Jan/2006:15:04:05 -0700]",
		"1136214245.123 x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "é日本 12:34:56 \u0663\u0661",
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, pattern string) {
		d, err := New([]string{pattern}, Options{Location: time.UTC})
		if err != nil {
			if d != nil {
				t.Fatalf("New(%q) returned a detector and %v", pattern, err)
			}
			return
		}
		for _, l := range lines {
			checkFind(t, d, l, now)
		}
		checkFind(t, d, pattern, now)
	})
}
