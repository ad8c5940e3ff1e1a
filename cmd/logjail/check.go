package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
)

func newCheckCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "check [--config DIR]",
		Short: "Load the whole configuration and report every error and warning",
		Long: `Load jail.conf, jail.d/, their .local files and the filter of every enabled jail, compile
every regex, and print each enabled jail with its resolved settings, then every error and warning
with its file and line. Exit status 1 when there is any error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.OutOrStdout(), dir)
		},
	}
	cmd.Flags().StringVarP(&dir, "config", "c", defaultConfigDir, "configuration directory")
	return cmd
}

func runCheck(w io.Writer, dir string) error {
	cfg, diags := config.Load(dir)
	if cfg == nil {
		cfg = &config.Config{Dir: dir}
	}
	enabled := 0
	for _, j := range cfg.Jails {
		if !j.Enabled {
			continue
		}
		enabled++
		fmt.Fprintf(w, "[%s]  (%s)\n", j.Name, j.Pos)
		kv := func(k, v string) { fmt.Fprintf(w, "  %-11s %s\n", k, v) }
		kv("filter", j.FilterRef)
		kv("logpath", strings.Join(j.LogPath, " "))
		kv("backend", j.Backend)
		kv("maxretry", fmt.Sprint(j.MaxRetry))
		kv("findtime", fmtDuration(j.FindTime))
		kv("bantime", fmtDuration(j.BanTime))
		if inc := j.BanTimeIncrement; inc.Enabled {
			kv("repeat", describeIncrement(inc))
			if err := ban.CheckBanTimeIncrement(inc); err != nil {
				key := "bantime.increment"
				var ie *ban.IncrementError
				if errors.As(err, &ie) {
					key = ie.Key
				}
				pos := j.Pos
				if v, ok := j.Vars[key]; ok && v.Pos.File != "" {
					pos = v.Pos
				}
				diags = append(diags, config.Diag{Severity: config.Error, Pos: pos, Section: j.Name, Key: key, Msg: err.Error()})
			}
		}
		if sn := j.Subnet; sn.MaxHosts > 0 {
			kv("subnet", fmt.Sprintf("ban the /%d (IPv6 /%d) once %d of its addresses are banned within %s",
				sn.Prefix4, sn.Prefix6, sn.MaxHosts, fmtDuration(sn.FindTime)))
		}
		kv("ignoreip", strings.Join(j.IgnoreIP, " "))
		kv("ignoreself", fmt.Sprint(j.IgnoreSelf))
		if len(j.IgnoreUser) > 0 {
			kv("ignoreuser", strings.Join(j.IgnoreUser, " "))
		}
		kv("usedns", j.UseDNS)
		kv("port", j.Port)
		kv("protocol", j.Protocol)
		kv("chain", j.Chain)
		kv("blocktype", j.BlockType)
		var acts []string
		for _, a := range j.Actions {
			acts = append(acts, a.Name)
		}
		kv("action", strings.Join(acts, " "))
		if j.Filter == nil {
			fmt.Fprintln(w)
			continue
		}
		diags = append(diags, checkFilter(w, j)...)
		fmt.Fprintln(w)
	}
	if enabled == 0 {
		fmt.Fprintf(w, "no enabled jail in %s\n", dir)
	}
	sort.SliceStable(diags, func(i, k int) bool {
		a, b := diags[i], diags[k]
		if a.Severity != b.Severity {
			return a.Severity < b.Severity
		}
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		return a.Pos.Line < b.Pos.Line
	})
	nerr := 0
	for _, d := range diags {
		if d.Severity == config.Error {
			nerr++
		}
		fmt.Fprintln(w, d)
	}
	fmt.Fprintf(w, "%d jails enabled, %d errors, %d warnings\n", enabled, nerr, len(diags)-nerr)
	if nerr > 0 {
		return exitCode(1, fmt.Errorf("%d errors in %s", nerr, dir))
	}
	return nil
}

// checkFilter compiles the jail's filter and returns what is wrong or worth a warning with it.
func checkFilter(w io.Writer, j *config.Jail) config.Diags {
	var diags config.Diags
	def := j.Filter
	dns, err := filter.ParseUseDNS(j.UseDNS)
	if err != nil {
		dns = filter.DNSNo
	}
	f, err := filter.New(def, filter.Options{UseDNS: dns})
	if err != nil {
		d := config.Diag{Severity: config.Error, Section: j.Name, Key: "filter", Msg: err.Error(), Pos: config.Pos{File: def.File}}
		var ce *filter.CompileError
		if errors.As(err, &ce) {
			d.Pos, d.Key, d.Msg = ce.Pos, ce.Key, fmt.Sprintf("filter %s: %v", ce.Filter, ce.Err)
		}
		return append(diags, d)
	}
	fmt.Fprintf(w, "  %-11s %d failregex, %d ignoreregex, maxlines %d (%s)\n", "regexes", len(f.Fail), len(f.Ignore), f.MaxLines, def.File)
	for i, r := range f.Fail {
		pos := f.FailPos[i]
		if r.Engine == filter.EngineBacktrack {
			diags = append(diags, config.Diag{Severity: config.Warning, Pos: pos, Section: j.Name, Key: "failregex",
				Msg: fmt.Sprintf("filter %s: needs the backtracking engine (look-around, back-reference or conditional), slower and bounded by a per-line timeout: %s", def.Name, r.Source)})
		}
		for _, u := range r.Unknown {
			diags = append(diags, config.Diag{Severity: config.Warning, Pos: pos, Section: j.Name, Key: "failregex",
				Msg: fmt.Sprintf("filter %s: %s is no known tag; it matches its own text", def.Name, u)})
		}
	}
	return diags
}

// fmtDuration prints a duration the way the configuration writes it: 10m, 1h30m, 1d, 2w.
func fmtDuration(d config.Duration) string {
	if d == config.Forever {
		return "-1 (permanent)"
	}
	if d <= 0 || d%time.Second != 0 {
		return d.String()
	}
	units := []struct {
		n string
		d time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	var b strings.Builder
	for _, u := range units {
		if d >= u.d {
			fmt.Fprintf(&b, "%d%s", d/u.d, u.n)
			d %= u.d
		}
	}
	return b.String()
}

// describeIncrement says how a repeat offender's ban time grows.
func describeIncrement(inc config.BanTimeIncrement) string {
	var s string
	factor := inc.Factor
	if factor == 0 {
		factor = 1
	}
	switch {
	case len(inc.Multipliers) > 0:
		s = fmt.Sprintf("bantime × %v × multipliers %v", factor, inc.Multipliers)
	case strings.TrimSpace(inc.Formula) == "":
		s = fmt.Sprintf("bantime × 2^(earlier bans) × %v", factor)
	default:
		s = "bantime.formula " + inc.Formula
	}
	if inc.MaxTime > 0 {
		s += ", at most " + fmtDuration(inc.MaxTime)
	}
	if inc.RndTime > 0 {
		s += ", plus up to " + fmtDuration(inc.RndTime) + " at random"
	}
	if inc.OverallJails {
		s += ", bans of every jail count"
	}
	return s
}
