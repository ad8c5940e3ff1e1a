// Package logtime finds and parses the timestamp of a log line the way
// fail2ban 1.0.2 does, so that fail2ban's filters, run by logjail, see the
// same line remainder once the date text is cut out.
//
// A Detector holds a list of date formats ("templates"). Without
// datepatterns it tries fail2ban's automatic formats: ISO 8601 and its
// relatives (2005-01-23T21:59:59.123+01:00, 2005/01/23 21:59:59,
// 2005.01.23 ...), syslog and ctime (Jan 23 21:59:59 with optional weekday,
// fraction and year), Apache ([23/Jan/2005:21:59:59 +0100], [Sun Jan 23
// 21:59:59.123 2005]), MySQL, Tomcat, CPanel, ASSP, basic ISO, epoch seconds
// and TAI64N — each first anchored at the line start, then anywhere.
//
// Find returns the byte span fail2ban would cut: the date group, which is
// not always the whole match (for `[Sun Jul 01 12:00:00.123 2018] [error]`
// only the text inside the brackets, leaving "[] [error]"). Like fail2ban
// the detector remembers the format and place of the last date and tries
// them first; a date found further into the line than usual loses to one
// nearer the start, so that dates inside attacker-controlled message text do
// not win.
//
// # Date patterns
//
// New accepts fail2ban `datepattern` lines. A line is a Python regular
// expression (translated by this package, see below) with strptime-like
// directives: %Y %y %m %d %H %I %M %S %f %p %b %B %a %A %j %U %W %w %u %V
// %G %z %Z %c %x %X, fail2ban's %k %l (space-padded hours) and its exact
// forms %Exy %ExY %Exm %Exd %ExH %ExM %ExS %Exk %Exl %ExZ %Exz, and %% for a
// percent sign. Two logjail extensions: %e (day of month, same as %d) and %s
// (seconds since the epoch). Patterns naming a month or day (%b %B %a %A %p
// %c) match ignoring case. The special forms are:
//
//	{^LN-BEG}pattern  date at the start of the line, after at most two
//	                  non-word characters
//	{^LN-BEG}         all automatic formats that are anchored so
//	{DEFAULT}         nothing (as in fail2ban 1.0.2): the automatic formats
//	                  are used only when no template is given at all
//	prefix{DATE}suffix  each automatic format in place of {DATE}
//	{NONE}            lines carry no date (see Detector.None)
//	EPOCH, LEPOCH     epoch seconds; LEPOCH also milli-/microseconds
//	{EPOCH}, {LEPOCH} the same inside a larger pattern
//	TAI64N            @4000000041f4104f00000000 (^ or {^LN-BEG} anchors these)
//	{UNB}pattern      no word boundaries around the date
//	**pattern**       no word boundary on that side
//	{WPLL}            logjail: PHP's date('M j h:i:s') of the WordPress
//	                  Limit Login plugin, "Nov 5 01:23:45": a 12-hour clock
//	                  without am/pm. The year is inferred as for syslog; of
//	                  the am and pm readings the later one not after now+5m
//	                  is taken (the am one if both are ahead).
//
// Several lines may be given; the first template that matches wins.
//
// The regex dialect is Python's: (?P<name>...), (?P=name), lookahead and
// lookbehind, conditionals (?(name)yes|no), inline flags i, m, s, u, lazy
// and bounded repeats, and Unicode classes (\w, \d and \s match non-ASCII
// letters, digits and spaces). It runs on a small backtracking machine that
// follows Python's choice of match, allocates nothing once warm, and gives
// up (no match) after about a million steps. Directives run as single
// instructions, and the most common formats (ISO 8601 and nginx's variant,
// syslog, Apache) have hand-written scanners that stand in for their regex,
// with the regex as fallback whenever a scanner is unsure. Date patterns
// that compile to a plain sequence (literals and directives between
// fail2ban's boundaries, like the usual `\[(%d/%b/%Y:%H:%M:%S %z)\] "`) run
// without the machine too, again with the machine as fallback whenever two
// ways of a directive could both lead on. The tests check all of these
// against the plain regex reading and against fail2ban itself.
//
// # Times
//
// Stamps without a zone are read in Options.Location. A stamp without a
// year is put in the current year, or the previous one when that would be
// more than a day ahead of now (so "Dec 31 23:59:59" read on Jan 1 is last
// year's); a time without a date is today, or yesterday when ahead of now.
// "now" is always passed in; the package has no clock.
//
// # Differences from fail2ban
//
//   - Sub-second fractions (%f, epoch and TAI64N fractions) are kept;
//     fail2ban drops them except for epoch.
//   - Times are computed as instants with Go's time zones; fail2ban compares
//     naive local times, which differs around DST changes and when a stamp
//     carries an explicit zone other than the local one.
//   - Where fail2ban raises an exception on a reading (an unknown zone
//     abbreviation, a month without a day) the text is still cut and no
//     time is returned.
//   - fail2ban counts template hits over all jails of a process (they share
//     templates); here each Detector counts its own. The five-minute
//     "unused template" rule of its reordering uses the now passed to Find.
//   - Match offsets are bytes (fail2ban's are code points; the cache of
//     the last position counts code points, as fail2ban's does). Invalid
//     UTF-8 bytes count as one character each.
//   - A regex error (global flags not at the start, a group name used
//     twice) is reported by New; fail2ban reports it at the first line.
//   - Python's verbose flag (?x), possessive quantifiers, atomic groups,
//     \N{...} escapes and repeat counts above 1000 are not supported.
//   - Where Python would backtrack for very long on a pathological pattern,
//     this package gives up after its step limit and reports no date.
//   - %ExY accepts the years fail2ban accepts at the now passed to Find,
//     rather than at process start.
//   - Python case-insensitive matching also equates İ/ı with i; this package
//     uses Unicode simple folding.
package logtime
