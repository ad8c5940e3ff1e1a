package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// builtinFile is the Pos.File of built-in default values.
const builtinFile = "<built-in>"

// maxJailName keeps "lj-<name>", the iptables chain of a jail, within iptables' 28 characters
// with room to spare (fail2ban's chains are "f2b-<name>" and it checks the same way).
const maxJailName = 20

var jailNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func checkJailName(name string) error {
	if !jailNameRE.MatchString(name) {
		return fmt.Errorf("invalid jail name %q: use only letters, digits, '-' and '_'", name)
	}
	if len(name) > maxJailName {
		return fmt.Errorf("jail name %q is longer than %d characters (its firewall chain name would not fit)", name, maxJailName)
	}
	return nil
}

// Load reads a whole configuration directory the way fail2ban reads /etc/fail2ban:
// jail.conf, jail.d/*.conf (sorted), jail.local, jail.d/*.local (sorted), each with its
// [INCLUDES] and its .local; and the filter (from dir/filter.d) of every enabled jail.
//
// Every section but [DEFAULT] and [INCLUDES] is a jail. Config.Jails lists them all, enabled
// or not; disabled jails are checked too, but their problems are warnings.
func Load(dir string) (*Config, Diags) {
	return load(osFS{}, dir, loadOptions{})
}

type loadOptions struct {
	// forceEnable loads every jail's filter as if the jail were enabled (fail2ban's
	// JailsReader force_enable; the compatibility test compares every stock jail).
	forceEnable bool
}

// jailLoader holds what every jail of one Load shares.
type jailLoader struct {
	fs       fileSystem
	dir      string
	opts     loadOptions
	st       *store
	builtin  map[string]*entry
	keys     map[string]keyKind
	defNames map[string]bool // keys of [DEFAULT] and names referenced from [DEFAULT] values
	// crossRefs are the keys some value reads as %(section/key)s: section -> key.
	crossRefs map[string]map[string]bool
	work      *budget
}

func load(fsys fileSystem, dir string, o loadOptions) (*Config, Diags) {
	cfg := &Config{Dir: dir}
	r := newReader(fsys)
	files := r.layered(filepath.Join(dir, "jail"))
	if len(files) == 0 {
		cfg.Diags = Diags{{Severity: Error, Pos: Pos{File: filepath.Join(dir, "jail.conf")}, Msg: "no jail.conf or jail.local in " + dir, Err: ErrNotFound}}
		return cfg, cfg.Diags
	}
	st := r.merge(r.expand(files))
	diags := r.diags

	l := &jailLoader{fs: fsys, dir: dir, opts: o, st: st, keys: jailKeyTable(), builtin: map[string]*entry{}, work: newBudget()}
	for k, v := range builtinDefaults(dir) {
		l.builtin[k] = &entry{key: k, lines: []rawLine{{text: v}}, pos: Pos{File: builtinFile}}
	}
	l.defNames = map[string]bool{}
	for _, k := range st.defaults.order {
		l.defNames[k] = true
		for _, n := range referencedNames(st.defaults.keys[k]) {
			l.defNames[n] = true
		}
	}
	l.crossRefs = crossRefs(st)
	for _, name := range st.order {
		if name == "INCLUDES" {
			continue
		}
		j, jd := l.jail(name)
		cfg.Jails = append(cfg.Jails, j)
		diags = append(diags, jd...)
	}
	cfg.Diags = dedupe(diags)
	return cfg, cfg.Diags
}

var crossRefRE = regexp.MustCompile(`%\(([\w\-]+)/([^)]+)\)s`)

// crossRefs collects every %(section/key)s of a configuration.
func crossRefs(st *store) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(s *section) {
		for _, e := range s.keys {
			for _, l := range e.lines {
				for _, m := range crossRefRE.FindAllStringSubmatch(l.text, -1) {
					if out[m[1]] == nil {
						out[m[1]] = map[string]bool{}
					}
					out[m[1]][strings.ToLower(m[2])] = true
				}
			}
		}
	}
	add(st.defaults)
	for _, n := range st.order {
		add(st.sections[n])
	}
	return out
}

// referencedNames are the names an entry references as %(name)s or <name>.
func referencedNames(e *entry) []string {
	var out []string
	for _, l := range e.lines {
		for _, m := range refNameRE.FindAllStringSubmatch(l.text, -1) {
			out = append(out, strings.ToLower(m[1]))
		}
		for _, m := range tagRE.FindAllStringSubmatch(l.text, -1) {
			out = append(out, strings.ToLower(m[1]))
		}
	}
	return out
}

