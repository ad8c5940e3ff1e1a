//go:build linux

package iptables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/logjail/logjail/internal/action"
)

// fakeErr is what the fake returns; like *iptables.Error it can say
// "does not exist".
type fakeErr struct {
	msg      string
	notExist bool
}

func (e *fakeErr) Error() string    { return e.msg }
func (e *fakeErr) IsNotExist() bool { return e.notExist }
func notExist(what string) *fakeErr { return &fakeErr{msg: what + " does not exist", notExist: true} }
func fakeFail(format string, a ...any) *fakeErr {
	return &fakeErr{msg: fmt.Sprintf(format, a...)}
}

// recorder collects the calls of both families and of the conntrack cut,
// in order.
type recorder struct {
	mu    sync.Mutex // for the cutter goroutine (asyncCut); other tests read lines directly
	lines []string
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, a...))
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// fakeIPT records every call and simulates the filter table of one family
// closely enough for the backend: chains, rule order, references, and the
// errors iptables gives for missing chains and rules.
type fakeIPT struct {
	fam     string
	rec     *recorder
	builtin []string            // built-in (and pre-existing foreign) chains, in order
	user    []string            // user chains, in creation order
	rules   map[string][]string // chain -> rule specs joined by " "
	// changed, when set, is called after every call that changed the
	// table, with that call's record line.
	changed func(call string)
}

// record adds a call to the recorder and returns its line.
func (f *fakeIPT) record(format string, a ...any) string {
	l := f.fam + " " + fmt.Sprintf(format, a...)
	f.rec.add("%s", l)
	return l
}

func (f *fakeIPT) didChange(call string) {
	if f.changed != nil {
		f.changed(call)
	}
}

var _ ipt = (*fakeIPT)(nil)

func newFakeIPT(fam string, rec *recorder, builtin ...string) *fakeIPT {
	f := &fakeIPT{fam: fam, rec: rec, rules: map[string][]string{}}
	f.builtin = append([]string{"INPUT", "FORWARD", "OUTPUT"}, builtin...)
	return f
}

func (f *fakeIPT) exists(chain string) bool {
	return slices.Contains(f.builtin, chain) || slices.Contains(f.user, chain)
}

// add puts a rule in directly, for setting up a scenario (not recorded).
func (f *fakeIPT) add(chain, spec string) {
	if !f.exists(chain) {
		f.user = append(f.user, chain)
	}
	f.rules[chain] = append(f.rules[chain], spec)
}

func (f *fakeIPT) checkTarget(spec []string) error {
	for i, a := range spec {
		if (a == "-j" || a == "-g") && i+1 < len(spec) {
			switch t := spec[i+1]; t {
			case "ACCEPT", "DROP", "REJECT", "RETURN":
			default:
				if !f.exists(t) {
					return notExist("chain " + t)
				}
			}
		}
	}
	return nil
}

func (f *fakeIPT) NewChain(table, chain string) error {
	call := f.record("NewChain %s %s", table, chain)
	if f.exists(chain) {
		return fakeFail("iptables: Chain already exists.")
	}
	f.user = append(f.user, chain)
	f.didChange(call)
	return nil
}

func (f *fakeIPT) Insert(table, chain string, pos int, spec ...string) error {
	call := f.record("Insert %s %s %d %s", table, chain, pos, strings.Join(spec, " "))
	if !f.exists(chain) {
		return notExist("chain " + chain)
	}
	if err := f.checkTarget(spec); err != nil {
		return err
	}
	if pos < 1 || pos > len(f.rules[chain])+1 {
		return fakeFail("iptables: Index of insertion too big.")
	}
	f.rules[chain] = slices.Insert(f.rules[chain], pos-1, strings.Join(spec, " "))
	f.didChange(call)
	return nil
}

func (f *fakeIPT) ClearChain(table, chain string) error {
	f.rec.add("%s ClearChain %s %s", f.fam, table, chain)
	if !f.exists(chain) {
		f.user = append(f.user, chain)
	}
	f.rules[chain] = nil
	f.didChange(fmt.Sprintf("%s ClearChain %s %s", f.fam, table, chain))
	return nil
}

