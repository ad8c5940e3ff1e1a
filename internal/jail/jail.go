// Package jail is one jail at run time: it follows the jail's log files (text logs and btmp),
// runs every line through the jail's filter, counts failures per address in a sliding window
// timed by the lines' own timestamps, and hands a ban order to a Banner when an address reaches
// maxretry. It reports what it read and its health: a filter that stopped matching, lines
// without a date, a log that vanished.
//
// The counting logic is plain synchronous code (engine.go) that Replay runs too, over a whole
// file, so that `logjail replay` answers with the daemon's own decisions.
//
// # Concurrency
//
// Each followed file has its own goroutine (two when its filter's lines are independent and
// there are two cores: see consume), which receives the follower's lines and runs them through
// its own filter.Matcher without any lock: matching is nearly all the cost of a line, and files
// of one jail are matched in parallel. The goroutine takes the lines that are already waiting
// (up to batchLines) and then, once per batch, takes the jail's mutex to count the failures it
// found in the window and add its counters. A line that is no failure costs no lock, no
// allocation and no channel operation beyond the follower's send. Ban orders are sent to the
// Banner after the mutex is released. Status and Explain take the same mutex.
//
// One jail goroutine fed by every file (the design's first sketch) would add a second channel
// hop per line and match every file on one core; the mutex is held for microseconds per batch.
//
// # Limits
//
//   - A batch delays the count of its failures by at most batchLines lines (one to two
//     milliseconds in a flood).
//   - A glob that also matches rotated files (access.log*) follows a file renamed by a
//     rotation as a new log, and its failures of the last FindTime count a second time.
//     Globs should match the live names only (*.log, not *.log*).
//   - The lines kept for orders and Explain are those of the Options.RecentAddrs addresses
//     that failed last; an order for an address that failed slowly among many others may
//     carry only the line that crossed maxretry.
//   - With Options.Positions, a position is saved by the file's path. Two jails that follow
//     one file save their positions under the same path, and both resume from the one saved
//     last: the lines between the two positions are counted again by one jail, or skipped by
//     the other. A key of jail and path in the store would remove this.
//   - The followers send one channel message per line. When matching is the bottleneck and
//     the follower runs on another core, each receive from the full channel wakes the
//     follower for one more line: about a quarter of the throughput of one core is lost to
//     these wake-ups (BenchmarkJailFile, -cpu 1 against -cpu 2). A follower that sent slices
//     of lines would remove it.
package jail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/clock"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/source"
	"github.com/logjail/logjail/internal/store"
)

// Defaults of Options.
const (
	DefaultGlobInterval     = 10 * time.Second
	DefaultBacklogBytes     = 16 << 20
	DefaultRecentAddrs      = 2048
	DefaultPositionInterval = time.Second
)

// positionSaveWait bounds how long Run waits, when it stops, for the last positions to be
// committed.
const positionSaveWait = 5 * time.Second

// batchLines is the most lines a file's goroutine takes at once from those already waiting, and
// processes before it counts their failures. A steady trickle of lines never fills a batch;
// only a goroutine that fell behind (a flood, the backlog) takes that many. The size lets two
// cores share the matching of a batch (matchSplit): the hand-over to the helper goroutine
// costs tens of microseconds, small against a batch's one to two milliseconds, while it was
// not against the 0.2 ms of a 256-line batch. The delay a batch adds to the count of its
// failures is at most those one to two milliseconds, in a flood.
const batchLines = 2048

var (
	// ErrSpec is wrapped by New for a Spec it cannot run.
	ErrSpec = errors.New("invalid jail spec")
	// ErrRunning is returned by Run when the jail already runs (or ran).
	ErrRunning = errors.New("jail already started")
)

// Spec is what a jail needs from the configuration.
type Spec struct {
	Name       string
	Filter     *filter.Filter
	FilterName string   // as configured; "btmp" (or a filter named btmp) makes every log a btmp file, even before it exists
	LogPaths   []string // globs; files that do not exist yet, or appear later, are picked up
	Backend    string   // "auto" or "" (inotify on Linux), "polling", "inotify"
	MaxRetry   int
	FindTime   time.Duration
	MaxTracked int // 0: window.DefaultMaxTracked
	IgnoreUser []string
}

