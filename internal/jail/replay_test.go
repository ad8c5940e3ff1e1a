package jail

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/loggen"
)

type replayBanView struct {
	Time     time.Time
	Addr     string
	Failures int
	Line     string
	Ignored  bool
	By       string
	Until    time.Time
}

func replayAll(t *testing.T, spec Spec, log []byte, o ReplayOptions) ([]replayBanView, ReplayStats) {
	t.Helper()
	var got []replayBanView
	st, err := Replay(spec, bytes.NewReader(log), o, func(b ReplayBan) {
		v := replayBanView{Time: b.Time, Addr: b.Addr.String(), Failures: b.Failures, Line: b.Line, Ignored: b.Ignored, Until: b.Until}
		if b.Ignored {
			v.By = b.IgnoredBy.String()
		}
		if b.Target != netip.PrefixFrom(b.Addr, b.Addr.BitLen()) {
			t.Errorf("Target %v for %v", b.Target, b.Addr)
		}
		if len(b.Lines) != b.Failures || b.Lines[len(b.Lines)-1] != b.Line {
			t.Errorf("ban of %v: %d lines for %d failures, last %q", b.Addr, len(b.Lines), b.Failures, b.Lines[len(b.Lines)-1])
		}
		got = append(got, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, st
}

func TestReplay(t *testing.T) {
	at := func(min, sec int) time.Time {
		return t0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
	}
	var log strings.Builder
	add := func(s string) string { log.WriteString(s); return strings.TrimSuffix(s, "\n") }
	add(sshLine(at(0, 0), "root", "192.0.2.1"))
	add(sshLine(at(0, 1), "root", "10.0.0.5"))
	add(sshLine(at(0, 2), "root", "192.0.2.1"))
	add(sshLine(at(0, 3), "root", "192.0.2.3")) // 192.0.2.3 fails every 6 minutes: never 3 in 10m
	add(noise(at(1, 0)))
	add(sshLine(at(1, 1), "root", "10.0.0.5"))
	crossA := add(sshLine(at(2, 0), "admin", "192.0.2.1"))
	crossIgnored := add(sshLine(at(2, 1), "root", "10.0.0.5"))
	add(sshLine(at(3, 0), "root", "192.0.2.1")) // banned until 12:00: not counted
	add(sshLine(at(6, 3), "root", "192.0.2.3"))
	add(sshLine(at(12, 3), "root", "192.0.2.3"))
	add(sshLine(at(12, 4), "root", "192.0.2.1")) // the ban ended: counts again
	add(sshLine(at(0, 30), "root", "192.0.2.9")) // a line from 12 minutes earlier: too old
	add("no date at all\n")

	spec := sshSpec(t)
	o := ReplayOptions{Now: t0.Add(time.Hour), IgnoreNets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, BanTime: 10 * time.Minute}
	got, st := replayAll(t, spec, []byte(log.String()), o)
	want := []replayBanView{
		{Time: at(2, 0), Addr: "192.0.2.1", Failures: 3, Line: crossA, Until: at(12, 0)},
		{Time: at(2, 1), Addr: "10.0.0.5", Failures: 3, Line: crossIgnored, Ignored: true, By: "10.0.0.0/8"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bans (-want +got):\n%s", diff)
	}
	wantStats := ReplayStats{
		Format: "text", Lines: 14, NoDate: 1, Matched: 12, Failures: 10, TooOld: 1, WhileBanned: 1,
		Bans: 2, Ignored: 1, Addresses: 1, First: at(0, 0), Last: at(12, 4),
	}
	if diff := cmp.Diff(wantStats, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	// Without BanTime, every crossing is reported.
	o.BanTime = 0
	var log2 strings.Builder
	for i := range 7 {
		log2.WriteString(sshLine(at(0, i), "root", "192.0.2.1"))
	}
	got, _ = replayAll(t, spec, []byte(log2.String()), o)
	if len(got) != 2 || got[0].Time != at(0, 2) || got[1].Time != at(0, 5) || !got[0].Until.IsZero() {
		t.Errorf("bans without BanTime: %+v", got)
	}
	// Forever: once.
	o.BanTime = config.Forever
	if got, st := replayAll(t, spec, []byte(log2.String()), o); len(got) != 1 || st.WhileBanned != 4 {
		t.Errorf("bans with a permanent BanTime: %+v, stats %+v", got, st)
	}
}

func TestReplayBtmp(t *testing.T) {
	spec := Spec{Name: "btmp", Filter: loadFilter(t, "btmp", filter.Options{}), MaxRetry: 3, FindTime: 10 * time.Minute}
	recs := append(btmpRecords(t0, "192.0.2.20", 4), bytes.Repeat([]byte{0xee}, 384)...)
	got, st := replayAll(t, spec, recs, ReplayOptions{})
	if len(got) != 1 || got[0].Addr != "192.0.2.20" || got[0].Time != t0.Add(2*time.Second) {
		t.Errorf("bans %+v", got)
	}
	if st.Format != "btmp" || st.Lines != 4 || st.Garbage != 1 || st.Failures != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestReplayErrors(t *testing.T) {
	if _, err := Replay(Spec{Name: "x", MaxRetry: 1, FindTime: time.Minute}, strings.NewReader(""), ReplayOptions{}, func(ReplayBan) {}); err == nil {
		t.Error("Replay without a filter: no error")
	}
}

func TestEachLine(t *testing.T) {
	long := strings.Repeat("y", 100)
	in := "a\r\nb\n" + long + "\n" + strings.Repeat("z", 10) + "\nlast"
	var got []string
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	if err := eachLine(br, 12, func(s string) { got = append(got, s) }); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", long[:12], strings.Repeat("z", 10), "last"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// Replay over a generated auth.log: its bans are the live jail's (same code) and the numbers
// add up.
func TestReplayGenerated(t *testing.T) {
	var buf bytes.Buffer
	if err := loggen.SSHD(&buf, 20000, 1); err != nil {
		t.Fatal(err)
	}
	spec := sshSpec(t)
	spec.MaxRetry = 5
	o := ReplayOptions{Now: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), BanTime: 10 * time.Minute}
	got, st := replayAll(t, spec, buf.Bytes(), o)
	if len(got) == 0 || st.Lines != 20000 || st.NoDate != 0 || st.Failures == 0 {
		t.Fatalf("%d bans, stats %+v", len(got), st)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Time.Before(got[i-1].Time) {
			t.Fatalf("bans out of order: %v after %v", got[i].Time, got[i-1].Time)
		}
	}
	if int64(st.Bans*5) > st.Failures {
		t.Errorf("%d bans from %d failures", st.Bans, st.Failures)
	}
	t.Logf("%d bans of %d addresses; %+v", len(got), st.Addresses, st)
}