func (f *fakeIPT) ClearAndDeleteChain(table, chain string) error {
	f.rec.add("%s ClearAndDeleteChain %s %s", f.fam, table, chain)
	if !f.exists(chain) {
		return nil
	}
	for c, rules := range f.rules {
		for _, r := range rules {
			if strings.HasSuffix(r, " "+chain) && c != chain {
				return fakeFail("delete chain %s: Too many links (referenced from %s)", chain, c)
			}
		}
	}
	delete(f.rules, chain)
	f.user = slices.DeleteFunc(f.user, func(c string) bool { return c == chain })
	f.didChange(fmt.Sprintf("%s ClearAndDeleteChain %s %s", f.fam, table, chain))
	return nil
}

func (f *fakeIPT) InsertUnique(table, chain string, pos int, spec ...string) error {
	f.rec.add("%s InsertUnique %s %s %d %s", f.fam, table, chain, pos, strings.Join(spec, " "))
	if !f.exists(chain) {
		return notExist("chain " + chain)
	}
	if err := f.checkTarget(spec); err != nil {
		return err
	}
	r := strings.Join(spec, " ")
	if slices.Contains(f.rules[chain], r) {
		return nil
	}
	f.rules[chain] = slices.Insert(f.rules[chain], min(pos-1, len(f.rules[chain])), r)
	f.didChange(fmt.Sprintf("%s InsertUnique %s %s %d %s", f.fam, table, chain, pos, r))
	return nil
}

func (f *fakeIPT) Delete(table, chain string, spec ...string) error {
	f.rec.add("%s Delete %s %s %s", f.fam, table, chain, strings.Join(spec, " "))
	return f.remove(chain, spec, false)
}

func (f *fakeIPT) DeleteIfExists(table, chain string, spec ...string) error {
	f.rec.add("%s DeleteIfExists %s %s %s", f.fam, table, chain, strings.Join(spec, " "))
	return f.remove(chain, spec, true)
}

func (f *fakeIPT) remove(chain string, spec []string, ifExists bool) error {
	if !f.exists(chain) {
		return notExist("chain " + chain)
	}
	if err := f.checkTarget(spec); err != nil {
		return err
	}
	r := strings.Join(spec, " ")
	i := slices.Index(f.rules[chain], r)
	switch {
	case i >= 0:
		f.rules[chain] = slices.Delete(f.rules[chain], i, i+1)
		f.didChange(fmt.Sprintf("%s delete %s %s", f.fam, chain, r))
		return nil
	case ifExists:
		return nil
	}
	return notExist("rule")
}

func (f *fakeIPT) List(table, chain string) ([]string, error) {
	f.rec.add("%s List %s %s", f.fam, table, chain)
	if !f.exists(chain) {
		return nil, notExist("chain " + chain)
	}
	head := "-N " + chain
	if slices.Contains(f.builtin, chain) {
		head = "-P " + chain + " ACCEPT"
	}
	out := []string{head}
	for _, r := range f.rules[chain] {
		out = append(out, "-A "+chain+" "+r)
	}
	return out, nil
}

// restore applies input like iptables-restore --noflush: "-F chain",
// "-A chain spec", "-I chain N spec" and "-D chain spec" lines between
// "*filter" and "COMMIT", all or nothing.
// It records one line per rule.
func (f *fakeIPT) restore(lockWait int, input []byte) ([]byte, error) {
	f.rec.add("%s restore --noflush --wait=%d", f.fam, lockWait)
	saved := map[string][]string{}
	for c, r := range f.rules {
		saved[c] = slices.Clone(r)
	}
	fail := func(n int, err error) ([]byte, error) {
		f.rules = saved
		return []byte(fmt.Sprintf("iptables-restore: line %d failed: %v\n", n, err)), exitErr(1)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(input)), "\n") {
		f.rec.add("  %s", line)
		w := strings.Fields(line)
		switch {
		case line == "*filter" || line == "COMMIT":
		case len(w) > 3 && w[0] == "-I":
			pos, spec := 0, w[3:]
			fmt.Sscan(w[2], &pos)
			if !f.exists(w[1]) || pos < 1 || pos > len(f.rules[w[1]])+1 {
				return fail(i+1, notExist("chain "+w[1]))
			}
			if err := f.checkTarget(spec); err != nil {
				return fail(i+1, err)
			}
			f.rules[w[1]] = slices.Insert(f.rules[w[1]], pos-1, strings.Join(spec, " "))
		case len(w) == 2 && w[0] == "-F":
			if !f.exists(w[1]) {
				return fail(i+1, notExist("chain "+w[1]))
			}
			f.rules[w[1]] = nil
		case len(w) > 2 && w[0] == "-A":
			if !f.exists(w[1]) {
				return fail(i+1, notExist("chain "+w[1]))
			}
			if err := f.checkTarget(w[2:]); err != nil {
				return fail(i+1, err)
			}
			f.rules[w[1]] = append(f.rules[w[1]], strings.Join(w[2:], " "))
		case len(w) > 2 && w[0] == "-D":
			j := slices.Index(f.rules[w[1]], strings.Join(w[2:], " "))
			if j < 0 {
				return fail(i+1, notExist("rule"))
			}
			f.rules[w[1]] = slices.Delete(f.rules[w[1]], j, j+1)
		default:
			return fail(i+1, fakeFail("bad line %q", line))
		}
	}
	f.didChange(f.fam + " restore")
	return nil, nil
}

