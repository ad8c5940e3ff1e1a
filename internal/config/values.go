package config

import "strings"

// Limits that keep hostile or broken input from exhausting memory or time. They are far above
// anything a real configuration needs (fail2ban's largest stock value is a few KiB).
const (
	maxFileBytes   = 4 << 20 // one configuration file
	maxFiles       = 512     // files read for one jail.conf or one filter, includes counted
	maxIncludeNest = 32      // [INCLUDES] nesting
	maxInterpDepth = 32      // %(name)s nesting
	maxValueBytes  = 1 << 20 // one value after %(name)s or <tag> substitution
	maxTagSteps    = 1024    // <tag> replacements within one value
	maxTagDepth    = 64      // <tag> values referring to tags, nested
	// ini.v1 builds a multi-line value by string concatenation and finds keys and sections
	// by scanning lists: quadratic in these numbers, so they are capped (stock files stay far
	// below: a few dozen lines per value, a few hundred keys per section).
	maxValueLines = 2000
	maxKeys       = 4096 // per section
	maxSections   = 4096
	// maxWorkBytes bounds the text that substitution may produce and scan for one Load or
	// LoadFilter (Debian's whole stock configuration needs a few MiB).
	maxWorkBytes = 64 << 20
)

// budget is the substitution work left for one load, shared by everything that substitutes.
type budget struct {
	left     int
	exceeded bool
	reported bool
}

// report tells whether the exhaustion still needs reporting (once per load).
func (b *budget) report() bool {
	if b == nil || b.reported {
		return false
	}
	b.reported = true
	return true
}

func newBudget() *budget { return &budget{left: maxWorkBytes} }

// spend takes n bytes of work; false means the budget is exhausted.
func (b *budget) spend(n int) bool {
	if b == nil {
		return true
	}
	b.left -= n
	if b.left < 0 {
		b.exceeded = true
	}
	return !b.exceeded
}

const budgetMsg = "configuration expands to more than 64 MiB during substitution; stopped"

// lineState tells where the text of a line under construction came from, to decide which
// position it reports.
type lineState uint8

const (
	lineEmpty lineState = iota // nothing yet
	lineRef                    // exactly one line of a referenced value: report that line
	lineMixed                  // literal text of the line being expanded, maybe with references
)

// lineBuilder assembles a multi-line value while %(name)s or <tag> references are spliced in.
// Each output line keeps the position that explains it best: a line made of exactly one line
// of a referenced value reports where that line was written (so an error in a regex from
// `failregex = %(cmnfailre)s` names the line inside cmnfailre); any other line reports the line
// being expanded.
type lineBuilder struct {
	out   []Value
	state lineState       // of the last line
	cur   Pos             // the source line being expanded
	buf   strings.Builder // text of the last line, when state is lineMixed
	size  int
}

// start begins a new output line, expanding the source line at p.
func (b *lineBuilder) start(p Pos) {
	b.flush()
	b.cur = p
	b.out = append(b.out, Value{Pos: p})
	b.state = lineEmpty
}

// next begins a new output line for the next source line at p.
func (b *lineBuilder) next(p Pos) { b.start(p) }

// flush moves the text being built into the last line.
func (b *lineBuilder) flush() {
	if b.state == lineMixed && len(b.out) > 0 {
		b.out[len(b.out)-1].Text = b.buf.String()
		b.buf.Reset()
	}
}

// mix turns the last line into a line under construction at the current source position.
func (b *lineBuilder) mix() {
	if b.state == lineMixed {
		return
	}
	i := len(b.out) - 1
	b.buf.Reset()
	b.buf.WriteString(b.out[i].Text)
	b.out[i].Pos = b.cur
	b.state = lineMixed
}

// text appends literal text of the source line.
func (b *lineBuilder) text(s string) {
	if s == "" {
		return
	}
	b.mix()
	b.buf.WriteString(s)
	b.size += len(s)
}

// keep appends a whole line as it is (used when a line has nothing to substitute).
func (b *lineBuilder) keep(v Value) {
	b.flush()
	b.out = append(b.out, v)
	b.state = lineRef
	b.cur = v.Pos
	b.size += len(v.Text)
}

// splice appends a referenced multi-line value: its first line continues the current line,
// every further line starts a new one.
func (b *lineBuilder) splice(v []Value) {
	for k, l := range v {
		if k > 0 {
			b.flush()
			b.out = append(b.out, Value{Pos: b.cur})
			b.state = lineEmpty
		}
		if l.Text == "" {
			continue
		}
		b.size += len(l.Text)
		if b.state == lineEmpty {
			b.out[len(b.out)-1] = l
			b.state = lineRef
			continue
		}
		b.mix()
		b.buf.WriteString(l.Text)
	}
}

func (b *lineBuilder) done() []Value {
	b.flush()
	b.state = lineEmpty
	return b.out
}

// joinText joins the lines of a value with "\n", as fail2ban sees a multi-line value.
func joinText(v []Value) string {
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0].Text
	}
	parts := make([]string, len(v))
	for i, l := range v {
		parts[i] = l.Text
	}
	return strings.Join(parts, "\n")
}

// firstPos is the position of the first non-empty line of v, or of its first line.
func firstPos(v []Value) Pos {
	for _, l := range v {
		if l.Text != "" {
			return l.Pos
		}
	}
	if len(v) > 0 {
		return v[0].Pos
	}
	return Pos{}
}

// nonEmptyLines drops empty lines and trims the others, the way a list of regexes or paths is
// read: one item per line. fail2ban does not trim lines after substitution, so regex keys use
// dropEmpty instead.
func nonEmptyLines(v []Value) []Value {
	var out []Value
	for _, l := range v {
		t := strings.TrimSpace(l.Text)
		if t == "" {
			continue
		}
		out = append(out, Value{Text: t, Pos: l.Pos})
	}
	return out
}

// dropEmpty drops empty lines and keeps the others exactly as they are (fail2ban splits a
// regex list on "\n" and drops only empty strings).
func dropEmpty(v []Value) []Value {
	var out []Value
	for _, l := range v {
		if l.Text == "" {
			continue
		}
		out = append(out, l)
	}
	return out
}

// single returns the value of a scalar key: its non-empty lines joined by a space, trimmed,
// and the position of its first non-empty line.
func single(v []Value) Value {
	ls := nonEmptyLines(v)
	switch len(ls) {
	case 0:
		return Value{Pos: firstPos(v)}
	case 1:
		return ls[0]
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Text
	}
	return Value{Text: strings.Join(parts, " "), Pos: ls[0].Pos}
}

func valueSize(v []Value) int {
	n := 0
	for _, l := range v {
		n += len(l.Text) + 1
	}
	return n
}
