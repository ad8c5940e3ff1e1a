package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// filterKeys are the keys fail2ban reads from a filter (client/filterreader.py _configOpts),
// in a fixed order. A jail may override each of them.
func filterKeys() []string {
	return []string{"usedns", "prefregex", "ignoreregex", "failregex", "maxlines", "datepattern", "journalmatch"}
}

func isFilterKey(k string) bool {
	switch k {
	case "usedns", "prefregex", "ignoreregex", "failregex", "maxlines", "datepattern", "journalmatch":
		return true
	}
	return false
}

// sectionTagRE is a tag naming a key of another section, <section/key> (fail2ban's
// SECTION_OPTNAME_CRE).
var sectionTagRE = regexp.MustCompile(`^([\w\-]+)/([^\s>]+)$`)

// leftoverRE finds a %(name)s that survived resolution (it can only come from reference
// options, which are used as they are).
var leftoverRE = regexp.MustCompile(`%\([^)]+\)s`)

// LoadFilter resolves a filter reference such as "sshd", "sshd[mode=aggressive]" or
// "/path/x.conf[k=v]" against dir/filter.d and returns the resolved filter.
//
// Files are read as fail2ban reads them: filter.d/NAME.conf, filter.d/NAME.d/*.conf,
// filter.d/NAME.local, filter.d/NAME.d/*.local, each with its [INCLUDES] and its own .local.
// A reference that is a path (it contains '/') names the file without the filter.d lookup;
// a ".conf" or ".local" ending is optional.
//
// vars are options of the jail that uses the filter. fail2ban passes a jail's own options
// (enabled, backend, filter, maxretry, findtime, bantime, logpath, ...) this way; they rank
// below the reference's options and above the filter's own keys when %(name)s in a filter key
// or a <tag> is resolved. vars["backend"] also picks logtype (journal for systemd backends,
// else file) unless the reference or the filter's [Definition] sets logtype. A var named like
// a filter key (failregex, ...) is ignored here: a jail's own failregex replaces the filter's,
// which is Load's business.
func LoadFilter(dir, ref string, vars map[string]string) (*FilterDef, Diags) {
	res := loadFilter(osFS{}, dir, ref, Pos{}, literalEntries(vars, Pos{}), false)
	return res.def, dedupe(res.diags)
}

// LoadFilterFile is LoadFilter for an explicit file (with its [INCLUDES] and its .local, as
// fail2ban-regex reads one). The path may carry options: "/tmp/x.conf[mode=extra]".
func LoadFilterFile(path string, vars map[string]string) (*FilterDef, Diags) {
	res := loadFilter(osFS{}, "", path, Pos{}, literalEntries(vars, Pos{}), true)
	return res.def, dedupe(res.diags)
}

// filterResult is a loaded filter and what a jail needs besides the FilterDef.
type filterResult struct {
	def   *FilterDef
	diags Diags
	// combined are fail2ban's "combined options" of the filter, substituted: a jail sees them
	// as known/<name>.
	combined map[string][]Value
	// tags substitutes <tag>s the way the filter's own values were substituted.
	tags *tagSubst
	// names are every key the filter defines or references: a jail may set them.
	names map[string]bool
}

func loadFilter(fsys fileSystem, dir, ref string, refPos Pos, vars map[string]*entry, explicit bool) *filterResult {
	return loadFilterBudget(fsys, dir, ref, refPos, vars, explicit, newBudget())
}

