package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logjail/logjail/internal/store"
)

// Why this follower does not use github.com/nxadm/tail.
//
// The design named nxadm/tail for text logs. Follow is written on os.File instead, with its own
// polling, because the library cannot meet these requirements (each checked against v1.4.11):
//
//   - No os.Exit. In follow mode both of its watchers stat the path in a goroutine of their
//     own and call os.Exit(1) on any error other than ENOENT (watch/polling.go:81,
//     watch/inotify.go:121). Replacing the log's directory by a file (ENOTDIR) kills the
//     process even as root. A pre-check cannot close that race, and the goroutine cannot be
//     reached from outside. Without follow mode the library has no watcher left to use.
//   - Read the renamed file to EOF. On a rename it opens the new file by name and drops the
//     old descriptor, so lines written to the old file after the rename are lost
//     (hpcloud/tail#127, nxadm/tail#74).
//   - Copytruncate followed by writes past the old size. It only notices a size that shrank
//     between two polls (watch/polling.go:92), and then reads the new content from the old
//     offset.
//   - MaxLineSize that cuts and counts. It splits long lines into several Lines that cannot
//     be told from real ones, and its CompleteLines buffer grows without bound on a file
//     with no newline (a binary file).
//   - Offsets and throughput. Line.SeekInfo comes from Tell, which races with reopen
//     (nxadm/tail#60) and costs an lseek per line. Lines is unbuffered. Appending 100-byte
//     lines on a 2-CPU machine, it delivered about 0.5 M lines/s, and this follower about
//     5 M (BenchmarkFollow).
//   - No global state. The poll interval is the package variable watch.POLL_DURATION.
//
// The parts of the library that work (bufio reading, CompleteLines) are a few lines of code.
// Its faults are in the parts we need. Nothing in the module imports it now.

// Defaults of FollowOptions.
const (
	DefaultPollInterval = 250 * time.Millisecond
	DefaultMaxLineSize  = 64 << 10
	DefaultRotateWait   = 5 * time.Second
)

const (
	maxMaxLineSize = 16 << 20      // upper bound of FollowOptions.MaxLineSize: it sizes a buffer
	readSize       = 64 << 10      // bytes asked for by each read; one pread per ~650 lines of 100 bytes
	headSize       = store.MaxHead // bytes of the file's head kept to detect copytruncate, and in Marks
	linesCap       = 1024          // buffer of the Lines channel
	// BatchLines is the most lines in one slice sent on Batches.
	BatchLines = 256
	// batchesCap is the buffer of the Batches channel: a receiver that fell behind finds up to
	// 4,096 lines waiting, enough to share their matching between two cores (see package jail).
	batchesCap = 16
	maxPerPoll = 16 << 20 // bytes read from one file before the path is looked at again
)

var (
	// ErrNotRegular is returned (wrapped in an *fs.PathError) when the path names a directory,
	// a named pipe, a device or a socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrInvalidOption is returned by Follow for FollowOptions out of range.
	ErrInvalidOption = errors.New("invalid follow option")
	// ErrWatchUnsupported is returned by Follow for a WatchMode this platform lacks.
	ErrWatchUnsupported = errors.New("watch mode not supported")
)

// WatchMode says how a Follower learns that the file changed.
type WatchMode int

const (
	// WatchPoll stats the path and reads the file every PollInterval. It works on every
	// filesystem (NFS included) and is the default.
	WatchPoll WatchMode = iota
	// WatchInotify also wakes the follower on inotify events from the file's directory, so
	// lines arrive in milliseconds. Polling every PollInterval continues as a safety net: the
	// events only wake the same checks, and correctness never depends on them. Linux only.
	WatchInotify
)

func (m WatchMode) String() string {
	switch m {
	case WatchPoll:
		return "poll"
	case WatchInotify:
		return "inotify"
	}
	return fmt.Sprintf("WatchMode(%d)", int(m))
}

