//go:build linux

package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/logjail/logjail/internal/action"
)

// table is the only netfilter table the backend touches.
const table = "filter"

// ipt is the part of *iptables.IPTables (go-iptables) the backend uses; unit
// tests put a recording fake in its place (STYLE rule 12).
//
// InsertUnique is Exists then Insert, not atomic: that is safe only because
// one goroutine makes all calls for a chain (action.Executor), and because
// nothing but this backend writes into the chain.
type ipt interface {
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
	ClearAndDeleteChain(table, chain string) error
	Insert(table, chain string, pos int, rule ...string) error
	InsertUnique(table, chain string, pos int, rule ...string) error
	Delete(table, chain string, rule ...string) error
	DeleteIfExists(table, chain string, rule ...string) error
	List(table, chain string) ([]string, error)
}

var (
	_ ipt            = (*goipt.IPTables)(nil)
	_ action.Backend = (*Backend)(nil)
	_ action.Keeper  = (*Backend)(nil)
	_ action.Lister  = (*Backend)(nil)

	_ netlink.CustomConntrackFilter = (*srcFilter)(nil)
)

// deps are the backend's ways out of the process; tests replace them.
type deps struct {
	// newIPT builds the handle of one address family; called by Start.
	newIPT func(v6 bool, lockWait int) (ipt, error)
	// cut deletes the conntrack entries of family fam ("ipv4" or "ipv6") whose original
	// source is in one of prefixes, in one walk of the table, and returns how many it
	// deleted. It may give up when ctx ends.
	cut func(ctx context.Context, fam string, prefixes []netip.Prefix) (uint, error)
	// services is the services(5) file for port names.
	services string
	// syncCut cuts on the ban's own call, in order (the golden tests), instead of on the
	// backend's cutter goroutine.
	syncCut bool
	// restore feeds input to iptables-restore --noflush (ip6tables-restore
	// when v6), waiting at most lockWait seconds for the xtables lock, and
	// returns its combined output.
	restore func(ctx context.Context, v6 bool, lockWait int, input []byte) ([]byte, error)
}

func realDeps() deps {
	return deps{
		newIPT: func(v6 bool, lockWait int) (ipt, error) {
			proto := goipt.ProtocolIPv4
			if v6 {
				proto = goipt.ProtocolIPv6
			}
			// Timeout turns --wait (forever) into --wait N.
			return goipt.New(goipt.IPFamily(proto), goipt.Timeout(lockWait))
		},
		cut:      netlinkCut,
		services: DefaultServicesFile,
		restore: func(ctx context.Context, v6 bool, lockWait int, input []byte) ([]byte, error) {
			name := "iptables-restore"
			if v6 {
				name = "ip6tables-restore"
			}
			// --wait=N: in the short form, legacy's optional argument
			// would not take a separate "N".
			cmd := exec.CommandContext(ctx, name, "--noflush", "--wait="+strconv.Itoa(lockWait))
			cmd.Stdin = bytes.NewReader(input)
			return cmd.CombinedOutput()
		},
	}
}

// Backend bans through one iptables chain per jail (and one ip6tables chain
// when IPv6 is on). It is safe for concurrent use, but meant to be driven by
// one action.Executor.
type Backend struct {
	cfg  config
	log  *slog.Logger
	deps deps

	mu   sync.Mutex
	fams []*family // IPv4 first, then IPv6; nil when not started
	cut  *cutter   // cuts connections off the ban path; nil when not started, off or syncCut

	// failed counts the cut walks that failed since the last warning, failWarned is when that
	// was: without nf_conntrack_netlink every walk of a flood fails. Touched only by whoever
	// cuts: the cutter goroutine, or Ban under mu with syncCut.
	failed     int
	failWarned time.Time
}