// dump is the whole table in iptables -S order.
func (f *fakeIPT) dump() []string {
	var out []string
	for _, c := range f.builtin {
		out = append(out, "-P "+c+" ACCEPT")
	}
	for _, c := range f.user {
		out = append(out, "-N "+c)
	}
	for _, c := range append(slices.Clone(f.builtin), f.user...) {
		for _, r := range f.rules[c] {
			out = append(out, "-A "+c+" "+r)
		}
	}
	return out
}

// exitErr is an error with an exit code, like *exec.ExitError.
type exitErr int

func (e exitErr) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitErr) ExitCode() int { return int(e) }

// env is one backend over two fake families.
type env struct {
	rec    recorder
	v4, v6 *fakeIPT
	logs   syncBuffer // the cutter goroutine logs too
	// cutFlows is how many entries the fake cut deletes, by target prefix; cutErr, when set,
	// is what it returns instead; cutHook, when set, runs first (async tests block in it).
	cutFlows map[netip.Prefix]uint
	cutErr   error
	cutHook  func(ctx context.Context) error
	// asyncCut cuts on the backend's cutter goroutine, as in production; golden tests cut in
	// order, on the ban's call.
	asyncCut bool
	// restoreFails makes iptables-restore fail, changing nothing.
	restoreFails bool
}

func newEnv(extraBuiltin ...string) *env {
	e := &env{cutFlows: map[netip.Prefix]uint{}}
	e.v4 = newFakeIPT("ipv4", &e.rec, extraBuiltin...)
	e.v6 = newFakeIPT("ipv6", &e.rec, extraBuiltin...)
	return e
}

func (e *env) backend(t *testing.T, opts Options) *Backend {
	t.Helper()
	d := deps{
		syncCut: !e.asyncCut,
		newIPT: func(v6 bool, lockWait int) (ipt, error) {
			if v6 {
				e.rec.add("new ipv6 handle, lock wait %ds", lockWait)
				return e.v6, nil
			}
			e.rec.add("new ipv4 handle, lock wait %ds", lockWait)
			return e.v4, nil
		},
		cut: func(ctx context.Context, fam string, prefixes []netip.Prefix) (uint, error) {
			e.rec.add("conntrack cut %s %v", fam, prefixes)
			if e.cutHook != nil {
				if err := e.cutHook(ctx); err != nil {
					return 0, err
				}
			}
			if e.cutErr != nil {
				return 0, e.cutErr
			}
			var n uint
			for _, p := range prefixes {
				n += e.cutFlows[p]
			}
			return n, nil
		},
		services: "testdata/services",
		restore: func(ctx context.Context, v6 bool, lockWait int, input []byte) ([]byte, error) {
			f := e.v4
			if v6 {
				f = e.v6
			}
			if e.restoreFails {
				f.rec.add("%s restore --noflush --wait=%d", f.fam, lockWait)
				return []byte("iptables-restore: unrecognized option '--wait=5'\n"), exitErr(2)
			}
			return f.restore(lockWait, input)
		},
	}
	logger := slog.New(slog.NewTextHandler(&e.logs, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))
	b, err := newBackend(opts, logger, d)
	if err != nil {
		t.Fatalf("newBackend: %v", err)
	}
	return b
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func (e *env) state() []string {
	return append(prefixed("ipv4", e.v4.dump()), prefixed("ipv6", e.v6.dump())...)
}

func prefixed(p string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = p + " " + l
	}
	return out
}

func tgt(s string) action.Target {
	if p, err := netip.ParsePrefix(s); err == nil {
		return action.Target{Prefix: p}
	}
	return action.AddrTarget(netip.MustParseAddr(s))
}