// Line is one complete line of a followed file.
type Line struct {
	// Text is the bytes of the line, without "\n" or "\r\n"; not checked for UTF-8. It shares
	// its memory with the other lines of the same read: keeping a piece of it keeps the whole
	// read (up to 64 KiB) alive, so what is kept for long must be copied (strings.Clone).
	Text   string
	File   string    // the path given to Follow
	Offset int64     // byte offset of the line's start in the file it was read from
	Read   time.Time // when the line was read (FollowOptions.Now, once per read of up to 64 KiB); prefer the time inside the line
}

// FollowOptions configure Follow. The zero value is a valid configuration.
type FollowOptions struct {
	// Watch selects polling (the zero value and default) or inotify. The design's
	// "Poll bool, default true" becomes a named type because a bool field cannot default to
	// true.
	Watch WatchMode
	// PollInterval is the time between two checks of the path (default 250ms). With
	// WatchInotify it is the safety-net interval.
	PollInterval time.Duration
	// FromStart reads an existing file from its first byte. Otherwise reading starts at the
	// end, at the start of an incomplete last line if there is one, so no torn line is sent.
	// A file that appears after Follow, or replaces the followed one, is always read from its
	// start.
	FromStart bool
	// BacklogBytes, when reading starts at the end, first re-reads at most this many bytes
	// before the end. Reading begins at the first line that starts inside them, so whole
	// lines only. The jail passes a bound that covers its findtime, and its window drops
	// lines whose own timestamps are older. The follower parses no dates.
	//
	// Why bytes and not a time.Duration or a callback: only the filter knows the date format,
	// and the window already has to drop old lines. A callback to binary-search the file by
	// time would couple the follower to logtime, and it gives wrong answers on logs whose
	// times are not monotonic (several writers, a clock step). A byte bound costs one read of
	// at most BacklogBytes at start. Too small a bound counts fewer old failures, as if the
	// daemon had started a little later. Too large a bound costs reading time.
	BacklogBytes int64
	// MaxLineSize: a longer line is sent cut to its first MaxLineSize bytes once its newline
	// arrives. The rest is skipped, and the cut is counted in FollowStats.CutLines. It also
	// bounds memory on files without newlines. The default is 64 KiB and the maximum 16 MiB.
	MaxLineSize int
	// RotateWait is how long a file that was renamed or deleted away from the path is still
	// read, for writers that append to it until they reopen (syslog until its HUP, for
	// example). The default is 5s. A negative value reads it once, to EOF, when the rotation
	// is seen, and then closes it.
	RotateWait time.Duration
	// Logger receives rotations, truncations and errors. The default discards them.
	Logger *slog.Logger
	// Batch sends the lines in slices on Batches instead of one by one on Lines (which is then
	// nil): up to BatchLines lines a slice, at least one slice per read, the newest lines never
	// held back. A busy reader pays one channel operation per slice rather than per line.
	// The receiver owns each slice. Each slice comes with the Mark to save once it is processed.
	Batch bool
	// Resume is the position saved for the path by an earlier follower (Mark.Position). If the
	// file at the path when Follow is called is the same file (device, inode and first bytes,
	// see store.Position), reading starts at Resume.Offset, or at 0 if the file is now shorter;
	// FromStart and BacklogBytes are not used, since what comes before the offset was read
	// before. Any other file was rotated or replaced meanwhile and is read from its start. A
	// missing file is waited for and read from its start, as without Resume.
	Resume *store.Position
	// Now stamps Line.Read and times RotateWait. The default is time.Now.
	Now func() time.Time
}

