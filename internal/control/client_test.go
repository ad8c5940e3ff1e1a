package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestClientNotRunning(t *testing.T) {
	dir := shortDir(t)
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	regular := filepath.Join(dir, "regular")
	os.WriteFile(regular, nil, 0o600)

	for name, sock := range map[string]string{
		"no file":        filepath.Join(dir, "none.sock"),
		"no directory":   filepath.Join(dir, "nodir", "lj.sock"),
		"stale socket":   stale,
		"regular file":   regular,
		"file as parent": filepath.Join(regular, "lj.sock"),
	} {
		t.Run(name, func(t *testing.T) {
			c := NewClient(sock)
			want := fmt.Sprintf("logjail is not running (no daemon on %s)", sock)
			for what, do := range map[string]func() error{
				"status":  func() error { _, err := c.Status(""); return err },
				"banned":  func() error { _, err := c.Banned(""); return err },
				"ban":     func() error { _, err := c.Ban(BanRequest{Jail: "a", Target: "192.0.2.1"}); return err },
				"unban":   func() error { _, err := c.Unban(UnbanRequest{All: true}); return err },
				"explain": func() error { _, err := c.Explain("192.0.2.1"); return err },
				"reload":  func() error { _, err := c.Reload(""); return err },
				"stop":    c.Stop,
			} {
				err := do()
				if !errors.Is(err, ErrNotRunning) || err.Error() != want {
					t.Errorf("%s: %v; want ErrNotRunning %q", what, err, want)
				}
			}
			if err := c.WaitStopped(time.Second); err != nil {
				t.Errorf("WaitStopped with no daemon: %v", err)
			}
		})
	}
}

func TestClientDefaultSocket(t *testing.T) {
	if s := NewClient("").Socket(); s != DefaultSocket {
		t.Errorf("socket %q, want %q", s, DefaultSocket)
	}
}

func TestClientTransportErrors(t *testing.T) {
	c := NewClient("/run/x.sock")
	opErr := func(errno syscall.Errno) error {
		return fmt.Errorf("wrapped: %w", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)})
	}
	tests := []struct {
		name   string
		err    error
		wantIs error
		want   string
	}{
		{"ENOENT", opErr(syscall.ENOENT), ErrNotRunning, "logjail is not running (no daemon on /run/x.sock)"},
		{"ECONNREFUSED", opErr(syscall.ECONNREFUSED), ErrNotRunning, "logjail is not running (no daemon on /run/x.sock)"},
		{"EACCES", opErr(syscall.EACCES), fs.ErrPermission, "permission denied on /run/x.sock: run as root or as a member of its group"},
		{"EPERM", opErr(syscall.EPERM), fs.ErrPermission, "permission denied on /run/x.sock: run as root or as a member of its group"},
		{"reset", opErr(syscall.ECONNRESET), syscall.ECONNRESET, "request to logjail on /run/x.sock: wrapped: dial unix: connect: connection reset by peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.transportError(tt.err)
			if !errors.Is(err, tt.wantIs) || err.Error() != tt.want {
				t.Errorf("transportError = %q; want %q matching %v", err, tt.want, tt.wantIs)
			}
		})
	}
}

// TestSocketAccess connects as an unprivileged user (nobody, group 65534) in a child process,
// the test binary run again: a 0600 socket refuses it with the sentence; a 0660 socket of its
// group lets it in.
func TestSocketAccess(t *testing.T) {
	if sock := os.Getenv("LOGJAIL_TEST_PERM_SOCKET"); sock != "" {
		_, err := NewClient(sock).Status("")
		fmt.Printf("ERR=%v IS=%v\n", err, errors.Is(err, fs.ErrPermission))
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	dir := shortDir(t)
	os.Chmod(dir, 0o755)
	// The test binary sits in a private build directory: run a copy that nobody can read.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "control.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, group, want string
	}{
		{"root only", "", "ERR=permission denied on %s: run as root or as a member of its group IS=true"},
		{"group", "65534", "ERR=<nil> IS=false"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(dir, tt.name[:1]+".sock")
			startServerAt(t, sock, tt.group)
			cmd := exec.Command(exe, "-test.run=^TestSocketAccess$", "-test.v")
			cmd.Env = append(os.Environ(), "LOGJAIL_TEST_PERM_SOCKET="+sock)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child as nobody: %v\n%s", err, out)
			}
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, sock)
			}
			if !strings.Contains(string(out), want) {
				t.Errorf("child output lacks %q:\n%s", want, out)
			}
		})
	}
}

func startServerAt(t *testing.T, sock, group string) *testServer {
	t.Helper()
	ln, err := Listen(sock, group)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{socket: sock, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- Serve(ctx, ln, &fakeService{status: sampleStatus()}, nil) }()
	t.Cleanup(func() { cancel(); <-ts.done })
	return ts
}

func TestClientContext(t *testing.T) {
	svc := &fakeService{reload: &ReloadReply{}, block: make(chan struct{})}
	defer close(svc.block)
	ts := startServer(t, svc, defaultServerConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewClient(ts.socket).WithContext(ctx).Reload("")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reload past the context's deadline: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the client waited %v", d)
	}
}

// TestClientNotLogjail: something else answers on the socket.
func TestClientNotLogjail(t *testing.T) {
	sock := filepath.Join(shortDir(t), "other.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status" {
			fmt.Fprint(w, "<html>hello</html>")
			return
		}
		http.Error(w, "nope", http.StatusTeapot)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c := NewClient(sock)
	if _, err := c.Status(""); err == nil || !strings.Contains(err.Error(), "is it logjail?") {
		t.Errorf("status from a web server: %v", err)
	}
	_, err = c.Banned("")
	var se *ServerError
	if !errors.As(err, &se) || se.Status != http.StatusTeapot || !strings.Contains(err.Error(), "is it logjail?") {
		t.Errorf("banned from a web server: %v", err)
	}
	if errors.Is(err, ErrBadRequest) || errors.Is(err, ErrNotFound) {
		t.Errorf("a 418 matches a sentinel: %v", err)
	}
}
