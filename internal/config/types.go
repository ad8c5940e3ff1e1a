// Package config reads fail2ban-style configuration (jail.conf, jail.d/, filter.d/) into typed,
// validated, immutable values. Every problem it finds is a Diag that names the file and line.
//
// The pipeline is: ini.v1 parses each file; this package resolves [INCLUDES], .local overrides,
// [DEFAULT] inheritance, %(name)s / %(section/name)s / %(known/name)s interpolation and <tag>
// substitution; then it validates and types the values. It starts no goroutines and touches no
// file at run time beyond reading the configuration.
//
// The resolution follows fail2ban 1.0.2's reader and is tested against it (LOGJAIL_F2B=1);
// COMPAT.md lists where it differs on purpose (mostly: problems fail2ban ignores are reported).
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Pos is a place in a configuration file. Line is 1-based; 0 means unknown.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return "<input>"
	case p.Line <= 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
}

// Value is one resolved configuration value and where it was written. For a multi-line value
// (one regex per line), each line becomes its own Value with its own line number.
type Value struct {
	Text string
	Pos  Pos
}

// Severity tells whether a Diag stops something from running.
type Severity int

const (
	// Error means the filter or jail it belongs to cannot be used.
	Error Severity = iota
	// Warning means the configuration works but is probably not what the admin meant.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Diag is one problem found in the configuration.
type Diag struct {
	Severity Severity
	Pos      Pos
	Section  string // jail or section name, if any
	Key      string // option name, if any
	Msg      string
	// Err is the underlying cause when there is one worth matching with errors.Is (such as
	// ErrNotFound); Msg already describes it.
	Err error
}

func (d Diag) String() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	if d.Section != "" {
		b.WriteString("[" + d.Section + "] ")
	}
	if d.Key != "" {
		b.WriteString(d.Key + ": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Diags is a list of problems; it is an error when it holds at least one Error.
type Diags []Diag

// Errors returns only the entries of severity Error.
func (ds Diags) Errors() Diags {
	var out Diags
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Err returns nil when ds holds no Error, else an error listing every Error.
func (ds Diags) Err() error {
	errs := ds.Errors()
	if len(errs) == 0 {
		return nil
	}
	lines := make([]string, len(errs))
	for i, d := range errs {
		lines[i] = d.String()
	}
	return &DiagError{Diags: errs, msg: strings.Join(lines, "\n")}
}

// DiagError is the error form of Diags.
type DiagError struct {
	Diags Diags
	msg   string
}

func (e *DiagError) Error() string { return e.msg }

// Unwrap returns the causes of the diagnostics that have one, for errors.Is and errors.As.
func (e *DiagError) Unwrap() []error {
	var errs []error
	for _, d := range e.Diags {
		if d.Err != nil {
			errs = append(errs, d.Err)
		}
	}
	return errs
}

// ErrNotFound is wrapped by errors for a filter or file that does not exist.
var ErrNotFound = errors.New("not found")

// FilterDef is one filter (filter.d/NAME.conf with its includes and .local), fully resolved:
// every %(x)s and <x> substituted, options from the reference applied, multi-line values split
// into one Value per non-empty, non-comment line. Regexes are not compiled here (that is
// internal/filter's job) so Text is still fail2ban's regex language with <HOST>, <F-USER>, ...
type FilterDef struct {
	Name string // "sshd"
	File string // the main file that was read, e.g. /etc/logjail/filter.d/sshd.conf
	// Options are the [k=v] options given with the reference (sshd[mode=aggressive]), as given.
	Options map[string]string

	PrefRegex   *Value  // nil when not set or empty
	FailRegex   []Value // at least one for a usable filter
	IgnoreRegex []Value
	DatePattern []Value // empty: automatic detection; one line per pattern
	MaxLines    int     // default 1
	// Vars holds every resolved key of [Definition] and [Init] (lower-case names), for callers
	// that need more (mode, journalmatch, usedns, ...).
	Vars map[string]Value
}

// Duration is a configured time span. Permanent (-1 in the file) is represented by Forever.
type Duration = time.Duration

// Forever is the Duration of "-1": a permanent ban.
const Forever Duration = -1

// ActionRef is one entry of a jail's action/banaction list: a name and its [k=v] options.
type ActionRef struct {
	Name    string
	Options map[string]string
	Pos     Pos
}

// Jail is one [section] of jail.conf/jail.d after DEFAULT inheritance, typed and validated.
type Jail struct {
	Name    string
	Pos     Pos // where the section starts (the last file that defines it)
	Enabled bool

	FilterRef string     // "sshd[mode=aggressive]", as resolved
	Filter    *FilterDef // nil when FilterRef could not be loaded (see Diags)

	LogPath     []string // globs allowed; as written, resolved
	LogEncoding string   // "auto" or an encoding name
	Backend     string   // auto, polling, inotify, systemd, ...
	MaxRetry    int
	MaxMatches  int
	FindTime    Duration
	BanTime     Duration // Forever for permanent
	// BanTimeIncrement holds fail2ban's bantime.* options.
	BanTimeIncrement BanTimeIncrement
	IgnoreIP         []string // addresses, CIDRs (validated) and host names as written
	// IgnoreNets is IgnoreIP's addresses and networks, parsed (a single address is a /32 or
	// /128 prefix); IgnoreHosts its host names, which need a DNS lookup.
	IgnoreNets    []netip.Prefix
	IgnoreHosts   []string
	IgnoreSelf    bool
	IgnoreUser    []string
	IgnoreCommand string
	UseDNS        string // yes, warn, no, raw
	Port          string
	Protocol      string
	Chain         string
	BlockType     string
	BanAction     string
	Actions       []ActionRef

	// Subnet bans a whole network when many of its hosts fail (logjail's subnet.* keys).
	Subnet SubnetLimit
	// DBPurgeAge is how long ban history is kept (Forever: never purged).
	DBPurgeAge Duration
	// MaxTracked caps the addresses a jail tracks at once.
	MaxTracked int

	// Vars holds every resolved key of the section, DEFAULT included (lower-case names).
	Vars map[string]Value
}

// BanTimeIncrement is fail2ban's bantime.* group: longer bans for repeat offenders.
type BanTimeIncrement struct {
	Enabled      bool     // bantime.increment
	Factor       float64  // bantime.factor
	Formula      string   // bantime.formula, as written (a Python expression in fail2ban)
	Multipliers  []int    // bantime.multipliers
	MaxTime      Duration // bantime.maxtime; 0: no limit
	RndTime      Duration // bantime.rndtime; 0: none
	OverallJails bool     // bantime.overalljails
}

// SubnetLimit is logjail's subnet.* group.
type SubnetLimit struct {
	MaxHosts int      // subnet.maxhosts; 0: disabled
	FindTime Duration // subnet.findtime
	Prefix4  int      // subnet.prefix4
	Prefix6  int      // subnet.prefix6
}

// Config is the whole configuration of a directory such as /etc/logjail.
type Config struct {
	Dir   string
	Jails []*Jail // every jail section, enabled or not, in file order
	Diags Diags   // every error and warning, errors first is not guaranteed: sort by Pos to print
}
