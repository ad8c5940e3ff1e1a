package control

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// shortDir is a temporary directory with a path short enough for unix sockets (t.TempDir()
// holds the test's name and can pass the 108 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lj")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// call is one call the fake service received.
type call struct {
	Method string
	Arg    any
}

// fakeService records its calls and answers with canned replies or errors.
type fakeService struct {
	mu    sync.Mutex
	calls []call

	status  *StatusReply
	banned  *BannedReply
	ban     *BanReply
	unban   *UnbanReply
	explain *ExplainReply
	reload  *ReloadReply
	err     error         // returned by every method when set
	panics  bool          // every method panics
	block   chan struct{} // when set, Reload waits for it to close
	stop    func()        // called by Stop
}

func (f *fakeService) record(method string, arg any) error {
	f.mu.Lock()
	f.calls = append(f.calls, call{method, arg})
	err, panics := f.err, f.panics
	f.mu.Unlock()
	if panics {
		panic("fake service panics in " + method)
	}
	return err
}

func (f *fakeService) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeService) Status(jail string) (*StatusReply, error) {
	if err := f.record("Status", jail); err != nil {
		return nil, err
	}
	return f.status, nil
}

func (f *fakeService) Banned(jail string) (*BannedReply, error) {
	if err := f.record("Banned", jail); err != nil {
		return nil, err
	}
	return f.banned, nil
}

func (f *fakeService) Ban(req BanRequest) (*BanReply, error) {
	if err := f.record("Ban", req); err != nil {
		return nil, err
	}
	return f.ban, nil
}

func (f *fakeService) Unban(req UnbanRequest) (*UnbanReply, error) {
	if err := f.record("Unban", req); err != nil {
		return nil, err
	}
	return f.unban, nil
}

func (f *fakeService) Explain(addr string) (*ExplainReply, error) {
	if err := f.record("Explain", addr); err != nil {
		return nil, err
	}
	return f.explain, nil
}

func (f *fakeService) Reload(jail string) (*ReloadReply, error) {
	if err := f.record("Reload", jail); err != nil {
		return nil, err
	}
	if f.block != nil {
		<-f.block
	}
	return f.reload, nil
}

func (f *fakeService) Stop() error {
	if err := f.record("Stop", nil); err != nil {
		return err
	}
	f.mu.Lock()
	stop := f.stop
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	return nil
}

