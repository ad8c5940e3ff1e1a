package config

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/ini.v1"
)

// This file turns the bytes of one file into sections of keys whose values are lists of lines,
// each line with its line number.
//
// fail2ban reads its files with Python's configparser, and ini.v1 differs from it in ways that
// matter for fail2ban's stock files (see STYLE.md, "gopkg.in/ini.v1"): a blank line inside a
// multi-line value ends the value and makes the next indented line a parse error (go-ini#205),
// full-line comments inside a value are kept as value text, ' ;' inline comments are not
// removed the way Python removes them, values longer than the reader buffer (4 KiB by default)
// are cut, and ini.v1 reports no line numbers at all.
//
// So the work is split in two:
//
//  1. scanLines walks the file once with Python's rules (indentation decides what continues a
//     value, blank lines inside a value are kept, '#'/';' full-line comments are dropped
//     anywhere, ' ;' starts an inline comment, '#' after text does not) and records, for every
//     key, each physical line of its value with its line number. This is the position index.
//  2. The scanned structure is written back out as a normalised text in which every value line
//     is an indented continuation line (blank ones as whitespace-only lines, which ini.v1 keeps)
//     and nothing else can be misread: no comments, no quotes at the start of a value, no blank
//     lines. ini.v1 parses that text, and the values we use are ini.v1's. A cross-check
//     verifies that ini.v1 saw exactly the sections, keys and lines the scan saw, so the line
//     numbers of the index belong to the values; a mismatch would be reported as an internal
//     error (the fuzz test asserts it never happens).

// rawLine is one physical line of a value, stripped as Python's configparser strips it.
type rawLine struct {
	text string
	line int
	// comment is the ' ;...' inline comment removed from the line, if any.
	comment string
}

// rawEntry is one key as written in one section of one file.
type rawEntry struct {
	key   string    // lower-case, as Python's configparser stores it
	lines []rawLine // at least one; lines[0] is the rest of the key's own line (maybe "")
	pos   Pos       // the key's line
}

type rawSection struct {
	name    string
	pos     Pos
	entries []*rawEntry
	index   map[string]int // key -> position in entries
}

func (s *rawSection) entry(key string) *rawEntry {
	if i, ok := s.index[key]; ok {
		return s.entries[i]
	}
	return nil
}

// parsedFile is one file, parsed.
type parsedFile struct {
	path     string
	sections []*rawSection
	index    map[string]*rawSection
}

func (f *parsedFile) section(name string) *rawSection {
	return f.index[name]
}

// pyIsSpace is Python's str.isspace for one character: Go's unicode.IsSpace plus the
// information separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func pyStrip(s string) string {
	return strings.TrimFunc(s, pyIsSpace)
}

// parseFile parses one file. It returns nil when the file cannot be used at all.
func parseFile(path string, data []byte) (*parsedFile, Diags) {
	if len(data) > maxFileBytes {
		return nil, Diags{{Severity: Error, Pos: Pos{File: path}, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileBytes)}}
	}
	if !utf8.Valid(data) {
		return nil, Diags{{Severity: Error, Pos: Pos{File: path}, Msg: "file is not valid UTF-8"}}
	}
	f, diags := scanLines(path, string(data))
	diags = append(diags, crossCheck(f)...)
	return f, diags
}

