package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"
)

// The ingest workloads: a generated log (internal/loggen, timestamps rewritten to the present)
// appended to the file a daemon follows, at full speed and at a steady rate.

// ingestJail is the jail of a log kind, the same for both daemons. findtime is 10m for both
// (the shipped wordpress jail has 1m), so that a slow reader does not see lines age out of
// the window while it catches up: both count every failure.
func ingestJail(logKind, path string) jailSetup {
	if logKind == "sshd" {
		return jailSetup{name: "sshd", logpath: path, maxretry: 5, findtime: "10m", bantime: "10m"}
	}
	return jailSetup{name: "wordpress", logpath: path, maxretry: 10, findtime: "10m", bantime: "1h"}
}

// ingestRun is one ingest run of one daemon.
type ingestRun struct {
	kind      daemonKind
	logKind   string
	mode      string // full or steady
	lines     int
	writeDur  time.Duration // writing the lines
	doneDur   time.Duration // from the first write until every line was read
	rate      float64       // lines / doneDur
	rate1090  float64       // logjail: lines/s between 10 % and 90 % read
	cpu       cpuTimes      // over doneDur
	other     float64       // CPUs used by other processes meanwhile
	steal     float64       // CPUs stolen by the hypervisor meanwhile
	maxLag    int64         // steady, logjail: most lines written but not yet read at a sample
	catchUp   time.Duration // after the last write, until every line was read
	banned    int64         // logjail: total_banned
	failures  int64         // logjail: failures counted
	errors    []string
	wantRate  int     // steady: lines/s asked
	gotRate   float64 // steady: lines/s written
	completed bool
}

// gen returns the generated log of a kind, made once per run of ljbench.
func (b *bench) gen(logKind string) (*genLog, error) {
	if g := b.logs[logKind]; g != nil {
		return g, nil
	}
	n := max(b.o.ingestLines, b.o.f2bIngestLines, b.o.ingestRate*int(b.o.ingestSecs.Seconds()+1))
	b.progress("generating %d %s lines (internal/loggen) ...", n, logKind)
	g, err := generate(logKind, n, 1)
	if err != nil {
		return nil, err
	}
	b.logs[logKind] = g
	return g, nil
}

