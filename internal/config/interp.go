package config

import (
	"fmt"
	"regexp"
	"strings"
)

// sectionRefRE matches the name inside %(section/name)s (fail2ban's SECTION_OPTSUBST_CRE).
var sectionRefRE = regexp.MustCompile(`^([\w\-]+)/(.+)$`)

// interp resolves %(name)s references for keys of one section, the way fail2ban's
// configparser does: a name is looked up in the overlay (options passed with a reference, jail
// options passed to a filter), then "__name__" (the section's name), then the keys injected
// into the section (the filter's values as known/...), the section, [DEFAULT], and last the
// built-in defaults. %(section/name)s reads another section (falling back to its DEFAULT),
// %(default/name)s reads [DEFAULT], %(known/name)s the value name had before the file that
// last set it, and %% is a literal %. Referenced raw text is always interpolated in the
// context of the section being resolved, as Python does.
//
// Unlike fail2ban, a name that cannot be resolved is an error (fail2ban's own configparser
// raises too, but fail2ban ignores the error for every key it does not happen to need).
type interp struct {
	st       *store
	sec      *section // nil when the section does not exist
	name     string   // the section name, for __name__ and messages
	overlay  map[string]*entry
	inject   map[string]*entry
	fallback map[string]*entry
	memo     map[*entry]memoValue
	// report receives problems; nil means stay quiet (resolution for a best guess).
	report func(Diag)
	// diagSection names the section in reports (a jail name).
	diagSection string
	// failed is shared by the interps of one load: an entry that cannot be resolved is
	// reported once, whichever context meets it first.
	failed map[*entry]bool
	work   *budget
}

type memoValue struct {
	v  []Value
	ok bool
}

func newInterp(st *store, name string) *interp {
	return &interp{st: st, sec: st.sections[name], name: name, memo: map[*entry]memoValue{}, diagSection: name, failed: map[*entry]bool{}}
}

// problem reports that entry e cannot be resolved.
func (in *interp) problem(e *entry, pos Pos, msg string) {
	if in.report == nil || in.failed[e] {
		return
	}
	in.failed[e] = true
	in.report(Diag{Severity: Error, Pos: pos, Section: in.diagSection, Key: e.key, Msg: msg})
}

// lookup finds the entry of a plain name (already lower-case).
func (in *interp) lookup(name string) *entry {
	if e := in.overlay[name]; e != nil {
		return e
	}
	if name == "__name__" {
		return &entry{key: name, lit: []Value{{Text: in.name, Pos: in.secPos()}}}
	}
	if e := in.inject[name]; e != nil {
		return e
	}
	if in.sec != nil {
		if e := in.sec.keys[name]; e != nil {
			return e
		}
	}
	return in.lookupDefault(name)
}

func (in *interp) lookupDefault(name string) *entry {
	if e := in.st.defaults.keys[name]; e != nil {
		return e
	}
	return in.fallback[name]
}

func (in *interp) secPos() Pos {
	if in.sec != nil {
		return in.sec.pos
	}
	return Pos{}
}

// lookupRef finds the entry a %(ref)s in the value of from names.
func (in *interp) lookupRef(ref string, from *entry) *entry {
	lower := strings.ToLower(ref)
	m := sectionRefRE.FindStringSubmatch(ref)
	if m == nil {
		return in.lookup(lower)
	}
	// A key that is literally named "known/x" (the filter values a jail sees, [Init]'s
	// known/ copies) wins, as in Python where such keys are part of the lookup map.
	if e := in.lookup(lower); e != nil {
		return e
	}
	sec, opt := m[1], strings.ToLower(m[2])
	switch strings.ToLower(sec) {
	case "default":
		return in.lookupDefault(opt)
	case "known":
		// The value the key had before the entry being expanded overrode it. fail2ban keeps
		// one such value per key; following the chain of overrides lets three layers
		// (.conf, .local, .d/*.local) each extend a value, where fail2ban would loop.
		if from != nil && from.key == opt && from.prev != nil {
			return from.prev
		}
		owner := in.sec
		if from != nil && from.owner == in.st.defaults {
			owner = in.st.defaults
		}
		if owner != nil {
			if cur := owner.keys[opt]; cur != nil && cur.prev != nil && cur != from {
				return cur.prev
			}
		}
		return in.lookupDefault(opt)
	}
	s := in.st.sections[sec]
	if s == nil {
		return nil
	}
	if e := s.keys[opt]; e != nil {
		return e
	}
	return in.lookupDefault(opt)
}