// passedToFilter are the jail options fail2ban hands to the jail's filter
// (client/jailreader.py _configOpts, without the filter's own keys).
func passedToFilter() []string {
	return []string{"enabled", "backend", "maxretry", "maxmatches", "findtime", "bantime",
		"bantime.increment", "bantime.factor", "bantime.formula", "bantime.multipliers",
		"bantime.maxtime", "bantime.rndtime", "bantime.overalljails", "ignorecommand",
		"ignoreself", "ignoreip", "ignorecache", "filter", "logtimezone", "logencoding",
		"logpath", "action"}
}

func (l *jailLoader) interp(name string, report func(Diag), failed map[*entry]bool) *interp {
	in := newInterp(l.st, name)
	in.fallback = l.builtin
	in.report = report
	in.work = l.work
	if failed != nil {
		in.failed = failed
	}
	return in
}

// jail builds one jail.
func (l *jailLoader) jail(name string) (*Jail, Diags) {
	sec := l.st.sections[name]
	j := &Jail{Name: name, Pos: sec.pos, Vars: map[string]Value{}}
	var diags Diags
	report := func(d Diag) {
		if d.Section == "" {
			d.Section = name
		}
		diags = append(diags, d)
	}
	bad := func(v Value, key, msg string) {
		report(Diag{Severity: Error, Pos: v.Pos, Section: name, Key: key, Msg: msg})
	}
	if err := checkJailName(name); err != nil {
		report(Diag{Severity: Error, Pos: sec.pos, Section: name, Msg: err.Error()})
	}

	// enabled, backend and filter come first: the filter's values are visible to the rest.
	failed := map[*entry]bool{}
	first := l.interp(name, report, failed)
	scalar := func(in *interp, key string) (Value, bool) {
		v, found, ok := in.value(key)
		if !found || !ok {
			return Value{}, false
		}
		return single(v), true
	}
	// When enabled itself is broken, nobody knows whether the jail should run: its problems
	// stay errors.
	enabledKnown := false
	if v, found, ok := first.value("enabled"); found && ok {
		s := single(v)
		b, err := parseBool(s.Text)
		if err != nil {
			bad(s, "enabled", err.Error()+commentHint(s.Text))
		} else {
			enabledKnown = true
		}
		j.Enabled = b
	} else if !found {
		enabledKnown = true
	}
	backend, _ := scalar(first, "backend")
	filterV, found, ok := first.value("filter")
	var fr *filterResult
	if found && ok {
		fv := single(filterV)
		j.FilterRef = strings.TrimSpace(joinText(nonEmptyLines(filterV)))
		if j.FilterRef != "" && (j.Enabled || l.opts.forceEnable) {
			fr = l.loadFilter(name, j.FilterRef, fv.Pos)
			for _, d := range fr.diags {
				report(d)
			}
			if !hasErrors(fr.diags) {
				j.Filter = fr.def
			}
		}
	}

	// Everything else, with the filter's values visible as known/<name>.
	in := l.interp(name, report, failed)
	if fr != nil {
		in.inject = map[string]*entry{}
		for k, v := range fr.combined {
			if !strings.HasPrefix(k, "known/") {
				in.inject["known/"+k] = &entry{key: "known/" + k, lit: v}
			}
		}
	}
	get := func(key string) (Value, bool) { return scalar(in, key) }
	lines := func(key string) ([]Value, bool) {
		v, found, ok := in.value(key)
		return v, found && ok
	}
	nonNeg := func(key string, min int) int {
		v, ok := get(key)
		if !ok {
			return 0
		}
		n, err := parseInt(v.Text)
		if err != nil {
			bad(v, key, err.Error()+commentHint(v.Text))
			return 0
		}
		if n < min {
			bad(v, key, fmt.Sprintf("must be at least %d, not %d", min, n))
		}
		return n
	}
	// duration reads a time span; positive: it must be > 0; forever: -1 (Forever) is
	// allowed; optional: an empty value is 0.
	duration := func(key string, positive, forever, optional bool) Duration {
		v, ok := get(key)
		if !ok || (optional && v.Text == "") {
			return 0
		}
		d, err := ParseDuration(v.Text)
		switch {
		case err != nil:
			bad(v, key, err.Error()+commentHint(v.Text))
		case d == Forever && !forever:
			bad(v, key, "cannot be negative (forever)")
		case d == 0 && positive:
			bad(v, key, "must be positive")
		}
		return d
	}
	boolean := func(key string) bool {
		v, ok := get(key)
		if !ok {
			return false
		}
		b, err := parseBool(v.Text)
		if err != nil {
			bad(v, key, err.Error()+commentHint(v.Text))
		}
		return b
	}
	text := func(key string) string {
		v, ok := get(key)
		if !ok {
			return ""
		}
		return v.Text
	}
	// word is a single-word value (port, protocol, chain...): a '#' there is a comment mistake.
	word := func(key string) (Value, bool) {
		v, ok := get(key)
		if ok && hasHashComment(v.Text) {
			bad(v, key, fmt.Sprintf("invalid %s %q%s", key, v.Text, commentHint(v.Text)))
			return v, false
		}
		return v, ok
	}

	j.Backend = backend.Text
	if backend.Text != "" {
		checkBackend(backend, bad)
	}
	if v, ok := lines("logpath"); ok {
		for _, p := range nonEmptyLines(v) {
			if hasHashComment(p.Text) {
				bad(p, "logpath", fmt.Sprintf("invalid log path %q%s", p.Text, commentHint(p.Text)))
				continue
			}
			j.LogPath = append(j.LogPath, p.Text)
		}
	}
	j.LogEncoding = text("logencoding")
	j.MaxRetry = nonNeg("maxretry", 1)
	j.MaxMatches = nonNeg("maxmatches", 0)
	j.FindTime = duration("findtime", true, false, false)
	j.BanTime = duration("bantime", false, true, false)
	j.BanTimeIncrement = BanTimeIncrement{
		Enabled:      boolean("bantime.increment"),
		Formula:      text("bantime.formula"),
		MaxTime:      duration("bantime.maxtime", false, false, true),
		RndTime:      duration("bantime.rndtime", false, false, true),
		OverallJails: boolean("bantime.overalljails"),
	}
	if v, ok := get("bantime.factor"); ok && v.Text != "" {
		f, err := strconv.ParseFloat(v.Text, 64)
		if err != nil || f <= 0 {
			bad(v, "bantime.factor", fmt.Sprintf("invalid factor %q: want a positive number%s", v.Text, commentHint(v.Text)))
		}
		j.BanTimeIncrement.Factor = f
	}
	if v, ok := lines("bantime.multipliers"); ok {
		for _, w := range splitWords(v) {
			n, err := parseInt(w.Text)
			if err != nil || n < 0 {
				bad(w, "bantime.multipliers", fmt.Sprintf("invalid multiplier %q%s", w.Text, commentHint(joinText(v))))
				continue
			}
			j.BanTimeIncrement.Multipliers = append(j.BanTimeIncrement.Multipliers, n)
		}
	}
	if v, ok := lines("ignoreip"); ok {
		for _, w := range splitWords(v) {
			j.IgnoreIP = append(j.IgnoreIP, w.Text)
			p, kind, err := parseAddr(w.Text)
			switch kind {
			case addrNet:
				j.IgnoreNets = append(j.IgnoreNets, p)
			case addrHost:
				j.IgnoreHosts = append(j.IgnoreHosts, w.Text)
				report(Diag{Severity: Warning, Pos: w.Pos, Section: name, Key: "ignoreip", Msg: fmt.Sprintf("%q is a host name: it needs a DNS lookup, and an address it gets later is not ignored", w.Text)})
			default:
				msg := err.Error()
				if w.Text == "#" || strings.HasPrefix(w.Text, "#") {
					msg += "; inline comments start with ';' in this format"
				}
				bad(w, "ignoreip", msg)
			}
		}
	}
	j.IgnoreSelf = boolean("ignoreself")
	if v, ok := lines("ignoreuser"); ok {
		for _, w := range splitWords(v) {
			j.IgnoreUser = append(j.IgnoreUser, w.Text)
		}
	}
	j.IgnoreCommand = text("ignorecommand")

	if v, ok := word("port"); ok {
		j.Port = v.Text
		checkPort(v, bad)
	}
	if v, ok := word("protocol"); ok {
		j.Protocol = strings.ToLower(v.Text)
		checkProtocol(v, bad)
	}
	if v, ok := word("chain"); ok {
		j.Chain = v.Text
		if isKnownTag(v.Text) {
			// "<known/chain>": the action's own default, and every stock action uses INPUT.
			j.Chain = "INPUT"
		} else if v.Text == "" || len(v.Text) > 28 || strings.ContainsFunc(v.Text, func(r rune) bool { return r <= ' ' }) {
			bad(v, "chain", fmt.Sprintf("invalid chain %q", v.Text))
		}
	}
	j.BlockType = text("blocktype")
	if isKnownTag(j.BlockType) {
		j.BlockType = "REJECT"
	}
	if v, ok := word("banaction"); ok {
		j.BanAction = v.Text
		if _, _, err := ParseRef(v.Text); err != nil && v.Text != "" {
			bad(v, "banaction", fmt.Sprintf("invalid banaction %q: %v", v.Text, err))
		}
	}
	if v, ok := word("banaction_allports"); ok && v.Text != "" {
		if _, _, err := ParseRef(v.Text); err != nil {
			bad(v, "banaction_allports", fmt.Sprintf("invalid banaction_allports %q: %v", v.Text, err))
		}
	}
	if v, ok := lines("action"); ok {
		j.Actions = parseActions(v, bad)
	}
	j.Subnet = SubnetLimit{
		MaxHosts: nonNeg("subnet.maxhosts", 0),
		FindTime: duration("subnet.findtime", true, false, false),
		Prefix4:  prefixLen(get, "subnet.prefix4", 32, bad),
		Prefix6:  prefixLen(get, "subnet.prefix6", 128, bad),
	}
	j.DBPurgeAge = duration("dbpurgeage", false, true, false)
	j.MaxTracked = nonNeg("maxtracked", 1)

	// The filter keys a jail overrides (fail2ban sends a jail's own failregex & co. instead of
	// the filter's), and usedns: the jail's, else the filter's, else "no".
	j.UseDNS = "no"
	if fr != nil && fr.def != nil {
		if v, ok := fr.def.Vars["usedns"]; ok && v.Text != "" {
			if u, err := parseUseDNS(v.Text); err == nil {
				j.UseDNS = u
			}
		}
	}
	if (j.Enabled || l.opts.forceEnable) && (j.FilterRef == "" || j.Filter != nil) {
		l.overrideFilter(j, sec, in, fr, bad)
	}
	if j.Enabled {
		if len(j.LogPath) == 0 && !strings.HasPrefix(j.Backend, "systemd") && !hasErrors(diags) {
			report(Diag{Severity: Error, Pos: sec.pos, Section: name, Key: "logpath", Msg: "logpath is not set (and the backend is not systemd)"})
		}
		if j.Filter == nil && !hasErrors(diags) {
			report(Diag{Severity: Error, Pos: sec.pos, Section: name, Key: "filter", Msg: "no filter and no failregex: the jail can never match"})
		}
		if len(j.Actions) == 0 && !hasErrors(diags) {
			report(Diag{Severity: Warning, Pos: sec.pos, Section: name, Key: "action", Msg: "no action: failures are counted but nothing is banned"})
		}
	}

	// Vars: the keys written in the section are checked (a broken one is an error even if
	// nothing uses it); the keys only inherited from [DEFAULT] are resolved quietly and left
	// out when they cannot be (stock jail.conf has such keys, for actions nobody uses).
	for _, k := range sec.order {
		if fr == nil && isFilterKey(k) {
			continue // may use %(known/...)s of a filter that was not loaded: quietly below
		}
		if v, ok := lines(k); ok {
			j.Vars[k] = Value{Text: joinText(v), Pos: firstPos(v)}
		}
	}
	in.report = nil
	for _, k := range sec.order {
		if _, done := j.Vars[k]; !done {
			if v, ok := lines(k); ok {
				j.Vars[k] = Value{Text: joinText(v), Pos: firstPos(v)}
			}
		}
	}
	for _, k := range append(append([]string{}, l.st.defaults.order...), sortedKeys(l.builtin)...) {
		if _, done := j.Vars[k]; done {
			continue
		}
		if v, ok := lines(k); ok {
			j.Vars[k] = Value{Text: joinText(v), Pos: firstPos(v)}
		}
	}
	in.report = report

	l.unknownKeys(j, sec, fr, report)

	if !j.Enabled && enabledKnown {
		for i := range diags {
			if diags[i].Severity == Error {
				diags[i].Severity = Warning
				diags[i].Msg += " (jail is disabled)"
			}
		}
	}
	return j, diags
}

