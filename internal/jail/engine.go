package jail

import (
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/window"
)

// This file is the counting logic that the live jail and Replay share: a stream turns lines
// into pending failures (one stream per file, no lock), and an engine turns failures into ban
// orders (one per jail, under the jail's mutex). Both are plain synchronous code.

const (
	// maxKeptLine is how much of a line is kept for ban orders and Explain.
	maxKeptLine = 512
	// maxBadHostLine is how much of a line with a bad host is kept for the health warning.
	maxBadHostLine = 200
	// maxKeptLines bounds the lines kept per address (and sent with an order), whatever
	// MaxRetry is: a rate jail with maxretry 600 would otherwise keep 600 lines an address.
	maxKeptLines = 16
)

// counters are the per-line counts of a stream, added to the file's and the jail's totals.
type counters struct {
	Lines       int64 // lines (or btmp records) read
	NoDate      int64 // lines whose date the filter could not read
	Invalid     int64 // lines with invalid UTF-8 or NUL bytes (still matched, see stream.process)
	Cut         int64 // lines cut at MaxLineSize by the follower: skipped
	TooOld      int64 // failures older than FindTime at the jail's clock: skipped
	Matched     int64 // failures the filter found (before ignoreuser and the address check)
	BadHost     int64 // lines a failregex matched whose host is no address
	NoAddr      int64 // failures identified by <F-ID> only: no address to ban
	IgnoredUser int64 // failures dropped by ignoreuser
	Failures    int64 // failures counted in the window
}

func (c *counters) add(o *counters) {
	c.Lines += o.Lines
	c.NoDate += o.NoDate
	c.Invalid += o.Invalid
	c.Cut += o.Cut
	c.TooOld += o.TooOld
	c.Matched += o.Matched
	c.BadHost += o.BadHost
	c.NoAddr += o.NoAddr
	c.IgnoredUser += o.IgnoredUser
	c.Failures += o.Failures
}

// pending is one failure found by a stream, not yet counted.
type pending struct {
	addr netip.Addr
	t    time.Time // the line's time (the read time when it has none)
	line string    // the line, cut to maxKeptLine
}

// health is what a stream tracks of its file for the health warnings (see health.go).
type health struct {
	// The current block of lines, and the verdict of the last complete one.
	block, last healthBlock
	// Stale matching: whether the filter ever matched this file, and lines and read time
	// since the last match (or since the file was first followed).
	everMatched   bool
	sinceMatch    int64
	lastMatchRead time.Time
	// a recent line with a bad host, for the warning: a copy, reused (the line itself shares
	// its memory with the others of its read)
	badHostLine []byte
}

type healthBlock struct {
	Lines, NoDate, Matched, BadHost int64
}

// stream runs one file's lines through its own filter.Matcher. It is owned by one goroutine;
// what it finds waits in c and failures until the owner hands them to the engine.
type stream struct {
	m          *filter.Matcher
	ignoreUser map[string]struct{}
	maxLine    int // lines of this length or more were cut by the follower
	blockLines int64

	c        counters
	failures []pending
	orders   []ban.Order // the live jail's buffer of orders to send, reused
	h        health
	latest   time.Time // the newest date read from a line (Replay's clock)
	first    time.Time // the earliest date read from a line
}

func newStream(f *filter.Filter, ignoreUser map[string]struct{}, maxLine int, blockLines int64, start time.Time) *stream {
	return &stream{
		m: f.NewMatcher(), ignoreUser: ignoreUser, maxLine: maxLine, blockLines: blockLines,
		h: health{lastMatchRead: start},
	}
}