// Banner receives the jail's ban orders. *ban.Manager implements it. Ban must not block on the
// kernel; an error that is a refusal by the ignore list is expected (see isRefusal).
type Banner interface {
	Ban(ban.Order) (ban.Ban, error)
}

var _ Banner = (*ban.Manager)(nil)

// Redundancy is implemented by a Banner that can tell, cheaply and without a copy of the
// lines, that an order would change nothing: the address's ban in force would neither start
// nor move its end (see ban.Manager.Redundant). The jail then skips the order and counts it
// (Status.AlreadyBanned): an address that floods the log while banned reaches maxretry again
// and again, and each order would copy its lines and go through the Banner for nothing.
type Redundancy interface {
	Redundant(jail string, target netip.Prefix, t time.Time) bool
}

var _ Redundancy = (*ban.Manager)(nil)

// Positions keeps how far the jail has counted each log file, so that the next run reads on
// from there: no failure is counted twice, none is lost while the daemon was down. *store.Store
// implements it.
//
// Position returns the position saved for path, and whether there is one. SavePositionAsync
// queues a save and returns at once; it calls done (if not nil) once the save is committed or
// has failed, from another goroutine or from within the call. The jail queues a position only
// after handing the ban orders of the lines before it to the Banner: with a store whose queue
// the Banner's ban records share, a position is never committed before the bans its lines
// caused.
type Positions interface {
	Position(path string) (store.Position, bool, error)
	SavePositionAsync(path string, p store.Position, done func(error))
}

// Options are the run-time settings of a jail; the zero value is usable.
type Options struct {
	Clock  clock.Clock  // default clock.Real()
	Logger *slog.Logger // default: discard
	// PollInterval is the followers' (source.FollowOptions.PollInterval; default 250ms).
	PollInterval time.Duration
	// GlobInterval is how often logpath globs are looked at again, files that could not be
	// followed are retried, health is checked, and (at most every FindTime) the window is
	// expired. Default 10s.
	GlobInterval time.Duration
	// BacklogBytes is how much of the end of a file that exists at start is read for the
	// failures of the last FindTime already in it (source.FollowOptions.BacklogBytes). Lines
	// older than FindTime are dropped by their own timestamps. Default 16 MiB; negative: none.
	BacklogBytes int64
	// MaxLineSize is the followers' (default source.DefaultMaxLineSize). A longer line is
	// counted and skipped.
	MaxLineSize int
	// RecentAddrs is how many of the most recently failing addresses keep their lines for ban
	// orders and Explain (default 2048; negative: none). See recentLines.
	RecentAddrs int
	Health      HealthOptions
	// Positions, when not nil, keeps the read position of each file. A file whose position was
	// saved is read on from it, with no backlog (BacklogBytes): what lies before was counted by
	// the run that saved it. See source.FollowOptions.Resume for a file that changed meanwhile.
	Positions Positions
	// PositionInterval is the most often a file's position is saved while lines come (default
	// 1s); Run saves the last positions once more when it stops.
	PositionInterval time.Duration
}

// Jail follows a jail's logs and counts its failures. Create it with New, start it with Run.
// Status, Explain, Name and Spec are safe from any goroutine.
type Jail struct {
	spec       Spec
	o          Options
	clk        clock.Clock
	log        *slog.Logger
	banner     Banner
	watch      source.WatchMode
	ignoreUser map[string]struct{}
	started    atomic.Bool

	// Owned by the Run goroutine.
	gen        uint64 // scan generation
	lastExpire time.Time
	pollOnly   bool // inotify failed once: poll from then on

	mu         sync.Mutex
	eng        *engine
	files      []*file
	byPath     map[string]*file
	patterns   []pattern
	warnings   map[string]string // health key -> message
	banErrors  int64
	lastBanErr string
	refused    int64
	posErrors  int64     // failed position saves
	lastPosErr string    // the last of them
	posErrLog  time.Time // when one was last logged
}

