package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/control"
	"github.com/logjail/logjail/internal/jail"
)

// kernel records what the fake backends of every jail did, as the kernel would hold it.
type kernel struct {
	mu     sync.Mutex
	rules  map[string]map[string]bool // jail -> targets; nil map: chain absent
	starts map[string]int
	stops  map[string]int
}

func newKernel() *kernel {
	return &kernel{rules: map[string]map[string]bool{}, starts: map[string]int{}, stops: map[string]int{}}
}

type fakeBackend struct {
	k    *kernel
	jail string
}

func (f *fakeBackend) Name() string { return "fake" }
func (f *fakeBackend) Start(context.Context) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	f.k.rules[f.jail] = map[string]bool{}
	f.k.starts[f.jail]++
	return nil
}
func (f *fakeBackend) Stop(context.Context) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	delete(f.k.rules, f.jail)
	f.k.stops[f.jail]++
	return nil
}
func (f *fakeBackend) Ban(_ context.Context, t action.Target) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if f.k.rules[f.jail] == nil {
		return action.ErrNotStarted
	}
	f.k.rules[f.jail][t.String()] = true
	return nil
}
func (f *fakeBackend) Unban(_ context.Context, t action.Target) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	delete(f.k.rules[f.jail], t.String())
	return nil
}

func (k *kernel) has(jail, target string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rules[jail][target]
}

func (k *kernel) chains() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for j := range k.rules {
		out = append(out, j)
	}
	slices.Sort(out)
	return out
}

const testFilter = `[Definition]
failregex = ^\s*fail from <HOST>$
`

// setup writes a configuration directory: a filter "t", a jail.conf with DEFAULT, and the given
// jail.d files. It returns the directory and the log directory.
func setup(t *testing.T, jails map[string]string) (dir, logs string) {
	t.Helper()
	dir = t.TempDir()
	logs = t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "jail.d"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "filter.d", "t.conf"), []byte(testFilter), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "jail.conf"), []byte(fmt.Sprintf(`[DEFAULT]
logs = %s
ignoreip = 127.0.0.1
ignoreself = false
maxretry = 3
findtime = 10m
bantime = 1h
backend = polling
banaction = iptables-multiport
port = 0:65535
protocol = tcp
chain = INPUT
blocktype = REJECT
action = %%(banaction)s[port="%%(port)s", protocol="%%(protocol)s", chain="%%(chain)s"]
`, logs)), 0o644))
	for name, text := range jails {
		must(t, os.WriteFile(filepath.Join(dir, "jail.d", name), []byte(text), 0o644))
	}
	return dir, logs
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	must(t, err)
	defer f.Close()
	for _, l := range lines {
		_, err := f.WriteString(time.Now().Format("2006-01-02 15:04:05 ") + l + "\n")
		must(t, err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs a daemon on dir with fake backends; it is stopped at the end of the test.
func start(t *testing.T, dir string, k *kernel) (*Daemon, chan error) {
	t.Helper()
	d, done, _ := startAt(t, dir, filepath.Join(t.TempDir(), "state"), k)
	return d, done
}

// startAt is start with a state directory; stop stops the daemon and waits for it.
func startAt(t *testing.T, dir, state string, k *kernel) (*Daemon, chan error, func()) {
	t.Helper()
	d := New(Options{
		ConfigDir: dir,
		StateDir:  state,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		NewBackend: func(s BackendSpec, _ *slog.Logger) (action.Backend, error) {
			return &fakeBackend{k: k, jail: s.Opts.Jail}, nil
		},
		Ban:  ban.Options{Self: func() ([]netip.Addr, error) { return nil, nil }, Admins: func() ([]ban.Session, error) { return nil, nil }},
		Jail: jail.Options{PollInterval: 10 * time.Millisecond, GlobInterval: 50 * time.Millisecond},
	})
	done := make(chan error, 1)
	finished := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- d.Run(ctx); close(finished) }()
	stop := func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	}
	t.Cleanup(stop)
	return d, done, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func waitReady(t *testing.T, d *Daemon, done chan error) {
	t.Helper()
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon ended before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not ready")
	}
}

