package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/control"
)

// fakeDaemon is a control.Service with canned replies that records what it was asked.
type fakeDaemon struct {
	mu    sync.Mutex
	calls []string
	reqs  []any

	status  *control.StatusReply
	banned  *control.BannedReply
	explain *control.ExplainReply
	reload  *control.ReloadReply
	err     error
	stop    func()
}

func (f *fakeDaemon) record(call string, req any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	f.reqs = append(f.reqs, req)
	return f.err
}

func (f *fakeDaemon) last() (string, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return "", nil
	}
	return f.calls[len(f.calls)-1], f.reqs[len(f.reqs)-1]
}

func (f *fakeDaemon) ncalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeDaemon) Status(jail string) (*control.StatusReply, error) {
	if err := f.record("Status", jail); err != nil {
		return nil, err
	}
	if jail != "" {
		for _, j := range f.status.Jails {
			if j.Name == jail {
				st := *f.status
				st.Jails, st.Broken = []control.JailStatus{j}, nil
				return &st, nil
			}
		}
		return nil, control.NotFoundf("no running jail %q", jail)
	}
	return f.status, nil
}

func (f *fakeDaemon) Banned(jail string) (*control.BannedReply, error) {
	if err := f.record("Banned", jail); err != nil {
		return nil, err
	}
	return f.banned, nil
}

func (f *fakeDaemon) Ban(req control.BanRequest) (*control.BanReply, error) {
	if err := f.record("Ban", req); err != nil {
		return nil, err
	}
	if req.Target == "10.1.2.3" && !req.Force {
		return nil, fmt.Errorf("%w: refused: 10.1.2.3 is ignored: ignoreip 10.0.0.0/8 (use --force)", control.ErrBadRequest)
	}
	b := control.Ban{Jail: req.Jail, Target: req.Target, Start: time.Now(), Manual: true, Applied: true}
	if req.For >= 0 {
		end := b.Start.Add(time.Hour)
		if req.For > 0 {
			end = b.Start.Add(time.Duration(req.For))
		}
		b.End = &end
	}
	return &control.BanReply{Ban: b}, nil
}

func (f *fakeDaemon) Unban(req control.UnbanRequest) (*control.UnbanReply, error) {
	if err := f.record("Unban", req); err != nil {
		return nil, err
	}
	if req.All {
		return &control.UnbanReply{Unbanned: f.banned.Bans}, nil
	}
	for _, b := range f.banned.Bans {
		if b.Target == req.Target && (req.Jail == "" || req.Jail == b.Jail) {
			return &control.UnbanReply{Unbanned: []control.Ban{b}}, nil
		}
	}
	return nil, control.NotFoundf("%s is not banned", req.Target)
}

func (f *fakeDaemon) Explain(addr string) (*control.ExplainReply, error) {
	if err := f.record("Explain", addr); err != nil {
		return nil, err
	}
	return f.explain, nil
}

func (f *fakeDaemon) Reload(jail string) (*control.ReloadReply, error) {
	if err := f.record("Reload", jail); err != nil {
		return nil, err
	}
	if jail == "broken" {
		return nil, fmt.Errorf("%w: configuration rejected, the running one stays:\n  jail.local:3: unknown filter \"nope\"", control.ErrBadRequest)
	}
	return f.reload, nil
}

func (f *fakeDaemon) Stop() error {
	if err := f.record("Stop", nil); err != nil {
		return err
	}
	f.mu.Lock()
	stop := f.stop
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	return nil
}

