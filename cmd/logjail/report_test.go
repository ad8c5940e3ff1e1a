package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/store"
)

// reportNow ends the period of every report in these tests.
var reportNow = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

const reportDay = 24 * time.Hour

// reportHistory is a known history, numbered for the figures computed by hand in the tests.
// Times are relative to reportNow.
var reportHistory = []struct {
	jail, target string
	start, end   time.Duration // end 0: permanent
	ended        bool          // ended at its end (else in force)
	manual       bool
}{
	/* 1 */ {"sshd", "203.0.113.5", -6 * reportDay, -6*reportDay + time.Hour, true, false},
	/* 2 */ {"sshd", "203.0.113.5", -5 * reportDay, -5*reportDay + 2*time.Hour, true, false},
	/* 3 */ {"sshd", "203.0.113.5", -3 * reportDay, -3*reportDay + 4*time.Hour, true, false},
	/* 4 */ {"sshd", "203.0.113.5", -1 * reportDay, 3 * reportDay, false, false}, // in force
	/* 5 */ {"nginx", "203.0.113.5", -2 * reportDay, -2*reportDay + time.Hour, true, false},
	/* 6 */ {"sshd", "203.0.113.77", -4 * reportDay, -4*reportDay + time.Hour, true, false},
	/* 7 */ {"sshd", "203.0.113.77", -4*reportDay + 6*time.Hour, -4*reportDay + 7*time.Hour, true, false},
	/* 8 */ {"nginx", "2001:db8:aa:1::1", -12 * time.Hour, 12 * time.Hour, false, false}, // in force
	/* 9 */ {"nginx", "2001:db8:aa:1::2", -10 * time.Hour, -9 * time.Hour, true, false},
	/* 10 */ {"nginx", "2001:db8:aa:2::1", -8 * time.Hour, -7 * time.Hour, true, false},
	/* 11 */ {"sshd", "203.0.113.0/24", -20 * time.Hour, 0, false, false}, // a subnet ban, in force
	/* 12 */ {"sshd", "198.51.100.9", -30 * time.Minute, 0, false, true}, // manual, permanent
	/* 13 */ {"sshd", "192.0.2.1", -10 * reportDay, -10*reportDay + time.Hour, true, false}, // before 7d
	/* 14 */ {"sshd", "192.0.2.2", -9 * reportDay, reportDay, false, false}, // before 7d, in force
}

