package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/control"
)

var _ control.Service = (*Daemon)(nil)

// parseTarget is control.ParseTarget, which also refuses /0: it would ban every address.
func parseTarget(s string) (netip.Prefix, error) {
	p, err := control.ParseTarget(strings.TrimSpace(s))
	if err == nil && p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%w: %q would ban every address", control.ErrBadRequest, s)
	}
	return p, err
}

func wireBan(b ban.Ban) control.Ban {
	c := control.Ban{
		Jail:     b.Jail,
		Target:   action.Target{Prefix: b.Target}.String(),
		Start:    b.Start,
		Manual:   b.Manual,
		Failures: b.Failures,
		Lines:    b.Lines,
		Applied:  b.Applied,
		Error:    b.Err,
		Count:    b.Count,

		Neighbourhood: b.Neighbourhood(),
	}
	if !b.End.IsZero() {
		e := b.End
		c.End = &e
	}
	return c
}

// Banned lists the bans in force, of one jail or all.
func (d *Daemon) Banned(name string) (*control.BannedReply, error) {
	if name != "" {
		if _, ok := d.jail(name); !ok {
			return nil, d.noJail(name)
		}
	}
	bans := d.mgr.Bans(name)
	out := &control.BannedReply{Bans: make([]control.Ban, 0, len(bans))}
	for _, b := range bans {
		out.Bans = append(out.Bans, wireBan(b))
	}
	return out, nil
}

func (d *Daemon) noJail(name string) error {
	d.mu.Lock()
	errs, broken := d.broken[name]
	d.mu.Unlock()
	if broken {
		return fmt.Errorf("%w: jail %s is not running: %s", control.ErrNotFound, name, strings.Join(errs, "; "))
	}
	return fmt.Errorf("%w: no running jail %q", control.ErrNotFound, name)
}

// Ban bans a target by hand.
func (d *Daemon) Ban(req control.BanRequest) (*control.BanReply, error) {
	if _, ok := d.jail(req.Jail); !ok {
		return nil, d.noJail(req.Jail)
	}
	p, err := parseTarget(req.Target)
	if err != nil {
		return nil, err
	}
	o := ban.Order{Jail: req.Jail, Target: p, Time: d.o.Clock.Now(), Manual: true, Force: req.Force}
	switch {
	case req.For < 0:
		o.For = config.Forever
	case req.For > 0:
		o.For = time.Duration(req.For)
	}
	b, err := d.mgr.Ban(o)
	if err != nil {
		var ie *ban.IgnoredError
		if errors.As(err, &ie) {
			hint := ""
			if !req.Force && !strings.Contains(ie.Reason, "own address") {
				hint = " (--force bans it anyway)"
			}
			return nil, fmt.Errorf("%w: refused: %s is ignored: %s%s", control.ErrBadRequest, req.Target, ie.Reason, hint)
		}
		if errors.Is(err, ban.ErrUnknownJail) {
			return nil, fmt.Errorf("%w: %v", control.ErrNotFound, err)
		}
		return nil, err
	}
	return &control.BanReply{Ban: wireBan(b)}, nil
}

// Unban lifts bans by hand.
func (d *Daemon) Unban(req control.UnbanRequest) (*control.UnbanReply, error) {
	if req.Jail != "" {
		if _, ok := d.jail(req.Jail); !ok {
			return nil, d.noJail(req.Jail)
		}
	}
	var lifted []ban.Ban
	if req.All {
		if req.Target != "" {
			return nil, fmt.Errorf("%w: --all takes no address", control.ErrBadRequest)
		}
		lifted = d.mgr.UnbanAll(req.Jail)
	} else {
		p, err := parseTarget(req.Target)
		if err != nil {
			return nil, err
		}
		lifted, err = d.mgr.Unban(req.Jail, p)
		if err != nil {
			if errors.Is(err, ban.ErrNotBanned) {
				where := "any jail"
				if req.Jail != "" {
					where = "jail " + req.Jail
				}
				msg := fmt.Sprintf("%s is not banned in %s", req.Target, where)
				if p.IsSingleIP() {
					if b, ok := d.mgr.Lookup(req.Jail, p.Addr()); ok {
						msg += fmt.Sprintf("; it is inside the banned prefix %s (jail %s): unban that", b.Target, b.Jail)
					}
				}
				return nil, fmt.Errorf("%w: %s", control.ErrNotFound, msg)
			}
			return nil, err
		}
	}
	out := &control.UnbanReply{Unbanned: make([]control.Ban, 0, len(lifted))}
	for _, b := range lifted {
		out.Unbanned = append(out.Unbanned, wireBan(b))
	}
	return out, nil
}