// cutter cuts the established connections of banned targets on a goroutine of its own. The
// ban rule is in before the cut is asked for, and our jump is the first rule of the parent
// chain, so the packets of established connections already meet the rule: the cut only frees
// their entries and ends connections that an ACCEPT in front of our jump would let through.
// Finding a target's entries means walking the whole conntrack table, about 13 ms of kernel
// time however few entries it holds (the walk visits every bucket of the hash): so the cutter
// takes every cut waiting at once and walks each family's table once for all of them. On the
// ban's own call a walk would hold up the next ban that long.
type cutter struct {
	ch     chan cutReq
	cancel context.CancelFunc
	done   chan struct{}
	// skipped counts the cuts dropped on a full queue since the last warning, warned is when
	// that was: a start that puts back a hundred thousand bans would log each. Guarded by
	// Backend.mu.
	skipped int
	warned  time.Time
}

// cutWarnEvery bounds the warnings of skipped and failed cuts.
const cutWarnEvery = 10 * time.Second

type cutReq struct {
	fam string
	p   netip.Prefix
}

// cutQueue bounds the cuts waiting; beyond it a cut is skipped and logged.
const cutQueue = 4096

// cutTimeout bounds each wait for the kernel's answer during a walk.
const cutTimeout = 10 * time.Second

// startCutter starts the cutter goroutine when Conntrack is on. Called with b.mu held.
func (b *Backend) startCutter() {
	if !b.cfg.conntrack || b.deps.syncCut || b.cut != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cutter{ch: make(chan cutReq, cutQueue), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var batch []cutReq
		for {
			select {
			case <-ctx.Done():
				return
			case r := <-c.ch:
				batch = append(batch[:0], r)
			}
			// No waiting for more: the first cut of a burst goes at once, and the rest
			// queue up behind its walk and go together in the next.
			for more := true; more; {
				select {
				case r := <-c.ch:
					batch = append(batch, r)
				default:
					more = false
				}
			}
			b.cutBatch(ctx, batch)
		}
	}()
	b.cut = c
}

// stopCutter stops the cutter; cuts still waiting are dropped. Called with b.mu held.
func (b *Backend) stopCutter() {
	if b.cut == nil {
		return
	}
	b.cut.cancel()
	<-b.cut.done
	b.cut = nil
}

// family is one address family's handle and its REJECT type.
type family struct {
	name   string // "ipv4" or "ipv6", also conntrack's -f argument
	v6     bool
	ipt    ipt
	reject string
	// applied holds the targets whose ban rule this backend put in its chain since Start
	// flushed it, so that Ban and Unban need no "iptables -C" first (a check that walks the
	// whole chain, slower with every ban). StartKeep sets it to the bans it adopted. nil
	// only before a start: then each call checks first.
	applied map[netip.Prefix]struct{}
}

// New checks opts and returns a Backend that has not touched the kernel yet:
// Start does. A nil logger discards.
func New(opts Options, logger *slog.Logger) (*Backend, error) {
	return newBackend(opts, logger, realDeps())
}

func newBackend(opts Options, logger *slog.Logger, d deps) (*Backend, error) {
	cfg, err := opts.compile(d.services)
	if err != nil {
		return nil, fmt.Errorf("iptables backend: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Backend{
		cfg:  cfg,
		log:  logger.With("backend", "iptables", "jail", cfg.jail),
		deps: d,
	}, nil
}

// Name returns "iptables".
func (b *Backend) Name() string { return "iptables" }

// Start creates (or flushes) the jail's chain in each family, removes every
// jump to it from the parent chain, leftovers of a crash included, and
// inserts one jump at the top of the parent chain. If a step fails, Start
// undoes what it did and returns the error.
func (b *Backend) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	fams, err := b.newFamilies()
	if err != nil {
		return err
	}
	for i, f := range fams {
		if err := b.startFamily(ctx, f); err != nil {
			var undo []error
			for _, g := range fams[:i+1] {
				undo = append(undo, b.stopFamily(context.WithoutCancel(ctx), g))
			}
			if uerr := errors.Join(undo...); uerr != nil {
				return errors.Join(err, fmt.Errorf("undo start: %w", uerr))
			}
			return err
		}
	}
	for _, f := range fams {
		f.applied = map[netip.Prefix]struct{}{} // the chain was flushed: nothing is banned
	}
	b.startCutter()
	b.fams = fams
	b.log.Info("started", "chain", b.cfg.chain, "parent", b.cfg.parent, "jump", strings.Join(b.cfg.jump, " "))
	return nil
}