// step is one line of a script: "start", "stop", "ban ADDR", "unban ADDR",
// "state", and for keeping the rules over a restart "startkeep", "stopkeep",
// "list", and "restart", which replaces b with restart() (a new process).
func (e *env) run(t *testing.T, b *Backend, script []string, restart func() *Backend) string {
	t.Helper()
	var out strings.Builder
	ctx := t.Context()
	for _, step := range script {
		fmt.Fprintf(&out, "== %s\n", step)
		e.rec.lines = nil
		var err error
		verb, arg, _ := strings.Cut(step, " ")
		switch verb {
		case "start":
			err = b.Start(ctx)
		case "stop":
			err = b.Stop(ctx)
		case "ban":
			err = b.Ban(ctx, tgt(arg))
		case "unban":
			err = b.Unban(ctx, tgt(arg))
		case "startkeep":
			err = b.StartKeep(ctx)
		case "stopkeep":
			err = b.StopKeep(ctx)
		case "list":
			var ts []action.Target
			if ts, err = b.List(ctx); err == nil {
				e.rec.add("-> %d targets: %v", len(ts), ts)
			}
		case "restart":
			b = restart()
		case "state":
			e.rec.lines = e.state()
		default:
			t.Fatalf("bad step %q", step)
		}
		for _, l := range e.rec.lines {
			fmt.Fprintf(&out, "%s\n", l)
		}
		if err != nil {
			fmt.Fprintf(&out, "-> error: %v\n", err)
		}
	}
	return out.String()
}

// TestGolden runs scripted sequences against the recording fake and compares
// the calls with testdata/<name>.golden (rewrite with -update). It also
// checks what needs no reading of a golden file: after Stop, the tables are
// exactly as they were before Start.
func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		setup  func(e *env)
		script []string
		// wantAfter is the final state; nil means "the state before the script".
		wantAfter []string
	}{
		{
			name: "reject-ports-dual",
			opts: Options{Jail: "sshd", Ports: "ssh,http,8000:8100", IPv6: true, Conntrack: true},
			setup: func(e *env) {
				for _, f := range []*fakeIPT{e.v4, e.v6} {
					f.add("INPUT", "-i lo -j ACCEPT")
					f.add("keep", "-p tcp --dport 9999 -j ACCEPT")
					f.add("INPUT", "-j keep")
				}
				e.cutFlows[netip.MustParsePrefix("192.0.2.1/32")] = 2
			},
			script: []string{
				"start", "state",
				"ban 192.0.2.1", "ban 192.0.2.1", "ban 2001:db8::1", "ban 198.51.100.0/24", "ban 2001:db8:1::/48",
				"state",
				"unban 192.0.2.1", "unban 192.0.2.1", "unban 2001:db8::1", "unban 198.51.100.0/24",
				"stop", "state",
			},
		},
		{
			name:  "drop-all-docker",
			opts:  Options{Jail: "web", Chain: "DOCKER-USER", Protocol: AllProtocols, BlockType: BlockDrop, Timeout: 2500e6},
			setup: func(e *env) { e.v4.add("DOCKER-USER", "-j RETURN") },
			script: []string{
				"start", "ban 203.0.113.7", "ban 2001:db8::7", "state",
				"unban 203.0.113.7", "stop", "stop", "state",
			},
		},
		{
			name:  "reject-udp-icmp",
			opts:  Options{Jail: "dns", Ports: "53", Protocol: UDP, IPv6: true},
			setup: func(e *env) {},
			script: []string{
				"start", "ban 192.0.2.1", "ban 2001:db8::1", "state",
				"unban 192.0.2.1", "unban 2001:db8::1", "stop", "state",
			},
		},
		{
			// A crash left the chain with a ban, the jump doubled, and the
			// jump of an earlier configuration (port 2222); foreign rules in
			// between must survive.
			name: "crash-leftovers",
			opts: Options{Jail: "sshd", Ports: "22", IPv6: true},
			setup: func(e *env) {
				e.v4.add("lj-sshd", "-s 192.0.2.1/32 -p tcp -j REJECT --reject-with tcp-reset")
				e.v4.add("INPUT", "-p tcp -m multiport --dports 22 -j lj-sshd")
				e.v4.add("INPUT", "-i lo -j ACCEPT")
				e.v4.add("INPUT", "-p tcp -m multiport --dports 22 -j lj-sshd")
				e.v4.add("INPUT", "-p tcp -m multiport --dports 2222 -j lj-sshd")
				e.v4.add("INPUT", "-p tcp -m multiport --dports 22 -j lj-sshd-old")
				e.v4.add("lj-sshd-old", "-j RETURN")
				e.v6.add("lj-sshd", "-s 2001:db8::1/128 -p tcp -j REJECT --reject-with tcp-reset")
				e.v6.add("INPUT", "-p tcp -m multiport --dports 22 -j lj-sshd")
			},
			script: []string{"state", "start", "state", "ban 192.0.2.9", "stop", "state"},
			wantAfter: []string{
				"ipv4 -P INPUT ACCEPT", "ipv4 -P FORWARD ACCEPT", "ipv4 -P OUTPUT ACCEPT",
				"ipv4 -N lj-sshd-old",
				"ipv4 -A INPUT -i lo -j ACCEPT",
				"ipv4 -A INPUT -p tcp -m multiport --dports 22 -j lj-sshd-old",
				"ipv4 -A lj-sshd-old -j RETURN",
				"ipv6 -P INPUT ACCEPT", "ipv6 -P FORWARD ACCEPT", "ipv6 -P OUTPUT ACCEPT",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			tt.setup(e)
			before := e.state()
			b := e.backend(t, tt.opts)
			got := e.run(t, b, tt.script, func() *Backend { return e.backend(t, tt.opts) })

			want := tt.wantAfter
			if want == nil {
				want = before
			}
			if diff := cmp.Diff(want, e.state()); diff != "" {
				t.Errorf("tables after the script (-want +got):\n%s", diff)
			}

			checkGolden(t, tt.name, got)
		})
	}
}

