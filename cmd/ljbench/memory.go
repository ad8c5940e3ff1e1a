package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// idleBench: each daemon with the sshd jail as shipped on an empty auth.log; its memory once
// start has settled.
func (b *bench) idleBench() error {
	type idleRun struct {
		kind     daemonKind
		mem      memStatus
		min, max int64
		cpu      cpuTimes
	}
	kinds := []daemonKind{kindLogjail}
	if b.o.f2b {
		kinds = append(kinds, kindFail2ban)
	}
	var runs []idleRun
	for _, kind := range kinds {
		authLog := filepath.Join(b.work, fmt.Sprintf("idle-%s-auth.log", kind))
		if err := os.WriteFile(authLog, nil, 0o644); err != nil {
			return err
		}
		b.progress("%s: idle memory, sshd jail on an empty auth.log, %s to settle ...", kind, b.o.idleSettle)
		d, err := b.startDaemon(kind, "idle", jailSetup{name: "sshd", logpath: authLog, shipped: true}, nil)
		if err != nil {
			return err
		}
		r := idleRun{kind: kind, min: 1 << 62}
		cpu0 := d.cpu()
		end := time.Now().Add(b.o.idleSettle)
		for time.Now().Before(end) && b.ctx.Err() == nil {
			time.Sleep(500 * time.Millisecond)
			m := d.mem()
			r.min, r.max = min(r.min, m.RSS), max(r.max, m.RSS)
		}
		r.mem, r.cpu = d.mem(), d.cpu().sub(cpu0)
		err = d.alive()
		d.close()
		if err != nil {
			return err
		}
		if err := b.ctx.Err(); err != nil {
			return err
		}
		runs = append(runs, r)
	}
	header := []string{"daemon", "VmRSS", "RssAnon", "VmHWM (peak)", "RSS range while settling", "threads", fmt.Sprintf("cpu over %s", b.o.idleSettle)}
	var rows [][]string
	for _, r := range runs {
		rows = append(rows, []string{string(r.kind), mib(r.mem.RSS), mib(r.mem.Anon), mib(r.mem.HWM),
			mib(r.min) + " - " + mib(r.max), fmt.Sprint(r.mem.Threads), fmt.Sprintf("%.0f ms", float64(r.cpu.Self)/float64(time.Millisecond))})
		b.emit(result{"bench": "idle", "daemon": string(r.kind), "rss_bytes": r.mem.RSS, "rss_anon_bytes": r.mem.Anon,
			"hwm_bytes": r.mem.HWM, "threads": r.mem.Threads, "settle_s": b.o.idleSettle.Seconds(), "cpu_settle_ms": float64(r.cpu.Self) / float64(time.Millisecond)})
	}
	notes := []string{"VmRSS from /proc/PID/status after the daemon answered and settled; shipped configuration, sshd jail on an empty log"}
	if len(runs) > 0 && runs[0].kind == kindLogjail {
		verdict := "MISSED"
		if runs[0].mem.RSS < 15<<20 {
			verdict = "met"
		}
		notes = append(notes, fmt.Sprintf("target: logjail idle RSS < 15 MiB: %s (%s)", verdict, mib(runs[0].mem.RSS)))
	}
	if len(runs) == 2 {
		r := ratio(float64(runs[1].mem.RSS), float64(runs[0].mem.RSS))
		notes = append(notes, fmt.Sprintf("fail2ban / logjail idle RSS: %s", fmtRatio(r)))
		b.emit(result{"bench": "idle", "ratio": "fail2ban/logjail", "rss": r})
	}
	table(b.out, "idle memory", header, rows, notes...)
	return nil
}

// memRun is the memory of n tracked addresses in one daemon.
type memRun struct {
	kind                  daemonKind
	maxretry              int
	n                     int
	rssBefore, rssAfter   int64
	rssAfterGC            int64
	liveBefore, liveAfter int64 // logjail: live heap after the GCs (gctrace), bytes
	gcBefore, gcAfter     int   // numbers of those GCs
	tracked               int
	evicted               uint64
	feedDur               time.Duration
	errors                []string
}