// FollowStats are the counters of a Follower. All are totals since Follow.
type FollowStats struct {
	Lines          int64  // lines sent on Lines, cut ones included
	Bytes          int64  // bytes consumed: lines with their endings, and skipped bytes
	Rotations      int64  // times the followed file left the path (renamed, deleted or replaced)
	Truncations    int64  // in-place truncations (copytruncate), found by size or by a changed head
	CutLines       int64  // lines longer than MaxLineSize that were sent cut
	DroppedPartial int64  // incomplete last lines given up at a truncation, or when a rotated file is closed
	ReopenErrors   int64  // failed stat or open of the path, other than "does not exist"
	ReadErrors     int64  // failed reads of an open file
	LastError      string // text of the last error; kept after recovery
	Exists         bool   // the path named a regular file at the last check
	Offset         int64  // input of the current file consumed up to here (read ahead of the receiver: save Batch.Mark)
}

// Follower follows one text log file, like tail -F. It reads complete lines and survives
// rotation by rename and create, copytruncate, deletion and re-creation, and paths that
// stop being readable. It owns one goroutine, or two with WatchInotify. Both end when the
// context given to Follow is done or Stop is called. Then Lines is closed.
//
// How a change is found: every PollInterval (sooner with inotify) the path is stat'ed and
// compared with the open descriptor (os.SameFile). Each read is followed by a pread of the
// file's first bytes, compared with what was read there before.
//
//   - Rotation (rename+create, delete+recreate, a replaced file or symlink): the old file
//     is read through its descriptor to EOF. It is then kept open and read for
//     RotateWait, and the new file is read from its start. If the path names the old file
//     again (renamed back), reading goes on where it stopped.
//   - Truncation: the size is below the read offset, or the first bytes changed. The file is
//     then read from offset 0, which catches copytruncate followed by writes past the old
//     size before the next check.
//   - A stat error other than ENOENT (EACCES, ENOTDIR, ELOOP, EIO): counted and logged. The
//     open descriptor is still read, and the check is retried at the next poll.
//   - A directory, named pipe or device at the path: the old file is treated as rotated
//     away, and the failed open is counted and retried at each poll. Opens never block
//     (O_NONBLOCK), and what was opened is checked with fstat, so no stat-then-open race.
//
// Guarantees (tested):
//
//   - Rename+create and delete+recreate lose and repeat no line if the old file's writers
//     stop writing to it within RotateWait after the follower noticed the rotation.
//   - Copytruncate, including writes past the old size, repeats no line and loses no line
//     written after the truncation.
//   - Every line is sent once, whole, with its offset, after its newline has been written.
//
// Loss windows that remain:
//
//   - Copytruncate: lines appended after the follower's last read and before the
//     truncation exist only in the copy, whose name the follower does not know. They are
//     lost. The window is one PollInterval, shorter with inotify. logrotate's own window
//     (lines written between its copy and its truncate) comes on top. Prefer the create
//     rotation mode.
//   - Copytruncate is missed if the new content starts with the same bytes as the old
//     content, up to the old content's length or 1 KiB. Then the bytes before the old offset
//     are skipped, and the line at the old offset can be torn. Lines that start with a
//     timestamp make this practically impossible.
//   - Rotation: a file that appears at the path and is rotated away again between two
//     checks is never opened. Its lines are lost (the follower cannot know its new name).
//   - Rotation: a writer that goes on writing to the old file for more than RotateWait after
//     the follower noticed the rotation. A line still incomplete at that point is dropped
//     (DroppedPartial). So is an incomplete line at a truncation.
//   - Lines of a rotated file read during RotateWait can come after lines of the new file.
//     Their Offset is in the old file, and their Batches carry no Mark.
type Follower struct {
	path string
	o    FollowOptions
	out  sender // the run goroutine's

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once

	wake    chan struct{}      // inotify events; never ready with WatchPoll
	notify  notifier           // nil with WatchPoll
	syncReq chan chan struct{} // tests: poll now and say when done
	polls   atomic.Int64       // tests: how many polls ran

	// Owned by the run goroutine.
	cur *openLog   // the file the path named at the last check
	old []*openLog // files rotated away, read until their deadline
	// The last error logged, per kind, so that an error repeated at each poll is logged once.
	pathErr, readErr, watchErr string

	counters
}

