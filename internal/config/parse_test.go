package config

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flat renders a parsed file as "[section] key@line: line|line@n|..." for comparisons.
func flat(f *parsedFile) []string {
	var out []string
	for _, s := range f.sections {
		for _, e := range s.entries {
			var parts []string
			for _, l := range e.lines {
				parts = append(parts, l.text+"@"+strconv.Itoa(l.line))
			}
			out = append(out, "["+s.name+"] "+e.key+": "+strings.Join(parts, " | "))
		}
	}
	return out
}

func TestParseFile(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string
		diags []string
	}{
		{
			name: "multi-line value, one line each with its number",
			in: dedent(`
				[Definition]
				failregex = ^a <HOST>$
				            ^b <HOST>$
				ignoreregex =
			`),
			want: []string{"[Definition] failregex: ^a <HOST>$@2 | ^b <HOST>$@3", "[Definition] ignoreregex: @4"},
		},
		{
			name: "value starting on the next line",
			in:   "[x]\nfailregex =\n    one\n    two\n",
			want: []string{"[x] failregex: @2 | one@3 | two@4"},
		},
		{
			name: "blank line inside a value is kept, as Python keeps it (go-ini#205)",
			in:   "[x]\nfailregex = one\n\n    two\nnext = 1\n",
			want: []string{"[x] failregex: one@2 | @3 | two@4", "[x] next: 1@5"},
		},
		{
			name: "trailing blank lines are dropped",
			in:   "[x]\na = 1\n\n\nb = 2\n",
			want: []string{"[x] a: 1@2", "[x] b: 2@5"},
		},
		{
			name: "comment lines inside a value are skipped, also at column 0",
			in:   "[x]\nfailregex = one\n    # a comment\n; another\n    two\n",
			want: []string{"[x] failregex: one@2 | two@5"},
		},
		{
			name: "' ;' starts an inline comment, ';' without a space and '#' do not",
			in:   "[x]\na = 5 ; five\nb = x;y\nc = 5 # five\nd = ^x$ ;c\n    ^y$\t; tab\n",
			want: []string{"[x] a: 5@2", "[x] b: x;y@3", "[x] c: 5 # five@4", "[x] d: ^x$@5 | ^y$@6"},
		},
		{
			name: "':' is a delimiter too, and keys are lower-cased",
			in:   "[Jail]\nMaxRetry: 3\nLogPath = /a:b\n",
			want: []string{"[Jail] maxretry: 3@2", "[Jail] logpath: /a:b@3"},
		},
		{
			name: "an indented key line after a section header is a key",
			in:   "[x]\n  a = 1\n    b\n  c = 2\n",
			want: []string{"[x] a: 1@2 | b@3", "[x] c: 2@4"},
		},
		{
			name: "section names keep case and text after ']' is ignored",
			in:   "[DEFAULT]\na = 1\n[sshd] ; comment\nb = 2\n[Definition] \nc = 3\n",
			want: []string{"[DEFAULT] a: 1@2", "[sshd] b: 2@4", "[Definition] c: 3@6"},
		},
		{
			name: "CRLF and a byte order mark",
			in:   "\ufeff[x]\r\na = 1\r\n  2\r\n",
			want: []string{"[x] a: 1@2 | 2@3"},
		},
		{
			name: "value quoting and triple quotes are plain text",
			in:   "[x]\na = \"quoted\"\nb = \"\"\"not\nc = `tick`\n",
			want: []string{`[x] a: "quoted"@2`, `[x] b: """not@3`, "[x] c: `tick`@4"},
		},
		{
			name:  "text before any section",
			in:    "a = 1\n[x]\nb = 2\n",
			want:  []string{"[x] b: 2@3"},
			diags: []string{"f.conf:1: error: text before the first [section] header"},
		},
		{
			name:  "line without delimiter",
			in:    "[x]\njunk\nb = 2\n",
			want:  []string{"[x] b: 2@3"},
			diags: []string{`f.conf:2: error: [x] cannot parse "junk": expected 'key = value' or '[section]'`},
		},
		{
			name:  "duplicate key in one section",
			in:    "[x]\na = 1\na = 2\n",
			want:  []string{"[x] a: 2@3"},
			diags: []string{"f.conf:3: error: [x] a: key set twice in this section (first at line 2; fail2ban refuses such a file)"},
		},
		{
			name:  "duplicate section in one file",
			in:    "[x]\na = 1\n[x]\nb = 2\n",
			want:  []string{"[x] a: 1@2", "[x] b: 2@4"},
			diags: []string{"f.conf:3: error: [x] section [x] appears twice in this file (fail2ban refuses such a file); merge them"},
		},
		{
			name:  "key names ini.v1 would read differently",
			in:    "[x]\n\"q\" = 1\n- = 2\nok = 3\n",
			want:  []string{"[x] ok: 3@4"},
			diags: []string{`f.conf:2: error: [x] "q": unsupported key name`, "f.conf:3: error: [x] -: unsupported key name"},
		},
		{
			name:  "empty key name",
			in:    "[x]\n= 1\n",
			diags: []string{"f.conf:2: error: [x] empty key name before '='"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, diags := parseFile("f.conf", []byte(tt.in))
			if diff := cmp.Diff(tt.want, flat(f)); diff != "" {
				t.Errorf("parseFile mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.diags, diagStrings(diags)); diff != "" {
				t.Errorf("parseFile diags mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseLongValue covers ini.v1's look-ahead buffer: a multi-line value longer than 4 KiB
// would be cut with default options.
func TestParseLongValue(t *testing.T) {
	var b strings.Builder
	b.WriteString("[Definition]\nfailregex = first\n")
	var want []string
	want = append(want, "first")
	for i := 0; i < 400; i++ {
		l := "^line " + strconv.Itoa(i) + " from <HOST> with some padding text$"
		b.WriteString("            " + l + "\n")
		want = append(want, l)
	}
	b.WriteString("next = 1\n")
	f, diags := parseFile("long.conf", []byte(b.String()))
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	var got []string
	for _, l := range f.sections[0].entries[0].lines {
		got = append(got, l.text)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("long value mismatch (-want +got):\n%s", diff)
	}
	if n := f.sections[0].entries[0].lines[400].line; n != 402 {
		t.Errorf("last line number = %d, want 402", n)
	}
}

func TestParseInvalidUTF8(t *testing.T) {
	_, diags := parseFile("bad.conf", []byte("[x]\na = \xff\n"))
	if diff := cmp.Diff([]string{"bad.conf: error: file is not valid UTF-8"}, diagStrings(diags)); diff != "" {
		t.Errorf("diags mismatch (-want +got):\n%s", diff)
	}
}
