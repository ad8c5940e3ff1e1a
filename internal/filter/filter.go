// Package filter turns a filter definition (fail2ban's filter language: prefregex, failregex,
// ignoreregex, maxlines, datepattern and the <HOST>/<F-...> tags) into a matcher that answers, for
// each log line: is this a failure, from which address, at what time, by which user.
//
// A Filter is compiled once and is safe for concurrent use. Each stream of lines gets its own
// Matcher (Filter.NewMatcher), which holds what fail2ban keeps between lines: the multi-line buffer,
// the connection cache of <F-MLFID> filters and the date detector's cache. A Matcher is not safe for
// concurrent use.
//
// Regexes run on Go's RE2 engine (linear time, so no crafted line can make a match slow) whenever
// RE2 can express them. Patterns that need look-around, back-references or conditionals, which some
// stock fail2ban filters use, run on dlclark/regexp2 with a timeout per match.
package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/logtime"
	"github.com/logjail/logjail/internal/rx"
)

// DefaultMatchTimeout bounds one match of a backtracking-engine regex on one line.
const DefaultMatchTimeout = 50 * time.Millisecond

// Options are the jail-side settings a filter runs with.
type Options struct {
	UseDNS       UseDNS         // default DNSNo
	Location     *time.Location // zone of timestamps that carry none; nil = time.Local
	MatchTimeout time.Duration  // per line, backtracking engine only; 0 = DefaultMatchTimeout
	// Resolve turns a host name into addresses for usedns yes/warn. nil: names are no failure.
	Resolve func(host string) ([]netip.Addr, error)
}

// CompileError is a regex (or date pattern) of a filter that cannot be used.
type CompileError struct {
	Filter string
	Pos    config.Pos
	Key    string // failregex, ignoreregex, prefregex, datepattern
	Regex  string
	Err    error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("%s: filter %s: %s %q: %v", e.Pos, e.Filter, e.Key, e.Regex, e.Err)
}

func (e *CompileError) Unwrap() error { return e.Err }

// ErrNoFailRegex is returned for a filter without any failregex.
var ErrNoFailRegex = errors.New("no failregex")

// Filter is a compiled filter.
type Filter struct {
	Name     string
	Pref     *Regex
	Fail     []*Regex
	FailPos  []config.Pos
	Ignore   []*Regex
	MaxLines int
	dates    *logtime.Detector
	opts     Options
}

// New compiles def. Every regex is compiled now; the first one that fails is returned as a
// *CompileError naming its file and line.
func New(def *config.FilterDef, opts Options) (*Filter, error) {
	if opts.UseDNS == "" {
		opts.UseDNS = DNSNo
	}
	if opts.MatchTimeout <= 0 {
		opts.MatchTimeout = DefaultMatchTimeout
	}
	f := &Filter{Name: def.Name, MaxLines: def.MaxLines, opts: opts}
	if f.MaxLines < 1 {
		f.MaxLines = 1
	}
	multi := f.MaxLines > 1
	cerr := func(v config.Value, key string, err error) error {
		return &CompileError{Filter: def.Name, Pos: v.Pos, Key: key, Regex: v.Text, Err: err}
	}
	if def.PrefRegex != nil && strings.TrimSpace(def.PrefRegex.Text) != "" {
		r, err := compileRegex(def.PrefRegex.Text, opts.UseDNS, multi, opts.MatchTimeout)
		if err != nil {
			return nil, cerr(*def.PrefRegex, "prefregex", err)
		}
		f.Pref = r
	}
	if len(def.FailRegex) == 0 {
		return nil, &CompileError{Filter: def.Name, Pos: config.Pos{File: def.File}, Key: "failregex", Err: ErrNoFailRegex}
	}
	for _, v := range def.FailRegex {
		r, err := compileRegex(v.Text, opts.UseDNS, multi, opts.MatchTimeout)
		if err != nil {
			return nil, cerr(v, "failregex", err)
		}
		if !r.g.hasHost() && (f.Pref == nil || !f.Pref.g.hasHost()) {
			return nil, cerr(v, "failregex", ErrNoHostGroup)
		}
		f.Fail = append(f.Fail, r)
		f.FailPos = append(f.FailPos, v.Pos)
	}
	for _, v := range def.IgnoreRegex {
		r, err := compileRegex(v.Text, opts.UseDNS, multi, opts.MatchTimeout)
		if err != nil {
			return nil, cerr(v, "ignoreregex", err)
		}
		f.Ignore = append(f.Ignore, r)
	}
	var pats []string
	for _, v := range def.DatePattern {
		pats = append(pats, v.Text)
	}
	d, err := logtime.New(pats, logtime.Options{Location: opts.Location})
	if err != nil {
		var pos config.Pos
		if len(def.DatePattern) > 0 {
			pos = def.DatePattern[0].Pos
		}
		return nil, &CompileError{Filter: def.Name, Pos: pos, Key: "datepattern", Regex: strings.Join(pats, "\n"), Err: err}
	}
	f.dates = d
	return f, nil
}