func TestBanReloadKeepsUnchangedJails(t *testing.T) {
	dir, logs := setup(t, map[string]string{
		"a.conf": "[a]\nenabled = true\nfilter = t\nlogpath = %(logs)s/a.log\n",
		"b.conf": "[b]\nenabled = true\nfilter = t\nlogpath = %(logs)s/b.log\n",
	})
	k := newKernel()
	d, done := start(t, dir, k)
	waitReady(t, d, done)
	if got := k.chains(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("chains %v, want [a b]", got)
	}

	// Two failures: counted, no ban; the third bans.
	appendLines(t, filepath.Join(logs, "a.log"), "fail from 192.0.2.7", "fail from 192.0.2.7")
	eventually(t, "two failures counted", func() bool {
		st, err := d.Status("a")
		return err == nil && st.Jails[0].Failures == 2
	})
	if k.has("a", "192.0.2.7") {
		t.Fatal("banned after 2 of 3 failures")
	}
	appendLines(t, filepath.Join(logs, "a.log"), "fail from 192.0.2.7", "fail from 127.0.0.1", "fail from 127.0.0.1", "fail from 127.0.0.1")
	eventually(t, "ban of 192.0.2.7 in the kernel", func() bool { return k.has("a", "192.0.2.7") })
	eventually(t, "refusal of 127.0.0.1 counted", func() bool {
		st, _ := d.Status("a")
		return st.Jails[0].Refused == 1
	})
	if k.has("a", "127.0.0.1") {
		t.Fatal("an ignoreip address was banned")
	}
	// One failure of another address stays counted in b across a reload that does not change b.
	appendLines(t, filepath.Join(logs, "b.log"), "fail from 198.51.100.1")
	eventually(t, "b counts one failure", func() bool {
		ex, err := d.Explain("198.51.100.1")
		return err == nil && len(ex.Jails) == 2 && ex.Jails[1].Failures == 1
	})

	before, err := d.Banned("a")
	if err != nil || len(before.Bans) != 1 {
		t.Fatalf("banned: %+v %v", before, err)
	}
	time.Sleep(20 * time.Millisecond) // so that an extension would show in End

	// Change a (maxretry), keep b: a restarts with its ban, b keeps its counter; no chain is
	// rebuilt because the action did not change.
	must(t, os.WriteFile(filepath.Join(dir, "jail.d", "a.local"), []byte("[a]\nmaxretry = 2\n"), 0o644))
	r, err := d.Reload("")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Restarted, []string{"a"}) || !slices.Equal(r.Unchanged, []string{"b"}) || len(r.Started)+len(r.Stopped) != 0 {
		t.Fatalf("reload %+v", r)
	}
	eventually(t, "a restarted and read its backlog", func() bool {
		st, _ := d.Status("a")
		return len(st.Jails) == 1 && st.Jails[0].Failures == 6
	})
	if after, _ := d.Banned("a"); len(after.Bans) != 1 || !after.Bans[0].End.Equal(*before.Bans[0].End) {
		t.Fatalf("the backlog read again after the reload changed the ban: before %+v, after %+v", before.Bans, after.Bans)
	}
	if !k.has("a", "192.0.2.7") || k.starts["a"] != 1 {
		t.Fatalf("ban lost or chain rebuilt on reload: has=%v starts=%d", k.has("a", "192.0.2.7"), k.starts["a"])
	}
	ex, _ := d.Explain("198.51.100.1")
	if ex.Jails[1].Failures != 1 {
		t.Fatalf("unchanged jail b lost its counter: %+v", ex.Jails[1])
	}

	// A broken file is refused with its file and line; both jails keep running.
	must(t, os.WriteFile(filepath.Join(dir, "jail.d", "broken.local"), []byte("[b]\n\nmaxretry = five\n"), 0o644))
	_, err = d.Reload("")
	if err == nil || !errors.Is(err, control.ErrBadRequest) || !strings.Contains(err.Error(), "broken.local:3") {
		t.Fatalf("reload of a broken config: %v, want a bad request naming broken.local:3", err)
	}
	st, err := d.Status("")
	if err != nil || len(st.Jails) != 2 {
		t.Fatalf("after a refused reload: %+v, %v", st, err)
	}
	appendLines(t, filepath.Join(logs, "b.log"), "fail from 198.51.100.1", "fail from 198.51.100.1")
	eventually(t, "b still bans after the refused reload", func() bool { return k.has("b", "198.51.100.1") })

	// Disabling b stops it and removes its chain; manual ban and unban work on a.
	must(t, os.Remove(filepath.Join(dir, "jail.d", "broken.local")))
	must(t, os.WriteFile(filepath.Join(dir, "jail.d", "b.local"), []byte("[b]\nenabled = false\n"), 0o644))
	r, err = d.Reload("")
	if err != nil || !slices.Equal(r.Stopped, []string{"b"}) {
		t.Fatalf("reload disabling b: %+v, %v", r, err)
	}
	if got := k.chains(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("chains after disabling b: %v", got)
	}
	if _, err := d.Ban(control.BanRequest{Jail: "a", Target: "203.0.113.0/24"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "manual prefix ban", func() bool { return k.has("a", "203.0.113.0/24") })
	if _, err := d.Ban(control.BanRequest{Jail: "a", Target: "127.0.0.1"}); !errors.Is(err, control.ErrBadRequest) {
		t.Fatalf("manual ban of an ignored address: %v", err)
	}
	if _, err := d.Ban(control.BanRequest{Jail: "nope", Target: "192.0.2.1"}); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("ban in an unknown jail: %v", err)
	}
	u, err := d.Unban(control.UnbanRequest{Target: "203.0.113.0/24"})
	if err != nil || len(u.Unbanned) != 1 {
		t.Fatalf("unban: %+v %v", u, err)
	}
	eventually(t, "manual unban", func() bool { return !k.has("a", "203.0.113.0/24") })
	if _, err := d.Unban(control.UnbanRequest{Target: "203.0.113.9"}); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("unban of an address not banned: %v", err)
	}

	// Stop removes every chain.
	must(t, d.Stop())
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no stop")
	}
	if got := k.chains(); len(got) != 0 {
		t.Fatalf("chains left after stop: %v", got)
	}
}