func loadFilterBudget(fsys fileSystem, dir, ref string, refPos Pos, vars map[string]*entry, explicit bool, work *budget) *filterResult {
	res := &filterResult{}
	report := func(d Diag) { res.diags = append(res.diags, d) }

	var (
		name string
		opts map[string]string
		err  error
	)
	if explicit && !strings.HasSuffix(strings.TrimSpace(ref), "]") {
		name = strings.TrimSpace(ref)
	} else {
		name, opts, err = ParseRef(ref)
	}
	if err != nil {
		report(Diag{Severity: Error, Pos: refPos, Key: "filter", Msg: fmt.Sprintf("bad filter reference %q: %v%s", ref, err, commentHint(ref))})
		return res
	}

	r := newReader(fsys)
	r.regexFile = true
	var files []string
	switch {
	case explicit:
		if fsys.IsFile(name) {
			files = []string{name}
		}
	default:
		base := strings.TrimSuffix(strings.TrimSuffix(name, ".conf"), ".local")
		if !filepath.IsAbs(base) {
			base = filepath.Join(dir, "filter.d", base)
		}
		files = r.layered(base)
		name = base
	}
	if len(files) == 0 {
		where := name
		if !explicit {
			where = name + ".conf"
		}
		report(Diag{Severity: Error, Pos: refPos, Key: "filter", Msg: fmt.Sprintf("filter %q not found: no %s", ref, where), Err: ErrNotFound})
		return res
	}
	st := r.merge(r.expand(files))
	res.diags = append(res.diags, r.diags...)

	def := &FilterDef{
		Name:    strings.TrimSuffix(strings.TrimSuffix(filepath.Base(name), ".conf"), ".local"),
		File:    files[0],
		Options: opts,
	}
	res.def = def
	res.names = filterNames(st)

	defSec := st.sections["Definition"]
	if defSec == nil {
		report(Diag{Severity: Error, Pos: Pos{File: files[0]}, Msg: "filter has no [Definition] section"})
	}

	// The reference's options win over the jail's vars (fail2ban merges its "init options"
	// over the jail options it was given).
	overlay := map[string]*entry{}
	for k, e := range vars {
		if !isFilterKey(k) {
			overlay[k] = e
		}
	}
	initOpts := map[string]*entry{}
	for k, v := range opts {
		e := &entry{key: k, pos: refPos, lit: splitLiteral(v, refPos)}
		initOpts[k] = e
		overlay[strings.ToLower(k)] = e
	}
	if _, ok := opts["logtype"]; !ok && (defSec == nil || defSec.keys["logtype"] == nil) {
		lt := "file"
		if b := vars["backend"]; b != nil && strings.HasPrefix(strings.TrimSpace(joinText(b.lit)), "systemd") {
			lt = "journal"
		}
		e := &entry{key: "logtype", pos: refPos, lit: []Value{{Text: lt, Pos: refPos}}}
		initOpts["logtype"] = e
		overlay["logtype"] = e
	}

	interps := map[string]*interp{}
	failed := map[*entry]bool{}
	sectionInterp := func(sec string) *interp {
		if in := interps[sec]; in != nil {
			return in
		}
		in := newInterp(st, sec)
		in.report = report
		in.failed = failed
		in.work = work
		interps[sec] = in
		return in
	}
	withVars := newInterp(st, "Definition")
	withVars.overlay = overlay
	withVars.report = report
	withVars.failed = failed
	withVars.work = work

	combined := map[string][]Value{}
	set := func(k string, v []Value, ok bool) {
		if ok {
			combined[k] = v
		}
	}
	if defSec != nil {
		for _, k := range filterKeys() {
			if overlay[k] != nil {
				continue
			}
			if defSec.keys[k] == nil && st.defaults.keys[k] == nil {
				continue
			}
			v, _, ok := withVars.value(k)
			set(k, v, ok)
		}
		for _, k := range defSec.order {
			if _, done := combined[k]; done || k == "__name__" {
				continue
			}
			v, _, ok := sectionInterp("Definition").value(k)
			set(k, v, ok)
		}
	}
	if initSec := st.sections["Init"]; initSec != nil {
		for _, k := range initSec.order {
			if k == "__name__" {
				continue
			}
			v, _, ok := sectionInterp("Init").value(k)
			if !ok {
				continue
			}
			if !strings.HasPrefix(k, "known/") {
				combined["known/"+k] = v
			}
			if initOpts[k] == nil {
				initOpts[k] = &entry{key: k, lit: v}
			}
		}
	}
	for k, e := range initOpts {
		combined[k] = e.lit
	}

	// <tag> substitution (fail2ban's getCombined): a tag is a combined option, else a key
	// looked up in [Definition] (with the overlay) and [DEFAULT], or <section/key>.
	lookup := func(tag string) ([]Value, bool) {
		if v, ok := combined[tag]; ok {
			return v, true
		}
		if defSec == nil {
			return nil, false
		}
		if m := sectionTagRE.FindStringSubmatch(tag); m != nil {
			sec, opt := m[1], strings.ToLower(m[2])
			switch strings.ToLower(sec) {
			case "known":
				in := sectionInterp("Definition")
				if cur := defSec.keys[opt]; cur != nil && cur.prev != nil {
					if v, ok := in.expand(cur.prev, nil, opt); ok {
						return v, true
					}
					return nil, false
				}
				if v, found, ok := in.value(opt); found {
					return v, ok
				}
			case "default":
				if v, found, ok := sectionInterp("DEFAULT").value(opt); found {
					return v, ok
				}
			default:
				if st.sections[sec] != nil {
					if v, found, ok := sectionInterp(sec).value(opt); found {
						return v, ok
					}
				}
			}
		}
		v, found, ok := withVars.value(strings.ToLower(tag))
		if !found {
			return nil, false
		}
		return v, ok
	}
	res.tags = newTagSubst("Definition", lookup, report)
	res.tags.work = work
	for _, k := range sortedKeys(combined) {
		v, _, ok := res.tags.resolve(k, firstPos(combined[k]), k)
		if ok {
			combined[k] = v
		} else {
			delete(combined, k)
		}
	}
	res.combined = combined
	fillFilterDef(def, combined, report)
	if defSec != nil && len(def.FailRegex) == 0 && !hasErrors(res.diags) {
		report(Diag{Severity: Error, Pos: defSec.pos, Section: "Definition", Key: "failregex", Msg: "filter defines no failregex"})
	}
	return res
}