// newFamilies builds the handle of each address family, IPv4 first.
func (b *Backend) newFamilies() ([]*family, error) {
	fams := []*family{{name: "ipv4", reject: "icmp-port-unreachable"}}
	if b.cfg.ipv6 {
		fams = append(fams, &family{name: "ipv6", v6: true, reject: "icmp6-port-unreachable"})
	}
	for _, f := range fams {
		h, err := b.deps.newIPT(f.v6, b.cfg.lockWait)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", f.name, err)
		}
		f.ipt = h
	}
	return fams, nil
}

func (b *Backend) startFamily(ctx context.Context, f *family) error {
	c := b.cfg
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	if err := f.ipt.ClearChain(table, c.chain); err != nil {
		return fmt.Errorf("%s: create or flush chain %s: %w", f.name, c.chain, err)
	}
	if err := b.removeJumps(ctx, f); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	if err := f.ipt.InsertUnique(table, c.parent, 1, c.jump...); err != nil {
		return fmt.Errorf("%s: insert jump to %s into %s: %w", f.name, c.chain, c.parent, err)
	}
	return nil
}

// Stop deletes the jump(s) to the jail's chain and then the chain, in each
// family. It goes on with the other family after an error, and returns them
// all; after an error the backend counts as started, so Stop can be retried.
func (b *Backend) Stop(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fams == nil {
		return nil
	}
	b.stopCutter()
	var errs []error
	for _, f := range b.fams {
		if err := b.stopFamily(ctx, f); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("stop: %w", errors.Join(errs...))
	}
	b.fams = nil
	b.log.Info("stopped", "chain", b.cfg.chain)
	return nil
}

func (b *Backend) stopFamily(ctx context.Context, f *family) error {
	c := b.cfg
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	// A missing parent chain (DOCKER-USER after docker went away) or chain
	// leaves no jump to delete.
	if err := f.ipt.DeleteIfExists(table, c.parent, c.jump...); err != nil && !isNotExist(err) {
		return fmt.Errorf("%s: delete jump to %s from %s: %w", f.name, c.chain, c.parent, err)
	}
	if err := b.removeJumps(ctx, f); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	if err := f.ipt.ClearAndDeleteChain(table, c.chain); err != nil {
		return fmt.Errorf("%s: delete chain %s: %w", f.name, c.chain, err)
	}
	return nil
}

// removeJumps deletes every rule of the parent chain that jumps to our chain,
// whatever its matches: a duplicate left by a crash, or the jump of an earlier
// configuration (other ports). Such rules are ours: the chain name says so.
//
// The rules are read with iptables -S and deleted by their spec, not their
// position, so that a rule another program inserts meanwhile is never hit.
// It cannot remove a jump whose spec needs quoting (a comment with spaces),
// which logjail never writes; such a rule is logged and left, and then keeps
// the chain from being deleted.
func (b *Backend) removeJumps(ctx context.Context, f *family) error {
	c := b.cfg
	lines, err := f.ipt.List(table, c.parent)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("%s: list %s: %w", f.name, c.parent, err)
	}
	for _, line := range lines {
		spec, ours := jumpSpec(line, c.parent, c.chain)
		if !ours {
			continue
		}
		if strings.ContainsAny(line, "\"'\\") {
			b.log.Warn("cannot remove a quoted jump to our chain", "family", f.name, "rule", line)
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := f.ipt.Delete(table, c.parent, spec...); err != nil && !isNotExist(err) {
			return fmt.Errorf("%s: delete leftover jump %q: %w", f.name, line, err)
		}
		b.log.Info("removed leftover jump", "family", f.name, "rule", line)
	}
	return nil
}

