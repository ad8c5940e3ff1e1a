//go:build linux

package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/logjail/logjail/internal/action"
)

// bridgeComment marks the stand-in jump that StartKeep puts at the top of the
// parent chain while it removes duplicates of the real one (see StartKeep). A
// bridge left by a crash is a jump to our chain with the wrong match, and the
// next StartKeep or Start removes it like any other.
const bridgeComment = "logjail-bridge"

// maxReported bounds the rules that one StartKeep or List names in the log,
// one line each; the rest are counted.
const maxReported = 10

// StartKeep is Start without the flush: it adopts the chain and the jump an
// earlier run left (Stop with StopKeep, or a crash), so that the bans in it
// hold throughout a restart. In each family it reads our chain and the
// parent chain (iptables -S, once each; it creates our chain if it is
// missing) and brings them to this state:
//
//   - our chain holds every ban rule in the form Ban writes now, once: an
//     exact duplicate goes; a ban rule in the form of other options
//     (blocktype DROP where REJECT is configured now, a tcp jail that was a
//     udp one) is rewritten where it stands; any other rule in the chain goes
//     (the chain is ours, and such a rule would only punch a hole, or ban
//     what nobody asked for);
//   - the parent chain holds exactly one jump to our chain, with the
//     configured match, at the top: preceded by nothing but jumps (-j) to
//     other chains named ChainPrefix* (logjail's other jails, whose chains
//     never accept a packet). Jumps to our chain with another match (an
//     earlier configuration's ports) go. Rules that do not jump to our chain
//     are never touched.
//
// A chain in order costs the two listings and nothing else, whatever the
// number of bans. More than one change is made in one iptables-restore
// --noflush: one transaction, in which our chain is written again whole, so
// that no packet sees a state in between and the cost does not grow with the
// number of changes (see restore). If iptables-restore fails (missing, or
// too old for --wait=N), StartKeep reads both chains again and makes the
// changes one call at a time, in an order that keeps every ban enforced at
// every moment: a rewritten ban's new rule goes in before the old one is
// deleted; a missing jump is inserted at position 1; a jump that is
// duplicated, or below another rule, is fixed by inserting a stand-in with
// the same match (plus a comment) at position 1, deleting every copy of the
// jump, inserting the jump at position 1 and deleting the stand-in (rules
// are deleted by their spec, which hits the first match; deleting by
// position could hit a rule another program inserted meanwhile); the other
// jumps go last. That way costs one call per change (about 2 s each with
// iptables-nft and 100,000 rules).
//
// A rule whose spec needs quoting (a comment with spaces) cannot be deleted
// one call at a time; it is logged and left then, like removeJumps does.
//
// If a step fails, StartKeep returns the error and leaves things as they
// are: no step removes a ban or the way to it before its replacement is in,
// so the bans found are still enforced. The backend does not count as
// started then, and StartKeep may be called again.
func (b *Backend) StartKeep(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	fams, err := b.newFamilies()
	if err != nil {
		return err
	}
	var adopted []any
	for _, f := range fams {
		n, err := b.keepFamily(ctx, f)
		if err != nil {
			return err
		}
		adopted = append(adopted, f.name, n)
	}
	b.startCutter()
	b.fams = fams
	b.log.Info("started, keeping the bans in the kernel", append([]any{"chain", b.cfg.chain, "parent", b.cfg.parent, "jump", strings.Join(b.cfg.jump, " ")}, adopted...)...)
	return nil
}

// StopKeep leaves the chain, its jump and its ban rules in the kernel, for
// the next StartKeep to adopt (server --keep-on-stop), and makes the backend
// count as stopped. It makes no kernel call and cannot fail.
func (b *Backend) StopKeep(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fams == nil {
		return nil
	}
	b.stopCutter()
	b.fams = nil
	b.log.Info("stopped, the bans stay in the kernel", "chain", b.cfg.chain)
	return nil
}

