// Package daemon is logjail's server: it reads the configuration, runs one jail per enabled
// section and the ban manager behind them, answers the control socket (it implements
// control.Service) and reloads without losing what runs.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/clock"
	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/jail"
	"github.com/logjail/logjail/internal/store"
)

// StateFile is the state database's name in the state directory.
const StateFile = "logjail.db"

// purgeEvery is how often the history older than dbpurgeage is deleted.
const purgeEvery = time.Hour

// Options configure a Daemon.
type Options struct {
	ConfigDir string
	StateDir  string
	Version   string
	Logger    *slog.Logger
	Clock     clock.Clock
	// NewBackend makes a jail's ban backend; default NewIPTables. Tests give a fake.
	NewBackend func(BackendSpec, *slog.Logger) (action.Backend, error)
	// Ban configures the ban manager; Clock and Logger are filled in from above.
	Ban ban.Options
	// Jail configures every jail; Clock and Logger are filled in from above.
	Jail jail.Options
	// StopTimeout bounds the removal of the firewall state at stop.
	StopTimeout time.Duration
	// KeepOnStop leaves every jail's rules in the kernel at stop, for the next start to adopt
	// (server --keep-on-stop): the bans hold throughout a restart. The next start reconciles
	// them with the state database either way.
	KeepOnStop bool
}

// Daemon is one running logjail server.
type Daemon struct {
	o       Options
	log     *slog.Logger
	mgr     *ban.Manager
	started time.Time
	// st is the state database under StateDir; nil without one (no StateDir, or it could not
	// be opened: stErr says why, and bans then do not survive a restart).
	st    *store.Store
	stErr error
	// purgeAge is the configuration's dbpurgeage (a time.Duration; 0: never purge).
	purgeAge atomic.Int64

	reloadMu sync.Mutex // one reload at a time

	mu     sync.Mutex
	jails  map[string]*runningJail
	broken map[string][]string // enabled jails that could not start, and why

	stopOnce sync.Once
	stopCh   chan struct{}
	ready    chan struct{}
}

