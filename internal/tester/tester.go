// Package tester runs a filter over a whole input, as `logjail regex` does, and gathers what the
// admin wants to know: how many lines matched, were ignored or missed, which hosts, which regexes
// hit and how often, which date formats were found. It uses the same filter package as the
// daemon, so a verdict here is the daemon's verdict.
package tester

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/source"
)

// Match is one matched line, as the tester reports it.
type Match struct {
	Line int        // 1-based line number, or record number for btmp
	Host string     // the captured host text
	Addr netip.Addr // invalid when the failure has no address (F-ID)
	Time time.Time  // zero when the line has no date
	User string
	Text string // the line, for --print-matched
}

// Stats is the summary of a run.
type Stats struct {
	Lines, Matched, Ignored, Missed, NoDate int
	BadHost                                 int // matched a failregex, but the host is no address
	Timeouts                                int // backtracking regex ran out of time
	Garbage                                 int // btmp records skipped as garbage or partial
	Hosts                                   map[netip.Addr]int
	IDs                                     map[string]int // failures identified by F-ID only
	DateFormats                             map[string]int
	RegexHits, IgnoreHits                   []int // per failregex / ignoreregex
	Elapsed                                 time.Duration
}

// Options tune a run.
type Options struct {
	// Now is the read time for every line (year inference, lines without a date). Zero: the
	// time when Run starts.
	Now time.Time
	// OnMatch, OnMissed and OnIgnored are called for each such line (nil: not called). The
	// string is only valid during the call.
	OnMatch   func(Match)
	OnMissed  func(line int, text string)
	OnIgnored func(line int, text string)
	// Sample keeps up to this many lines for Timings (0: none).
	Sample int
}

// Run feeds every line of r through a new matcher of f. A btmp/wtmp file is recognised by its
// content and read as login records rendered as text lines.
func Run(f *filter.Filter, r io.Reader, opts Options) (*Stats, []string, error) {
	now := opts.Now
	start := time.Now()
	if now.IsZero() {
		now = start
	}
	st := &Stats{Hosts: map[netip.Addr]int{}, IDs: map[string]int{}, DateFormats: map[string]int{}}
	m := f.NewMatcher()
	var sample []string
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(source.UtmpRecordSize * 2)
	var fmtHits []int // by date format index
	handle := func(n int, line string) {
		st.Lines++
		if opts.Sample > 0 && len(sample) < opts.Sample && (n%7 == 1 || n < opts.Sample/2) {
			sample = append(sample, strings.Clone(line))
		}
		res := m.Process(line, now)
		if res.HasDate {
			for len(fmtHits) <= res.DateFormat {
				fmtHits = append(fmtHits, 0)
			}
			fmtHits[res.DateFormat]++
		} else {
			st.NoDate++
		}
		if res.Timeout {
			st.Timeouts++
		}
		switch res.Verdict {
		case filter.Matched:
			st.Matched++
			for _, fl := range res.Failures {
				if fl.Addr.IsValid() {
					st.Hosts[fl.Addr]++
				} else if _, seen := st.IDs[fl.ID]; seen {
					st.IDs[fl.ID]++
				} else {
					st.IDs[strings.Clone(fl.ID)] = 1 // the line's memory is shared (eachLine)
				}
				if opts.OnMatch != nil {
					// Host and User may be pieces of the matcher's buffer (see filter.Result)
					mt := Match{Line: n, Host: strings.Clone(fl.Host), Addr: fl.Addr, User: strings.Clone(fl.User), Text: line}
					if res.HasDate {
						mt.Time = fl.Time
					}
					opts.OnMatch(mt)
				}
			}
		case filter.Ignored:
			st.Ignored++
			if opts.OnIgnored != nil {
				opts.OnIgnored(n, line)
			}
		default:
			st.Missed++
			if res.BadHost {
				st.BadHost++
			}
			if opts.OnMissed != nil {
				opts.OnMissed(n, line)
			}
		}
	}
	var err error
	if source.LooksLikeUtmp(head) {
		ur := source.NewUtmpReader(br)
		n := 0
		for {
			rec, rerr := ur.Next()
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) {
					err = rerr
				}
				break
			}
			n++
			handle(n, rec.Text())
		}
		st.Garbage = int(ur.Stats().Skipped)
	} else {
		err = eachLine(br, handle)
	}
	for i, c := range fmtHits {
		if c > 0 {
			st.DateFormats[f.DateFormatName(i)] += c
		}
	}
	st.RegexHits, st.IgnoreHits = m.Hits, m.IgnoreHits
	st.Elapsed = time.Since(start)
	return st, sample, err
}

// chunkSize is how much of the log eachLine reads at a time.
const chunkSize = 1 << 20

// eachLine calls fn with every line of br, without its line ending. Lines of any length are read
// whole; a final line without a newline counts too.
//
// The whole lines of each chunk read become one string, and each line is a piece of it (a
// million lines are then a hundred-odd allocations, not a million), as the follower does: fn
// must clone what it keeps, or the piece keeps its whole chunk alive.
func eachLine(br *bufio.Reader, fn func(int, string)) error {
	n := 0
	buf := make([]byte, chunkSize)
	k := 0 // bytes at the start of buf: a line the previous chunk ended in
	for {
		if k == len(buf) {
			buf = append(buf, make([]byte, len(buf))...) // a line longer than the buffer
		}
		m, err := io.ReadFull(br, buf[k:])
		k += m
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return err
		}
		eof := err != nil
		end := bytes.LastIndexByte(buf[:k], '\n') + 1
		if eof {
			end = k // the final line needs no newline
		}
		for rest := string(buf[:end]); rest != ""; {
			line, after, _ := strings.Cut(rest, "\n")
			n++
			fn(n, strings.TrimSuffix(line, "\r"))
			rest = after
		}
		k = copy(buf, buf[end:k])
		if eof {
			return nil
		}
	}
}

// Timing is the measured cost of one regex on the sampled lines.
type Timing struct {
	Regex   *filter.Regex
	PerLine time.Duration
	Slow    bool // over SlowPerLine, or on the backtracking engine
}

// SlowPerLine flags a regex that costs more than this per line tried.
const SlowPerLine = 2 * time.Microsecond

// Timings measures each regex of f alone on the sample lines (the date is not cut out, which
// makes no difference to speed worth reporting).
func Timings(f *filter.Filter, sample []string) []Timing {
	var out []Timing
	for _, r := range f.Regexes() {
		t := Timing{Regex: r}
		if len(sample) > 0 {
			start := time.Now()
			for _, s := range sample {
				r.MatchString(s)
			}
			t.PerLine = time.Since(start) / time.Duration(len(sample))
		}
		t.Slow = t.PerLine > SlowPerLine || r.Engine == filter.EngineBacktrack
		out = append(out, t)
	}
	return out
}

// OpenInput opens a log argument: "-" is standard input.
func OpenInput(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	return os.Open(path)
}
