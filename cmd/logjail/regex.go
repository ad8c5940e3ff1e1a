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
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/tester"
)

type regexFlags struct {
	configDir    string
	json         bool
	printMatched bool
	printMissed  bool
	printIgnored bool
	useDNS       string
	datePattern  string
	now          string
	maxLines     int
	top          int
}

func newRegexCmd() *cobra.Command {
	var fl regexFlags
	cmd := &cobra.Command{
		Use:   "regex [flags] LOG FILTER [IGNOREREGEX]",
		Short: "Test a filter against a log file or a line",
		Long: `Test a filter against a log, with the same filter code the daemon runs.

LOG is a file (text, or a binary btmp/wtmp file), "-" for standard input, or one log line.
FILTER is a filter name looked up in CONFIG/filter.d, a path to a .conf file (either may carry
options: sshd[mode=aggressive]), or a literal failregex. IGNOREREGEX is an optional literal
ignoreregex.

Exit status: 0 when the test ran, 2 when it could not (missing file, unknown filter, invalid regex).`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRegex(cmd, fl, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fl.configDir, "config", "c", defaultConfigDir, "configuration directory (filters in DIR/filter.d)")
	f.BoolVar(&fl.json, "json", false, "print one JSON document")
	f.BoolVar(&fl.printMatched, "print-matched", false, "print every matched line")
	f.BoolVar(&fl.printMissed, "print-missed", false, "print every missed line")
	f.BoolVar(&fl.printIgnored, "print-ignored", false, "print every ignored line")
	f.StringVar(&fl.useDNS, "usedns", "", "override usedns: no, raw, warn, yes (default: the filter's, else no)")
	f.StringVarP(&fl.datePattern, "datepattern", "d", "", "override the filter's datepattern")
	f.StringVar(&fl.now, "now", "", "reading time (RFC 3339) for year inference and lines without a date (default: now)")
	f.IntVarP(&fl.maxLines, "maxlines", "l", 0, "override maxlines")
	f.IntVar(&fl.top, "top", 20, "hosts to list in the human summary")
	return cmd
}

// looksLikeFilterName matches what can only be a filter name (with options), never a regex.
var looksLikeFilterName = regexp.MustCompile(`^[\w.-]+(\[.*\])?$`)

// loadFilterArg resolves the FILTER argument; errors are for the user.
func loadFilterArg(dir, arg string) (*config.FilterDef, error) {
	name, _, refErr := config.ParseRef(arg)
	isPath := refErr == nil && (strings.HasSuffix(name, ".conf") || strings.HasSuffix(name, ".local") || strings.ContainsRune(name, '/'))
	if isPath {
		if _, err := os.Stat(name); err != nil {
			return nil, fmt.Errorf("filter file %s: %w", name, errors.Unwrap(err))
		}
	}
	if isPath || (refErr == nil && looksLikeFilterName.MatchString(arg)) {
		if !isPath {
			if _, err := os.Stat(filepath.Join(dir, "filter.d", name+".conf")); err != nil {
				if _, err2 := os.Stat(filepath.Join(dir, "filter.d", name+".local")); err2 != nil {
					return nil, fmt.Errorf("unknown filter %q: no %s", name, filepath.Join(dir, "filter.d", name+".conf"))
				}
			}
		}
		def, diags := config.LoadFilter(dir, arg, nil)
		if err := diags.Err(); err != nil {
			return nil, err
		}
		if def == nil {
			return nil, fmt.Errorf("unknown filter %q", arg)
		}
		return def, nil
	}
	return &config.FilterDef{
		Name:      "(command line)",
		FailRegex: []config.Value{{Text: arg, Pos: config.Pos{File: "<command line>"}}},
		MaxLines:  1,
	}, nil
}

type jsonMatch struct {
	Line int    `json:"line"`
	Host string `json:"host"`
	IP   string `json:"ip"`
	Time string `json:"time"`
	User string `json:"user"`
}

func runRegex(cmd *cobra.Command, fl regexFlags, args []string) error {
	logArg, filterArg := args[0], args[1]
	def, err := loadFilterArg(fl.configDir, filterArg)
	if err != nil {
		return exitCode(2, err)
	}
	if len(args) == 3 {
		def.IgnoreRegex = append(def.IgnoreRegex, config.Value{Text: args[2], Pos: config.Pos{File: "<command line>"}})
	}
	if fl.datePattern != "" {
		def.DatePattern = []config.Value{{Text: fl.datePattern, Pos: config.Pos{File: "<command line>"}}}
	}
	if fl.maxLines > 0 {
		def.MaxLines = fl.maxLines
	}
	dnsText := fl.useDNS
	if v, ok := def.Vars["usedns"]; ok && dnsText == "" {
		dnsText = v.Text
	}
	dns, err := filter.ParseUseDNS(dnsText)
	if err != nil {
		return exitCode(2, err)
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
	f, err := filter.New(def, fopts)
	if err != nil {
		return exitCode(2, err)
	}
	var now time.Time
	if fl.now != "" {
		if now, err = time.Parse(time.RFC3339, fl.now); err != nil {
			return exitCode(2, fmt.Errorf("--now: %w", err))
		}
	}

	var in io.Reader
	inputName := logArg
	if logArg == "-" {
		in, inputName = os.Stdin, "<stdin>"
	} else if _, statErr := os.Stat(logArg); statErr == nil {
		rc, err := tester.OpenInput(logArg)
		if err != nil {
			return exitCode(2, fmt.Errorf("log %s: %w", logArg, err))
		}
		defer rc.Close()
		in = rc
	} else if strings.ContainsAny(logArg, " \t") {
		in, inputName = strings.NewReader(logArg), "<command line>"
	} else {
		return exitCode(2, fmt.Errorf("log %s: %w", logArg, errors.Unwrap(statErr)))
	}

	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	defer out.Flush()
	opts := tester.Options{Now: now, Sample: 2000}
	first := true
	if fl.json {
		out.WriteString(`{"matches":[`)
		opts.OnMatch = func(m tester.Match) {
			jm := jsonMatch{Line: m.Line, Host: m.Host, User: m.User}
			if m.Addr.IsValid() {
				jm.IP = m.Addr.String()
			}
			if !m.Time.IsZero() {
				jm.Time = m.Time.Format(time.RFC3339)
			}
			b, _ := json.Marshal(jm)
			if !first {
				out.WriteByte(',')
			}
			first = false
			out.Write(b)
		}
	} else {
		if fl.printMatched {
			opts.OnMatch = func(m tester.Match) { fmt.Fprintf(out, "matched %d: %s\n", m.Line, m.Text) }
		}
		if fl.printMissed {
			opts.OnMissed = func(n int, s string) { fmt.Fprintf(out, "missed %d: %s\n", n, s) }
		}
		if fl.printIgnored {
			opts.OnIgnored = func(n int, s string) { fmt.Fprintf(out, "ignored %d: %s\n", n, s) }
		}
	}
	st, sample, runErr := tester.Run(f, in, opts)
	if runErr != nil {
		out.Flush()
		return exitCode(2, fmt.Errorf("reading %s: %w", inputName, runErr))
	}
	if fl.json {
		fmt.Fprintf(out, `],"lines":%d,"matched":%d,"ignored":%d,"missed":%d,"no_date":%d}`+"\n",
			st.Lines, st.Matched, st.Ignored, st.Missed, st.NoDate)
		return nil
	}
	printSummary(out, f, def, inputName, st, tester.Timings(f, sample), fl.top)
	return nil
}

func printSummary(w io.Writer, f *filter.Filter, def *config.FilterDef, input string, st *tester.Stats, timings []tester.Timing, top int) {
	src := def.File
	if src == "" {
		src = "<command line>"
	}
	fmt.Fprintf(w, "\nFilter %s (%s), log %s\n\n", def.Name, src, input)
	section := func(title string, n int) { fmt.Fprintf(w, "%s: %d total\n", title, n) }
	byRegex := map[*filter.Regex]tester.Timing{}
	for _, t := range timings {
		byRegex[t.Regex] = t
	}
	line := func(i int, hits int, r *filter.Regex) {
		t := byRegex[r]
		flag := ""
		if t.Slow {
			flag = "  SLOW"
			if r.Engine == filter.EngineBacktrack {
				flag = "  SLOW (backtracking engine)"
			}
		}
		fmt.Fprintf(w, "|  %2d) [%d] %s\n|        %s/line%s\n", i+1, hits, r.Source, t.PerLine, flag)
	}
	if f.Pref != nil {
		fmt.Fprintf(w, "Prefregex: %s\n", f.Pref.Source)
	}
	section("Failregex", st.Matched)
	hits := st.RegexHits
	for i, r := range f.Fail {
		line(i, hits[i], r)
	}
	fmt.Fprintln(w, "`-")
	section("Ignoreregex", st.Ignored)
	for i, r := range f.Ignore {
		line(i, st.IgnoreHits[i], r)
	}
	fmt.Fprintln(w, "`-")
	fmt.Fprintln(w, "\nDate formats found:")
	names := make([]string, 0, len(st.DateFormats))
	for n := range st.DateFormats {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return st.DateFormats[names[i]] > st.DateFormats[names[j]] })
	for _, n := range names {
		fmt.Fprintf(w, "|  [%d] %s\n", st.DateFormats[n], n)
	}
	fmt.Fprintln(w, "`-")

	type hc struct {
		a netip.Addr
		n int
	}
	hosts := make([]hc, 0, len(st.Hosts))
	for a, n := range st.Hosts {
		hosts = append(hosts, hc{a, n})
	}
	sort.Slice(hosts, func(i, j int) bool {
		if hosts[i].n != hosts[j].n {
			return hosts[i].n > hosts[j].n
		}
		return hosts[i].a.Less(hosts[j].a)
	})
	fmt.Fprintf(w, "\nHosts: %d distinct\n", len(hosts))
	for i, h := range hosts {
		if i == top {
			fmt.Fprintf(w, "|  ... %d more\n", len(hosts)-top)
			break
		}
		fmt.Fprintf(w, "|  %8d  %s\n", h.n, h.a)
	}
	for id, n := range st.IDs {
		fmt.Fprintf(w, "|  %8d  id %s\n", n, id)
	}
	fmt.Fprintln(w, "`-")
	fmt.Fprintf(w, "\nLines: %d lines, %d ignored, %d matched, %d missed, %d with no date\n",
		st.Lines, st.Ignored, st.Matched, st.Missed, st.NoDate)
	if st.BadHost > 0 {
		fmt.Fprintf(w, "Warning: %d lines matched a failregex but the host captured is no address (they count as missed)\n", st.BadHost)
	}
	if st.Timeouts > 0 {
		fmt.Fprintf(w, "Warning: %d lines hit the backtracking regex timeout\n", st.Timeouts)
	}
	if st.Garbage > 0 {
		fmt.Fprintf(w, "Warning: %d btmp records were garbage or partial and skipped\n", st.Garbage)
	}
	secs := st.Elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(st.Lines) / secs
	}
	fmt.Fprintf(w, "[processed in %.3f s, %.0f lines/s]\n", secs, rate)
}