func newFakeDaemon(now time.Time) *fakeDaemon {
	lastFail := now.Add(-5 * time.Minute)
	end := now.Add(42*time.Minute + 30*time.Second)
	resets := now.Add(4*time.Minute + 30*time.Second)
	b1 := control.Ban{Jail: "sshd", Target: "192.0.2.7", Start: now.Add(-18 * time.Minute), End: &end, Failures: 5, Applied: true}
	b2 := control.Ban{Jail: "wordpress", Target: "2001:db8::/32", Start: now.Add(-time.Hour), Manual: true, Applied: false, Error: "iptables: exit status 4"}
	return &fakeDaemon{
		status: &control.StatusReply{
			Version: "0.9.0", PID: 4242, Started: now.Add(-2*time.Hour - 3*time.Minute - 10*time.Second), Config: "/etc/logjail",
			Jails: []control.JailStatus{
				{
					Name: "sshd", Filter: "sshd",
					Files: []control.FileStatus{
						{Path: "/var/log/auth.log", Exists: true, Lines: 120345, Bytes: 12 << 20, Rotations: 2},
						{Path: "/var/log/btmp", Exists: false},
					},
					LinesRead: 120345, LinesNoDate: 3, LinesSkipped: 1, Failures: 812, IgnoredUser: 4,
					Tracked: 37, LastFailure: &lastFail, Banned: 1, TotalBanned: 96, Refused: 2,
					MaxRetry: 5, FindTime: control.Duration(10 * time.Minute), BanTime: control.Duration(time.Hour),
				},
				{
					Name: "wordpress", Filter: "apache-xmlrpc",
					Files:     []control.FileStatus{{Path: "/var/log/apache2/access.log", Exists: true, Lines: 9, Bytes: 900, Error: "permission denied"}},
					LinesRead: 9, MaxRetry: 3, FindTime: control.Duration(time.Minute), BanTime: control.Permanent,
					Warnings: []string{"log grows but the filter stopped matching (0 of the last 5000 lines)"},
					Errors:   []string{"ban 2001:db8::/32: iptables: exit status 4"},
				},
			},
			Broken: []control.BrokenJail{{Name: "postfix", Errors: []string{"jail.local:12: logpath: no file matches /var/log/mail.log"}}},
		},
		banned: &control.BannedReply{Bans: []control.Ban{b1, b2}},
		explain: &control.ExplainReply{Addr: "192.0.2.7", Jails: []control.JailExplain{
			{
				Jail: "sshd", Failures: 3, MaxRetry: 5, FindTime: control.Duration(10 * time.Minute),
				Times:    []time.Time{now.Add(-3 * time.Minute), now.Add(-2 * time.Minute), now.Add(-time.Minute)},
				Lines:    []string{"Failed password for root from 192.0.2.7", "Failed password for admin from 192.0.2.7", "Invalid user x from 192.0.2.7"},
				ResetsAt: &resets, Ban: &b1,
			},
			{Jail: "wordpress", MaxRetry: 3, FindTime: control.Duration(time.Minute), Ignored: true, IgnoredWhy: "ignoreip 192.0.2.0/24"},
		}},
		reload: &control.ReloadReply{Started: []string{"nginx"}, Restarted: []string{"sshd"}, Unchanged: []string{"wordpress"},
			Warnings: []string{"jail.local:20: bantime.increment is not supported yet"}},
	}
}

// startFakeDaemon serves f on a socket and returns its path.
func startFakeDaemon(t *testing.T, f *fakeDaemon) (string, context.CancelFunc) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ljc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "lj.sock")
	ln, err := control.Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- control.Serve(ctx, ln, f, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock, cancel
}

