package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/action/iptables"
	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/jail"
)

// BackendSpec is what the daemon asks of a jail's ban backend: the built-in iptables action with
// the jail's options. Options.NewBackend turns it into an action.Backend.
type BackendSpec struct {
	Action string // the fail2ban action name it came from (iptables-multiport, ...)
	Opts   iptables.Options
}

// NewIPTables is the default Options.NewBackend: the built-in iptables backend, with ip6tables
// when the machine has it and connection cutting through conntrack, unless the diagnostic
// noConntrackEnv is set.
func NewIPTables(s BackendSpec, logger *slog.Logger) (action.Backend, error) {
	o := s.Opts
	if _, err := exec.LookPath("ip6tables"); err == nil {
		o.IPv6 = true
	}
	o.Conntrack = os.Getenv(noConntrackEnv) != "1"
	return iptables.New(o, logger)
}

// noConntrackEnv, set to 1, turns connection cutting off in every jail: a diagnostic (ljbench
// -no-conntrack measures what the cuts cost), not a setting.
const noConntrackEnv = "LOGJAIL_NO_CONNTRACK"

// builtJail is one enabled jail of a configuration, ready to run: everything the jail, the ban
// manager and the backend need, and the fingerprints that tell a reload what changed.
type builtJail struct {
	cfg      *config.Jail
	spec     jail.Spec
	banSpec  ban.JailSpec
	backend  BackendSpec
	warnings []string
	fp       string // everything that makes the jail what it is
	actionFP string // what its backend is made of: a change needs a new backend
}

// fail2ban's action names that the built-in iptables action stands for. Each takes the jail's
// port/protocol/chain/blocktype, possibly overridden by the reference's own [k=v] options.
var iptablesActions = map[string]bool{
	"iptables":           true, // one port in fail2ban; ours takes a list too
	"iptables-multiport": true,
	"iptables-allports":  true, // every port
	"iptables-new":       true,
}