// pattern is one logpath.
type pattern struct {
	text    string
	glob    bool
	matches int    // files the last glob found
	err     string // a bad pattern
}

// file is one followed path. Its fields are guarded by Jail.mu, except f, utmp and done,
// which are set before its goroutine starts and read-only after.
type file struct {
	path    string
	pattern int  // index in Jail.patterns of the logpath that found it first
	glob    bool // found by a glob (else a plain path, followed even while missing)
	f       follower
	utmp    bool
	done    chan struct{} // closed when its goroutine ended
	err     string        // why it cannot be followed; retried every GlobInterval
	errSeen string        // err last logged

	gen          uint64 // scan that last found it
	c            counters
	h            health
	existed      bool
	missingSince time.Time
	errCount     int64  // the follower's error counts at the last check
	recentErr    string // the follower's error, when its counts grew since the last check
	// mark is the position after the last line counted (of a batch whose file was at the
	// path); dirty until it is handed to Options.Positions.
	mark  source.Mark
	dirty bool
}

// follower is what the jail needs of source.Follower and source.UtmpFollower.
type follower interface {
	Batches() <-chan source.Batch
	Stats() source.FollowStats
	Stop()
}

// New checks spec and returns a jail ready to Run. b receives the ban orders.
func New(spec Spec, b Banner, o Options) (*Jail, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no banner", ErrSpec)
	}
	if len(spec.LogPaths) == 0 {
		return nil, fmt.Errorf("%w: jail %s: no logpath", ErrSpec, spec.Name)
	}
	watch, err := watchMode(spec.Backend)
	if err != nil {
		return nil, fmt.Errorf("%w: jail %s: %v", ErrSpec, spec.Name, err)
	}
	eng, err := newSpecEngine(&spec, o.RecentAddrs)
	if err != nil {
		return nil, err
	}
	if r, ok := b.(Redundancy); ok {
		name := spec.Name
		eng.redundant = func(target netip.Prefix, t time.Time) bool { return r.Redundant(name, target, t) }
	}
	o = o.withDefaults()
	j := &Jail{
		spec:       spec,
		o:          o,
		clk:        o.Clock,
		log:        o.Logger.With("jail", spec.Name),
		banner:     b,
		watch:      watch,
		ignoreUser: ignoreUserSet(spec.IgnoreUser),
		eng:        eng,
		byPath:     map[string]*file{},
		warnings:   map[string]string{},
	}
	for _, p := range spec.LogPaths {
		j.patterns = append(j.patterns, pattern{text: p, glob: hasMeta(p)})
	}
	return j, nil
}

// newSpecEngine checks what the engine needs of spec (Replay too) and builds it.
func newSpecEngine(spec *Spec, recent int) (*engine, error) {
	switch {
	case spec.Name == "":
		return nil, fmt.Errorf("%w: no name", ErrSpec)
	case spec.Filter == nil:
		return nil, fmt.Errorf("%w: jail %s: no filter", ErrSpec, spec.Name)
	}
	if recent == 0 {
		recent = DefaultRecentAddrs
	}
	eng, err := newEngine(spec, max(recent, 0))
	if err != nil {
		return nil, fmt.Errorf("%w: jail %s: %w", ErrSpec, spec.Name, err)
	}
	return eng, nil
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = source.DefaultPollInterval
	}
	if o.GlobInterval <= 0 {
		o.GlobInterval = DefaultGlobInterval
	}
	switch {
	case o.BacklogBytes == 0:
		o.BacklogBytes = DefaultBacklogBytes
	case o.BacklogBytes < 0:
		o.BacklogBytes = 0
	}
	if o.MaxLineSize <= 0 {
		o.MaxLineSize = source.DefaultMaxLineSize
	}
	if o.PositionInterval <= 0 {
		o.PositionInterval = DefaultPositionInterval
	}
	o.Health = o.Health.withDefaults()
	return o
}

func watchMode(backend string) (source.WatchMode, error) {
	switch backend {
	case "", "auto":
		if runtime.GOOS == "linux" {
			return source.WatchInotify, nil
		}
		return source.WatchPoll, nil
	case "inotify":
		return source.WatchInotify, nil
	case "polling":
		return source.WatchPoll, nil
	}
	return 0, fmt.Errorf("backend %q is not supported (auto, polling or inotify)", backend)
}

