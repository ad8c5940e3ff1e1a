package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// The routes, all under /v1/.
const (
	pathStatus  = "/v1/status"  // GET ?jail=
	pathBanned  = "/v1/banned"  // GET ?jail=
	pathBan     = "/v1/ban"     // POST BanRequest
	pathUnban   = "/v1/unban"   // POST UnbanRequest
	pathExplain = "/v1/explain" // GET ?addr=
	pathReload  = "/v1/reload"  // POST ?jail=
	pathStop    = "/v1/stop"    // POST
)

// serverConfig holds the limits of the server; tests shorten the timeouts.
type serverConfig struct {
	readHeaderTimeout time.Duration // a half-sent request head
	readTimeout       time.Duration // the whole request, body included (a slow client)
	writeTimeout      time.Duration // from the end of the head to the end of the reply: bounds a handler (reload)
	idleTimeout       time.Duration // a kept-alive connection with nothing to say
	shutdownTimeout   time.Duration // graceful shutdown, then connections are closed
	maxHeaderBytes    int
	maxBodyBytes      int64
}

func defaultServerConfig() serverConfig {
	return serverConfig{
		readHeaderTimeout: 5 * time.Second,
		readTimeout:       10 * time.Second,
		writeTimeout:      2 * time.Minute,
		idleTimeout:       time.Minute,
		shutdownTimeout:   5 * time.Second,
		maxHeaderBytes:    16 << 10,
		maxBodyBytes:      1 << 20,
	}
}

// Serve answers the control API on ln with svc until ctx is done, then shuts down gracefully:
// it stops accepting, lets the requests in progress finish for up to five seconds, and closes
// what is left. It closes ln (a listener from Listen removes its socket file then). It returns
// nil after a shutdown, or the error that stopped the server before ctx was done.
//
// Requests are JSON in, JSON out; an error is {"error": "message"} with status 400 (the error
// wraps ErrBadRequest), 404 (ErrNotFound), 405 (wrong method), 413 (body over 1 MiB) or 500.
// Whatever arrives on the socket — random bytes, a half request, a slow or huge one — gets an
// error reply or a closed connection; a panic in svc becomes a 500. The uid and pid of the peer
// (SO_PEERCRED) are logged for every request that changes something (ban, unban, reload,
// stop); the socket's mode decides who may connect at all.
func Serve(ctx context.Context, ln net.Listener, svc Service, logger *slog.Logger) error {
	return serve(ctx, ln, svc, logger, defaultServerConfig())
}