// counters is what a follower's run goroutine shares with Stats: the counts and the error
// bookkeeping, common to Follower and UtmpFollower.
type counters struct {
	log   *slog.Logger
	mu    sync.Mutex
	stats FollowStats
}

// notifier wakes the follower on file-system events. Only the run goroutine calls it.
type notifier interface {
	ensure() error // add the watch if it is missing (directory gone, moved, not created yet)
	close()        // stop and wait for its goroutine
}

// Follow starts following path and returns at once. An existing file is positioned
// (FromStart, end, BacklogBytes) before Follow returns, so every line written after it
// returns will be read. A missing file is waited for.
//
// Follow fails, without starting anything, when options are out of range, when the path
// names something other than a regular file, or when it cannot be stat'ed or opened for a
// reason other than not existing (permission denied, a path component that is not a
// directory). The same problems appearing later are counted in Stats, logged and retried.
func Follow(ctx context.Context, path string, o FollowOptions) (*Follower, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidOption)
	}
	f := &Follower{
		path:     path,
		o:        o,
		counters: counters{log: o.Logger.With("file", path)},
		out:      newSender(o.Batch),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		syncReq:  make(chan chan struct{}),
	}
	l, err := f.open()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.log.Debug("waiting for file")
	case err != nil:
		return nil, fmt.Errorf("follow: %w", err)
	default:
		if err := f.position(l); err != nil {
			l.close()
			return nil, fmt.Errorf("follow %s: %w", path, err)
		}
		f.cur = l
		f.stats.Exists = true
		f.stats.Offset = l.consumed()
	}
	if o.Watch == WatchInotify {
		n, err := newNotifier(path, f.wake)
		if err != nil {
			if f.cur != nil {
				f.cur.close()
			}
			return nil, fmt.Errorf("follow %s: %w", path, err)
		}
		f.notify = n
	}
	ctx, f.cancel = context.WithCancel(ctx)
	go f.run(ctx)
	return f, nil
}