// loadFilter loads the filter of a jail; the jail's options are visible to it.
func (l *jailLoader) loadFilter(jail, ref string, pos Pos) *filterResult {
	vars := map[string]*entry{}
	quiet := l.interp(jail, nil, nil)
	for _, k := range passedToFilter() {
		if v, found, ok := quiet.value(k); found && ok {
			vars[k] = &entry{key: k, lit: v}
		}
	}
	return loadFilterBudget(l.fs, l.dir, ref, pos, vars, false, l.work)
}

// overrideFilter applies a jail's own failregex, ignoreregex, prefregex, datepattern,
// maxlines, journalmatch and usedns over its filter's (the jail's value may use
// %(known/failregex)s, the filter's). Unlike fail2ban, <tag>s in the jail's values are
// substituted with the filter's values too.
func (l *jailLoader) overrideFilter(j *Jail, sec *section, in *interp, fr *filterResult, bad func(Value, string, string)) {
	for _, k := range filterKeys() {
		if sec.keys[k] == nil && l.st.defaults.keys[k] == nil {
			continue
		}
		v, found, ok := in.value(k)
		if !found || !ok {
			continue
		}
		if fr != nil && fr.tags != nil {
			if v, ok = fr.tags.subst(v, k); !ok {
				continue
			}
		}
		if k == "usedns" {
			s := single(v)
			u, err := parseUseDNS(s.Text)
			if err != nil {
				bad(s, k, err.Error())
				continue
			}
			j.UseDNS = u
			continue
		}
		if j.Filter == nil {
			if k != "failregex" {
				continue
			}
			j.Filter = &FilterDef{MaxLines: 1, Vars: map[string]Value{}}
		}
		def := j.Filter
		def.Vars[k] = Value{Text: joinText(v), Pos: firstPos(v)}
		switch k {
		case "failregex":
			def.FailRegex = dropEmpty(v)
			if len(def.FailRegex) == 0 {
				bad(single(v), k, "failregex is empty")
			}
		case "ignoreregex":
			def.IgnoreRegex = dropEmpty(v)
		case "datepattern":
			def.DatePattern = dropEmpty(v)
		case "prefregex":
			switch p := dropEmpty(v); len(p) {
			case 0:
				def.PrefRegex = nil
			case 1:
				def.PrefRegex = &p[0]
			default:
				bad(p[1], k, "prefregex must be a single line")
			}
		case "maxlines":
			s := single(v)
			n, err := parseInt(s.Text)
			if err != nil || n < 1 {
				bad(s, k, fmt.Sprintf("invalid maxlines %q: want an integer of at least 1%s", s.Text, commentHint(s.Text)))
				continue
			}
			def.MaxLines = n
		}
	}
}

