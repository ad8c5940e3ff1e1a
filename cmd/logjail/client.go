package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/control"
)

// The client commands talk to the daemon over its control socket. Exit status: 0 done; 1 the
// daemon is not running or refused the request (its message is printed); 2 a usage error found
// before asking (bad address, bad duration, wrong arguments).

// newClientCmds returns the commands that talk to a running daemon.
func newClientCmds() []*cobra.Command {
	return []*cobra.Command{
		newStatusCmd(), newBannedCmd(), newBanCmd(), newUnbanCmd(),
		newExplainCmd(), newReloadCmd(), newStopCmd(),
	}
}

// clientFlags are the flags every client command has.
type clientFlags struct {
	socket string
	json   bool
}

func (f *clientFlags) register(cmd *cobra.Command) {
	def := control.DefaultSocket
	if env := os.Getenv("LOGJAIL_SOCKET"); env != "" {
		def = env
	}
	cmd.Flags().StringVar(&f.socket, "socket", def, "the daemon's control socket (also $LOGJAIL_SOCKET)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the daemon's reply as JSON")
}

func (f *clientFlags) client(cmd *cobra.Command) *control.Client {
	return control.NewClient(f.socket).WithContext(cmd.Context())
}

// daemonErr is a failed request: exit status 1 with the client's or the daemon's sentence.
func daemonErr(err error) error { return exitCode(1, err) }

// usageErr is a mistake in the command line found before asking the daemon.
func usageErr(err error) error { return exitCode(2, err) }

// jailCompletion offers the running jails' names as the first argument; with no daemon it
// offers nothing and says nothing.
func jailCompletion(f *clientFlags) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		st, err := control.NewClient(f.socket).WithContext(ctx).Status("")
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, j := range st.Jails {
			names = append(names, j.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func newStatusCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status [JAIL]",
		Short: "Show the daemon's jails: files, lines read, failures, bans, warnings and errors",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.client(cmd).Status(firstArg(args))
			if err != nil {
				return daemonErr(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st, time.Now())
			return nil
		},
	}
	f.register(cmd)
	cmd.ValidArgsFunction = jailCompletion(&f)
	return cmd
}

func newBannedCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "banned [JAIL]",
		Short: "List the bans in force",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := f.client(cmd).Banned(firstArg(args))
			if err != nil {
				return daemonErr(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			printBanned(cmd.OutOrStdout(), rep.Bans, time.Now())
			return nil
		},
	}
	f.register(cmd)
	cmd.ValidArgsFunction = jailCompletion(&f)
	return cmd
}