// fillReportDB writes reportHistory into a new database at path through the store API and
// returns the store, still open (a running daemon).
func fillReportDB(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, h := range reportHistory {
		b := store.Ban{Jail: h.jail, Target: netip.MustParsePrefix(withBits(h.target)), Start: reportNow.Add(h.start),
			Failures: 5, Manual: h.manual}
		if h.end != 0 {
			b.End = reportNow.Add(h.end)
		}
		if err := st.PutBan(b); err != nil {
			t.Fatal(err)
		}
		if h.ended {
			if err := st.EndBan(h.jail, b.Target, b.End, "expired"); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

func withBits(s string) string {
	if strings.Contains(s, "/") {
		return s
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen()).String()
}

// runReportCmd runs `logjail report` built by newReportCmdAt with reportNow as now.
func runReportCmd(t *testing.T, args ...string) (string, int, string) {
	t.Helper()
	cmd := newReportCmdAt(func() time.Time { return reportNow })
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(t.Context())
	if err == nil {
		return out.String(), 0, ""
	}
	code := 2
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	return out.String(), code, err.Error()
}

// at is a time of the history, as report prints it: "{-6d}" in a golden text.
func reportTimes() *strings.Replacer {
	var pairs []string
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"-7d", -7 * reportDay}, {"-6d", -6 * reportDay}, {"-4d", -4 * reportDay}, {"-4d+6h", -4*reportDay + 6*time.Hour},
		{"-2d", -2 * reportDay}, {"-1d", -reportDay}, {"-20h", -20 * time.Hour}, {"-12h", -12 * time.Hour},
		{"-10h", -10 * time.Hour}, {"-8h", -8 * time.Hour}, {"-30m", -30 * time.Minute}, {"-10d", -10 * reportDay},
		{"now", 0},
	} {
		pairs = append(pairs, "{"+d.name+"}", fmtTime(reportNow.Add(d.d)))
	}
	return strings.NewReplacer(pairs...)
}

// TestReportHuman checks the printed figures against those computed by hand from
// reportHistory over the week before reportNow (bans 1-12), with the database open by a
// writer (the daemon running).
func TestReportHuman(t *testing.T) {
	db := filepath.Join(t.TempDir(), "logjail.db")
	fillReportDB(t, db)
	out, code, msg := runReportCmd(t, "--db", db, "--since", "7d")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	// 12 bans; addresses .5 .77 198.51.100.9 and three IPv6 (the /24 ban is no address).
	// 203.0.113.5: bans 1-5, 5/12 = 41.7%, -6d to -1d: 5 days / 4 intervals = 30h = 1d6h.
	// 203.0.113.77: bans 6-7, 2/12 = 16.7%, 6h apart. The others: one ban each, 1/12 = 8.3%,
	// the latest first.
	// 203.0.113.0/24: 5 + 2 + the /24 ban (11) = 8, 66.7%, 2 addresses, first -6d (1), last
	// -20h (11). 2001:db8:aa:1::/64: 8 and 9. Then one ban each, by address (IPv4 first).
	// nginx: 5, 8, 9, 10 = 4 (33.3%), 4 targets, in force 8. sshd: 1-4, 6, 7, 11, 12 = 8
	// (66.7%), targets .5 .77 /24 .9, manual 12, in force 4, 11, 12 and 14 (started before
	// the week).
	want := reportTimes().Replace(`12 bans, 6 addresses, from {-7d} to {now} (every jail)

ADDRESS           BANS  SHARE  FIRST BAN            LAST BAN             MEAN INTERVAL  JAILS
203.0.113.5       5     41.7%  {-6d}  {-1d}  1d6h           nginx,sshd
203.0.113.77      2     16.7%  {-4d}  {-4d+6h}  6h             sshd
198.51.100.9      1     8.3%   {-30m}  {-30m}  -              sshd
2001:db8:aa:2::1  1     8.3%   {-8h}  {-8h}  -              nginx
2001:db8:aa:1::2  1     8.3%   {-10h}  {-10h}  -              nginx
2001:db8:aa:1::1  1     8.3%   {-12h}  {-12h}  -              nginx

PREFIX (/24, /64)   BANS  SHARE  ADDRESSES  PREFIX BANS  FIRST BAN            LAST BAN
203.0.113.0/24      8     66.7%  2          1            {-6d}  {-20h}
2001:db8:aa:1::/64  2     16.7%  2          0            {-12h}  {-10h}
198.51.100.0/24     1     8.3%   1          0            {-30m}  {-30m}
2001:db8:aa:2::/64  1     8.3%   1          0            {-8h}  {-8h}

JAIL   BANS  SHARE  TARGETS  MANUAL  IN FORCE  FIRST BAN            LAST BAN
nginx  4     33.3%  4        0       1         {-2d}  {-8h}
sshd   8     66.7%  4        1       4         {-6d}  {-30m}
`)
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

func TestReportTopAndJail(t *testing.T) {
	db := filepath.Join(t.TempDir(), "logjail.db")
	fillReportDB(t, db)

	out, code, msg := runReportCmd(t, "--db", db, "--since", "7d", "--top", "2")
	if code != 0 {
		t.Fatalf("--top 2: exit %d: %s", code, msg)
	}
	for _, want := range []string{
		"\n203.0.113.5   ", "\n203.0.113.77  ",
		"(the top 2 of 6 addresses; --top 0 lists all)\n",
		"\n203.0.113.0/24  ", "\n2001:db8:aa:1::/64  ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--top 2: output lacks %q\n%s", want, out)
		}
	}
	for _, not := range []string{"198.51.100.9", "2001:db8:aa:2::"} {
		if strings.Contains(out, not) {
			t.Errorf("--top 2: output has %q\n%s", not, out)
		}
	}

	// nginx alone: bans 5, 8, 9, 10; each address once, 1/4 = 25.0%.
	out, code, msg = runReportCmd(t, "--db", db, "--since", "1w", "--jail", "nginx", "--top", "0")
	if code != 0 {
		t.Fatalf("--jail nginx: exit %d: %s", code, msg)
	}
	want := reportTimes().Replace(`4 bans, 4 addresses, from {-7d} to {now} (jail nginx)

ADDRESS           BANS  SHARE  FIRST BAN            LAST BAN             MEAN INTERVAL  JAILS
2001:db8:aa:2::1  1     25.0%  {-8h}  {-8h}  -              nginx
2001:db8:aa:1::2  1     25.0%  {-10h}  {-10h}  -              nginx
2001:db8:aa:1::1  1     25.0%  {-12h}  {-12h}  -              nginx
203.0.113.5       1     25.0%  {-2d}  {-2d}  -              nginx

PREFIX (/24, /64)   BANS  SHARE  ADDRESSES  PREFIX BANS  FIRST BAN            LAST BAN
2001:db8:aa:1::/64  2     50.0%  2          0            {-12h}  {-10h}
203.0.113.0/24      1     25.0%  1          0            {-2d}  {-2d}
2001:db8:aa:2::/64  1     25.0%  1          0            {-8h}  {-8h}

JAIL   BANS  SHARE   TARGETS  MANUAL  IN FORCE  FIRST BAN            LAST BAN
nginx  4     100.0%  4        0       1         {-2d}  {-8h}
`)
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("--jail nginx (-want +got):\n%s", diff)
	}

	// The whole history: 13 and 14 too (addresses 192.0.2.1, 192.0.2.2).
	out, code, msg = runReportCmd(t, "--db", db, "--top", "0")
	if code != 0 {
		t.Fatalf("whole history: exit %d: %s", code, msg)
	}
	if first := strings.SplitN(out, "\n", 2)[0]; first != reportTimes().Replace("14 bans, 8 addresses, over the whole history to {now} (every jail)") {
		t.Errorf("whole history: %q", first)
	}
	if !strings.Contains(out, "\n192.0.2.0/24  ") || !strings.Contains(out, "\nsshd   10    71.4%  6        1       4  ") {
		t.Errorf("whole history: 192.0.2.0/24 or sshd's 10 bans (10/14 = 71.4%%, 6 targets) missing\n%s", out)
	}

	// Since a date: from 2026-03-01 00:00 UTC, bans 3-5 (from 03-01 12:00 on) and 8-12;
	// addresses 203.0.113.5 and the four of bans 8, 9, 10 and 12.
	out, code, msg = runReportCmd(t, "--db", db, "--since", "2026-03-01T00:00:00Z")
	if code != 0 || !strings.HasPrefix(out, "8 bans, 5 addresses, from ") {
		t.Errorf("--since a date: exit %d %s\n%s", code, msg, out)
	}
}