// Regexes lists every compiled regex with its role, for check and the tester.
func (f *Filter) Regexes() []*Regex {
	var out []*Regex
	if f.Pref != nil {
		out = append(out, f.Pref)
	}
	out = append(out, f.Fail...)
	return append(out, f.Ignore...)
}

// DateFormatName names a date format index of Result.DateFormat.
func (f *Filter) DateFormatName(i int) string { return f.dates.FormatName(i) }

// Verdict is what a line turned out to be.
type Verdict uint8

const (
	// Missed: no failregex matched (or the prefregex did not).
	Missed Verdict = iota
	// Matched: a failure, in Result.Failures.
	Matched
	// Ignored: a failregex matched but an ignoreregex, <F-NOFAIL>, or a multi-line failure still
	// waiting for its host says it is no failure (yet).
	Ignored
)

func (v Verdict) String() string {
	switch v {
	case Matched:
		return "matched"
	case Ignored:
		return "ignored"
	}
	return "missed"
}

// Failure is one failure found in the log.
type Failure struct {
	Addr  netip.Addr // the address, IPv4-mapped IPv6 unmapped; invalid for ID-only failures
	Bits  int        // prefix length when the regex captured a <CIDR>/<SUBNET>, else -1
	Host  string     // the captured host text, as in the line
	ID    string     // <F-ID> when the failure is not identified by an address
	User  string     // <F-USER>, else the first non-empty <F-ALT_USER...>
	Time  time.Time
	Regex int // index of the failregex that matched
	// Lines are the log lines (date cut out) that make up a multi-line failure; nil for a failure
	// of one line.
	Lines []string
	// Fields holds every other <F-NAME> capture (lower-case names); nil when there is none.
	Fields map[string]string
}

// Prefix is the failure's address as a prefix: the captured CIDR, or the single address.
func (f *Failure) Prefix() netip.Prefix {
	if f.Bits >= 0 {
		if p, err := f.Addr.Prefix(f.Bits); err == nil {
			return p
		}
	}
	return netip.PrefixFrom(f.Addr, f.Addr.BitLen())
}

// Result is the answer for one line. Failures is reused by the next Process call of the same
// Matcher: copy what must be kept. So are the texts in it (Host, ID, User) when the date stood
// in the middle of the line: they are then pieces of a buffer the next call writes over (clone
// them to keep them).
type Result struct {
	Verdict    Verdict
	Failures   []Failure
	Time       time.Time // the line's time, or the read time when it has none
	HasDate    bool
	DateFormat int // for Filter.DateFormatName; valid when HasDate
	Regex      int // failregex index that matched (Matched, Ignored), else -1
	// BadHost is set when a failregex matched but the host it captured is no address (and no
	// name to resolve): the line is Missed, and the filter may be wrong for this log.
	BadHost bool
	// Timeout is set when a backtracking regex ran out of time on this line.
	Timeout bool
}

// Matcher runs a Filter over one stream of lines.
type Matcher struct {
	f     *Filter
	dates *logtime.Detector
	buf   []string // multi-line buffer: lines with the date cut out
	mlf   *mlfCache
	fails []Failure
	now   time.Time // read time of the line being processed
	// lastDate is the time of the last line that had one: it stands in for an empty or
	// impossible date text on the next lines, for a minute.
	lastDate time.Time
	rx       rx.Machine // the regex engine's work space
	// group indexes of the line being processed: of prefregex, of the failregex that
	// matched, of an ignoreregex (reused from line to line)
	preIdx, failIdx, ignIdx []int
	cut                     []byte // the line with its date cut out (see Result)
	// Hits counts matches per failregex; IgnoreHits per ignoreregex.
	Hits       []int
	IgnoreHits []int
}