func (o FollowOptions) withDefaults() (FollowOptions, error) {
	switch {
	case o.Watch != WatchPoll && o.Watch != WatchInotify:
		return o, fmt.Errorf("%w: Watch %v", ErrInvalidOption, o.Watch)
	case o.PollInterval < 0:
		return o, fmt.Errorf("%w: PollInterval %v is negative", ErrInvalidOption, o.PollInterval)
	case o.BacklogBytes < 0:
		return o, fmt.Errorf("%w: BacklogBytes %d is negative", ErrInvalidOption, o.BacklogBytes)
	case o.MaxLineSize < 0 || o.MaxLineSize > maxMaxLineSize:
		return o, fmt.Errorf("%w: MaxLineSize %d not in [1, %d]", ErrInvalidOption, o.MaxLineSize, maxMaxLineSize)
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.MaxLineSize == 0 {
		o.MaxLineSize = DefaultMaxLineSize
	}
	if o.RotateWait == 0 {
		o.RotateWait = DefaultRotateWait
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Lines returns the lines read. The Follower closes it when it stops; the caller never does.
// While nobody receives, the follower waits and nothing is lost: the data stays in the file.
func (f *Follower) Lines() <-chan Line { return f.out.lines }

// Batches returns the lines read, in slices, when FollowOptions.Batch is set (else nil). The
// Follower closes it when it stops.
func (f *Follower) Batches() <-chan Batch { return f.out.batches }

// Stop stops the follower and waits until its goroutines have ended and Lines is closed.
// It may be called more than once, and after the context is done.
func (f *Follower) Stop() {
	f.stopOnce.Do(f.cancel)
	<-f.done
}

// Stats returns a copy of the counters.
func (f *Follower) Stats() FollowStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// syncPoll runs one complete poll and returns when it is done, for tests that use a long
// PollInterval to control when the follower looks. It returns false if the follower stopped.
func (f *Follower) syncPoll() bool {
	reply := make(chan struct{})
	select {
	case f.syncReq <- reply:
	case <-f.done:
		return false
	}
	select {
	case <-reply:
		return true
	case <-f.done:
		return false
	}
}

func (f *Follower) run(ctx context.Context) {
	defer f.shutdown()
	timer := time.NewTimer(f.o.PollInterval)
	defer timer.Stop()
	var reply chan struct{}
	for {
		ok := f.pollAll(ctx)
		if reply != nil {
			close(reply)
			reply = nil
		}
		if !ok {
			return
		}
		if f.notify != nil {
			if err := f.notify.ensure(); err != nil {
				f.fail(err, nil, &f.watchErr)
			} else {
				f.watchErr = ""
			}
		}
		timer.Reset(f.o.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-f.wake:
		case reply = <-f.syncReq:
		}
	}
}

func (f *Follower) shutdown() {
	if f.notify != nil {
		f.notify.close()
	}
	if f.cur != nil {
		f.cur.close()
	}
	for _, l := range f.old {
		l.close()
	}
	f.out.close()
	close(f.done)
}

// pollAll polls until the files are read to EOF. It returns false when ctx is done.
func (f *Follower) pollAll(ctx context.Context) bool {
	for {
		more, ok := f.poll(ctx)
		if !ok || ctx.Err() != nil {
			return false
		}
		if !more {
			return true
		}
	}
}

// poll reads the rotated files, checks the path, and reads the current file. more reports
// that a file has more data than one poll reads; ok is false when ctx is done.
func (f *Follower) poll(ctx context.Context) (more, ok bool) {
	f.polls.Add(1)
	now := f.o.Now()

	// Files rotated away first: their lines are older than the new file's.
	keep := f.old[:0]
	for _, l := range f.old {
		m, ok := f.read(ctx, l, false)
		if !ok {
			return false, false
		}
		more = more || m
		if !m && !now.Before(l.until) {
			f.closeRotated(l)
			continue
		}
		keep = append(keep, l)
	}
	clear(f.old[len(keep):])
	f.old = keep

	fi, err := os.Stat(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.setExists(false)
		if f.cur != nil {
			f.log.Info("file gone from path")
			m, ok := f.retire(ctx, now)
			if !ok {
				return false, false
			}
			more = more || m
		}
		return more, true
	case err != nil:
		// EACCES, ENOTDIR, ELOOP, EIO...: keep reading what is open, look again next time.
		f.fail(err, &f.stats.ReopenErrors, &f.pathErr)
	case f.cur != nil && os.SameFile(fi, f.cur.id):
		f.setExists(true)
		f.pathErr = ""
		if fi.Size() < f.cur.off {
			f.truncated(f.cur, "size shrank")
		} else if len(f.cur.head) > 0 {
			// Truncated and rewritten to the old size or more: only the head tells. read
			// checks it again after each read; this check covers a poll with nothing new.
			same, err := f.cur.headSame()
			if err != nil {
				f.fail(err, &f.stats.ReadErrors, &f.readErr)
			} else if !same {
				f.truncated(f.cur, "head changed")
			}
		}
	default: // the path names another file, or something that is not a regular file
		if f.cur != nil {
			f.log.Info("file replaced at path")
			m, ok := f.retire(ctx, now)
			if !ok {
				return false, false
			}
			more = more || m
		}
		l, err := f.open()
		if err != nil {
			f.setExists(false)
			f.fail(err, &f.stats.ReopenErrors, &f.pathErr)
			return more, true
		}
		f.setExists(true)
		f.pathErr = ""
		if i := f.rotatedIndex(l.id); i >= 0 {
			// Renamed back: go on where we stopped, and keep the one descriptor.
			l.close()
			l = f.old[i]
			f.old = append(f.old[:i], f.old[i+1:]...)
			f.log.Info("rotated file back at path", "offset", l.off)
		} else {
			f.log.Info("opened", "size", l.id.Size())
		}
		f.cur = l
		f.setOffset(l.consumed())
	}
	if f.cur == nil {
		return more, true
	}
	m, ok := f.read(ctx, f.cur, true)
	return more || m, ok
}

// retire reads the current file to EOF and moves it to the rotated files.
func (f *Follower) retire(ctx context.Context, now time.Time) (more, ok bool) {
	l := f.cur
	f.cur = nil
	f.mu.Lock()
	f.stats.Rotations++
	f.mu.Unlock()
	more, ok = f.read(ctx, l, false)
	if !ok {
		l.close()
		return false, false
	}
	if f.o.RotateWait < 0 && !more {
		f.closeRotated(l)
		return more, true
	}
	l.until = now.Add(f.o.RotateWait)
	f.old = append(f.old, l)
	return more, true
}

func (f *Follower) rotatedIndex(id os.FileInfo) int {
	for i, l := range f.old {
		if os.SameFile(id, l.id) {
			return i
		}
	}
	return -1
}

func (f *Follower) closeRotated(l *openLog) {
	if l.pending() {
		f.mu.Lock()
		f.stats.DroppedPartial++
		f.mu.Unlock()
		f.log.Warn("incomplete last line of rotated file dropped", "offset", l.consumed())
	}
	l.close()
}

// truncated restarts l at offset 0.
func (f *Follower) truncated(l *openLog, why string) {
	f.log.Info("file truncated", "reason", why, "offset", l.off)
	f.mu.Lock()
	f.stats.Truncations++
	if l.pending() {
		f.stats.DroppedPartial++
	}
	f.mu.Unlock()
	l.restart()
	f.setOffset(0)
}

// read reads l to EOF, or maxPerPoll bytes, and sends its complete lines. verify checks
// the head after each read (for the current file only). more reports the limit was hit;
// ok is false when ctx is done.
func (f *Follower) read(ctx context.Context, l *openLog, verify bool) (more, ok bool) {
	total, restarts := 0, 0
	for total < maxPerPoll {
		at := l.off
		n, err := l.f.ReadAt(l.buf[l.n:], at)
		if n > 0 && verify && len(l.head) > 0 {
			// Data read past a truncation belongs to new content, whose head was written
			// before it: comparing the head after the read catches a truncation that
			// happened before the read.
			same, herr := l.headSame()
			if herr != nil {
				f.fail(herr, &f.stats.ReadErrors, &f.readErr)
				return false, true
			}
			if !same {
				f.truncated(l, "head changed")
				if restarts++; restarts > 2 {
					return false, true // rewritten again and again: wait for the next poll
				}
				continue
			}
		}
		if n > 0 {
			l.keepHead(l.buf[l.n:l.n+n], at)
			l.off += int64(n)
			l.n += n
			total += n
			if !f.scan(ctx, l) {
				return false, false
			}
		}
		switch {
		case err == io.EOF || (err == nil && n == 0):
			f.readErr = ""
			return false, true
		case err != nil:
			f.fail(err, &f.stats.ReadErrors, &f.readErr)
			return false, true
		}
	}
	return true, true
}

// scan sends the complete lines in l.buf[:l.n] and keeps the incomplete rest.
func (f *Follower) scan(ctx context.Context, l *openLog) bool {
	buf := l.buf[:l.n]
	base := l.off - int64(l.n) // file offset of buf[0]
	now := f.o.Now()
	maxLine := f.o.MaxLineSize
	var sent, cut int64
	p := 0
	if !f.out.from(ctx, l.fid, l.head, l == f.cur) {
		return false
	}
	// One string for all the whole lines of this read, and each line a piece of it: one
	// allocation per read instead of one per line. A receiver that keeps a line longer than
	// it takes to process copies it (see Line).
	var chunk string
	if last := bytes.LastIndexByte(buf, '\n'); last >= 0 {
		chunk = string(buf[:last+1])
	}
	for p < len(buf) {
		i := bytes.IndexByte(buf[p:], '\n')
		if l.skip != skipNone {
			if i < 0 {
				p = len(buf)
				break
			}
			p += i + 1
			if l.skip == skipCut {
				if !f.out.send(ctx, Line{Text: l.cut, File: f.path, Offset: l.cutOff, Read: now}, base+int64(p)) {
					return false
				}
				sent++
				cut++
			}
			l.skip, l.cut = skipNone, ""
			continue
		}
		if i < 0 {
			if len(buf)-p > maxLine {
				// Longer than any line we send: keep its cut start, skip to its newline.
				l.skip, l.cut, l.cutOff = skipCut, string(buf[p:p+maxLine]), base+int64(p)
				p = len(buf)
			}
			break
		}
		text := buf[p : p+i]
		if len(text) > maxLine {
			text = text[:maxLine]
			cut++
		} else if len(text) > 0 && text[len(text)-1] == '\r' {
			text = text[:len(text)-1]
		}
		if !f.out.send(ctx, Line{Text: chunk[p : p+len(text)], File: f.path, Offset: base + int64(p), Read: now}, base+int64(p+i+1)) {
			return false
		}
		sent++
		p += i + 1
	}
	if !f.out.flush(ctx) {
		return false
	}
	l.n = copy(l.buf, buf[p:])
	f.mu.Lock()
	f.stats.Lines += sent
	f.stats.CutLines += cut
	f.stats.Bytes += int64(p)
	if l == f.cur {
		f.stats.Offset = l.consumed()
	}
	f.mu.Unlock()
	return true
}

// sendOn sends v on ch, waiting for room unless ctx is done; it reports whether v was sent.
// A send that can go at once does, even when ctx is done.
func sendOn[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	default:
	}
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// fail records err, counting it in counter if not nil. It logs err unless *last, the last
// error of its kind logged, has the same text.
func (f *counters) fail(err error, counter *int64, last *string) {
	msg := err.Error()
	f.mu.Lock()
	if counter != nil {
		*counter++
	}
	f.stats.LastError = msg
	f.mu.Unlock()
	if msg != *last {
		*last = msg
		f.log.Warn("follow error", "err", err)
	}
}

func (f *counters) setExists(b bool) {
	f.mu.Lock()
	f.stats.Exists = b
	f.mu.Unlock()
}

func (f *counters) setOffset(off int64) {
	f.mu.Lock()
	f.stats.Offset = off
	f.mu.Unlock()
}

// open opens the path without blocking (a named pipe would block an open for reading) and
// checks what it opened, not what a stat saw before.
func (f *Follower) open() (*openLog, error) {
	file, fi, err := openRegular(f.path)
	if err != nil {
		return nil, err
	}
	return &openLog{f: file, id: fi, fid: fileKey(fi), buf: make([]byte, f.o.MaxLineSize+readSize)}, nil
}

// openRegular opens path for reading without blocking (a named pipe would block an open for
// reading) and checks what it opened, not what a stat saw before: a regular file.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	file, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		file.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: %s", ErrNotRegular, fileType(fi.Mode()))}
	}
	return file, fi, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return m.Type().String()
}

type skipMode uint8

const (
	skipNone  skipMode = iota
	skipAlign          // skip the rest of a line we started inside (start at end, backlog)
	skipCut            // skip the rest of a long line, then send cut
)

// openLog is one open file and the state of reading it.
type openLog struct {
	f    *os.File
	id   os.FileInfo // identity, for os.SameFile
	fid  fileID      // identity, for Marks
	off  int64       // file offset of the next read
	buf  []byte      // len MaxLineSize+readSize
	n    int         // buf[:n] is read but not consumed: an incomplete line, at off-n
	skip skipMode
	cut  string // skipCut: the line's first MaxLineSize bytes
	// cutOff is the file offset of the cut line.
	cutOff int64
	// head is the file's first bytes as read, up to headSize. It is shared with the Marks of
	// the batches sent, so it is only ever appended to, never written over: restart drops it.
	head  []byte
	check [headSize]byte // scratch for headSame
	until time.Time      // rotated files: read until then
}

// position sets where reading starts in the file that existed when Follow was called: after the
// saved position, or as the options say.
func (f *Follower) position(l *openLog) error {
	if f.o.Resume == nil {
		return l.position(f.o)
	}
	off, why, err := resumeAt(f.o.Resume, l.f, l.id)
	if err != nil {
		return err
	}
	f.logResume(off, why)
	return l.seek(off)
}

// seek starts reading at off, the end of a line sent by an earlier follower. If the byte before
// off is not a newline (a position that was not saved at a line end), reading starts at the
// next line instead, so that no torn line is sent.
func (l *openLog) seek(off int64) error {
	if off > 0 {
		var b [1]byte
		_, err := l.f.ReadAt(b[:], off-1)
		switch {
		case err == io.EOF: // truncated since it was stat'ed: all of it is new
			off = 0
		case err != nil:
			return err
		case b[0] != '\n':
			l.skip = skipAlign
		}
	}
	l.off = off
	return l.readHead()
}

// position sets where reading starts in a file that existed when Follow was called.
func (l *openLog) position(o FollowOptions) error {
	size := l.id.Size()
	switch {
	case o.FromStart || size == 0:
		return nil
	case o.BacklogBytes > 0:
		if o.BacklogBytes >= size {
			return nil
		}
		// Read from the byte before the first one wanted, and skip through the first
		// newline: that starts at the first line beginning at or after size-BacklogBytes.
		l.off, l.skip = size-o.BacklogBytes-1, skipAlign
	default:
		// At the end, but at the start of an incomplete last line: it is still being
		// written and will be sent when done.
		w := min(size, int64(o.MaxLineSize))
		tail := make([]byte, w)
		if _, err := l.f.ReadAt(tail, size-w); err != nil && err != io.EOF {
			return err
		}
		switch i := bytes.LastIndexByte(tail, '\n'); {
		case i >= 0:
			l.off = size - w + int64(i) + 1
		case w == size:
			l.off = 0 // one incomplete line
		default:
			l.off, l.skip = size, skipAlign // inside a line longer than MaxLineSize
		}
	}
	return l.readHead()
}

// readHead reads the head of a file whose reading starts at l.off > 0: the bytes before it are
// not read, but a truncation must be found all the same.
func (l *openLog) readHead() error {
	h := make([]byte, min(l.off, headSize))
	n, err := l.f.ReadAt(h, 0)
	if err != nil && err != io.EOF {
		return err
	}
	l.head = h[:n]
	return nil
}

// keepHead extends head with data read at offset at.
func (l *openLog) keepHead(data []byte, at int64) {
	have := int64(len(l.head))
	if have >= headSize || at > have || at+int64(len(data)) <= have {
		return
	}
	end := min(int64(len(data)), headSize-at)
	l.head = append(l.head, data[have-at:end]...)
}

// headSame reports whether the file still starts with the bytes read there.
func (l *openLog) headSame() (bool, error) {
	b := l.check[:len(l.head)]
	n, err := l.f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return false, err
	}
	return n == len(b) && bytes.Equal(b, l.head), nil
}

// restart reads the file again from offset 0 (after a truncation).
func (l *openLog) restart() {
	l.off, l.n, l.skip, l.cut, l.head = 0, 0, skipNone, "", nil
}

// pending reports an incomplete line: read, but its newline not yet.
func (l *openLog) pending() bool { return l.n > 0 || l.skip == skipCut }

// consumed is the offset up to which input was consumed: where an incomplete line starts.
func (l *openLog) consumed() int64 {
	if l.skip == skipCut {
		return l.cutOff
	}
	return l.off - int64(l.n)
}

func (l *openLog) close() { l.f.Close() }