// List reads the jail's chain in each family (iptables -S, one call per
// family) and returns the target of every ban rule in the form Ban writes
// under the current options, once, sorted with action.Target.Compare.
// Other rules (another blocktype, a foreign rule, a duplicate) are left out
// and logged at Warn; StartKeep removes or rewrites them.
func (b *Backend) List(ctx context.Context) ([]action.Target, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fams == nil {
		return nil, fmt.Errorf("list: %w", action.ErrNotStarted)
	}
	var out []action.Target
	for _, f := range b.fams {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list: %s: %w", f.name, err)
		}
		lines, err := f.ipt.List(table, b.cfg.chain)
		if err != nil {
			return nil, fmt.Errorf("list: %s: list %s: %w", f.name, b.cfg.chain, err)
		}
		seen := make(map[netip.Prefix]bool, len(lines))
		skipped := 0
		for _, r := range b.readChain(f, lines) {
			if r.kind == ruleBan && !seen[r.target.Prefix] {
				seen[r.target.Prefix] = true
				out = append(out, r.target)
				continue
			}
			if skipped++; skipped <= maxReported {
				b.log.Warn("rule in our chain left out of the list", "family", f.name, "rule", r.line, "why", r.kind.String())
			}
		}
		if skipped > maxReported {
			b.log.Warn("more rules in our chain left out of the list", "family", f.name, "count", skipped-maxReported)
		}
	}
	slices.SortFunc(out, action.Target.Compare)
	return out, nil
}

// ruleKind says what a rule of our chain is to StartKeep and List.
type ruleKind uint8

const (
	// ruleBan is a ban rule exactly as Ban writes it now.
	ruleBan ruleKind = iota
	// ruleDuplicate is a ruleBan whose target came earlier in the chain.
	ruleDuplicate
	// ruleOldBan is a ban rule in the form of other options (banTails).
	ruleOldBan
	// ruleForeign is any other rule: not written by this backend.
	ruleForeign
)

func (k ruleKind) String() string {
	switch k {
	case ruleBan:
		return "ban rule"
	case ruleDuplicate:
		return "duplicate ban rule"
	case ruleOldBan:
		return "ban rule of other options"
	}
	return "not a ban rule of ours"
}

// chainRule is one rule of our chain, as read by readChain.
type chainRule struct {
	line   string
	spec   []string // the words after "-A chain": what Delete takes
	kind   ruleKind
	target action.Target // ruleBan, ruleDuplicate and ruleOldBan
	quoted bool          // the spec needs quoting: Delete cannot take it
}

// readChain classifies the rules in lines, the output of iptables -S of our
// chain in family f. Lines that are not rules of the chain ("-N chain", a
// warning) are dropped.
func (b *Backend) readChain(f *family, lines []string) []chainRule {
	cur := strings.Join(b.banTail(f), " ")
	tails := banTails(f)
	seen := make(map[netip.Prefix]bool, len(lines))
	rules := make([]chainRule, 0, len(lines))
	for _, line := range lines {
		words := ruleFields(line)
		if len(words) < 2 || words[0] != "-A" || words[1] != b.cfg.chain {
			continue
		}
		r := chainRule{line: line, spec: words[2:], kind: ruleForeign, quoted: strings.ContainsAny(line, "\"'\\")}
		if t, tail, ok := parseBan(r.spec, f.v6); ok && !r.quoted {
			r.target = t
			switch {
			case tail == cur && seen[t.Prefix]:
				r.kind = ruleDuplicate
			case tail == cur:
				r.kind = ruleBan
				seen[t.Prefix] = true
			case slices.Contains(tails, tail):
				r.kind = ruleOldBan
			}
		}
		rules = append(rules, r)
	}
	return rules
}

// parseBan reads spec, the words of one rule of our chain, as a ban rule:
// "-s PREFIX" and a tail. It fails unless PREFIX is a valid target of the
// family (iptables prints it masked and with its length).
func parseBan(spec []string, v6 bool) (t action.Target, tail string, ok bool) {
	if len(spec) < 4 || spec[0] != "-s" {
		return action.Target{}, "", false
	}
	p, err := netip.ParsePrefix(spec[1])
	if err != nil {
		return action.Target{}, "", false
	}
	t = action.Target{Prefix: p}
	if t.Validate() != nil || t.Is6() != v6 {
		return action.Target{}, "", false
	}
	return t, strings.Join(spec[2:], " "), true
}