// NewMatcher returns a fresh Matcher for one stream of lines.
func (f *Filter) NewMatcher() *Matcher {
	return &Matcher{
		f:          f,
		dates:      f.dates.Clone(),
		mlf:        newMLFCache(1000, 10*time.Minute),
		fails:      make([]Failure, 0, 1),
		Hits:       make([]int, len(f.Fail)),
		IgnoreHits: make([]int, len(f.Ignore)),
	}
}

// Process looks at one line (without its newline). now is the time the line was read: it drives
// year inference and stands in for the time of a line that has none.
func (m *Matcher) Process(line string, now time.Time) Result {
	res := Result{Regex: -1, Time: now}
	m.fails = m.fails[:0]
	m.now = now
	text := line
	if !m.dates.None() {
		if dm, ok := m.dates.Find(line, now); ok {
			cut := true
			if dm.Time.IsZero() {
				// A date text that is empty or impossible (Feb 30): as fail2ban, the time is that of
				// the previous line when it is under a minute old, else the read time; an
				// impossible date is then left in the line.
				if m.lastDate.After(now.Add(-time.Minute)) {
					res.Time = m.lastDate
					cut = dm.Start == dm.End
				}
			} else {
				res.Time, res.HasDate, res.DateFormat = dm.Time, true, dm.Format
				m.lastDate = dm.Time
			}
			switch {
			case !cut:
			case dm.Start == 0:
				text = line[dm.End:]
			case dm.End == len(line):
				text = line[:dm.Start]
			case m.f.MaxLines > 1:
				text = line[:dm.Start] + line[dm.End:] // kept in the multi-line buffer
			default:
				// in a buffer reused from line to line: no allocation per line
				m.cut = append(append(m.cut[:0], line[:dm.Start]...), line[dm.End:]...)
				text = unsafe.String(unsafe.SliceData(m.cut), len(m.cut))
			}
		}
	}
	multi := m.f.MaxLines > 1
	if multi {
		m.buf = append(m.buf, text)
		if len(m.buf) > m.f.MaxLines {
			m.buf = m.buf[len(m.buf)-m.f.MaxLines:]
		}
		text = strings.Join(m.buf, "\n") + "\n"
	}
	var pre []int
	if p := m.f.Pref; p != nil {
		idx, err := p.match(&m.rx, m.preIdx, text)
		if err != nil {
			res.Timeout = true
		}
		if idx == nil {
			return res
		}
		pre, m.preIdx = idx, idx
		if c := p.g.content; c >= 0 && idx[2*c] >= 0 && idx[2*c+1] > idx[2*c] {
			// fail2ban: the content replaces the whole buffer
			content := text[idx[2*c]:idx[2*c+1]]
			preText := text
			text = content
			if multi {
				m.buf = append(m.buf[:0], content)
				text = content + "\n"
			}
			// keep the prefregex captures readable from the text they matched
			return m.failregexes(res, text, preText, pre)
		}
	}
	return m.failregexes(res, text, text, pre)
}

func (m *Matcher) failregexes(res Result, text, preText string, pre []int) Result {
	for i, r := range m.f.Fail {
		idx, err := r.match(&m.rx, m.failIdx, text)
		if err != nil {
			res.Timeout = true
		}
		if idx == nil {
			continue
		}
		m.failIdx = idx
		res.Regex = i
		m.Hits[i]++
		var matched []string
		if m.f.MaxLines > 1 {
			matched = m.consume(text, idx, r)
		}
		if m.ignored(text, matched) {
			res.Verdict = Ignored
			return res
		}
		return m.failure(res, r, text, idx, preText, pre, matched)
	}
	return res
}

// consume removes the lines a multi-line match covered from the buffer (lines captured by
// <SKIPLINES> stay) and returns the matched lines.
func (m *Matcher) consume(text string, idx []int, r *Regex) []string {
	first := strings.Count(text[:idx[0]], "\n")
	endAt := idx[1] - 1
	if endAt < idx[0] {
		endAt = idx[0]
	}
	last := strings.Count(text[:endAt], "\n") // index of the line holding the last matched char
	if last >= len(m.buf) {
		last = len(m.buf) - 1
	}
	if first > last || first >= len(m.buf) {
		return nil
	}
	matched := append([]string(nil), m.buf[first:last+1]...)
	var skipped []string
	for _, g := range r.g.skiplines {
		if idx[2*g] >= 0 {
			skipped = append(skipped, strings.Split(strings.TrimSuffix(text[idx[2*g]:idx[2*g+1]], "\n"), "\n")...)
		}
	}
	rest := append([]string(nil), m.buf[:first]...)
	for _, s := range skipped {
		for j, l := range matched {
			if l == s {
				rest = append(rest, l)
				matched = append(matched[:j], matched[j+1:]...)
				break
			}
		}
	}
	rest = append(rest, m.buf[last+1:]...)
	m.buf = rest
	return matched
}

