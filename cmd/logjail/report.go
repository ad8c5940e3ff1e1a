package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/store"
)

const (
	// defaultStateDir is where the daemon keeps its database.
	defaultStateDir = "/var/lib/logjail"
	// dbFileName is the database's name in the state directory.
	dbFileName = "logjail.db"
	// defaultReportTop is how many addresses and prefixes report lists.
	defaultReportTop = 10
)

type reportFlags struct {
	since, jail string
	top         int
	json        bool
	state, db   string
}

// newReportCmd returns `logjail report`. It reads the database itself, read-only, so it works
// with the daemon stopped or running. Exit status: 0 done; 1 no database or an unreadable one;
// 2 a usage error.
func newReportCmd() *cobra.Command { return newReportCmdAt(time.Now) }

// newReportCmdAt is newReportCmd with the clock that ends the period (tests).
func newReportCmdAt(now func() time.Time) *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report [--since 7d] [--jail J] [--top N] [--json]",
		Short: "Show who was banned most, from the ban history: addresses, prefixes, jails",
		Long: `Read the ban history in the daemon's database and print, for the bans that started in the
period: per address its bans, its share of all bans, its first and last ban and the mean
interval between its bans; per neighbourhood (/24, /64) its bans and distinct addresses; per
jail its bans and the bans in force now. The database is opened read-only, so the report works
with the daemon stopped or running.

--since is a duration back from now (7d, 12h, 1w; the configuration's durations) or a date
(2026-03-01, 2026-03-01 12:00:00 in local time, or RFC 3339); without it, the whole history
the database keeps (dbpurgeage, 30 days by default). --top limits the addresses and prefixes
listed (0: all). --json prints the report as one JSON document.

Exit status: 0 when the report was printed, 1 when there is no database or it cannot be read,
2 for a mistake in the command line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReport(cmd, f, now())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.since, "since", "", "start of the period: a duration back from now (7d, 12h) or a date (default: the whole history)")
	fl.StringVarP(&f.jail, "jail", "j", "", "only this jail's bans")
	fl.IntVar(&f.top, "top", defaultReportTop, "how many addresses and prefixes to list (0: all)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.StringVar(&f.state, "state", defaultStateDir, "the daemon's state directory (the database is "+dbFileName+" in it)")
	fl.StringVar(&f.db, "db", "", "the database file (default: "+dbFileName+" in the state directory)")
	cmd.MarkFlagsMutuallyExclusive("state", "db")
	return cmd
}

func runReport(cmd *cobra.Command, f reportFlags, now time.Time) error {
	q := store.ReportQuery{Jail: f.jail, Top: f.top, Now: now}
	if f.top < 0 {
		return usageErr(fmt.Errorf("--top %d: want 0 (all) or more", f.top))
	}
	if f.since != "" {
		since, err := parseSince(f.since, now)
		if err != nil {
			return usageErr(err)
		}
		q.Since = since
	}
	path := f.db
	if path == "" {
		path = filepath.Join(f.state, dbFileName)
	}
	// The store warns of rows it cannot read and skips them: say so on stderr.
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.OpenReadOnly(path, store.Options{Logger: logger})
	if err != nil {
		return daemonErr(openReportErr(path, f.db != "", err))
	}
	defer st.Close()
	r, err := st.Report(q)
	if err != nil {
		return daemonErr(fmt.Errorf("%s: %w", path, err))
	}
	if f.json {
		return printJSON(cmd.OutOrStdout(), r)
	}
	printReport(cmd.OutOrStdout(), r)
	return nil
}

// openReportErr turns OpenReadOnly's error into one sentence.
func openReportErr(path string, explicit bool, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist) && explicit:
		return fmt.Errorf("no logjail database at %s", path)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no logjail database at %s: the daemon has not run with this state directory", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot read the logjail database at %s: permission denied (it is root's: run as root)", path)
	case errors.Is(err, store.ErrUnusable), errors.Is(err, store.ErrSchema):
		return fmt.Errorf("cannot read the logjail database at %s: %w", path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// parseSince reads --since: a date, or a duration back from now. Dates go first: the
// configuration's durations allow arithmetic, and would read 2026-03-01 as 2022 seconds.
func parseSince(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), time.Local); err == nil {
			return t, nil
		}
	}
	if looksLikeDate(s) {
		return time.Time{}, fmt.Errorf("--since %q: not a valid date (2026-03-01, 2026-03-01 12:00:00, RFC 3339)", s)
	}
	d, err := config.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration back from now (7d, 12h, 1w) or a date (2026-03-01, 2026-03-01 12:00:00, RFC 3339)", s)
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("--since %q: want a positive duration", s)
	}
	return now.Add(-d), nil
}

// looksLikeDate reports whether s starts like a date (dddd-d), which is never meant as a
// duration.
func looksLikeDate(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) < 6 || s[4] != '-' {
		return false
	}
	for _, c := range s[:4] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s[5] >= '0' && s[5] <= '9'
}

// printReport writes the human report: a summary line, then the addresses, the prefixes and
// the jails, each a table.
func printReport(w io.Writer, r *store.Report) {
	period := "over the whole history"
	if !r.Since.IsZero() {
		period = "from " + fmtTime(r.Since)
	}
	period += " to " + fmtTime(r.Until)
	scope := "every jail"
	if r.Jail != "" {
		scope = "jail " + r.Jail
	}
	if r.Bans == 0 {
		fmt.Fprintf(w, "no bans %s (%s)\n", period, scope)
	} else {
		fmt.Fprintf(w, "%s, %s, %s (%s)\n", plural(int64(r.Bans), "ban", "bans"),
			plural(int64(r.Addresses), "address", "addresses"), period, scope)
	}

	if len(r.TopAddresses) > 0 {
		fmt.Fprintln(w)
		t := newTable(w)
		t.row("ADDRESS\tBANS\tSHARE\tFIRST BAN\tLAST BAN\tMEAN INTERVAL\tJAILS")
		for _, a := range r.TopAddresses {
			mean := "-"
			if a.Bans > 1 {
				mean = fmtSpan(time.Duration(a.MeanInterval))
			}
			t.row("%s\t%d\t%s\t%s\t%s\t%s\t%s", a.Addr, a.Bans, fmtShare(a.Share), fmtTime(a.First), fmtTime(a.Last),
				mean, strings.Join(a.Jails, ","))
		}
		t.flush()
		if len(r.TopAddresses) < r.Addresses {
			fmt.Fprintf(w, "(the top %d of %d addresses; --top 0 lists all)\n", len(r.TopAddresses), r.Addresses)
		}
	}

	if len(r.TopPrefixes) > 0 {
		fmt.Fprintln(w)
		t := newTable(w)
		t.row("PREFIX (/%d, /%d)\tBANS\tSHARE\tADDRESSES\tPREFIX BANS\tFIRST BAN\tLAST BAN", r.Prefix4, r.Prefix6)
		for _, p := range r.TopPrefixes {
			t.row("%s\t%d\t%s\t%d\t%d\t%s\t%s", p.Prefix, p.Bans, fmtShare(p.Share), p.Addresses, p.PrefixBans,
				fmtTime(p.First), fmtTime(p.Last))
		}
		t.flush()
	}

	if len(r.Jails) > 0 {
		fmt.Fprintln(w)
		t := newTable(w)
		t.row("JAIL\tBANS\tSHARE\tTARGETS\tMANUAL\tIN FORCE\tFIRST BAN\tLAST BAN")
		for _, j := range r.Jails {
			first, last := "-", "-"
			if j.Bans > 0 {
				first, last = fmtTime(j.First), fmtTime(j.Last)
			}
			t.row("%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s", j.Jail, j.Bans, fmtShare(j.Share), j.Targets, j.Manual, j.Active, first, last)
		}
		t.flush()
	}
}

// fmtShare writes a share (0..1) as a percentage with one decimal.
func fmtShare(s float64) string { return fmt.Sprintf("%.1f%%", 100*s) }