// value resolves a key of the section. found is false when the key is not set anywhere; ok
// is false when it is set but cannot be resolved (the problem was reported).
func (in *interp) value(key string) (v []Value, found, ok bool) {
	e := in.lookup(key)
	if e == nil {
		return nil, false, false
	}
	v, ok = in.expand(e, nil, key)
	return v, true, ok
}

// expand interpolates one entry. stack holds the entries being expanded (loop detection);
// top is the key the caller asked for (for messages).
func (in *interp) expand(e *entry, stack []*entry, top string) ([]Value, bool) {
	if e.lit != nil {
		return e.lit, true
	}
	if m, ok := in.memo[e]; ok {
		return m.v, m.ok
	}
	for i, s := range stack {
		if s == e {
			names := make([]string, 0, len(stack)-i+1)
			for _, s := range stack[i:] {
				names = append(names, s.key)
			}
			names = append(names, e.key)
			in.problem(e, e.pos, "interpolation loop: "+strings.Join(names, " -> "))
			return nil, false
		}
	}
	if len(stack) >= maxInterpDepth {
		in.problem(e, e.pos, fmt.Sprintf("interpolation nested more than %d levels deep", maxInterpDepth))
		return nil, false
	}
	stack = append(stack[:len(stack):len(stack)], e)
	v, ok := in.expandLines(e, stack, top)
	in.memo[e] = memoValue{v: v, ok: ok}
	return v, ok
}

func (in *interp) expandLines(e *entry, stack []*entry, top string) ([]Value, bool) {
	var b lineBuilder
	for i, l := range e.lines {
		p := Pos{File: e.pos.File, Line: l.line}
		if i == 0 {
			b.start(p)
		} else {
			b.next(p)
		}
		s := l.text
		for s != "" {
			j := strings.IndexByte(s, '%')
			if j < 0 {
				b.text(s)
				break
			}
			b.text(s[:j])
			s = s[j:]
			if strings.HasPrefix(s, "%%") {
				b.text("%")
				s = s[2:]
				continue
			}
			ref, rest, ok := cutRef(s)
			if !ok {
				in.problem(e, p, fmt.Sprintf("bad '%%' in %q: '%%' must start %%(name)s; write '%%%%' for a literal '%%'", clip(s)))
				return nil, false
			}
			s = rest
			target := in.lookupRef(ref, e)
			if target == nil {
				msg := fmt.Sprintf("%%(%s)s is not defined", ref)
				if top != "" && top != e.key {
					msg += " (needed by " + top + ")"
				}
				in.problem(e, p, msg)
				return nil, false
			}
			sub, ok := in.expand(target, stack, top)
			if !ok {
				return nil, false
			}
			b.splice(sub)
			if !in.work.spend(valueSize(sub)) {
				if in.work.report() {
					in.problem(e, p, budgetMsg)
				}
				return nil, false
			}
			if b.size > maxValueBytes {
				in.problem(e, p, fmt.Sprintf("value grows beyond %d bytes after interpolation", maxValueBytes))
				return nil, false
			}
		}
	}
	return b.done(), true
}

// cutRef parses "%(name)s..." (Python's `%\(([^)]+)\)s`) into name and the rest.
func cutRef(s string) (name, rest string, ok bool) {
	if !strings.HasPrefix(s, "%(") {
		return "", "", false
	}
	k := strings.IndexByte(s[2:], ')')
	if k <= 0 {
		return "", "", false
	}
	end := 2 + k
	if end+1 >= len(s) || s[end+1] != 's' {
		return "", "", false
	}
	return s[2:end], s[end+2:], true
}

// literalEntries turns plain strings (options given with a reference, or a caller's vars) into
// entries used as they are. Keys are lower-cased, as Python's configparser does for vars.
func literalEntries(m map[string]string, pos Pos) map[string]*entry {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*entry, len(m))
	for k, v := range m {
		k = strings.ToLower(k)
		out[k] = &entry{key: k, pos: pos, lit: splitLiteral(v, pos)}
	}
	return out
}

// splitLiteral makes a multi-line string a value, every line at pos.
func splitLiteral(s string, pos Pos) []Value {
	parts := strings.Split(s, "\n")
	v := make([]Value, len(parts))
	for i, p := range parts {
		v[i] = Value{Text: p, Pos: pos}
	}
	return v
}
