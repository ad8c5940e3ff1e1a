package main

import (
	"bufio"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// latRun is one ban-latency run of one daemon.
type latRun struct {
	kind      daemonKind
	mode      string // steady or flood
	bans      int
	lines     int           // lines written (without the warm-up)
	writeDur  time.Duration // from the first write to the last
	stats     latStats
	detect    latStats        // from the line's write to the daemon's log line saying it crossed maxretry
	apply     latStats        // from that log line to the rule in the kernel
	cpu       cpuTimes        // the daemon's, from the first write until the last ban was seen (or the cap)
	other     float64         // CPUs used by other processes of the machine meanwhile (shared machine)
	steal     float64         // CPUs stolen by the hypervisor meanwhile
	banned    int64           // logjail: total_banned after the run (the warm-up included)
	negatives int             // bans seen before ljbench read the clock after the write returned
	rulesPerS float64         // bans seen / (last rule - first crossing line written): the ban rate achieved
	first     []time.Duration // latencies of the first and the last tenth of the bans (seen ones)
	last      []time.Duration
	errors    []string
}

// latencyBench runs the ban-latency workload of a mode (steady or flood) on logjail and, when
// asked, fail2ban, and prints the table and results.
func (b *bench) latencyBench(mode string) error {
	every := b.o.steadyEvery
	if mode == "flood" {
		every = b.o.floodEvery
	}
	var runs []*latRun
	add := func(r *latRun, err error) error {
		if err != nil {
			return b.failedRun(mode+" ban latency", err)
		}
		runs = append(runs, r)
		return nil
	}
	if err := add(b.latencyRun(kindLogjail, mode, b.o.bans, every)); err != nil {
		return err
	}
	if b.o.f2b {
		f2bBans := b.o.bans
		if mode == "flood" && b.o.f2bFloodBans > 0 && b.o.f2bFloodBans < b.o.bans {
			f2bBans = b.o.f2bFloodBans
			// logjail on the very workload fail2ban gets, for a fair ratio.
			if err := add(b.latencyRun(kindLogjail, mode, f2bBans, every)); err != nil {
				return err
			}
		}
		if err := add(b.latencyRun(kindFail2ban, mode, f2bBans, every)); err != nil {
			return err
		}
	}
	if len(runs) == 0 {
		return nil
	}

	var title string
	if mode == "steady" {
		title = fmt.Sprintf("ban latency, steady %d lines/s, one failing address every %d lines (%.0f bans/s), sshd jail maxretry %d",
			b.o.steadyRate, every, float64(b.o.steadyRate)/float64(every), b.o.maxretry)
	} else {
		title = fmt.Sprintf("ban latency, flood: lines appended as fast as ljbench can (%d line(s) a write), one failing address every %d lines, sshd jail maxretry %d",
			b.o.floodBatch, every, b.o.maxretry)
	}
	header := []string{"daemon", "bans", "seen", "p50", "p90", "p99", "max", "mean", "lines", "written in", "lines/s written", "cpu self", "cpu children", "other load"}
	var rows [][]string
	for _, r := range runs {
		s := r.stats
		rows = append(rows, []string{
			string(r.kind), fmt.Sprint(s.N), fmt.Sprint(s.Seen),
			fmtMS(s.P50, s.CapSec), fmtMS(s.P90, s.CapSec), fmtMS(s.P99, s.CapSec), fmtMS(s.Max, s.CapSec), fmtMS(s.Mean, s.CapSec),
			fmt.Sprint(r.lines), fmt.Sprintf("%.2f s", r.writeDur.Seconds()), fmt.Sprintf("%.0f", float64(r.lines)/r.writeDur.Seconds()),
			fmt.Sprintf("%.2f s", r.cpu.Self.Seconds()), fmt.Sprintf("%.2f s", r.cpu.Children.Seconds()), fmtLoad(r.other, r.steal),
		})
	}
	var notes []string
	target := map[string]float64{"steady": 25, "flood": 100}[mode]
	for _, r := range runs {
		if r.kind == kindLogjail && r.bans == b.o.bans {
			verdict := "MISSED"
			if r.stats.P99 >= 0 && r.stats.P99 < target {
				verdict = "met"
			}
			notes = append(notes, fmt.Sprintf("target: logjail p99 < %.0f ms over %d bans: %s (p99 %s)", target, r.bans, verdict, fmtMS(r.stats.P99, r.stats.CapSec)))
		}
		if len(r.first) > 0 && len(r.last) > 0 {
			notes = append(notes, fmt.Sprintf("%s, %d bans: p50 of the first %d bans %s, of the last %d %s (the chain holds one rule per ban)",
				r.kind, r.bans, len(r.first), fmtMS(median(r.first), 0), len(r.last), fmtMS(median(r.last), 0)))
		}
		for _, e := range r.errors {
			notes = append(notes, fmt.Sprintf("%s: %s", r.kind, e))
		}
	}
	// Ratios: fail2ban over logjail on the same workload.
	var lj, f2 *latRun
	for _, r := range runs {
		if r.kind == kindFail2ban {
			f2 = r
		}
	}
	if f2 != nil {
		for _, r := range runs {
			if r.kind == kindLogjail && r.bans == f2.bans {
				lj = r
			}
		}
	}
	if lj != nil && f2 != nil {
		rp50, rp99 := ratio(f2.stats.P50, lj.stats.P50), ratio(f2.stats.P99, lj.stats.P99)
		na := ""
		if math.IsNaN(rp50) || math.IsNaN(rp99) {
			na = " (n/a: a percentile fell on a ban not seen within the cap)"
		}
		notes = append(notes, fmt.Sprintf("fail2ban / logjail on the same %d bans: p50 %s, p99 %s%s", f2.bans, fmtRatio(rp50), fmtRatio(rp99), na))
		b.emit(result{"bench": "ban-latency", "mode": mode, "ratio": "fail2ban/logjail", "bans": f2.bans, "p50": rp50, "p99": rp99})
	}
	table(b.out, title, header, rows, notes...)
	var split [][]string
	for _, r := range runs {
		split = append(split, []string{string(r.kind), fmt.Sprint(r.bans), fmt.Sprint(r.detect.Seen),
			fmtMS(r.detect.P50, r.detect.CapSec), fmtMS(r.detect.P99, r.detect.CapSec), fmtMS(r.detect.Max, r.detect.CapSec),
			fmtMS(r.apply.P50, r.apply.CapSec), fmtMS(r.apply.P99, r.apply.CapSec), fmtMS(r.apply.Max, r.apply.CapSec),
			fmt.Sprintf("%.0f", float64(r.bans)/r.writeDur.Seconds()), fmt.Sprintf("%.0f", r.rulesPerS)})
	}
	table(b.out, "where the time goes (from the daemon's own log, millisecond timestamps)",
		[]string{"daemon", "bans", "in log", "line->decided p50", "p99", "max", "decided->rule p50", "p99", "max", "bans/s asked", "bans/s done"}, split,
		`decided: logjail's "ban" (the ban manager took the jail's order), fail2ban's "Found" (the failure, which crosses maxretry 1)`,
		"bans/s asked: failing addresses per second of writing; done: bans seen / time from the first failing line to the last rule")
	for _, r := range runs {
		b.emit(result{
			"bench": "ban-latency", "mode": mode, "daemon": string(r.kind), "latency": r.stats,
			"lines": r.lines, "every": every, "maxretry": b.o.maxretry, "write_s": r.writeDur.Seconds(),
			"lines_per_s_written": float64(r.lines) / r.writeDur.Seconds(),
			"cpu_self_s":          r.cpu.Self.Seconds(), "cpu_children_s": r.cpu.Children.Seconds(),
			"total_banned": r.banned, "errors": r.errors, "line_to_decided": r.detect, "decided_to_rule": r.apply,
			"other_load_cpus": r.other, "steal_cpus": r.steal, "bans_per_s_asked": float64(r.bans) / r.writeDur.Seconds(), "bans_per_s_done": r.rulesPerS,
		})
	}
	return nil
}

// latencyRun: a fresh namespace and daemon with the sshd jail (maxretry b.o.maxretry) on an
// empty log; one warm-up ban; then bans*every lines, where address k fails maxretry times in
// a row at the end of its block of every lines. The time of address k's crossing line is taken
// right after its write returns, and its ban time is when nft monitor printed its rule.
func (b *bench) latencyRun(kind daemonKind, mode string, bans, every int) (*latRun, error) {
	if every < b.o.maxretry {
		return nil, fmt.Errorf("every (%d) must be at least maxretry (%d)", every, b.o.maxretry)
	}
	tag := fmt.Sprintf("lat-%s-%s-%d", kind, mode, bans)
	logPath := filepath.Join(b.work, tag+".log")
	f, err := appendFile(logPath)
	if err != nil {
		return nil, err
	}
	defer os.Remove(logPath)
	defer f.Close()
	b.progress("%s: %s ban latency, %d bans ...", kind, mode, bans)
	d, err := b.startDaemon(kind, "lat", jailSetup{name: "sshd", logpath: logPath, maxretry: b.o.maxretry, findtime: "1h", bantime: "1h"}, nil)
	if err != nil {
		return nil, err
	}
	defer d.close()

	// Warm-up: the first ban creates fail2ban's chain (on demand) and pays every first-time
	// cost; it is not measured.
	var warm []byte
	for i := range b.o.maxretry {
		warm = sshdFailure(warm, time.Now(), warmAddr, i)
	}
	if _, err := f.Write(warm); err != nil {
		return nil, err
	}
	if _, ok := d.mon.waitBan(warmAddr, 60*time.Second); !ok {
		if err := b.ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: the warm-up ban of %s was not seen within 60 s\n%s", kind, warmAddr, d.logTail(15))
	}
	time.Sleep(500 * time.Millisecond)

	r := &latRun{kind: kind, mode: mode, bans: bans, lines: bans * every}
	written := make([]time.Time, bans)
	// line j of the run: background, or failure number (j%every)-(every-maxretry) of address
	// j/every; the last of the block is the crossing line.
	first := every - b.o.maxretry
	render := func(buf []byte, j int, now time.Time) ([]byte, bool) {
		if j%every < first {
			return sshdNoise(buf, now, j), false
		}
		return sshdFailure(buf, now, benchAddr(j/every), j), j%every == every-1
	}

	cpu0, sys0 := d.cpu(), snapSys()
	var t0 time.Time
	switch mode {
	case "steady":
		period := time.Second / time.Duration(b.o.steadyRate)
		var buf []byte
		t0 = time.Now()
		for j := 0; j < r.lines; j++ {
			if j%1000 == 0 {
				if err := b.ctx.Err(); err != nil {
					return nil, err
				}
			}
			due := t0.Add(time.Duration(j) * period)
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait)
			}
			var crossing bool
			buf, crossing = render(buf[:0], j, time.Now())
			if _, err := f.Write(buf); err != nil {
				return nil, err
			}
			if crossing {
				written[j/every] = time.Now()
			}
		}
	case "flood":
		// Rendered beforehand, so that the writer does nothing but write. The time in the
		// lines is the rendering's: the flood lasts seconds, findtime is an hour.
		now := time.Now()
		data := make([]byte, 0, r.lines*100)
		ends := make([]int, r.lines) // end offset of line j
		for j := 0; j < r.lines; j++ {
			data, _ = render(data, j, now)
			ends[j] = len(data)
		}
		batch := max(b.o.floodBatch, 1)
		t0 = time.Now()
		start := 0
		for j := 0; j < r.lines; {
			if j%4096 == 0 {
				if err := b.ctx.Err(); err != nil {
					return nil, err
				}
			}
			// Background lines in writes of batch lines; every failure line alone.
			k := j
			if j%every < first {
				for k+1 < r.lines && k+1-j < batch && (k+1)%every < first {
					k++
				}
			}
			if _, err := f.Write(data[start:ends[k]]); err != nil {
				return nil, err
			}
			if k%every == every-1 {
				written[k/every] = time.Now()
			}
			start = ends[k]
			j = k + 1
		}
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	tEnd := time.Now()
	r.writeDur = tEnd.Sub(t0)

	capWait := b.o.capSteady
	if mode == "flood" {
		capWait = b.o.capFlood
	}
	if kind == kindFail2ban {
		capWait = b.o.f2bCap
	}
	want := bans + 1 // the warm-up too
	d.mon.wait(capWait, func() bool { return len(d.mon.bans) >= want || b.ctx.Err() != nil })
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	r.cpu = d.cpu().sub(cpu0)
	r.other, r.steal = otherLoad(sys0, snapSys(), r.cpu)
	seen := d.mon.snapshot()
	lat := make([]time.Duration, 0, bans)
	for k := range bans {
		t, ok := seen[benchAddr(k)]
		if !ok {
			continue
		}
		l := t.Sub(written[k])
		if l < 0 {
			// ljbench was descheduled between write() returning and reading the clock.
			r.negatives++
			l = 0
		}
		lat = append(lat, l)
	}
	r.stats = latencyStats(lat, bans, capWait)
	var lastRule time.Time
	for k := range bans {
		if t, ok := seen[benchAddr(k)]; ok && t.After(lastRule) {
			lastRule = t
		}
	}
	if span := lastRule.Sub(written[0]).Seconds(); span > 0 {
		r.rulesPerS = float64(len(lat)) / span
	}
	if tenth := bans / 10; tenth >= 5 {
		for k := range bans {
			t, ok := seen[benchAddr(k)]
			switch {
			case !ok:
			case k < tenth:
				r.first = append(r.first, t.Sub(written[k]))
			case k >= bans-tenth:
				r.last = append(r.last, t.Sub(written[k]))
			}
		}
	}
	// The split, from the daemon's own log (millisecond timestamps).
	det := detectTimes(kind, d.log)
	var dl, al []time.Duration
	for k := range bans {
		td, ok := det[benchAddr(k)]
		if !ok {
			continue
		}
		dl = append(dl, max(td.Sub(written[k]), 0))
		if ts, ok := seen[benchAddr(k)]; ok {
			al = append(al, max(ts.Sub(td), 0))
		}
	}
	r.detect, r.apply = latencyStats(dl, bans, capWait), latencyStats(al, bans, capWait)
	if b.o.csvDir != "" {
		if err := writeLatencyCSV(filepath.Join(b.o.csvDir, fmt.Sprintf("latency-%s-%s-%d.csv", kind, mode, bans)), bans, written, det, seen); err != nil {
			r.errors = append(r.errors, err.Error())
		}
	}
	if r.negatives > 0 {
		r.errors = append(r.errors, fmt.Sprintf("%d bans seen before ljbench read the clock after their write returned (ljbench descheduled by the machine's load; counted as 0)", r.negatives))
	}
	if extra := len(seen) - 1 - len(lat); extra > 0 {
		r.errors = append(r.errors, fmt.Sprintf("%d unexpected addresses banned", extra))
	}
	if err := d.alive(); err != nil {
		return nil, err
	}
	if kind == kindLogjail {
		if st, err := d.status(); err == nil {
			r.banned = st.TotalBanned
			if st.LinesRead != int64(r.lines+b.o.maxretry) {
				r.errors = append(r.errors, fmt.Sprintf("status says %d lines read, %d were written", st.LinesRead, r.lines+b.o.maxretry))
			}
			r.errors = append(r.errors, st.Errors...)
		} else {
			r.errors = append(r.errors, "status: "+err.Error())
		}
	}
	if r.stats.Missed > 0 {
		r.errors = append(r.errors, fmt.Sprintf("%d of %d bans not seen within %s of the last write", r.stats.Missed, bans, capWait))
	}
	b.progress("%s: %s: %d/%d bans seen, p50 %s p99 %s", kind, mode, r.stats.Seen, bans,
		fmtMS(r.stats.P50, r.stats.CapSec), fmtMS(r.stats.P99, r.stats.CapSec))
	return r, nil
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ljbench: "+format+"\n", args...)
}

