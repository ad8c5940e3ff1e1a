package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/clock"
	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
)

var t0 = time.Date(2026, 11, 22, 13, 42, 1, 0, time.FixedZone("", 3600))

// do sends one request through the site and the access log, and returns the response and the
// log line it wrote.
func do(t *testing.T, r *http.Request) (*http.Response, string) {
	t.Helper()
	var log bytes.Buffer
	h := newAccessLog(&log, clock.NewFake(t0), nil).wrap(newSite())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result(), log.String()
}

func TestSite(t *testing.T) {
	tests := []struct {
		name, method, target, remote string
		body, ua                     string
		wantStatus                   int
		wantBody                     string // a part of it
		wantLine                     string
	}{
		{
			name: "home", method: "GET", target: "/", remote: "10.200.2.2:40000", ua: "curl/7.88.1",
			wantStatus: 200, wantBody: "Hello",
			wantLine: `10.200.2.2 - - [22/Nov/2026:13:42:01 +0100] "GET / HTTP/1.1" 200 34 "-" "curl/7.88.1"` + "\n",
		},
		{
			name: "xmlrpc flood", method: "POST", target: "/xmlrpc.php", remote: "10.200.1.2:51234",
			body: "<methodCall/>", ua: "logjail-demo-attacker",
			wantStatus: 200, wantBody: "Incorrect username or password.",
			wantLine: `10.200.1.2 - - [22/Nov/2026:13:42:01 +0100] "POST /xmlrpc.php HTTP/1.1" 200 341 "-" "logjail-demo-attacker"` + "\n",
		},
		{
			name: "xmlrpc GET", method: "GET", target: "/xmlrpc.php", remote: "10.200.1.2:51234",
			wantStatus: 405, wantBody: "accepts POST requests only",
			wantLine: `10.200.1.2 - - [22/Nov/2026:13:42:01 +0100] "GET /xmlrpc.php HTTP/1.1" 405 42 "-" "-"` + "\n",
		},
		{
			name: "POST home", method: "POST", target: "/", remote: "[2001:db8::7]:443",
			wantStatus: 405,
			wantLine:   `2001:db8::7 - - [22/Nov/2026:13:42:01 +0100] "POST / HTTP/1.1" 405 19 "-" "-"` + "\n",
		},
		{
			name: "not found, mapped address", method: "GET", target: "/wp-admin/", remote: "[::ffff:192.0.2.9]:80",
			wantStatus: 404,
			wantLine:   `192.0.2.9 - - [22/Nov/2026:13:42:01 +0100] "GET /wp-admin/ HTTP/1.1" 404 19 "-" "-"` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			r.RemoteAddr = tt.remote
			if tt.ua != "" {
				r.Header.Set("User-Agent", tt.ua)
			}
			resp, line := do(t, r)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("status %d body %q; want %d and %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if diff := cmp.Diff(tt.wantLine, line); diff != "" {
				t.Errorf("log line (-want +got):\n%s", diff)
			}
		})
	}
}

// A client-controlled field can neither end early nor start a new line, as in Apache's log.
func TestEscaping(t *testing.T) {
	r := httptest.NewRequest("POST", "/xmlrpc.php", nil)
	r.RemoteAddr = "10.200.1.2:1"
	r.RequestURI = "/xmlrpc.php?x=\"a\\b\x01"
	r.Header.Set("User-Agent", "evil\" \"6.6.6.6 - - [22/Nov/2026:13:42:01 +0100] \"POST /xmlrpc.php HTTP/1.1\" 200 1\n\xff")
	r.Header.Set("Referer", "\t")
	_, line := do(t, r)
	want := `10.200.1.2 - - [22/Nov/2026:13:42:01 +0100] "POST /xmlrpc.php?x=\"a\\b\x01 HTTP/1.1" 200 341 "\t" ` +
		`"evil\" \"6.6.6.6 - - [22/Nov/2026:13:42:01 +0100] \"POST /xmlrpc.php HTTP/1.1\" 200 1\n\xff"` + "\n"
	if diff := cmp.Diff(want, line); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

// The lines the demo writes are what the shipped wordpress filter reads: a POST to xmlrpc.php
// counts for the client's address, the bystander's GET does not.
func TestWordpressFilterReadsTheLog(t *testing.T) {
	def, diags := config.LoadFilter("../..", "wordpress", nil)
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	f, err := filter.New(def, filter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := f.NewMatcher()
	now := t0.Add(time.Second)

	post := httptest.NewRequest("POST", "/xmlrpc.php", strings.NewReader("<methodCall/>"))
	post.RemoteAddr = "10.200.1.2:51234"
	post.Header.Set("User-Agent", "curl/7.88.1")
	_, line := do(t, post)
	res := m.Process(strings.TrimSuffix(line, "\n"), now)
	if res.Verdict != filter.Matched || len(res.Failures) != 1 || res.Failures[0].Addr.String() != "10.200.1.2" || !res.Failures[0].Time.Equal(t0) {
		t.Errorf("POST line %q: verdict %v failures %+v; want a failure of 10.200.1.2 at %v", line, res.Verdict, res.Failures, t0)
	}

	get := httptest.NewRequest("GET", "/", nil)
	get.RemoteAddr = "10.200.2.2:40000"
	_, line = do(t, get)
	if res := m.Process(strings.TrimSuffix(line, "\n"), now); res.Verdict == filter.Matched {
		t.Errorf("GET line %q counted as a failure", line)
	}
}

// The real server on loopback: the log line carries the connection's address, and is in the
// file by the time the client has its answer.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, newAccessLog(f, clock.Real(), nil).wrap(newSite()), nil) }()

	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		resp, err := client.Post("http://"+ln.Addr().String()+"/xmlrpc.php", "text/xml", strings.NewReader("<methodCall/>"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(lines) != i+1 || !strings.HasPrefix(lines[i], "127.0.0.1 - - [") || !strings.Contains(lines[i], `"POST /xmlrpc.php HTTP/1.1" 200 341 "-" "Go-http-client/1.1"`) {
			t.Fatalf("after %d requests the log is:\n%s", i+1, data)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
}