// checkGolden compares got with testdata/<name>.golden, or rewrites that
// file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantCalls, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(wantCalls), got); diff != "" {
		t.Errorf("calls differ from %s (-want +got):\n%s", golden, diff)
	}
}

func TestCrashLeftoversSingleJump(t *testing.T) {
	e := newEnv()
	first := e.backend(t, Options{Jail: "sshd", Ports: "22"})
	if err := first.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := first.Ban(t.Context(), tgt("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	// The process dies here. A second instance starts without a Stop.
	second := e.backend(t, Options{Jail: "sshd", Ports: "22"})
	if err := second.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT",
		"-N lj-sshd",
		"-A INPUT -p tcp -m multiport --dports 22 -j lj-sshd",
	}
	if diff := cmp.Diff(want, e.v4.dump()); diff != "" {
		t.Errorf("after the second Start (-want +got):\n%s", diff)
	}
}

func TestStartFailureUndoes(t *testing.T) {
	e := newEnv() // no DOCKER-USER chain: docker is not running
	e.v4.add("INPUT", "-i lo -j ACCEPT")
	before := e.state()
	b := e.backend(t, Options{Jail: "web", Chain: "DOCKER-USER", IPv6: true})
	err := b.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "insert jump to lj-web into DOCKER-USER") {
		t.Fatalf("Start = %v, want the failed jump insert", err)
	}
	if diff := cmp.Diff(before, e.state()); diff != "" {
		t.Errorf("Start left something behind (-want +got):\n%s", diff)
	}
	if err := b.Ban(t.Context(), tgt("192.0.2.1")); !errors.Is(err, action.ErrNotStarted) {
		t.Errorf("Ban after a failed Start = %v, want ErrNotStarted", err)
	}
	if err := b.Stop(t.Context()); err != nil {
		t.Errorf("Stop after a failed Start = %v, want nil", err)
	}
}

