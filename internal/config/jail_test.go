package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testFilter = "[Definition]\nfailregex = ^fail from <HOST>$\n"

func loadMap(t *testing.T, files mapFS) (*Config, Diags) {
	t.Helper()
	if _, ok := files["/c/filter.d/t.conf"]; !ok {
		files["/c/filter.d/t.conf"] = testFilter
	}
	return load(files, "/c", loadOptions{})
}

func jailByName(t *testing.T, cfg *Config, name string) *Jail {
	t.Helper()
	for _, j := range cfg.Jails {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no jail %q", name)
	return nil
}

func TestJailBuiltinDefaults(t *testing.T) {
	cfg, diags := loadMap(t, mapFS{"/c/jail.conf": "[t]\nenabled = true\nlogpath = /var/log/t.log\n"})
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	j := jailByName(t, cfg, "t")
	j.Vars, j.Filter = nil, nil
	want := &Jail{
		Name: "t", Pos: Pos{File: "/c/jail.conf", Line: 1}, Enabled: true, FilterRef: "t",
		LogPath: []string{"/var/log/t.log"}, LogEncoding: "auto", Backend: "auto",
		MaxRetry: 5, MaxMatches: 5, FindTime: 10 * time.Minute, BanTime: 10 * time.Minute,
		BanTimeIncrement: BanTimeIncrement{Factor: 1},
		IgnoreSelf:       true, UseDNS: "no", Port: "0:65535", Protocol: "tcp", Chain: "INPUT", BlockType: "REJECT",
		BanAction:  "iptables-multiport",
		Actions:    []ActionRef{{Name: "iptables-multiport", Options: map[string]string{"port": "0:65535", "protocol": "tcp", "chain": "INPUT"}}},
		Subnet:     SubnetLimit{FindTime: 10 * time.Minute, Prefix4: 24, Prefix6: 64},
		DBPurgeAge: 30 * 24 * time.Hour, MaxTracked: 100000,
	}
	if diff := cmp.Diff(want, j, cmpopts.IgnoreFields(ActionRef{}, "Pos")); diff != "" {
		t.Errorf("jail mismatch (-want +got):\n%s", diff)
	}
}

func TestJailLayering(t *testing.T) {
	files := mapFS{
		"/c/jail.conf":       "[DEFAULT]\nmaxretry = 1\nbantime = 1m\nfindtime = 1m\n[t]\nenabled = true\nlogpath = /l\n",
		"/c/jail.d/b.conf":   "[DEFAULT]\nmaxretry = 2\nbantime = 2m\n",
		"/c/jail.d/a.conf":   "[DEFAULT]\nmaxretry = 3\nbantime = 3m\nfindtime = 3m\n",
		"/c/jail.local":      "[DEFAULT]\nmaxretry = 4\n",
		"/c/jail.d/z.local":  "[t]\nmaxretry = %(known/maxretry)s0\n",
		"/c/jail.d/a.local":  "[t]\nmaxretry = 6\n",
		"/c/jail.d/skip.txt": "[t]\nmaxretry = 99\n",
	}
	cfg, diags := loadMap(t, files)
	mustNoErrors(t, diags)
	j := jailByName(t, cfg, "t")
	// conf < jail.d/*.conf (a, b) < jail.local < jail.d/*.local (a, z); z's known/ is a's 6.
	got := []any{j.MaxRetry, j.BanTime, j.FindTime, j.Vars["maxretry"].Pos.String()}
	want := []any{60, 2 * time.Minute, 3 * time.Minute, "/c/jail.d/z.local:2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layering mismatch (-want +got):\n%s", diff)
	}
}

