package source

import (
	"bytes"
	"context"
	"os"
	"syscall"

	"github.com/logjail/logjail/internal/store"
)

// Batch is what Batches sends: lines read together from one file, and where reading of that
// file stands after them.
type Batch struct {
	Lines []Line
	// Mark is the position after the last of Lines, for a consumer that saves how far it has
	// processed the file (FollowOptions.Resume). It is the zero Mark when the lines come from a
	// file rotated away from the path (see Mark.Position).
	Mark Mark
}

// Mark is how far a follower had read the file at its path when it sent a Batch: the end of the
// batch's last line (its newline included; for btmp, the end of its last record) and what the
// file was: device, inode and first bytes. A consumer keeps the Mark of the last batch it has
// processed and makes a store.Position of it when it saves, so that the follower's reading
// ahead never counts: a resumed follower starts after the last line processed, not after the
// last line read.
//
// Making a Mark costs nothing per line: the end is an offset the follower has anyway, and the
// head is a slice of the bytes it keeps to detect truncation, never written once shared.
type Mark struct {
	dev, ino uint64
	end      int64
	head     []byte // the file's first bytes as read, up to store.MaxHead; read-only
	ok       bool
}

// IsZero reports whether m has no position: the zero Mark.
func (m Mark) IsZero() bool { return !m.ok }

// Position returns the position to save for the path so that a follower resumed from it reads
// the lines after m's batch, and whether there is one. There is none for the zero Mark, which
// the batches of a file already rotated away from the path carry: the path names another file
// then, and a position of the old file, saved after that of the new one, would make a resumed
// follower read the new file from its start again. The hash of the head is taken here, when
// the caller saves, not for every batch.
func (m Mark) Position() (store.Position, bool) {
	if !m.ok {
		return store.Position{}, false
	}
	n, sum, _ := store.Head(bytes.NewReader(m.head), len(m.head)) // a bytes.Reader does not fail
	return store.Position{Dev: m.dev, Inode: m.ino, Offset: m.end, HeadLen: n, HeadHash: sum}, true
}

// fileID is the identity of an open file that a Mark carries.
type fileID struct {
	dev, ino uint64
	known    bool // the platform gave a device and inode: else no Mark, and no resume
}

func fileKey(fi os.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	// The types of Dev and Ino vary by platform (int32 Dev on the BSDs).
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino), known: true}
}

// resumeAt says where to start reading file f (fi its stat) when p was saved for its path: at
// p.Offset if it is the same file, with the same head, and not shorter than p.Offset; at 0
// otherwise, with why saying so. Another inode, or another head on the same inode (a file
// rewritten in place, or an inode number reused), is a file rotated or replaced while nobody
// followed it: all of it is new. A shorter file was truncated: what it holds now was written
// after the truncation.
//
// What it cannot tell: a file truncated and written again, past p.Offset, with the same first
// bytes as before (up to p.HeadLen). The lines before p.Offset are then skipped, as a
// copytruncate with the same head is missed while following (see Follower).
func resumeAt(p *store.Position, f *os.File, fi os.FileInfo) (off int64, why string, err error) {
	id := fileKey(fi)
	switch {
	case !id.known:
		return 0, "file identity unknown", nil
	case id.dev != p.Dev || id.ino != p.Inode:
		return 0, "another file at the path", nil
	}
	same, err := p.SameHead(f)
	switch {
	case err != nil:
		return 0, "", err
	case !same:
		return 0, "first bytes changed", nil
	case fi.Size() < p.Offset:
		return 0, "file shorter than the saved position", nil
	}
	return max(p.Offset, 0), "", nil
}

// logResume logs where a follower given a Resume starts.
func (c *counters) logResume(off int64, why string) {
	if why == "" {
		c.log.Info("resuming at saved position", "offset", off)
		return
	}
	c.log.Info("file changed while stopped, reading from its start", "reason", why)
}

// sender hands a follower's lines on: one by one on lines, or in Batches (FollowOptions.Batch).
// Only the run goroutine uses it; the receivers have only the channels.
type sender struct {
	lines   chan Line
	batches chan Batch
	pending []Line
	mark    Mark // for pending: the file they come from, and the end of the last one
}

func newSender(batch bool) sender {
	if batch {
		return sender{batches: make(chan Batch, batchesCap)}
	}
	return sender{lines: make(chan Line, linesCap)}
}

// from says which file the lines sent next come from, and whether it is at the path (atPath:
// its batches carry a position). Lines of another file are flushed first.
func (s *sender) from(ctx context.Context, id fileID, head []byte, atPath bool) bool {
	if !s.flush(ctx) {
		return false
	}
	s.mark = Mark{dev: id.dev, ino: id.ino, head: head, ok: atPath && id.known}
	return true
}

// send sends line, whose end (the offset after its newline) is end. A Batch goes when it is
// full; flush sends the rest.
func (s *sender) send(ctx context.Context, line Line, end int64) bool {
	if s.batches == nil {
		return sendOn(ctx, s.lines, line)
	}
	if s.pending == nil {
		s.pending = make([]Line, 0, BatchLines)
	}
	s.pending = append(s.pending, line)
	s.mark.end = end
	if len(s.pending) < BatchLines {
		return true
	}
	return s.flush(ctx)
}

// flush sends the lines collected for Batches, if any.
func (s *sender) flush(ctx context.Context) bool {
	if len(s.pending) == 0 {
		return true
	}
	b := Batch{Lines: s.pending, Mark: s.mark}
	if !b.Mark.ok {
		b.Mark = Mark{}
	}
	s.pending = nil
	return sendOn(ctx, s.batches, b)
}

// close closes the channel in use.
func (s *sender) close() {
	if s.batches != nil {
		close(s.batches)
	} else {
		close(s.lines)
	}
}