func (m *Matcher) ignored(text string, matched []string) bool {
	if len(m.f.Ignore) == 0 {
		return false
	}
	if matched != nil {
		text = strings.Join(matched, "\n") + "\n"
	}
	for i, r := range m.f.Ignore {
		if idx, _ := r.match(&m.rx, m.ignIdx, text); idx != nil {
			m.ignIdx = idx
			m.IgnoreHits[i]++
			return true
		}
	}
	return false
}

func capture(s string, idx []int, g int) (string, bool) {
	if g < 0 || 2*g+1 >= len(idx) || idx[2*g] < 0 {
		return "", false
	}
	return s[idx[2*g]:idx[2*g+1]], true
}

// failure builds the failure of a matched failregex, applying the multi-line connection logic
// of <F-MLFID> filters.
func (m *Matcher) failure(res Result, r *Regex, text string, idx []int, preText string, pre []int, matched []string) Result {
	var mlfid string
	var hasMLFID bool
	if m.f.Pref != nil {
		mlfid, hasMLFID = capture(preText, pre, m.f.Pref.g.mlfid)
	}
	if v, ok := capture(text, idx, r.g.mlfid); ok {
		mlfid, hasMLFID = v, true
	}
	if hasMLFID {
		mlfid = strings.Clone(mlfid) // kept in the multi-line cache, past the line's memory
	}
	if hasMLFID || r.g.custom || (m.f.Pref != nil && m.f.Pref.g.custom) {
		fields := make(map[string]string)
		if m.f.Pref != nil {
			addFields(fields, preText, pre, m.f.Pref.g.names)
		}
		addFields(fields, text, idx, r.g.names)
		mergeAlt(fields)
		if hasMLFID {
			var fail bool
			fields, fail = m.mlf.merge(mlfid, fields, m.now)
			if !fail {
				res.Verdict = Ignored
				return res
			}
		} else if fields["nofail"] != "" {
			res.Verdict = Ignored
			return res
		}
		return m.fromFields(res, fields, matched)
	}
	if v, _ := capture(text, idx, r.g.nofail); v != "" {
		res.Verdict = Ignored
		return res
	}
	fl := Failure{Time: res.Time, Regex: res.Regex, Bits: -1, Lines: matched}
	var ok bool
	if fl.Host, ok = capture(text, idx, r.g.ip4); !ok {
		if fl.Host, ok = capture(text, idx, r.g.ip6); !ok {
			fl.Host, ok = capture(text, idx, r.g.dns)
		}
	}
	if !ok && m.f.Pref != nil {
		fl.Host, _ = captureHost(preText, pre, &m.f.Pref.g)
	}
	fl.ID, _ = capture(text, idx, r.g.fid)
	fl.User, _ = capture(text, idx, r.g.user)
	cidr, _ := capture(text, idx, r.g.cidr)
	return m.resolve(res, fl, cidr)
}

func captureHost(s string, idx []int, g *groups) (string, bool) {
	for _, i := range []int{g.ip4, g.ip6, g.dns} {
		if v, ok := capture(s, idx, i); ok {
			return v, true
		}
	}
	return "", false
}

func addFields(dst map[string]string, s string, idx []int, names []string) {
	for i, n := range names {
		if n == "" || strings.HasPrefix(n, "skiplines") {
			continue
		}
		if v, ok := capture(s, idx, i); ok {
			dst[n] = strings.Clone(v) // may be kept (multi-line cache), past the line's memory
		}
	}
}

