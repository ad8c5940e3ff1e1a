package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// utmpReadRecords is how many records one read asks for: 64 KiB rounded down to whole records.
const utmpReadRecords = readSize / UtmpRecordSize

// UtmpFollower follows a file of utmp records (btmp, where login programs record failed logins)
// as Follower follows a text log: it starts at the end (optionally with a backlog), reads each
// record once it is whole, and survives rotation by rename and create, deletion and
// re-creation, and truncation. Each well-formed record is sent on Lines as a Line whose Text is
// UtmpRecord.Text (the `lastb --time-format iso` rendering that filter.d/btmp.conf reads) and
// whose Offset is the record's offset in its file. Garbage records are counted (UtmpStats) and
// skipped, never sent.
//
// It owns one goroutine (two with WatchInotify); both end when the context given to
// FollowUtmp is done or Stop is called, and then Lines is closed.
//
// How it differs from Follower, because records are not lines:
//
//   - Reading positions are multiples of UtmpRecordSize: the start at the end is the end of the
//     last whole record, a backlog starts at the first record boundary inside it, and a record
//     still being written (a torn record at EOF) is read when it is whole.
//   - MaxLineSize is not used: a record is 384 bytes.
//   - A copytruncate is found as Follower finds it: the size fell below the read offset, or the
//     first record changed.
//
// What it cannot do: realign. A file that holds a torn record in its middle (a crash or a full
// disk while a record was written) has every later record misaligned; they are garbage to the
// reader (counted under UtmpStats, see UtmpReader) until the file is rotated. Lines of a rotated
// file read during RotateWait can come after lines of the new file, as with Follower.
type UtmpFollower struct {
	path string
	o    FollowOptions
	out  sender // the run goroutine's

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once

	wake    chan struct{}
	notify  notifier
	syncReq chan chan struct{} // tests: poll now and say when done

	// Owned by the run goroutine.
	cur              *utmpFile
	old              []*utmpFile
	buf              []byte       // utmpReadRecords whole records
	src              bytes.Reader // the whole records of buf being decoded
	ur               *UtmpReader  // one reader for the follower's life: its counts are totals
	pathErr, readErr string

	counters
	ustats UtmpStats // under counters.mu
}

// utmpFile is one open utmp file and the state of reading it.
type utmpFile struct {
	f   *os.File
	id  os.FileInfo
	fid fileID
	off int64 // file offset of the next record to read; a multiple of UtmpRecordSize
	// head is the first record as read, nil until there is one. Marks share it, so it is
	// replaced, never written over.
	head  []byte
	check [UtmpRecordSize]byte // scratch for headSame
	torn  bool                 // the last read ended in an incomplete record
	until time.Time            // rotated files: read until then
}

// FollowUtmp starts following the utmp file at path and returns at once. The options are those
// of Follow: Watch, PollInterval, FromStart, BacklogBytes (rounded to whole records), RotateWait,
// Logger, Batch, Resume and Now; MaxLineSize is checked but unused. An existing file is
// positioned before FollowUtmp returns; a missing one is waited for and read from its start when
// it appears.
//
// FollowUtmp fails, without starting anything, on options out of range and when the path names
// something other than a regular file or cannot be opened for a reason other than not existing.
// The same problems appearing later are counted in Stats, logged and retried.
func FollowUtmp(ctx context.Context, path string, o FollowOptions) (*UtmpFollower, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidOption)
	}
	f := &UtmpFollower{
		path:     path,
		o:        o,
		counters: counters{log: o.Logger.With("file", path)},
		out:      newSender(o.Batch),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		syncReq:  make(chan chan struct{}),
		buf:      make([]byte, utmpReadRecords*UtmpRecordSize),
	}
	f.ur = NewUtmpReader(&f.src)
	l, err := f.open()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.log.Debug("waiting for file")
	case err != nil:
		return nil, fmt.Errorf("follow utmp: %w", err)
	default:
		if err := f.position(l); err != nil {
			l.f.Close()
			return nil, fmt.Errorf("follow utmp %s: %w", path, err)
		}
		f.cur = l
		f.stats.Exists = true
		f.stats.Offset = l.off
	}
	if o.Watch == WatchInotify {
		n, err := newNotifier(path, f.wake)
		if err != nil {
			if f.cur != nil {
				f.cur.f.Close()
			}
			return nil, fmt.Errorf("follow utmp %s: %w", path, err)
		}
		f.notify = n
	}
	ctx, f.cancel = context.WithCancel(ctx)
	go f.run(ctx)
	return f, nil
}

// Lines returns the records read, rendered as text. The UtmpFollower closes it when it stops.
func (f *UtmpFollower) Lines() <-chan Line { return f.out.lines }