// runningJail is a jail with its goroutine.
type runningJail struct {
	b      *builtJail
	j      *jail.Jail
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Daemon; Run starts it.
func New(o Options) *Daemon {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.NewBackend == nil {
		o.NewBackend = NewIPTables
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
	}
	o.Ban.Clock, o.Ban.Logger = o.Clock, o.Logger
	o.Jail.Clock, o.Jail.Logger = o.Clock, o.Logger
	// Every start adopts what the kernel holds and reconciles it with the state database:
	// after a stop that kept the rules, or a crash, no ban is lifted and put back.
	o.Ban.Executor.KeepOnStart = true
	o.Ban.Executor.KeepOnStop = o.KeepOnStop
	var st *store.Store
	var stErr error
	if o.StateDir != "" && o.Ban.Store == nil {
		path := filepath.Join(o.StateDir, StateFile)
		if st, stErr = store.Open(path, store.Options{Logger: o.Logger, Clock: o.Clock}); stErr == nil {
			o.Ban.Store = st
		}
	}
	return &Daemon{
		o:       o,
		st:      st,
		stErr:   stErr,
		log:     o.Logger,
		mgr:     ban.New(o.Ban),
		jails:   map[string]*runningJail{},
		broken:  map[string][]string{},
		started: o.Clock.Now(),
		stopCh:  make(chan struct{}),
		ready:   make(chan struct{}),
	}
}

// Ready is closed once the first configuration has been applied and every jail that can run
// is running.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Run loads the configuration, starts every enabled jail that can run and serves until ctx is
// done or Stop is called; then it stops the jails and removes what the backends made. It
// returns an error when no jail can run.
func (d *Daemon) Run(ctx context.Context) error {
	if d.o.StateDir != "" {
		if err := os.MkdirAll(d.o.StateDir, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	cfg, diags := config.Load(d.o.ConfigDir)
	if cfg == nil {
		return fmt.Errorf("configuration %s: %w", d.o.ConfigDir, diags.Err())
	}
	d.logDiags(diags)
	d.purgeAge.Store(int64(purgeAge(cfg)))
	if d.stErr != nil {
		d.log.Error("no state database: bans will not survive a restart", "err", d.stErr)
	}
	if d.st != nil {
		defer func() {
			if err := d.st.Close(); err != nil {
				d.log.Error("close the state database", "err", err)
			}
		}()
	}

	mgrCtx, mgrCancel := context.WithCancel(context.WithoutCancel(ctx))
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- d.mgr.Run(mgrCtx) }()
	stopMgr := func() error {
		mgrCancel()
		select {
		case err := <-mgrDone:
			return err
		case <-time.After(d.o.StopTimeout + 5*time.Second):
			return errors.New("ban manager did not stop in time")
		}
	}

	enabled := 0
	for _, jc := range cfg.Jails {
		if !jc.Enabled {
			continue
		}
		enabled++
		b, errs := buildJail(jc, diags)
		if errs != nil {
			d.markBroken(jc.Name, errs)
			continue
		}
		if err := d.startJail(ctx, b, true); err != nil {
			d.markBroken(jc.Name, []string{err.Error()})
		}
	}
	d.mu.Lock()
	running := len(d.jails)
	var brokenMsgs []string
	for name, errs := range d.broken {
		brokenMsgs = append(brokenMsgs, fmt.Sprintf("[%s] %s", name, strings.Join(errs, "; ")))
	}
	d.mu.Unlock()
	if running == 0 {
		_ = stopMgr()
		if enabled == 0 {
			return fmt.Errorf("no enabled jail in %s", d.o.ConfigDir)
		}
		sort.Strings(brokenMsgs)
		return fmt.Errorf("no jail can start:\n  %s", strings.Join(brokenMsgs, "\n  "))
	}
	d.log.Info("logjail started", "jails", running, "broken", len(brokenMsgs), "config", d.o.ConfigDir)
	d.endOrphans()
	trimAfterStart(d.log)
	close(d.ready)
	// Beside the jails until the daemon stops: the history purge, and the GC tuning (which an
	// explicit GOGC turns off).
	_, envGOGC := os.LookupEnv("GOGC")
	for _, loop := range []func(context.Context){
		d.purgeLoop,
		func(ctx context.Context) { gcTune(ctx, envGOGC) },
	} {
		loopCtx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			loop(loopCtx)
		}()
		defer func() {
			cancel()
			<-done
		}()
	}

	select {
	case <-ctx.Done():
	case <-d.stopCh:
	}
	d.log.Info("logjail stopping")
	d.reloadMu.Lock() // no reload while stopping
	defer d.reloadMu.Unlock()
	d.mu.Lock()
	jails := make([]*runningJail, 0, len(d.jails))
	for _, r := range d.jails {
		jails = append(jails, r)
	}
	d.mu.Unlock()
	for _, r := range jails {
		r.cancel()
	}
	for _, r := range jails {
		<-r.done
	}
	err := stopMgr()
	d.log.Info("logjail stopped")
	return err
}

// startJail registers b with the ban manager (starting its backend) and starts its goroutine;
// resume: see newJail.
func (d *Daemon) startJail(ctx context.Context, b *builtJail, resume bool) error {
	be, err := d.o.NewBackend(b.backend, d.log) // the backend names its jail itself
	if err != nil {
		return fmt.Errorf("action %s: %w", b.backend.Action, err)
	}
	sctx, cancel := context.WithTimeout(ctx, d.o.StopTimeout)
	defer cancel()
	if err := d.mgr.SetJail(sctx, b.banSpec, be); err != nil {
		return fmt.Errorf("action %s: %w", b.backend.Action, err)
	}
	j, err := d.newJail(b.spec, resume)
	if err != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), d.o.StopTimeout)
		defer rcancel()
		_ = d.mgr.RemoveJail(rctx, b.spec.Name)
		return err
	}
	d.run(b, j)
	for _, w := range b.warnings {
		d.log.Warn(w, "jail", b.spec.Name)
	}
	d.log.Info("jail started", "jail", b.spec.Name, "filter", b.spec.FilterName, "logpath", strings.Join(b.spec.LogPaths, " "),
		"maxretry", b.spec.MaxRetry, "findtime", b.spec.FindTime, "bantime", b.banSpec.BanTime)
	return nil
}

// run starts j's goroutine and records it as running.
func (d *Daemon) run(b *builtJail, j *jail.Jail) {
	jctx, cancel := context.WithCancel(context.Background())
	r := &runningJail{b: b, j: j, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := j.Run(jctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("jail stopped with an error", "jail", b.spec.Name, "err", err)
		}
	}()
	d.mu.Lock()
	d.jails[b.spec.Name] = r
	delete(d.broken, b.spec.Name)
	d.mu.Unlock()
}

func (d *Daemon) markBroken(name string, errs []string) {
	for _, e := range errs {
		d.log.Error("jail not started", "jail", name, "err", e)
	}
	d.mu.Lock()
	d.broken[name] = errs
	d.mu.Unlock()
}

