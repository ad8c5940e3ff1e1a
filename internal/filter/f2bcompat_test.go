package filter_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
)

// The fail2ban compatibility test runs fail2ban's own stock filters, read by logjail, over
// fail2ban's own sample logs, and compares every line's verdict and host with what fail2ban-regex
// (Debian's fail2ban package) says about the same file. It needs fail2ban installed: it runs only
// with LOGJAIL_F2B=1 (CI sets it and installs fail2ban) and fails, never skips, when that is set
// and fail2ban is missing.

const (
	f2bConfDir = "/etc/fail2ban"
	f2bLogsDir = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs"
)

// f2bDeliberate tells the lines on which logjail deliberately differs from fail2ban, by the
// host fail2ban reports. fail2ban takes "192.030.0.6" for an address; logjail refuses leading
// zeros (some parsers read 030 as octal 24, so which host it names is unclear).
func f2bDeliberate(host string) bool {
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil {
		return true // fail2ban reports a "host" that is no valid address
	}
	return false
}

func requireF2B(t *testing.T) {
	t.Helper()
	if os.Getenv("LOGJAIL_F2B") != "1" {
		t.Skip("set LOGJAIL_F2B=1 (with Debian's fail2ban installed) to compare with fail2ban-regex")
	}
	if _, err := exec.LookPath("fail2ban-regex"); err != nil {
		t.Fatal("LOGJAIL_F2B=1 but fail2ban-regex is not installed")
	}
	if _, err := os.Stat(f2bLogsDir); err != nil {
		t.Fatalf("LOGJAIL_F2B=1 but fail2ban's sample logs are missing: %v", err)
	}
}

// f2bOptionSets returns every distinct filterOptions set a fail2ban sample log names, as
// "k=v,k2=v2" strings ("" for none).
func f2bOptionSets(t *testing.T, data []byte) []string {
	sets := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "# filterOptions:") {
			continue
		}
		v := strings.TrimSpace(strings.TrimPrefix(line, "# filterOptions:"))
		var list []map[string]string
		if strings.HasPrefix(v, "{") {
			var one map[string]string
			if err := json.Unmarshal([]byte(v), &one); err != nil {
				t.Logf("skip filterOptions %q: %v", v, err)
				continue
			}
			list = append(list, one)
		} else if err := json.Unmarshal([]byte(v), &list); err != nil {
			t.Logf("skip filterOptions %q: %v", v, err)
			continue
		}
		for _, o := range list {
			var kv []string
			for k, val := range o {
				if strings.HasPrefix(k, "test.") {
					continue
				}
				kv = append(kv, k+"="+val)
			}
			sort.Strings(kv)
			sets[strings.Join(kv, ",")] = true
		}
	}
	if len(sets) == 0 {
		sets[""] = true
	}
	out := make([]string, 0, len(sets))
	for s := range sets {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// logLines returns the log lines of a fail2ban sample (comments and blank lines dropped).
func logLines(data []byte) []string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// f2bPython is the interpreter fail2ban-regex runs on (its #! line), which can import fail2ban.
func f2bPython(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if !strings.HasPrefix(first, "#!") {
		t.Fatalf("%s has no #! line", path)
	}
	return strings.Fields(strings.TrimPrefix(first, "#!"))[0]
}

// f2bVerdicts runs fail2ban-regex's own per-line test (testdata/f2b_verdicts.py: fail2ban-regex
// with `-o ip`, printing per line) and returns, per 0-based line index, the host it reported.
func f2bVerdicts(t *testing.T, logPath, ref string, lines []string) map[int]string {
	t.Helper()
	cmd := exec.Command(f2bPython(t), "testdata/f2b_verdicts.py", logPath, ref)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fail2ban-regex %s %s: %v\n%s", logPath, ref, err, stderr.String())
	}
	got := map[int]string{}
	n := 0
	for _, row := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec []json.RawMessage
		if err := json.Unmarshal([]byte(row), &rec); err != nil || len(rec) != 2 {
			t.Fatalf("fail2ban verdict row %q: %v", row, err)
		}
		var no int
		var hosts []string
		if json.Unmarshal(rec[0], &no) != nil || json.Unmarshal(rec[1], &hosts) != nil {
			t.Fatalf("fail2ban verdict row %q", row)
		}
		n++
		if len(hosts) > 0 {
			got[no-1] = hosts[0]
		}
	}
	if n != len(lines) {
		t.Fatalf("fail2ban judged %d lines, the log has %d", n, len(lines))
	}
	return got
}

func TestFail2banStockFiltersAgree(t *testing.T) {
	requireF2B(t)
	logs, err := filepath.Glob(filepath.Join(f2bLogsDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	total, agree, deliberate := 0, 0, 0
	for _, logPath := range logs {
		name := filepath.Base(logPath)
		fi, err := os.Stat(logPath)
		if err != nil || fi.IsDir() {
			continue
		}
		conf := filepath.Join(f2bConfDir, "filter.d", name+".conf")
		if _, err := os.Stat(conf); err != nil {
			continue // a sample of a filter Debian does not ship, or a test-only log
		}
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		lines := logLines(data)
		clean := filepath.Join(tmp, name+".log")
		if err := os.WriteFile(clean, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		sets := f2bOptionSets(t, data)
		if name == "sshd" {
			sets = []string{"", "mode=normal", "mode=ddos", "mode=extra", "mode=aggressive"}
		}
		for _, opts := range sets {
			ref := name
			if opts != "" {
				ref = fmt.Sprintf("%s[%s]", name, opts)
			}
			t.Run(ref, func(t *testing.T) {
				want := f2bVerdicts(t, clean, conf+strings.TrimPrefix(ref, name), lines)
				def, diags := config.LoadFilter(f2bConfDir, ref, nil)
				if err := diags.Err(); err != nil {
					t.Fatalf("load %s: %v", ref, err)
				}
				f, err := filter.New(def, filter.Options{})
				if err != nil {
					t.Fatalf("compile %s: %v", ref, err)
				}
				m := f.NewMatcher()
				now := time.Now()
				for i, l := range lines {
					res := m.Process(l, now)
					got := ""
					if res.Verdict == filter.Matched {
						got = res.Failures[0].Addr.String()
						if !res.Failures[0].Addr.IsValid() {
							got = res.Failures[0].ID
						}
					}
					w, wok := want[i]
					total++
					if wok && f2bDeliberate(w) && got == "" {
						deliberate++
						continue
					}
					if wok {
						if a, err := netip.ParseAddr(strings.Trim(w, "[]")); err == nil {
							w = a.Unmap().String()
						}
					}
					if w != got {
						t.Errorf("%s line %d: fail2ban %q, logjail %q: %s", ref, i+1, w, got, l)
						continue
					}
					agree++
				}
			})
		}
	}
	t.Logf("%d line verdicts compared, %d agree, %d deliberate differences (host fail2ban accepts but is no valid address)", total, agree, deliberate)
}