// ruleFields splits one line of iptables -S into words, without the
// "-c PKTS BYTES" that go-iptables moves to the end of a line in nftables
// mode.
func ruleFields(line string) []string {
	f := strings.Fields(line)
	if n := len(f); n >= 3 && f[n-3] == "-c" {
		f = f[:n-3]
	}
	return f
}

// keepFamily is StartKeep in one family; it returns the number of bans the
// chain holds afterwards.
func (b *Backend) keepFamily(ctx context.Context, f *family) (int, error) {
	p, err := b.planFamily(ctx, f)
	if err != nil {
		return 0, err
	}
	if len(p.changes) == 0 {
		if p.quoted > 0 {
			p.report(b, f, false)
		}
		f.applied = p.have
		return p.bans, nil
	}
	if len(p.changes) > 1 {
		err := b.restore(ctx, f, &p)
		if err == nil {
			p.report(b, f, true)
			f.applied = p.have
			return p.bans, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return 0, fmt.Errorf("%s: %w", f.name, cerr)
		}
		// The batch is one transaction, so it most likely changed nothing;
		// but read the tables again rather than trust that.
		b.log.Warn("iptables-restore failed: repairing with one call per change", "family", f.name, "changes", len(p.changes), "err", err)
		if p, err = b.planFamily(ctx, f); err != nil {
			return 0, err
		}
	}
	for _, ch := range p.changes {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("%s: %w", f.name, err)
		}
		var err error
		if ch.insert {
			err = f.ipt.Insert(table, ch.chain, 1, ch.spec...)
		} else if err = f.ipt.Delete(table, ch.chain, ch.spec...); isNotExist(err) {
			err = nil // gone already
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", f.name, ch.what, err)
		}
	}
	p.report(b, f, false)
	f.applied = p.have
	return p.bans, nil
}

// change is one rule to insert at position 1 of a chain, or to delete by
// its spec (the first rule that matches).
type change struct {
	insert bool
	chain  string
	spec   []string
	what   string // for errors: "rewrite ...", "delete duplicate ..."
	// standIn marks the insertion and deletion of the stand-in jump, which
	// only calls made one at a time need.
	standIn bool
}

// plan is what StartKeep has to do in one family, worked out from one
// listing of our chain and one of the parent chain.
type plan struct {
	bans int // ban rules in our chain once the plan is carried out
	// have holds their targets: once the plan is carried out, the family's
	// applied set, so that Ban and Unban after StartKeep need no check call.
	have    map[netip.Prefix]struct{}
	changes []change
	// chain is every rule our chain is to hold, in order, when the chain
	// needs a change: iptables-restore rewrites it whole; nil when it
	// needs none.
	chain [][]string

	// For the log.
	created                        bool
	rewritten, duplicates, foreign int
	quoted                         int      // quoted rules: not removed one call at a time
	removed                        []string // the first maxReported foreign rules
	jump                           string
	otherJumps                     []string // jumps to our chain with another match
}

// planFamily reads our chain (creating it if it is missing) and the parent
// chain in family f, and works out the changes StartKeep makes, in the order
// that keeps every ban enforced when they are made one at a time:
// rewritten bans first go in, then the old forms, duplicates and foreign
// rules go out; then the jumps are fixed (see StartKeep). It also works out
// our chain's new content for iptables-restore.
func (b *Backend) planFamily(ctx context.Context, f *family) (plan, error) {
	c := b.cfg
	var p plan
	if err := ctx.Err(); err != nil {
		return p, fmt.Errorf("%s: %w", f.name, err)
	}
	lines, err := f.ipt.List(table, c.chain)
	if err != nil {
		// iptables-nft does not say "does not exist" for a missing chain
		// (1.8.9: "chain `x' in table `filter' is incompatible"), so any
		// error sends us to create it; if that fails too, both are told.
		if cerr := f.ipt.NewChain(table, c.chain); cerr != nil {
			return p, fmt.Errorf("%s: list chain %s: %w; create it: %w", f.name, c.chain, err, cerr)
		}
		p.created = true
		b.log.Info("created chain", "family", f.name, "chain", c.chain)
	}
	b.planChain(f, lines, &p)
	if err := ctx.Err(); err != nil {
		return p, fmt.Errorf("%s: %w", f.name, err)
	}
	parent, err := f.ipt.List(table, c.parent)
	if err != nil {
		return p, fmt.Errorf("%s: list %s: %w", f.name, c.parent, err)
	}
	b.planJumps(f, parent, &p)
	return p, nil
}

