package config

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/config/valid")

const fixtureDir = "../../testdata/config"

// TestFixtures loads every case of testdata/config (see its README.md).
func TestFixtures(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		dirs, err := filepath.Glob(filepath.Join(fixtureDir, "valid", "*"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, dir := range dirs {
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				continue
			}
			n++
			t.Run(filepath.Base(dir), func(t *testing.T) {
				cfg, diags := Load(dir)
				mustNoErrors(t, diags)
				got := dumpConfig(dir, cfg)
				golden := dir + ".golden"
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), got); diff != "" {
					t.Errorf("Load(%s) differs from %s (-want +got):\n%s", dir, golden, diff)
				}
			})
		}
		if n == 0 {
			t.Fatal("no valid fixtures")
		}
	})
	t.Run("invalid", func(t *testing.T) {
		cases, err := filepath.Glob(filepath.Join(fixtureDir, "invalid", "*"))
		if err != nil || len(cases) == 0 {
			t.Fatalf("no invalid fixtures: %v", err)
		}
		for _, c := range cases {
			t.Run(filepath.Base(c), func(t *testing.T) {
				st, err := os.Stat(c)
				if err != nil {
					t.Fatal(err)
				}
				var main string
				var diags Diags
				if st.IsDir() {
					main = filepath.Join(c, "jail.conf")
					_, diags = Load(c)
				} else {
					main = c
					_, diags = LoadFilterFile(c, nil)
				}
				exp := readExpectations(t, main)
				base := c
				if !st.IsDir() {
					base = filepath.Dir(c)
				}
				wantPos := Pos{File: filepath.Join(base, exp.file), Line: exp.line}
				sev := Error
				if exp.warn {
					sev = Warning
					if errs := diags.Errors(); len(errs) > 0 {
						t.Errorf("want only warnings, got errors: %v", errs)
					}
				} else if diags.Err() == nil {
					t.Errorf("want an error, Diags.Err() is nil")
				}
				for _, d := range diags {
					if d.Severity == sev && strings.Contains(d.Msg, exp.text) && d.Pos == wantPos {
						return
					}
				}
				t.Errorf("no %v containing %q at %v; got:\n%s", sev, exp.text, wantPos, strings.Join(diagStrings(diags), "\n"))
			})
		}
	})
}

type expectation struct {
	text string
	warn bool
	file string
	line int
}

// readExpectations reads the "# wantErr:", "# wantWarn:" and "# wantPos:" header lines.
func readExpectations(t *testing.T, path string) expectation {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var e expectation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "#") {
			break
		}
		k, v, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(l, "#")), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "wantErr":
			e.text = v
		case "wantWarn":
			e.text, e.warn = v, true
		case "wantPos":
			i := strings.LastIndexByte(v, ':')
			if i < 0 {
				t.Fatalf("%s: bad wantPos %q", path, v)
			}
			e.file = v[:i]
			if _, err := fmt.Sscan(v[i+1:], &e.line); err != nil {
				t.Fatalf("%s: bad wantPos %q", path, v)
			}
		}
	}
	if e.text == "" || e.file == "" {
		t.Fatalf("%s: needs '# wantErr:' (or '# wantWarn:') and '# wantPos:' header lines", path)
	}
	return e
}

// dumpConfig renders a loaded configuration for golden files, paths relative to dir.
func dumpConfig(dir string, cfg *Config) string {
	rel := func(p Pos) string {
		p.File = strings.TrimPrefix(p.File, dir+string(filepath.Separator))
		return p.String()
	}
	var b strings.Builder
	for _, j := range cfg.Jails {
		state := "disabled"
		if j.Enabled {
			state = "enabled"
		}
		fmt.Fprintf(&b, "jail %s (%s) at %s\n", j.Name, state, rel(j.Pos))
		fmt.Fprintf(&b, "  filter %s\n", j.FilterRef)
		for _, p := range j.LogPath {
			fmt.Fprintf(&b, "  logpath %s\n", p)
		}
		bantime := j.BanTime.String()
		if j.BanTime == Forever {
			bantime = "forever"
		}
		fmt.Fprintf(&b, "  backend %s, maxretry %d, maxmatches %d, findtime %v, bantime %s, usedns %s\n",
			j.Backend, j.MaxRetry, j.MaxMatches, j.FindTime, bantime, j.UseDNS)
		fmt.Fprintf(&b, "  ignoreip %q, ignoreself %v\n", j.IgnoreIP, j.IgnoreSelf)
		fmt.Fprintf(&b, "  port %s, protocol %s, chain %s, blocktype %s, banaction %s\n", j.Port, j.Protocol, j.Chain, j.BlockType, j.BanAction)
		for _, a := range j.Actions {
			var opts []string
			for _, k := range sortedKeys(a.Options) {
				opts = append(opts, fmt.Sprintf("%s=%q", k, a.Options[k]))
			}
			fmt.Fprintf(&b, "  action %s [%s] at %s\n", a.Name, strings.Join(opts, " "), rel(a.Pos))
		}
		if f := j.Filter; f != nil {
			fmt.Fprintf(&b, "  filter file %s, options %v, maxlines %d\n", strings.TrimPrefix(f.File, dir+"/"), f.Options, f.MaxLines)
			if f.PrefRegex != nil {
				fmt.Fprintf(&b, "    prefregex %s: %s\n", rel(f.PrefRegex.Pos), f.PrefRegex.Text)
			}
			for _, group := range []struct {
				name string
				v    []Value
			}{{"failregex", f.FailRegex}, {"ignoreregex", f.IgnoreRegex}, {"datepattern", f.DatePattern}} {
				for _, v := range group.v {
					fmt.Fprintf(&b, "    %s %s: %s\n", group.name, rel(v.Pos), v.Text)
				}
			}
		}
	}
	ds := append(Diags{}, cfg.Diags...)
	sort.SliceStable(ds, func(i, k int) bool { return ds[i].Pos.String() < ds[k].Pos.String() })
	for _, d := range ds {
		d.Pos.File = strings.TrimPrefix(d.Pos.File, dir+"/")
		fmt.Fprintf(&b, "diag %s\n", d)
	}
	return b.String()
}