func TestNotStarted(t *testing.T) {
	e := newEnv()
	b := e.backend(t, Options{Jail: "x"})
	ctx := t.Context()
	if err := b.Ban(ctx, tgt("192.0.2.1")); !errors.Is(err, action.ErrNotStarted) {
		t.Errorf("Ban before Start = %v", err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Ban(ctx, tgt("2001:db8::1")); !errors.Is(err, action.ErrUnsupportedTarget) {
		t.Errorf("IPv6 Ban with IPv6 off = %v, want ErrUnsupportedTarget", err)
	}
	if err := b.Ban(ctx, action.Target{Prefix: netip.MustParsePrefix("192.0.2.1/24")}); !errors.Is(err, action.ErrInvalidTarget) {
		t.Errorf("Ban of a prefix with host bits = %v, want ErrInvalidTarget", err)
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Unban(ctx, tgt("192.0.2.1")); !errors.Is(err, action.ErrNotStarted) {
		t.Errorf("Unban after Stop = %v", err)
	}
	if len(e.rec.lines) == 0 {
		t.Fatal("nothing recorded")
	}
}

func TestCanceledContext(t *testing.T) {
	e := newEnv()
	b := e.backend(t, Options{Jail: "x"})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e.rec.lines = nil
	if err := b.Ban(ctx, tgt("192.0.2.1")); !errors.Is(err, context.Canceled) {
		t.Errorf("Ban(canceled) = %v", err)
	}
	if len(e.rec.lines) != 0 {
		t.Errorf("a canceled Ban called iptables: %q", e.rec.lines)
	}
}

// A failed cut (here: no nf_conntrack_netlink) leaves the ban in place and is one warning
// however many walks fail; a walk that finds nothing is a debug line.
func TestConntrackFailureIsAWarning(t *testing.T) {
	e := newEnv()
	b := e.backend(t, Options{Jail: "x", Conntrack: true})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Ban(t.Context(), tgt("192.0.2.2")); err != nil { // nothing to delete
		t.Fatal(err)
	}
	e.cutErr = syscall.EPROTONOSUPPORT
	for _, a := range []string{"192.0.2.1", "192.0.2.3", "192.0.2.4"} {
		if err := b.Ban(t.Context(), tgt(a)); err != nil {
			t.Fatalf("Ban = %v, want nil (cutting is best effort)", err)
		}
	}
	logs := e.logs.String()
	if strings.Count(logs, "level=WARN") != 1 || !strings.Contains(logs, "protocol not supported") {
		t.Errorf("want one warning, with the error, logs:\n%s", logs)
	}
	if !strings.Contains(logs, `msg="no connections to cut" backend=iptables jail=x family=ipv4 targets=1`) {
		t.Errorf("a cut that deleted nothing should be a debug line, logs:\n%s", logs)
	}
	if got := strings.Count(strings.Join(e.state(), "\n"), "-s 192.0.2."); got != 4 {
		t.Errorf("%d ban rules, want 4", got)
	}
}

// A jump to our chain that another tool wrote with a quoted comment cannot be
// removed by spec; Stop then reports the chain it could not delete and stays
// retryable.
func TestStopReportsForeignReference(t *testing.T) {
	e := newEnv()
	b := e.backend(t, Options{Jail: "x"})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.v4.add("FORWARD", `-m comment --comment "added by hand" -j lj-x`)
	err := b.Stop(t.Context())
	if err == nil || !strings.Contains(err.Error(), "delete chain lj-x") {
		t.Fatalf("Stop = %v, want the chain deletion error", err)
	}
	e.v4.rules["FORWARD"] = nil
	if err := b.Stop(t.Context()); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
}

func TestJumpSpec(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"-A INPUT -p tcp -m multiport --dports 22 -j lj-sshd", []string{"-p", "tcp", "-m", "multiport", "--dports", "22", "-j", "lj-sshd"}},
		{"-A INPUT -j lj-sshd", []string{"-j", "lj-sshd"}},
		{"-A INPUT -g lj-sshd", []string{"-g", "lj-sshd"}},
		{"-A INPUT -p tcp -j lj-sshd -c 10 2000", []string{"-p", "tcp", "-j", "lj-sshd"}},
		{"-A INPUT -j lj-sshd-old", nil},
		{"-A FORWARD -j lj-sshd", nil},
		{"-N lj-sshd", nil},
		{"-P INPUT ACCEPT", nil},
		{"-A INPUT -s 10.0.0.1/32 -j REJECT --reject-with icmp-port-unreachable", nil},
		{"# Warning: iptables-legacy tables present, use iptables-legacy to see them", nil},
	}
	for _, tt := range tests {
		got, ok := jumpSpec(tt.line, "INPUT", "lj-sshd")
		if diff := cmp.Diff(tt.want, got); diff != "" || ok != (tt.want != nil) {
			t.Errorf("jumpSpec(%q) = %q, %v (-want +got):\n%s", tt.line, got, ok, diff)
		}
	}
}

func TestSrcFilter(t *testing.T) {
	f := newSrcFilter([]netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("2001:db8:1::/48"),
	})
	for src, want := range map[string]bool{
		"192.0.2.1":          true,
		"192.0.2.2":          false,
		"198.51.100.0":       true,
		"198.51.100.255":     true,
		"198.51.101.1":       false,
		"2001:db8::1":        true,
		"2001:db8::2":        false,
		"2001:db8:1:ffff::9": true,
		"2001:db8:2::1":      false,
		"::ffff:192.0.2.1":   true, // a 16-byte IPv4 address
	} {
		flow := &netlink.ConntrackFlow{}
		flow.Forward.SrcIP = net.ParseIP(src)
		if a := flow.Forward.SrcIP.To4(); a != nil && !strings.HasPrefix(src, "::") {
			flow.Forward.SrcIP = a // what ctnetlink gives for IPv4
		}
		if got := f.MatchConntrackFlow(flow); got != want {
			t.Errorf("source %s: match = %v, want %v", src, got, want)
		}
	}
	if (&srcFilter{}).MatchConntrackFlow(&netlink.ConntrackFlow{}) {
		t.Error("an entry without a source matched")
	}
}