// planChain adds to p what brings our chain to one current ban rule per
// target.
func (b *Backend) planChain(f *family, lines []string, p *plan) {
	c := b.cfg
	rules := b.readChain(f, lines)
	have := make(map[netip.Prefix]struct{}, len(rules))
	for _, r := range rules {
		if r.kind == ruleBan {
			have[r.target.Prefix] = struct{}{}
		}
	}
	var (
		deletes []change
		final   = make([][]string, 0, len(rules))
	)
	for _, r := range rules {
		switch r.kind {
		case ruleBan:
			final = append(final, r.spec)
			continue
		case ruleDuplicate:
			p.duplicates++
		case ruleOldBan:
			if _, ok := have[r.target.Prefix]; !ok {
				spec := b.banRule(f, r.target)
				p.changes = append(p.changes, change{insert: true, chain: c.chain, spec: spec, what: fmt.Sprintf("rewrite %q: insert the new form", r.line)})
				final = append(final, spec)
				have[r.target.Prefix] = struct{}{}
			}
			p.rewritten++
		case ruleForeign:
			if p.foreign++; p.foreign <= maxReported {
				p.removed = append(p.removed, r.line)
			}
			if r.quoted {
				p.quoted++
				continue // Delete cannot take it; iptables-restore's flush can
			}
		}
		deletes = append(deletes, change{chain: c.chain, spec: r.spec, what: fmt.Sprintf("delete %s %q", r.kind, r.line)})
	}
	p.changes = append(p.changes, deletes...)
	if len(final) < len(rules) || len(p.changes) > 0 {
		p.chain = final
	}
	p.bans, p.have = len(have), have
}

// planJumps adds to p what leaves exactly one jump to our chain, with the
// configured match, at the top of the parent chain (see StartKeep).
func (b *Backend) planJumps(f *family, lines []string, p *plan) {
	c := b.cfg
	want := strings.Join(c.jump, " ")
	var (
		exact  int        // copies of our jump
		atTop  bool       // the first copy comes before any rule but jumps to ChainPrefix* chains
		others [][]string // specs of the other jumps to our chain
		top    = true     // no rule so far but jumps to ChainPrefix* chains
	)
	for _, line := range lines {
		spec, ours := jumpSpec(line, c.parent, c.chain)
		switch {
		case ours && strings.ContainsAny(line, "\"'\\"):
			b.log.Warn("cannot remove a quoted jump to our chain", "family", f.name, "rule", line)
		case ours && strings.Join(spec, " ") == want:
			if exact++; exact == 1 && top {
				atTop = true
			}
		case ours:
			others = append(others, spec)
		case isRule(line, c.parent) && !jumpsToJail(line):
			top = false
		}
	}
	into := " into " + c.parent
	switch {
	case exact == 0:
		p.changes = append(p.changes, change{insert: true, chain: c.parent, spec: c.jump, what: "insert jump to " + c.chain + into})
		p.jump = "inserted"
	case exact > 1 || !atTop:
		bridge := append(slices.Clone(c.jump[:len(c.jump)-2]), "-m", "comment", "--comment", bridgeComment, "-j", c.chain)
		p.changes = append(p.changes, change{insert: true, chain: c.parent, spec: bridge, what: "insert stand-in jump" + into, standIn: true})
		for range exact {
			p.changes = append(p.changes, change{chain: c.parent, spec: c.jump, what: "delete jump to " + c.chain + " from " + c.parent})
		}
		p.changes = append(p.changes,
			change{insert: true, chain: c.parent, spec: c.jump, what: "insert jump to " + c.chain + into},
			change{chain: c.parent, spec: bridge, what: "delete stand-in jump from " + c.parent, standIn: true})
		p.jump = fmt.Sprintf("moved to the top (%d copies, first at the top: %v)", exact, atTop)
	}
	for _, spec := range others {
		p.changes = append(p.changes, change{chain: c.parent, spec: spec, what: "delete jump " + strings.Join(spec, " ") + " from " + c.parent})
		p.otherJumps = append(p.otherJumps, strings.Join(spec, " "))
	}
}

