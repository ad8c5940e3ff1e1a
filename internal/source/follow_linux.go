//go:build linux

package source

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
)

// openFlags: O_NONBLOCK so that opening a named pipe put at the path does not block the
// follower (a pipe is then rejected as not regular). It changes nothing for regular files.
const openFlags = syscall.O_NONBLOCK

// inotifyMask: the events on the directory's entries that can mean new data, a rotation or
// a truncation of the followed file, and those that mean the watch itself is gone.
const inotifyMask = syscall.IN_MODIFY | syscall.IN_ATTRIB | syscall.IN_CLOSE_WRITE |
	syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO |
	syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF

// inotifyWatch watches the directory of the followed path, not the file: a watch on the
// file would follow its inode through a rename, and there would be nothing to watch while
// the file does not exist. Events for other names in the directory are ignored, so a busy
// /var/log does not wake every follower. Lines appended to a rotated file (now under
// another name) are picked up by the poll.
//
// This is our own use of the inotify system calls, not nxadm/tail's process-wide shared
// fsnotify watcher (whose failure to start calls os.Exit, and which notifies only one of
// two tails of the same file). Each Follower has its own inotify descriptor, so one
// instance per followed file counts against fs.inotify.max_user_instances (128 by default).
// When the limit is reached Follow returns the error; the caller can fall back to polling.
type inotifyWatch struct {
	file      *os.File // the inotify descriptor, non-blocking, in the runtime poller
	fd        int
	dir, base string
	wake      chan<- struct{}
	wd        atomic.Int32 // current watch descriptor, -1 if none
	lost      atomic.Bool  // the watch is gone or points elsewhere: ensure adds it again
	dirID     os.FileInfo  // the directory watched; owned by the run goroutine
	done      chan struct{}
}

func newNotifier(path string, wake chan<- struct{}) (notifier, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	w := &inotifyWatch{
		file: os.NewFile(uintptr(fd), "inotify"),
		fd:   fd,
		dir:  filepath.Dir(path),
		base: filepath.Base(path),
		wake: wake,
		done: make(chan struct{}),
	}
	w.wd.Store(-1)
	w.lost.Store(true)
	go w.read()
	return w, nil
}

func (w *inotifyWatch) ensure() error {
	if !w.lost.Load() {
		// A removed directory sends IN_DELETE_SELF only when its last user is gone, and the
		// followed file, deleted with it, is still open: compare it with the path's.
		if fi, err := os.Stat(w.dir); err == nil && os.SameFile(fi, w.dirID) {
			return nil
		}
	}
	if old := w.wd.Load(); old >= 0 {
		// The directory moved with its watch, or is gone: drop the watch (an error means it
		// is already gone). Its IN_IGNORED event carries the old descriptor and is ignored.
		syscall.InotifyRmWatch(w.fd, uint32(old))
		w.wd.Store(-1)
	}
	before, err := os.Stat(w.dir)
	if err != nil {
		return &fs.PathError{Op: "inotify_add_watch", Path: w.dir, Err: err}
	}
	wd, err := syscall.InotifyAddWatch(w.fd, w.dir, inotifyMask)
	if err != nil {
		return &fs.PathError{Op: "inotify_add_watch", Path: w.dir, Err: err}
	}
	w.wd.Store(int32(wd))
	if after, err := os.Stat(w.dir); err != nil || !os.SameFile(before, after) {
		w.lost.Store(true) // replaced while we added the watch: again next time
		return nil
	}
	w.dirID = before
	w.lost.Store(false)
	// Changes between the loss of the old watch and now produced no event: look once.
	w.signal()
	return nil
}

func (w *inotifyWatch) close() {
	w.file.Close() // wakes the Read below with os.ErrClosed
	<-w.done
}

func (w *inotifyWatch) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (w *inotifyWatch) read() {
	defer close(w.done)
	buf := make([]byte, 16<<10)
	for {
		n, err := w.file.Read(buf)
		if err != nil || n == 0 {
			return
		}
		wake := false
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			start := off + syscall.SizeofInotifyEvent
			off = start + nameLen
			if off > n {
				break
			}
			name := bytes.TrimRight(buf[start:off], "\x00")
			switch {
			case mask&syscall.IN_Q_OVERFLOW != 0:
				wake = true // events were lost: look
			case wd != w.wd.Load():
				// an event of a watch already replaced
			case mask&(syscall.IN_IGNORED|syscall.IN_MOVE_SELF|syscall.IN_DELETE_SELF) != 0:
				w.lost.Store(true)
				wake = true
			case string(name) == w.base:
				wake = true
			}
		}
		if wake {
			w.signal()
		}
	}
}
