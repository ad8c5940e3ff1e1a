// Command demoweb is the small web server that `make demo` protects: it plays a WordPress site
// just enough for the wordpress jail, and writes an Apache combined-format access log.
//
//	demoweb --listen :80 --log /tmp/demo/access.log
//
// GET / answers 200. POST /xmlrpc.php answers 200 with the XML-RPC fault WordPress gives a
// wrong password (the flood the jail counts); any other method on it answers 405, as WordPress
// does. Everything else is 404. Each request appends one line to the log, with the client's real
// address, in a single write as soon as the request is answered, so that a follower sees whole
// lines at once. It stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/logjail/logjail/internal/clock"
)

func main() {
	listen := flag.String("listen", ":80", "address to listen on")
	logPath := flag.String("log", "", "access log to append to (Apache combined format); required")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *logPath == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: demoweb [--listen ADDR] --log FILE")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *logPath, logger); err != nil {
		logger.Error("demoweb failed", "err", err)
		os.Exit(1)
	}
}

// run opens the log, listens and serves until ctx is done.
func run(ctx context.Context, listen, logPath string, logger *slog.Logger) error {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	logger.Info("listening", "addr", ln.Addr().String(), "log", logPath)
	return serve(ctx, ln, newAccessLog(f, clock.Real(), logger).wrap(newSite()), logger)
}

// serve runs h on ln until ctx is done, then shuts down (waiting a little for requests in
// flight).
func serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		done <- srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-done
}

// xmlrpcFault is what WordPress' xmlrpc.php answers to a wrong user name or password.
const xmlrpcFault = `<?xml version="1.0" encoding="UTF-8"?>
<methodResponse>
  <fault>
    <value>
      <struct>
        <member><name>faultCode</name><value><int>403</int></value></member>
        <member><name>faultString</name><value><string>Incorrect username or password.</string></value></member>
      </struct>
    </value>
  </fault>
</methodResponse>
`

// newSite is the demo's web site: GET /, POST /xmlrpc.php, 404 for the rest.
func newSite() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Hello from the logjail demo site.\n")
	})
	mux.HandleFunc("/xmlrpc.php", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusMethodNotAllowed)
			io.WriteString(w, "XML-RPC server accepts POST requests only.")
			return
		}
		// Read the call (a real server parses it); bounded.
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
		io.WriteString(w, xmlrpcFault)
	})
	return mux
}

// accessLog writes one Apache combined-format line per request:
//
//	%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"
type accessLog struct {
	mu     sync.Mutex // one line at a time
	w      io.Writer
	clock  clock.Clock
	logger *slog.Logger
	failed bool // a write failed; logged once
}

func newAccessLog(w io.Writer, c clock.Clock, logger *slog.Logger) *accessLog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &accessLog{w: w, clock: c, logger: logger}
}

// wrap logs every request h answers, once it has answered.
func (a *accessLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := a.clock.Now() // %t is when the request was received
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		a.write(line(r, start, rec.status, rec.bytes))
	})
}

func (a *accessLog) write(l []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// One Write of the whole line on an unbuffered file: the line is in the file when Write
	// returns, and no reader sees half of it.
	if _, err := a.w.Write(l); err != nil && !a.failed {
		a.failed = true
		a.logger.Warn("cannot write the access log", "err", err)
	}
}

// line formats one request like Apache's combined format.
func line(r *http.Request, t time.Time, status int, n int64) []byte {
	b := make([]byte, 0, 256)
	b = append(b, clientAddr(r)...)
	b = append(b, " - - ["...)
	b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendEscaped(b, r.Method+" "+r.RequestURI+" "+r.Proto)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if n > 0 {
		b = strconv.AppendInt(b, n, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ` "`...)
	b = appendField(b, r.Referer())
	b = append(b, `" "`...)
	b = appendField(b, r.UserAgent())
	b = append(b, "\"\n"...)
	return b
}

// clientAddr is the connection's peer address (%h without HostnameLookups), an IPv4-mapped
// IPv6 address written as IPv4.
func clientAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return "-"
	}
	return ap.Addr().Unmap().WithZone("").String()
}

// appendField appends a header value escaped, or "-" when it is empty.
func appendField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s)
}

// appendEscaped escapes a client-controlled string as Apache's ap_escape_logitem does: '"' and
// '\' get a backslash, control characters and bytes outside printable ASCII become \xhh (or \n,
// \t, ...). So no field can end early or start a new line.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, `\b`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c == '\v':
			b = append(b, `\v`...)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

// recorder remembers the status and the body size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}