func TestClientStatusHuman(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	out, code, msg := run(t, "status", "--socket", sock)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	t.Logf("output:\n%s", out)
	for _, want := range []string{
		"logjail 0.9.0  pid 4242  up 2h3m  config /etc/logjail\n",
		"2 jails running, 1 BROKEN, 1 WARNING, 1 ERROR\n",
		"[sshd]  filter sshd, maxretry 5 in 10m, bantime 1h\n",
		"  file          /var/log/auth.log  120345 lines, 12.0 MiB read, 2 rotations\n",
		"  file          /var/log/btmp      missing (waiting for it)\n",
		"  lines         120345 read, 3 without a date, 1 skipped\n",
		"  failures      812 counted, 4 of ignored users\n",
		"  tracked       37 addresses\n",
		"  banned        1 now, 96 in total, 2 refused by the ignore list\n",
		"  last failure  " + fmtTime(*f.status.Jails[0].LastFailure) + " (5m ago)\n",
		"[wordpress]  filter apache-xmlrpc, maxretry 3 in 1m, bantime permanent\n" +
			"  ERROR         ban 2001:db8::/32: iptables: exit status 4\n" +
			"  WARNING       log grows but the filter stopped matching (0 of the last 5000 lines)\n" +
			"  file          /var/log/apache2/access.log  ERROR: permission denied\n",
		"  last failure  none\n",
		"[postfix]  BROKEN: not running\n  ERROR  jail.local:12: logpath: no file matches /var/log/mail.log\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if _, req := f.last(); req != "" {
		t.Errorf("asked for jail %q, want every jail", req)
	}

	out, code, _ = run(t, "status", "--socket", sock, "wordpress")
	if code != 0 || strings.Contains(out, "[sshd]") || !strings.Contains(out, "[wordpress]") {
		t.Errorf("status wordpress: exit %d\n%s", code, out)
	}
}

func TestClientJSON(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	tests := []struct {
		args []string
		got  any
		want any
	}{
		{[]string{"status"}, &control.StatusReply{}, f.status},
		{[]string{"banned"}, &control.BannedReply{}, f.banned},
		{[]string{"explain", "192.0.2.7"}, &control.ExplainReply{}, f.explain},
		{[]string{"reload"}, &control.ReloadReply{}, f.reload},
		{[]string{"unban", "--all"}, &control.UnbanReply{}, &control.UnbanReply{Unbanned: f.banned.Bans}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, code, msg := run(t, append(tt.args, "--json", "--socket", sock)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, msg)
			}
			if !strings.HasPrefix(out, "{\n  \"") || !strings.HasSuffix(out, "}\n") {
				t.Errorf("not indented JSON:\n%s", out)
			}
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.got); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
	out, code, _ := run(t, "ban", "sshd", "192.0.2.99", "--for", "-1", "--json", "--socket", sock)
	var br control.BanReply
	if err := json.Unmarshal([]byte(out), &br); code != 0 || err != nil || br.Ban.Target != "192.0.2.99" || br.Ban.End != nil {
		t.Errorf("ban --json: exit %d, %v\n%s", code, err, out)
	}
}

func TestClientBanned(t *testing.T) {
	now := time.Now()
	f := newFakeDaemon(now)
	sock, _ := startFakeDaemon(t, f)
	out, code, msg := run(t, "banned", "--socket", sock)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	t.Logf("output:\n%s", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows:\n%s", out)
	}
	if !regexp.MustCompile(`^JAIL +TARGET +SINCE +UNTIL +LEFT +FAILURES +NOTE$`).MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	// Aligned: every column starts where its header does.
	col := strings.Index(lines[0], "SINCE")
	for _, l := range lines[1:] {
		if len(l) < col || l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("row not aligned on SINCE (column %d): %q", col, l)
		}
	}
	b1 := f.banned.Bans[0]
	if !strings.Contains(lines[1], "sshd       192.0.2.7      "+fmtTime(b1.Start)+"  "+fmtTime(*b1.End)+"  42m30s  5") {
		t.Errorf("row 1: %q", lines[1])
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing space: %q", l)
		}
	}
	if !strings.Contains(lines[2], "permanent") || !strings.Contains(lines[2], "manual, rule pending, ERROR: iptables: exit status 4") {
		t.Errorf("row 2: %q", lines[2])
	}

	f.mu.Lock()
	f.banned = &control.BannedReply{}
	f.mu.Unlock()
	out, code, _ = run(t, "banned", "--socket", sock, "sshd")
	if code != 0 || out != "no bans in force\n" {
		t.Errorf("no bans: exit %d %q", code, out)
	}
	if call, req := f.last(); call != "Banned" || req != "sshd" {
		t.Errorf("last call %s(%v)", call, req)
	}
}