// unknownKeys warns about keys written in a jail section that nothing knows: not a jail key,
// not a [DEFAULT] key or a name its values use, not a key or parameter of the jail's filter,
// not a name the section's own values reference.
func (l *jailLoader) unknownKeys(j *Jail, sec *section, fr *filterResult, report func(Diag)) {
	local := map[string]bool{}
	for _, k := range sec.order {
		for _, n := range referencedNames(sec.keys[k]) {
			local[n] = true
		}
	}
	var candidates []string
	for _, k := range sec.order {
		if _, ok := l.keys[k]; ok || l.defNames[k] || local[k] || l.crossRefs[j.Name][k] || strings.Contains(k, "/") {
			continue
		}
		if _, ok := l.builtin[k]; ok {
			continue
		}
		if fr != nil && fr.names[k] {
			continue
		}
		if candidates == nil {
			candidates = sortedKeys(l.keys)
			for _, d := range l.st.defaults.order {
				if _, ok := l.keys[d]; !ok {
					candidates = append(candidates, d)
				}
			}
		}
		msg := fmt.Sprintf("unknown key %q", k)
		if near, ok := nearest(k, candidates); ok {
			msg += fmt.Sprintf("; did you mean %q?", near)
		}
		report(Diag{Severity: Warning, Pos: sec.keys[k].pos, Section: j.Name, Key: k, Msg: msg})
	}
}