// memoryBench feeds n distinct addresses, one failure each (below maxretry: nothing is
// banned), and compares the daemon's memory before and after.
func (b *bench) memoryBench() error {
	var runs []*memRun
	add := func(r *memRun, err error) error {
		if err != nil {
			return b.failedRun("memory", err)
		}
		runs = append(runs, r)
		return nil
	}
	for _, mr := range b.o.memMaxRetry {
		if err := add(b.memoryRun(kindLogjail, b.o.memAddrs, mr)); err != nil {
			return err
		}
	}
	if b.o.f2b && b.o.f2bMemAddrs > 0 {
		if err := add(b.memoryRun(kindFail2ban, b.o.f2bMemAddrs, 5)); err != nil {
			return err
		}
	}
	if len(runs) == 0 {
		return nil
	}
	header := []string{"daemon", "maxretry", "addresses", "tracked", "fed in", "RSS before", "RSS after", "RSS bytes/address", "live heap before", "live heap after", "heap bytes/address"}
	var rows [][]string
	var notes []string
	for _, r := range runs {
		rssPer := float64(r.rssAfter-r.rssBefore) / float64(r.n)
		heapPer, hb, ha, tracked := "-", "-", "-", "-"
		var heapPerF float64
		if r.kind == kindLogjail {
			tracked = fmt.Sprint(r.tracked)
			if r.gcAfter > 0 {
				heapPerF = float64(r.liveAfter-r.liveBefore) / float64(r.n)
				heapPer = fmt.Sprintf("%.0f", heapPerF)
				hb = fmt.Sprintf("%s (gc %d)", mib(r.liveBefore), r.gcBefore)
				ha = fmt.Sprintf("%s (gc %d)", mib(r.liveAfter), r.gcAfter)
			}
		}
		rows = append(rows, []string{string(r.kind), fmt.Sprint(r.maxretry), fmt.Sprint(r.n), tracked, fmt.Sprintf("%.2f s", r.feedDur.Seconds()),
			mib(r.rssBefore), mib(r.rssAfter), fmt.Sprintf("%.0f", rssPer), hb, ha, heapPer})
		for _, e := range r.errors {
			notes = append(notes, fmt.Sprintf("%s: %s", r.kind, e))
		}
		res := result{"bench": "memory", "daemon": string(r.kind), "maxretry": r.maxretry, "addresses": r.n, "rss_before_bytes": r.rssBefore,
			"rss_after_bytes": r.rssAfter, "rss_bytes_per_address": rssPer, "feed_s": r.feedDur.Seconds(), "errors": r.errors}
		if r.kind == kindLogjail {
			res["tracked"], res["evicted"] = r.tracked, r.evicted
			res["rss_after_gc_bytes"] = r.rssAfterGC
			if r.gcAfter > 0 {
				res["live_heap_before_bytes"], res["live_heap_after_bytes"], res["heap_bytes_per_address"] = r.liveBefore, r.liveAfter, heapPerF
			}
			verdict := "MISSED"
			if r.gcAfter > 0 && heapPerF < 200 {
				verdict = "met"
			}
			notes = append(notes, fmt.Sprintf("target: < 200 bytes/address (live heap), maxretry %d: %s; RSS grows by %.0f bytes/address, GC slack included", r.maxretry, verdict, rssPer))
		}
		b.emit(res)
	}
	if f2 := runs[len(runs)-1]; f2.kind == kindFail2ban && runs[0].kind == kindLogjail && runs[0].maxretry == f2.maxretry {
		rr := ratio(float64(f2.rssAfter-f2.rssBefore)/float64(f2.n), float64(runs[0].rssAfter-runs[0].rssBefore)/float64(runs[0].n))
		notes = append(notes, fmt.Sprintf("fail2ban / logjail RSS bytes per address, maxretry %d: %s (fail2ban on %d addresses)", f2.maxretry, fmtRatio(rr), f2.n))
		b.emit(result{"bench": "memory", "ratio": "fail2ban/logjail", "rss_per_address": rr})
	}
	notes = append(notes,
		"live heap: the marked heap (third figure of GODEBUG=gctrace=1) of the last GC before the feed and of a GC that started after every address was read, in whole MiB",
		"RSS: VmRSS right after the last line was read; it includes the Go heap's slack (GOGC=100 lets it grow to twice the live heap)")
	table(b.out, "memory for tracked addresses (one failure each, below maxretry: no bans)", header, rows, notes...)
	return nil
}