// process looks at one line read at time read. It allocates nothing for a line that is no
// failure.
//
// Lines with invalid UTF-8 or NUL bytes are counted but still matched: part of a log line is
// often chosen by the client (a user name, a URL), and skipping such lines would let it hide
// its failures. The filter's regexes run in linear time on any bytes. Lines the follower cut
// at MaxLineSize are skipped: their end, where a failregex anchors, is gone.
func (s *stream) process(text string, read time.Time) {
	s.c.Lines++
	if s.maxLine > 0 && len(text) >= s.maxLine {
		s.c.Cut++
		return
	}
	if strings.IndexByte(text, 0) >= 0 || !utf8.ValidString(text) {
		s.c.Invalid++
	}
	res := s.m.Process(text, read)
	b := &s.h.block
	b.Lines++
	s.h.sinceMatch++
	if res.HasDate {
		if res.Time.After(s.latest) {
			s.latest = res.Time
		}
		if s.first.IsZero() || res.Time.Before(s.first) {
			s.first = res.Time
		}
	} else {
		s.c.NoDate++
		b.NoDate++
	}
	switch res.Verdict {
	case filter.Matched:
		b.Matched++
		s.h.everMatched, s.h.sinceMatch, s.h.lastMatchRead = true, 0, read
		for i := range res.Failures {
			s.failure(&res.Failures[i], text)
		}
	case filter.Missed:
		if res.BadHost {
			s.c.BadHost++
			b.BadHost++
			// one byte past the bound, so that the warning still shows the line was cut
			s.h.badHostLine = append(s.h.badHostLine[:0], text[:min(len(text), maxBadHostLine+1)]...)
		}
	}
	if b.Lines >= s.blockLines {
		s.h.last, s.h.block = s.h.block, healthBlock{}
	}
}

func (s *stream) failure(fl *filter.Failure, text string) {
	s.c.Matched++
	if !fl.Addr.IsValid() {
		s.c.NoAddr++
		return
	}
	if len(s.ignoreUser) > 0 && fl.User != "" {
		if _, ok := s.ignoreUser[fl.User]; ok {
			s.c.IgnoredUser++
			return
		}
	}
	if fl.Lines != nil {
		text = strings.Join(fl.Lines, "\n")
	}
	s.failures = append(s.failures, pending{addr: fl.Addr, t: fl.Time, line: keepLine(text)})
}

// mergeFrom adds to s what w found in the lines that came right after s's, as if s had read
// them itself, and leaves w empty for the next batch. w must not roll its health blocks over
// itself (make it with blockLines noBlock): s does it here.
func (s *stream) mergeFrom(w *stream) {
	s.c.add(&w.c)
	w.c = counters{}
	s.failures = append(s.failures, w.failures...)
	clear(w.failures)
	w.failures = w.failures[:0]

	b, wb := &s.h.block, &w.h.block
	b.Lines += wb.Lines
	b.NoDate += wb.NoDate
	b.Matched += wb.Matched
	b.BadHost += wb.BadHost
	if b.Lines >= s.blockLines {
		// The block closes a little late (by at most w's lines): its ratios are what count.
		s.h.last, s.h.block = s.h.block, healthBlock{}
	}
	if w.h.everMatched {
		s.h.everMatched, s.h.sinceMatch, s.h.lastMatchRead = true, w.h.sinceMatch, w.h.lastMatchRead
	} else {
		s.h.sinceMatch += w.h.sinceMatch
	}
	if len(w.h.badHostLine) > 0 {
		s.h.badHostLine = append(s.h.badHostLine[:0], w.h.badHostLine...)
	}
	if w.latest.After(s.latest) {
		s.latest = w.latest
	}
	if !w.first.IsZero() && (s.first.IsZero() || w.first.Before(s.first)) {
		s.first = w.first
	}
	w.h, w.latest, w.first = health{}, time.Time{}, time.Time{}
}

// noBlock is the blockLines of a helper stream: it never closes a health block itself.
const noBlock = math.MaxInt64

// take hands over the counts and failures found since the last take. The failures slice is
// valid until the next process; the caller clears it when done (it holds line references).
func (s *stream) take() (counters, []pending) {
	c, f := s.c, s.failures
	s.c = counters{}
	s.failures = s.failures[:0]
	return c, f
}

// keepLine returns line cut to maxKeptLine bytes (at a rune boundary when it is UTF-8), as a
// string of its own so that it does not keep a long line alive.
func keepLine(line string) string {
	if len(line) <= maxKeptLine {
		return line
	}
	cut := maxKeptLine
	for cut > maxKeptLine-utf8.UTFMax && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return strings.Clone(line[:cut]) + "…"
}