// mergeAlt gives each empty field the value of its first non-empty alternate, as fail2ban does:
// <F-ALT_USER> and <F-ALT_USER_2> stand in for <F-USER> (but <F-ALT_USER1> is a field "user1").
func mergeAlt(fields map[string]string) {
	var alts []string
	for k := range fields {
		if strings.HasPrefix(k, "alt_") {
			alts = append(alts, k)
		}
	}
	sort.Strings(alts)
	for _, k := range alts {
		target := strings.TrimPrefix(k, "alt_")
		if i := strings.LastIndexByte(target, '_'); i > 0 && isDigits(target[i+1:]) {
			target = target[:i]
		}
		switch target {
		case "id":
			target = "fid"
		case "port":
			target = "fport"
		}
		if v := fields[k]; v != "" && fields[target] == "" {
			fields[target] = v
		}
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// fromFields builds a failure from merged captures (the multi-line and custom-field path).
func (m *Matcher) fromFields(res Result, fields map[string]string, matched []string) Result {
	fl := Failure{Time: res.Time, Regex: res.Regex, Bits: -1, Lines: matched}
	var ok bool
	for _, k := range []string{"ip4", "ip6", "dns"} {
		if fl.Host, ok = fields[k]; ok {
			break
		}
	}
	fl.ID = fields["fid"]
	fl.User = fields["user"]
	for k, v := range fields {
		switch k {
		case "ip4", "ip6", "dns", "cidr", "fid", "user", "content", "mlfid", "nofail",
			"mlfforget", "mlfgained", "mlfpending":
			continue
		}
		if fl.Fields == nil {
			fl.Fields = make(map[string]string)
		}
		fl.Fields[k] = v
	}
	if !ok && fl.ID == "" {
		// a connection whose host is not known yet: fail2ban keeps it pending
		if id, has := fields["mlfid"]; has {
			m.mlf.setPending(id)
			res.Verdict = Ignored
			return res
		}
	}
	return m.resolve(res, fl, fields["cidr"])
}

// resolve turns the captured host into an address (or addresses, for a resolved name) and
// records the failure. A capture that is no address is no failure.
func (m *Matcher) resolve(res Result, fl Failure, cidr string) Result {
	if fl.Host == "" {
		if fl.ID == "" {
			res.BadHost = true
			return res
		}
		// failure identified by <F-ID> only: the ID may itself be an address
		if a, err := parseAddr(fl.ID); err == nil {
			fl.Addr = a
		}
		res.Verdict = Matched
		m.fails = append(m.fails, fl)
		res.Failures = m.fails
		return res
	}
	if cidr != "" {
		n := 0
		for _, c := range cidr {
			n = n*10 + int(c-'0')
			if n > 128 {
				break
			}
		}
		fl.Bits = n
	}
	a, err := parseAddr(fl.Host)
	if err == nil {
		if fl.Bits > a.BitLen() {
			res.BadHost = true
			return res
		}
		fl.Addr = a
		res.Verdict = Matched
		m.fails = append(m.fails, fl)
		res.Failures = m.fails
		return res
	}
	if m.f.opts.UseDNS == DNSNo || m.f.opts.UseDNS == DNSRaw || m.f.opts.Resolve == nil {
		res.BadHost = true
		return res
	}
	addrs, err := m.f.opts.Resolve(fl.Host)
	if err != nil || len(addrs) == 0 {
		res.BadHost = true
		return res
	}
	for _, a := range addrs {
		f := fl
		f.Addr = a.Unmap()
		m.fails = append(m.fails, f)
	}
	res.Verdict = Matched
	res.Failures = m.fails
	return res
}

// parseAddr parses a captured host strictly: IPv4 in dotted decimal without leading zeros
// (192.030.0.6 is refused: some parsers read 030 as octal, so which host it names is unclear),
// IPv6 in any valid form, optionally in brackets; IPv4-mapped IPv6 becomes IPv4.
func parseAddr(s string) (netip.Addr, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, errors.New("address with a zone")
	}
	return a.Unmap(), nil
}

// Independent reports whether each line's verdict depends on that line alone: one line at a
// time (maxlines 1) and no <F-MLFID> connection state. Several Matchers may then share one
// stream's lines, each taking a part, and the verdicts are the same as one Matcher's (each
// Matcher's date cache only makes it faster).
func (f *Filter) Independent() bool {
	if f.MaxLines > 1 {
		return false
	}
	if f.Pref != nil && f.Pref.g.mlfid >= 0 {
		return false
	}
	for _, r := range f.Fail {
		if r.g.mlfid >= 0 {
			return false
		}
	}
	for _, r := range f.Ignore {
		if r.g.mlfid >= 0 {
			return false
		}
	}
	return true
}