func (b *bench) ingestBench(logKind string) error {
	g, err := b.gen(logKind)
	if err != nil {
		return err
	}
	var runs []*ingestRun
	add := func(r *ingestRun, err error) error {
		if err != nil {
			return b.failedRun("ingest "+logKind, err)
		}
		runs = append(runs, r)
		return nil
	}
	if err := add(b.ingestFull(kindLogjail, g, b.o.ingestLines)); err != nil {
		return err
	}
	if b.o.f2b && b.o.f2bIngestLines > 0 {
		// logjail on fail2ban's smaller volume too, for the ratio on the same work.
		if b.o.f2bIngestLines < b.o.ingestLines {
			if err := add(b.ingestFull(kindLogjail, g, b.o.f2bIngestLines)); err != nil {
				return err
			}
		}
		if err := add(b.ingestFull(kindFail2ban, g, b.o.f2bIngestLines)); err != nil {
			return err
		}
	}
	if err := add(b.ingestSteady(kindLogjail, g, b.o.ingestRate, b.o.ingestSecs)); err != nil {
		return err
	}
	if b.o.f2b && b.o.f2bIngestSecs > 0 {
		if err := add(b.ingestSteady(kindFail2ban, g, b.o.ingestRate, b.o.f2bIngestSecs)); err != nil {
			return err
		}
	}

	jailName := ingestJail(logKind, "").name
	header := []string{"daemon", "mode", "lines", "written in", "all read after", "lines/s", "lines/s 10-90%", "cpu ms/1000 lines", "children cpu ms", "max lag (lines)", "bans", "other load"}
	var rows [][]string
	for _, r := range runs {
		mode := "full speed"
		if r.mode == "steady" {
			mode = fmt.Sprintf("steady %d/s", r.wantRate)
		}
		r1090, lag, bans := "-", "-", "-"
		if r.rate1090 > 0 {
			r1090 = fmt.Sprintf("%.0f", r.rate1090)
		}
		if r.mode == "steady" && r.kind == kindLogjail {
			lag = fmt.Sprint(r.maxLag)
		}
		if r.kind == kindLogjail {
			bans = fmt.Sprint(r.banned)
		}
		done := fmt.Sprintf("%.2f s", r.doneDur.Seconds())
		if !r.completed {
			done = "> " + done + " (cap)"
		}
		rows = append(rows, []string{
			string(r.kind), mode, fmt.Sprint(r.lines), fmt.Sprintf("%.2f s", r.writeDur.Seconds()), done,
			fmt.Sprintf("%.0f", r.rate), r1090, fmt.Sprintf("%.1f", perK(r.cpu.Self, r.lines)),
			fmt.Sprintf("%.0f", float64(r.cpu.Children)/float64(time.Millisecond)), lag, bans, fmtLoad(r.other, r.steal),
		})
	}
	notes := []string{"lines/s: lines / time from the first write until the daemon had read all (logjail: status lines_read, polled every 20 ms; fail2ban: its log line finding the sentinel address written last)"}
	for _, r := range runs {
		if r.kind == kindLogjail && r.mode == "full" && r.lines == b.o.ingestLines {
			verdict := "MISSED"
			if r.rate >= 1e6 {
				verdict = "met"
			}
			notes = append(notes, fmt.Sprintf("target: >= 1,000,000 lines/s: %s (%.0f lines/s over %d lines)", verdict, r.rate, r.lines))
		}
		for _, e := range r.errors {
			notes = append(notes, fmt.Sprintf("%s %s: %s", r.kind, r.mode, e))
		}
	}
	// Ratios on the same volume.
	find := func(k daemonKind, mode string, lines int) *ingestRun {
		for _, r := range runs {
			if r.kind == k && r.mode == mode && (lines == 0 || r.lines == lines) {
				return r
			}
		}
		return nil
	}
	if lj, f2 := find(kindLogjail, "full", b.o.f2bIngestLines), find(kindFail2ban, "full", 0); lj != nil && f2 != nil {
		rr, rc := ratio(lj.rate, f2.rate), ratio(perK(f2.cpu.Self, f2.lines), perK(lj.cpu.Self, lj.lines))
		notes = append(notes, fmt.Sprintf("full speed, same %d lines: logjail/fail2ban lines/s %s; fail2ban/logjail cpu per line %s", lj.lines, fmtRatio(rr), fmtRatio(rc)))
		b.emit(result{"bench": "ingest", "log": logKind, "mode": "full", "ratio": "logjail/fail2ban", "lines": lj.lines, "lines_per_s": rr, "cpu_per_line_f2b_over_lj": rc})
	}
	if lj, f2 := find(kindLogjail, "steady", 0), find(kindFail2ban, "steady", 0); lj != nil && f2 != nil {
		rc := ratio(perK(f2.cpu.Self, f2.lines), perK(lj.cpu.Self, lj.lines))
		notes = append(notes, fmt.Sprintf("steady %d lines/s: fail2ban/logjail cpu per line %s", b.o.ingestRate, fmtRatio(rc)))
		b.emit(result{"bench": "ingest", "log": logKind, "mode": "steady", "ratio": "fail2ban/logjail", "cpu_per_line": rc})
	}
	table(b.out, fmt.Sprintf("whole-daemon ingest, %s log (internal/loggen), jail %s", logKind, jailName), header, rows, notes...)
	for _, r := range runs {
		b.emit(result{
			"bench": "ingest", "log": logKind, "jail": jailName, "mode": r.mode, "daemon": string(r.kind),
			"lines": r.lines, "write_s": r.writeDur.Seconds(), "done_s": r.doneDur.Seconds(), "completed": r.completed,
			"lines_per_s": r.rate, "lines_per_s_10_90": r.rate1090, "rate_asked": r.wantRate, "rate_written": r.gotRate,
			"cpu_ms_per_1000_lines": perK(r.cpu.Self, r.lines), "cpu_self_s": r.cpu.Self.Seconds(), "cpu_children_s": r.cpu.Children.Seconds(),
			"max_lag_lines": r.maxLag, "catch_up_s": r.catchUp.Seconds(), "total_banned": r.banned, "failures": r.failures, "errors": r.errors,
			"other_load_cpus": r.other, "steal_cpus": r.steal,
		})
	}
	return nil
}

// perK is CPU milliseconds per 1,000 lines.
func perK(d time.Duration, lines int) float64 {
	if lines == 0 {
		return 0
	}
	return float64(d) / float64(time.Millisecond) / float64(lines) * 1000
}

// readTracker tells when a daemon has read everything: logjail by its status (sampled every
// 20 ms, which also gives the curve of lines read), fail2ban by the ban of the sentinel.
type readTracker struct {
	d       *daemon
	want    int64
	samples []sample
}

type sample struct {
	t    time.Time
	read int64
}