// engine is the jail's window and what goes with it. It is not safe for concurrent use: the
// live jail holds its mutex, Replay runs on one goroutine.
type engine struct {
	name     string
	maxRetry int
	findTime time.Duration
	win      *window.Window
	recent   *recentLines

	c           counters // totals, including the streams' per-line counts
	orders      int64
	lastFailure time.Time

	// bannedUntil, for Replay only, holds the addresses a would-be ban covers: their
	// failures would not have reached the log while banned.
	bannedUntil map[netip.Addr]time.Time
	whileBanned int64

	// redundant, for the live jail only, reports whether a ban order against target for a
	// failure at t would change nothing (see Redundancy): the order and the copies of its
	// lines are skipped, and counted in alreadyBanned.
	redundant     func(target netip.Prefix, t time.Time) bool
	alreadyBanned int64
}

func newEngine(spec *Spec, recentAddrs int) (*engine, error) {
	w, err := window.New(window.Options{MaxRetry: spec.MaxRetry, FindTime: spec.FindTime, MaxTracked: spec.MaxTracked})
	if err != nil {
		return nil, err
	}
	return &engine{
		name: spec.Name, maxRetry: spec.MaxRetry, findTime: spec.FindTime, win: w,
		recent: newRecentLines(recentAddrs, min(spec.MaxRetry, maxKeptLines)),
	}, nil
}

// add counts one failure at the jail's time now. It returns the ban order when the failure
// brings its address to MaxRetry. A failure FindTime old or older at now is dropped.
func (e *engine) add(p *pending, now time.Time) (ban.Order, bool) {
	if !p.t.After(now.Add(-e.findTime)) {
		e.c.TooOld++
		return ban.Order{}, false
	}
	if e.bannedUntil != nil {
		if until, ok := e.bannedUntil[p.addr]; ok {
			if p.t.Before(until) {
				e.whileBanned++
				return ban.Order{}, false
			}
			delete(e.bannedUntil, p.addr)
		}
	}
	e.c.Failures++
	if p.t.After(e.lastFailure) {
		e.lastFailure = p.t
	}
	crossed, count := e.win.Add(p.addr, p.t)
	if !crossed {
		e.recent.add(p.addr, p.t, p.line)
		return ban.Order{}, false
	}
	target := action.AddrTarget(p.addr).Prefix
	if e.redundant != nil && e.redundant(target, p.t) {
		e.recent.remove(p.addr.Unmap().WithZone(""))
		e.alreadyBanned++
		return ban.Order{}, false
	}
	lines := e.recent.take(p.addr, p.t.Add(-e.findTime), e.maxRetry-1)
	lines = append(lines, strings.Clone(p.line)) // the order outlives the read the line came in
	e.orders++
	return ban.Order{
		Jail:     e.name,
		Target:   target,
		Time:     p.t,
		Failures: count,
		Lines:    lines,
	}, true
}

// expire forgets the addresses whose newest failure is FindTime old at now.
func (e *engine) expire(now time.Time) {
	e.win.Expire(now)
	e.recent.expire(now.Add(-e.findTime))
}

// explain is what the engine knows about a: the failures counted now and their lines.
func (e *engine) explain(a netip.Addr, now time.Time) Explain {
	a = a.Unmap().WithZone("")
	x := Explain{Jail: e.name, MaxRetry: e.maxRetry, FindTime: e.findTime}
	x.Times = e.win.Times(a, now)
	x.Failures = len(x.Times)
	if x.Failures == 0 {
		return x
	}
	x.Lines = e.recent.get(a, now.Add(-e.findTime), x.Failures)
	x.ResetsAt = x.Times[len(x.Times)-1].Add(e.findTime)
	return x
}

// recentLines keeps, for the most recently failing addresses only, the last lines that
// counted: a fixed number of addresses in LRU order, each with at most per lines. The window
// tracks up to MaxTracked addresses in under 200 bytes each; keeping lines for all of them
// would cost kilobytes each. So the lines of an address that has not failed lately may be gone
// when it is banned or explained: the order then carries fewer lines than failures.
type recentLines struct {
	max, per   int
	idx        map[netip.Addr]int32
	ents       []recentEntry
	head, tail int32 // most and least recently used; -1 when empty
	free       []int32
}

