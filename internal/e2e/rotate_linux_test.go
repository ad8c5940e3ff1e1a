//go:build linux

package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestRotationLosesNoFailure: maxretry = 6; three failures before a rotation and two after
// are five, not banned (a line read twice would make six); the sixth bans. The log lines are
// written by hand, as a web server writes them (one append per line or batch, on a descriptor
// opened with O_APPEND), so that every count is exact.
//
//   - rename: the log is renamed to access.log.1 and a new one created; the writer appends
//     one more failure to the old file after the rename (a web server writes to its old
//     descriptor until it reopens), then the next to the new file.
//   - copytruncate: the log is copied to access.log.1 and truncated in place; the writer goes
//     on through its O_APPEND descriptor, and writes at once more than the old size (the
//     case a follower that only checks for a shrinking size misses).
//   - delete: the log is deleted and created again; the writer appends one more failure to
//     the deleted file (still open) before it reopens.
//
// Each with the polling and the inotify backend. After each: the lines read equal the lines
// written, explain counts five, no ban; then the ban's lines are the six failures, each once.
func TestRotationLosesNoFailure(t *testing.T) {
	requireE2E(t)
	for _, mode := range []string{"rename", "copytruncate", "delete"} {
		for _, backend := range []string{"polling", "inotify"} {
			t.Run(mode+"/"+backend, func(t *testing.T) {
				t.Parallel()
				testRotation(t, mode, backend)
			})
		}
	}
}

func testRotation(t *testing.T, mode, backend string) {
	const maxretry = 6
	tp := newTopo(t)
	dir := t.TempDir()
	tp.startWeb(t, filepath.Join(dir, "web.log")) // the site to connect to; its log is not followed
	log := filepath.Join(dir, "access.log")
	old := log + ".1"

	// A log with some history (no failures) before the daemon starts.
	var hist strings.Builder
	for i := range 20 {
		hist.WriteString(okLine(bys4, time.Now(), fmt.Sprintf("history-%d", i)))
	}
	writeFile(t, log, hist.String())
	written := int64(20) // lines written to the followed files

	d := newDaemon(t, tp, newConfig(t, map[string]string{
		"jail.d/e2e.local": wordpressJail(log, maxretry, "10m", "1h", "backend = "+backend),
	}))
	d.start("wordpress")
	d.waitFollowing("wordpress", log)

	w, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { w.Close() }()
	write := func(s string) {
		t.Helper()
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
		written += int64(strings.Count(s, "\n"))
	}
	now := time.Now()
	for i := 1; i <= 3; i++ {
		write(failLine(atk4, now, fmt.Sprintf("fail-%d", i)))
	}
	d.waitFailures("wordpress", atk4, 3)

	switch mode {
	case "rename", "delete":
		if mode == "rename" {
			err = os.Rename(log, old)
		} else {
			err = os.Remove(log)
		}
		if err != nil {
			t.Fatal(err)
		}
		write(failLine(atk4, now, "fail-4")) // still the old file, renamed or deleted
		w.Close()
		if w, err = os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			t.Fatal(err)
		}
		write(failLine(atk4, now, "fail-5"))
	case "copytruncate":
		src, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, old, string(src))
		if err := os.Truncate(log, 0); err != nil {
			t.Fatal(err)
		}
		after := failLine(atk4, now, "fail-4") + failLine(atk4, now, "fail-5")
		for i := 0; len(after) <= len(src); i++ {
			after += okLine(bys4, now, fmt.Sprintf("after-%d", i))
		}
		write(after) // one write, larger than the file was
	}
	waitFor(t, 10*time.Second, "every line read", func() (bool, string) {
		j := d.jail("wordpress")
		return j.LinesRead >= written, fmt.Sprintf("lines_read %d, written %d", j.LinesRead, written)
	})
	time.Sleep(500 * time.Millisecond) // time for a line read twice to show up
	j := d.jail("wordpress")
	if j.LinesRead != written {
		t.Errorf("%d lines read, %d written (across the rotation)", j.LinesRead, written)
	}
	if e := d.explain("wordpress", atk4); e.Failures != 5 || e.Ban != nil {
		t.Errorf("explain after the rotation: %d failures (ban %+v), want 5 and no ban: %q", e.Failures, e.Ban, e.Lines)
	}
	if bans := d.banned(); len(bans) != 0 {
		t.Errorf("banned after five failures with maxretry 6: %+v", bans)
	}
	if len(j.Files) != 1 {
		t.Fatalf("files %+v, want access.log only", j.Files)
	}
	if f := j.Files[0]; mode != "copytruncate" && f.Rotations != 1 || f.Error != "" {
		t.Errorf("file status %+v, want one rotation (%s) and no error", f, mode)
	}

	write(failLine(atk4, time.Now(), "fail-6"))
	b := d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	var tags []string
	for _, l := range b.Lines {
		_, rest, _ := strings.Cut(l, "/xmlrpc.php?")
		tag, _, _ := strings.Cut(rest, " ")
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	if want := "fail-1 fail-2 fail-3 fail-4 fail-5 fail-6"; b.Failures != maxretry || strings.Join(tags, " ") != want {
		t.Errorf("ban: %d failures, lines %q; want %d: %s", b.Failures, b.Lines, maxretry, want)
	}
	j = d.jail("wordpress")
	if j.Failures != maxretry || j.TotalBanned != 1 || j.LinesRead != written {
		t.Errorf("status: failures %d, total banned %d, lines read %d; want %d, 1, %d", j.Failures, j.TotalBanned, j.LinesRead, maxretry, written)
	}
	if e := d.explain("wordpress", atk4); e.Failures != 0 {
		t.Errorf("explain after the ban: %d failures, want 0", e.Failures)
	}
	tp.atk.waitRefused(t, ipv4, "banned after the rotation")
	tp.bys.wantServed(t, ipv4, "attacker banned")
}

// TestLogAppearsLater: a jail whose log does not exist yet runs, reports the file missing, and
// reads it from its first line once it appears.
func TestLogAppearsLater(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp := newTopo(t)
	dir := t.TempDir()
	tp.startWeb(t, filepath.Join(dir, "web.log"))
	log := filepath.Join(dir, "later.log")
	d := newDaemon(t, tp, newConfig(t, map[string]string{"jail.d/e2e.local": wordpressJail(log, 5, "10m", "1h")}))
	d.start("wordpress")
	if j := d.jail("wordpress"); len(j.Files) != 1 || j.Files[0].Exists || j.Files[0].Path != log {
		t.Errorf("files %+v, want %s, not existing", j.Files, log)
	}
	writeFile(t, log, failLines(atk4, 5, "later"))
	b := d.waitBan("wordpress", hostTarget(atk4), 10*time.Second)
	if b.Failures != 5 {
		t.Errorf("ban %+v, want 5 failures", b)
	}
	tp.atk.waitRefused(t, ipv4, "banned from a log that appeared later")
	if j := d.jail("wordpress"); j.LinesRead != 5 || !j.Files[0].Exists {
		t.Errorf("status: lines read %d, file %+v; want 5, existing", j.LinesRead, j.Files[0])
	}
}
