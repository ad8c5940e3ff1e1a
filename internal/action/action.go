// Package action is where a ban leaves the daemon: the Backend interface that
// every enforcement mechanism implements (an iptables chain, later ipset,
// nftables, routes, commands), the Target it receives, and the Executor that
// runs one backend's calls on their own goroutine so that a slow kernel call
// never stalls a jail.
//
// Backends live in sub-packages (action/iptables, ...). Each declares its own
// Options struct; the configuration layer translates into it. Nothing here
// knows about jails, filters or the ban table.
package action

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// Backend enforces bans in one mechanism.
//
// A backend may implement optional interfaces too: Keeper (restarts that keep
// the bans in the kernel) and Lister (read the bans back from the kernel).
//
// Obligations of an implementation:
//   - Start creates what the backend owns (a chain, a set) and first removes
//     its own leftovers of a crash, so that Start after a crash leaves exactly
//     one copy of everything. Start may be called again after Stop.
//   - Ban of a banned target and Unban of an absent one return nil, so that a
//     caller may retry a call whose outcome it does not know (a timeout).
//   - Ban and Unban before Start (or after Stop) return ErrNotStarted; a target
//     the backend cannot enforce (an IPv6 prefix with IPv6 off) returns an error
//     that wraps ErrUnsupportedTarget.
//   - Stop removes everything Start created and nothing else: a backend never
//     touches a rule, set or route it does not own.
//   - Every call honours ctx as far as the mechanism allows: it checks ctx
//     between kernel calls and passes it to child processes it starts. A call
//     that cannot be interrupted (go-iptables runs iptables without a context)
//     is bounded by the backend's own lock timeout instead.
//   - Calls are made one at a time (the Executor guarantees it). An
//     implementation need not be safe for concurrent use, although the
//     built-in ones are.
type Backend interface {
	// Name is the backend's short name ("iptables"), for logs and status.
	Name() string
	// Start creates what the backend owns; first it removes its own leftovers
	// of a crash.
	Start(ctx context.Context) error
	// Ban makes the kernel refuse traffic from t. Idempotent.
	Ban(ctx context.Context, t Target) error
	// Unban lifts the ban of t. Idempotent.
	Unban(ctx context.Context, t Target) error
	// Stop removes everything Start created.
	Stop(ctx context.Context) error
}

// Keeper is implemented by a Backend that can be stopped and started again
// without lifting its bans: what it leaves in the kernel at StopKeep, the
// next StartKeep adopts, and the bans hold all the while. A daemon restart,
// a crash or a reload then opens no window in which a banned address gets
// through. The Executor calls these instead of Start and Stop when told to
// (ExecutorOptions.KeepOnStart, KeepOnStop).
//
// Obligations of an implementation, besides those of Backend:
//   - StartKeep makes the backend ready for Ban and Unban like Start, but
//     keeps the bans it finds: it creates what is missing, repairs what is
//     wrong, and never removes, even for a moment, a ban that is in the kernel
//     in its own form, nor the way packets reach it. Whatever of its own it
//     finds and would not have written itself it removes: duplicates of a ban
//     or of a structural element (the leftovers of a crash between two kernel
//     calls), and rules in its own chain or set that are not its bans. A ban
//     written in another shape by an earlier configuration (DROP where REJECT
//     is configured now) is rewritten in place without a moment between the
//     two: the new form goes in before the old goes out, or both in one
//     transaction. Afterwards the kernel holds exactly one copy of
//     everything, and Ban of an adopted target adds nothing.
//   - StartKeep never touches what it does not own, like Start.
//   - If StartKeep fails it leaves the kernel as it is at that point (each
//     step is safe on its own, so every ban found is still enforced) and the
//     backend counts as not started; StartKeep may be called again. The
//     Executor follows a failed StartKeep with StopKeep, never with Stop.
//   - StopKeep leaves everything in the kernel as it is (structure and bans)
//     and makes the backend count as stopped: Ban and Unban return
//     ErrNotStarted until the next Start or StartKeep. It is idempotent.
//   - Start and Stop keep their meaning; any mix is allowed: StartKeep then
//     Stop removes everything, Start then StopKeep leaves a fresh chain.
type Keeper interface {
	// StartKeep adopts what an earlier run left in the kernel and creates
	// what is missing, keeping every ban in force.
	StartKeep(ctx context.Context) error
	// StopKeep stops the backend and leaves its rules in the kernel.
	StopKeep(ctx context.Context) error
}

