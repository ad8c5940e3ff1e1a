package config

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests read the fail2ban configuration installed on the machine (Debian's package puts
// it in /etc/fail2ban) and compare what this package resolves with what fail2ban's own reader
// resolves. They run when LOGJAIL_F2B=1 (CI installs fail2ban and sets it); then a missing
// installation is a failure, not a skip.

const stockDir = "/etc/fail2ban"

func requireStock(t *testing.T) string {
	t.Helper()
	if os.Getenv("LOGJAIL_F2B") != "1" {
		t.Skip("set LOGJAIL_F2B=1 to test against the installed fail2ban configuration")
	}
	if _, err := os.Stat(filepath.Join(stockDir, "jail.conf")); err != nil {
		t.Fatalf("LOGJAIL_F2B=1 but the fail2ban configuration is missing: %v", err)
	}
	return stockDir
}

// brokenStock are the files of Debian's filter.d that are not usable as filters on their own,
// and why. LoadFilter must report an error for each (and for no other file).
var brokenStock = map[string]string{
	"apache-common":    "include-only fragment: [DEFAULT] variables, no [Definition]",
	"botsearch-common": "include-only fragment: no failregex",
	"common":           "include-only fragment: the shared prefixes",
	"exim-common":      "include-only fragment: no failregex",
	"selinux-common":   "fragment: its failregex uses %(_type)s etc. that only selinux-ssh defines",
}

func stockFilterNames(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "filter.d", "*.conf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no filters in %s/filter.d: %v", dir, err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".conf"))
	}
	return names
}

func TestStockFiltersLoad(t *testing.T) {
	dir := requireStock(t)
	for _, name := range stockFilterNames(t, dir) {
		t.Run(name, func(t *testing.T) {
			def, diags := LoadFilter(dir, name, nil)
			errs := diags.Errors()
			if why, broken := brokenStock[name]; broken {
				if len(errs) == 0 {
					t.Errorf("LoadFilter(%q) has no error, but it is listed as broken (%s)", name, why)
				}
				return
			}
			for _, d := range diags {
				t.Errorf("LoadFilter(%q): %v", name, d)
			}
			if def == nil || len(def.FailRegex) == 0 {
				t.Fatalf("LoadFilter(%q) gave no failregex", name)
			}
			for _, v := range def.FailRegex {
				if v.Pos.File == "" || v.Pos.Line == 0 {
					t.Errorf("failregex %q has no position", v.Text)
				}
			}
		})
	}
}

// engineTag matches what the regex engine expands itself; any other name in <...> must have
// been substituted. (Text such as <[^.]+\.[^.]+> is regex syntax, not a tag name.)
var (
	engineTag = regexp.MustCompile(`^(?:HOST|ADDR|IP4|IP6|DNS|CIDR|SUBNET|SKIPLINES|/?F-[A-Za-z0-9_-]+/?)$`)
	tagName   = regexp.MustCompile(`^[A-Za-z_][\w.\-/]*$`)
)

func TestStockSshdModes(t *testing.T) {
	dir := requireStock(t)
	for _, mode := range []string{"normal", "ddos", "extra", "aggressive"} {
		for _, backend := range []string{"auto", "systemd"} {
			t.Run(mode+"/"+backend, func(t *testing.T) {
				def, diags := LoadFilter(dir, "sshd[mode="+mode+"]", map[string]string{"backend": backend})
				if len(diags) != 0 {
					t.Fatalf("LoadFilter: %v", diags)
				}
				all := append(append([]Value{}, def.FailRegex...), *def.PrefRegex)
				for _, v := range all {
					if strings.Contains(v.Text, "%(") {
						t.Errorf("%v: leftover %%( in %q", v.Pos, v.Text)
					}
					// (?P<name>...) and (?(name)...) are regex syntax, not tags.
					text := regexp.MustCompile(`\(\?P<[^>]+>`).ReplaceAllString(v.Text, "(")
					for _, m := range tagRE.FindAllStringSubmatch(text, -1) {
						if tagName.MatchString(m[1]) && !engineTag.MatchString(m[1]) {
							t.Errorf("%v: unknown tag <%s> in %q", v.Pos, m[1], v.Text)
						}
					}
				}
				if mode == "aggressive" && len(def.FailRegex) < 30 {
					t.Errorf("aggressive mode has only %d failregex lines", len(def.FailRegex))
				}
			})
		}
	}
}

// runFail2ban runs testdata/f2b_resolve.py with the Python that has fail2ban installed.
func runFail2ban(t *testing.T, args ...string) []byte {
	t.Helper()
	var python string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import fail2ban").Run() == nil {
			python = path
			break
		}
	}
	if python == "" {
		t.Fatal("LOGJAIL_F2B=1 but no python3 can import fail2ban")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "f2b_resolve.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	return out
}