// buildJail turns one enabled jail of the configuration into a builtJail, or returns the reasons
// it cannot run, each as "file:line: message".
func buildJail(j *config.Jail, diags config.Diags) (*builtJail, []string) {
	var errs []string
	filterName := ""
	if name, _, err := config.ParseRef(j.FilterRef); err == nil {
		filterName = name
	}
	for _, d := range diags {
		if d.Severity != config.Error {
			continue
		}
		switch {
		case d.Section == j.Name, d.Section == "", d.Section == "DEFAULT", d.Section == "INCLUDES" && !inFilterDir(d.Pos.File):
			// the jail's own, or something every jail inherits
		case j.Filter == nil && filterName != "" && inFilterDir(d.Pos.File) && filterBase(d.Pos.File) == filterName:
			// why its filter could not be loaded
		default:
			continue
		}
		errs = append(errs, d.String())
	}
	if err := iptables.CheckJailName(j.Name); err != nil {
		errs = append(errs, fmt.Sprintf("%s: jail name %q: %v", j.Pos, j.Name, err))
	}
	if j.Filter == nil && len(errs) == 0 {
		errs = append(errs, fmt.Sprintf("%s: jail %s has no usable filter", j.Pos, j.Name))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	b := &builtJail{cfg: j}

	dns, err := filter.ParseUseDNS(j.UseDNS)
	if err != nil {
		dns = filter.DNSNo
	}
	f, err := filter.New(j.Filter, filter.Options{UseDNS: dns})
	if err != nil {
		var ce *filter.CompileError
		if errors.As(err, &ce) {
			return nil, []string{fmt.Sprintf("%s: filter %s: %v", ce.Pos, ce.Filter, ce.Err)}
		}
		return nil, []string{fmt.Sprintf("%s: filter %s: %v", j.Filter.File, j.Filter.Name, err)}
	}
	if dns == filter.DNSYes || dns == filter.DNSWarn {
		b.warnings = append(b.warnings, fmt.Sprintf("usedns = %s: host names in logs are not resolved by the daemon (a name is chosen by whoever controls its DNS)", j.UseDNS))
	}
	b.spec = jail.Spec{
		Name:       j.Name,
		Filter:     f,
		FilterName: j.FilterRef,
		LogPaths:   append([]string(nil), j.LogPath...),
		Backend:    j.Backend,
		MaxRetry:   j.MaxRetry,
		FindTime:   j.FindTime,
		MaxTracked: j.MaxTracked,
		IgnoreUser: append([]string(nil), j.IgnoreUser...),
	}
	switch j.Backend {
	case "", "auto", "polling", "inotify", "pyinotify", "gamin":
		if j.Backend == "pyinotify" || j.Backend == "gamin" {
			b.spec.Backend = "inotify"
		}
	default:
		return nil, []string{fmt.Sprintf("%s: jail %s: backend %q is not supported (auto, polling, inotify)", posOf(j, "backend"), j.Name, j.Backend)}
	}
	b.banSpec = ban.JailSpec{
		Name:       j.Name,
		BanTime:    j.BanTime,
		IgnoreNets: append([]netip.Prefix(nil), j.IgnoreNets...),
		IgnoreSelf: j.IgnoreSelf,
		Increment:  j.BanTimeIncrement,
		Subnet:     j.Subnet,
	}
	if err := ban.CheckBanTimeIncrement(j.BanTimeIncrement); err != nil {
		var ie *ban.IncrementError
		key := "bantime.increment"
		if errors.As(err, &ie) {
			key = ie.Key
		}
		return nil, []string{fmt.Sprintf("%s: jail %s: %v", posOf(j, key), j.Name, err)}
	}
	if j.BanTimeIncrement.Enabled && j.BanTime == config.Forever {
		b.warnings = append(b.warnings, "bantime.increment has no effect: bantime is permanent already")
	}
	if len(j.IgnoreHosts) > 0 {
		b.warnings = append(b.warnings, fmt.Sprintf("ignoreip host names are not resolved, use addresses: %s", strings.Join(j.IgnoreHosts, " ")))
	}

	// The action: the first iptables-family action; other actions are named and skipped.
	found := false
	for _, a := range j.Actions {
		if !iptablesActions[a.Name] {
			b.warnings = append(b.warnings, fmt.Sprintf("%s: action %s is not supported by logjail and is ignored (supported: iptables, iptables-multiport, iptables-allports)", a.Pos, a.Name))
			continue
		}
		if found {
			b.warnings = append(b.warnings, fmt.Sprintf("%s: a second iptables action (%s) is ignored: one chain per jail", a.Pos, a.Name))
			continue
		}
		found = true
		opt := func(k, def string) string {
			if v, ok := a.Options[k]; ok && v != "" && !strings.Contains(v, "<") {
				return v
			}
			return def
		}
		o := iptables.Options{
			Jail:      j.Name,
			Chain:     opt("chain", j.Chain),
			Ports:     opt("port", j.Port),
			Protocol:  iptables.Protocol(strings.ToLower(opt("protocol", j.Protocol))),
			BlockType: iptables.BlockType(strings.ToUpper(opt("blocktype", j.BlockType))),
		}
		if a.Name == "iptables-allports" {
			o.Ports = ""
		}
		if o.Ports == "0:65535" || o.Ports == "1:65535" {
			o.Ports = ""
		}
		switch o.BlockType {
		case "", iptables.BlockReject, iptables.BlockDrop:
		default:
			if strings.HasPrefix(string(o.BlockType), "REJECT") {
				o.BlockType = iptables.BlockReject
			} else {
				return nil, []string{fmt.Sprintf("%s: jail %s: blocktype %q: want REJECT or DROP", posOf(j, "blocktype"), j.Name, o.BlockType)}
			}
		}
		b.backend = BackendSpec{Action: a.Name, Opts: o}
	}
	if !found {
		return nil, []string{fmt.Sprintf("%s: jail %s has no supported action (banaction/action: iptables, iptables-multiport, iptables-allports)", posOf(j, "action"), j.Name)}
	}
	if _, err := iptables.New(b.backend.Opts, nil); err != nil && !errors.Is(err, action.ErrUnsupportedPlatform) {
		return nil, []string{fmt.Sprintf("%s: jail %s: action %s: %v", posOf(j, "action"), j.Name, b.backend.Action, err)}
	}
	b.actionFP = fingerprint(fmt.Sprintf("%+v", b.backend))
	b.fp = jailFingerprint(j, b.actionFP)
	return b, nil
}

// inFilterDir reports whether a configuration file is a filter's (in a filter.d directory).
func inFilterDir(file string) bool {
	return filepath.Base(filepath.Dir(file)) == "filter.d"
}

// filterBase is a filter file's name without directory and extension: the filter's name.
func filterBase(file string) string {
	b := filepath.Base(file)
	return strings.TrimSuffix(strings.TrimSuffix(b, ".conf"), ".local")
}

// posOf returns where key was written in jail j, else where the jail starts.
func posOf(j *config.Jail, key string) config.Pos {
	if v, ok := j.Vars[key]; ok && v.Pos.File != "" {
		return v.Pos
	}
	return j.Pos
}

// jailFingerprint hashes every resolved value of a jail and its filter, but not where they were
// written: moving a section within a file changes no running jail.
func jailFingerprint(j *config.Jail, actionFP string) string {
	var sb strings.Builder
	keys := make([]string, 0, len(j.Vars))
	for k := range j.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%q\n", k, j.Vars[k].Text)
	}
	fmt.Fprintf(&sb, "logpath=%q maxretry=%d findtime=%d bantime=%d ignore=%v self=%v user=%q maxtracked=%d backend=%q\n",
		j.LogPath, j.MaxRetry, j.FindTime, j.BanTime, j.IgnoreNets, j.IgnoreSelf, j.IgnoreUser, j.MaxTracked, j.Backend)
	if f := j.Filter; f != nil {
		fmt.Fprintf(&sb, "filter=%s file=%s maxlines=%d\n", f.Name, f.File, f.MaxLines)
		opts := make([]string, 0, len(f.Options))
		for k, v := range f.Options {
			opts = append(opts, k+"="+v)
		}
		sort.Strings(opts)
		fmt.Fprintf(&sb, "options=%q\n", opts)
		if f.PrefRegex != nil {
			fmt.Fprintf(&sb, "prefregex=%q\n", f.PrefRegex.Text)
		}
		for _, group := range []struct {
			name string
			vs   []config.Value
		}{{"failregex", f.FailRegex}, {"ignoreregex", f.IgnoreRegex}, {"datepattern", f.DatePattern}} {
			for _, v := range group.vs {
				fmt.Fprintf(&sb, "%s=%q\n", group.name, v.Text)
			}
		}
	}
	sb.WriteString(actionFP)
	return fingerprint(sb.String())
}

func fingerprint(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:12])
}
