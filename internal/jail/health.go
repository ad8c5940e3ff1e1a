package jail

import (
	"fmt"
	"time"
)

// Defaults of HealthOptions.
const (
	DefaultStaleLines  = 5000
	DefaultStaleTime   = 6 * time.Hour
	DefaultHealthBlock = 500
	DefaultVanishAfter = time.Minute

	minHealthBlock = 100
	// badHostMin is the fewest bad-host lines in a block that make a warning: one odd line
	// (a host name in a log whose filter expects addresses) is not a changed format.
	badHostMin = 5
)

// HealthOptions set when a jail warns that something is wrong with a log. Each warning is in
// Status().Warnings while its condition holds, and logged at Warn once when it appears (and at
// Info when it clears). Checks run every Options.GlobInterval, per file.
//
// Stopped matching: the filter found a failure in the file before (since the jail started,
// backlog included), and since the last one at least StaleLines lines were read and StaleTime
// passed. Both, so that neither a burst of noise nor a quiet night is enough. The defaults
// (5000 lines, 6h) are meant for logs where attacks are routine (sshd on the internet, a web
// server): on a quiet log the warning may be a false alarm, which the message says.
//
// Bad hosts: the lines are looked at in blocks of BlockLines. A block in which failregex
// matched at least 5 lines whose host is no address (filter Result.BadHost), and at least as
// many as it matched with an address, means the failures are there but cannot be counted:
// typically client addresses removed or masked for privacy. This is the silent failure that
// matters most, and it is found within one block.
//
// No date: more than half the lines of a block have no date the filter can read. Their
// failures are then timed when read, which breaks the window after a restart (the backlog) and
// under a delay.
//
// Vanished: a log that existed is gone for VanishAfter (a rotation leaves it missing for an
// instant), or a plain logpath does not exist, or a glob matches no file. A file found by a
// glob that is gone for VanishAfter and no longer matches is simply no longer followed.
type HealthOptions struct {
	StaleLines  int64         // default 5000
	StaleTime   time.Duration // default 6h
	BlockLines  int64         // default 500, at least 100
	VanishAfter time.Duration // default 1m
}

func (h HealthOptions) withDefaults() HealthOptions {
	if h.StaleLines <= 0 {
		h.StaleLines = DefaultStaleLines
	}
	if h.StaleTime <= 0 {
		h.StaleTime = DefaultStaleTime
	}
	if h.BlockLines <= 0 {
		h.BlockLines = DefaultHealthBlock
	}
	h.BlockLines = max(h.BlockLines, minHealthBlock)
	if h.VanishAfter <= 0 {
		h.VanishAfter = DefaultVanishAfter
	}
	return h
}

// check updates the warnings and the files' error states at now, and returns the files found
// by a glob that vanished for good: the caller stops them (without the mutex, since their
// goroutines take it to flush).
func (j *Jail) check(now time.Time) (gone []*file) {
	ho := j.o.Health
	j.mu.Lock()
	defer j.mu.Unlock()
	warn := map[string]string{}
	live := make([]int, len(j.patterns)) // files per pattern that exist now
	keep := j.files[:0]
	for _, fl := range j.files {
		if fl.f == nil {
			if fl.glob && fl.gen != j.gen {
				delete(j.byPath, fl.path) // an error of a file that is no longer there
				continue
			}
			keep = append(keep, fl)
			continue
		}
		st := fl.f.Stats()
		if n := st.ReopenErrors + st.ReadErrors; n > fl.errCount {
			fl.recentErr = st.LastError
			fl.errCount = n
		} else if st.Exists {
			fl.recentErr = ""
		}
		if st.Exists {
			fl.existed, fl.missingSince = true, time.Time{}
			live[fl.pattern]++
		} else {
			if fl.missingSince.IsZero() {
				fl.missingSince = now
			}
			missing := now.Sub(fl.missingSince)
			switch {
			case fl.glob && fl.gen != j.gen && missing >= ho.VanishAfter:
				delete(j.byPath, fl.path)
				gone = append(gone, fl)
				continue
			case fl.glob:
			case !fl.existed:
				warn["missing "+fl.path] = fmt.Sprintf("log %s does not exist; waiting for it to appear", fl.path)
			case missing >= ho.VanishAfter:
				warn["gone "+fl.path] = fmt.Sprintf("log %s is gone (missing for %s); waiting for it to come back", fl.path, missing.Round(time.Second))
			}
		}
		keep = append(keep, fl)
		j.fileWarnings(fl, now, warn)
	}
	clear(j.files[len(keep):])
	j.files = keep
	for i, p := range j.patterns {
		if p.glob && p.err == "" && p.matches == 0 && live[i] == 0 {
			warn["nomatch "+p.text] = fmt.Sprintf("logpath %s matches no file", p.text)
		}
	}
	for k, msg := range warn {
		if _, had := j.warnings[k]; !had {
			j.log.Warn("health warning", "warning", msg)
		}
	}
	for k, msg := range j.warnings {
		if _, has := warn[k]; !has {
			j.log.Info("health warning cleared", "warning", msg)
		}
	}
	j.warnings = warn
	return gone
}

// fileWarnings adds fl's matching and date warnings.
func (j *Jail) fileWarnings(fl *file, now time.Time, warn map[string]string) {
	ho := j.o.Health
	h := &fl.h
	if b := h.last; b.Lines > 0 {
		if b.BadHost >= badHostMin && b.BadHost >= b.Matched {
			warn["badhost "+fl.path] = fmt.Sprintf("log %s: %d of the last %d lines matched the filter but name no address (%d did), so they are not counted: has the log format changed (client addresses removed or masked)? e.g. %q",
				fl.path, b.BadHost, b.Lines, b.Matched, keepLineN(string(h.badHostLine), maxBadHostLine))
		}
		if b.NoDate*2 > b.Lines {
			warn["nodate "+fl.path] = fmt.Sprintf("log %s: %d of the last %d lines have no date the filter can read; their failures are timed when read (check the filter's datepattern)",
				fl.path, b.NoDate, b.Lines)
		}
	}
	if h.everMatched && h.sinceMatch >= ho.StaleLines {
		if quiet := now.Sub(h.lastMatchRead); quiet >= ho.StaleTime {
			warn["stale "+fl.path] = fmt.Sprintf("log %s: no failure in the last %d lines (%s), though the filter matched before: check that the log format still matches the filter (or the log is just quiet)",
				fl.path, h.sinceMatch, quiet.Round(time.Minute))
		}
	}
}

// keepLineN is keepLine with another bound, for messages.
func keepLineN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