type recentEntry struct {
	addr       netip.Addr
	prev, next int32
	lines      []timedLine // a ring of up to per lines, oldest at start
	start      int
}

// timedLine is a line kept with its time. The text is a copy in a buffer of its own, reused
// when the slot takes another line: the lines handed in share their memory with the whole read
// they came in (see source.Line), which a kept reference would hold.
type timedLine struct {
	t    time.Time
	line []byte
}

func newRecentLines(addrs, per int) *recentLines {
	return &recentLines{max: addrs, per: max(per, 1), idx: map[netip.Addr]int32{}, head: -1, tail: -1}
}

func (r *recentLines) add(a netip.Addr, t time.Time, line string) {
	if r.max <= 0 {
		return
	}
	a = a.Unmap().WithZone("")
	i, ok := r.idx[a]
	if !ok {
		i = r.alloc(a)
	} else {
		r.unlink(i)
	}
	r.pushFront(i)
	e := &r.ents[i]
	var slot *timedLine
	if n := len(e.lines); n < r.per {
		if n < cap(e.lines) {
			e.lines = e.lines[:n+1] // the slot keeps its buffer from an earlier address
		} else {
			e.lines = append(e.lines, timedLine{})
		}
		slot = &e.lines[n]
	} else {
		slot = &e.lines[e.start]
		e.start = (e.start + 1) % len(e.lines)
	}
	slot.t, slot.line = t, append(slot.line[:0], line...)
}

func (r *recentLines) alloc(a netip.Addr) int32 {
	var i int32
	switch {
	case len(r.free) > 0:
		i = r.free[len(r.free)-1]
		r.free = r.free[:len(r.free)-1]
	case len(r.ents) < r.max:
		r.ents = append(r.ents, recentEntry{})
		i = int32(len(r.ents) - 1)
	default: // full: reuse the least recently used
		i = r.tail
		r.unlink(i)
		delete(r.idx, r.ents[i].addr)
	}
	e := &r.ents[i]
	e.addr, e.lines, e.start = a, e.lines[:0], 0 // the slots' buffers are reused
	r.idx[a] = i
	return i
}

func (r *recentLines) unlink(i int32) {
	e := &r.ents[i]
	if e.prev >= 0 {
		r.ents[e.prev].next = e.next
	} else {
		r.head = e.next
	}
	if e.next >= 0 {
		r.ents[e.next].prev = e.prev
	} else {
		r.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (r *recentLines) pushFront(i int32) {
	e := &r.ents[i]
	e.prev, e.next = -1, r.head
	if r.head >= 0 {
		r.ents[r.head].prev = i
	}
	r.head = i
	if r.tail < 0 {
		r.tail = i
	}
}

// get returns up to limit of the newest lines of a later than after, oldest first.
func (r *recentLines) get(a netip.Addr, after time.Time, limit int) []string {
	i, ok := r.idx[a.Unmap().WithZone("")]
	if !ok {
		return nil
	}
	e := &r.ents[i]
	var out []string
	n := len(e.lines)
	for k := range n {
		l := e.lines[(e.start+k)%n]
		if l.t.After(after) {
			out = append(out, string(l.line))
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// take is get, and forgets a.
func (r *recentLines) take(a netip.Addr, after time.Time, limit int) []string {
	out := r.get(a, after, limit)
	r.remove(a.Unmap().WithZone(""))
	return out
}

func (r *recentLines) remove(a netip.Addr) {
	i, ok := r.idx[a]
	if !ok {
		return
	}
	r.unlink(i)
	delete(r.idx, a)
	e := &r.ents[i]
	e.lines = e.lines[:0] // the slots' buffers are reused
	r.free = append(r.free, i)
}

// expire forgets the addresses whose newest line is at or before cutoff.
func (r *recentLines) expire(cutoff time.Time) {
	for i := r.tail; i >= 0; {
		e := &r.ents[i]
		prev := e.prev
		newest := e.lines[(e.start+len(e.lines)-1)%len(e.lines)].t
		if !newest.After(cutoff) {
			r.remove(e.addr)
		}
		i = prev
	}
}

// len returns the number of addresses kept.
func (r *recentLines) len() int { return len(r.idx) }