// Batches returns the records read, rendered as text, in slices, when FollowOptions.Batch is set
// (else nil). The UtmpFollower closes it when it stops.
func (f *UtmpFollower) Batches() <-chan Batch { return f.out.batches }

// Stop stops the follower and waits until its goroutines have ended and Lines is closed. It may
// be called more than once, and after the context is done.
func (f *UtmpFollower) Stop() {
	f.stopOnce.Do(f.cancel)
	<-f.done
}

// Stats returns a copy of the counters. Lines counts the records sent, Bytes the bytes of whole
// records consumed (garbage included), DroppedPartial the torn records given up at a rotation or
// truncation; CutLines is always 0.
func (f *UtmpFollower) Stats() FollowStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// UtmpStats returns the reader's counts over the follower's life: records sent and garbage
// skipped, by reason. Its Offset is the total of whole records consumed, over every file.
func (f *UtmpFollower) UtmpStats() UtmpStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ustats
}

// syncPoll runs one complete poll and returns when it is done (tests). It returns false if the
// follower stopped.
func (f *UtmpFollower) syncPoll() bool {
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

func (f *UtmpFollower) run(ctx context.Context) {
	defer f.shutdown()
	timer := time.NewTimer(f.o.PollInterval)
	defer timer.Stop()
	var reply chan struct{}
	var watchErr string
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
				f.fail(err, nil, &watchErr)
			} else {
				watchErr = ""
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

func (f *UtmpFollower) shutdown() {
	if f.notify != nil {
		f.notify.close()
	}
	if f.cur != nil {
		f.cur.f.Close()
	}
	for _, l := range f.old {
		l.f.Close()
	}
	f.out.close()
	close(f.done)
}

func (f *UtmpFollower) pollAll(ctx context.Context) bool {
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

// poll reads the rotated files, checks the path and reads the current file, as Follower.poll.
func (f *UtmpFollower) poll(ctx context.Context) (more, ok bool) {
	now := f.o.Now()
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
		f.fail(err, &f.stats.ReopenErrors, &f.pathErr)
	case f.cur != nil && os.SameFile(fi, f.cur.id):
		f.setExists(true)
		f.pathErr = ""
		if fi.Size() < f.cur.off {
			f.truncated(f.cur, "size shrank")
		} else if f.cur.head != nil {
			same, err := f.cur.headSame()
			if err != nil {
				f.fail(err, &f.stats.ReadErrors, &f.readErr)
			} else if !same {
				f.truncated(f.cur, "first record changed")
			}
		}
	default:
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
			l.f.Close()
			l = f.old[i]
			f.old = append(f.old[:i], f.old[i+1:]...)
			f.log.Info("rotated file back at path", "offset", l.off)
		} else {
			f.log.Info("opened", "size", l.id.Size())
		}
		f.cur = l
		f.setOffset(l.off)
	}
	if f.cur == nil {
		return more, true
	}
	m, ok := f.read(ctx, f.cur, true)
	return more || m, ok
}

func (f *UtmpFollower) retire(ctx context.Context, now time.Time) (more, ok bool) {
	l := f.cur
	f.cur = nil
	f.mu.Lock()
	f.stats.Rotations++
	f.mu.Unlock()
	more, ok = f.read(ctx, l, false)
	if !ok {
		l.f.Close()
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

func (f *UtmpFollower) rotatedIndex(id os.FileInfo) int {
	for i, l := range f.old {
		if os.SameFile(id, l.id) {
			return i
		}
	}
	return -1
}

func (f *UtmpFollower) closeRotated(l *utmpFile) {
	if l.torn {
		f.mu.Lock()
		f.stats.DroppedPartial++
		f.mu.Unlock()
		f.log.Warn("incomplete last record of rotated file dropped", "offset", l.off)
	}
	l.f.Close()
}

func (f *UtmpFollower) truncated(l *utmpFile, why string) {
	f.log.Info("file truncated", "reason", why, "offset", l.off)
	f.mu.Lock()
	f.stats.Truncations++
	if l.torn {
		f.stats.DroppedPartial++
	}
	f.stats.Offset = 0
	f.mu.Unlock()
	l.off, l.torn, l.head = 0, false, nil
}

// read reads the whole records of l from its offset to EOF, or maxPerPoll bytes, and sends
// the well-formed ones. A torn record at EOF stays unread until it is whole. verify checks the
// first record after each read (current file only). more reports the limit was hit; ok is
// false when ctx is done.
func (f *UtmpFollower) read(ctx context.Context, l *utmpFile, verify bool) (more, ok bool) {
	total, restarts := 0, 0
	for total < maxPerPoll {
		at := l.off
		n, err := l.f.ReadAt(f.buf, at)
		whole := n - n%UtmpRecordSize
		if whole > 0 && verify && l.head != nil {
			same, herr := l.headSame()
			if herr != nil {
				f.fail(herr, &f.stats.ReadErrors, &f.readErr)
				return false, true
			}
			if !same {
				f.truncated(l, "first record changed")
				if restarts++; restarts > 2 {
					return false, true
				}
				continue
			}
		}
		if whole > 0 {
			if at == 0 {
				l.head = bytes.Clone(f.buf[:UtmpRecordSize])
			}
			if !f.decode(ctx, l, f.buf[:whole], at) {
				return false, false
			}
			total += whole
		}
		switch {
		case err == io.EOF || (err == nil && n < len(f.buf)):
			l.torn = n > whole
			f.readErr = ""
			return false, true
		case err != nil:
			f.fail(err, &f.stats.ReadErrors, &f.readErr)
			return false, true
		}
	}
	return true, true
}

// decode sends the well-formed records of data, whole records read at file offset base.
func (f *UtmpFollower) decode(ctx context.Context, l *utmpFile, data []byte, base int64) bool {
	f.src.Reset(data)
	start := f.ur.Stats().Offset
	now := f.o.Now()
	var sent int64
	if !f.out.from(ctx, l.fid, l.head, l == f.cur) {
		return false
	}
	for {
		rec, err := f.ur.Next()
		if err != nil {
			break // io.EOF at the end of data: a record boundary, so not sticky
		}
		end := base + f.ur.Stats().Offset - start
		if !f.out.send(ctx, Line{Text: rec.Text(), File: f.path, Offset: end - UtmpRecordSize, Read: now}, end) {
			return false
		}
		sent++
	}
	if !f.out.flush(ctx) {
		return false
	}
	l.off = base + int64(len(data))
	f.mu.Lock()
	f.stats.Lines += sent
	f.stats.Bytes += int64(len(data))
	if l == f.cur {
		f.stats.Offset = l.off
	}
	f.ustats = f.ur.Stats()
	f.mu.Unlock()
	return true
}

// open opens the path without blocking and checks that it opened a regular file.
func (f *UtmpFollower) open() (*utmpFile, error) {
	file, fi, err := openRegular(f.path)
	if err != nil {
		return nil, err
	}
	return &utmpFile{f: file, id: fi, fid: fileKey(fi)}, nil
}

// position sets where reading starts in the file that existed when FollowUtmp was called: after
// the saved position, or as the options say.
func (f *UtmpFollower) position(l *utmpFile) error {
	if f.o.Resume == nil {
		return l.position(f.o)
	}
	off, why, err := resumeAt(f.o.Resume, l.f, l.id)
	if err != nil {
		return err
	}
	f.logResume(off, why)
	// Saved offsets are record boundaries. One that is not (it was not saved by a follower) is
	// rounded to the next boundary, as a backlog is, unless that is past the last whole record.
	const rs = UtmpRecordSize
	l.off = min((off+rs-1)/rs*rs, l.id.Size()/rs*rs)
	return l.readHead()
}

// position sets where reading starts in a file that existed when FollowUtmp was called: on a
// record boundary, at the end of the last whole record, or at the first boundary inside the
// backlog.
func (l *utmpFile) position(o FollowOptions) error {
	size := l.id.Size()
	const rs = UtmpRecordSize
	switch {
	case o.FromStart || size == 0:
		l.off = 0
	case o.BacklogBytes > 0 && o.BacklogBytes >= size:
		l.off = 0
	case o.BacklogBytes > 0:
		start := size - o.BacklogBytes
		l.off = (start + rs - 1) / rs * rs
	default:
		l.off = size / rs * rs
	}
	return l.readHead()
}

// readHead reads the first record of a file whose reading starts at l.off > 0: it is not read
// otherwise, but a truncation must be found all the same.
func (l *utmpFile) readHead() error {
	if l.off == 0 {
		return nil // the head is taken at the first read
	}
	h := make([]byte, UtmpRecordSize)
	n, err := l.f.ReadAt(h, 0)
	if err != nil && err != io.EOF {
		return err
	}
	if n == len(h) {
		l.head = h
	}
	return nil
}

// headSame reports whether the file still starts with the record read there.
func (l *utmpFile) headSame() (bool, error) {
	n, err := l.f.ReadAt(l.check[:], 0)
	if err != nil && err != io.EOF {
		return false, err
	}
	return n == len(l.check) && bytes.Equal(l.check[:], l.head), nil
}