func TestBrokenJailReportedOthersRun(t *testing.T) {
	dir, _ := setup(t, map[string]string{
		"a.conf":   "[a]\nenabled = true\nfilter = t\nlogpath = %(logs)s/a.log\n",
		"bad.conf": "[bad]\nenabled = true\nfilter = t\nlogpath = %(logs)s/b.log\nfindtime = soon\n",
		"nof.conf": "[nofilter]\nenabled = true\nfilter = missing\nlogpath = %(logs)s/c.log\n",
	})
	k := newKernel()
	d, done := start(t, dir, k)
	waitReady(t, d, done)
	st, err := d.Status("")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Jails) != 1 || st.Jails[0].Name != "a" {
		t.Fatalf("running jails %+v", st.Jails)
	}
	if len(st.Broken) != 2 || st.Broken[0].Name != "bad" || st.Broken[1].Name != "nofilter" {
		t.Fatalf("broken %+v", st.Broken)
	}
	if !strings.Contains(strings.Join(st.Broken[0].Errors, " "), "bad.conf:5") {
		t.Fatalf("broken jail error names no file:line: %v", st.Broken[0].Errors)
	}
	if _, err := d.Status("bad"); err != nil {
		t.Fatalf("status of a broken jail: %v", err)
	}
	if got := k.chains(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("chains %v", got)
	}
}

func TestNoJailCanStart(t *testing.T) {
	dir, _ := setup(t, map[string]string{
		"bad.conf": "[bad]\nenabled = true\nfilter = t\nlogpath = %(logs)s/b.log\nmaxretry = x\n",
	})
	d := New(Options{ConfigDir: dir, NewBackend: func(s BackendSpec, _ *slog.Logger) (action.Backend, error) {
		return &fakeBackend{k: newKernel(), jail: s.Opts.Jail}, nil
	}})
	err := d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no jail can start") || !strings.Contains(err.Error(), "bad.conf:5") {
		t.Fatalf("Run: %v", err)
	}
}