func TestJailDefaultInheritance(t *testing.T) {
	files := mapFS{
		"/c/jail.conf": dedent(`
			[DEFAULT]
			mode = normal
			filter = %(__name__)s[mode=%(mode)s]
			logpath = /var/log/%(__name__)s.log
			port = 0:65535
			action = %(banaction)s[name=%(__name__)s, port="%(port)s"]
			banaction = nftables
			[t]
			enabled = true
			mode = extra
			port = ssh,2222
		`),
		"/c/filter.d/t.conf": "[Definition]\nmode = normal\nfailregex = ^%(mode)s <HOST>$\n",
	}
	cfg, diags := loadMap(t, files)
	mustNoErrors(t, diags)
	j := jailByName(t, cfg, "t")
	got := []any{j.FilterRef, j.LogPath, texts(j.Filter.FailRegex), j.Actions[0].Name, j.Actions[0].Options}
	want := []any{"t[mode=extra]", []string{"/var/log/t.log"}, []string{"^extra <HOST>$"}, "nftables", map[string]string{"name": "t", "port": "ssh,2222"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestJailOverridesFilter(t *testing.T) {
	files := mapFS{
		"/c/jail.conf": dedent(`
			[DEFAULT]
			usedns = warn
			[t]
			enabled = true
			logpath = /l
			failregex = %(known/failregex)s
			            ^also <pfx> <HOST>$
			maxlines = 2
			[u]
			enabled = true
			logpath = /l
			filter = u
		`),
		"/c/filter.d/t.conf": "[Definition]\npfx = P\nfailregex = ^one <HOST>$\n",
		"/c/filter.d/u.conf": "[Definition]\nfailregex = ^u <HOST>$\nusedns = raw\n",
	}
	cfg, diags := loadMap(t, files)
	mustNoErrors(t, diags)
	j := jailByName(t, cfg, "t")
	if diff := cmp.Diff([]string{"/c/filter.d/t.conf:3 ^one <HOST>$", "/c/jail.conf:7 ^also P <HOST>$"}, linesAt(j.Filter.FailRegex)); diff != "" {
		t.Errorf("failregex mismatch (-want +got):\n%s", diff)
	}
	if j.Filter.MaxLines != 2 || j.UseDNS != "warn" {
		t.Errorf("maxlines, usedns = %d, %q; want 2, warn", j.Filter.MaxLines, j.UseDNS)
	}
	// The jail configuration's DEFAULT usedns wins over the filter's, as in fail2ban.
	if u := jailByName(t, cfg, "u"); u.UseDNS != "warn" {
		t.Errorf("u usedns = %q, want warn", u.UseDNS)
	}
}

func TestJailUseDNSFromFilter(t *testing.T) {
	files := mapFS{
		"/c/jail.conf":       "[t]\nenabled = true\nlogpath = /l\n",
		"/c/filter.d/t.conf": "[Definition]\nfailregex = x <HOST>\nusedns = raw\n",
	}
	cfg, diags := loadMap(t, files)
	mustNoErrors(t, diags)
	if j := jailByName(t, cfg, "t"); j.UseDNS != "raw" {
		t.Errorf("usedns = %q, want raw (the filter's)", j.UseDNS)
	}
}

func TestJailIgnoreIP(t *testing.T) {
	cfg, diags := loadMap(t, mapFS{"/c/jail.conf": "[t]\nenabled = true\nlogpath = /l\nignoreip = 127.0.0.1/8 ::1,\n    192.0.2.7 gw.example.net\n"})
	mustNoErrors(t, diags)
	j := jailByName(t, cfg, "t")
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.0.2.7/32")}
	if diff := cmp.Diff(want, j.IgnoreNets, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("IgnoreNets mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"gw.example.net"}, j.IgnoreHosts); diff != "" {
		t.Errorf("IgnoreHosts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`/c/jail.conf:5: warning: [t] ignoreip: "gw.example.net" is a host name: it needs a DNS lookup, and an address it gets later is not ignored`}, diagStrings(diags)); diff != "" {
		t.Errorf("diags mismatch (-want +got):\n%s", diff)
	}
}

// TestJailValueErrors checks that every bad value is an error naming its file, line and key.
func TestJailValueErrors(t *testing.T) {
	tests := []struct {
		line string // written on line 4 of the jail section
		want string
	}{
		{"maxretry = 5 # five", `/c/jail.conf:4: error: [t] maxretry: invalid integer "5 # five"; inline comments start with ';' in this format`},
		{"maxretry = 0", `/c/jail.conf:4: error: [t] maxretry: must be at least 1, not 0`},
		{"findtime = 10 mins", `/c/jail.conf:4: error: [t] findtime: invalid duration "10 mins": unknown unit "mins" (use s, m, h, d, w, mo or y)`},
		{"findtime = 0", `/c/jail.conf:4: error: [t] findtime: must be positive`},
		{"findtime = -1", `/c/jail.conf:4: error: [t] findtime: cannot be negative (forever)`},
		{"bantime = 1 fortnight", `/c/jail.conf:4: error: [t] bantime: invalid duration "1 fortnight": unknown unit "fortnight" (use s, m, h, d, w, mo or y)`},
		{"ignoreself = maybe", `/c/jail.conf:4: error: [t] ignoreself: invalid boolean "maybe" (use true/false, yes/no, on/off or 1/0)`},
		{"ignoreip = 10.0.0.0/33", `/c/jail.conf:4: error: [t] ignoreip: invalid prefix length in "10.0.0.0/33" (0..32)`},
		{"usedns = sometimes", `/c/jail.conf:4: error: [t] usedns: invalid usedns "sometimes" (use yes, warn, no or raw)`},
		{"backend = journald", `/c/jail.conf:4: error: [t] backend: unknown backend "journald" (use auto, polling, inotify or systemd)`},
		{"port = ssh, 70000", `/c/jail.conf:4: error: [t] port: invalid port "70000" in "ssh, 70000" (want numbers, ranges like 1000:2000 or service names, comma-separated)`},
		{"port = 22 # ssh", `/c/jail.conf:4: error: [t] port: invalid port "22 # ssh"; inline comments start with ';' in this format`},
		{"protocol = tcpp", `/c/jail.conf:4: error: [t] protocol: unknown protocol "tcpp" (use tcp, udp, sctp, icmp or all)`},
		{"logpath = /var/log/x.log # main log", `/c/jail.conf:4: error: [t] logpath: invalid log path "/var/log/x.log # main log"; inline comments start with ';' in this format`},
		{"action = iptables[name=x", `/c/jail.conf:4: error: [t] action: invalid action "iptables[name=x": missing ']' after options`},
		{"subnet.prefix4 = 33", `/c/jail.conf:4: error: [t] subnet.prefix4: invalid prefix length "33" (0..32)`},
		{"maxtracked = lots", `/c/jail.conf:4: error: [t] maxtracked: invalid integer "lots"`},
		{"bantime.factor = -2", `/c/jail.conf:4: error: [t] bantime.factor: invalid factor "-2": want a positive number`},
		{"filter = t[mode=x", `/c/jail.conf:4: error: [t] filter: bad filter reference "t[mode=x": missing ']' after options`},
		{"filter = nosuch", `/c/jail.conf:4: error: [t] filter: filter "nosuch" not found: no /c/filter.d/nosuch.conf`},
		{"maxretry = %(nope)s", `/c/jail.conf:4: error: [t] maxretry: %(nope)s is not defined`},
		{"filter = t # the t filter", `/c/jail.conf:4: error: [t] filter: bad filter reference "t # the t filter": name "t # the t filter" contains spaces (a list of several names?); inline comments start with ';' in this format`},
		{"enabled = sure", `/c/jail.conf:4: error: [t] enabled: invalid boolean "sure" (use true/false, yes/no, on/off or 1/0)`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			text := "[DEFAULT]\nlogpath = /l\n[t]\n" + tt.line + "\n"
			if !strings.HasPrefix(tt.line, "enabled") {
				text += "enabled = true\n"
			}
			files := mapFS{"/c/jail.conf": text}
			_, diags := loadMap(t, files)
			var got []string
			for _, d := range diags.Errors() {
				got = append(got, d.String())
			}
			if diff := cmp.Diff([]string{tt.want}, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJailNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"sshd", true},
		{"apache-fakegooglebot", true}, // 20, the longest stock name
		{"a_b-C9", true},
		{"apache-fakegooglebot2", false},
		{"a.b", false},
		{"a b", false},
		{"ünï", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkJailName(tt.name); (err == nil) != tt.ok {
				t.Errorf("checkJailName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestJailUnknownKeys(t *testing.T) {
	files := mapFS{
		"/c/jail.conf": dedent(`
			[DEFAULT]
			my_log = /var/log/mine.log
			action_x = %(banaction)s[port=%(myport)s]
			[t]
			enabled = true
			logpath = %(my_log)s
			maxretries = 3
			bantme = 1h
			my_log = /other
			myport = 22
			tcpport = 1
			action_ = x[p=%(tcpport)s]
			publickey = any
			frobnicate = yes
		`),
		"/c/filter.d/t.conf": "[Definition]\npublickey = nofail\nfailregex = ^<publickey> <HOST>$\n",
	}
	_, diags := loadMap(t, files)
	want := []string{
		`/c/jail.conf:7: warning: [t] maxretries: unknown key "maxretries"; did you mean "maxretry"?`,
		`/c/jail.conf:8: warning: [t] bantme: unknown key "bantme"; did you mean "bantime"?`,
		`/c/jail.conf:14: warning: [t] frobnicate: unknown key "frobnicate"`,
	}
	if diff := cmp.Diff(want, diagStrings(diags)); diff != "" {
		t.Errorf("diags mismatch (-want +got):\n%s", diff)
	}
}

func TestNearest(t *testing.T) {
	keys := []string{"maxretry", "bantime", "findtime", "logpath", "port", "x"}
	tests := []struct {
		in, want string
	}{
		{"maxretries", "maxretry"},
		{"max_retry", "maxretry"},
		{"bantme", "bantime"},
		{"logpth", "logpath"},
		{"prot", "port"},
		{"v", ""},
		{"frobnicate", ""},
	}
	for _, tt := range tests {
		got, ok := nearest(tt.in, keys)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("nearest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSectionUsedAsVariables(t *testing.T) {
	files := mapFS{"/c/jail.conf": "[vars]\nmylog = /var/log/x\n[t]\nenabled = true\nlogpath = %(vars/mylog)s\n"}
	cfg, diags := loadMap(t, files)
	if len(diags) != 0 {
		t.Errorf("diags = %v, want none", diags)
	}
	if diff := cmp.Diff([]string{"/var/log/x"}, jailByName(t, cfg, "t").LogPath); diff != "" {
		t.Errorf("logpath mismatch (-want +got):\n%s", diff)
	}
}

func TestDisabledJailProblemsAreWarnings(t *testing.T) {
	files := mapFS{"/c/jail.conf": "[DEFAULT]\nmaxretry = 5 # five\n[off]\nenabled = false\n[on]\nenabled = true\nlogpath = /l\nfilter = t\n"}
	_, diags := loadMap(t, files)
	// One report for the DEFAULT line, an error because the enabled jail uses it.
	want := []string{`/c/jail.conf:2: warning: [off] maxretry: invalid integer "5 # five"; inline comments start with ';' in this format (jail is disabled)`}
	if got := diagStrings(diags); len(got) != 1 || !strings.Contains(got[0], "error: [on] maxretry") {
		t.Errorf("diags = %q, want one error from jail on (not %q)", got, want)
	}
	files = mapFS{"/c/jail.conf": "[off]\nmaxretry = many\n"}
	_, diags = loadMap(t, files)
	if diff := cmp.Diff([]string{`/c/jail.conf:2: warning: [off] maxretry: invalid integer "many" (jail is disabled)`}, diagStrings(diags)); diff != "" {
		t.Errorf("diags mismatch (-want +got):\n%s", diff)
	}
}

func TestDisabledJailKnownFailregex(t *testing.T) {
	// A disabled jail's filter is not loaded, so %(known/failregex)s has nothing to read;
	// that is no problem until the jail is enabled.
	files := mapFS{"/c/jail.conf": "[t]\nenabled = false\nfailregex = %(known/failregex)s\n    ^more <HOST>$\n"}
	_, diags := loadMap(t, files)
	if len(diags) != 0 {
		t.Errorf("diags = %v, want none", diags)
	}
	files["/c/jail.conf"] = strings.Replace(files["/c/jail.conf"], "false", "true\nlogpath = /l", 1)
	cfg, diags := loadMap(t, files)
	mustNoErrors(t, diags)
	if diff := cmp.Diff([]string{"^fail from <HOST>$", "^more <HOST>$"}, texts(jailByName(t, cfg, "t").Filter.FailRegex)); diff != "" {
		t.Errorf("failregex mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadMissing(t *testing.T) {
	_, diags := load(mapFS{}, "/nowhere", loadOptions{})
	err := diags.Err()
	if err == nil || !strings.Contains(err.Error(), "no jail.conf or jail.local in /nowhere") {
		t.Fatalf("Err() = %v", err)
	}
	if !errorsIs(err, ErrNotFound) {
		t.Errorf("errors.Is(err, ErrNotFound) = false")
	}
}
