package daemon

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/control"
)

// Reload reads the configuration again and applies it: new jails start, removed or disabled
// ones stop (their bans are lifted with their chain), changed ones restart, and unchanged ones
// keep running with their bans and counters. A configuration with an error in any enabled
// jail is rejected as a whole, with every error, and what runs stays as it is. With a jail
// name, only that jail is considered.
func (d *Daemon) Reload(name string) (*control.ReloadReply, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	select {
	case <-d.stopCh:
		return nil, fmt.Errorf("%w: the daemon is stopping", control.ErrBadRequest)
	case <-d.ready:
	default:
		return nil, fmt.Errorf("%w: the daemon is still starting", control.ErrBadRequest)
	}
	cfg, diags := config.Load(d.o.ConfigDir)
	if cfg == nil {
		return nil, fmt.Errorf("%w: configuration rejected, the running one stays: %v", control.ErrBadRequest, diags.Err())
	}

	built := map[string]*builtJail{}
	var errs []string
	known := false
	for _, jc := range cfg.Jails {
		if name != "" && jc.Name != name {
			continue
		}
		known = true
		if !jc.Enabled {
			continue
		}
		b, e := buildJail(jc, diags)
		if e != nil {
			errs = append(errs, e...)
			continue
		}
		built[jc.Name] = b
	}
	if name != "" && !known {
		if _, ok := d.jail(name); !ok {
			return nil, fmt.Errorf("%w: no jail %q in %s", control.ErrNotFound, name, d.o.ConfigDir)
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		d.log.Error("reload rejected: the running configuration stays", "errors", len(errs))
		for _, e := range errs {
			d.log.Error(e)
		}
		return nil, fmt.Errorf("%w: configuration rejected, the running one stays:\n  %s", control.ErrBadRequest, strings.Join(errs, "\n  "))
	}
	d.logDiags(warningsOnly(diags))
	if name == "" {
		d.purgeAge.Store(int64(purgeAge(cfg)))
	}

	reply := &control.ReloadReply{}
	ctx := context.Background()
	for _, r := range d.runningJails() {
		jn := r.b.spec.Name
		if name != "" && jn != name {
			continue
		}
		nb, ok := built[jn]
		switch {
		case !ok:
			d.stopJail(ctx, r)
			reply.Stopped = append(reply.Stopped, jn)
			d.log.Info("jail stopped: no longer enabled", "jail", jn)
		case nb.fp == r.b.fp:
			reply.Unchanged = append(reply.Unchanged, jn)
		default:
			if err := d.restartJail(ctx, r, nb); err != nil {
				reply.Warnings = append(reply.Warnings, fmt.Sprintf("[%s] %v", jn, err))
				d.markBroken(jn, []string{err.Error()})
				continue
			}
			reply.Restarted = append(reply.Restarted, jn)
		}
		delete(built, jn)
	}
	var names []string
	for n := range built {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := d.startJail(ctx, built[n], false); err != nil {
			reply.Warnings = append(reply.Warnings, fmt.Sprintf("[%s] %v", n, err))
			d.markBroken(n, []string{err.Error()})
			continue
		}
		reply.Started = append(reply.Started, n)
	}
	// Broken jails that are no longer enabled are no longer broken.
	d.mu.Lock()
	for n := range d.broken {
		if name != "" && n != name {
			continue
		}
		still := false
		for _, jc := range cfg.Jails {
			if jc.Name == n && jc.Enabled {
				still = true
			}
		}
		if !still {
			delete(d.broken, n)
		}
	}
	d.mu.Unlock()
	d.log.Info("reloaded", "started", reply.Started, "stopped", reply.Stopped, "restarted", reply.Restarted, "unchanged", len(reply.Unchanged))
	return reply, nil
}

// stopJail stops r's goroutine and removes its backend and bans.
func (d *Daemon) stopJail(ctx context.Context, r *runningJail) {
	r.cancel()
	<-r.done
	d.mu.Lock()
	delete(d.jails, r.b.spec.Name)
	d.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, d.o.StopTimeout)
	defer cancel()
	if err := d.mgr.RemoveJail(rctx, r.b.spec.Name); err != nil {
		d.log.Warn("jail removal", "jail", r.b.spec.Name, "err", err)
	}
}

// restartJail replaces r by nb: a new jail goroutine, the ban manager's spec updated, and a new
// backend only when the action changed (the manager then applies the bans in force again).
// Until the new jail runs, status shows the old one (stopped): the jail never vanishes from it.
func (d *Daemon) restartJail(ctx context.Context, r *runningJail, nb *builtJail) error {
	r.cancel()
	<-r.done
	var err error
	sctx, cancel := context.WithTimeout(ctx, d.o.StopTimeout)
	defer cancel()
	if nb.actionFP != r.b.actionFP {
		nbe, e := d.o.NewBackend(nb.backend, d.log)
		if e != nil {
			err = fmt.Errorf("action %s: %w", nb.backend.Action, e)
		} else {
			err = d.mgr.SetJail(sctx, nb.banSpec, nbe)
		}
	} else {
		err = d.mgr.SetJail(sctx, nb.banSpec, nil)
	}
	if err != nil {
		// The old backend keeps the bans in force; run the old jail again so nothing is lost.
		d.runAgain(r)
		return err
	}
	j, err := d.newJail(nb.spec, false)
	if err != nil {
		d.runAgain(r)
		return err
	}
	d.run(nb, j)
	d.log.Info("jail restarted with its new configuration", "jail", nb.spec.Name)
	return nil
}

// runAgain runs the stopped jail r again, with its old configuration, after a failed restart;
// if even that fails, it is no longer listed as running.
func (d *Daemon) runAgain(r *runningJail) {
	if j, err := d.newJail(r.b.spec, false); err == nil {
		d.run(r.b, j)
		return
	}
	d.mu.Lock()
	if d.jails[r.b.spec.Name] == r {
		delete(d.jails, r.b.spec.Name)
	}
	d.mu.Unlock()
}

func warningsOnly(ds config.Diags) config.Diags {
	var out config.Diags
	for _, d := range ds {
		if d.Severity != config.Error {
			out = append(out, d)
		}
	}
	return out
}