// Explain says what every running jail knows about one address.
func (d *Daemon) Explain(s string) (*control.ExplainReply, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %q is no address", control.ErrBadRequest, s)
	}
	a = a.Unmap().WithZone("")
	out := &control.ExplainReply{Addr: a.String()}
	for _, r := range d.runningJails() {
		name := r.b.spec.Name
		e := r.j.Explain(a)
		je := control.JailExplain{
			Jail:     name,
			Failures: e.Failures,
			MaxRetry: r.b.spec.MaxRetry,
			FindTime: control.Duration(r.b.spec.FindTime),
			Times:    e.Times,
			Lines:    e.Lines,
		}
		if !e.ResetsAt.IsZero() {
			t := e.ResetsAt
			je.ResetsAt = &t
		}
		if why, ok := d.mgr.Ignored(name, a); ok {
			je.Ignored, je.IgnoredWhy = true, why
		}
		if b, ok := d.mgr.Lookup(name, a); ok {
			wb := wireBan(b)
			je.Ban = &wb
		}
		out.Jails = append(out.Jails, je)
	}
	return out, nil
}

// Status reports the daemon and its jails.
func (d *Daemon) Status(name string) (*control.StatusReply, error) {
	out := &control.StatusReply{Version: d.o.Version, PID: os.Getpid(), Started: d.started, Config: d.o.ConfigDir}
	select {
	case <-d.ready:
	default:
		out.Starting = true
	}
	if d.st != nil {
		out.State = d.st.Path()
	} else if d.stErr != nil {
		out.StateError = d.stErr.Error()
	}
	found := false
	for _, r := range d.runningJails() {
		if name != "" && r.b.spec.Name != name {
			continue
		}
		found = true
		out.Jails = append(out.Jails, d.jailStatus(r))
	}
	d.mu.Lock()
	for n, errs := range d.broken {
		if name != "" && n != name {
			continue
		}
		found = true
		out.Broken = append(out.Broken, control.BrokenJail{Name: n, Errors: append([]string(nil), errs...)})
	}
	d.mu.Unlock()
	sort.Slice(out.Broken, func(i, k int) bool { return out.Broken[i].Name < out.Broken[k].Name })
	if name != "" && !found {
		return nil, fmt.Errorf("%w: no jail %q", control.ErrNotFound, name)
	}
	return out, nil
}

// jailStatus merges what the jail and the ban manager know of one running jail.
func (d *Daemon) jailStatus(r *runningJail) control.JailStatus {
	s := r.j.Status()
	bs := d.mgr.Stats(s.Name)
	js := control.JailStatus{
		Name:          s.Name,
		Filter:        s.Filter,
		LinesRead:     s.LinesRead,
		LinesNoDate:   s.LinesNoDate,
		LinesSkipped:  s.LinesSkipped,
		LinesInvalid:  s.LinesInvalid,
		Failures:      s.Failures,
		IgnoredUser:   s.IgnoredUser,
		Tracked:       s.Tracked,
		Evicted:       s.Evicted,
		Banned:        bs.Banned,
		TotalBanned:   bs.TotalBanned,
		Refused:       bs.Refused,
		AlreadyBanned: s.AlreadyBanned,

		Repeat:         bs.Repeat,
		Neighbourhoods: bs.Neighbourhoods,
		MaxRetry:       s.MaxRetry,
		FindTime:       control.Duration(s.FindTime),
		BanTime:        control.Duration(r.b.banSpec.BanTime),
		Warnings:       append(append([]string(nil), r.b.warnings...), s.Warnings...),
		Errors:         append([]string(nil), s.Errors...),
	}
	if !bs.NextEnd.IsZero() {
		t := bs.NextEnd
		js.NextUnban = &t
	}
	if !s.LastFailure.IsZero() {
		t := s.LastFailure
		js.LastFailure = &t
	}
	if bs.LastError != "" {
		js.Errors = append(js.Errors, fmt.Sprintf("action: %s (%d failed calls)", bs.LastError, bs.ActionErrors))
	}
	for _, f := range s.Files {
		js.Files = append(js.Files, control.FileStatus{
			Path: f.Path, Exists: f.Exists, Lines: f.Lines, Bytes: f.Bytes, Offset: f.Offset,
			Rotations: f.Rotations, Truncations: f.Truncations, CutLines: f.CutLines, Error: f.Error,
		})
	}
	return js
}