// wait returns when everything was read (true) or at the deadline (false); deadline is asked
// again at each sample (it may move when the writes end).
func (rt *readTracker) wait(b *bench, deadline func() time.Time) (time.Time, bool, error) {
	if rt.d.kind == kindFail2ban {
		// The ban says that everything was read; when, is the time fail2ban logged the last
		// sentinel line as found: its ban may wait behind the bans of the log's attackers.
		t, ok := rt.d.mon.waitBan(sentinelAddr, time.Until(deadline()))
		if !ok {
			return time.Now(), false, rt.d.alive()
		}
		if found, ok := lastFound(rt.d.log, sentinelAddr); ok && found.Before(t) {
			t = found
		}
		return t, true, nil
	}
	for {
		st, err := rt.d.status()
		now := time.Now()
		if err != nil {
			if aerr := rt.d.alive(); aerr != nil {
				return now, false, aerr
			}
		} else {
			rt.samples = append(rt.samples, sample{now, st.LinesRead})
			if st.LinesRead >= rt.want {
				return now, true, nil
			}
		}
		if now.After(deadline()) || b.ctx.Err() != nil {
			return now, false, b.ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rate1090 is the read rate between the samples where 10 % and 90 % of want were read.
func rate1090(samples []sample, want int64) float64 {
	i := sort.Search(len(samples), func(i int) bool { return samples[i].read >= want/10 })
	j := sort.Search(len(samples), func(i int) bool { return samples[i].read >= want*9/10 })
	if i >= len(samples) || j >= len(samples) || j <= i {
		return 0
	}
	dt := samples[j].t.Sub(samples[i].t).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(samples[j].read-samples[i].read) / dt
}

// ingestFull appends the first n lines of g as fast as possible (writes of 64 KiB) to the log
// of a fresh daemon, then maxretry sentinel lines, and waits until it has read them all.
func (b *bench) ingestFull(kind daemonKind, g *genLog, n int) (*ingestRun, error) {
	tag := fmt.Sprintf("ingest-%s-%s-full-%d", kind, g.kind, n)
	logPath := filepath.Join(b.work, tag+".log")
	f, err := appendFile(logPath)
	if err != nil {
		return nil, err
	}
	defer os.Remove(logPath)
	defer f.Close()
	js := ingestJail(g.kind, logPath)
	b.progress("%s: ingest %s log, %d lines at full speed ...", kind, g.kind, n)
	d, err := b.startDaemon(kind, "ing", js, nil)
	if err != nil {
		return nil, err
	}
	defer d.close()
	g.restamp(time.Now(), 0, n)
	data := g.data[:g.lineOffset(n)]
	r := &ingestRun{kind: kind, logKind: g.kind, mode: "full", lines: n}
	rt := &readTracker{d: d, want: int64(n + js.maxretry)}

	cpu0, sys0 := d.cpu(), snapSys()
	t0 := time.Now()
	wrote := make(chan error, 1)
	go func() {
		err := writeChunks(f, data, 64<<10)
		r.writeDur = time.Since(t0)
		if err == nil {
			_, err = f.Write(sentinel(g.kind, js.maxretry, time.Now()))
		}
		wrote <- err
	}()
	capWait := b.o.capIngest
	if kind == kindFail2ban {
		capWait = b.o.f2bCap
	}
	// Sampled from the first write (logjail); the cap counts from the end of the writes.
	var writeEnd atomic.Int64
	deadline := func() time.Time {
		if e := writeEnd.Load(); e != 0 {
			return time.Unix(0, e).Add(capWait)
		}
		return time.Now().Add(time.Hour)
	}
	var werr error
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		select {
		case werr = <-wrote:
		case <-b.ctx.Done():
		}
		writeEnd.Store(time.Now().UnixNano())
	}()
	if kind == kindFail2ban {
		<-waited
	}
	tDone, ok, err := rt.wait(b, deadline)
	<-waited
	if werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, err
	}
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	r.cpu = d.cpu().sub(cpu0)
	r.other, r.steal = otherLoad(sys0, snapSys(), r.cpu)
	r.doneDur = tDone.Sub(t0)
	r.completed = ok
	r.rate = float64(n) / r.doneDur.Seconds()
	if kind == kindLogjail {
		r.rate1090 = rate1090(rt.samples, rt.want)
		b.finishLogjail(d, r, rt.want)
	}
	if !ok {
		r.errors = append(r.errors, fmt.Sprintf("not everything read within %s of the last write", capWait))
	}
	b.progress("%s: %s full speed: %d lines in %.2f s: %.0f lines/s, %.1f cpu ms/1000 lines", kind, g.kind, n, r.doneDur.Seconds(), r.rate, perK(r.cpu.Self, n))
	return r, nil
}

// finishLogjail reads logjail's final status into r.
func (b *bench) finishLogjail(d *daemon, r *ingestRun, want int64) {
	st, err := d.status()
	if err != nil {
		r.errors = append(r.errors, "status: "+err.Error())
		return
	}
	r.banned, r.failures = st.TotalBanned, st.Failures
	if st.LinesRead != want {
		r.errors = append(r.errors, fmt.Sprintf("status says %d lines read, %d were written", st.LinesRead, want))
	}
	if st.LinesSkipped > 0 || st.LinesNoDate > 0 {
		r.errors = append(r.errors, fmt.Sprintf("%d lines skipped, %d without a date", st.LinesSkipped, st.LinesNoDate))
	}
	r.errors = append(r.errors, st.Errors...)
}

// ingestSteady appends lines of g at rate lines/s for dur (a write every millisecond with the
// lines due), then the sentinel, and measures the CPU the daemon spent until it read them all.
func (b *bench) ingestSteady(kind daemonKind, g *genLog, rate int, dur time.Duration) (*ingestRun, error) {
	n := int(float64(rate) * dur.Seconds())
	if n > g.lines {
		n = g.lines
	}
	tag := fmt.Sprintf("ingest-%s-%s-steady-%d", kind, g.kind, n)
	logPath := filepath.Join(b.work, tag+".log")
	f, err := appendFile(logPath)
	if err != nil {
		return nil, err
	}
	defer os.Remove(logPath)
	defer f.Close()
	js := ingestJail(g.kind, logPath)
	b.progress("%s: ingest %s log at %d lines/s for %s ...", kind, g.kind, rate, dur)
	d, err := b.startDaemon(kind, "ing", js, nil)
	if err != nil {
		return nil, err
	}
	defer d.close()
	r := &ingestRun{kind: kind, logKind: g.kind, mode: "steady", lines: n, wantRate: rate}
	rt := &readTracker{d: d, want: int64(n + js.maxretry)}

	var written atomic.Int64
	var maxLag atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	if kind == kindLogjail {
		go func() {
			defer close(sampled)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-tick.C:
				}
				w := written.Load()
				if st, err := d.status(); err == nil {
					if lag := w - st.LinesRead; lag > maxLag.Load() {
						maxLag.Store(lag)
					}
				}
			}
		}()
	} else {
		close(sampled)
	}

	cpu0, sys0 := d.cpu(), snapSys()
	t0 := time.Now()
	done := 0
	for done < n {
		if err := b.ctx.Err(); err != nil {
			close(stopSampling)
			return nil, err
		}
		time.Sleep(time.Millisecond)
		due := min(int(time.Since(t0).Seconds()*float64(rate)), n)
		if due <= done {
			continue
		}
		g.restamp(time.Now(), done, due)
		if _, err := f.Write(g.data[g.lineOffset(done):g.lineOffset(due)]); err != nil {
			close(stopSampling)
			return nil, err
		}
		written.Add(int64(due - done))
		done = due
	}
	tWrite := time.Now()
	r.writeDur = tWrite.Sub(t0)
	r.gotRate = float64(n) / r.writeDur.Seconds()
	if _, err := f.Write(sentinel(g.kind, js.maxretry, time.Now())); err != nil {
		close(stopSampling)
		return nil, err
	}
	written.Add(int64(js.maxretry))
	capWait := b.o.capIngest
	if kind == kindFail2ban {
		capWait = b.o.f2bCap
	}
	tDone, ok, err := rt.wait(b, func() time.Time { return tWrite.Add(capWait) })
	close(stopSampling)
	<-sampled
	if err != nil {
		return nil, err
	}
	r.cpu = d.cpu().sub(cpu0)
	r.other, r.steal = otherLoad(sys0, snapSys(), r.cpu)
	r.doneDur = tDone.Sub(t0)
	r.catchUp = tDone.Sub(tWrite)
	r.completed = ok
	r.rate = float64(n) / r.doneDur.Seconds()
	r.maxLag = maxLag.Load()
	if kind == kindLogjail {
		b.finishLogjail(d, r, rt.want)
	}
	if !ok {
		r.errors = append(r.errors, fmt.Sprintf("not everything read within %s of the last write", capWait))
	}
	b.progress("%s: %s steady %d/s: %.1f cpu ms/1000 lines, caught up %.0f ms after the last write", kind, g.kind, rate, perK(r.cpu.Self, n), float64(r.catchUp)/float64(time.Millisecond))
	return r, nil
}

// lastFound is the time of fail2ban's last "Found" line for a.
func lastFound(path string, a netip.Addr) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	var last time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if got, t, ok := parseDetectLine(kindFail2ban, sc.Text()); ok && got == a {
			last = t
		}
	}
	return last, !last.IsZero()
}