// testServer is Serve running on a socket made by Listen.
type testServer struct {
	socket string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServer(t *testing.T, svc Service, cfg serverConfig) *testServer {
	t.Helper()
	sock := filepath.Join(shortDir(t), "lj.sock")
	ln, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{socket: sock, cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { ts.done <- serve(ctx, ln, svc, logger, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context was cancelled")
		}
	})
	return ts
}

func testTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr[T any](v T) *T { return &v }

func sampleStatus() *StatusReply {
	return &StatusReply{
		Version: "1.2.3", PID: 4242, Started: testTime("2026-01-02T10:00:00Z"), Config: "/etc/logjail",
		Jails: []JailStatus{{
			Name: "sshd", Filter: "sshd",
			Files:     []FileStatus{{Path: "/var/log/auth.log", Exists: true, Lines: 10, Bytes: 1000, Offset: 1000}},
			LinesRead: 10, Failures: 3, Tracked: 2, LastFailure: ptr(testTime("2026-01-02T10:05:00Z")),
			Banned: 1, TotalBanned: 4, MaxRetry: 5, FindTime: Duration(10 * time.Minute), BanTime: Permanent,
			Warnings: []string{"log grows but the filter stopped matching"},
		}},
		Broken: []BrokenJail{{Name: "apache", Errors: []string{"jail.local:3: no such filter"}}},
	}
}

func TestRoutes(t *testing.T) {
	end := testTime("2026-01-02T11:00:00Z")
	b := Ban{Jail: "sshd", Target: "192.0.2.7", Start: testTime("2026-01-02T10:00:00Z"), End: &end, Failures: 5, Lines: []string{"x"}, Applied: true}
	svc := &fakeService{
		status:  sampleStatus(),
		banned:  &BannedReply{Bans: []Ban{b}},
		ban:     &BanReply{Ban: b},
		unban:   &UnbanReply{Unbanned: []Ban{b}},
		explain: &ExplainReply{Addr: "192.0.2.7", Jails: []JailExplain{{Jail: "sshd", Failures: 2, MaxRetry: 5, FindTime: 600, Ban: &b}}},
		reload:  &ReloadReply{Started: []string{"a"}, Unchanged: []string{"sshd"}},
	}
	ts := startServer(t, svc, defaultServerConfig())
	c := NewClient(ts.socket)

	tests := []struct {
		name     string
		do       func() (any, error)
		want     any
		wantCall call
	}{
		{"status", func() (any, error) { return c.Status("") }, svc.status, call{"Status", ""}},
		{"status jail", func() (any, error) { return c.Status("sshd") }, svc.status, call{"Status", "sshd"}},
		{"banned", func() (any, error) { return c.Banned("sshd") }, svc.banned, call{"Banned", "sshd"}},
		{"ban", func() (any, error) {
			return c.Ban(BanRequest{Jail: "sshd", Target: "192.0.2.7", For: Duration(time.Hour), Force: true})
		}, svc.ban, call{"Ban", BanRequest{Jail: "sshd", Target: "192.0.2.7", For: Duration(time.Hour), Force: true}}},
		{"ban permanent prefix, normalized", func() (any, error) {
			return c.Ban(BanRequest{Jail: "sshd", Target: "2001:DB8::/32", For: Permanent})
		}, svc.ban, call{"Ban", BanRequest{Jail: "sshd", Target: "2001:db8::/32", For: Permanent}}},
		{"ban mapped address", func() (any, error) {
			return c.Ban(BanRequest{Jail: "sshd", Target: "::ffff:192.0.2.7/128"})
		}, svc.ban, call{"Ban", BanRequest{Jail: "sshd", Target: "192.0.2.7"}}},
		{"unban", func() (any, error) { return c.Unban(UnbanRequest{Target: "192.0.2.7/32"}) },
			svc.unban, call{"Unban", UnbanRequest{Target: "192.0.2.7"}}},
		{"unban all", func() (any, error) { return c.Unban(UnbanRequest{Jail: "sshd", All: true}) },
			svc.unban, call{"Unban", UnbanRequest{Jail: "sshd", All: true}}},
		{"explain", func() (any, error) { return c.Explain("::ffff:192.0.2.7") }, svc.explain, call{"Explain", "192.0.2.7"}},
		{"reload", func() (any, error) { return c.Reload("") }, svc.reload, call{"Reload", ""}},
		{"reload jail", func() (any, error) { return c.Reload("sshd") }, svc.reload, call{"Reload", "sshd"}},
		{"stop", func() (any, error) { return nil, c.Stop() }, nil, call{"Stop", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(svc.Calls())
			got, err := tt.do()
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("reply (-want +got):\n%s", diff)
				}
			}
			calls := svc.Calls()[n:]
			if diff := cmp.Diff([]call{tt.wantCall}, calls); diff != "" {
				t.Errorf("service calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		panics     bool
		wantStatus int
		wantIs     error
		wantMsg    string
	}{
		{"bad request", BadRequestf("refused: 10.0.0.1 is ignored: ignoreip 10.0.0.0/8"), false, 400, ErrBadRequest, "refused: 10.0.0.1 is ignored: ignoreip 10.0.0.0/8"},
		{"wrapped bad request", fmt.Errorf("%w: configuration rejected", ErrBadRequest), false, 400, ErrBadRequest, "configuration rejected"},
		{"not found", fmt.Errorf("%w: no running jail %q", ErrNotFound, "nope"), false, 404, ErrNotFound, `no running jail "nope"`},
		{"not found helper", NotFoundf("no ban of 192.0.2.7"), false, 404, ErrNotFound, "no ban of 192.0.2.7"},
		{"server fault", errors.New("iptables: exit status 4"), false, 500, nil, "iptables: exit status 4"},
		{"panic", nil, true, 500, nil, "internal error: fake service panics in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &fakeService{err: tt.err, panics: tt.panics, status: sampleStatus()}
			ts := startServer(t, svc, defaultServerConfig())
			c := NewClient(ts.socket)
			for name, do := range map[string]func() error{
				"status":  func() error { _, err := c.Status("x"); return err },
				"banned":  func() error { _, err := c.Banned(""); return err },
				"ban":     func() error { _, err := c.Ban(BanRequest{Jail: "x", Target: "192.0.2.1"}); return err },
				"unban":   func() error { _, err := c.Unban(UnbanRequest{All: true}); return err },
				"explain": func() error { _, err := c.Explain("192.0.2.1"); return err },
				"reload":  func() error { _, err := c.Reload(""); return err },
				"stop":    c.Stop,
			} {
				err := do()
				var se *ServerError
				if !errors.As(err, &se) {
					t.Fatalf("%s: error %v (%T), want a *ServerError", name, err, err)
				}
				if se.Status != tt.wantStatus || !strings.HasPrefix(se.Message, tt.wantMsg) {
					t.Errorf("%s: status %d message %q, want %d %q", name, se.Status, se.Message, tt.wantStatus, tt.wantMsg)
				}
				for _, s := range []error{ErrBadRequest, ErrNotFound, ErrNotRunning} {
					if errors.Is(err, s) != (s == tt.wantIs) {
						t.Errorf("%s: errors.Is(err, %v) = %v", name, s, errors.Is(err, s))
					}
				}
			}
			// The server is still there after the service failed or panicked.
			svc.mu.Lock()
			svc.err, svc.panics = nil, false
			svc.mu.Unlock()
			if _, err := c.Status(""); err != nil {
				t.Errorf("status after the errors: %v", err)
			}
		})
	}
}

func TestNilReplyIsServerError(t *testing.T) {
	ts := startServer(t, &fakeService{}, defaultServerConfig())
	_, err := NewClient(ts.socket).Status("")
	var se *ServerError
	if !errors.As(err, &se) || se.Status != 500 {
		t.Errorf("a nil reply of the service: %v, want a 500", err)
	}
}

// TestServerValidates checks that the server refuses what no Service should see.
func TestServerValidates(t *testing.T) {
	svc := &fakeService{ban: &BanReply{}, unban: &UnbanReply{}, explain: &ExplainReply{}}
	ts := startServer(t, svc, defaultServerConfig())
	c := NewClient(ts.socket)
	tests := []struct {
		name    string
		do      func() error
		wantMsg string
	}{
		{"ban without jail", func() error { _, err := c.Ban(BanRequest{Target: "192.0.2.1"}); return err }, "a jail is required"},
		{"ban without target", func() error { _, err := c.Ban(BanRequest{Jail: "sshd"}); return err }, "an IP address is required"},
		{"ban bad address", func() error { _, err := c.Ban(BanRequest{Jail: "sshd", Target: "300.1.2.3"}); return err }, `"300.1.2.3" is not an IP address`},
		{"ban host bits", func() error { _, err := c.Ban(BanRequest{Jail: "sshd", Target: "10.0.0.5/8"}); return err }, "10.0.0.5/8 has host bits set; did you mean 10.0.0.0/8?"},
		{"ban zone", func() error { _, err := c.Ban(BanRequest{Jail: "sshd", Target: "fe80::1%eth0"}); return err }, "zone"},
		{"unban neither", func() error { _, err := c.Unban(UnbanRequest{Jail: "sshd"}); return err }, "a target (address or prefix) or all is required"},
		{"unban both", func() error { _, err := c.Unban(UnbanRequest{Target: "192.0.2.1", All: true}); return err }, "either a target or all"},
		{"unban bad", func() error { _, err := c.Unban(UnbanRequest{Target: "host.example"}); return err }, "not an IP address"},
		{"explain empty", func() error { _, err := c.Explain(""); return err }, "an IP address is required"},
		{"explain prefix", func() error { _, err := c.Explain("10.0.0.0/8"); return err }, `"10.0.0.0/8" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %v, want ErrBadRequest with %q", err, tt.wantMsg)
			}
		})
	}
	if calls := svc.Calls(); len(calls) != 0 {
		t.Errorf("the service was called with invalid requests: %v", calls)
	}
}

// rawRequest sends raw bytes on a fresh connection and returns what came back before the
// server closed the connection or the deadline passed.
func rawRequest(t *testing.T, sock string, data []byte) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(data); err != nil {
		// The server may close on garbage before all of it was written.
		t.Logf("write: %v", err)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		uc.CloseWrite()
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// parseReply reads one HTTP reply and its JSON error message.
func parseReply(t *testing.T, raw string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("no HTTP reply: %v\n%q", err, raw)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e errorReply
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("error reply is not JSON: %q", body)
		}
	}
	return resp.StatusCode, e.Error, resp.Header
}

func TestGarbage(t *testing.T) {
	svc := &fakeService{status: sampleStatus(), ban: &BanReply{}}
	cfg := defaultServerConfig()
	cfg.readHeaderTimeout = 300 * time.Millisecond
	cfg.readTimeout = 500 * time.Millisecond
	ts := startServer(t, svc, cfg)

	random := make([]byte, 64<<10)
	rand.Read(random)
	bigBody := `{"jail":"sshd","target":"` + strings.Repeat("1", 2<<20) + `"}`

	tests := []struct {
		name       string
		data       string
		wantStatus int    // 0: any reply or none, as long as the server goes on
		wantMsg    string // in the JSON error
	}{
		{"random bytes", string(random), 0, ""},
		{"not HTTP", "HELLO logjail, ban everyone please\r\n\r\n", 400, ""},
		{"NUL bytes", "\x00\x00\x00\x00\r\n\r\n", 400, ""},
		{"half request line", "GET /v1/sta", 0, ""},
		{"half headers", "GET /v1/status HTTP/1.1\r\nHost: x\r\n", 0, ""},
		{"huge header", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Junk: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431, ""},
		{"oversized body", "POST /v1/ban HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
			fmt.Sprint(len(bigBody)) + "\r\n\r\n" + bigBody, 413, "request body over 1048576 bytes"},
		{"oversized chunked body", "POST /v1/ban HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(bigBody), bigBody), 413, "request body over"},
		{"invalid JSON", post("/v1/ban", `{"jail": "sshd", "target": `), 400, "invalid request body"},
		{"JSON of the wrong type", post("/v1/ban", `["sshd", "192.0.2.1"]`), 400, "invalid request body"},
		{"unknown field", post("/v1/ban", `{"jail":"sshd","target":"192.0.2.1","forever":true}`), 400, `unknown field "forever"`},
		{"bad duration", post("/v1/ban", `{"jail":"sshd","target":"192.0.2.1","for":"1h"}`), 400, "duration"},
		{"trailing data", post("/v1/ban", `{"jail":"sshd","target":"192.0.2.1"} {"jail":"x"}`), 400, "trailing data"},
		{"empty body", post("/v1/ban", ""), 400, "empty request body"},
		{"wrong method GET ban", "GET /v1/ban HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "use POST"},
		{"wrong method POST status", post("/v1/status", "{}"), 405, "use GET"},
		{"wrong method DELETE stop", "DELETE /v1/stop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "use POST"},
		{"unknown path", "GET /v2/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "no such endpoint"},
		{"path traversal", "GET /v1/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0, ""},
		{"CONNECT", "CONNECT x:1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			raw := rawRequest(t, ts.socket, []byte(tt.data))
			if time.Since(start) > 4*time.Second {
				t.Errorf("the server kept the connection open %v", time.Since(start))
			}
			if tt.wantStatus != 0 {
				status, msg, h := parseReply(t, raw)
				if status != tt.wantStatus || !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("reply %d %q, want %d with %q", status, msg, tt.wantStatus, tt.wantMsg)
				}
				if status == 405 && h.Get("Allow") == "" {
					t.Error("405 without an Allow header")
				}
			}
			if _, err := NewClient(ts.socket).Status(""); err != nil {
				t.Fatalf("the server stopped serving after %s: %v", tt.name, err)
			}
		})
	}
	for _, c := range svc.Calls() {
		if c.Method != "Status" {
			t.Errorf("garbage reached the service: %+v", c)
		}
	}
}

func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

// TestSlowClients: a client that sends its request slowly, or not at all, is cut off by the
// timeouts while others are served.
func TestSlowClients(t *testing.T) {
	svc := &fakeService{status: sampleStatus()}
	cfg := defaultServerConfig()
	cfg.readHeaderTimeout = 200 * time.Millisecond
	cfg.readTimeout = 400 * time.Millisecond
	ts := startServer(t, svc, cfg)

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", ts.socket)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if i%2 == 0 {
				// A body announced and never sent.
				fmt.Fprintf(c, "POST /v1/ban HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
			} else {
				// A header dripping a byte at a time.
				for _, b := range []byte("GET /v1/status HTTP/1.1\r\nHost: ") {
					if _, err := c.Write([]byte{b}); err != nil {
						break
					}
					time.Sleep(30 * time.Millisecond)
				}
			}
			start := time.Now()
			io.Copy(io.Discard, c)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("slow client %d held its connection %v", i, d)
			}
		}()
	}
	// Meanwhile, a proper client is served.
	for range 5 {
		if _, err := NewClient(ts.socket).Status(""); err != nil {
			t.Errorf("status while slow clients hang on: %v", err)
		}
	}
	wg.Wait()
	if len(svc.Calls()) != 5 {
		t.Errorf("service calls %v, want the 5 status calls", svc.Calls())
	}
}

func TestMutatingRequestsLogPeer(t *testing.T) {
	svc := &fakeService{status: sampleStatus(), ban: &BanReply{}}
	ts := startServer(t, svc, defaultServerConfig())
	c := NewClient(ts.socket)
	if _, err := c.Status(""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ts.logs.String(), "control request") {
		t.Errorf("a read-only request was logged at Info:\n%s", ts.logs)
	}
	if _, err := c.Ban(BanRequest{Jail: "sshd", Target: "192.0.2.9"}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("uid=%d gid=%d pid=%d", os.Getuid(), os.Getgid(), os.Getpid())
	if logs := ts.logs.String(); !strings.Contains(logs, "msg=\"control request\"") || !strings.Contains(logs, want) || !strings.Contains(logs, "path=/v1/ban") {
		t.Errorf("logs lack the ban request with %q:\n%s", want, logs)
	}
}

func TestShutdown(t *testing.T) {
	t.Run("in-flight request finishes", func(t *testing.T) {
		svc := &fakeService{reload: &ReloadReply{Unchanged: []string{"sshd"}}, block: make(chan struct{})}
		ts := startServer(t, svc, defaultServerConfig())
		got := make(chan error, 1)
		go func() {
			_, err := NewClient(ts.socket).Reload("")
			got <- err
		}()
		waitFor(t, func() bool { return len(svc.Calls()) == 1 })
		ts.cancel()
		// The listener is closed at once: new clients find no daemon.
		waitFor(t, func() bool {
			_, err := NewClient(ts.socket).Status("")
			return errors.Is(err, ErrNotRunning)
		})
		select {
		case err := <-ts.done:
			t.Fatalf("Serve returned (%v) with a request in flight", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(svc.block)
		if err := <-got; err != nil {
			t.Errorf("the request in flight at shutdown failed: %v", err)
		}
		select {
		case err := <-ts.done:
			ts.done <- err // for the cleanup
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return")
		}
		if _, err := os.Lstat(ts.socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file after shutdown: %v", err)
		}
	})
	t.Run("stuck request is bounded", func(t *testing.T) {
		svc := &fakeService{reload: &ReloadReply{}, block: make(chan struct{})}
		defer close(svc.block)
		cfg := defaultServerConfig()
		cfg.shutdownTimeout = 200 * time.Millisecond
		ts := startServer(t, svc, cfg)
		go NewClient(ts.socket).Reload("")
		waitFor(t, func() bool { return len(svc.Calls()) == 1 })
		start := time.Now()
		ts.cancel()
		select {
		case err := <-ts.done:
			ts.done <- err
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("shutdown took %v", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return with a stuck request")
		}
	})
	t.Run("stop request", func(t *testing.T) {
		svc := &fakeService{}
		ts := startServer(t, svc, defaultServerConfig())
		svc.mu.Lock()
		svc.stop = ts.cancel // what the daemon does: stop its context
		svc.mu.Unlock()
		c := NewClient(ts.socket)
		if err := c.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if err := c.WaitStopped(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServeListenerError(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(shortDir(t), "s"))
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(context.Background(), ln, &fakeService{}, nil)
	if err == nil || !strings.Contains(err.Error(), "control socket") {
		t.Errorf("Serve on a closed listener: %v", err)
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		d    Duration
		json string
	}{
		{0, "0"},
		{Duration(10 * time.Minute), "600"},
		{Duration(1500 * time.Millisecond), "1.5"},
		{Permanent, "-1"},
		{Duration(-time.Hour), "-1"},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.d)
		if err != nil || string(b) != tt.json {
			t.Errorf("Marshal(%v) = %s, %v; want %s", time.Duration(tt.d), b, err, tt.json)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		want := tt.d
		if want < 0 {
			want = Permanent
		}
		if back != want {
			t.Errorf("Unmarshal(%s) = %v, want %v", b, time.Duration(back), time.Duration(want))
		}
	}
	var d Duration
	for _, bad := range []string{`"1h"`, `1e300`, `true`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s): no error", bad)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"192.0.2.7", "192.0.2.7", ""},
		{"192.0.2.7/32", "192.0.2.7", ""},
		{"43.229.0.0/16", "43.229.0.0/16", ""},
		{"2001:DB8::1", "2001:db8::1", ""},
		{"2001:db8::/32", "2001:db8::/32", ""},
		{"::ffff:192.0.2.7", "192.0.2.7", ""},
		{"::ffff:192.0.2.0/120", "192.0.2.0/24", ""},
		{"::ffff:0:0/64", "", "mixes IPv4-mapped"},
		{"10.0.0.5/8", "", "did you mean 10.0.0.0/8?"},
		{"fe80::1%eth0", "", "zone"},
		{"192.0.2.300", "", "is not an IP address"},
		{"example.com", "", "is not an IP address"},
		{"10.0.0.0/33", "", "is not an IP address or a CIDR prefix"},
		{"", "", "an IP address is required"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseTarget(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadRequest) {
					t.Errorf("ParseTarget(%q) = %v, %v; want an ErrBadRequest with %q", tt.in, p, err, tt.wantErr)
				}
				if err != nil && strings.HasPrefix(err.Error(), "bad request") {
					t.Errorf("message starts with the sentinel: %q", err)
				}
				return
			}
			if err != nil || FormatTarget(p) != tt.want {
				t.Errorf("ParseTarget(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
			}
		})
	}
}
