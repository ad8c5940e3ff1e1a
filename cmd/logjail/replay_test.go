package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// runReplayCmd runs `logjail replay args...` on a root of its own (the lead registers the
// command in newRootCmd).
func runReplayCmd(t *testing.T, args ...string) (string, int, string) {
	t.Helper()
	root := &cobra.Command{Use: "logjail", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newReplayCmd())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"replay"}, args...))
	err := root.ExecuteContext(t.Context())
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

// replayConfig writes a configuration directory with the repository's filters and jail.conf.
func replayConfig(t *testing.T, jailConf string) string {
	t.Helper()
	dir := t.TempDir()
	replayWrite(t, filepath.Join(dir, "jail.conf"), jailConf)
	fd := filepath.Join(dir, "filter.d")
	if err := os.Mkdir(fd, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(repo, "filter.d"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(repo, "filter.d", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		replayWrite(t, filepath.Join(fd, e.Name()), string(b))
	}
	return dir
}

func replayWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

const replayJailConf = `
[DEFAULT]
maxretry = 3
findtime = 10m
bantime  = 10m
ignoreip = 127.0.0.0/8 10.0.0.0/8

[sshd]
# disabled: replay is what one runs before enabling a jail
enabled  = false
filter   = sshd
logpath  = /nonexistent/auth.log

[btmp]
enabled  = true
filter   = btmp
logpath  = /nonexistent/btmp

[broken]
enabled  = false
filter   = nosuchfilter
logpath  = /nonexistent/x.log
`

var replayT0 = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)

func replaySSHLine(t time.Time, user, addr string) string {
	return fmt.Sprintf("%s srv1 sshd-session[3301]: Failed password for invalid user %s from %s port 36104 ssh2\n",
		t.Format("2006-01-02T15:04:05.000000-07:00"), user, addr)
}

func replayLog(t *testing.T) string {
	var b strings.Builder
	at := func(s int) time.Time { return replayT0.Add(time.Duration(s) * time.Second) }
	for i := range 4 {
		b.WriteString(replaySSHLine(at(i), "oracle", "192.0.2.12"))
		b.WriteString(replaySSHLine(at(i), "pi", "10.1.2.3"))
	}
	b.WriteString(replaySSHLine(at(60), "root", "2001:db8::1"))
	b.WriteString("not a failure\n")
	path := filepath.Join(t.TempDir(), "auth.log")
	replayWrite(t, path, b.String())
	return path
}

func TestReplayHuman(t *testing.T) {
	dir := replayConfig(t, replayJailConf)
	out, code, msg := runReplayCmd(t, "--config", dir, "--jail", "sshd", replayLog(t))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, msg, out)
	}
	for _, want := range []string{
		"jail sshd: filter sshd, maxretry 3, findtime 10m, bantime 10m, ignoreip 127.0.0.0/8 10.0.0.0/8\n",
		"2026-11-22T13:00:02Z  ban      192.0.2.12       3 failures  until 2026-11-22T13:10:02Z\n" +
			"    2026-11-22T13:00:02.000000+00:00 srv1 sshd-session[3301]: Failed password for invalid user oracle from 192.0.2.12 port 36104 ssh2\n",
		"2026-11-22T13:00:02Z  ignored  10.1.2.3         3 failures  (ignoreip 10.0.0.0/8)\n",
		"10 lines dated 2026-11-22T13:00:00Z to 2026-11-22T13:01:00Z\n",
		"1 would-be ban of 1 address, and 1 refused by ignoreip\n",
		"9 failures found, 8 counted, 1 while banned\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestReplayJSON(t *testing.T) {
	dir := replayConfig(t, replayJailConf)
	out, code, msg := runReplayCmd(t, "--config", dir, "--jail", "sshd", "--json", replayLog(t))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, msg, out)
	}
	var doc replayJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	until := "2026-11-22T13:10:02Z"
	want := []replayBanJSON{
		{Time: replayT0.Add(2 * time.Second), Addr: "192.0.2.12", Target: "192.0.2.12/32", Failures: 3, Until: &until},
		{Time: replayT0.Add(2 * time.Second), Addr: "10.1.2.3", Target: "10.1.2.3/32", Failures: 3, Ignored: true, IgnoredBy: "10.0.0.0/8"},
	}
	got := doc.Bans
	for i := range got {
		if len(got[i].Lines) != 3 || got[i].Line != got[i].Lines[2] {
			t.Errorf("ban %d: line %q, lines %q", i, got[i].Line, got[i].Lines)
		}
		got[i].Line, got[i].Lines = "", nil
		got[i].Time = got[i].Time.UTC()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bans (-want +got):\n%s", diff)
	}
	if doc.Jail != "sshd" || doc.Format != "text" || doc.Totals.Lines != 10 || doc.Totals.Bans != 2 || doc.Totals.Ignored != 1 || doc.Totals.WhileBanned != 1 {
		t.Errorf("document %+v", doc)
	}
}

func TestReplayBtmpFile(t *testing.T) {
	dir := replayConfig(t, replayJailConf)
	var recs []byte
	for i := range 3 {
		b := make([]byte, 384)
		le := binary.LittleEndian
		le.PutUint16(b[0:], 6)
		le.PutUint32(b[4:], uint32(100+i))
		copy(b[8:], "ssh:notty")
		copy(b[44:], "root")
		copy(b[76:], "192.0.2.30")
		le.PutUint32(b[340:], uint32(replayT0.Add(time.Duration(i)*time.Second).Unix()))
		a := netip.MustParseAddr("192.0.2.30").As4()
		copy(b[348:], a[:])
		recs = append(recs, b...)
	}
	path := filepath.Join(t.TempDir(), "btmp")
	if err := os.WriteFile(path, recs, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code, msg := runReplayCmd(t, "--config", dir, "--jail", "btmp", path)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, msg, out)
	}
	if !strings.Contains(out, "ban      192.0.2.30       3 failures") || !strings.Contains(out, "3 btmp records") {
		t.Errorf("output:\n%s", out)
	}
}

func TestReplayErrors(t *testing.T) {
	dir := replayConfig(t, replayJailConf)
	log := replayLog(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown jail", []string{"--config", dir, "--jail", "nope", log}, `no jail "nope" in ` + dir + " (jails: broken, btmp, sshd)"},
		{"no --jail", []string{"--config", dir, log}, `required flag(s) "jail" not set`},
		{"missing log", []string{"--config", dir, "--jail", "sshd", "/nonexistent/auth.log"}, "log /nonexistent/auth.log: no such file"},
		{"log is a directory", []string{"--config", dir, "--jail", "sshd", dir}, "is a directory"},
		{"broken jail", []string{"--config", dir, "--jail", "broken", log}, filepath.Join(dir, "jail.conf") + ":"},
		{"no configuration", []string{"--config", t.TempDir(), "--jail", "sshd", log}, "no jail.conf"},
		{"bad --now", []string{"--config", dir, "--jail", "sshd", "--now", "yesterday", log}, "--now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, code, msg := runReplayCmd(t, tt.args...)
			if code != 2 || !strings.Contains(msg, tt.want) {
				t.Errorf("exit %d, message %q; want exit 2 and %q", code, msg, tt.want)
			}
			if strings.Contains(msg, "logjail-replay-") {
				t.Errorf("message names the temporary directory: %q", msg)
			}
		})
	}
}