// fillFilterDef sets the typed fields of def from the substituted combined options.
func fillFilterDef(def *FilterDef, combined map[string][]Value, report func(Diag)) {
	bad := func(v Value, key, msg string) {
		report(Diag{Severity: Error, Pos: v.Pos, Section: "Definition", Key: key, Msg: msg})
	}
	regexes := func(key string) []Value {
		lines := dropEmpty(combined[key])
		for _, l := range lines {
			if m := leftoverRE.FindString(l.Text); m != "" {
				bad(l, key, fmt.Sprintf("unresolved %s", m))
			}
		}
		return lines
	}
	def.FailRegex = regexes("failregex")
	def.IgnoreRegex = regexes("ignoreregex")
	def.DatePattern = regexes("datepattern")
	switch p := regexes("prefregex"); len(p) {
	case 0:
	case 1:
		def.PrefRegex = &p[0]
	default:
		bad(p[1], "prefregex", "prefregex must be a single line")
	}
	def.MaxLines = 1
	if v, ok := combined["maxlines"]; ok {
		s := single(v)
		n, err := parseInt(s.Text)
		switch {
		case err != nil:
			bad(s, "maxlines", err.Error()+commentHint(s.Text))
		case n < 1:
			bad(s, "maxlines", fmt.Sprintf("maxlines must be at least 1, not %d", n))
		default:
			def.MaxLines = n
		}
	}
	if v, ok := combined["usedns"]; ok {
		s := single(v)
		if _, err := parseUseDNS(s.Text); err != nil {
			bad(s, "usedns", err.Error())
		}
	}
	def.Vars = map[string]Value{}
	for k, v := range combined {
		if strings.HasPrefix(k, "known/") {
			continue
		}
		def.Vars[strings.ToLower(k)] = Value{Text: joinText(v), Pos: firstPos(v)}
	}
}

// filterNames lists every key a filter defines, and every name its values reference as
// %(name)s or <name>: a jail may set any of them to parameterise the filter.
func filterNames(st *store) map[string]bool {
	names := map[string]bool{}
	add := func(s *section) {
		for k, e := range s.keys {
			names[k] = true
			for _, l := range e.lines {
				for _, m := range refNameRE.FindAllStringSubmatch(l.text, -1) {
					names[strings.ToLower(m[1])] = true
				}
				for _, m := range tagRE.FindAllStringSubmatch(l.text, -1) {
					names[strings.ToLower(m[1])] = true
				}
			}
		}
	}
	add(st.defaults)
	for _, n := range st.order {
		add(st.sections[n])
	}
	return names
}

var refNameRE = regexp.MustCompile(`%\(([^)/]+)\)s`)

func hasErrors(ds Diags) bool { return len(ds.Errors()) > 0 }

func parseUseDNS(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "yes", "warn", "no", "raw":
		return v, nil
	}
	return "", fmt.Errorf("invalid usedns %q (use yes, warn, no or raw)%s", s, commentHint(s))
}
