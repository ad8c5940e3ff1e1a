package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// durationUnits are the unit words fail2ban's MyTime.str2seconds knows (case-insensitive),
// in seconds. A month is a twelfth of a year and a year is 365.25 days, as in fail2ban.
func durationUnit(u string) (float64, bool) {
	switch strings.ToLower(u) {
	case "s", "ss", "se", "sec", "second", "seconds":
		return 1, true
	case "m", "mm", "mi", "min", "minute", "minutes":
		return 60, true
	case "h", "hh", "ho", "hou", "hour", "hours":
		return 3600, true
	case "d", "dd", "da", "day", "days":
		return 86400, true
	case "w", "ww", "we", "wee", "week", "weeks":
		return 7 * 86400, true
	case "mo", "mon", "month", "months":
		return (365*3 + 366) * 86400 / 4 / 12, true
	case "y", "yy", "ye", "yea", "year", "years":
		return (365*3 + 366) * 86400 / 4, true
	}
	return 0, false
}

// ParseDuration parses a time span the way fail2ban writes them: a number of seconds ("600"),
// a number with a unit ("10m", "1h", "1d", "2w", "1 hour", "3 days", "1mo", "1y"), or a sum of
// such terms ("1h30m", "1d 12h", "1h+30min", "1y-6mo"). Numbers may have a fraction ("1.5h").
// Any negative result, usually written "-1", is Forever (fail2ban bans forever then).
//
// fail2ban evaluates the text as a Python expression after rewriting the units; other
// arithmetic (*, /, parentheses) is not accepted here.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty duration")
	}
	var total float64
	i := 0
	first := true
	for {
		for i < len(t) && isSpaceByte(t[i]) {
			i++
		}
		if i >= len(t) {
			if first {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			break
		}
		sign := 1.0
		switch {
		case t[i] == '+' || t[i] == '-':
			if t[i] == '-' {
				sign = -1
			}
			i++
			for i < len(t) && isSpaceByte(t[i]) {
				i++
			}
		case !first && !isNumStart(t[i]):
			return 0, fmt.Errorf("invalid duration %q: unexpected %q", s, t[i:])
		}
		j := i
		for j < len(t) && (t[j] >= '0' && t[j] <= '9' || t[j] == '.') {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("invalid duration %q: expected a number at %q", s, t[i:])
		}
		n, err := strconv.ParseFloat(t[i:j], 64)
		if err != nil || strings.Count(t[i:j], ".") > 1 {
			return 0, fmt.Errorf("invalid duration %q: bad number %q", s, t[i:j])
		}
		i = j
		k := i
		for k < len(t) && isSpaceByte(t[k]) {
			k++
		}
		u := k
		for u < len(t) && (t[u] >= 'a' && t[u] <= 'z' || t[u] >= 'A' && t[u] <= 'Z') {
			u++
		}
		mult := 1.0
		if u > k {
			m, ok := durationUnit(t[k:u])
			if !ok {
				return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use s, m, h, d, w, mo or y)", s, t[k:u])
			}
			mult = m
			i = u
		}
		total += sign * n * mult
		first = false
	}
	if total < 0 {
		return Forever, nil
	}
	if total*1e9 > math.MaxInt64 {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return time.Duration(math.Round(total * 1e9)), nil
}

func isNumStart(c byte) bool { return c >= '0' && c <= '9' || c == '.' }

// parseBool accepts true/false, yes/no, on/off, 1/0 in any case. fail2ban reads anything
// that is not 1/on/true/yes as false; here it is an error.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q (use true/false, yes/no, on/off or 1/0)", s)
}

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(s), "+"))
	if err != nil {
		return 0, fmt.Errorf("invalid integer %q", s)
	}
	return n, nil
}

// commentHint explains a value broken by a '#' comment: fail2ban's files only know ' ;' as
// an inline comment, so "maxretry = 5 # five" is the value "5 # five".
func commentHint(s string) string {
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && isSpaceByte(s[i-1]) {
			return "; inline comments start with ';' in this format"
		}
	}
	return ""
}

func hasHashComment(s string) bool { return commentHint(s) != "" }