// parseActions reads a jail's action list: references separated by spaces or new lines.
func parseActions(v []Value, bad func(Value, string, string)) []ActionRef {
	// Join the lines, remembering where each starts, to give each reference its line.
	var b strings.Builder
	starts := make([]int, len(v))
	for i, l := range v {
		if i > 0 {
			b.WriteByte('\n')
		}
		starts[i] = b.Len()
		b.WriteString(l.Text)
	}
	all := b.String()
	var out []ActionRef
	for _, item := range splitRefs(all) {
		i := sort.Search(len(starts), func(i int) bool { return starts[i] > item.offset }) - 1
		pos := v[max(i, 0)].Pos
		name, opts, err := ParseRef(item.text)
		if err != nil {
			bad(Value{Text: item.text, Pos: pos}, "action", fmt.Sprintf("invalid action %q: %v", clip(item.text), err))
			continue
		}
		for k, o := range opts {
			if m := leftoverRE.FindString(o); m != "" {
				bad(Value{Pos: pos}, "action", fmt.Sprintf("unresolved %s in option %s of action %s", m, k, name))
			}
		}
		out = append(out, ActionRef{Name: name, Options: opts, Pos: pos})
	}
	return out
}

// isKnownTag tells a value that is only a <known/...> tag: a placeholder for an action's own
// default that fail2ban fills in when it reads the action.
func isKnownTag(s string) bool {
	return strings.HasPrefix(s, "<known/") && strings.HasSuffix(s, ">") && !strings.ContainsAny(s[1:len(s)-1], "<> ")
}