func serve(ctx context.Context, ln net.Listener, svc Service, logger *slog.Logger, cfg serverConfig) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := newHandler(svc, logger, cfg.maxBodyBytes)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		ReadTimeout:       cfg.readTimeout,
		WriteTimeout:      cfg.writeTimeout,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    cfg.maxHeaderBytes,
		// net/http reports broken connections and garbage here: noise, not news.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if p, ok := peerOf(c); ok {
				return context.WithValue(ctx, peerKey{}, p)
			}
			return ctx
		},
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("control socket: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("control socket: requests still running at shutdown, closing them", "err", err)
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

// peer is who is at the other end of a connection.
type peer struct{ UID, GID, PID int }

type peerKey struct{}

type route struct {
	method   string
	mutating bool
	fn       func(r *http.Request) (any, error)
}

type handler struct {
	svc     Service
	log     *slog.Logger
	maxBody int64
	routes  map[string]route
}

func newHandler(svc Service, logger *slog.Logger, maxBody int64) *handler {
	h := &handler{svc: svc, log: logger, maxBody: maxBody}
	h.routes = map[string]route{
		pathStatus:  {http.MethodGet, false, h.status},
		pathBanned:  {http.MethodGet, false, h.banned},
		pathBan:     {http.MethodPost, true, h.ban},
		pathUnban:   {http.MethodPost, true, h.unban},
		pathExplain: {http.MethodGet, false, h.explain},
		pathReload:  {http.MethodPost, true, h.reload},
		pathStop:    {http.MethodPost, true, h.stop},
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.Error("control request panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
			h.reply(w, r, nil, fmt.Errorf("internal error: %v", v))
		}
	}()
	rt, ok := h.routes[r.URL.Path]
	if !ok {
		h.reply(w, r, nil, NotFoundf("no such endpoint: %s", r.URL.Path))
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		h.reply(w, r, nil, &httpError{status: http.StatusMethodNotAllowed,
			msg: fmt.Sprintf("%s %s: method not allowed, use %s", r.Method, r.URL.Path, rt.method)})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
	if rt.mutating {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery}
		if p, ok := r.Context().Value(peerKey{}).(peer); ok {
			attrs = append(attrs, "uid", p.UID, "gid", p.GID, "pid", p.PID)
		} else {
			attrs = append(attrs, "uid", "unknown")
		}
		h.log.Info("control request", attrs...)
	}
	v, err := rt.fn(r)
	h.reply(w, r, v, err)
}

// reply writes v, or err as {"error": ...} with its status.
func (h *handler) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		status := statusOf(err)
		if status >= 500 {
			h.log.Error("control request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			h.log.Debug("control request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		}
		if status == http.StatusRequestEntityTooLarge {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(errorReply{Error: errorMessage(err)})
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("control reply", "path", r.URL.Path, "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(errorReply{Error: "encode reply: " + err.Error()})
		return
	}
	w.Write(append(b, '\n'))
}

// errorReply is the body of every reply that is not 200.
type errorReply struct {
	Error string `json:"error"`
}

// errorMessage is the text of err for the client, without the sentinel's own words in front
// when the Service wrapped one with fmt.Errorf("%w: ...").
func errorMessage(err error) string {
	msg := err.Error()
	for _, s := range []error{ErrBadRequest, ErrNotFound} {
		if rest, ok := strings.CutPrefix(msg, s.Error()+": "); ok && errors.Is(err, s) {
			return rest
		}
	}
	return msg
}

// decode reads a JSON body into v: one object, no unknown fields, nothing after it.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		var extra json.RawMessage
		if err2 := dec.Decode(&extra); err2 != io.EOF {
			err = errors.New("trailing data after the JSON object")
			if err2 != nil {
				err = err2
			}
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return &httpError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("request body over %d bytes", tooLarge.Limit)}
	case errors.Is(err, io.EOF):
		return BadRequestf("empty request body, want a JSON object")
	default:
		return BadRequestf("invalid request body: %v", err)
	}
}

// result turns a Service's answer into a reply, refusing a nil one.
func result[T any](v *T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errors.New("the service returned no reply")
	}
	return v, nil
}

func (h *handler) status(r *http.Request) (any, error) {
	return result(h.svc.Status(r.URL.Query().Get("jail")))
}

func (h *handler) banned(r *http.Request) (any, error) {
	return result(h.svc.Banned(r.URL.Query().Get("jail")))
}

func (h *handler) ban(r *http.Request) (any, error) {
	var req BanRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Jail == "" {
		return nil, BadRequestf("ban: a jail is required")
	}
	p, err := ParseTarget(req.Target)
	if err != nil {
		return nil, err
	}
	req.Target = FormatTarget(p)
	return result(h.svc.Ban(req))
}

func (h *handler) unban(r *http.Request) (any, error) {
	var req UnbanRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	switch {
	case req.All && req.Target != "":
		return nil, BadRequestf("unban: either a target or all, not both")
	case !req.All && req.Target == "":
		return nil, BadRequestf("unban: a target (address or prefix) or all is required")
	case !req.All:
		p, err := ParseTarget(req.Target)
		if err != nil {
			return nil, err
		}
		req.Target = FormatTarget(p)
	}
	return result(h.svc.Unban(req))
}

func (h *handler) explain(r *http.Request) (any, error) {
	a, err := ParseAddr(r.URL.Query().Get("addr"))
	if err != nil {
		return nil, err
	}
	return result(h.svc.Explain(a.String()))
}

func (h *handler) reload(r *http.Request) (any, error) {
	return result(h.svc.Reload(r.URL.Query().Get("jail")))
}

func (h *handler) stop(*http.Request) (any, error) {
	if err := h.svc.Stop(); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