func TestClientBan(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	tests := []struct {
		name    string
		args    []string
		want    control.BanRequest
		wantOut string
	}{
		{"default bantime", []string{"sshd", "192.0.2.7"}, control.BanRequest{Jail: "sshd", Target: "192.0.2.7"}, "sshd: banned 192.0.2.7 until "},
		{"seconds", []string{"sshd", "192.0.2.7", "--for", "600"}, control.BanRequest{Jail: "sshd", Target: "192.0.2.7", For: control.Duration(10 * time.Minute)}, "(10m)"},
		{"1d", []string{"sshd", "192.0.2.7", "--for", "1d"}, control.BanRequest{Jail: "sshd", Target: "192.0.2.7", For: control.Duration(24 * time.Hour)}, "(1d)"},
		{"1w", []string{"--for=1w", "sshd", "192.0.2.7"}, control.BanRequest{Jail: "sshd", Target: "192.0.2.7", For: control.Duration(7 * 24 * time.Hour)}, "(1w)"},
		{"-1", []string{"sshd", "43.229.0.0/16", "--for", "-1"}, control.BanRequest{Jail: "sshd", Target: "43.229.0.0/16", For: control.Permanent}, "sshd: banned 43.229.0.0/16 permanently\n"},
		{"permanent", []string{"sshd", "2001:DB8::1/128", "--for", "permanent"}, control.BanRequest{Jail: "sshd", Target: "2001:db8::1", For: control.Permanent}, "sshd: banned 2001:db8::1 permanently\n"},
		{"force", []string{"sshd", "10.1.2.3", "--force"}, control.BanRequest{Jail: "sshd", Target: "10.1.2.3", Force: true}, "sshd: banned 10.1.2.3 until"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, msg := run(t, append([]string{"ban", "--socket", sock}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, msg)
			}
			call, req := f.last()
			if diff := cmp.Diff(tt.want, req); call != "Ban" || diff != "" {
				t.Errorf("%s request (-want +got):\n%s", call, diff)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output %q lacks %q", out, tt.wantOut)
			}
		})
	}
}

// TestClientErrors: usage errors exit 2 without asking the daemon; the daemon's refusals exit 1
// with its message; nothing prints usage text or a stack.
func TestClientErrors(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
		asks     bool // the daemon is asked
	}{
		{"ban bad address", []string{"ban", "sshd", "192.0.2.300"}, 2, `"192.0.2.300" is not an IP address`, false},
		{"ban hostname", []string{"ban", "sshd", "evil.example"}, 2, `"evil.example" is not an IP address`, false},
		{"ban host bits", []string{"ban", "sshd", "10.0.0.5/8"}, 2, "10.0.0.5/8 has host bits set; did you mean 10.0.0.0/8?", false},
		{"ban bad duration", []string{"ban", "sshd", "192.0.2.7", "--for", "soon"}, 2, `--for "soon": want seconds or a duration`, false},
		{"ban zero duration", []string{"ban", "sshd", "192.0.2.7", "--for", "0"}, 2, "at least a second", false},
		{"ban missing address", []string{"ban", "sshd"}, 2, "accepts 2 arg(s)", false},
		{"unban bad address", []string{"unban", "sshd", "1.2.3"}, 2, `"1.2.3" is not an IP address`, false},
		{"unban nothing", []string{"unban"}, 2, "unban takes [JAIL] ADDR, or [JAIL] --all", false},
		{"unban too much", []string{"unban", "a", "b", "c"}, 2, "unban takes", false},
		{"unban all with address", []string{"unban", "sshd", "192.0.2.7", "--all"}, 2, "unban --all takes at most a jail name", false},
		{"explain prefix", []string{"explain", "10.0.0.0/8"}, 2, `"10.0.0.0/8" is not an IP address`, false},
		{"explain nothing", []string{"explain"}, 2, "accepts 1 arg(s)", false},
		{"status two jails", []string{"status", "a", "b"}, 2, "accepts at most 1 arg(s)", false},
		{"stop with args", []string{"stop", "now"}, 2, "unknown command", false},
		{"ban ignored", []string{"ban", "sshd", "10.1.2.3"}, 1, "refused: 10.1.2.3 is ignored: ignoreip 10.0.0.0/8 (use --force)", true},
		{"status unknown jail", []string{"status", "nope"}, 1, `no running jail "nope"`, true},
		{"unban not banned", []string{"unban", "198.51.100.1"}, 1, "198.51.100.1 is not banned", true},
		{"reload rejected", []string{"reload", "broken"}, 1, "configuration rejected, the running one stays:\n  jail.local:3: unknown filter \"nope\"", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := f.ncalls()
			out, code, msg := run(t, append(tt.args, "--socket", sock)...)
			if code != tt.wantCode || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("exit %d, message %q; want exit %d and %q", code, msg, tt.wantCode, tt.wantMsg)
			}
			if strings.HasPrefix(msg, "bad request") || strings.HasPrefix(msg, "not found") {
				t.Errorf("message starts with the error class: %q", msg)
			}
			if strings.Contains(out, "Usage:") || strings.Contains(msg, "goroutine") {
				t.Errorf("usage text or a stack:\n%s%s", out, msg)
			}
			if asked := f.ncalls() > n; asked != tt.asks {
				t.Errorf("daemon asked: %v, want %v", asked, tt.asks)
			}
		})
	}
}