// resolved is one filter's values in comparable form: fail2ban's lists split on "\n" without
// empty entries (as it sends them to its server).
type resolved map[string][]string

func splitF2B(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func texts(v []Value) []string {
	var out []string
	for _, l := range v {
		out = append(out, l.Text)
	}
	return out
}

func fromDef(def *FilterDef) resolved {
	r := resolved{}
	if def.PrefRegex != nil {
		r["prefregex"] = []string{def.PrefRegex.Text}
	}
	if len(def.FailRegex) > 0 {
		r["failregex"] = texts(def.FailRegex)
	}
	if len(def.IgnoreRegex) > 0 {
		r["ignoreregex"] = texts(def.IgnoreRegex)
	}
	if len(def.DatePattern) > 0 {
		r["datepattern"] = texts(def.DatePattern)
	}
	for _, k := range []string{"journalmatch", "usedns", "maxlines"} {
		if v, ok := def.Vars[k]; ok {
			if l := splitF2B(v.Text); len(l) > 0 {
				r[k] = l
			}
		}
	}
	return r
}

func fromF2B(m map[string]string) resolved {
	r := resolved{}
	for k, v := range m {
		if k == "error" {
			continue
		}
		if l := splitF2B(v); len(l) > 0 {
			r[k] = l
		}
	}
	return r
}

// TestStockMatchesFail2ban compares every stock filter, sshd in every mode and several
// filters with the systemd backend (logtype journal) with fail2ban's own resolution: the
// failregex, prefregex, ignoreregex, datepattern, maxlines, journalmatch and usedns lists must
// be identical.
func TestStockMatchesFail2ban(t *testing.T) {
	dir := requireStock(t)
	var refs []string
	for _, name := range stockFilterNames(t, dir) {
		if _, broken := brokenStock[name]; !broken {
			refs = append(refs, name, name+"@systemd")
		}
	}
	for _, mode := range []string{"normal", "ddos", "extra", "aggressive"} {
		refs = append(refs, "sshd[mode="+mode+"]", "sshd[mode="+mode+"]@systemd")
	}
	refs = append(refs, "sshd[publickey=any, __pam_auth=pam_ldap]", "postfix[mode=rbl]", "postfix[mode=auth]", "apache-pass[knocking_url=/knock/]")

	var want map[string]map[string]string
	if err := json.Unmarshal(runFail2ban(t, append([]string{"filters", dir}, refs...)...), &want); err != nil {
		t.Fatal(err)
	}
	for _, arg := range refs {
		t.Run(arg, func(t *testing.T) {
			ref, backend, _ := strings.Cut(arg, "@")
			f2b := want[arg]
			if f2b["error"] != "" {
				t.Fatalf("fail2ban cannot resolve %s: %s", arg, f2b["error"])
			}
			def, diags := LoadFilter(dir, ref, map[string]string{"backend": backend})
			if errs := diags.Errors(); len(errs) > 0 {
				t.Fatalf("LoadFilter(%q): %v", ref, errs)
			}
			if diff := cmp.Diff(fromF2B(f2b), fromDef(def)); diff != "" {
				t.Errorf("LoadFilter(%q) differs from fail2ban (-fail2ban +logjail):\n%s", arg, diff)
			}
		})
	}
}

// TestStockLoad loads the whole stock configuration.
func TestStockLoad(t *testing.T) {
	dir := requireStock(t)
	cfg, diags := Load(dir)
	for _, d := range diags.Errors() {
		t.Errorf("Load: %v", d)
	}
	byName := map[string]*Jail{}
	for _, j := range cfg.Jails {
		byName[j.Name] = j
	}
	sshd := byName["sshd"]
	if sshd == nil {
		t.Fatalf("no sshd jail among %d", len(cfg.Jails))
	}
	type summary struct {
		Enabled           bool
		FilterRef         string
		LogPath           []string
		Backend           string
		MaxRetry          int
		MaxMatches        int
		FindTime, BanTime time.Duration
		UseDNS            string
		Port, Protocol    string
		Chain, BlockType  string
		BanAction         string
		Actions           []string
		IgnoreSelf        bool
	}
	sum := func(j *Jail) summary {
		s := summary{Enabled: j.Enabled, FilterRef: j.FilterRef, LogPath: j.LogPath, Backend: j.Backend,
			MaxRetry: j.MaxRetry, MaxMatches: j.MaxMatches, FindTime: j.FindTime, BanTime: j.BanTime,
			UseDNS: j.UseDNS, Port: j.Port, Protocol: j.Protocol, Chain: j.Chain, BlockType: j.BlockType,
			BanAction: j.BanAction, IgnoreSelf: j.IgnoreSelf}
		for _, a := range j.Actions {
			s.Actions = append(s.Actions, a.Name)
		}
		return s
	}
	want := summary{
		Enabled: true, FilterRef: "sshd[mode=normal]", LogPath: []string{"/var/log/auth.log"}, Backend: "auto",
		MaxRetry: 5, MaxMatches: 5, FindTime: 10 * time.Minute, BanTime: 10 * time.Minute, UseDNS: "warn",
		Port: "ssh", Protocol: "tcp", Chain: "INPUT", BlockType: "REJECT", BanAction: "iptables-multiport",
		Actions: []string{"iptables-multiport"}, IgnoreSelf: true,
	}
	if diff := cmp.Diff(want, sum(sshd)); diff != "" {
		t.Errorf("sshd jail mismatch (-want +got):\n%s", diff)
	}
	if sshd.Filter == nil || len(sshd.Filter.FailRegex) == 0 {
		t.Errorf("sshd has no filter")
	}
	if j := byName["recidive"]; j == nil || j.BanTime != 7*24*time.Hour || j.FindTime != 24*time.Hour || j.Enabled {
		t.Errorf("recidive = %+v, want disabled, bantime 1w, findtime 1d", j)
	}
}

// TestStockJailsMatchFail2ban compares every stock jail, each loaded as if enabled, with
// fail2ban's JailsReader(force_enable=True): options, the resolved filter lists (with the
// jail's own overrides) and the parsed action references.
func TestStockJailsMatchFail2ban(t *testing.T) {
	compareJailsWithFail2ban(t, requireStock(t), "jails")
}

// TestFixturesMatchFail2ban checks that fail2ban reads the valid fixtures (those that use no
// logjail extension) the way Load does.
func TestFixturesMatchFail2ban(t *testing.T) {
	requireStock(t)
	dirs, err := filepath.Glob(filepath.Join(fixtureDir, "valid", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			compareJailsWithFail2ban(t, abs, "jails-noactions")
		})
	}
}