// A restart resumes each log where the previous run stopped counting (failures written while
// it was down count, those it counted already do not count again) and restores the bans in
// force with their end.
func TestRestartResumesLogsAndBans(t *testing.T) {
	dir, logs := setup(t, map[string]string{
		"a.conf": "[a]\nenabled = true\nfilter = t\nlogpath = %(logs)s/a.log\n",
	})
	state := filepath.Join(t.TempDir(), "state")
	log := filepath.Join(logs, "a.log")
	k := newKernel()
	d, done, stop := startAt(t, dir, state, k)
	waitReady(t, d, done)
	appendLines(t, log, "fail from 192.0.2.7", "fail from 192.0.2.7",
		"fail from 198.51.100.9", "fail from 198.51.100.9", "fail from 198.51.100.9")
	eventually(t, "two failures and a ban", func() bool {
		st, _ := d.Status("a")
		return len(st.Jails) == 1 && st.Jails[0].Failures == 5 && st.Jails[0].Banned == 1
	})
	before, _ := d.Banned("a")
	stop()

	appendLines(t, log, "fail from 192.0.2.7") // while down: counts once the daemon is back
	k2 := newKernel()
	d, done, _ = startAt(t, dir, state, k2)
	waitReady(t, d, done)
	eventually(t, "the failure written while down counted", func() bool {
		st, _ := d.Status("a")
		return len(st.Jails) == 1 && st.Jails[0].Failures == 1
	})
	ex, _ := d.Explain("192.0.2.7")
	if ex.Jails[0].Failures != 1 || ex.Jails[0].Ban != nil {
		t.Errorf("192.0.2.7 after the restart: %+v; want 1 failure (the two before it were counted by the first run) and no ban", ex.Jails[0])
	}
	after, _ := d.Banned("a")
	if len(after.Bans) != 1 || after.Bans[0].Target != "198.51.100.9" || !after.Bans[0].End.Equal(*before.Bans[0].End) ||
		!after.Bans[0].Start.Equal(before.Bans[0].Start) {
		t.Fatalf("bans after the restart %+v, want %+v", after.Bans, before.Bans)
	}
	eventually(t, "the restored ban in the new kernel", func() bool { return k2.has("a", "198.51.100.9") })
	if st, _ := d.Status("a"); st.State == "" || st.Jails[0].LinesRead != 1 {
		t.Errorf("status: state %q, %d lines read; want the database named and 1 line read", st.State, st.Jails[0].LinesRead)
	}
}

// A corrupt state database is moved aside, loudly, and the daemon starts with an empty one.
func TestCorruptStateMovedAside(t *testing.T) {
	dir, _ := setup(t, map[string]string{
		"a.conf": "[a]\nenabled = true\nfilter = t\nlogpath = %(logs)s/a.log\n",
	})
	state := filepath.Join(t.TempDir(), "state")
	must(t, os.MkdirAll(state, 0o700))
	must(t, os.WriteFile(filepath.Join(state, StateFile), []byte("this is no SQLite database, just garbage\n"), 0o600))
	d, done, _ := startAt(t, dir, state, newKernel())
	waitReady(t, d, done)
	st, err := d.Status("")
	if err != nil || st.State != filepath.Join(state, StateFile) || st.StateError != "" {
		t.Fatalf("status: state %q, error %q, %v; want the new database", st.State, st.StateError, err)
	}
	aside, _ := filepath.Glob(filepath.Join(state, StateFile+".corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("moved aside: %v, want one logjail.db.corrupt-<time>", aside)
	}
	if b, _ := os.ReadFile(aside[0]); !strings.HasPrefix(string(b), "this is no SQLite") {
		t.Errorf("the file moved aside is not the old one: %q", b)
	}
	if _, err := d.Ban(control.BanRequest{Jail: "a", Target: "192.0.2.1"}); err != nil {
		t.Errorf("a ban with the new database: %v", err)
	}
}

// A jail that a reload restarts stays in status throughout: the old one (stopped) is listed
// until the new one runs.
func TestRestartKeepsJailListed(t *testing.T) {
	dir, _ := setup(t, map[string]string{
		"a.conf": "[a]\nenabled = true\nfilter = t\nlogpath = %(logs)s/a.log\n",
	})
	d, done := start(t, dir, newKernel())
	waitReady(t, d, done)
	stop := make(chan struct{})
	missing := make(chan string, 1)
	go func() {
		for {
			select {
			case <-stop:
				close(missing)
				return
			default:
			}
			st, err := d.Status("")
			if err != nil || len(st.Jails) != 1 {
				missing <- fmt.Sprintf("%+v, %v", st, err)
				close(missing)
				return
			}
		}
	}()
	for i := range 30 {
		must(t, os.WriteFile(filepath.Join(dir, "jail.d", "a.local"), []byte(fmt.Sprintf("[a]\nmaxretry = %d\n", 2+i%2)), 0o644))
		if r, err := d.Reload(""); err != nil || !slices.Equal(r.Restarted, []string{"a"}) {
			t.Fatalf("reload %d: %+v, %v", i, r, err)
		}
	}
	close(stop)
	if m, ok := <-missing; ok {
		t.Errorf("status during a restart: %s; want jail a listed", m)
	}
	must(t, d.Stop())
	<-done
}