func TestClientNotRunning(t *testing.T) {
	dir, err := os.MkdirTemp("", "ljc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "none.sock")
	want := "logjail is not running (no daemon on " + sock + ")"
	for _, args := range [][]string{
		{"status"}, {"status", "sshd", "--json"}, {"banned"}, {"ban", "sshd", "192.0.2.7"}, {"unban", "192.0.2.7"},
		{"unban", "--all"}, {"explain", "192.0.2.7"}, {"reload"}, {"stop"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, code, msg := run(t, append(args, "--socket", sock)...)
			if code != 1 || msg != want || out != "" {
				t.Errorf("exit %d, message %q, output %q; want exit 1, %q and no output", code, msg, out, want)
			}
		})
	}
	// The environment names the socket when the flag does not.
	t.Setenv("LOGJAIL_SOCKET", sock)
	if _, code, msg := run(t, "status"); code != 1 || msg != want {
		t.Errorf("with LOGJAIL_SOCKET: exit %d %q", code, msg)
	}
}

func TestClientSocketFromEnv(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	t.Setenv("LOGJAIL_SOCKET", sock)
	if out, code, msg := run(t, "status"); code != 0 || !strings.Contains(out, "pid 4242") {
		t.Errorf("exit %d %s\n%s", code, msg, out)
	}
}

func TestClientUnban(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	tests := []struct {
		args    []string
		want    control.UnbanRequest
		wantOut string
	}{
		{[]string{"192.0.2.7"}, control.UnbanRequest{Target: "192.0.2.7"}, "sshd: unbanned 192.0.2.7\n"},
		{[]string{"wordpress", "2001:db8::/32"}, control.UnbanRequest{Jail: "wordpress", Target: "2001:db8::/32"}, "wordpress: unbanned 2001:db8::/32\n"},
		{[]string{"--all"}, control.UnbanRequest{All: true}, "sshd: unbanned 192.0.2.7\nwordpress: unbanned 2001:db8::/32\n"},
		{[]string{"sshd", "--all"}, control.UnbanRequest{Jail: "sshd", All: true}, "unbanned"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, code, msg := run(t, append([]string{"unban", "--socket", sock}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, msg)
			}
			call, req := f.last()
			if diff := cmp.Diff(tt.want, req); call != "Unban" || diff != "" {
				t.Errorf("%s request (-want +got):\n%s", call, diff)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output %q lacks %q", out, tt.wantOut)
			}
		})
	}
}