func (b *bench) memoryRun(kind daemonKind, n, maxretry int) (*memRun, error) {
	tag := fmt.Sprintf("mem-%s-%d-%d", kind, n, maxretry)
	logPath := filepath.Join(b.work, tag+".log")
	f, err := appendFile(logPath)
	if err != nil {
		return nil, err
	}
	defer os.Remove(logPath)
	defer f.Close()
	js := jailSetup{name: "sshd", logpath: logPath, maxretry: maxretry, findtime: "1h", bantime: "1h",
		extra: []string{fmt.Sprintf("maxtracked = %d", n+16)}}
	var env []string
	if kind == kindLogjail {
		env = []string{"GODEBUG=gctrace=1"}
	}
	b.progress("%s: memory for %d tracked addresses, maxretry %d ...", kind, n, maxretry)
	d, err := b.startDaemon(kind, "mem", js, env)
	if err != nil {
		return nil, err
	}
	defer d.close()
	r := &memRun{kind: kind, n: n, maxretry: maxretry}

	// Warm-up: lines that are no failure, so that buffers reach their working size and the
	// GC runs a few times.
	noise := func(lines int) []byte {
		now := time.Now()
		buf := make([]byte, 0, lines*100)
		for i := range lines {
			buf = sshdNoise(buf, now, i)
		}
		return buf
	}
	written := int64(0)
	feed := func(data []byte, lines int) error {
		if err := writeChunks(f, data, 64<<10); err != nil {
			return err
		}
		written += int64(lines)
		return nil
	}
	// waitRead waits until logjail read everything written; fail2ban has no count, so it gets
	// the sentinel.
	waitRead := func(limit time.Duration) error {
		rt := &readTracker{d: d, want: written}
		if kind == kindFail2ban {
			if err := feed(sentinel("sshd", js.maxretry, time.Now()), js.maxretry); err != nil {
				return err
			}
		}
		_, ok, err := rt.wait(b, func() time.Time { return time.Now().Add(limit) })
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s did not read %d lines within %s", kind, written, limit)
		}
		return nil
	}
	if kind == kindLogjail {
		if err := feed(noise(200_000), 200_000); err != nil {
			return nil, err
		}
		if err := waitRead(60 * time.Second); err != nil {
			return nil, err
		}
	}
	time.Sleep(time.Second)
	r.rssBefore = d.mem().RSS
	if kind == kindLogjail {
		gcs := gcTrace(d.log)
		if len(gcs) > 0 {
			r.gcBefore, r.liveBefore = gcs[len(gcs)-1].num, gcs[len(gcs)-1].live
		} else {
			r.errors = append(r.errors, "no GC before the feed: live heap before taken as 0")
		}
	}

	// The addresses: one failure each, rendered beforehand.
	now := time.Now()
	data := make([]byte, 0, n*95)
	for i := range n {
		data = sshdFailure(data, now, benchAddr(i), i)
	}
	t0 := time.Now()
	if err := feed(data, n); err != nil {
		return nil, err
	}
	data = nil
	capWait := b.o.capIngest
	if kind == kindFail2ban {
		capWait = b.o.f2bCap
	}
	if err := waitRead(capWait); err != nil {
		return nil, err
	}
	r.feedDur = time.Since(t0)
	r.rssAfter = d.mem().RSS
	if kind == kindFail2ban {
		return r, d.alive()
	}
	st, err := d.status()
	if err != nil {
		return nil, err
	}
	r.tracked, r.evicted = st.Tracked, st.Evicted
	if st.Tracked < n {
		r.errors = append(r.errors, fmt.Sprintf("tracked %d of %d addresses (evicted %d)", st.Tracked, n, st.Evicted))
	}
	if st.TotalBanned > 0 {
		r.errors = append(r.errors, fmt.Sprintf("%d bans: some address failed more than once", st.TotalBanned))
	}

	// A GC that started after the last address was read: the first one whose line was
	// printed after the next one in progress (if any) finished. Lines that are no failure
	// make garbage until two more GCs have run.
	after := len(gcTrace(d.log))
	deadline := time.Now().Add(120 * time.Second)
	for {
		gcs := gcTrace(d.log)
		if len(gcs) >= after+2 {
			g := gcs[after+1]
			r.gcAfter, r.liveAfter = g.num, g.live
			break
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			r.errors = append(r.errors, "no GC after the feed within 120 s: no live heap figure")
			break
		}
		if err := feed(noise(500_000), 500_000); err != nil {
			return nil, err
		}
		if err := waitRead(60 * time.Second); err != nil {
			return nil, err
		}
	}
	r.rssAfterGC = d.mem().RSS
	if st, err := d.status(); err == nil && st.Tracked < n {
		r.errors = append(r.errors, fmt.Sprintf("after the GCs: tracked %d of %d addresses", st.Tracked, n))
	}
	b.progress("%s: %d addresses: RSS %s -> %s, live heap %s -> %s", kind, n, mib(r.rssBefore), mib(r.rssAfter), mib(r.liveBefore), mib(r.liveAfter))
	return r, d.alive()
}

// gcLine is one line of GODEBUG=gctrace=1: "gc 12 @3.456s 1%: ..., 4->5->2 MB, 5 MB goal, ...".
type gcLine struct {
	num  int
	live int64 // the heap marked live, bytes (printed in whole MiB)
}

var gcRE = regexp.MustCompile(`^gc (\d+) @.* (\d+)->(\d+)->(\d+) MB`)

func gcTrace(path string) []gcLine {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []gcLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		if g, ok := parseGCLine(line); ok {
			out = append(out, g)
		}
	}
	return out
}

func parseGCLine(line string) (gcLine, bool) {
	m := gcRE.FindStringSubmatch(line)
	if m == nil {
		return gcLine{}, false
	}
	num, _ := strconv.Atoi(m[1])
	live, _ := strconv.ParseInt(m[4], 10, 64)
	return gcLine{num: num, live: live << 20}, true
}