// jumpSpec reports whether line, one line of iptables -S parent, is a rule
// that jumps (-j) or goes (-g) to chain, and returns its spec for Delete.
func jumpSpec(line, parent, chain string) (spec []string, ours bool) {
	f := strings.Fields(line)
	// In nftables mode go-iptables moves "[pkts:bytes]" to a trailing "-c P B".
	if n := len(f); n >= 3 && f[n-3] == "-c" {
		f = f[:n-3]
	}
	n := len(f)
	if n < 4 || f[0] != "-A" || f[1] != parent || f[n-1] != chain || (f[n-2] != "-j" && f[n-2] != "-g") {
		return nil, false
	}
	return f[2:], true
}

// isNotExist reports whether err says a chain or rule does not exist
// (*iptables.Error's IsNotExist; the test fake has the same method).
func isNotExist(err error) bool {
	var e interface{ IsNotExist() bool }
	return errors.As(err, &e) && e.IsNotExist()
}

// Ban inserts "-s ADDR -j REJECT|DROP" at the top of the jail's chain unless
// it is there, then, with Conntrack on, deletes the address's
// connection-tracking entries.
func (b *Backend) Ban(ctx context.Context, t action.Target) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.family(t)
	if err != nil {
		return fmt.Errorf("ban %v: %w", t, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ban %v: %w", t, err)
	}
	return b.banOne(ctx, f, t)
}

// banOne inserts t's rule unless it is there, then asks for its connections to be cut.
// Called with b.mu held.
func (b *Backend) banOne(ctx context.Context, f *family, t action.Target) error {
	if f.applied == nil {
		if err := f.ipt.InsertUnique(table, b.cfg.chain, 1, b.banRule(f, t)...); err != nil {
			return fmt.Errorf("ban %v: %s: insert into %s: %w", t, f.name, b.cfg.chain, err)
		}
	} else {
		if _, ok := f.applied[t.Prefix]; ok {
			return nil
		}
		if err := f.ipt.Insert(table, b.cfg.chain, 1, b.banRule(f, t)...); err != nil {
			return fmt.Errorf("ban %v: %s: insert into %s: %w", t, f.name, b.cfg.chain, err)
		}
		f.applied[t.Prefix] = struct{}{}
	}
	b.cut1(ctx, f, t)
	return nil
}

// cut1 asks for t's established connections to be cut (with Conntrack on): on the cutter
// goroutine, or in order on this call in tests. Called with b.mu held.
func (b *Backend) cut1(ctx context.Context, f *family, t action.Target) {
	if !b.cfg.conntrack {
		return
	}
	r := cutReq{fam: f.name, p: t.Prefix}
	if b.cut == nil {
		b.cutBatch(ctx, []cutReq{r})
		return
	}
	select {
	case b.cut.ch <- r:
	default:
		c := b.cut
		c.skipped++
		if now := time.Now(); now.Sub(c.warned) >= cutWarnEvery {
			b.log.Warn("conntrack queue full: established connections of these targets are not cut",
				"target", t, "skipped", c.skipped)
			c.skipped, c.warned = 0, now
		}
	}
}

func (b *Backend) Unban(ctx context.Context, t action.Target) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.family(t)
	if err != nil {
		return fmt.Errorf("unban %v: %w", t, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("unban %v: %w", t, err)
	}
	if f.applied == nil {
		if err := f.ipt.DeleteIfExists(table, b.cfg.chain, b.banRule(f, t)...); err != nil {
			return fmt.Errorf("unban %v: %s: delete from %s: %w", t, f.name, b.cfg.chain, err)
		}
		return nil
	}
	if _, ok := f.applied[t.Prefix]; !ok {
		return nil
	}
	if err := f.ipt.Delete(table, b.cfg.chain, b.banRule(f, t)...); err != nil && !isNotExist(err) {
		return fmt.Errorf("unban %v: %s: delete from %s: %w", t, f.name, b.cfg.chain, err)
	}
	delete(f.applied, t.Prefix)
	return nil
}