// scanLines is the Python-compatible scan (configparser.RawConfigParser._read with fail2ban's
// settings: delimiters '=' and ':', comment prefixes '#' and ';', inline comment prefix ';',
// empty lines allowed in values, strict).
func scanLines(path, text string) (*parsedFile, Diags) {
	var diags Diags
	errAt := func(line int, section, key, msg string) {
		diags = append(diags, Diag{Severity: Error, Pos: Pos{File: path, Line: line}, Section: section, Key: key, Msg: msg})
	}

	// A UTF-8 byte order mark is dropped (Python would read it as part of the first line and
	// then fail on a missing section header).
	text = strings.TrimPrefix(text, "\ufeff")
	// Python reads files with universal newlines: "\r\n" and a lone "\r" end a line.
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}

	f := &parsedFile{path: path, index: map[string]*rawSection{}}
	var (
		cur         *rawSection
		curEntry    *rawEntry
		indentLevel int
		seenInFile  = map[string]bool{} // section names met in this file (strict mode)
	)
	for i, line := range lines {
		lineno := i + 1

		// Inline comment: ';' at the start of the line or after whitespace.
		commentStart := -1
		for j := 0; j < len(line); j++ {
			if line[j] != ';' {
				continue
			}
			if j == 0 {
				commentStart = 0
				break
			}
			r, _ := utf8.DecodeLastRuneInString(line[:j])
			if pyIsSpace(r) {
				commentStart = j
				break
			}
		}
		// Full-line comment.
		stripped := pyStrip(line)
		if strings.HasPrefix(stripped, "#") || strings.HasPrefix(stripped, ";") {
			commentStart = 0
		}
		value := line
		comment := ""
		if commentStart >= 0 {
			value = line[:commentStart]
			comment = line[commentStart:]
		}
		value = pyStrip(value)
		if value == "" {
			// A blank line continues a value (Python keeps it as an empty line of the value);
			// a comment line is skipped without ending anything.
			if commentStart < 0 && curEntry != nil {
				addLine(curEntry, rawLine{line: lineno})
			}
			continue
		}
		indent := strings.IndexFunc(line, func(r rune) bool { return !pyIsSpace(r) })
		if cur != nil && curEntry != nil && indent > indentLevel {
			addLine(curEntry, rawLine{text: value, line: lineno, comment: comment})
			continue
		}
		indentLevel = indent

		if name, ok := sectionHeader(value); ok {
			curEntry = nil
			if name != "DEFAULT" && seenInFile[name] {
				errAt(lineno, name, "", fmt.Sprintf("section [%s] appears twice in this file (fail2ban refuses such a file); merge them", name))
			}
			seenInFile[name] = true
			if s := f.section(name); s != nil {
				cur = s
				continue
			}
			if len(f.sections) >= maxSections {
				errAt(lineno, name, "", fmt.Sprintf("more than %d sections in one file", maxSections))
				return f, diags
			}
			cur = &rawSection{name: name, pos: Pos{File: path, Line: lineno}, index: map[string]int{}}
			f.sections = append(f.sections, cur)
			f.index[name] = cur
			continue
		}
		if cur == nil {
			errAt(lineno, "", "", "text before the first [section] header")
			continue
		}
		d := strings.IndexAny(value, "=:")
		if d < 0 {
			errAt(lineno, cur.name, "", fmt.Sprintf("cannot parse %q: expected 'key = value' or '[section]'", clip(value)))
			continue
		}
		key := strings.ToLower(pyStrip(value[:d]))
		val := pyStrip(value[d+1:])
		switch {
		case key == "":
			errAt(lineno, cur.name, "", "empty key name before '"+value[d:d+1]+"'")
			curEntry = nil
			continue
		case key == "-" || strings.ContainsAny(key[:1], "\"`["):
			// ini.v1 gives these a meaning of its own (quoted or auto-numbered keys).
			errAt(lineno, cur.name, key, "unsupported key name")
			curEntry = nil
			continue
		}
		e := &rawEntry{key: key, pos: Pos{File: path, Line: lineno}, lines: []rawLine{{text: val, line: lineno, comment: comment}}}
		if i, ok := cur.index[key]; ok {
			errAt(lineno, cur.name, key, fmt.Sprintf("key set twice in this section (first at line %d; fail2ban refuses such a file)", cur.entries[i].pos.Line))
			cur.entries[i] = e
		} else {
			if len(cur.entries) >= maxKeys {
				errAt(lineno, cur.name, key, fmt.Sprintf("more than %d keys in one section", maxKeys))
				return f, diags
			}
			cur.index[key] = len(cur.entries)
			cur.entries = append(cur.entries, e)
		}
		curEntry = e
	}

	// Python joins the lines of a value and strips trailing whitespace: trailing empty lines go.
	for _, s := range f.sections {
		for _, e := range s.entries {
			n := len(e.lines)
			for n > 1 && e.lines[n-1].text == "" {
				n--
			}
			e.lines = e.lines[:n]
			if n > maxValueLines {
				errAt(e.lines[maxValueLines].line, s.name, e.key, fmt.Sprintf("value has more than %d lines", maxValueLines))
				e.lines = e.lines[:maxValueLines]
			}
		}
	}
	return f, diags
}