func checkBackend(v Value, bad func(Value, string, string)) {
	name, _, err := ParseRef(v.Text)
	if err != nil {
		bad(v, "backend", fmt.Sprintf("invalid backend %q: %v%s", v.Text, err, commentHint(v.Text)))
		return
	}
	switch name {
	case "auto", "polling", "inotify", "pyinotify", "gamin", "systemd":
	default:
		bad(v, "backend", fmt.Sprintf("unknown backend %q (use auto, polling, inotify or systemd)%s", name, commentHint(v.Text)))
	}
}

func checkPort(v Value, bad func(Value, string, string)) {
	if isKnownTag(v.Text) {
		return
	}
	if strings.TrimSpace(v.Text) == "" {
		bad(v, "port", "port is empty")
		return
	}
	for _, item := range strings.Split(v.Text, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, ":")
		ok := true
		if isRange {
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			ok = err1 == nil && err2 == nil && a >= 0 && b <= 65535 && a <= b
		} else if n, err := strconv.Atoi(item); err == nil {
			ok = n >= 0 && n <= 65535
		} else {
			ok = isServiceName(item)
		}
		if !ok {
			bad(v, "port", fmt.Sprintf("invalid port %q in %q (want numbers, ranges like 1000:2000 or service names, comma-separated)", item, v.Text))
			return
		}
	}
}

func isServiceName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func checkProtocol(v Value, bad func(Value, string, string)) {
	if isKnownTag(v.Text) {
		return
	}
	switch strings.ToLower(v.Text) {
	case "tcp", "udp", "sctp", "udplite", "dccp", "icmp", "icmpv6", "ipv6-icmp", "all":
	default:
		bad(v, "protocol", fmt.Sprintf("unknown protocol %q (use tcp, udp, sctp, icmp or all)", v.Text))
	}
}

func prefixLen(get func(string) (Value, bool), key string, maxBits int, bad func(Value, string, string)) int {
	v, ok := get(key)
	if !ok {
		return 0
	}
	n, err := parseInt(v.Text)
	if err != nil || n < 0 || n > maxBits {
		bad(v, key, fmt.Sprintf("invalid prefix length %q (0..%d)%s", v.Text, maxBits, commentHint(v.Text)))
		return 0
	}
	return n
}

// dedupe drops repeated diagnostics: a broken [DEFAULT] value is seen by every jail, and a
// value read through %(name)s by every key that uses it (maxmatches = %(maxretry)s). One is
// kept per position and message, the most severe; the first one names the key.
func dedupe(ds Diags) Diags {
	type id struct {
		pos Pos
		msg string
	}
	index := map[id]int{}
	var out Diags
	for _, d := range ds {
		k := id{d.Pos, strings.TrimSuffix(d.Msg, " (jail is disabled)")}
		if i, ok := index[k]; ok {
			if d.Severity == Error && out[i].Severity != Error {
				out[i] = d
			}
			continue
		}
		index[k] = len(out)
		out = append(out, d)
	}
	return out
}
