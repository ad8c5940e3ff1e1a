package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeeds adds the fixture files (and, when present, the installed fail2ban filters, read at
// run time only) to a fuzz corpus.
func fuzzSeeds(f *testing.F, add func(data string)) {
	f.Helper()
	var paths []string
	for _, pattern := range []string{
		filepath.Join(fixtureDir, "*", "*", "*.conf"),
		filepath.Join(fixtureDir, "*", "*", "*", "*.conf"),
		filepath.Join(fixtureDir, "*", "*.conf"),
		"/etc/fail2ban/filter.d/*.conf",
	} {
		m, _ := filepath.Glob(pattern)
		paths = append(paths, m...)
	}
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			add(string(b))
		}
	}
}

// checkDiags fails on diagnostics that must never happen, whatever the input.
func checkDiags(t *testing.T, ds Diags) {
	t.Helper()
	for _, d := range ds {
		if strings.HasPrefix(d.Msg, "internal:") {
			t.Fatalf("parser and line index disagree: %v", d)
		}
	}
}

// FuzzParse checks that any file content parses without panic, that ini.v1 and the line index
// always agree, and that line numbers stay within the file.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f, func(s string) { f.Add([]byte(s)) })
	for _, s := range []string{
		"[x]\na = 1\n\n  b\n",
		"[x]\na = \"\"\"\n  b\n\"\"\"\n",
		"[x]\na = `b\n  c`\n",
		"[x]\n  a = 1\n    b = 2\n  c\n",
		"\ufeff[x]\r\na=1\r  b\r\n",
		"[x]\n[y\na:b:c\n;c\n#d\n  [z]\n",
		"[x]\na = 1 ;c\n b ; d\n\t#e\n",
		"[x]\n\"a\" = 1\n`b` = 2\n- = 3\n[ = 4\n",
		"[]\n[]]\n[a]b]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, diags := parseFile("f.conf", data)
		checkDiags(t, diags)
		if file == nil {
			return
		}
		lines := strings.Count(strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n"), "\n") + 1
		for _, s := range file.sections {
			for _, e := range s.entries {
				last := 0
				for _, l := range e.lines {
					if l.line < 1 || l.line > lines || l.line < last {
						t.Fatalf("[%s] %s: line %d out of order or range (file has %d lines)", s.name, e.key, l.line, lines)
					}
					last = l.line
				}
			}
		}
		// The value parsers must not panic either.
		text := string(data)
		_, _, _ = ParseRef(text)
		_, _ = ParseDuration(text)
		_ = splitRefs(text)
		_, _, _ = parseAddr(text)
	})
}

// FuzzLoad loads a whole configuration made of a fuzzed jail.conf and a fuzzed filter with
// every jail forced on: no panic, no parser disagreement, whatever the input.
func FuzzLoad(f *testing.F) {
	jail := "[DEFAULT]\nfilter = f[mode=%(mode)s]\nmode = x\nlogpath = /l\n[a]\nenabled = true\nfailregex = %(known/failregex)s\n  <x>\n"
	filter := "[INCLUDES]\nbefore = common.conf\n[Definition]\nx = <lt_<logtype>/p>\nfailregex = ^%(p)s <x> <HOST>$\n  <mode>\n[Init]\np = q\n"
	f.Add(jail, filter)
	f.Add("[a]\nenabled = true\nfilter = f\nlogpath = /l\nmaxretry = 5 # x\nignoreip = 1.2.3.4/40\n", "[Definition]\nfailregex = %(a)s\na = %(a)s\n")
	fuzzSeeds(f, func(s string) { f.Add(jail, s); f.Add(s, filter) })
	f.Fuzz(func(t *testing.T, jailConf, filterConf string) {
		fsys := mapFS{
			"/c/jail.conf":            jailConf,
			"/c/filter.d/f.conf":      filterConf,
			"/c/filter.d/common.conf": "[DEFAULT]\nlogtype = file\n[lt_file]\np = F\n[lt_journal]\np = J\n",
		}
		cfg, diags := load(fsys, "/c", loadOptions{forceEnable: true})
		checkDiags(t, diags)
		if cfg == nil {
			t.Fatal("nil Config")
		}
		res := loadFilter(fsys, "/c", "f[mode=a, x='b']", Pos{}, literalEntries(map[string]string{"backend": "systemd"}, Pos{}), false)
		checkDiags(t, res.diags)
	})
}
