package jail

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/clock"
	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
)

const repoRoot = "../.."

// t0 is the fake clock's start: the sshd lines of the tests are written around it.
var t0 = time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)

// loadFilter compiles a filter of the repository's filter.d, reading times in UTC.
func loadFilter(t testing.TB, ref string, o filter.Options) *filter.Filter {
	t.Helper()
	def, diags := config.LoadFilter(repoRoot, ref, nil)
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	f, err := filter.New(def, o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// regexFilter compiles one failregex.
func regexFilter(t testing.TB, failregex string, o filter.Options) *filter.Filter {
	t.Helper()
	def := &config.FilterDef{Name: "test", MaxLines: 1, FailRegex: []config.Value{{Text: failregex}}}
	if o.Location == nil {
		o.Location = time.UTC
	}
	f, err := filter.New(def, o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sshLine is an sshd failure of user from addr at t.
func sshLine(t time.Time, user, addr string) string {
	return sshLinePort(t, user, addr, 51122)
}

// sshLinePort is sshLine with a port, to make lines of the same second differ.
func sshLinePort(t time.Time, user, addr string, port int) string {
	return fmt.Sprintf("%s srv1 sshd[2101]: Failed password for %s from %s port %d ssh2\n", t.UTC().Format(time.Stamp), user, addr, port)
}

// noise is a line the sshd filter does not match.
func noise(t time.Time) string {
	return fmt.Sprintf("%s srv1 CRON[4242]: pam_unix(cron:session): session opened for user root\n", t.UTC().Format(time.Stamp))
}

func repeat(n int, f func(i int) string) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(f(i))
	}
	return sb.String()
}

// fakeBanner records the orders it gets.
type fakeBanner struct {
	mu     sync.Mutex
	orders []ban.Order
	err    error
	hook   func(ban.Order) // if set, called first by Ban
	// banned holds the targets for which Redundant says true (their ban would not change).
	banned map[netip.Prefix]bool
}

func (b *fakeBanner) Redundant(jail string, target netip.Prefix, t time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.banned[target]
}

func (b *fakeBanner) setBanned(target netip.Prefix, banned bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.banned == nil {
		b.banned = map[netip.Prefix]bool{}
	}
	b.banned[target] = banned
}

func (b *fakeBanner) Ban(o ban.Order) (ban.Ban, error) {
	if b.hook != nil {
		b.hook(o)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.orders = append(b.orders, o)
	return ban.Ban{Jail: o.Jail, Target: o.Target, Failures: o.Failures, Lines: o.Lines}, b.err
}

func (b *fakeBanner) got() []ban.Order {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]ban.Order(nil), b.orders...)
}

func (b *fakeBanner) targets() []string {
	var out []string
	for _, o := range b.got() {
		out = append(out, o.Target.String())
	}
	return out
}

// harness runs a jail on a fake clock with fast polling.
type harness struct {
	t      *testing.T
	dir    string
	clk    *clock.Fake
	banner *fakeBanner
	j      *Jail
	cancel context.CancelFunc
	done   chan error
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// sshSpec is an sshd jail on the given logpaths (relative to dir).
func sshSpec(t testing.TB, paths ...string) Spec {
	return Spec{
		Name: "sshd", Filter: loadFilter(t, "sshd", filter.Options{}), FilterName: "sshd",
		LogPaths: paths, Backend: "polling", MaxRetry: 3, FindTime: 10 * time.Minute,
	}
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, dir: t.TempDir(), clk: clock.NewFake(t0), banner: &fakeBanner{}}
}

func (h *harness) path(name string) string { return filepath.Join(h.dir, name) }

// start runs a jail of spec, whose relative logpaths are taken in h.dir.
func (h *harness) start(spec Spec, o Options) {
	h.t.Helper()
	for i, p := range spec.LogPaths {
		if !filepath.IsAbs(p) {
			spec.LogPaths[i] = h.path(p)
		}
	}
	o.Clock = h.clk
	if o.Logger == nil {
		o.Logger = testLogger(h.t)
	}
	if o.PollInterval == 0 {
		o.PollInterval = 2 * time.Millisecond
	}
	j, err := New(spec, h.banner, o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.j = j
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- j.Run(ctx) }()
	h.t.Cleanup(h.stop)
	// Run has armed its timer once the first scan is done.
	if err := h.clk.BlockUntilContext(h.t.Context(), 1); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not return 10s after cancel")
	}
}

// tick moves the fake clock by the jail's GlobInterval, or more, and waits until the tick it
// fires has run (Run re-armed its timer).
func (h *harness) tick(d time.Duration) {
	h.t.Helper()
	if d < h.j.o.GlobInterval {
		d = h.j.o.GlobInterval
	}
	h.clk.Advance(d)
	if err := h.clk.BlockUntilContext(h.t.Context(), 1); err != nil {
		h.t.Fatal(err)
	}
}

// waitFor polls cond (followers deliver lines on their own time) for at most 10s.
func (h *harness) waitFor(what string, cond func(Status) bool) Status {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.j.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %s: last status %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitLines waits until the jail has read n lines and the banner got every order they made.
func (h *harness) waitLines(n int64) Status {
	h.t.Helper()
	return h.waitFor(fmt.Sprintf("%d lines read", n), func(s Status) bool {
		return s.LinesRead >= n && int64(len(h.banner.got())) >= s.Orders
	})
}

func (h *harness) write(name, s string) {
	h.t.Helper()
	appendTo(h.t, h.path(name), s)
}

func appendTo(t testing.TB, path, s string) {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func lineCount(s string) int64 { return int64(strings.Count(s, "\n")) }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func hasWarning(st Status, sub string) bool {
	for _, w := range st.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

func hasError(st Status, sub string) bool {
	for _, e := range st.Errors {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}
