package config

import (
	"fmt"
	"regexp"
	"strings"
)

// tagRE matches one <tag> (fail2ban's TAG_CRE in helpers.py): no space, '<' or '>' inside, so in
// <lt_<logtype>/__prefix_line> only the inner <logtype> matches first.
var tagRE = regexp.MustCompile(`<([^ <>]+)>`)

// tagSubst replaces <tag> references the way fail2ban's substituteRecursiveTags does for a
// filter: a tag whose name is known is replaced by that value (itself substituted first),
// everywhere in the value; a replacement can form a new tag with the text around it
// (<lt_<logtype>/...> becomes <lt_file/...>), so the value is scanned again until no known tag
// is left. Unknown tags (<HOST>, <F-USER>, <ADDR>, ...) stay for the regex engine.
type tagSubst struct {
	// lookup returns the value (%(name)s already resolved) that a tag name stands for.
	lookup func(name string) ([]Value, bool)
	memo   map[string]tagMemo
	stack  []string
	active map[string]bool // names on the stack
	report func(Diag)
	// section names the section in reports.
	section string
	work    *budget
}

func newTagSubst(section string, lookup func(string) ([]Value, bool), report func(Diag)) *tagSubst {
	return &tagSubst{lookup: lookup, memo: map[string]tagMemo{}, active: map[string]bool{}, report: report, section: section}
}

type tagMemo struct {
	v         []Value
	known, ok bool
}

func (t *tagSubst) problem(pos Pos, key, msg string) {
	if t.report != nil {
		t.report(Diag{Severity: Error, Pos: pos, Section: t.section, Key: key, Msg: msg})
	}
}

// resolve returns the fully substituted value of tag name; known is false for a tag that is
// not a key (left as it is), ok is false when substitution failed (reported).
func (t *tagSubst) resolve(name string, pos Pos, key string) (v []Value, known, ok bool) {
	if m, done := t.memo[name]; done {
		return m.v, m.known, m.ok
	}
	if t.active[name] {
		i := len(t.stack) - 1
		for i > 0 && t.stack[i] != name {
			i--
		}
		chain := append(append([]string{}, t.stack[i:]...), name)
		t.problem(pos, key, "tag loop: <"+strings.Join(chain, "> -> <")+">")
		return nil, true, false
	}
	raw, found := t.lookup(name)
	if !found {
		t.memo[name] = tagMemo{ok: true}
		return nil, false, true
	}
	if len(t.stack) >= maxTagDepth {
		t.problem(pos, key, fmt.Sprintf("tags nested more than %d levels deep", maxTagDepth))
		return nil, true, false
	}
	t.stack = append(t.stack, name)
	t.active[name] = true
	v, ok = t.subst(raw, name)
	t.stack = t.stack[:len(t.stack)-1]
	delete(t.active, name)
	t.memo[name] = tagMemo{v: v, known: true, ok: ok}
	return v, true, ok
}

// subst substitutes every known tag in v, the value of key owner.
func (t *tagSubst) subst(v []Value, owner string) ([]Value, bool) {
	for step := 0; ; step++ {
		name, pos, found, ok := t.firstKnown(v, owner)
		if !ok {
			return nil, false
		}
		if !found {
			return v, true
		}
		if step >= maxTagSteps {
			t.problem(pos, owner, fmt.Sprintf("tag substitution does not end after %d steps", maxTagSteps))
			return nil, false
		}
		r, _, ok := t.resolve(name, pos, owner)
		if !ok {
			return nil, false
		}
		v = replaceTag(v, "<"+name+">", r)
		if !t.work.spend(2 * valueSize(v)) {
			if t.work.report() {
				t.problem(pos, owner, budgetMsg)
			}
			return nil, false
		}
		if valueSize(v) > maxValueBytes {
			t.problem(pos, owner, fmt.Sprintf("value grows beyond %d bytes after tag substitution", maxValueBytes))
			return nil, false
		}
	}
}

// firstKnown finds the leftmost tag in v that names a known value.
func (t *tagSubst) firstKnown(v []Value, owner string) (name string, pos Pos, found, ok bool) {
	for _, l := range v {
		s := l.Text
		for off := 0; off < len(s); {
			if strings.IndexByte(s[off:], '<') < 0 {
				break
			}
			m := tagRE.FindStringSubmatchIndex(s[off:])
			if m == nil {
				break
			}
			name := s[off+m[2] : off+m[3]]
			off += m[1]
			if name == owner {
				// fail2ban refuses a value that names itself before looking anything up.
				msg := fmt.Sprintf("<%s> refers to itself", name)
				if strings.ToLower(name) != name {
					// <HOST> in the value of a key "host": tags find keys case-insensitively.
					msg = fmt.Sprintf("<%s> refers to itself: a key named %q defines the tag <%s> (tag names match keys in any case), so the regex engine never sees it; rename the key", name, strings.ToLower(name), name)
				}
				t.problem(l.Pos, strings.ToLower(owner), msg)
				return "", l.Pos, false, false
			}
			_, known, ok := t.resolve(name, l.Pos, owner)
			if !ok {
				return "", l.Pos, false, false
			}
			if known {
				return name, l.Pos, true, true
			}
		}
	}
	return "", Pos{}, false, true
}

// replaceTag replaces every occurrence of tag in v by the lines of r.
func replaceTag(v []Value, tag string, r []Value) []Value {
	var b lineBuilder
	for _, l := range v {
		s := l.Text
		if !strings.Contains(s, tag) {
			b.keep(l) // the line and its position as they are
			continue
		}
		b.start(l.Pos)
		for {
			j := strings.Index(s, tag)
			if j < 0 {
				b.text(s)
				break
			}
			b.text(s[:j])
			b.splice(r)
			s = s[j+len(tag):]
		}
	}
	return b.done()
}
