package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// fileSystem is what the loader needs from the file system; tests and the fuzzer use an
// in-memory one.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
	// IsFile reports whether name exists and is a regular file (after symlinks).
	IsFile(name string) bool
	Glob(pattern string) ([]string, error)
}

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read at most one byte more than allowed: an enormous file is refused unread.
	return io.ReadAll(io.LimitReader(f, maxFileBytes+1))
}

func (osFS) IsFile(name string) bool {
	st, err := os.Stat(name)
	return err == nil && st.Mode().IsRegular()
}

func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// entry is one key of a merged section: either raw text still to interpolate, or (lit != nil)
// a value used as it is.
type entry struct {
	key   string
	lines []rawLine
	pos   Pos
	lit   []Value
	// owner is the section the entry belongs to; prev is the value the key had in that
	// section before this entry overrode it (what %(known/key)s reads).
	owner *section
	prev  *entry
}

// section is a section merged over every file read, in order.
type section struct {
	name  string
	pos   Pos // header line in the last file that has the section
	keys  map[string]*entry
	order []string // keys in the order they first appeared
}

func newSection(name string, pos Pos) *section {
	return &section{name: name, pos: pos, keys: map[string]*entry{}}
}

// set adds or overrides a key; the overridden value stays reachable as e.prev (fail2ban keeps
// it in a KNOWN/<section> section).
func (s *section) set(e *entry) {
	e.owner = s
	if old, ok := s.keys[e.key]; ok {
		e.prev = old
	} else {
		s.order = append(s.order, e.key)
	}
	s.keys[e.key] = e
}

// store is a configuration merged over all its files: [DEFAULT] and every other section.
type store struct {
	defaults *section
	sections map[string]*section
	order    []string // section names in the order they first appeared
	files    []string // every file read, in order
}

func newStore() *store {
	return &store{defaults: newSection("DEFAULT", Pos{}), sections: map[string]*section{}}
}

// reader reads layered configuration files and collects the problems it finds.
type reader struct {
	fs     fileSystem
	diags  Diags
	parsed map[string]*parsedFile // nil value: unreadable
	nread  int
	// regexFile says the files are filters: ' ;' comments on value lines get a warning.
	regexFile bool
}

func newReader(fsys fileSystem) *reader {
	return &reader{fs: fsys, parsed: map[string]*parsedFile{}}
}

func (r *reader) add(d ...Diag) { r.diags = append(r.diags, d...) }

// parse reads and parses one file once.
func (r *reader) parse(path string) *parsedFile {
	if f, ok := r.parsed[path]; ok {
		return f
	}
	r.nread++
	if r.nread > maxFiles {
		r.add(Diag{Severity: Error, Pos: Pos{File: path}, Msg: fmt.Sprintf("more than %d files to read; include loop?", maxFiles)})
		r.parsed[path] = nil
		return nil
	}
	data, err := r.fs.ReadFile(path)
	if err != nil {
		r.add(Diag{Severity: Error, Pos: Pos{File: path}, Msg: "cannot read file: " + errText(err), Err: err})
		r.parsed[path] = nil
		return nil
	}
	f, diags := parseFile(path, data)
	r.add(diags...)
	r.parsed[path] = f
	return f
}

// layered lists the files fail2ban reads for a configuration named by base (".../jail" or
// ".../filter.d/sshd"), in fail2ban's order (configreader.py ConfigReaderUnshared.read):
// base.conf, base.d/*.conf sorted, base.local, base.d/*.local sorted; only those that exist.
func (r *reader) layered(base string) []string {
	var files []string
	add := func(p string) {
		if r.fs.IsFile(p) {
			files = append(files, p)
		}
	}
	glob := func(pattern string) {
		m, err := r.fs.Glob(pattern)
		if err != nil {
			return
		}
		sort.Strings(m)
		for _, p := range m {
			add(p)
		}
	}
	add(base + ".conf")
	glob(escapeGlob(base+".d") + "/*.conf")
	add(base + ".local")
	glob(escapeGlob(base+".d") + "/*.local")
	return files
}

func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// localOf is the .local companion of a file: x.conf -> x.local.
func localOf(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".local"
}

// expand returns the files to merge, in order: for each of top, with its .local companion
// after it (unless top already lists it), the files of its [INCLUDES] before, the file, the
// files of its [INCLUDES] after, recursively (configparserinc.py _getIncludes).
func (r *reader) expand(top []string) []string {
	var out []string
	listed := map[string]bool{}
	for _, p := range top {
		listed[p] = true
	}
	for _, p := range top {
		out = append(out, r.includes(p, nil)...)
		if l := localOf(p); !listed[l] && l != p && r.fs.IsFile(l) {
			out = append(out, r.includes(l, nil)...)
		}
	}
	return out
}