func ignoreUserSet(users []string) map[string]struct{} {
	if len(users) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(users))
	for _, u := range users {
		m[u] = struct{}{}
	}
	return m
}

// hasMeta reports whether path has glob meta-characters (filepath.Match's).
func hasMeta(path string) bool {
	magic := `*?[`
	if runtime.GOOS != "windows" {
		magic = `*?[\`
	}
	return strings.ContainsAny(path, magic)
}

// Name returns the jail's name.
func (j *Jail) Name() string { return j.spec.Name }

// Spec returns the jail's spec.
func (j *Jail) Spec() Spec { return j.spec }

// Run follows the jail's logs until ctx is done, then stops every follower and returns nil once
// they and their goroutines have ended (and, with Options.Positions, the last positions are
// saved). A jail runs once; a second Run returns ErrRunning.
func (j *Jail) Run(ctx context.Context) error {
	if !j.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	now := j.clk.Now()
	j.lastExpire = now
	j.tick(ctx, &wg, now)
	j.log.Info("jail started", "files", j.fileCount(), "backend", j.watch.String())
	// One timer serves the ticks and the position saves, so that Run always waits on exactly
	// one (tests on a fake clock wait until it is armed again).
	now = j.clk.Now()
	nextTick, nextSave := now.Add(j.o.GlobInterval), now.Add(j.o.PositionInterval)
	timer := j.clk.NewTimer(j.nextWake(nextTick, nextSave).Sub(now))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel() // stops the followers, which close their Lines
			wg.Wait()
			j.savePositions(true)
			j.log.Info("jail stopped")
			return nil
		case <-timer.C():
			now := j.clk.Now()
			if j.o.Positions != nil && !now.Before(nextSave) {
				j.savePositions(false)
				nextSave = now.Add(j.o.PositionInterval)
			}
			if !now.Before(nextTick) {
				j.tick(ctx, &wg, now)
				now = j.clk.Now()
				nextTick = now.Add(j.o.GlobInterval)
			}
			timer.Reset(j.nextWake(nextTick, nextSave).Sub(now))
		}
	}
}

// nextWake is when Run has something to do next.
func (j *Jail) nextWake(tick, save time.Time) time.Time {
	if j.o.Positions != nil && save.Before(tick) {
		return save
	}
	return tick
}

func (j *Jail) fileCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.files)
}

// tick looks at the globs again, starts what can be started, checks health and expires the
// window.
func (j *Jail) tick(ctx context.Context, wg *sync.WaitGroup, now time.Time) {
	j.scan(ctx, wg)
	for _, fl := range j.check(now) {
		fl.f.Stop()
		<-fl.done
		j.log.Info("stopped following vanished file", "file", fl.path)
	}
	if now.Sub(j.lastExpire) >= j.spec.FindTime {
		j.mu.Lock()
		j.eng.expire(now)
		j.mu.Unlock()
		j.lastExpire = now
	}
}

// scan globs every logpath and follows what it finds that is not followed yet.
func (j *Jail) scan(ctx context.Context, wg *sync.WaitGroup) {
	j.gen++
	for i := range j.patterns {
		p := &j.patterns[i]
		paths := []string{p.text}
		var perr string
		if p.glob {
			m, err := filepath.Glob(p.text)
			if err != nil {
				perr = fmt.Sprintf("logpath %s: %v", p.text, err)
			}
			paths = m
		}
		j.mu.Lock()
		p.matches, p.err = len(paths), perr
		var todo []*file
		for _, path := range paths {
			fl := j.byPath[path]
			if fl == nil {
				fl = &file{path: path, pattern: i, glob: p.glob}
				j.byPath[path] = fl
				j.files = append(j.files, fl)
			}
			fl.gen = j.gen
			if fl.f == nil {
				todo = append(todo, fl)
			}
		}
		j.mu.Unlock()
		for _, fl := range todo {
			j.start(ctx, wg, fl)
		}
	}
}

// start follows fl's path, or records why it cannot.
func (j *Jail) start(ctx context.Context, wg *sync.WaitGroup, fl *file) {
	utmp := j.isUtmp(fl.path)
	fo := source.FollowOptions{
		Watch:        j.watch,
		PollInterval: j.o.PollInterval,
		BacklogBytes: j.o.BacklogBytes,
		MaxLineSize:  j.o.MaxLineSize,
		Logger:       j.log,
		Now:          j.clk.Now,
	}
	if j.pollOnly {
		fo.Watch = source.WatchPoll
	}
	if j.o.Positions != nil {
		p, ok, err := j.o.Positions.Position(fl.path)
		switch {
		case err != nil:
			// Without it the backlog is read: failures may count twice, none is lost.
			j.log.Warn("cannot read the saved position, reading as if there was none", "file", fl.path, "err", err)
		case ok:
			fo.Resume = &p
		}
	}
	f, err := j.follow(ctx, fl.path, utmp, fo)
	if err != nil && fo.Watch == source.WatchInotify && !errors.Is(err, source.ErrNotRegular) {
		// inotify unavailable (out of instances, unsupported): polling still works.
		if pf, perr := j.follow(ctx, fl.path, utmp, withWatch(fo, source.WatchPoll)); perr == nil {
			j.log.Warn("inotify unavailable, polling instead", "file", fl.path, "err", err)
			j.pollOnly = true
			f, err = pf, nil
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		fl.err = err.Error()
		if fl.err != fl.errSeen {
			fl.errSeen = fl.err
			j.log.Warn("cannot follow log", "file", fl.path, "err", err)
		}
		return
	}
	fl.f, fl.utmp, fl.err, fl.errSeen = f, utmp, "", ""
	fl.done = make(chan struct{})
	kind := "text"
	if utmp {
		kind = "btmp"
	}
	j.log.Info("following", "file", fl.path, "format", kind)
	s := newStream(j.spec.Filter, j.ignoreUser, j.o.MaxLineSize, j.o.Health.BlockLines, j.clk.Now())
	wg.Add(1)
	go j.consume(wg, fl, f, s)
}

func withWatch(fo source.FollowOptions, w source.WatchMode) source.FollowOptions {
	fo.Watch = w
	return fo
}

func (j *Jail) follow(ctx context.Context, path string, utmp bool, fo source.FollowOptions) (follower, error) {
	fo.Batch = true
	if utmp {
		return source.FollowUtmp(ctx, path, fo)
	}
	return source.Follow(ctx, path, fo)
}

// isUtmp tells whether path is to be read as utmp records: the jail's filter is btmp's, or the
// file starts with utmp records, or it is empty or missing and named like one (btmp, wtmp,
// btmp.1...).
func (j *Jail) isUtmp(path string) bool {
	if name, _, _ := strings.Cut(j.spec.FilterName, "["); name == "btmp" || j.spec.Filter.Name == "btmp" {
		return true
	}
	base := filepath.Base(path)
	named := strings.HasPrefix(base, "btmp") || strings.HasPrefix(base, "wtmp")
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return named && errors.Is(err, fs.ErrNotExist)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	head := make([]byte, 8*source.UtmpRecordSize)
	n, _ := io.ReadFull(f, head)
	return source.LooksLikeUtmp(head[:n]) || n == 0 && named
}

// consume runs fl's lines through s until the follower closes its Batches.
//
// When the filter's lines are independent (filter.Filter.Independent) and there is more than
// one core, two matchers work on the file: this goroutine and a second one each take the next
// batch of waiting lines, match it on their own stream (each has its own filter.Matcher), and
// then count it in s, strictly in the order the batches were taken, so that the failures are
// counted in line order as if one stream had read them all. A steady trickle of lines is one
// small batch at a time, matched and counted at once by whichever matcher took it: a ban
// waits for no hand-over. A file that fell behind (a flood, the backlog) keeps both cores
// matching, and the count of one batch runs while the other matcher matches the next.
//
// Two matchers that each take whole batches replace a helper that took half of each batch
// (started per batch, then waited for): that helper usually started late, behind its creator,
// and sat idle while the batch was counted, so it matched 15-30% of the lines.
func (j *Jail) consume(wg *sync.WaitGroup, fl *file, f follower, s *stream) {
	defer wg.Done()
	defer close(fl.done)
	q := newBatchQueue(f.Batches(), j.o.Positions != nil)
	if !j.spec.Filter.Independent() || runtime.GOMAXPROCS(0) < 2 {
		j.match(fl, s, q, nil)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		j.match(fl, s, q, newStream(j.spec.Filter, j.ignoreUser, j.o.MaxLineSize, noBlock, j.clk.Now()))
	}()
	j.match(fl, s, q, newStream(j.spec.Filter, j.ignoreUser, j.o.MaxLineSize, noBlock, j.clk.Now()))
	<-done
}

// match is a matcher of consume: it takes batches from q, matches them on w, and counts them
// in s (the file's stream) in their turn, until q's follower closes its channel. With w nil
// (the only matcher) it matches on s itself. It returns how many batches it counted.
func (j *Jail) match(fl *file, s *stream, q *batchQueue, w *stream) int {
	var buf []source.Line
	batches := 0
	for {
		q.takeMu.Lock()
		buf, mark, seq, ok := q.take(buf)
		q.takeMu.Unlock()
		if len(buf) > 0 {
			m := w
			if m == nil {
				m = s
			}
			for i := range buf {
				m.process(buf[i].Text, buf[i].Read)
			}
			clear(buf)
			q.countMu.Lock()
			for q.next != seq {
				q.counted.Wait()
			}
			if w != nil {
				s.mergeFrom(w)
			}
			j.flush(fl, s, mark)
			q.next++
			q.countMu.Unlock()
			q.counted.Broadcast()
			batches++
		}
		if !ok {
			return batches
		}
	}
}

// batchQueue hands out a follower's batches, numbered in the order taken.
type batchQueue struct {
	in    <-chan source.Batch
	track bool // keep the batches' marks (Options.Positions)

	takeMu sync.Mutex // held around take by the matchers
	seq    uint64     // number of the next batch taken

	countMu sync.Mutex
	counted *sync.Cond // signalled when next moves
	next    uint64     // number of the next batch to count
}

func newBatchQueue(in <-chan source.Batch, track bool) *batchQueue {
	q := &batchQueue{in: in, track: track}
	q.counted = sync.NewCond(&q.countMu)
	return q
}

// take waits for the next batch and adds to it what else is waiting, up to batchLines lines,
// so that one flush counts it all; it reuses buf. It returns the lines, the mark of the last
// batch that has one (if q.track), the batch's number, and false once the follower closed its
// channel (with the lines taken before that, maybe none).
func (q *batchQueue) take(buf []source.Line) ([]source.Line, source.Mark, uint64, bool) {
	buf = buf[:0]
	var mark source.Mark
	b, ok := <-q.in
more:
	for ok {
		buf = append(buf, b.Lines...)
		if q.track && !b.Mark.IsZero() {
			mark = b.Mark
		}
		if len(buf) >= batchLines {
			break
		}
		select {
		case b, ok = <-q.in:
		default:
			break more
		}
	}
	// A number only for lines to count: the matchers wait for every number handed out.
	seq := q.seq
	if len(buf) > 0 {
		q.seq++
	}
	return buf, mark, seq, ok
}

// flush counts the failures s found and adds its counters to the file's and the jail's, then
// sends the ban orders that resulted. mark, unless zero, is the file's position after the lines
// counted: it becomes the position to save once the orders are sent.
func (j *Jail) flush(fl *file, s *stream, mark source.Mark) {
	c, fails := s.take()
	orders := s.orders[:0]
	j.mu.Lock()
	now := j.clk.Now()
	for i := range fails {
		if o, ok := j.eng.add(&fails[i], now); ok {
			orders = append(orders, o)
		}
	}
	j.eng.c.add(&c)
	fl.c.add(&c)
	fl.h = s.h
	later := !mark.IsZero()
	if later && len(orders) == 0 {
		fl.mark, fl.dirty = mark, true
		later = false
	}
	j.mu.Unlock()
	clear(fails)
	for _, o := range orders {
		j.order(o)
	}
	clear(orders)
	s.orders = orders[:0]
	if later {
		// Only now: the Banner has queued the records of the bans (see Positions), and a
		// position saved before them could outlive them in a crash, with their failures
		// never read again.
		j.mu.Lock()
		fl.mark, fl.dirty = mark, true
		j.mu.Unlock()
	}
}

// savePositions hands the positions that changed since the last save to Options.Positions. With
// final (Run is returning, the files' goroutines have ended) it waits until they are committed,
// for at most positionSaveWait.
func (j *Jail) savePositions(final bool) {
	if j.o.Positions == nil {
		return
	}
	type save struct {
		fl   *file
		mark source.Mark
	}
	var saves []save
	j.mu.Lock()
	for _, fl := range j.files {
		if fl.dirty {
			saves = append(saves, save{fl, fl.mark})
			fl.dirty = false
		}
	}
	j.mu.Unlock()
	if len(saves) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, sv := range saves {
		p, ok := sv.mark.Position()
		if !ok {
			continue
		}
		fl := sv.fl
		wg.Add(1)
		j.o.Positions.SavePositionAsync(fl.path, p, func(err error) {
			if err != nil {
				j.positionFailed(fl, err)
			}
			wg.Done()
		})
	}
	if !final {
		return
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	default:
	}
	timer := j.clk.NewTimer(positionSaveWait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C():
		j.log.Error("positions not saved in time: the next start may count some failures again",
			"files", len(saves), "waited", positionSaveWait)
	}
}

// positionFailed records a failed save of fl's position, to be saved again next time, and logs
// it at most once a minute: a full disk fails every save.
func (j *Jail) positionFailed(fl *file, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	fl.dirty = true // its mark is still the newest, or a newer one waits: save that next time
	j.posErrors++
	j.lastPosErr = fmt.Sprintf("save position of %s: %v", fl.path, err)
	now := j.clk.Now()
	if !j.posErrLog.IsZero() && now.Sub(j.posErrLog) < time.Minute {
		return
	}
	j.posErrLog = now
	j.log.Error("cannot save log position: the next start may count some failures again",
		"file", fl.path, "failed_saves", j.posErrors, "err", err)
}

func (j *Jail) order(o ban.Order) {
	j.log.Debug("maxretry reached", "addr", o.Target, "failures", o.Failures, "time", o.Time)
	_, err := j.banner.Ban(o)
	if err == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if isRefusal(err) {
		j.refused++ // the ban manager logs refusals
		return
	}
	j.banErrors++
	j.lastBanErr = fmt.Sprintf("ban %s: %v", o.Target, err)
	j.log.Warn("ban order failed", "addr", o.Target, "err", err)
}

// Status is what a jail reports of itself; the jail-side fields of control.JailStatus.
type Status struct {
	Name        string
	Filter      string
	Files       []FileStatus // in the order they were found
	LinesRead   int64        // lines (btmp records) read, from every file
	LinesNoDate int64        // lines without a date the filter could read
	// LinesSkipped are lines and failures not counted because they are garbage: lines cut at
	// MaxLineSize, btmp records skipped as garbage, and failures FindTime old or older.
	LinesSkipped int64
	LinesInvalid int64     // lines with invalid UTF-8 or NUL bytes (matched all the same)
	Matched      int64     // failures the filter found
	Failures     int64     // failures counted in the window
	TooOld       int64     // failures dropped as FindTime old or older (also in LinesSkipped)
	IgnoredUser  int64     // failures dropped by ignoreuser
	NoAddr       int64     // failures with no address (<F-ID> only)
	BadHost      int64     // lines a failregex matched whose host is no address
	Tracked      int       // addresses with failures in the window
	Evicted      uint64    // addresses evicted by the tracking cap
	LastFailure  time.Time // time of the newest failure counted; zero if none
	Orders       int64     // ban orders sent
	// AlreadyBanned counts the times an address reached maxretry again while its ban was in
	// force and would not change (see Redundancy): no order was sent.
	AlreadyBanned int64
	Refused       int64 // orders the ban manager refused (ignore list)
	MaxRetry      int
	FindTime      time.Duration
	Warnings      []string // health, sorted
	Errors        []string // files that cannot be followed, bad globs, failed ban orders
}

// FileStatus is one followed file.
type FileStatus struct {
	Path        string
	Format      string // "text" or "btmp"
	Exists      bool
	Lines       int64
	Bytes       int64
	Offset      int64
	Rotations   int64
	Truncations int64
	CutLines    int64
	Garbage     int64 // btmp records skipped as garbage
	Error       string
}

// Status returns a snapshot of the jail's counters, files, warnings and errors.
func (j *Jail) Status() Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.eng
	st := Status{
		Name:          j.spec.Name,
		Filter:        j.spec.FilterName,
		LinesRead:     e.c.Lines,
		LinesNoDate:   e.c.NoDate,
		LinesInvalid:  e.c.Invalid,
		Matched:       e.c.Matched,
		Failures:      e.c.Failures,
		TooOld:        e.c.TooOld,
		IgnoredUser:   e.c.IgnoredUser,
		NoAddr:        e.c.NoAddr,
		BadHost:       e.c.BadHost,
		Tracked:       e.win.Len(),
		Evicted:       e.win.Evicted(),
		LastFailure:   e.lastFailure,
		Orders:        e.orders,
		AlreadyBanned: e.alreadyBanned,
		Refused:       j.refused,
		MaxRetry:      j.spec.MaxRetry,
		FindTime:      j.spec.FindTime,
	}
	st.LinesSkipped = e.c.Cut + e.c.TooOld
	for _, p := range j.patterns {
		if p.err != "" {
			st.Errors = append(st.Errors, p.err)
		}
	}
	for _, fl := range j.files {
		fs := FileStatus{Path: fl.path, Format: "text", Error: fl.err}
		if fl.utmp {
			fs.Format = "btmp"
		}
		if fl.f != nil {
			fst := fl.f.Stats()
			fs.Exists, fs.Lines, fs.Bytes, fs.Offset = fst.Exists, fst.Lines, fst.Bytes, fst.Offset
			fs.Rotations, fs.Truncations, fs.CutLines = fst.Rotations, fst.Truncations, fst.CutLines
			if u, ok := fl.f.(interface{ UtmpStats() source.UtmpStats }); ok {
				fs.Garbage = u.UtmpStats().Skipped
				st.LinesSkipped += fs.Garbage
			}
			fs.Error = fl.recentErr
		}
		if fs.Error != "" {
			st.Errors = append(st.Errors, fmt.Sprintf("log %s: %s", fl.path, fs.Error))
		}
		st.Files = append(st.Files, fs)
	}
	if j.banErrors > 0 {
		st.Errors = append(st.Errors, fmt.Sprintf("%d ban orders failed, the last: %s", j.banErrors, j.lastBanErr))
	}
	if j.posErrors > 0 {
		st.Errors = append(st.Errors, fmt.Sprintf("%d position saves failed, the last: %s", j.posErrors, j.lastPosErr))
	}
	for _, k := range sortedKeys(j.warnings) {
		st.Warnings = append(st.Warnings, j.warnings[k])
	}
	return st
}

// Explain is what the jail knows about one address.
type Explain struct {
	Jail     string
	Failures int // counted in the window now
	MaxRetry int
	FindTime time.Duration
	Times    []time.Time // of the failures counted, ascending
	// Lines are the lines of those failures, oldest first, when the address is among the
	// Options.RecentAddrs most recently failing ones (else fewer or none).
	Lines []string
	// ResetsAt is when the newest counted failure leaves the window (and the count drops to 0
	// without new failures); zero when nothing is counted.
	ResetsAt time.Time
}

// Explain returns the failures of a counted now.
func (j *Jail) Explain(a netip.Addr) Explain {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.eng.explain(a, j.clk.Now())
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isRefusal reports whether err from Banner.Ban is a refusal by the ignore list (ignoreip, an
// own address, an admin session), which the ban manager logs itself.
func isRefusal(err error) bool {
	var ie *ban.IgnoredError
	return errors.As(err, &ie)
}