func (b *Backend) family(t action.Target) (*family, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if b.fams == nil {
		return nil, action.ErrNotStarted
	}
	if !t.Is6() {
		return b.fams[0], nil
	}
	if !b.cfg.ipv6 {
		return nil, fmt.Errorf("%w: IPv6 is off for this jail", action.ErrUnsupportedTarget)
	}
	return b.fams[1], nil
}

// banRule is the rule that bans t: "-s PREFIX" and then banTail.
func (b *Backend) banRule(f *family, t action.Target) []string {
	return append([]string{"-s", t.Prefix.String()}, b.banTail(f)...)
}

// banTail is what follows "-s PREFIX" in a ban rule under the current
// options; see BlockReject for the REJECT type. It is one of banTails.
func (b *Backend) banTail(f *family) []string {
	switch {
	case b.cfg.block == BlockDrop:
		return []string{"-j", "DROP"}
	case b.cfg.protocol == TCP:
		return []string{"-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"}
	}
	return []string{"-j", "REJECT", "--reject-with", f.reject}
}

// banTails lists every tail banTail can return in family f, under any
// options: the shapes of ban rules this backend writes or has written.
func banTails(f *family) []string {
	return []string{
		"-j DROP",
		"-p tcp -j REJECT --reject-with tcp-reset",
		"-j REJECT --reject-with " + f.reject,
	}
}

// cutBatch cuts the connections of every target in batch: one walk of the conntrack table per
// address family. Best effort: the bans are in place whatever happens here, so failures are
// logged, not returned.
func (b *Backend) cutBatch(ctx context.Context, batch []cutReq) {
	seen := make(map[netip.Prefix]bool, len(batch))
	for _, fam := range []string{"ipv4", "ipv6"} {
		var ps []netip.Prefix
		for _, r := range batch {
			if r.fam == fam && !seen[r.p] {
				seen[r.p] = true
				ps = append(ps, r.p)
			}
		}
		if len(ps) == 0 {
			continue
		}
		if ctx.Err() != nil {
			b.log.Debug("connection cuts abandoned at stop", "family", fam, "targets", len(ps))
			continue
		}
		flows, err := b.deps.cut(ctx, fam, ps)
		switch {
		case err == nil && flows == 0:
			b.log.Debug("no connections to cut", "family", fam, "targets", len(ps))
		case err == nil:
			b.log.Info("cut connections", "family", fam, "targets", len(ps), "flows", flows)
		case ctx.Err() != nil:
			// Stopping: the walk was given up with the daemon's shutdown, not refused.
			b.log.Debug("connection cuts abandoned at stop", "family", fam, "targets", len(ps), "flows", flows, "err", err)
		default:
			b.failed++
			if now := time.Now(); now.Sub(b.failWarned) >= cutWarnEvery {
				b.log.Warn("conntrack cut failed: established connections of banned targets are not cut",
					"family", fam, "targets", len(ps), "flows", flows, "failures", b.failed, "err", err)
				b.failed, b.failWarned = 0, now
			}
		}
	}
}

// netlinkCut is deps.cut over netlink (ctnetlink, nf_conntrack_netlink): the dump and the
// deletes that "conntrack -D" would make, without its process. It opens a handle for each
// walk, in the network namespace the process is in then: a socket costs nothing next to the
// walk, and none stays open between bursts or after a reload. The walk does not watch ctx;
// cutTimeout bounds each wait for the kernel.
func netlinkCut(_ context.Context, fam string, prefixes []netip.Prefix) (uint, error) {
	h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	if err := h.SetSocketTimeout(cutTimeout); err != nil {
		return 0, err
	}
	family := netlink.InetFamily(unix.AF_INET)
	if fam == "ipv6" {
		family = unix.AF_INET6
	}
	return h.ConntrackDeleteFilters(netlink.ConntrackTable, family, newSrcFilter(prefixes))
}