// includes returns path with its includes around it. chain holds the including files, to
// detect loops.
func (r *reader) includes(path string, chain []string) []string {
	f := r.parse(path)
	if f == nil {
		return nil
	}
	var before, after []string
	if inc := f.section("INCLUDES"); inc != nil {
		chain := append(chain[:len(chain):len(chain)], path)
		for _, opt := range []string{"before", "after"} {
			e := inc.entry(opt)
			if e == nil {
				continue
			}
			var list []string
			for _, l := range e.lines {
				for _, name := range strings.Fields(l.text) {
					list = append(list, r.include(path, name, Pos{File: path, Line: l.line}, chain)...)
				}
			}
			if opt == "before" {
				before = list
			} else {
				after = list
			}
		}
	}
	out := append(before, path)
	return append(out, after...)
}

// include resolves one name of an [INCLUDES] list of file from.
func (r *reader) include(from, name string, pos Pos, chain []string) []string {
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(from), p)
	}
	for i, c := range chain {
		if c == p {
			names := make([]string, 0, len(chain)-i+1)
			for _, c := range chain[i:] {
				names = append(names, filepath.Base(c))
			}
			names = append(names, filepath.Base(p))
			r.add(Diag{Severity: Error, Pos: pos, Section: "INCLUDES", Msg: "include loop: " + strings.Join(names, " -> ")})
			return nil
		}
	}
	if len(chain) >= maxIncludeNest {
		r.add(Diag{Severity: Error, Pos: pos, Section: "INCLUDES", Msg: fmt.Sprintf("includes nested more than %d deep", maxIncludeNest)})
		return nil
	}
	if !r.fs.IsFile(p) {
		// fail2ban skips a missing include silently. A missing .local is normal (that is what
		// .local files are for); a missing .conf is most likely a typo.
		if filepath.Ext(p) != ".local" {
			r.add(Diag{Severity: Warning, Pos: pos, Section: "INCLUDES", Msg: fmt.Sprintf("included file %s not found; skipped", p), Err: ErrNotFound})
		}
		return nil
	}
	out := r.includes(p, chain)
	if l := localOf(p); l != p && r.fs.IsFile(l) {
		out = append(out, r.includes(l, chain)...)
	}
	return out
}

// merge reads files in order into a store: later files override earlier keys, and the
// overridden values are kept as known/ values.
func (r *reader) merge(files []string) *store {
	st := newStore()
	st.files = files
	for _, path := range files {
		f := r.parse(path)
		if f == nil {
			continue
		}
		for _, s := range f.sections {
			var dst *section
			if s.name == "DEFAULT" {
				dst = st.defaults
			} else {
				dst = st.sections[s.name]
				if dst == nil {
					dst = newSection(s.name, s.pos)
					st.sections[s.name] = dst
					st.order = append(st.order, s.name)
				}
				dst.pos = s.pos
			}
			for _, e := range s.entries {
				r.checkComments(s.name, e)
				dst.set(&entry{key: e.key, lines: e.lines, pos: e.pos})
			}
		}
	}
	return st
}

// checkComments warns when Python's ' ;' inline comment rule cut a line of a regex: fail2ban
// does the same cut, silently, and the result is rarely what was meant.
func (r *reader) checkComments(sec string, e *rawEntry) {
	if !r.regexFile && !isRegexKey(e.key) {
		return
	}
	if r.regexFile && (sec == "INCLUDES" || !mayHoldRegex(e.key)) {
		return
	}
	for _, l := range e.lines {
		if l.comment == "" || l.text == "" {
			continue
		}
		r.add(Diag{Severity: Warning, Pos: Pos{File: e.pos.File, Line: l.line}, Section: sec, Key: e.key,
			Msg: fmt.Sprintf("%q after ' ;' is a comment in this format and was dropped (as fail2ban does); write '\\;' or '[;]' if it belongs to the regex", clip(l.comment))})
	}
}

// isRegexKey tells the keys of a jail section whose lines are regexes.
func isRegexKey(key string) bool {
	switch key {
	case "failregex", "ignoreregex", "prefregex", "datepattern":
		return true
	}
	return false
}

// mayHoldRegex tells the keys of a filter file that may hold regex text: all but a few scalars.
func mayHoldRegex(key string) bool {
	switch key {
	case "maxlines", "usedns", "mode", "logtype", "journalmatch", "before", "after":
		return false
	}
	return true
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