// In production the cut runs on the cutter goroutine: Ban returns once the rule is in, the
// cut follows, and Stop ends the cutter.
func TestConntrackAsync(t *testing.T) {
	e := newEnv()
	e.asyncCut = true
	b := e.backend(t, Options{Jail: "x", Conntrack: true})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Ban(t.Context(), tgt("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	want := "conntrack cut ipv4 [192.0.2.1/32]"
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(e.rec.snapshot(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after Ban; calls:\n%s", want, strings.Join(e.rec.snapshot(), "\n"))
		}
		time.Sleep(time.Millisecond)
	}
	if err := b.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.cut != nil {
		t.Error("cutter still set after Stop")
	}
}

// blockFirstCut makes the fake cut's first call wait for release, after saying on started that
// it runs: the cuts asked for meanwhile queue up.
func (e *env) blockFirstCut() (started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	first := true // only the cutter goroutine calls the hook
	e.cutHook = func(context.Context) error {
		if first {
			first = false
			close(started)
			<-release
		}
		return nil
	}
	return started, release
}

// cuts returns the fake cut's calls so far.
func (e *env) cuts() []string {
	var out []string
	for _, l := range e.rec.snapshot() {
		if strings.HasPrefix(l, "conntrack cut ") {
			out = append(out, l)
		}
	}
	return out
}

// waitCuts waits for n calls of the fake cut and returns them.
func (e *env) waitCuts(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(e.cuts()) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("want %d cuts, got:\n%s", n, strings.Join(e.cuts(), "\n"))
		}
		time.Sleep(time.Millisecond)
	}
	return e.cuts()
}