// TestReportJSON checks --json against the figures computed by hand, with the daemon stopped
// (the database closed).
func TestReportJSON(t *testing.T) {
	db := filepath.Join(t.TempDir(), "logjail.db")
	if err := fillReportDB(t, db).Close(); err != nil {
		t.Fatal(err)
	}
	out, code, msg := runReportCmd(t, "--db", db, "--since", "7d", "--top", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if !strings.HasPrefix(out, "{\n  \"") || !strings.HasSuffix(out, "}\n") {
		t.Errorf("not indented JSON:\n%s", out)
	}
	// Intervals are seconds: 30h and 6h.
	for _, want := range []string{`"mean_interval_s": 108000,`, `"mean_interval_s": 21600,`} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %s\n%s", want, out)
		}
	}
	var got store.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	at := func(d time.Duration) time.Time { return reportNow.Add(d) }
	addr := netip.MustParseAddr
	pfx := netip.MustParsePrefix
	const n = 12.0
	want := store.Report{
		Since: at(-7 * reportDay), Until: reportNow, Bans: 12, Addresses: 6, Prefix4: 24, Prefix6: 64,
		TopAddresses: []store.AddrStat{
			{Addr: addr("203.0.113.5"), Bans: 5, Share: 5 / n, First: at(-6 * reportDay), Last: at(-reportDay),
				MeanInterval: store.Interval(30 * time.Hour), Jails: []string{"nginx", "sshd"}},
			{Addr: addr("203.0.113.77"), Bans: 2, Share: 2 / n, First: at(-4 * reportDay), Last: at(-4*reportDay + 6*time.Hour),
				MeanInterval: store.Interval(6 * time.Hour), Jails: []string{"sshd"}},
			{Addr: addr("198.51.100.9"), Bans: 1, Share: 1 / n, First: at(-30 * time.Minute), Last: at(-30 * time.Minute),
				Jails: []string{"sshd"}},
		},
		TopPrefixes: []store.PrefixStat{
			{Prefix: pfx("203.0.113.0/24"), Bans: 8, Share: 8 / n, Addresses: 2, PrefixBans: 1, First: at(-6 * reportDay), Last: at(-20 * time.Hour)},
			{Prefix: pfx("2001:db8:aa:1::/64"), Bans: 2, Share: 2 / n, Addresses: 2, First: at(-12 * time.Hour), Last: at(-10 * time.Hour)},
			{Prefix: pfx("198.51.100.0/24"), Bans: 1, Share: 1 / n, Addresses: 1, First: at(-30 * time.Minute), Last: at(-30 * time.Minute)},
		},
		Jails: []store.JailStat{
			{Jail: "nginx", Bans: 4, Share: 4 / n, Targets: 4, Active: 1, First: at(-2 * reportDay), Last: at(-8 * time.Hour)},
			{Jail: "sshd", Bans: 8, Share: 8 / n, Targets: 4, Manual: 1, Active: 4, First: at(-6 * reportDay), Last: at(-30 * time.Minute)},
		},
	}
	opts := cmp.Options{
		cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

func TestReportEmpty(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "logjail.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, code, msg := runReportCmd(t, "--state", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if want := reportTimes().Replace("no bans over the whole history to {now} (every jail)\n"); out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	out, code, _ = runReportCmd(t, "--state", dir, "--json")
	var r store.Report
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Bans != 0 ||
		r.TopAddresses == nil || r.TopPrefixes == nil || r.Jails == nil {
		t.Errorf("--json: exit %d, %v\n%s", code, err, out)
	}
	if !strings.Contains(out, `"top_addresses": [],`) {
		t.Errorf("--json: empty lists should be [], not null\n%s", out)
	}
}

func TestReportErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notdb")
	if err := os.WriteFile(notDB, []byte("this is not a database, just some text long enough to be read"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string // the whole message, or a prefix when ending in "..."
	}{
		{"no database in the state dir", []string{"--state", dir},
			1, "no logjail database at " + filepath.Join(dir, "logjail.db") + ": the daemon has not run with this state directory"},
		{"no state dir", []string{"--state", filepath.Join(dir, "nope")},
			1, "no logjail database at " + filepath.Join(dir, "nope", "logjail.db") + ": the daemon has not run with this state directory"},
		{"no --db file", []string{"--db", filepath.Join(dir, "x.db")}, 1, "no logjail database at " + filepath.Join(dir, "x.db")},
		{"not a database", []string{"--db", notDB}, 1, "cannot read the logjail database at " + notDB + ": ..."},
		{"bad --since", []string{"--state", dir, "--since", "last week"}, 2, `--since "last week": want a duration ...`},
		{"permanent --since", []string{"--state", dir, "--since", "-1"}, 2, `--since "-1": want a positive duration`},
		{"negative --top", []string{"--state", dir, "--top", "-1"}, 2, "--top -1: want 0 (all) or more"},
		{"--state and --db", []string{"--state", dir, "--db", notDB}, 2, "if any flags in the group [state db] are set none of the others can be; [db state] were all set"},
		{"an argument", []string{"--state", dir, "sshd"}, 2, `unknown command "sshd" for "report"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, code, msg := runReportCmd(t, tt.args...)
			ok := msg == tt.msg
			if p, cut := strings.CutSuffix(tt.msg, "..."); cut {
				ok = strings.HasPrefix(msg, p)
			}
			if code != tt.code || !ok {
				t.Errorf("exit %d, %q; want %d, %q", code, msg, tt.code, tt.msg)
			}
		})
	}
}

// TestNewReportCmd runs the command as the lead registers it: real clock, default flags.
func TestNewReportCmd(t *testing.T) {
	cmd := newReportCmd()
	if cmd.Name() != "report" {
		t.Errorf("name %q", cmd.Name())
	}
	for flag, def := range map[string]string{"state": "/var/lib/logjail", "db": "", "top": "10", "since": "", "jail": "", "json": "false"} {
		if f := cmd.Flags().Lookup(flag); f == nil || f.DefValue != def {
			t.Errorf("--%s: %v, want default %q", flag, f, def)
		}
	}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "logjail.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, b := range []store.Ban{
		{Jail: "sshd", Target: netip.MustParsePrefix("192.0.2.7/32"), Start: start, End: start.Add(2 * time.Hour)},
		{Jail: "sshd", Target: netip.MustParsePrefix("192.0.2.8/32"), Start: start.Add(-48 * time.Hour), End: start.Add(-47 * time.Hour)},
	} {
		if err := st.PutBan(b); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--state", dir, "--since", "1d"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := "1 ban, 1 address, from "; !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "\n192.0.2.7  ") {
		t.Errorf("output does not start with %q or lacks 192.0.2.7:\n%s", want, out.String())
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"1w", now.Add(-7 * 24 * time.Hour)},
		{"12h", now.Add(-12 * time.Hour)},
		{"3600", now.Add(-time.Hour)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"7 days", now.Add(-7 * 24 * time.Hour)},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.Local)},
		{"2026-03-01 08:30", time.Date(2026, 3, 1, 8, 30, 0, 0, time.Local)},
		{"2026-03-01 08:30:15", time.Date(2026, 3, 1, 8, 30, 15, 0, time.Local)},
		{"2026-03-01T08:30:15+02:00", time.Date(2026, 3, 1, 6, 30, 15, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "0", "-1", "2026-13-01", "2026-03-01 25:00", "1d-2d"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q): no error", bad)
		}
	}
}

// TestOpenReportErr checks the sentences for what the tests cannot make as root.
func TestOpenReportErr(t *testing.T) {
	perm := &fs.PathError{Op: "stat", Path: "/var/lib/logjail/logjail.db", Err: fs.ErrPermission}
	got := openReportErr("/var/lib/logjail/logjail.db", false, fmt.Errorf("open database: %w", perm)).Error()
	if want := "cannot read the logjail database at /var/lib/logjail/logjail.db: permission denied (it is root's: run as root)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	got = openReportErr("/x.db", false, fmt.Errorf("%w: file has version 9, this logjail uses 1", store.ErrSchema)).Error()
	if want := "cannot read the logjail database at /x.db: database schema version mismatch: file has version 9, this logjail uses 1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