// Lister is implemented by a Backend that can read back, from the kernel,
// the targets it currently bans.
//
// Obligations of an implementation:
//   - List returns each target that a ban rule of this backend, in exactly
//     the form Ban would write it now, holds in the kernel: once, sorted
//     (IPv4 before IPv6, then by address and prefix length), nil when there
//     are none. For each returned target, Unban removes the rule and Ban adds
//     nothing.
//   - Anything else it finds where its bans live (a rule of another shape, a
//     rule it cannot read) is left out of the list and reported in the log;
//     it does not fail the call. StartKeep removes or rewrites such rules.
//   - List reads the kernel in as few calls as the mechanism allows (one
//     listing per address family, never one call per ban), because it runs
//     at start with every ban in force.
//   - List before Start (or StartKeep), or after Stop, returns ErrNotStarted.
//     It changes nothing.
type Lister interface {
	List(ctx context.Context) ([]Target, error)
}

// Batcher is a Backend that can ban many targets in one kernel call (one
// iptables-restore transaction), for floods: a ban per call costs a process
// and a walk of the chain each. The Executor uses it for the bans that are
// queued together.
//
// BanBatch returns one error per target, in order (nil: banned, or already
// banned). Each is what Ban would have returned for that target, so a
// target the backend cannot enforce fails alone, not the batch.
type Batcher interface {
	BanBatch(ctx context.Context, targets []Target) []error
}

var (
	// ErrUnsupportedPlatform is returned by the constructors of backends that
	// do not exist on this operating system (iptables outside Linux).
	ErrUnsupportedPlatform = errors.New("unsupported platform")
	// ErrNotStarted is returned by Ban and Unban before Start or after Stop.
	ErrNotStarted = errors.New("backend not started")
	// ErrUnsupportedTarget is wrapped by Ban and Unban for a target the
	// backend is not configured to enforce (an IPv6 target with IPv6 off).
	ErrUnsupportedTarget = errors.New("unsupported target")
	// ErrInvalidTarget is wrapped by Target.Validate.
	ErrInvalidTarget = errors.New("invalid target")
	// ErrUnsupportedOp is wrapped by the Executor's Submit and List for an
	// operation the backend does not implement (OpList without Lister).
	ErrUnsupportedOp = errors.New("operation not supported by backend")
)

// Target is one validated address or prefix to ban. A single address is a
// /32 or a /128 prefix.
type Target struct {
	Prefix netip.Prefix
}

// AddrTarget returns the Target that bans the single address a. An
// IPv4-mapped IPv6 address (::ffff:192.0.2.1) becomes the IPv4 address, which
// is how the kernel sees that peer's packets.
func AddrTarget(a netip.Addr) Target {
	a = a.Unmap()
	return Target{Prefix: netip.PrefixFrom(a, a.BitLen())}
}

// Validate reports whether t can be handed to a backend: a valid prefix with
// no host bits set (netip.Prefix never has a zone), not IPv4-mapped IPv6 (use AddrTarget, or Unmap),
// and not /0, which would ban every address.
func (t Target) Validate() error {
	p := t.Prefix
	switch {
	case !p.IsValid():
		return fmt.Errorf("%w: %v", ErrInvalidTarget, p)
	case p.Addr().Is4In6():
		return fmt.Errorf("%w: %v is IPv4-mapped IPv6", ErrInvalidTarget, p)
	case p.Masked() != p:
		return fmt.Errorf("%w: %v has host bits set (want %v)", ErrInvalidTarget, p, p.Masked())
	case p.Bits() == 0:
		return fmt.Errorf("%w: %v would ban every address", ErrInvalidTarget, p)
	}
	return nil
}

// Is6 reports whether t is an IPv6 prefix.
func (t Target) Is6() bool { return t.Prefix.Addr().Is6() }

// IsSingleIP reports whether t is one address (/32 or /128).
func (t Target) IsSingleIP() bool { return t.Prefix.IsSingleIP() }

// String returns the address alone for a single address, else the prefix in
// CIDR form.
func (t Target) String() string {
	if t.Prefix.IsValid() && t.Prefix.IsSingleIP() {
		return t.Prefix.Addr().String()
	}
	return t.Prefix.String()
}

// Compare orders targets the way Lister.List returns them: IPv4 before IPv6,
// then by address, then by prefix length (shorter first). It returns -1, 0
// or +1.
func (t Target) Compare(u Target) int {
	if c := t.Prefix.Addr().Compare(u.Prefix.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(t.Prefix.Bits(), u.Prefix.Bits())
}
