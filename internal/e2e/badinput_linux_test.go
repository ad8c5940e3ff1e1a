//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/control"
)

// logBanWorks shows that the daemon still bans from its logs: five failures of the attacker
// appended to log get it banned in jail and refused; then every ban is lifted again.
func logBanWorks(t *testing.T, tp *topo, d *daemon, jail, log string) {
	t.Helper()
	d.alive("before the ban check")
	appendFile(t, log, failLines(atk4, 5, "ban-check"))
	d.waitBan(jail, hostTarget(atk4), 10*time.Second)
	tp.atk.waitRefused(t, ipv4, "banned in "+jail)
	tp.bys.wantServed(t, ipv4, "attacker banned in "+jail)
	d.mustCLI("unban", "--all")
	tp.atk.waitServed(t, ipv4, "after unban --all")
}

// badContentSetup is a daemon with the wordpress jail on a log the test writes by hand
// (demoweb logs elsewhere).
func badContentSetup(t *testing.T) (*topo, *daemon, string) {
	t.Helper()
	tp := newTopo(t)
	dir := t.TempDir()
	tp.startWeb(t, filepath.Join(dir, "web.log"))
	log := filepath.Join(dir, "access.log")
	writeFile(t, log, "")
	d := newDaemon(t, tp, newConfig(t, map[string]string{"jail.d/e2e.local": wordpressJail(log, 5, "10m", "1h")}))
	d.start("wordpress")
	d.waitFollowing("wordpress", log)
	return tp, d, log
}

// TestBadLogContent feeds one daemon's log garbage, one kind after the other. After each, the
// daemon runs, status answers and counts what it should, and five plain failures still ban.
//
//   - a 1 MiB line (a failure of the attacker with a 1 MiB user agent), written in two
//     halves: nothing is read until its newline; then it is counted as read, cut and skipped,
//     and its failure does not count;
//   - invalid UTF-8 in five failure lines: they count (by design: part of a line is the
//     client's, and bad bytes must not hide a failure) and ban; status and banned --json
//     stay valid JSON;
//   - NUL bytes: a block of 8 KiB of NULs (what a crash leaves in a log) is one line without
//     a date; five failures with NULs in the user agent count and ban;
//   - the log replaced (renamed over) by 256 KiB of random bytes: a rotation, read without
//     error; failures appended to it after a newline still ban.
func TestBadLogContent(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp, d, log := badContentSetup(t)

	t.Run("1MiB-line", func(t *testing.T) {
		before := d.jail("wordpress")
		line := failLine(atk4, time.Now(), "huge")
		line = strings.Replace(line, `"e2e"`, `"`+strings.Repeat("A", 1<<20)+`"`, 1)
		half := len(line) / 2
		appendFile(t, log, line[:half])
		time.Sleep(300 * time.Millisecond)
		if j := d.jail("wordpress"); j.LinesRead != before.LinesRead {
			t.Errorf("half a line written: lines_read went from %d to %d", before.LinesRead, j.LinesRead)
		}
		appendFile(t, log, line[half:])
		waitFor(t, 10*time.Second, "the 1 MiB line read", func() (bool, string) {
			j := d.jail("wordpress")
			return j.LinesRead == before.LinesRead+1, fmt.Sprintf("lines_read %d", j.LinesRead)
		})
		j := d.jail("wordpress")
		if j.LinesSkipped != before.LinesSkipped+1 || j.Files[0].CutLines != before.Files[0].CutLines+1 {
			t.Errorf("after a 1 MiB line: lines_skipped %d, cut_lines %d; want %d, %d", j.LinesSkipped, j.Files[0].CutLines, before.LinesSkipped+1, before.Files[0].CutLines+1)
		}
		if e := d.explain("wordpress", atk4); e.Failures != 0 {
			t.Errorf("the cut line counted as a failure: %+v", e)
		}
		logBanWorks(t, tp, d, "wordpress", log)
	})

	t.Run("invalid-UTF-8", func(t *testing.T) {
		var b strings.Builder
		for i := range 5 {
			b.WriteString(strings.Replace(failLine(atk4, time.Now(), fmt.Sprintf("utf8-%d", i)), `"e2e"`, "\"\xff\xfe\xc3(\xed\xa0\x80\"", 1))
		}
		appendFile(t, log, b.String())
		ban := d.waitBan("wordpress", hostTarget(atk4), 10*time.Second)
		if ban.Failures != 5 || len(ban.Lines) != 5 {
			t.Errorf("ban %+v, want the 5 lines with invalid UTF-8", ban)
		}
		d.mustCLI("unban", "--all")
		tp.atk.waitServed(t, ipv4, "after unban --all")
		logBanWorks(t, tp, d, "wordpress", log)
	})

	t.Run("NUL-bytes", func(t *testing.T) {
		before := d.jail("wordpress")
		var b strings.Builder
		b.WriteString(strings.Repeat("\x00", 8<<10) + "\n")
		for i := range 5 {
			b.WriteString(strings.Replace(failLine(atk4, time.Now(), fmt.Sprintf("nul-%d", i)), `"e2e"`, "\"e2e\x00\x00x\"", 1))
		}
		appendFile(t, log, b.String())
		d.waitBan("wordpress", hostTarget(atk4), 10*time.Second)
		j := d.jail("wordpress")
		if j.LinesRead != before.LinesRead+6 || j.LinesNoDate != before.LinesNoDate+1 {
			t.Errorf("after a NUL line and 5 lines with NULs: lines_read %d, lines_no_date %d; want %d, %d", j.LinesRead, j.LinesNoDate, before.LinesRead+6, before.LinesNoDate+1)
		}
		d.mustCLI("unban", "--all")
		tp.atk.waitServed(t, ipv4, "after unban --all")
		logBanWorks(t, tp, d, "wordpress", log)
	})

	t.Run("replaced-by-binary", func(t *testing.T) {
		before := d.jail("wordpress")
		bin := make([]byte, 256<<10)
		if _, err := rand.Read(bin); err != nil {
			t.Fatal(err)
		}
		tmp := log + ".bin"
		writeFile(t, tmp, string(bin))
		if err := os.Rename(tmp, log); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the binary file read", func() (bool, string) {
			j := d.jail("wordpress")
			// Read up to its last newline; what follows is an incomplete line, not read yet.
			return j.Files[0].Rotations == before.Files[0].Rotations+1 && j.Files[0].Offset == int64(bytes.LastIndexByte(bin, '\n')+1),
				fmt.Sprintf("file %+v", j.Files[0])
		})
		d.alive("after the log was replaced by a binary file")
		if j := d.jail("wordpress"); len(j.Errors) != 0 || j.Failures != before.Failures {
			t.Errorf("after a binary log: errors %q, failures %d (before %d)", j.Errors, j.Failures, before.Failures)
		}
		appendFile(t, log, "\n")
		logBanWorks(t, tp, d, "wordpress", log)
	})
}