func newBanCmd() *cobra.Command {
	var f clientFlags
	var forText string
	var force bool
	cmd := &cobra.Command{
		Use:   "ban JAIL ADDR [--for DURATION] [--force]",
		Short: "Ban an address or a prefix in a jail",
		Long: `Ban an address (192.0.2.7, 2001:db8::1) or a whole prefix (43.229.0.0/16) in a jail.

--for sets how long: seconds (600) or with a unit (10m, 1h, 1d, 1w, 1h30m); -1 or "permanent"
bans for good. Without it the jail's bantime applies. The jail's ignore list applies too: an
ignoreip address or the address of a logged-in administrator is refused unless --force (the
host's own addresses are refused always).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := control.ParseTarget(args[1])
			if err != nil {
				return usageErr(err)
			}
			req := control.BanRequest{Jail: args[0], Target: control.FormatTarget(p), Force: force}
			if cmd.Flags().Changed("for") {
				if req.For, err = parseBanDuration(forText); err != nil {
					return usageErr(err)
				}
			}
			rep, err := f.client(cmd).Ban(req)
			if err != nil {
				return daemonErr(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			printBan(cmd.OutOrStdout(), rep.Ban, time.Now())
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&forText, "for", "", "ban duration: 600, 10m, 1h, 1d, 1w, -1 for permanent (default: the jail's bantime)")
	cmd.Flags().BoolVar(&force, "force", false, "ban even an ignored address or a logged-in administrator's")
	cmd.ValidArgsFunction = jailCompletion(&f)
	return cmd
}

// parseBanDuration reads --for: the configuration's durations, or "permanent".
func parseBanDuration(s string) (control.Duration, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "permanent", "forever":
		return control.Permanent, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("--for %q: want seconds or a duration like 10m, 1h, 1d, 1w, or -1 for permanent", s)
	}
	if d == config.Forever {
		return control.Permanent, nil
	}
	if d < time.Second {
		return 0, fmt.Errorf("--for %q: a ban lasts at least a second (-1 is permanent)", s)
	}
	return control.Duration(d), nil
}

func newUnbanCmd() *cobra.Command {
	var f clientFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "unban [JAIL] ADDR | unban [JAIL] --all",
		Short: "Lift a ban, or every ban (of a jail, or of all jails)",
		Long: `Lift the ban of an address or prefix, exactly as it was banned, in one jail or in every jail;
with --all, lift every ban of the jail named, or of every jail.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if all {
				if len(args) > 1 {
					return errors.New("unban --all takes at most a jail name")
				}
				return nil
			}
			if len(args) < 1 || len(args) > 2 {
				return errors.New("unban takes [JAIL] ADDR, or [JAIL] --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var req control.UnbanRequest
			if all {
				req = control.UnbanRequest{Jail: firstArg(args), All: true}
			} else {
				addr := args[len(args)-1]
				if len(args) == 2 {
					req.Jail = args[0]
				}
				p, err := control.ParseTarget(addr)
				if err != nil {
					return usageErr(err)
				}
				req.Target = control.FormatTarget(p)
			}
			rep, err := f.client(cmd).Unban(req)
			if err != nil {
				return daemonErr(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			w := cmd.OutOrStdout()
			if len(rep.Unbanned) == 0 {
				fmt.Fprintln(w, "no ban lifted")
			}
			for _, b := range rep.Unbanned {
				fmt.Fprintf(w, "%s: unbanned %s\n", b.Jail, b.Target)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "lift every ban (of JAIL when named)")
	cmd.ValidArgsFunction = jailCompletion(&f)
	return cmd
}

func newExplainCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "explain ADDR",
		Short: "Show what each jail knows about an address: failures, window, ignore list, ban",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := control.ParseAddr(args[0])
			if err != nil {
				return usageErr(err)
			}
			rep, err := f.client(cmd).Explain(a.String())
			if err != nil {
				return daemonErr(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			printExplain(cmd.OutOrStdout(), rep, time.Now())
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newReloadCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "reload [JAIL]",
		Short: "Have the daemon read its configuration again; a configuration with errors is refused",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := f.client(cmd).Reload(firstArg(args))
			if err != nil {
				return daemonErr(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			printReload(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	f.register(cmd)
	cmd.ValidArgsFunction = jailCompletion(&f)
	return cmd
}

func newStopCmd() *cobra.Command {
	var f clientFlags
	var noWait bool
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the daemon: it lifts its bans from the firewall and removes its chains",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := f.client(cmd)
			if err := c.Stop(); err != nil {
				return daemonErr(err)
			}
			if !noWait {
				if err := c.WaitStopped(control.DefaultTimeout); err != nil {
					return daemonErr(err)
				}
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), struct{}{})
			}
			if noWait {
				fmt.Fprintln(cmd.OutOrStdout(), "logjail is stopping")
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "logjail stopped")
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the daemon has accepted, without waiting for it to stop")
	return cmd
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// Human output.

const timeLayout = "2006-01-02 15:04:05"

func fmtTime(t time.Time) string { return t.Local().Format(timeLayout) }

// fmtSpan writes a span with its two leading units: 45s, 5m12s, 2h3m, 3d4h, 1w2d.
func fmtSpan(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Second {
		return "<1s"
	}
	d = d.Round(time.Second)
	units := []struct {
		n string
		d time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	var b strings.Builder
	for i, u := range units {
		if d < u.d {
			continue
		}
		fmt.Fprintf(&b, "%d%s", d/u.d, u.n)
		d %= u.d
		if i+1 < len(units) && d >= units[i+1].d {
			fmt.Fprintf(&b, "%d%s", d/units[i+1].d, units[i+1].n)
		}
		break
	}
	return b.String()
}

// fmtBanTime writes a jail's bantime or a ban's length.
func fmtBanTime(d control.Duration) string {
	if d < 0 {
		return "permanent"
	}
	return fmtDuration(time.Duration(d))
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// table aligns tab-separated cells with two spaces between columns and writes the lines to w
// without the padding a last empty cell would leave.
type table struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) row(format string, args ...any) { fmt.Fprintf(t.tw, format+"\n", args...) }

func (t *table) flush() {
	t.tw.Flush()
	for _, l := range strings.SplitAfter(t.buf.String(), "\n") {
		if l == "" {
			continue
		}
		io.WriteString(t.w, strings.TrimRight(l, " \n")+"\n")
	}
	t.buf.Reset()
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func printStatus(w io.Writer, st *control.StatusReply, now time.Time) {
	head := []string{"logjail " + st.Version, fmt.Sprintf("pid %d", st.PID)}
	if !st.Started.IsZero() {
		head = append(head, "up "+fmtSpan(now.Sub(st.Started)))
	}
	if st.Config != "" {
		head = append(head, "config "+st.Config)
	}
	fmt.Fprintln(w, strings.Join(head, "  "))
	switch {
	case st.State != "":
		fmt.Fprintf(w, "state %s\n", st.State)
	case st.StateError != "":
		fmt.Fprintf(w, "state NONE: bans will not survive a restart: %s\n", st.StateError)
	}
	var nwarn, nerr int64
	for _, j := range st.Jails {
		nwarn += int64(len(j.Warnings))
		nerr += int64(len(j.Errors))
	}
	summary := []string{plural(int64(len(st.Jails)), "jail running", "jails running")}
	if st.Starting {
		summary = append(summary, "STARTING: more jails to come")
	}
	if len(st.Broken) > 0 {
		summary = append(summary, fmt.Sprintf("%d BROKEN", len(st.Broken)))
	}
	if nwarn > 0 {
		summary = append(summary, plural(nwarn, "WARNING", "WARNINGS"))
	}
	if nerr > 0 {
		summary = append(summary, plural(nerr, "ERROR", "ERRORS"))
	}
	fmt.Fprintln(w, strings.Join(summary, ", "))

	for _, j := range st.Jails {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "[%s]  filter %s, maxretry %d in %s, bantime %s\n",
			j.Name, j.Filter, j.MaxRetry, fmtDuration(time.Duration(j.FindTime)), fmtBanTime(j.BanTime))
		t := newTable(w)
		for _, m := range j.Errors {
			t.row("  ERROR\t%s", m)
		}
		for _, m := range j.Warnings {
			t.row("  WARNING\t%s", m)
		}
		for _, fs := range j.Files {
			t.row("  file\t%s\t%s", fs.Path, fileState(fs))
		}
		if len(j.Files) == 0 {
			t.row("  file\tnone")
		}
		t.row("  lines\t%d read, %d without a date, %d skipped", j.LinesRead, j.LinesNoDate, j.LinesSkipped)
		failures := fmt.Sprintf("%d counted", j.Failures)
		if j.IgnoredUser > 0 {
			failures += fmt.Sprintf(", %d of ignored users", j.IgnoredUser)
		}
		t.row("  failures\t%s", failures)
		tracked := plural(int64(j.Tracked), "address", "addresses")
		if j.Evicted > 0 {
			tracked += fmt.Sprintf(", %d evicted by the cap", j.Evicted)
		}
		t.row("  tracked\t%s", tracked)
		banned := fmt.Sprintf("%d now, %d in total, %d refused by the ignore list", j.Banned, j.TotalBanned, j.Refused)
		if j.AlreadyBanned > 0 {
			banned += fmt.Sprintf(", maxretry reached %s while banned", plural(j.AlreadyBanned, "more time", "more times"))
		}
		t.row("  banned\t%s", banned)
		if j.Repeat > 0 || j.Neighbourhoods > 0 {
			t.row("  repeat\t%s in force banned before; %s since start",
				plural(int64(j.Repeat), "address", "addresses"), plural(j.Neighbourhoods, "neighbourhood banned", "neighbourhoods banned"))
		}
		if j.NextUnban != nil {
			t.row("  next unban\t%s (in %s)", fmtTime(*j.NextUnban), fmtSpan(j.NextUnban.Sub(now)))
		}
		last := "none"
		if j.LastFailure != nil {
			last = fmt.Sprintf("%s (%s ago)", fmtTime(*j.LastFailure), fmtSpan(now.Sub(*j.LastFailure)))
		}
		t.row("  last failure\t%s", last)
		t.flush()
	}
	for _, b := range st.Broken {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "[%s]  BROKEN: not running\n", b.Name)
		t := newTable(w)
		for _, m := range b.Errors {
			t.row("  ERROR\t%s", m)
		}
		t.flush()
	}
}

func fileState(fs control.FileStatus) string {
	if fs.Error != "" {
		return "ERROR: " + fs.Error
	}
	if !fs.Exists {
		return "missing (waiting for it)"
	}
	s := fmt.Sprintf("%s, %s read", plural(fs.Lines, "line", "lines"), fmtBytes(fs.Bytes))
	if fs.Rotations > 0 {
		s += ", " + plural(fs.Rotations, "rotation", "rotations")
	}
	if fs.CutLines > 0 {
		s += fmt.Sprintf(", %d cut (too long)", fs.CutLines)
	}
	return s
}

func printBanned(w io.Writer, bans []control.Ban, now time.Time) {
	if len(bans) == 0 {
		fmt.Fprintln(w, "no bans in force")
		return
	}
	t := newTable(w)
	t.row("JAIL\tTARGET\tSINCE\tUNTIL\tLEFT\tFAILURES\tNOTE")
	for _, b := range bans {
		until, left := "permanent", "-"
		if b.End != nil {
			until, left = fmtTime(*b.End), fmtSpan(b.End.Sub(now))
		}
		failures := "-"
		if b.Failures > 0 {
			failures = fmt.Sprint(b.Failures)
		}
		t.row("%s\t%s\t%s\t%s\t%s\t%s\t%s", b.Jail, b.Target, fmtTime(b.Start), until, left, failures, banNote(b))
	}
	t.flush()
}

// banNote says what is special about a ban: manual, a repeat offender's, a neighbourhood's,
// not in the kernel yet, an action error.
func banNote(b control.Ban) string {
	var notes []string
	if b.Manual {
		notes = append(notes, "manual")
	}
	if b.Count > 1 {
		notes = append(notes, fmt.Sprintf("banned %s", ordinalTimes(b.Count)))
	}
	if b.Neighbourhood {
		n := "neighbourhood"
		if b.Failures > 0 {
			n += fmt.Sprintf(" (%d of its addresses banned)", b.Failures)
		}
		notes = append(notes, n)
	}
	if !b.Applied {
		notes = append(notes, "rule pending")
	}
	if b.Error != "" {
		notes = append(notes, "ERROR: "+b.Error)
	}
	return strings.Join(notes, ", ")
}

// ordinalTimes says how many times: "twice", "3 times".
func ordinalTimes(n int) string {
	if n == 2 {
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

func printBan(w io.Writer, b control.Ban, now time.Time) {
	if b.End == nil {
		fmt.Fprintf(w, "%s: banned %s permanently", b.Jail, b.Target)
	} else {
		fmt.Fprintf(w, "%s: banned %s until %s (%s)", b.Jail, b.Target, fmtTime(*b.End), fmtSpan(b.End.Sub(now)))
	}
	if b.Count > 1 {
		fmt.Fprintf(w, "; banned %s", ordinalTimes(b.Count))
	}
	if !b.Applied {
		fmt.Fprint(w, "; the firewall rule is pending")
	}
	fmt.Fprintln(w)
	if b.Error != "" {
		fmt.Fprintf(w, "  ERROR  %s\n", b.Error)
	}
}

func printExplain(w io.Writer, rep *control.ExplainReply, now time.Time) {
	if len(rep.Jails) == 0 {
		fmt.Fprintf(w, "%s: no jail is running\n", rep.Addr)
		return
	}
	for i, j := range rep.Jails {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "[%s]  %s: %d of %d failures within %s", j.Jail, rep.Addr, j.Failures, j.MaxRetry, fmtDuration(time.Duration(j.FindTime)))
		if j.ResetsAt != nil {
			fmt.Fprintf(w, ", window resets at %s (in %s)", fmtTime(*j.ResetsAt), fmtSpan(j.ResetsAt.Sub(now)))
		}
		fmt.Fprintln(w)
		t := newTable(w)
		ignored := "no"
		if j.Ignored {
			ignored = "YES: " + j.IgnoredWhy
			if j.IgnoredWhy == "" {
				ignored = "YES"
			}
		}
		t.row("  ignored\t%s", ignored)
		ban := "not banned"
		if b := j.Ban; b != nil {
			if b.Target != rep.Addr {
				ban = "banned as part of " + b.Target
			} else {
				ban = "banned"
			}
			if b.End == nil {
				ban += " permanently"
			} else {
				ban += fmt.Sprintf(" until %s (%s left)", fmtTime(*b.End), fmtSpan(b.End.Sub(now)))
			}
			if note := banNote(*b); note != "" {
				ban += "; " + note
			}
		}
		t.row("  ban\t%s", ban)
		t.flush()
		if len(j.Times) == len(j.Lines) {
			for k := range j.Times {
				fmt.Fprintf(w, "    %s  %s\n", fmtTime(j.Times[k]), j.Lines[k])
			}
			continue
		}
		for _, t := range j.Times {
			fmt.Fprintf(w, "    %s\n", fmtTime(t))
		}
		for _, l := range j.Lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

func printReload(w io.Writer, rep *control.ReloadReply) {
	fmt.Fprintln(w, "reloaded")
	t := newTable(w)
	for _, r := range []struct {
		what  string
		names []string
	}{{"started", rep.Started}, {"restarted", rep.Restarted}, {"stopped", rep.Stopped}, {"unchanged", rep.Unchanged}} {
		if len(r.names) > 0 {
			t.row("  %s\t%s", r.what, strings.Join(r.names, ", "))
		}
	}
	for _, m := range rep.Warnings {
		t.row("  WARNING\t%s", m)
	}
	t.flush()
}