// compareJailsWithFail2ban compares Load (every jail forced on) with fail2ban's reading of
// dir. Where fail2ban has no action (no action key in jail.conf's DEFAULT), logjail's built-in
// default action is not compared.
func compareJailsWithFail2ban(t *testing.T, dir, mode string) {
	t.Helper()
	var want map[string]struct {
		Resolved map[string]string    `json:"resolved"`
		Actions  [][2]json.RawMessage `json:"actions"`
		Error    string               `json:"error"`
	}
	raw := runFail2ban(t, mode, dir)
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	var opts map[string]map[string]any
	if err := json.Unmarshal(raw, &opts); err != nil {
		t.Fatal(err)
	}
	cfg, diags := load(osFS{}, dir, loadOptions{forceEnable: true})
	for _, d := range diags.Errors() {
		t.Errorf("load: %v", d)
	}
	got := map[string]*Jail{}
	var names []string
	for _, j := range cfg.Jails {
		got[j.Name] = j
		names = append(names, j.Name)
	}
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	sort.Strings(names)
	sort.Strings(wantNames)
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("jail names differ (-fail2ban +logjail):\n%s", diff)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			w, j := want[name], got[name]
			if w.Error != "" {
				t.Fatalf("fail2ban: %s", w.Error)
			}
			// Options: compare the resolved text of what fail2ban read.
			o := opts[name]
			for _, k := range []string{"backend", "bantime", "filter", "findtime", "ignorecommand", "logencoding", "logpath", "maxmatches", "maxretry", "usedns", "action"} {
				wv, ok := o[k].(string)
				if !ok || (k == "action" && wv == "") {
					continue
				}
				gv, ok := j.Vars[k]
				if !ok {
					t.Errorf("%s: missing (fail2ban: %q)", k, wv)
					continue
				}
				if diff := cmp.Diff(splitF2B(wv), splitF2B(gv.Text)); diff != "" {
					t.Errorf("%s differs (-fail2ban +logjail):\n%s", k, diff)
				}
			}
			if j.Filter == nil {
				t.Fatalf("no filter")
			}
			gotRes := fromDef(j.Filter)
			if _, ok := w.Resolved["usedns"]; ok {
				gotRes["usedns"] = []string{j.UseDNS}
			}
			if diff := cmp.Diff(fromF2B(w.Resolved), gotRes); diff != "" {
				t.Errorf("filter differs (-fail2ban +logjail):\n%s", diff)
			}
			var wantActs, gotActs []ActionRef
			for _, a := range w.Actions {
				var n string
				var op map[string]string
				if err := json.Unmarshal(a[0], &n); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(a[1], &op); err != nil {
					t.Fatal(err)
				}
				if len(op) == 0 {
					op = nil
				}
				wantActs = append(wantActs, ActionRef{Name: n, Options: op})
			}
			if o["action"] != "" {
				for _, a := range j.Actions {
					gotActs = append(gotActs, ActionRef{Name: a.Name, Options: a.Options})
				}
			}
			if diff := cmp.Diff(wantActs, gotActs); diff != "" {
				t.Errorf("actions differ (-fail2ban +logjail):\n%s", diff)
			}
		})
	}
}
