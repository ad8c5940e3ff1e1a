package jail

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"time"

	"github.com/logjail/logjail/internal/source"
)

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// Now is the read time handed to the filter: it places dates without a year (a date more
	// than a day after Now is last year's) and times lines without a date. Zero: time.Now().
	// For a file, its modification time is the right value: its last line was written then.
	Now time.Time
	// IgnoreNets are the jail's ignoreip networks: a would-be ban of an address inside one is
	// reported as ignored, as the ban manager would refuse it.
	IgnoreNets []netip.Prefix
	// BanTime, when not 0, models the bans: the failures of an address banned at t until
	// t+BanTime would not have reached the log, so they are not counted (ReplayStats.WhileBanned)
	// and the address is not reported again while banned. Negative (config.Forever): for good.
	// Ignored would-be bans ban nothing.
	BanTime time.Duration
	// MaxLineSize cuts and skips lines as the follower does (default source.DefaultMaxLineSize).
	MaxLineSize int
	// RecentAddrs bounds the addresses whose lines are kept (default DefaultRecentAddrs).
	RecentAddrs int
}

// ReplayBan is one would-be ban.
type ReplayBan struct {
	Time      time.Time    // the time of the failure that crossed maxretry (its line's)
	Addr      netip.Addr   // the address
	Target    netip.Prefix // what would be banned: the address as a /32 or /128
	Failures  int          // failures counted: maxretry
	Line      string       // the line that crossed maxretry
	Lines     []string     // the lines that counted, oldest first, Line last (bounded, see recentLines)
	Ignored   bool         // in IgnoreNets: the ban manager would refuse it
	IgnoredBy netip.Prefix // the ignoreip network that covers it
	Until     time.Time    // with BanTime: when the ban would end; zero for good or not modelled
}

// ReplayStats sums up a replay.
type ReplayStats struct {
	Format      string    // "text" or "btmp"
	Lines       int64     // lines, or btmp records
	NoDate      int64     // lines without a date the filter can read
	Invalid     int64     // lines with invalid UTF-8 or NUL bytes (matched all the same)
	Cut         int64     // lines longer than MaxLineSize: skipped
	Garbage     int64     // btmp records skipped as garbage
	Matched     int64     // failures the filter found
	Failures    int64     // failures counted in the window
	TooOld      int64     // failures FindTime older than the newest date read before them
	IgnoredUser int64     // failures dropped by ignoreuser
	NoAddr      int64     // failures with no address (<F-ID> only)
	BadHost     int64     // lines a failregex matched whose host is no address
	WhileBanned int64     // failures of an address during its would-be ban (with BanTime)
	Bans        int       // would-be bans, Ignored included
	Ignored     int       // would-be bans that ignoreip would refuse
	Addresses   int       // distinct addresses with a would-be ban that is not ignored
	First, Last time.Time // the earliest and latest dates read; zero if none
}

// Replay runs spec's filter and window over r, a whole log (text, or btmp records, told apart
// by content), with the lines' own timestamps as the clock, and calls fn for each would-be ban
// in the order they happen. It is the live jail's own per-line code (stream and engine); only
// the clock differs: the newest date read so far stands for the jail's clock, against which a
// failure FindTime older is dropped as the live jail drops old lines of its backlog. Nothing is
// banned. spec.LogPaths and spec.Backend are not used.
//
// The error is a read error of r; the stats count what was read before it.
func Replay(spec Spec, r io.Reader, o ReplayOptions, fn func(ReplayBan)) (ReplayStats, error) {
	eng, err := newSpecEngine(&spec, o.RecentAddrs)
	if err != nil {
		return ReplayStats{}, err
	}
	if o.BanTime != 0 {
		eng.bannedUntil = map[netip.Addr]time.Time{}
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	maxLine := o.MaxLineSize
	if maxLine <= 0 {
		maxLine = source.DefaultMaxLineSize
	}
	s := newStream(spec.Filter, ignoreUserSet(spec.IgnoreUser), maxLine, DefaultHealthBlock, now)
	var st ReplayStats
	var c counters
	banned := map[netip.Addr]bool{}
	handle := func(text string) {
		s.process(text, now)
		lc, fails := s.take()
		c.add(&lc)
		if len(fails) == 0 {
			return
		}
		clk := s.latest
		if clk.IsZero() {
			clk = now
		}
		for i := range fails {
			ord, ok := eng.add(&fails[i], clk)
			if !ok {
				continue
			}
			rb := ReplayBan{
				Time: ord.Time, Addr: fails[i].addr.Unmap(), Target: ord.Target, Failures: ord.Failures,
				Line: fails[i].line, Lines: ord.Lines,
			}
			st.Bans++
			for _, n := range o.IgnoreNets {
				if n.Contains(rb.Addr) {
					rb.Ignored, rb.IgnoredBy = true, n
					break
				}
			}
			switch {
			case rb.Ignored:
				st.Ignored++
			case o.BanTime < 0:
				eng.bannedUntil[rb.Addr] = time.Unix(1<<62, 0)
			case o.BanTime > 0:
				rb.Until = rb.Time.Add(o.BanTime)
				eng.bannedUntil[rb.Addr] = rb.Until
			}
			if !rb.Ignored {
				banned[rb.Addr] = true
			}
			fn(rb)
		}
		clear(fails)
	}

	br := bufio.NewReaderSize(r, max(maxLine+1, 64<<10))
	head, _ := br.Peek(2 * source.UtmpRecordSize)
	st.Format = "text"
	if source.LooksLikeUtmp(head) {
		st.Format = "btmp"
		ur := source.NewUtmpReader(br)
		for {
			rec, rerr := ur.Next()
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) {
					err = rerr
				}
				break
			}
			handle(rec.Text())
		}
		st.Garbage = ur.Stats().Skipped
	} else {
		err = eachLine(br, maxLine, handle)
	}
	st.Lines, st.NoDate, st.Invalid, st.Cut = c.Lines, c.NoDate, c.Invalid, c.Cut
	st.Matched, st.IgnoredUser, st.NoAddr, st.BadHost = c.Matched, c.IgnoredUser, c.NoAddr, c.BadHost
	st.Failures, st.TooOld, st.WhileBanned = eng.c.Failures, eng.c.TooOld, eng.whileBanned
	st.Addresses = len(banned)
	st.First, st.Last = s.first, s.latest
	return st, err
}

// eachLine calls fn with every line of br, without its line ending, as the follower would send
// it: a line longer than maxLine is cut to its first maxLine bytes. A last line without a
// newline counts too (the file is complete).
func eachLine(br *bufio.Reader, maxLine int, fn func(string)) error {
	var cut []byte
	long := false
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !long {
				long = true
				cut = append(cut[:0], b[:min(len(b), maxLine)]...)
			}
			continue
		}
		switch {
		case long:
			long = false
			fn(string(cut))
		case len(b) > 0:
			b = bytes.TrimSuffix(b, []byte{'\n'})
			if len(b) > maxLine {
				b = b[:maxLine]
			} else {
				b = bytes.TrimSuffix(b, []byte{'\r'})
			}
			fn(string(b))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
