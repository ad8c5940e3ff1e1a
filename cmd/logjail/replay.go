package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/jail"
	"github.com/logjail/logjail/internal/tester"
)

type replayFlags struct {
	configDir string
	jail      string
	json      bool
	now       string
}

func newReplayCmd() *cobra.Command {
	var fl replayFlags
	cmd := &cobra.Command{
		Use:   "replay LOG --jail NAME [--config DIR] [--json]",
		Short: "Show who a jail would have banned, and when, over a log file",
		Long: `Run a jail's filter and window over a whole log, with the lines' own timestamps as the
clock, and print every ban the jail would have ordered: when, which address, after how many
failures, and the line that crossed maxretry. Nothing is banned and the firewall is not touched.

The jail may be disabled: this is the question to ask before enabling it. Its ignoreip networks
are honoured (a would-be ban inside one is shown as ignored), and so is its bantime: while an
address would have been banned its failures would not have reached the log, so they are not
counted. ignoreself, ignoreip host names and the logged-in administrators are not checked: they
depend on the moment of the ban.

LOG is a text log or a binary btmp file (told apart by its content), or "-" for standard input.
Dates without a year are placed relative to the file's modification time (--now to change it).

Exit status: 0 when the replay ran, 2 when it could not (unknown jail, broken configuration,
missing log).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplay(cmd, fl, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fl.configDir, "config", "c", defaultConfigDir, "configuration directory")
	f.StringVarP(&fl.jail, "jail", "j", "", "the jail whose filter and settings to use (required)")
	f.BoolVar(&fl.json, "json", false, "print one JSON document")
	f.StringVar(&fl.now, "now", "", "reading time (RFC 3339) for dates without a year and lines without a date (default: the file's modification time)")
	_ = cmd.MarkFlagRequired("jail")
	return cmd
}

// replayJSON is the --json document.
type replayJSON struct {
	Jail     string           `json:"jail"`
	Filter   string           `json:"filter"`
	Log      string           `json:"log"`
	Format   string           `json:"format"`
	MaxRetry int              `json:"maxretry"`
	FindTime string           `json:"findtime"`
	BanTime  string           `json:"bantime"`
	Bans     []replayBanJSON  `json:"bans"`
	Totals   replayTotalsJSON `json:"totals"`
}

type replayBanJSON struct {
	Time      time.Time `json:"time"`
	Addr      string    `json:"addr"`
	Target    string    `json:"target"`
	Failures  int       `json:"failures"`
	Line      string    `json:"line"`
	Lines     []string  `json:"lines"`
	Ignored   bool      `json:"ignored"`
	IgnoredBy string    `json:"ignored_by,omitempty"`
	Until     *string   `json:"until,omitempty"` // RFC 3339, or "permanent"
}

type replayTotalsJSON struct {
	Lines       int64      `json:"lines"`
	NoDate      int64      `json:"no_date"`
	Invalid     int64      `json:"invalid"`
	Cut         int64      `json:"cut"`
	Garbage     int64      `json:"garbage"`
	Matched     int64      `json:"matched"`
	Failures    int64      `json:"failures"`
	TooOld      int64      `json:"too_old"`
	IgnoredUser int64      `json:"ignored_user"`
	NoAddr      int64      `json:"no_addr"`
	BadHost     int64      `json:"bad_host"`
	WhileBanned int64      `json:"while_banned"`
	Bans        int        `json:"bans"`
	Ignored     int        `json:"ignored"`
	Addresses   int        `json:"addresses"`
	First       *time.Time `json:"first,omitempty"`
	Last        *time.Time `json:"last,omitempty"`
}

func runReplay(cmd *cobra.Command, fl replayFlags, logArg string) error {
	j, err := loadReplayJail(fl.configDir, fl.jail)
	if err != nil {
		return exitCode(2, err)
	}
	dns, err := filter.ParseUseDNS(j.UseDNS)
	if err != nil {
		return exitCode(2, fmt.Errorf("jail %s: %w", j.Name, err))
	}
	fopts := filter.Options{UseDNS: dns}
	if dns == filter.DNSYes || dns == filter.DNSWarn {
		ctx := cmd.Context()
		fopts.Resolve = func(host string) ([]netip.Addr, error) {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	f, err := filter.New(j.Filter, fopts)
	if err != nil {
		return exitCode(2, fmt.Errorf("jail %s: %w", j.Name, err))
	}

	var now time.Time
	if fl.now != "" {
		if now, err = time.Parse(time.RFC3339, fl.now); err != nil {
			return exitCode(2, fmt.Errorf("--now: %w", err))
		}
	}
	inputName := logArg
	if logArg == "-" {
		inputName = "<stdin>"
	} else {
		fi, err := os.Stat(logArg)
		if err != nil {
			return exitCode(2, fmt.Errorf("log %s: %w", logArg, errors.Unwrap(err)))
		}
		if fi.IsDir() {
			return exitCode(2, fmt.Errorf("log %s: is a directory", logArg))
		}
		if now.IsZero() {
			now = fi.ModTime()
		}
	}
	in, err := tester.OpenInput(logArg)
	if err != nil {
		return exitCode(2, fmt.Errorf("log %s: %w", logArg, err))
	}
	defer in.Close()

	spec := jail.Spec{
		Name: j.Name, Filter: f, FilterName: j.Filter.Name,
		MaxRetry: j.MaxRetry, FindTime: j.FindTime, MaxTracked: j.MaxTracked, IgnoreUser: j.IgnoreUser,
	}
	ro := jail.ReplayOptions{Now: now, IgnoreNets: j.IgnoreNets, BanTime: j.BanTime}

	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	defer out.Flush()
	doc := replayJSON{
		Jail: j.Name, Filter: j.FilterRef, Log: inputName, MaxRetry: j.MaxRetry,
		FindTime: fmtDuration(j.FindTime), BanTime: fmtDuration(j.BanTime), Bans: []replayBanJSON{},
	}
	if !fl.json {
		fmt.Fprintf(out, "jail %s: filter %s, maxretry %d, findtime %s, bantime %s", j.Name, j.FilterRef, j.MaxRetry, fmtDuration(j.FindTime), fmtDuration(j.BanTime))
		if len(j.IgnoreNets) > 0 {
			fmt.Fprintf(out, ", ignoreip %s", replayPrefixes(j.IgnoreNets))
		}
		if len(j.IgnoreUser) > 0 {
			fmt.Fprintf(out, ", ignoreuser %s", strings.Join(j.IgnoreUser, " "))
		}
		fmt.Fprintf(out, "\nlog %s\n\n", inputName)
	}
	st, runErr := jail.Replay(spec, in, ro, func(b jail.ReplayBan) {
		if fl.json {
			jb := replayBanJSON{
				Time: b.Time, Addr: b.Addr.String(), Target: b.Target.String(), Failures: b.Failures,
				Line: b.Line, Lines: b.Lines, Ignored: b.Ignored,
			}
			if b.Ignored {
				jb.IgnoredBy = b.IgnoredBy.String()
			} else if until := replayUntil(b, j.BanTime); until != "" {
				jb.Until = &until
			}
			doc.Bans = append(doc.Bans, jb)
			return
		}
		what := "ban"
		if b.Ignored {
			what = "ignored"
		}
		fmt.Fprintf(out, "%s  %-7s  %-15s  %d failures", b.Time.Format(time.RFC3339), what, b.Addr, b.Failures)
		switch until := replayUntil(b, j.BanTime); {
		case b.Ignored:
			fmt.Fprintf(out, "  (ignoreip %s)", b.IgnoredBy)
		case until != "":
			fmt.Fprintf(out, "  until %s", until)
		}
		fmt.Fprintf(out, "\n    %s\n", b.Line)
	})
	if runErr != nil {
		out.Flush()
		return exitCode(2, fmt.Errorf("reading %s: %w", inputName, runErr))
	}
	if fl.json {
		doc.Format = st.Format
		doc.Totals = replayTotalsJSON{
			Lines: st.Lines, NoDate: st.NoDate, Invalid: st.Invalid, Cut: st.Cut, Garbage: st.Garbage,
			Matched: st.Matched, Failures: st.Failures, TooOld: st.TooOld, IgnoredUser: st.IgnoredUser,
			NoAddr: st.NoAddr, BadHost: st.BadHost, WhileBanned: st.WhileBanned,
			Bans: st.Bans, Ignored: st.Ignored, Addresses: st.Addresses,
		}
		if !st.First.IsZero() {
			doc.Totals.First, doc.Totals.Last = &st.First, &st.Last
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	printReplayTotals(out, st)
	return nil
}

func replayUntil(b jail.ReplayBan, banTime time.Duration) string {
	switch {
	case b.Ignored:
		return ""
	case banTime == config.Forever:
		return "permanent"
	case !b.Until.IsZero():
		return b.Until.Format(time.RFC3339)
	}
	return ""
}

func printReplayTotals(w io.Writer, st jail.ReplayStats) {
	if st.Bans == 0 {
		fmt.Fprintln(w, "no ban")
	}
	fmt.Fprintln(w)
	what := "lines"
	if st.Format == "btmp" {
		what = "btmp records"
	}
	fmt.Fprintf(w, "%d %s", st.Lines, what)
	if !st.First.IsZero() {
		fmt.Fprintf(w, " dated %s to %s", st.First.Format(time.RFC3339), st.Last.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s of %s", replayCount(st.Bans-st.Ignored, "would-be ban", "would-be bans"), replayCount(st.Addresses, "address", "addresses"))
	if st.Ignored > 0 {
		fmt.Fprintf(w, ", and %d refused by ignoreip", st.Ignored)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d failures found, %d counted", st.Matched, st.Failures)
	extra := []struct {
		n    int64
		what string
	}{
		{st.WhileBanned, "while banned"}, {st.TooOld, "older than findtime"}, {st.IgnoredUser, "by an ignoreuser user"},
		{st.NoAddr, "without an address"},
	}
	for _, e := range extra {
		if e.n > 0 {
			fmt.Fprintf(w, ", %d %s", e.n, e.what)
		}
	}
	fmt.Fprintln(w)
	var notes []string
	lines := func(n int64) string { return replayCount(int(n), "line", "lines") }
	if st.NoDate > 0 {
		notes = append(notes, lines(st.NoDate)+" without a date (timed at the reading time)")
	}
	if st.BadHost > 0 {
		notes = append(notes, lines(st.BadHost)+" matched but name no address")
	}
	if st.Cut > 0 {
		notes = append(notes, lines(st.Cut)+" too long, skipped")
	}
	if st.Invalid > 0 {
		notes = append(notes, lines(st.Invalid)+" with invalid UTF-8 or NUL bytes")
	}
	if st.Garbage > 0 {
		notes = append(notes, replayCount(int(st.Garbage), "garbage btmp record", "garbage btmp records")+" skipped")
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "note: %s\n", strings.Join(notes, "; "))
	}
}

// replayCount writes n and the noun in the right number.
func replayCount(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func replayPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		if p.IsSingleIP() {
			s[i] = p.Addr().String()
		} else {
			s[i] = p.String()
		}
	}
	return strings.Join(s, " ")
}

// loadReplayJail loads the configuration and returns the jail name, with its filter, enabled
// or not. Errors of that jail, or of the configuration as a whole, are returned with their
// file:line.
func loadReplayJail(dir, name string) (*config.Jail, error) {
	cfg, diags := config.Load(dir)
	j := replayFindJail(cfg, name)
	if j == nil {
		if cfg == nil || len(cfg.Jails) == 0 {
			if err := diags.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("no jail in %s", dir)
		}
		var names []string
		for _, cj := range cfg.Jails {
			names = append(names, cj.Name)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("no jail %q in %s (jails: %s)", name, dir, strings.Join(names, ", "))
	}
	if !j.Enabled {
		// config.Load loads the filter of enabled jails only, and applies a jail's own
		// failregex & co. only then. Load again with the jail enabled by a .local of our own,
		// read last, in a copy of the directory made of symbolic links.
		var err error
		if j, diags, err = replayLoadEnabled(dir, name); err != nil {
			return nil, err
		}
	}
	if err := replayJailErrors(diags, name); err != nil {
		return nil, err
	}
	if j.Filter == nil {
		return nil, fmt.Errorf("jail %s has no filter", name)
	}
	return j, nil
}

func replayFindJail(cfg *config.Config, name string) *config.Jail {
	if cfg == nil {
		return nil
	}
	for _, j := range cfg.Jails {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// replayJailErrors returns the errors of the diagnostics that belong to jail name or to no jail, or
// nil.
func replayJailErrors(diags config.Diags, name string) error {
	var msgs []string
	for _, d := range diags.Errors() {
		if d.Section == "" || d.Section == name {
			msgs = append(msgs, d.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// replayOverlay is the file that enables the jail; "~" sorts after the names of jail.d.
const replayOverlay = "~logjail-replay.local"

// replayLoadEnabled loads dir with jail name enabled: a temporary directory holds a symbolic link to
// each entry of dir and of dir/jail.d, and jail.d/~logjail-replay.local, read after every
// other file, sets enabled = true. Paths in the diagnostics are given back in dir.
func replayLoadEnabled(dir, name string) (*config.Jail, config.Diags, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp("", "logjail-replay-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	link := func(from, to string) error {
		entries, err := os.ReadDir(from)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if from == abs && e.Name() == "jail.d" {
				continue
			}
			if err := os.Symlink(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	if err := link(abs, tmp); err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", dir, err)
	}
	jd := filepath.Join(tmp, "jail.d")
	if err := os.Mkdir(jd, 0o700); err != nil {
		return nil, nil, err
	}
	if err := link(filepath.Join(abs, "jail.d"), jd); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("load %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(jd, replayOverlay), []byte("["+name+"]\nenabled = true\n"), 0o600); err != nil {
		return nil, nil, err
	}
	cfg, diags := config.Load(tmp)
	j := replayFindJail(cfg, name)
	if j == nil {
		return nil, nil, fmt.Errorf("no jail %q in %s", name, dir)
	}
	back := func(p string) string {
		if rel, err := filepath.Rel(tmp, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(dir, rel)
		}
		return p
	}
	for i := range diags {
		diags[i].Pos.File = back(diags[i].Pos.File)
		diags[i].Msg = strings.ReplaceAll(diags[i].Msg, tmp, dir)
	}
	j.Pos.File = back(j.Pos.File)
	if j.Filter != nil {
		j.Filter.File = back(j.Filter.File)
	}
	return j, diags, nil
}