// srcFilter matches the conntrack entries whose original source is in one of its prefixes.
// It looks the source up once per distinct prefix length instead of testing each prefix, so
// that a batch of thousands of bans costs the walk about what one does (the walk applies the
// filter to every entry of the table).
type srcFilter struct {
	set  map[netip.Prefix]struct{}
	bits []int // the distinct lengths in set
}

func newSrcFilter(ps []netip.Prefix) *srcFilter {
	f := &srcFilter{set: make(map[netip.Prefix]struct{}, len(ps))}
	for _, p := range ps {
		f.set[p.Masked()] = struct{}{}
		if !slices.Contains(f.bits, p.Bits()) {
			f.bits = append(f.bits, p.Bits())
		}
	}
	return f
}

func (f *srcFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	a, ok := netip.AddrFromSlice(flow.Forward.SrcIP)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, n := range f.bits {
		if p, err := a.Prefix(n); err == nil {
			if _, ok := f.set[p]; ok {
				return true
			}
		}
	}
	return false
}

var _ action.Batcher = (*Backend)(nil)

// BanBatch bans many targets with one iptables-restore --noflush transaction per address
// family: all of a family's new rules go in together or not at all. Targets already banned
// are skipped. After an adopting start (StartKeep), when the backend does not know what its
// chain holds, or without a restore command, it bans one target at a time, as Ban does.
func (b *Backend) BanBatch(ctx context.Context, ts []action.Target) []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := make([]error, len(ts))
	type pending struct {
		idx  []int
		seen map[netip.Prefix]bool
		in   strings.Builder
	}
	byFam := map[*family]*pending{}
	for i, t := range ts {
		f, err := b.family(t)
		if err != nil {
			errs[i] = fmt.Errorf("ban %v: %w", t, err)
			continue
		}
		if f.applied == nil || b.deps.restore == nil {
			errs[i] = b.banOne(ctx, f, t)
			continue
		}
		if _, ok := f.applied[t.Prefix]; ok {
			continue
		}
		p := byFam[f]
		if p == nil {
			p = &pending{seen: map[netip.Prefix]bool{}}
			p.in.WriteString("*" + table + "\n")
			byFam[f] = p
		}
		if p.seen[t.Prefix] {
			continue
		}
		p.seen[t.Prefix] = true
		p.idx = append(p.idx, i)
		p.in.WriteString("-I " + b.cfg.chain + " 1 " + strings.Join(b.banRule(f, t), " ") + "\n")
	}
	for _, f := range b.fams {
		p := byFam[f]
		if p == nil {
			continue
		}
		p.in.WriteString("COMMIT\n")
		var err error
		if err = ctx.Err(); err == nil {
			var out []byte
			if out, err = b.deps.restore(ctx, f.v6, b.cfg.lockWait, []byte(p.in.String())); err != nil {
				err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
			}
		}
		for _, i := range p.idx {
			if err != nil {
				errs[i] = fmt.Errorf("ban %v: %s: restore into %s: %w", ts[i], f.name, b.cfg.chain, err)
				continue
			}
			f.applied[ts[i].Prefix] = struct{}{}
			b.cut1(ctx, f, ts[i])
		}
	}
	// A target given twice in one batch was banned with its first copy.
	for i, t := range ts {
		if errs[i] != nil {
			continue
		}
		for j := 0; j < i; j++ {
			if ts[j].Prefix == t.Prefix {
				errs[i] = errs[j]
				break
			}
		}
	}
	return errs
}