func TestClientExplain(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	out, code, msg := run(t, "explain", "--socket", sock, "::ffff:192.0.2.7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	t.Logf("output:\n%s", out)
	if _, req := f.last(); req != "192.0.2.7" {
		t.Errorf("asked about %v", req)
	}
	e := f.explain.Jails[0]
	for _, want := range []string{
		"[sshd]  192.0.2.7: 3 of 5 failures within 10m, window resets at " + fmtTime(*e.ResetsAt) + " (in 4m30s)\n",
		"  ignored  no\n",
		"  ban      banned until " + fmtTime(*e.Ban.End) + " (42m30s left)\n",
		"    " + fmtTime(e.Times[0]) + "  Failed password for root from 192.0.2.7\n",
		"    " + fmtTime(e.Times[2]) + "  Invalid user x from 192.0.2.7\n",
		"[wordpress]  192.0.2.7: 0 of 3 failures within 1m\n  ignored  YES: ignoreip 192.0.2.0/24\n  ban      not banned\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestClientReload(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	out, code, msg := run(t, "reload", "--socket", sock)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	want := "reloaded\n" +
		"  started    nginx\n" +
		"  restarted  sshd\n" +
		"  unchanged  wordpress\n" +
		"  WARNING    jail.local:20: bantime.increment is not supported yet\n"
	if out != want {
		t.Errorf("output (-want +got):\n%s", cmp.Diff(want, out))
	}
	run(t, "reload", "--socket", sock, "sshd")
	if call, req := f.last(); call != "Reload" || req != "sshd" {
		t.Errorf("last call %s(%v)", call, req)
	}
}

func TestClientStop(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, cancel := startFakeDaemon(t, f)
	f.mu.Lock()
	f.stop = func() {
		// The daemon stops a little later, as a real one removing its chains would.
		time.AfterFunc(200*time.Millisecond, cancel)
	}
	f.mu.Unlock()
	start := time.Now()
	out, code, msg := run(t, "stop", "--socket", sock)
	if code != 0 || out != "logjail stopped\n" {
		t.Fatalf("exit %d %s\n%s", code, msg, out)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Error("stop returned before the daemon stopped")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there: %v", err)
	}
	_, code, msg = run(t, "stop", "--socket", sock)
	if code != 1 || !strings.Contains(msg, "logjail is not running") {
		t.Errorf("second stop: exit %d %q", code, msg)
	}
}

func TestFmtSpan(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0s"}, {300 * time.Millisecond, "<1s"}, {45 * time.Second, "45s"},
		{5*time.Minute + 12*time.Second, "5m12s"}, {2*time.Hour + 3*time.Minute + 59*time.Second, "2h3m"},
		{2 * time.Hour, "2h"}, {3*24*time.Hour + 4*time.Hour + 5*time.Minute, "3d4h"}, {9 * 24 * time.Hour, "1w2d"},
		{time.Hour + 30*time.Second, "1h"},
	}
	for _, tt := range tests {
		if got := fmtSpan(tt.d); got != tt.want {
			t.Errorf("fmtSpan(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestClientCompletion(t *testing.T) {
	f := newFakeDaemon(time.Now())
	sock, _ := startFakeDaemon(t, f)
	out, code, msg := run(t, "__complete", "ban", "--socket", sock, "")
	if code != 0 || !strings.HasPrefix(out, "sshd\nwordpress\n:4\n") {
		t.Errorf("completion: exit %d %s\n%q", code, msg, out)
	}
	// No daemon: no suggestions, no error.
	out, code, _ = run(t, "__complete", "status", "--socket", filepath.Join(filepath.Dir(sock), "none"), "")
	if code != 0 || !strings.HasPrefix(out, ":4\n") {
		t.Errorf("completion without a daemon: exit %d\n%q", code, out)
	}
}
