package control

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// dialable tells whether something accepts connections on path.
func dialable(path string) bool {
	c, err := net.Dial("unix", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func statSocket(t *testing.T, path string) (fs.FileMode, int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("%s is %v, not a socket", path, fi.Mode())
	}
	return fi.Mode().Perm(), int(fi.Sys().(*syscall.Stat_t).Gid)
}

func TestListenMode(t *testing.T) {
	sock := filepath.Join(shortDir(t), "run", "logjail", "lj.sock")
	ln, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if perm, _ := statSocket(t, sock); perm != 0o600 {
		t.Errorf("socket mode %v, want 0600", perm)
	}
	fi, err := os.Stat(filepath.Dir(sock))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("socket directory: %v, %v; want mode 0755", fi.Mode(), err)
	}
	if !dialable(sock) {
		t.Error("nothing answers on the socket")
	}
	// No temporary directory is left beside the socket.
	entries, _ := os.ReadDir(filepath.Dir(sock))
	if len(entries) != 1 {
		t.Errorf("socket directory holds %v, want only the socket", entries)
	}
}

func TestListenGroup(t *testing.T) {
	gid := os.Getgid()
	groups := []string{strconv.Itoa(gid)}
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		groups = append(groups, g.Name)
	}
	for _, group := range groups {
		t.Run(group, func(t *testing.T) {
			sock := filepath.Join(shortDir(t), "lj.sock")
			ln, err := Listen(sock, group)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			perm, g := statSocket(t, sock)
			if perm != 0o660 || g != gid {
				t.Errorf("socket mode %v group %d, want 0660 and group %d", perm, g, gid)
			}
		})
	}
	_, err := Listen(filepath.Join(shortDir(t), "lj.sock"), "no-such-group-logjail")
	if err == nil || !strings.Contains(err.Error(), "no-such-group-logjail") {
		t.Errorf("unknown group: %v", err)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	sock := filepath.Join(shortDir(t), "lj.sock")
	ln, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln2, err := Listen(sock, "")
	if err == nil {
		ln2.Close()
		t.Fatal("a second Listen on a live socket succeeded")
	}
	if want := "another logjail is running on " + sock; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !dialable(sock) {
		t.Error("the refused Listen broke the live socket")
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(shortDir(t), "lj.sock")
	// A crashed daemon leaves its socket file behind.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket not there: %v", err)
	}
	if dialable(sock) {
		t.Fatal("the stale socket answers")
	}
	ln, err := Listen(sock, "")
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	if !dialable(sock) {
		t.Error("the new socket does not answer")
	}
	if perm, _ := statSocket(t, sock); perm != 0o600 {
		t.Errorf("mode %v", perm)
	}
}

func TestListenLeavesOtherFiles(t *testing.T) {
	sock := filepath.Join(shortDir(t), "lj.sock")
	if err := os.WriteFile(sock, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(sock, "")
	if err == nil {
		ln.Close()
		t.Fatal("Listen replaced a regular file")
	}
	if !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("error %q", err)
	}
	if b, _ := os.ReadFile(sock); string(b) != "precious" {
		t.Errorf("the file was touched: %q", b)
	}
}

func TestListenCloseRemovesOwnSocketOnly(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "lj.sock")
	ln, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after Close: %v", err)
	}

	// A second daemon took the path over (the first one's file was removed by hand): the first
	// one's Close must not remove the second one's socket.
	ln1, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(sock)
	ln2, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	ln1.Close()
	if !dialable(sock) {
		t.Error("closing the first listener removed the second one's socket")
	}
}

func TestListenPathLength(t *testing.T) {
	dir := shortDir(t)
	long := filepath.Join(dir, strings.Repeat("d", 120), "lj.sock")
	if _, err := Listen(long, ""); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("Listen on a %d-byte path: %v", len(long), err)
	}

	// A path that fits, but whose temporary name beside it would not: bound in place.
	sub := filepath.Join(dir, strings.Repeat("d", maxSocketPath-len(dir)-len("/a")-1))
	fit := filepath.Join(sub, "a")
	if len(fit) > maxSocketPath {
		t.Fatalf("test path is %d bytes", len(fit))
	}
	ln, err := Listen(fit, "")
	if err != nil {
		t.Fatalf("Listen on a %d-byte path: %v", len(fit), err)
	}
	defer ln.Close()
	if perm, _ := statSocket(t, fit); perm != 0o600 {
		t.Errorf("mode %v", perm)
	}
	if !dialable(fit) {
		t.Error("nothing answers")
	}
	entries, _ := os.ReadDir(sub)
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only the socket", entries)
	}
}

func TestListenEmptyPath(t *testing.T) {
	if _, err := Listen("", ""); err == nil {
		t.Error("Listen(\"\") succeeded")
	}
}