// detectTimes reads from a daemon's log when it decided that each address crossed maxretry:
// logjail's `msg=ban ... target=A` (the ban manager took the jail's order), fail2ban's
// `[jail] Found A` (with maxretry 1, the failure that crosses it). Both log with millisecond
// timestamps, logjail in UTC and fail2ban in local time. The first line of an address counts.
func detectTimes(kind daemonKind, path string) map[netip.Addr]time.Time {
	out := make(map[netip.Addr]time.Time)
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		a, t, ok := parseDetectLine(kind, sc.Text())
		if !ok {
			continue
		}
		if _, seen := out[a]; !seen {
			out[a] = t
		}
	}
	return out
}

func parseDetectLine(kind daemonKind, line string) (netip.Addr, time.Time, bool) {
	switch kind {
	case kindLogjail:
		if !strings.Contains(line, ` msg=ban `) || !strings.HasPrefix(line, "time=") {
			return netip.Addr{}, time.Time{}, false
		}
		ts, _, _ := strings.Cut(line[len("time="):], " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return netip.Addr{}, time.Time{}, false
		}
		i := strings.Index(line, " target=")
		if i < 0 {
			return netip.Addr{}, time.Time{}, false
		}
		as, _, _ := strings.Cut(line[i+len(" target="):], " ")
		p, err := netip.ParsePrefix(as)
		if err != nil {
			a, err := netip.ParseAddr(as)
			return a, t, err == nil
		}
		return p.Addr(), t, p.IsSingleIP()
	case kindFail2ban:
		const layout = "2006-01-02 15:04:05,000"
		i := strings.Index(line, "] Found ")
		if len(line) < len(layout) || i < 0 {
			return netip.Addr{}, time.Time{}, false
		}
		t, err := time.ParseInLocation(layout, line[:len(layout)], time.Local)
		if err != nil {
			return netip.Addr{}, time.Time{}, false
		}
		as, _, _ := strings.Cut(line[i+len("] Found "):], " ")
		a, err := netip.ParseAddr(as)
		return a, t, err == nil
	}
	return netip.Addr{}, time.Time{}, false
}

// writeLatencyCSV keeps every ban's times: k, address, and the write, decision (daemon log,
// ms) and rule (nft monitor) times in Unix nanoseconds (0: not seen), and the latency.
func writeLatencyCSV(path string, bans int, written []time.Time, det, seen map[netip.Addr]time.Time) error {
	var sb strings.Builder
	sb.WriteString("k,addr,written_ns,decided_ns,rule_ns,latency_ms\n")
	ns := func(t time.Time, ok bool) int64 {
		if !ok {
			return 0
		}
		return t.UnixNano()
	}
	for k := range bans {
		a := benchAddr(k)
		td, okd := det[a]
		ts, oks := seen[a]
		lat := ""
		if oks {
			lat = fmt.Sprintf("%.3f", float64(ts.Sub(written[k]))/float64(time.Millisecond))
		}
		fmt.Fprintf(&sb, "%d,%s,%d,%d,%d,%s\n", k, a, written[k].UnixNano(), ns(td, okd), ns(ts, oks), lat)
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}
