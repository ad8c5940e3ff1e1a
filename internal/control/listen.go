package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a unix socket can be bound to on Linux (sun_path is 108
// bytes with its terminating NUL).
const maxSocketPath = 107

// Listen makes the daemon's control socket at path and listens on it.
//
// The socket's directory is created (0755) when missing. When a socket file is already there
// and something answers on it, Listen refuses ("another logjail is running on PATH"); a stale
// one (nobody listening) is replaced; anything else at path that is not a socket is left alone
// and refused. The socket gets mode 0600, or 0660 and the named group when group is not ""
// (a group name, or a numeric gid): the socket's mode is the access control.
//
// The socket is bound in a private (0700) temporary directory beside path, given its mode and
// group there, and then renamed into place, so that it never exists at a reachable name with a
// wider mode: a connection made in that window would keep working after a chmod. (When the
// temporary name would be too long for a socket address, Listen binds at path directly and
// chmods at once.) Closing the listener removes the socket file, unless another process has
// put its own there since.
func Listen(path string, group string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("listen: no socket path")
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("socket path %s is too long for a unix socket (%d bytes, at most %d)", path, len(path), maxSocketPath)
	}
	mode, gid := os.FileMode(0o600), -1
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, err
		}
		mode, gid = 0o660, g
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}

	ul, err := bindPrivate(dir, path, mode, gid)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ul.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return &socketListener{UnixListener: ul, path: path, file: fi}, nil
}

// bindPrivate binds the socket in a 0700 directory beside path, sets its mode and group and
// renames it to path.
func bindPrivate(dir, path string, mode os.FileMode, gid int) (*net.UnixListener, error) {
	tmpDir, err := os.MkdirTemp(dir, ".lj")
	if err != nil {
		return nil, fmt.Errorf("create socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	if len(tmp) > maxSocketPath {
		return bindAt(path, mode, gid)
	}
	ul, err := bindAt(tmp, mode, gid)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ul.Close()
		return nil, fmt.Errorf("create socket %s: %w", path, err)
	}
	return ul, nil
}

func bindAt(name string, mode os.FileMode, gid int) (*net.UnixListener, error) {
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// The file is removed by socketListener.Close under its final name, not by the runtime.
	ul.SetUnlinkOnClose(false)
	fail := func(what string, err error) (*net.UnixListener, error) {
		ul.Close()
		os.Remove(name) // bound by us just now
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := os.Chmod(name, mode); err != nil {
		return fail("socket mode", err)
	}
	if gid >= 0 {
		if err := os.Chown(name, -1, gid); err != nil {
			return fail("socket group", err)
		}
	}
	return ul, nil
}

// clearStale removes a socket at path that nobody listens on, and refuses one that answers.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another logjail is running on %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("check the existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

func lookupGroup(group string) (int, error) {
	g, err := user.LookupGroup(group)
	if err == nil {
		gid, err := strconv.Atoi(g.Gid)
		if err != nil {
			return 0, fmt.Errorf("socket group %q: gid %q: %w", group, g.Gid, err)
		}
		return gid, nil
	}
	if gid, aerr := strconv.Atoi(group); aerr == nil && gid >= 0 {
		return gid, nil
	}
	return 0, fmt.Errorf("socket group %q: %w", group, err)
}

// socketListener removes its socket file on Close, when the file is still its own.
type socketListener struct {
	*net.UnixListener
	path string
	file os.FileInfo
	once sync.Once
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.file) {
			os.Remove(l.path)
		}
	})
	return err
}