// TestBadLogPaths: jails whose logpath cannot be read. The daemon runs without
// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv drops them from its bounding set): root
// with them reads any file, so only then is a mode 000 file unreadable, as it is for a daemon
// whose systemd unit keeps neither. Each such jail runs and reports its file's error in
// status; the daemon runs; the wordpress jail on a good log still bans. Then:
//
//   - a log whose directory is replaced by a file while it is followed (ENOTDIR at run time:
//     the error on which nxadm/tail calls os.Exit) is reported, and followed again once the
//     directory is back;
//   - every bad path is fixed, and each jail picks its log up and bans from it.
//
// The unreadable paths: a directory, a named pipe (a FIFO: opening it would block a reader),
// a path whose parent is a regular file (ENOTDIR), and a mode 000 file (EACCES; only without
// CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE, so only where setpriv exists).
func TestBadLogPaths(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp := newTopo(t)
	dir := t.TempDir()
	tp.startWeb(t, filepath.Join(dir, "web.log"))

	good := filepath.Join(dir, "access.log")
	writeFile(t, good, "")
	isDir := filepath.Join(dir, "dir.log")
	if err := os.Mkdir(isDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	parentFile := filepath.Join(dir, "plainfile")
	writeFile(t, parentFile, "a file, not a directory\n")
	notDir := filepath.Join(parentFile, "access.log")
	moving := filepath.Join(dir, "app")
	if err := os.Mkdir(moving, 0o755); err != nil {
		t.Fatal(err)
	}
	movingLog := filepath.Join(moving, "app.log")
	writeFile(t, movingLog, "")
	noPerm := filepath.Join(dir, "noperm.log")
	writeFile(t, noPerm, "")
	if err := os.Chmod(noPerm, 0); err != nil {
		t.Fatal(err)
	}

	type badJail struct {
		name, path, reason string
	}
	bad := []badJail{
		{"dirlog", isDir, "directory"},
		{"fifolog", fifo, "named pipe"},
		{"notdir", notDir, "not a directory"},
	}
	var wrap []string
	if p, err := exec.LookPath("setpriv"); err == nil {
		wrap = []string{p, "--bounding-set", "-dac_override,-dac_read_search"}
		bad = append(bad, badJail{"noperm", noPerm, "permission denied"})
	} else {
		t.Log("setpriv not found: the unreadable (mode 000) log is not tested, root reads it")
	}
	local := wordpressJail(good, 5, "10m", "1h")
	for _, j := range append(bad, badJail{name: "moving", path: movingLog}) {
		local += fmt.Sprintf("\n[%s]\nenabled = true\nfilter = wordpress\nport = http,https\nlogpath = %s\nmaxretry = 5\n", j.name, j.path)
	}
	d := newDaemon(t, tp, newConfig(t, map[string]string{"jail.d/e2e.local": local}))
	d.wrap = wrap
	jails := []string{"wordpress", "moving"}
	for _, j := range bad {
		jails = append(jails, j.name)
	}
	d.start(jails...)
	d.waitFollowing("wordpress", good)
	d.waitFollowing("moving", movingLog)

	for _, b := range bad {
		waitFor(t, 5*time.Second, fmt.Sprintf("jail %s reporting %s", b.name, b.reason), func() (bool, string) {
			j := d.jail(b.name)
			errs := strings.Join(j.Errors, "; ")
			ok := strings.Contains(errs, b.path) && strings.Contains(errs, b.reason)
			for _, f := range j.Files {
				ok = ok && f.Path == b.path && !f.Exists && strings.Contains(f.Error, b.reason)
			}
			return ok && len(j.Files) == 1, fmt.Sprintf("errors %q, files %+v", j.Errors, j.Files)
		})
	}
	logBanWorks(t, tp, d, "wordpress", good)

	// The followed log's directory becomes a file, then a directory again.
	appendFile(t, movingLog, failLines(atk4, 5, "moving-1"))
	d.waitBan("moving", hostTarget(atk4), 10*time.Second)
	d.mustCLI("unban", "--all")
	if err := os.Rename(moving, moving+".old"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, moving, "now a file\n")
	// A follower's error reaches status at the jail's next look at its files (every 10 s).
	waitFor(t, 15*time.Second, "jail moving reporting ENOTDIR", func() (bool, string) {
		j := d.jail("moving")
		return strings.Contains(strings.Join(j.Errors, "; "), "not a directory"), fmt.Sprintf("errors %q, files %+v", j.Errors, j.Files)
	})
	d.alive("after the log's directory became a file")
	logBanWorks(t, tp, d, "wordpress", good)
	if err := os.Remove(moving); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(moving, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, movingLog, failLines(atk4, 5, "moving-2"))
	d.waitBan("moving", hostTarget(atk4), 10*time.Second)
	d.mustCLI("unban", "--all")

	// The followed log becomes a directory, then a file again.
	if err := os.Remove(movingLog); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(movingLog, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "jail moving reporting a directory", func() (bool, string) {
		j := d.jail("moving")
		return strings.Contains(strings.Join(j.Errors, "; "), "directory"), fmt.Sprintf("errors %q, files %+v", j.Errors, j.Files)
	})
	d.alive("after the log became a directory")
	if err := os.Remove(movingLog); err != nil {
		t.Fatal(err)
	}
	writeFile(t, movingLog, failLines(atk4, 5, "moving-3"))
	d.waitBan("moving", hostTarget(atk4), 10*time.Second)
	d.mustCLI("unban", "--all")

	// Fix every bad path; each jail picks its log up (at its next look at the logpaths, every
	// 10 s) and bans from it.
	for _, b := range bad {
		switch b.name {
		case "dirlog", "fifolog":
			if err := os.Remove(b.path); err != nil {
				t.Fatal(err)
			}
		case "notdir":
			if err := os.Remove(parentFile); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(parentFile, 0o755); err != nil {
				t.Fatal(err)
			}
		case "noperm":
			if err := os.Chmod(b.path, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		appendFile(t, b.path, failLines(atk4, 5, b.name))
	}
	for _, b := range bad {
		d.waitBan(b.name, hostTarget(atk4), 15*time.Second)
	}
	tp.atk.waitRefused(t, ipv4, "banned by every fixed jail")
	if j := d.jail(bad[0].name); len(j.Errors) != 0 {
		t.Errorf("jail %s still reports %q after its log was fixed", bad[0].name, j.Errors)
	}
}

// TestControlSocketGarbage: what a confused or hostile local client can send on the control
// socket. Each gets an HTTP error reply (or, when it never completes a request, a closed
// connection); after each the daemon runs, status answers, and a ban by the CLI still works.
// A client that sends half a request head and waits does not block the others, and is cut off
// (the daemon's read timeout).
func TestControlSocketGarbage(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp, d, _ := webSetup(t, func(log string) map[string]string {
		return map[string]string{"jail.d/e2e.local": wordpressJail(log, 5, "1m", "1h")}
	})
	random := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return string(b)
	}
	cliBanWorks := func(t *testing.T) {
		t.Helper()
		d.alive("after the garbage")
		if _, err := d.tryStatus(); err != nil {
			t.Fatalf("status after the garbage: %v", err)
		}
		d.banCLI("wordpress", atk4.String())
		tp.atk.waitRefused(t, ipv4, "banned by hand after the garbage")
		d.mustCLI("unban", "wordpress", atk4.String())
		tp.atk.waitServed(t, ipv4, "unbanned by hand after the garbage")
	}
	// wantStatus: the HTTP status the reply must have; 0: no reply is needed, but the server
	// must close the connection.
	for _, c := range []struct {
		name       string
		send       string
		wantStatus int
	}{
		{"random-bytes", random(4096), 400},
		{"NUL-bytes", strings.Repeat("\x00", 1024) + "\r\n\r\n", 400},
		{"TLS-hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + random(500) + "\r\n\r\n", 400},
		{"half-head-then-close", "GET /v1/status HTTP/1.1\r\nHost: logjail\r\n", 0},
		{"half-body-then-close", "POST /v1/ban HTTP/1.1\r\nHost: logjail\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jail\":", 0},
		{"invalid-JSON", httpReq("POST", "/v1/ban", `{"jail": "wordpress", "target": `), 400},
		{"JSON-of-wrong-types", httpReq("POST", "/v1/ban", `{"jail": 5, "target": ["x"]}`), 400},
		{"ban-of-garbage-address", httpReq("POST", "/v1/ban", `{"jail": "wordpress", "target": "10.200.1.2/33\u0000"}`), 400},
		{"wrong-method", httpReq("GET", "/v1/ban", ""), 405},
		{"unknown-path", httpReq("GET", "/../../etc/passwd", ""), 404},
		{"body-over-1MiB", httpReq("POST", "/v1/unban", `{"target": "`+strings.Repeat("1", 2<<20)+`"}`), 413},
		{"header-over-limit", "GET /v1/status HTTP/1.1\r\nHost: logjail\r\nX-Junk: " + strings.Repeat("j", 64<<10) + "\r\n\r\n", 431},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("unix", d.sock)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(15 * time.Second))
			if _, err := io.WriteString(conn, c.send); err != nil && c.wantStatus != 0 && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("write: %v", err)
			}
			if c.wantStatus == 0 {
				conn.Close()
			} else {
				status, body := readReply(t, conn)
				if status != c.wantStatus {
					t.Errorf("reply status %d (%.200q), want %d", status, body, c.wantStatus)
				}
				if strings.HasPrefix(body, "{") && !strings.Contains(body, `"error"`) {
					t.Errorf("JSON reply without an error: %.200q", body)
				}
			}
			cliBanWorks(t)
		})
	}

	t.Run("half-head-held-open", func(t *testing.T) {
		conn, err := net.Dial("unix", d.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "POST /v1/stop HTTP/1.1\r\nHost: logjail\r\n")
		cliBanWorks(t) // the other clients are served meanwhile
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err = io.ReadAll(conn)
		if err != nil {
			t.Errorf("the daemon did not close a connection that sent half a head: %v after %v", err, time.Since(start))
		}
		d.alive("after a half request head held open") // and it did not stop
		cliBanWorks(t)
	})

	t.Run("many-idle-connections", func(t *testing.T) {
		var conns []net.Conn
		for range 200 {
			c, err := net.Dial("unix", d.sock)
			if err != nil {
				t.Fatalf("connection %d: %v", len(conns), err)
			}
			conns = append(conns, c)
		}
		cliBanWorks(t)
		for _, c := range conns {
			c.Close()
		}
	})

	var st control.StatusReply
	if err := d.jsonCLI(&st, "status"); err != nil || len(st.Jails) != 1 || st.Jails[0].Name != "wordpress" {
		t.Errorf("status after all the garbage: %+v, %v", st, err)
	}
}

// httpReq is a complete HTTP/1.1 request with body.
func httpReq(method, path, body string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: logjail\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", method, path, len(body), body)
}

// readReply reads one HTTP reply; status 0 when there is none.
func readReply(t *testing.T, conn net.Conn) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Errorf("no HTTP reply: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, strings.TrimSpace(string(body))
}
