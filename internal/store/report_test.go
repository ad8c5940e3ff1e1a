package store

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reportHistory is a known history, numbered as in the comments of
// TestReport. Times are relative to t0, which is the report's Now.
var reportHistory = []struct {
	jail   string
	target string
	start  time.Duration
	end    time.Duration // planned, relative to t0; 0: permanent
	ended  time.Duration // relative to t0; 0: still in force
	manual bool
}{
	/* 1 */ {"sshd", "192.0.2.10", -6 * day, -6*day + time.Hour, -6*day + time.Hour, false},
	/* 2 */ {"sshd", "192.0.2.10", -4 * day, -4*day + time.Hour, -4*day + time.Hour, false},
	/* 3 */ {"sshd", "192.0.2.10", -1 * day, time.Hour, 0, false},
	/* 4 */ {"nginx", "192.0.2.10", -2 * day, -2*day + time.Hour, -2*day + time.Hour, false},
	/* 5 */ {"sshd", "192.0.2.20", -3 * day, -3*day + 30*time.Minute, -3*day + 30*time.Minute, false},
	/* 6 */ {"sshd", "192.0.2.20", -3*day + time.Hour, -3*day + 2*time.Hour, -3*day + 2*time.Hour, false},
	/* 7 */ {"sshd", "198.51.100.7", -5 * day, -5*day + time.Hour, -5*day + time.Hour, false},
	/* 8 */ {"sshd", "192.0.2.0/24", -12 * time.Hour, 0, 0, false},
	/* 9 */ {"nginx", "2001:db8:1:2::a", -2 * time.Hour, time.Hour, 0, false},
	/* 10 */ {"nginx", "2001:db8:1:2::b", -1 * time.Hour, -30 * time.Minute, 0, false}, // ran out, never ended
	/* 11 */ {"nginx", "2001:db8:1:3::c", -3 * time.Hour, -2 * time.Hour, -2 * time.Hour, false},
	/* 12 */ {"sshd", "203.0.113.9", -10 * day, -10*day + time.Hour, -10*day + time.Hour, false}, // before Since
	/* 13 */ {"sshd", "10.9.9.9", -30 * time.Minute, 0, 0, true},
	/* 14 */ {"nginx", "203.0.0.0/16", -20 * time.Hour, -19 * time.Hour, -19 * time.Hour, false},
	/* 15 */ {"sshd", "192.0.2.99", -9 * day, 0, 0, false}, // before Since, still in force
}

const day = 24 * time.Hour

