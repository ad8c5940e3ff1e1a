package main

import (
	"bytes"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// These tests cover the parsing and arithmetic that the figures rest on; the benchmark itself
// needs root and runs through scripts/bench-daemon.sh.

func TestParseRuleEvent(t *testing.T) {
	tests := []struct {
		line  string
		chain string
		addr  string
		jump  string
	}{
		{"insert rule ip filter lj-sshd meta l4proto tcp ip saddr 10.1.2.3 counter packets 0 bytes 0 reject with tcp reset", "lj-sshd", "10.1.2.3", ""},
		{"insert rule ip filter f2b-sshd ip saddr 10.1.0.7 counter packets 0 bytes 0 reject", "f2b-sshd", "10.1.0.7", ""},
		{"add rule ip filter INPUT meta l4proto tcp tcp dport 22 counter packets 0 bytes 0 jump lj-sshd", "INPUT", "", "lj-sshd"},
		{"add rule ip6 filter lj-sshd ip6 saddr 2001:db8::1 counter packets 0 bytes 0 reject", "lj-sshd", "2001:db8::1", ""},
		{"add rule ip filter lj-web ip saddr 10.0.0.0/8 counter packets 0 bytes 0 drop", "lj-web", "", ""}, // a prefix ban: no single address
		{"delete rule ip filter lj-sshd handle 4", "", "", ""},
		{"add chain ip filter lj-sshd", "", "", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		ev := parseRuleEvent(tt.line)
		var want netip.Addr
		if tt.addr != "" {
			want = netip.MustParseAddr(tt.addr)
		}
		if ev.chain != tt.chain || ev.addr != want || ev.jumpTo != tt.jump {
			t.Errorf("parseRuleEvent(%q) = %+v, want chain %q addr %q jump %q", tt.line, ev, tt.chain, tt.addr, tt.jump)
		}
	}
}

func TestParseStat(t *testing.T) {
	// The name may hold spaces and parentheses.
	line := "4242 (logjail (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 7 3 20 0 9 0 100 1000000 2000 18446744073709551615"
	c, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if c.Self != 3*time.Second || c.Children != 100*time.Millisecond {
		t.Errorf("parseStat = %+v, want self 3s children 100ms", c)
	}
	if _, err := parseStat("4242 (x) S 1 2"); err == nil {
		t.Error("a short line gave no error")
	}
}

func TestParseDetectLine(t *testing.T) {
	a, tm, ok := parseDetectLine(kindLogjail, `time=2026-11-22T16:36:49.495Z level=INFO msg=ban jail=sshd target=10.1.0.1 failures=1 until=2026-11-22T17:36:49.495Z manual=false`)
	if !ok || a != netip.MustParseAddr("10.1.0.1") || !tm.Equal(time.Date(2026, 11, 22, 16, 36, 49, 495e6, time.UTC)) {
		t.Errorf("logjail: %v %v %v", a, tm, ok)
	}
	if _, _, ok := parseDetectLine(kindLogjail, `time=2026-11-22T16:36:49.495Z level=INFO msg="ban extended" jail=sshd target=10.1.0.1`); ok {
		t.Error("logjail: an extension taken for a ban")
	}
	a, tm, ok = parseDetectLine(kindFail2ban, "2026-11-22 16:36:59,582 fail2ban.filter         [14860]: INFO    [sshd] Found 10.1.0.1 - 2026-11-22 16:36:59")
	if !ok || a != netip.MustParseAddr("10.1.0.1") || !tm.Equal(time.Date(2026, 11, 22, 16, 36, 59, 582e6, time.Local)) {
		t.Errorf("fail2ban: %v %v %v", a, tm, ok)
	}
	if _, _, ok := parseDetectLine(kindFail2ban, "2026-11-22 16:36:59,037 fail2ban.actions        [14860]: NOTICE  [sshd] Ban 10.255.0.1"); ok {
		t.Error("fail2ban: a Ban line taken for a Found line")
	}
}

func TestParseGCLine(t *testing.T) {
	g, ok := parseGCLine("gc 33 @12.345s 1%: 0.015+2.1+0.004 ms clock, 0.031+0.2/1.9/0+0.009 ms cpu, 19->20->10 MB, 20 MB goal, 0 MB stacks, 0 MB globals, 2 P")
	if !ok || g.num != 33 || g.live != 10<<20 {
		t.Errorf("parseGCLine = %+v, %v", g, ok)
	}
	g, ok = parseGCLine("gc 2 @0.100s 0%: 0.01+0.2+0.002 ms clock, 0.02+0/0.1/0+0.004 ms cpu, 3->3->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)")
	if !ok || g.num != 2 || g.live != 0 {
		t.Errorf("parseGCLine forced = %+v, %v", g, ok)
	}
	if _, ok := parseGCLine(`time=2026-11-22T16:36:49.495Z level=INFO msg="gc 3"`); ok {
		t.Error("a log line taken for a gctrace line")
	}
}

func TestGenerateRestamp(t *testing.T) {
	now := time.Date(2026, 12, 3, 7, 8, 9, 0, time.UTC)
	for _, kind := range []string{"sshd", "access"} {
		g, err := generate(kind, 500, 1)
		if err != nil {
			t.Fatal(err)
		}
		if g.lines != 500 || g.lineOffset(500) != len(g.data) || g.lineOffset(0) != 0 {
			t.Fatalf("%s: %d lines, offsets %d %d of %d", kind, g.lines, g.lineOffset(0), g.lineOffset(500), len(g.data))
		}
		before := len(g.data)
		g.restamp(now, 100, 200)
		if len(g.data) != before {
			t.Fatalf("%s: restamp changed the length", kind)
		}
		lines := strings.Split(strings.TrimSuffix(string(g.data), "\n"), "\n")
		stamp := now.Format(syslogStamp)
		if kind == "access" {
			stamp = "[" + now.Format(accessStamp) + "]"
		}
		for i, l := range lines {
			has := strings.Contains(l, stamp)
			if has != (i >= 100 && i < 200) {
				t.Fatalf("%s line %d: stamped %v: %q", kind, i, has, l)
			}
			if i > 0 && !bytes.HasPrefix(g.data[g.lineOffset(i):], []byte(l)) {
				t.Fatalf("%s: lineOffset(%d) is not the start of line %d", kind, i, i)
			}
		}
	}
}

func TestBenchAddrDistinct(t *testing.T) {
	seen := make(map[netip.Addr]bool, 1_100_000)
	for i := range 1_100_000 {
		a := benchAddr(i)
		b := a.As4()
		if seen[a] || b[3] == 0 || b[3] == 255 || a == warmAddr || a == sentinelAddr {
			t.Fatalf("benchAddr(%d) = %v: repeated or reserved", i, a)
		}
		seen[a] = true
	}
	if a := benchAddr(maxAddrs - 1).As4(); a[1] > 254 {
		t.Errorf("benchAddr(maxAddrs-1) = %v", a)
	}
}

func TestLatencyStats(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 98; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	s := latencyStats(lat, 100, time.Second) // two never seen
	if s.P50 != 50 || s.P90 != 90 || s.P99 != -1 || s.Max != 98 || s.Missed != 2 {
		t.Errorf("latencyStats = %+v", s)
	}
	s = latencyStats(lat[:1], 1, time.Second)
	if s.P50 != 1 || s.P99 != 1 {
		t.Errorf("one ban: %+v", s)
	}
	if !math.IsNaN(ratio(-1, 3)) || ratio(6, 3) != 2 {
		t.Error("ratio")
	}
}

func TestWriteChunks(t *testing.T) {
	dir := t.TempDir()
	f, err := appendFile(dir + "/x.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var data []byte
	for i := range 1000 {
		data = sshdNoise(data, time.Now(), i)
	}
	if err := writeChunks(f, data, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := appendFile(dir + "/x.log"); err == nil {
		t.Error("appendFile opened a log that exists")
	}
}

func TestParseProbeLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want probeResult
		ok   bool
	}{
		{"ok", "10.250.0.2 1700000000123456789 250000 ok ", probeResult{src: probeAddr, at: time.Unix(0, 1700000000123456789), dur: 250 * time.Microsecond, outcome: "ok"}, true},
		{"refused", "10.250.0.3 1700000000000000000 90000 refused", probeResult{src: bystanderAddr, at: time.Unix(0, 1700000000000000000), dur: 90 * time.Microsecond, outcome: "refused"}, true},
		{"other with detail", "10.250.0.2 1 2 other dial tcp4: no route to host", probeResult{src: probeAddr, at: time.Unix(0, 1), dur: 2, outcome: "other", detail: "dial tcp4: no route to host"}, true},
		{"short", "10.250.0.2 1 2", probeResult{}, false},
		{"bad address", "x 1 2 ok", probeResult{}, false},
		{"bad time", "10.250.0.2 t 2 ok", probeResult{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseProbeLine(tt.line)
			if ok != tt.ok || !got.at.Equal(tt.want.at) || got.src != tt.want.src || got.dur != tt.want.dur || got.outcome != tt.want.outcome || got.detail != tt.want.detail {
				t.Errorf("parseProbeLine(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestProbeSummary(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	res := []probeResult{
		{src: probeAddr, at: at(-10), outcome: "ok"}, // before the window
		{src: probeAddr, at: at(0), outcome: "ok"},
		{src: bystanderAddr, at: at(1), outcome: "ok"},
		{src: probeAddr, at: at(10), outcome: "refused"},
		{src: bystanderAddr, at: at(11), outcome: "timeout"},
		{src: probeAddr, at: at(20), outcome: "ok"},
		{src: probeAddr, at: at(30), outcome: "timeout", detail: "i/o timeout"},
		{src: probeAddr, at: at(40), outcome: "refused"},
		{src: probeAddr, at: at(50), outcome: "ok"}, // after the window
	}
	s := probeSummary(res, probeAddr, bystanderAddr, at(0), at(45))
	want := probeStats{n: 5, through: 2, refused: 2, other: 1, firstRefused: at(10), firstThrough: at(0), lastThrough: at(20),
		bystander: 2, bystanderFailed: 1, otherSample: "timeout i/o timeout"}
	if s != want {
		t.Errorf("probeSummary = %+v\nwant %+v", s, want)
	}
}

func TestLogAttrTime(t *testing.T) {
	line := `time=2026-11-22T18:22:24.141Z level=INFO msg="kernel reconciled" jail=sshd kept=100000 banned=0 lifted=3 listed=true`
	tm, ok := logTime(line)
	if !ok || !tm.Equal(time.Date(2026, 11, 22, 18, 22, 24, 141e6, time.UTC)) {
		t.Errorf("logTime = %v, %v", tm, ok)
	}
	for key, want := range map[string]string{"kept": "100000", "banned": "0", "lifted": "3", "listed": "true", "jail": "sshd", "missing": ""} {
		if got := logAttr(line, key); got != want {
			t.Errorf("logAttr(%q) = %q, want %q", key, got, want)
		}
	}
	if _, ok := logTime("level=INFO msg=x"); ok {
		t.Error("logTime of a line without time=")
	}
}

func TestLogWatch(t *testing.T) {
	path := t.TempDir() + "/x.log"
	f, err := appendFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &logWatch{path: path}
	write := func(s string) {
		t.Helper()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write("a\nkernel rec")
	if got := w.find("kernel reconciled"); got != "" {
		t.Errorf("found %q in an unfinished line", got)
	}
	write("onciled kept=1\nb\n")
	if got := w.find("kernel reconciled"); got != "kernel reconciled kept=1" {
		t.Errorf("find = %q", got)
	}
	if got := w.find("kernel reconciled"); got != "" {
		t.Errorf("found %q again", got)
	}
}

func TestQuarterTimes(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
	seen := map[netip.Addr]time.Time{}
	for i := range 8 {
		seen[benchAddr(i)] = t0.Add(time.Duration(i+1) * time.Second)
	}
	got := quarterTimes(seen, t0, 8)
	want := []time.Duration{2 * time.Second, 4 * time.Second, 6 * time.Second, 8 * time.Second}
	if len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("quarterTimes = %v, want %v", got, want)
	}
	if quarterTimes(seen, t0, 9) != nil {
		t.Error("quarterTimes with fewer seen than asked")
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{-1: "-", 0: "0 ms", 999600 * time.Microsecond: "1.00 s", 12 * time.Millisecond: "12 ms", 2346 * time.Millisecond: "2.35 s"} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}
