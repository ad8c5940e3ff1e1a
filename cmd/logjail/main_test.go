package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// run executes one logjail command line with a fresh command tree and returns its output, the
// exit status main would use, and the error message.
func run(t *testing.T, args ...string) (string, int, string) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
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

const repo = "../.."

func TestRegexErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantMsg string
	}{
		{"missing log", []string{"regex", "--config", repo, "/nonexistent/auth.log", "sshd"}, "/nonexistent/auth.log: no such file"},
		{"log is a directory", []string{"regex", "--config", repo, repo, "sshd"}, "is a directory"},
		{"unknown filter", []string{"regex", "--config", repo, "../../testdata/filters/sshd.log", "nosuch"}, `unknown filter "nosuch"`},
		{"missing filter file", []string{"regex", "--config", repo, "../../testdata/filters/sshd.log", "/nonexistent/x.conf"}, "/nonexistent/x.conf"},
		{"invalid regex", []string{"regex", "../../testdata/filters/sshd.log", `^Failed (from <HOST>`}, "missing closing ) at column 9"},
		{"no host group", []string{"regex", "../../testdata/filters/sshd.log", `^Failed password for \S+`}, "no host group"},
		{"bad usedns", []string{"regex", "--usedns", "maybe", "x y", `from <HOST>`}, "usedns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, code, msg := run(t, tt.args...)
			if code != 2 || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("exit %d, message %q; want exit 2 and %q", code, msg, tt.wantMsg)
			}
			if strings.Contains(msg, "goroutine") || strings.Contains(msg, "panic") {
				t.Errorf("message looks like a crash: %s", msg)
			}
		})
	}
}

type jsonDoc struct {
	Lines   int `json:"lines"`
	Matched int `json:"matched"`
	Ignored int `json:"ignored"`
	Missed  int `json:"missed"`
	NoDate  int `json:"no_date"`
	Matches []struct {
		Line int    `json:"line"`
		Host string `json:"host"`
		IP   string `json:"ip"`
		Time string `json:"time"`
		User string `json:"user"`
	} `json:"matches"`
}

func TestRegexJSON(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	lines := "Nov 22 13:42:01 web1 sshd[811]: Failed password for root from 192.0.2.7 port 4242 ssh2\n" +
		"Nov 22 13:42:02 web1 sshd[811]: Accepted publickey for admin from 198.51.100.1 port 4243 ssh2\n" +
		"garbage without a date\n" +
		"Nov 22 13:42:03 web1 sshd[812]: Invalid user oracle from ::ffff:203.0.113.9 port 4244\n"
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code, msg := run(t, "regex", "--config", repo, "--json", "--now", "2026-11-22T14:00:00Z", log, "sshd")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	var doc jsonDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not one JSON document: %v\n%s", err, out)
	}
	want := jsonDoc{Lines: 4, Matched: 2, Missed: 2, NoDate: 1}
	want.Matches = append(want.Matches, doc.Matches...)
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if len(doc.Matches) != 2 {
		t.Fatalf("matches = %+v", doc.Matches)
	}
	m := doc.Matches[1]
	if m.Line != 4 || m.Host != "203.0.113.9" || m.IP != "203.0.113.9" || m.User != "oracle" || m.Time != "2026-11-22T13:42:03Z" {
		t.Errorf("second match = %+v", m)
	}
}

func TestRegexLiteralLineAndHuman(t *testing.T) {
	out, code, msg := run(t, "regex", "--config", repo, "--print-matched",
		`Nov 22 13:42:01 web1 sshd[811]: Failed password for root from 192.0.2.7 port 4242 ssh2`, "sshd[mode=aggressive]")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	for _, want := range []string{"matched 1:", "Lines: 1 lines, 0 ignored, 1 matched, 0 missed", "192.0.2.7", "Date formats found", "lines/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRegexBtmp(t *testing.T) {
	out, code, msg := run(t, "regex", "--config", repo, "--json", "../../internal/source/testdata/btmp.sample", "btmp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	var doc jsonDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Lines != 5 || doc.Matched != 5 {
		t.Errorf("btmp: lines %d matched %d, want 5 records all matched", doc.Lines, doc.Matched)
	}
}

func TestCheck(t *testing.T) {
	out, code, msg := run(t, "check", "--config", repo)
	if code != 0 {
		t.Fatalf("check of the shipped config: exit %d: %s\n%s", code, msg, out)
	}
	if !strings.Contains(out, "[sshd]") || !strings.Contains(out, "0 errors") {
		t.Errorf("output:\n%s", out)
	}

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"jail.conf":            "[DEFAULT]\nbantime = 10m\n\n[web]\nenabled = true\nfilter = nohost\nlogpath = /var/log/x.log\nmaxretry = 5 # five\n",
		"filter.d/nohost.conf": "[Definition]\nfailregex = ^login failed for \\S+$\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, code, _ = run(t, "check", "--config", dir)
	if code != 1 {
		t.Fatalf("check of a broken config: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"jail.conf:8", "';'", "nohost.conf:2", "no host group"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}