func (d *Daemon) logDiags(diags config.Diags) {
	for _, dg := range diags {
		if dg.Severity == config.Error {
			d.log.Error(dg.String())
		} else {
			d.log.Warn(dg.String())
		}
	}
}

// Stop asks Run to stop; it returns at once.
func (d *Daemon) Stop() error {
	d.stopOnce.Do(func() { close(d.stopCh) })
	return nil
}

// jail returns the running jail of that name.
func (d *Daemon) jail(name string) (*runningJail, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.jails[name]
	return r, ok
}

// runningJails returns the running jails sorted by name.
func (d *Daemon) runningJails() []*runningJail {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*runningJail, 0, len(d.jails))
	for _, r := range d.jails {
		out = append(out, r)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].b.spec.Name < out[k].b.spec.Name })
	return out
}

// endOrphans ends, in the state database, the bans in force of jails that are neither running
// nor broken: jails removed from the configuration or disabled while the daemon was down. A
// broken jail keeps its bans for when it is fixed.
func (d *Daemon) endOrphans() {
	if d.st == nil {
		return
	}
	bans, err := d.st.ActiveBans()
	if err != nil {
		d.log.Error("read the bans in force", "err", err)
		return
	}
	d.mu.Lock()
	keep := make(map[string]bool, len(d.jails)+len(d.broken))
	for name := range d.jails {
		keep[name] = true
	}
	for name := range d.broken {
		keep[name] = true
	}
	d.mu.Unlock()
	now := d.o.Clock.Now()
	ended := map[string]int{}
	for _, b := range bans {
		if keep[b.Jail] {
			continue
		}
		ended[b.Jail]++
		d.st.EndBanAsync(b.Jail, b.Target, now, ban.ReasonJailRemoved, nil)
	}
	for name, n := range ended {
		d.log.Warn("bans of a jail that is no longer configured or enabled ended in the state database; "+
			"a chain it left in the firewall (server --keep-on-stop) is not removed", "jail", name, "bans", n,
			"chain", "lj-"+name)
	}
}

// purgeAge is how long the history is kept: the longest dbpurgeage of any jail (a jail's
// history is one table); 0: never purged.
func purgeAge(cfg *config.Config) time.Duration {
	var age time.Duration
	for _, j := range cfg.Jails {
		a := time.Duration(j.DBPurgeAge)
		if j.DBPurgeAge == config.Forever {
			return 0
		}
		age = max(age, a)
	}
	return age
}

// purgeLoop deletes the history older than dbpurgeage now and every purgeEvery.
func (d *Daemon) purgeLoop(ctx context.Context) {
	if d.st == nil {
		return
	}
	for {
		if age := time.Duration(d.purgeAge.Load()); age > 0 {
			n, err := d.st.Purge(d.o.Clock.Now().Add(-age))
			switch {
			case err != nil:
				d.log.Error("purge the ban history", "err", err)
			case n > 0:
				d.log.Info("ban history purged", "bans", n, "older_than", age)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.o.Clock.After(purgeEvery):
		}
	}
}

// newJail makes a jail of spec that saves its read positions in the state database. With resume
// (the daemon's start) it reads each log on from its saved position: nothing the previous run
// counted is counted again. A jail (re)started by a reload reads the end of its logs again
// instead (the backlog), which rebuilds the counts its previous incarnation had: failures from
// before a ban's start never extend it, and the old counts are gone with the old jail.
func (d *Daemon) newJail(spec jail.Spec, resume bool) (*jail.Jail, error) {
	o := d.o.Jail
	if d.st != nil && o.Positions == nil {
		o.Positions = jailPositions{st: d.st, jail: spec.Name, noResume: !resume}
	}
	return jail.New(spec, d.mgr, o)
}

// jailPositions keeps one jail's positions in the store, under keys of its own: two jails that
// follow one file (sshd and a second sshd-mode jail on auth.log) each resume where they
// themselves stopped.
type jailPositions struct {
	st       *store.Store
	jail     string
	noResume bool // save, but answer every lookup with "none saved"
}

// key is "jail:path"; a jail name never holds ':' (iptables.CheckJailName).
func (p jailPositions) key(path string) string { return p.jail + ":" + path }

func (p jailPositions) Position(path string) (store.Position, bool, error) {
	if p.noResume {
		return store.Position{}, false, nil
	}
	return p.st.Position(p.key(path))
}

func (p jailPositions) SavePositionAsync(path string, pos store.Position, done func(error)) {
	p.st.SavePositionAsync(p.key(path), pos, done)
}