// addLine adds a continuation line; past maxValueLines+1 lines are dropped (the value is
// reported as too long once scanning ends).
func addLine(e *rawEntry, l rawLine) {
	if len(e.lines) <= maxValueLines {
		e.lines = append(e.lines, l)
	}
}

// sectionHeader matches Python's `\[(?P<header>.+)\]` against a stripped line: the name runs
// from the first '[' to the last ']', and text after that ']' is ignored.
func sectionHeader(value string) (string, bool) {
	if !strings.HasPrefix(value, "[") {
		return "", false
	}
	end := strings.LastIndexByte(value, ']')
	if end < 2 {
		return "", false
	}
	return value[1:end], true
}

// normalized writes the scanned structure as text that ini.v1 parses without ambiguity.
func normalized(f *parsedFile) []byte {
	var b bytes.Buffer
	for _, s := range f.sections {
		b.WriteString("[" + s.name + "]\n")
		for _, e := range s.entries {
			b.WriteString(e.key + " =\n")
			for _, l := range e.lines {
				b.WriteString("    " + l.text + "\n")
			}
		}
	}
	return b.Bytes()
}

// iniOptions are the ini.v1 settings for the normalised text (STYLE.md lists why each is set).
func iniOptions(size int) ini.LoadOptions {
	return ini.LoadOptions{
		AllowPythonMultilineValues: true,
		IgnoreInlineComment:        true,
		IgnoreContinuation:         true,
		PreserveSurroundedQuote:    true,
		InsensitiveKeys:            true,
		// The multi-line reader only looks ahead within its buffer; a value longer than the
		// default 4 KiB would be cut. Make the buffer hold the whole text.
		ReaderBufferSize: size + 4096,
	}
}

// crossCheck parses the normalised text with ini.v1 and takes ini.v1's values, verifying that
// they line up with the scan.
func crossCheck(f *parsedFile) Diags {
	internal := func(format string, args ...any) Diags {
		return Diags{{Severity: Error, Pos: Pos{File: f.path}, Msg: "internal: ini parser disagrees with the line index: " + fmt.Sprintf(format, args...)}}
	}
	text := normalized(f)
	file, err := ini.LoadSources(iniOptions(len(text)), text)
	if err != nil {
		return internal("%v", err)
	}
	for _, s := range f.sections {
		sec, err := file.GetSection(s.name)
		if err != nil {
			return internal("section [%s] missing", s.name)
		}
		keys := sec.Keys()
		if len(keys) != len(s.entries) {
			return internal("section [%s] has %d keys, want %d", s.name, len(keys), len(s.entries))
		}
		for i, e := range s.entries {
			k := keys[i]
			if k.Name() != e.key {
				return internal("section [%s] key %d is %q, want %q", s.name, i, k.Name(), e.key)
			}
			got := strings.Split(k.Value(), "\n")
			if len(got) != len(e.lines)+1 || got[0] != "" {
				return internal("[%s] %s has %d lines, want %d", s.name, e.key, len(got)-1, len(e.lines))
			}
			for j := range e.lines {
				t := pyStrip(got[j+1])
				if t != e.lines[j].text {
					return internal("[%s] %s line %d is %q, want %q", s.name, e.key, e.lines[j].line, t, e.lines[j].text)
				}
				e.lines[j].text = t
			}
		}
	}
	for _, sec := range file.Sections() {
		if sec.Name() == ini.DefaultSection && len(sec.Keys()) == 0 {
			continue
		}
		if f.section(sec.Name()) == nil {
			return internal("unexpected section [%s]", sec.Name())
		}
	}
	return nil
}

func clip(s string) string {
	const n = 60
	if len(s) <= n {
		return s
	}
	for i := range s {
		if i >= n {
			return s[:i] + "..."
		}
	}
	return s
}