func loadReportHistory(t *testing.T, s *Store) {
	t.Helper()
	for _, h := range reportHistory {
		b := Ban{Jail: h.jail, Target: pfx(h.target), Start: t0.Add(h.start), Manual: h.manual, Failures: 5}
		if h.end != 0 {
			b.End = t0.Add(h.end)
		}
		if err := s.PutBan(b); err != nil {
			t.Fatal(err)
		}
		if h.ended != 0 {
			if err := s.EndBan(h.jail, b.Target, t0.Add(h.ended), "expired"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestReport checks the report against figures computed by hand from
// reportHistory, for the week before t0 (bans 1-11, 13, 14: 13 bans).
func TestReport(t *testing.T) {
	s := openTest(t)
	loadReportHistory(t, s)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	got, err := s.Report(ReportQuery{Since: t0.Add(-7 * day), Now: t0, Top: 4})
	if err != nil {
		t.Fatal(err)
	}
	const total = 13.0
	want := &Report{
		Since: t0.Add(-7 * day), Until: t0,
		Bans:      13,
		Addresses: 7, // .10 .20 198.51.100.7 ::a ::b ::c 10.9.9.9
		Prefix4:   24, Prefix6: 64,
		TopAddresses: []AddrStat{
			// Bans 1-4: first -6d, last -1d, (5 days) / 3 intervals = 40h.
			{Addr: netip.MustParseAddr("192.0.2.10"), Bans: 4, Share: 4 / total, First: at(-6 * day), Last: at(-day),
				MeanInterval: Interval(40 * time.Hour), Jails: []string{"nginx", "sshd"}},
			// Bans 5-6, one hour apart.
			{Addr: netip.MustParseAddr("192.0.2.20"), Bans: 2, Share: 2 / total, First: at(-3 * day), Last: at(-3*day + time.Hour),
				MeanInterval: Interval(time.Hour), Jails: []string{"sshd"}},
			// One ban each, latest first: 13 (-30m), 10 (-1h); then 9, 11, 7 are cut by Top.
			{Addr: netip.MustParseAddr("10.9.9.9"), Bans: 1, Share: 1 / total, First: at(-30 * time.Minute), Last: at(-30 * time.Minute),
				Jails: []string{"sshd"}},
			{Addr: netip.MustParseAddr("2001:db8:1:2::b"), Bans: 1, Share: 1 / total, First: at(-time.Hour), Last: at(-time.Hour),
				Jails: []string{"nginx"}},
		},
		TopPrefixes: []PrefixStat{
			// 192.0.2.10 (4) + 192.0.2.20 (2) + the /24 ban itself (8).
			{Prefix: pfx("192.0.2.0/24"), Bans: 7, Share: 7 / total, Addresses: 2, PrefixBans: 1, First: at(-6 * day), Last: at(-12 * time.Hour)},
			// ::a (9) and ::b (10).
			{Prefix: pfx("2001:db8:1:2::/64"), Bans: 2, Share: 2 / total, Addresses: 2, First: at(-2 * time.Hour), Last: at(-time.Hour)},
			// One ban, one address each, by address; 2001:db8:1:3::/64 and
			// 203.0.0.0/16 (no address) are cut by Top.
			{Prefix: pfx("10.9.9.0/24"), Bans: 1, Share: 1 / total, Addresses: 1, First: at(-30 * time.Minute), Last: at(-30 * time.Minute)},
			{Prefix: pfx("198.51.100.0/24"), Bans: 1, Share: 1 / total, Addresses: 1, First: at(-5 * day), Last: at(-5 * day)},
		},
		Jails: []JailStat{
			// 4, 9, 10, 11, 14; in force at t0: 9 only (10 ran out).
			{Jail: "nginx", Bans: 5, Share: 5 / total, Targets: 5, Active: 1, First: at(-2 * day), Last: at(-time.Hour)},
			// 1, 2, 3, 5, 6, 7, 8, 13; in force: 3, 8, 13, and 15 (older than Since).
			{Jail: "sshd", Bans: 8, Share: 8 / total, Targets: 5, Manual: 1, Active: 4, First: at(-6 * day), Last: at(-30 * time.Minute)},
		},
	}
	if diff := cmp.Diff(want, got, cmpTime); diff != "" {
		t.Errorf("Report (-want +got):\n%s", diff)
	}

	t.Run("all of it", func(t *testing.T) {
		got, err := s.Report(ReportQuery{Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		// The week's prefixes, and 203.0.113.0/24 (ban 12); 192.0.2.99 (15)
		// joins 192.0.2.0/24.
		if got.Bans != 15 || got.Addresses != 9 || len(got.TopAddresses) != 9 || len(got.TopPrefixes) != 7 {
			t.Errorf("whole history: %d bans, %d addresses, %d top, %d prefixes; want 15, 9, 9, 7",
				got.Bans, got.Addresses, len(got.TopAddresses), len(got.TopPrefixes))
		}
		last := got.TopPrefixes[len(got.TopPrefixes)-1]
		if last.Prefix != pfx("203.0.0.0/16") || last.PrefixBans != 1 || last.Addresses != 0 {
			t.Errorf("the /16 ban: %+v", last)
		}
	})

	t.Run("one jail", func(t *testing.T) {
		got, err := s.Report(ReportQuery{Since: t0.Add(-7 * day), Now: t0, Jail: "nginx"})
		if err != nil {
			t.Fatal(err)
		}
		// Four addresses of one ban each, latest first: 192.0.2.10 (ban 4)
		// is the oldest.
		last := got.TopAddresses[len(got.TopAddresses)-1]
		if got.Bans != 5 || len(got.Jails) != 1 || got.Addresses != 4 ||
			last.Addr != netip.MustParseAddr("192.0.2.10") || last.Bans != 1 || last.Share != 0.2 {
			t.Errorf("nginx report: %+v", got)
		}
	})

	t.Run("json", func(t *testing.T) {
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`"address":"192.0.2.10","bans":4,`,
			`"mean_interval_s":144000,`,
			`"prefix":"192.0.2.0/24","bans":7,`,
			`"prefix_bans":1,`,
			`"jail":"sshd","bans":8,`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("JSON lacks %s:\n%s", want, b)
			}
		}
		var generic struct {
			Top []map[string]any `json:"top_addresses"`
		}
		if err := json.Unmarshal(b, &generic); err != nil {
			t.Fatal(err)
		}
		if _, ok := generic.Top[2]["mean_interval_s"]; ok || generic.Top[2]["address"] != "10.9.9.9" {
			t.Errorf("mean_interval_s of an address banned once is not omitted: %v", generic.Top[2])
		}
		var back Report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, &back, cmpTime); diff != "" {
			t.Errorf("JSON round trip (-want +got):\n%s", diff)
		}
	})

	t.Run("empty", func(t *testing.T) {
		got, err := openTest(t).Report(ReportQuery{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(got)
		if !strings.Contains(string(b), `"top_addresses":[],"top_prefixes":[],"jails":[]`) {
			t.Errorf("empty report JSON: %s", b)
		}
	})
}
