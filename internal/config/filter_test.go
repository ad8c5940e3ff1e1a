package config

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lineAt renders a value line as "file:line text" for comparisons.
func linesAt(v []Value) []string {
	var out []string
	for _, l := range v {
		out = append(out, l.Pos.String()+" "+l.Text)
	}
	return out
}

func TestFilterResolution(t *testing.T) {
	tests := []struct {
		name  string
		files mapFS
		ref   string
		vars  map[string]string
		want  []string // failregex lines as "pos text"
		diags []string
	}{
		{
			name: "%(name)s from the section, then DEFAULT; %% is a literal %",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[DEFAULT]
				who = <HOST>
				pre = default
				[Definition]
				pre = own
				failregex = ^%(pre)s %(who)s 100%%$
			`)},
			ref:  "t",
			want: []string{"/f/filter.d/t.conf:6 ^own <HOST> 100%$"},
		},
		{
			name: "a line made of one reference reports the referenced line",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[Definition]
				common = ^one <HOST>$
				         ^two <HOST>$
				failregex = %(common)s
				            ^three <HOST>$
				            x%(common)sy
			`)},
			ref: "t",
			want: []string{
				"/f/filter.d/t.conf:2 ^one <HOST>$", "/f/filter.d/t.conf:3 ^two <HOST>$",
				"/f/filter.d/t.conf:5 ^three <HOST>$",
				"/f/filter.d/t.conf:6 x^one <HOST>$", "/f/filter.d/t.conf:6 ^two <HOST>$y",
			},
		},
		{
			name: "%(section/name)s and %(default/name)s; the referenced text is resolved in the referencing section",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[DEFAULT]
				who = default
				x = from-default
				[other]
				tpl = ^%(who)s <HOST>$
				[Definition]
				who = definition
				failregex = %(other/tpl)s
				            ^%(default/who)s %(other/x)s <HOST>$
			`)},
			ref:  "t",
			want: []string{"/f/filter.d/t.conf:5 ^definition <HOST>$", "/f/filter.d/t.conf:9 ^default from-default <HOST>$"},
		},
		{
			name: ".local overrides .conf; %(known/name)s is the overridden value, also over three layers",
			files: mapFS{
				"/f/filter.d/t.conf":        "[Definition]\nfailregex = ^conf <HOST>$\n",
				"/f/filter.d/t.local":       "[Definition]\nfailregex = %(known/failregex)s\n            ^local <HOST>$\n",
				"/f/filter.d/t.d/a.local":   "[Definition]\nfailregex = %(known/failregex)s\n            ^d <HOST>$\n",
				"/f/filter.d/t.d/b.conf":    "[Definition]\nignoreregex = x\n",
				"/f/filter.d/other.conf":    "[Definition]\nfailregex = unrelated\n",
				"/f/filter.d/t.d/notes.txt": "ignored",
			},
			ref: "t",
			want: []string{
				"/f/filter.d/t.conf:2 ^conf <HOST>$", "/f/filter.d/t.local:3 ^local <HOST>$", "/f/filter.d/t.d/a.local:3 ^d <HOST>$",
			},
		},
		{
			name: "__name__ is the section name",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[Definition]
				failregex = ^%(__name__)s <HOST>$
			`)},
			ref:  "t",
			want: []string{"/f/filter.d/t.conf:2 ^Definition <HOST>$"},
		},
		{
			name: "includes: before, after, their .local, relative to the including file",
			files: mapFS{
				"/f/filter.d/t.conf":        "[INCLUDES]\nbefore = common.conf\nafter = sub/last.conf\n[Definition]\nfailregex = ^%(a)s %(b)s %(c)s <HOST>$\n",
				"/f/filter.d/common.conf":   "[DEFAULT]\na = common\nb = common\nc = common\n",
				"/f/filter.d/common.local":  "[DEFAULT]\nb = common-local\n",
				"/f/filter.d/sub/last.conf": "[DEFAULT]\nc = last\n",
			},
			ref:  "t",
			want: []string{"/f/filter.d/t.conf:5 ^common common-local last <HOST>$"},
		},
		{
			name: "nested tags: inner first, then <section/key>",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[DEFAULT]
				logtype = file
				prefix = <lt_<logtype>/prefix>
				[lt_file]
				prefix = FILE:<pid>
				[lt_journal]
				prefix = JOURNAL:
				[Definition]
				pid = \[\d+\]
				failregex = ^<prefix> <HOST>$
			`)},
			ref:  "t",
			want: []string{"/f/filter.d/t.conf:10 ^FILE:\\[\\d+\\] <HOST>$"},
		},
		{
			name: "logtype follows the backend, nested tags pick the journal section",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[DEFAULT]
				prefix = <lt_<logtype>/prefix>
				[lt_file]
				prefix = FILE:
				[lt_journal]
				prefix = JOURNAL:
				[Definition]
				failregex = ^<prefix> <HOST>$
			`)},
			ref:  "t",
			vars: map[string]string{"backend": "systemd"},
			want: []string{"/f/filter.d/t.conf:8 ^JOURNAL: <HOST>$"},
		},
		{
			name: "[Init] overrides [Definition] for tags, reference options override both",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[Definition]
				a = def
				b = def
				c = def
				failregex = ^<a> <b> <c> <HOST>$
				            ^%(b)s <HOST>$
				[Init]
				b = init
				c = init
			`)},
			ref:  `t[c="ref, quoted"]`,
			want: []string{"/f/filter.d/t.conf:5 ^def init ref, quoted <HOST>$", "/f/filter.d/t.conf:6 ^def <HOST>$"},
		},
		{
			name: "reference options reach %(name)s in filter keys, mode picks a multi-line value",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[Definition]
				mode = normal
				re-normal = ^normal <HOST>$
				re-extra = ^extra1 <HOST>$
				           ^extra2 <HOST>$
				failregex = <re-<mode>>
				            ^%(mode)s <HOST>$
			`)},
			ref:  "t[mode=extra]",
			want: []string{"/f/filter.d/t.conf:4 ^extra1 <HOST>$", "/f/filter.d/t.conf:5 ^extra2 <HOST>$", "/f/filter.d/t.conf:7 ^extra <HOST>$"},
		},
		{
			name: "unknown tags stay for the regex engine",
			files: mapFS{"/f/filter.d/t.conf": dedent(`
				[Definition]
				failregex = ^<F-USER>\S+</F-USER> <HOST> <ADDR> <SKIPLINES> <nosuch>$
			`)},
			ref:  "t",
			want: []string{`/f/filter.d/t.conf:2 ^<F-USER>\S+</F-USER> <HOST> <ADDR> <SKIPLINES> <nosuch>$`},
		},
		{
			name: "a path reference, .conf optional",
			files: mapFS{
				"/elsewhere/x.conf":  "[Definition]\nfailregex = ^x <HOST>$\n",
				"/elsewhere/x.local": "[Definition]\nfailregex = ^local <HOST>$\n",
			},
			ref:  "/elsewhere/x.conf[k=v]",
			want: []string{"/elsewhere/x.local:2 ^local <HOST>$"},
		},
		{
			name:  "unresolved interpolation names file, line and key",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\nbase = ^%(nope)s\nfailregex = %(base)s <HOST>$\n"},
			ref:   "t",
			diags: []string{"/f/filter.d/t.conf:2: error: [Definition] base: %(nope)s is not defined (needed by failregex)"},
		},
		{
			name:  "interpolation loop",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\na = %(b)s\nb = x%(a)s\nfailregex = %(a)s\n"},
			ref:   "t",
			diags: []string{"/f/filter.d/t.conf:2: error: [Definition] a: interpolation loop: a -> b -> a"},
		},
		{
			name:  "bad percent",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\nfailregex = ^100% <HOST>$\n"},
			ref:   "t",
			diags: []string{`/f/filter.d/t.conf:2: error: [Definition] failregex: bad '%' in "% <HOST>$": '%' must start %(name)s; write '%%' for a literal '%'`},
		},
		{
			name:  "tag that names itself",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\nfailregex = ^<failregex>$\n"},
			ref:   "t",
			diags: []string{"/f/filter.d/t.conf:2: error: [Definition] failregex: <failregex> refers to itself"},
		},
		{
			name:  "a key named like an engine tag captures it, as in fail2ban",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\nhost = <HOST>\nfailregex = ^x %(host)s$\n"},
			ref:   "t",
			diags: []string{`/f/filter.d/t.conf:2: error: [Definition] host: <HOST> refers to itself: a key named "host" defines the tag <HOST> (tag names match keys in any case), so the regex engine never sees it; rename the key`},
		},
		{
			name:  "tag loop",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\na = <b>\nb = x<a>\nfailregex = ^<a> <HOST>$\n"},
			ref:   "t",
			diags: []string{"/f/filter.d/t.conf:3: error: [Definition] b: tag loop: <a> -> <b> -> <a>"},
		},
		{
			name:  "missing filter",
			files: mapFS{},
			ref:   "nosuch[mode=x]",
			diags: []string{`<input>: error: filter: filter "nosuch[mode=x]" not found: no /f/filter.d/nosuch.conf`},
		},
		{
			name:  "no failregex",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\nignoreregex = x\n"},
			ref:   "t",
			diags: []string{"/f/filter.d/t.conf:1: error: [Definition] failregex: filter defines no failregex"},
		},
		{
			name:  "include loop",
			files: mapFS{"/f/filter.d/t.conf": "[INCLUDES]\nbefore = a.conf\n[Definition]\nfailregex = x\n", "/f/filter.d/a.conf": "[INCLUDES]\nafter = t.conf\n"},
			ref:   "t",
			want:  []string{"/f/filter.d/t.conf:4 x"},
			diags: []string{"/f/filter.d/a.conf:2: error: [INCLUDES] include loop: t.conf -> a.conf -> t.conf"},
		},
		{
			name:  "missing .conf include warns, missing .local include is normal",
			files: mapFS{"/f/filter.d/t.conf": "[INCLUDES]\nbefore = nosuch.conf\nafter = nosuch.local\n[Definition]\nfailregex = x\n"},
			ref:   "t",
			want:  []string{"/f/filter.d/t.conf:5 x"},
			diags: []string{"/f/filter.d/t.conf:2: warning: [INCLUDES] included file /f/filter.d/nosuch.conf not found; skipped"},
		},
		{
			name:  "' ;' in a regex is a comment, as in fail2ban, with a warning",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\nfailregex = ^a <HOST> ;b$\n    ^c;d <HOST>$\n"},
			ref:   "t",
			want:  []string{"/f/filter.d/t.conf:2 ^a <HOST>", "/f/filter.d/t.conf:3 ^c;d <HOST>$"},
			diags: []string{`/f/filter.d/t.conf:2: warning: [Definition] failregex: ";b$" after ' ;' is a comment in this format and was dropped (as fail2ban does); write '\;' or '[;]' if it belongs to the regex`},
		},
		{
			name:  "exponential growth is stopped",
			files: mapFS{"/f/filter.d/t.conf": "[Definition]\n" + explode(30) + "failregex = %(a0)s\n"},
			ref:   "t",
			diags: []string{"/f/filter.d/t.conf:14: error: [Definition] a12: value grows beyond 1048576 bytes after interpolation"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := loadFilter(tt.files, "/f", tt.ref, Pos{}, literalEntries(tt.vars, Pos{}), false)
			var got []string
			if res.def != nil {
				got = linesAt(res.def.FailRegex)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("failregex mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.diags, diagStrings(dedupe(res.diags))); diff != "" {
				t.Errorf("diags mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// explode defines a0 = %(a1)s%(a1)s, a1 = ... so that a0 doubles n times.
func explode(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("a" + itoa(i) + " = %(a" + itoa(i+1) + ")s%(a" + itoa(i+1) + ")s\n")
	}
	b.WriteString("a" + itoa(n) + " = xxxxxxxx\n")
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestFilterDefFields(t *testing.T) {
	files := mapFS{"/f/filter.d/t.conf": dedent(`
		[INCLUDES]
		before = common.conf
		[Definition]
		prefregex = ^<F-CONTENT>.+</F-CONTENT>$
		failregex = ^fail <HOST>$
		ignoreregex = ^ignore$
		datepattern = ^%%Y-%%m-%%d
		              {^LN-BEG}
		maxlines = 3
		journalmatch = _SYSTEMD_UNIT=t.service
		usedns = no
		[Init]
		extra = 1
	`), "/f/filter.d/common.conf": "[DEFAULT]\nshared = yes\n"}
	res := loadFilter(files, "/f", "t[opt=v]", Pos{}, nil, false)
	mustNoErrors(t, res.diags)
	def := res.def
	got := map[string]any{
		"name": def.Name, "file": def.File, "options": def.Options,
		"prefregex": def.PrefRegex.Text, "failregex": texts(def.FailRegex),
		"ignoreregex": texts(def.IgnoreRegex), "datepattern": texts(def.DatePattern),
		"maxlines": def.MaxLines, "journalmatch": def.Vars["journalmatch"].Text, "usedns": def.Vars["usedns"].Text,
		"init": def.Vars["extra"].Text, "opt": def.Vars["opt"].Text, "logtype": def.Vars["logtype"].Text,
	}
	want := map[string]any{
		"name": "t", "file": "/f/filter.d/t.conf", "options": map[string]string{"opt": "v"},
		"prefregex": "^<F-CONTENT>.+</F-CONTENT>$", "failregex": []string{"^fail <HOST>$"},
		"ignoreregex": []string{"^ignore$"}, "datepattern": []string{"^%Y-%m-%d", "{^LN-BEG}"},
		"maxlines": 3, "journalmatch": "_SYSTEMD_UNIT=t.service", "usedns": "no",
		"init": "1", "opt": "v", "logtype": "file",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FilterDef mismatch (-want +got):\n%s", diff)
	}
	if _, ok := def.Vars["shared"]; ok {
		t.Errorf("Vars holds a DEFAULT-only key")
	}
}