// report logs what a carried-out plan changed; batch says it was made by
// iptables-restore.
func (p *plan) report(b *Backend, f *family, batch bool) {
	how, left := "one call per change", p.quoted
	if batch {
		how, left = "iptables-restore", 0
	}
	for _, r := range p.removed {
		if !batch && strings.ContainsAny(r, "\"'\\") {
			b.log.Warn("cannot remove a quoted rule from our chain", "family", f.name, "rule", r)
			continue
		}
		b.log.Warn("removed a rule from our chain that is not a ban rule of ours", "family", f.name, "rule", r)
	}
	if n := p.foreign - len(p.removed); n > 0 {
		b.log.Warn("more rules in our chain that are not ban rules of ours", "family", f.name, "count", n, "removed", batch)
	}
	for _, j := range p.otherJumps {
		b.log.Info("removed a jump to our chain with another match", "family", f.name, "parent", b.cfg.parent, "rule", j)
	}
	b.log.Info("repaired what an earlier run left", "family", f.name, "chain", b.cfg.chain, "how", how, "changes", len(p.changes), "bans", p.bans,
		"chain_created", p.created, "rewritten", p.rewritten, "duplicates_removed", p.duplicates, "foreign_removed", p.foreign-left, "left", left, "jump", p.jump)
}

// restore carries out p in one iptables-restore --noflush: one transaction,
// so that no packet ever sees a state in between, and one process however
// many rules change. Our chain, when it needs a change, is flushed and
// written again whole (-F, then -A for each rule in its order, an old form
// replaced by the new one where it stood): iptables-nft looks a rule to
// delete up by going through the chain, so deleting k rules costs k times
// the chain (300 deletions in a chain of 100,000 rules took 5 s, rewriting
// all 100,000 took 1.5 s). The changes to the parent chain follow, as in p.
func (b *Backend) restore(ctx context.Context, f *family, p *plan) error {
	var in strings.Builder
	in.WriteString("*" + table + "\n")
	if p.chain != nil {
		in.WriteString("-F " + b.cfg.chain + "\n")
		for _, spec := range p.chain {
			in.WriteString("-A " + b.cfg.chain + " " + strings.Join(spec, " ") + "\n")
		}
	}
	for _, ch := range p.changes {
		if ch.chain == b.cfg.chain || ch.standIn {
			continue // written whole above; no stand-in within a transaction
		}
		if ch.insert {
			in.WriteString("-I " + ch.chain + " 1 " + strings.Join(ch.spec, " ") + "\n")
		} else {
			in.WriteString("-D " + ch.chain + " " + strings.Join(ch.spec, " ") + "\n")
		}
	}
	in.WriteString("COMMIT\n")
	out, err := b.deps.restore(ctx, f.v6, b.cfg.lockWait, []byte(in.String()))
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isRule reports whether line of iptables -S chain is a rule ("-A chain").
func isRule(line, chain string) bool {
	return strings.HasPrefix(line, "-A "+chain+" ")
}

// jumpsToJail reports whether a rule line jumps (-j) to a chain named
// ChainPrefix*: logjail's, whose rules only reject or drop.
func jumpsToJail(line string) bool {
	f := ruleFields(line)
	n := len(f)
	return n >= 2 && f[n-2] == "-j" && strings.HasPrefix(f[n-1], ChainPrefix)
}