// The bans of a burst that come while a walk runs are cut together in the next walk: one per
// address family, each target with its own prefix.
func TestCutBatches(t *testing.T) {
	e := newEnv()
	e.asyncCut = true
	started, release := e.blockFirstCut()
	e.cutFlows[netip.MustParsePrefix("198.51.100.0/24")] = 3
	b := e.backend(t, Options{Jail: "x", IPv6: true, Conntrack: true})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Ban(t.Context(), tgt("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	<-started
	for _, a := range []string{"192.0.2.2", "2001:db8::2", "198.51.100.0/24", "192.0.2.3", "2001:db8:1::/48"} {
		if err := b.Ban(t.Context(), tgt(a)); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range b.BanBatch(t.Context(), []action.Target{tgt("192.0.2.4"), tgt("2001:db8::4")}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	e.waitCuts(t, 3)
	if err := b.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"conntrack cut ipv4 [192.0.2.1/32]",
		"conntrack cut ipv4 [192.0.2.2/32 198.51.100.0/24 192.0.2.3/32 192.0.2.4/32]",
		"conntrack cut ipv6 [2001:db8::2/128 2001:db8:1::/48 2001:db8::4/128]",
	}
	if diff := cmp.Diff(want, e.cuts()); diff != "" {
		t.Errorf("cuts (-want +got):\n%s", diff)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `msg="cut connections" backend=iptables jail=x family=ipv4 targets=4 flows=3`) {
		t.Errorf("want the batch's cut at Info, logs:\n%s", logs)
	}
}

// Beyond cutQueue waiting cuts, a ban's cut is skipped with one warning (rate-limited); the
// cuts that fit still go, in one walk.
func TestCutQueueFull(t *testing.T) {
	e := newEnv()
	e.asyncCut = true
	started, release := e.blockFirstCut()
	b := e.backend(t, Options{Jail: "x", Conntrack: true})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Ban(t.Context(), tgt("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	<-started
	for i := range cutQueue + 2 {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		if err := b.Ban(t.Context(), action.AddrTarget(a)); err != nil {
			t.Fatal(err)
		}
	}
	logs := e.logs.String()
	if strings.Count(logs, "conntrack queue full") != 1 || !strings.Contains(logs, "target=10.1.16.0 skipped=1") {
		t.Errorf("want one queue-full warning, for the first target skipped, logs:\n%s", logs)
	}
	close(release)
	cuts := e.waitCuts(t, 2)
	if err := b.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(cuts[1])) - 3; len(cuts) != 2 || n != cutQueue {
		t.Errorf("%d cuts, the second of %d targets; want 2, the second of %d", len(cuts), n, cutQueue)
	}
}

// Stop while a walk runs gives it up without a warning, and drops the cuts waiting.
func TestCutStopWhileRunning(t *testing.T) {
	e := newEnv()
	e.asyncCut = true
	started := make(chan struct{}, 1)
	e.cutHook = func(ctx context.Context) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	b := e.backend(t, Options{Jail: "x", Conntrack: true})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.1", "192.0.2.2"} {
		if err := b.Ban(t.Context(), tgt(a)); err != nil {
			t.Fatal(err)
		}
		if a == "192.0.2.1" {
			<-started
		}
	}
	if err := b.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	if strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "connection cuts abandoned at stop") {
		t.Errorf("want the cut abandoned at Debug, no warning; logs:\n%s", logs)
	}
}

// BanBatch puts a family's new rules in with one iptables-restore, skips what is banned
// already and repeats, and fails a target it cannot enforce alone.
func TestBanBatch(t *testing.T) {
	e := newEnv()
	b := e.backend(t, Options{Jail: "sshd", Ports: "22", IPv6: true})
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Ban(t.Context(), tgt("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	before := len(e.rec.snapshot())
	errs := b.BanBatch(t.Context(), []action.Target{
		tgt("192.0.2.1"), tgt("192.0.2.2"), tgt("2001:db8::1"), tgt("192.0.2.3"), tgt("192.0.2.2"),
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("target %d: %v", i, err)
		}
	}
	var restores []string
	for _, l := range e.rec.snapshot()[before:] {
		if strings.Contains(l, "restore") || strings.HasPrefix(strings.TrimSpace(l), "-I") {
			restores = append(restores, strings.TrimSpace(l))
		}
	}
	want := []string{
		"ipv4 restore --noflush --wait=5",
		"-I lj-sshd 1 -s 192.0.2.2/32 -p tcp -j REJECT --reject-with tcp-reset",
		"-I lj-sshd 1 -s 192.0.2.3/32 -p tcp -j REJECT --reject-with tcp-reset",
		"ipv6 restore --noflush --wait=5",
		"-I lj-sshd 1 -s 2001:db8::1/128 -p tcp -j REJECT --reject-with tcp-reset",
	}
	if diff := cmp.Diff(want, restores); diff != "" {
		t.Errorf("restore calls (-want +got):\n%s", diff)
	}
	// Each rule once; a second batch of the same targets changes nothing.
	n := len(e.rec.snapshot())
	for _, err := range b.BanBatch(t.Context(), []action.Target{tgt("192.0.2.2"), tgt("2001:db8::1")}) {
		if err != nil {
			t.Error(err)
		}
	}
	if got := e.rec.snapshot()[n:]; len(got) != 0 {
		t.Errorf("banning banned targets made calls: %q", got)
	}
	st := strings.Join(e.state(), "\n")
	for _, r := range []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "2001:db8::1/128"} {
		if c := strings.Count(st, "-s "+r+" "); c != 1 {
			t.Errorf("%s: %d rules, want 1", r, c)
		}
	}

	// Without IPv6, an IPv6 target fails alone.
	e2 := newEnv()
	b2 := e2.backend(t, Options{Jail: "v4", Ports: "22"})
	if err := b2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	errs = b2.BanBatch(t.Context(), []action.Target{tgt("192.0.2.7"), tgt("2001:db8::7")})
	if errs[0] != nil || !errors.Is(errs[1], action.ErrUnsupportedTarget) {
		t.Errorf("errs = %v, want nil and ErrUnsupportedTarget", errs)
	}
	// A failing restore fails the family's new targets, and none is recorded as applied.
	e2.restoreFails = true
	errs = b2.BanBatch(t.Context(), []action.Target{tgt("192.0.2.8"), tgt("192.0.2.7")})
	if errs[0] == nil || errs[1] != nil {
		t.Errorf("errs = %v, want an error for the new target only", errs)
	}
	if _, ok := b2.fams[0].applied[netip.MustParsePrefix("192.0.2.8/32")]; ok {
		t.Error("a target whose restore failed counts as applied")
	}
}
