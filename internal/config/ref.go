package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ParseRef parses a filter or action reference: a name, optionally followed by one or more
// option groups, as in
//
//	sshd
//	sshd[mode=aggressive]
//	iptables-multiport[port="ssh,sftp", protocol=tcp][chain=INPUT]
//	/etc/logjail/filter.d/custom.conf[k='v']
//
// An option value is "double-quoted", 'single-quoted' (commas and ']' allowed inside, no
// escapes) or bare (up to the next ',' or ']'); values are trimmed, as fail2ban trims them.
// A later option of the same name overrides an earlier one. opts is nil when there are none.
func ParseRef(s string) (name string, opts map[string]string, err error) {
	s = strings.TrimFunc(s, unicode.IsSpace)
	i := strings.IndexByte(s, '[')
	name = s
	if i >= 0 {
		name = s[:i]
	}
	name = strings.TrimFunc(name, unicode.IsSpace)
	switch {
	case name == "":
		return "", nil, errors.New("missing name before '['")
	case strings.ContainsFunc(name, unicode.IsSpace):
		return "", nil, fmt.Errorf("name %q contains spaces (a list of several names?)", name)
	case strings.ContainsAny(name, `]"'`+"`"):
		return "", nil, fmt.Errorf("unexpected character in name %q", name)
	}
	if i < 0 {
		return name, nil, nil
	}
	opts = map[string]string{}
	rest := s[i:]
	for {
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		if rest == "" {
			break
		}
		if rest[0] != '[' {
			return "", nil, fmt.Errorf("unexpected %q after options", clip(rest))
		}
		rest, err = parseOptionGroup(rest[1:], opts)
		if err != nil {
			return "", nil, err
		}
	}
	if len(opts) == 0 {
		opts = nil
	}
	return name, opts, nil
}

// parseOptionGroup parses `k=v, k2="v2"]` (the text after a '[') into opts and returns the
// text after the closing ']'.
func parseOptionGroup(s string, opts map[string]string) (string, error) {
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		switch {
		case s == "":
			return "", errors.New("missing ']' after options")
		case s[0] == ']':
			return s[1:], nil
		case s[0] == ',':
			s = s[1:]
			continue
		}
		k := strings.IndexFunc(s, func(r rune) bool { return !isOptNameRune(r) })
		if k < 0 {
			return "", fmt.Errorf("missing '=' after option %q", clip(s))
		}
		if k == 0 {
			return "", fmt.Errorf("expected an option name at %q", clip(s))
		}
		key := s[:k]
		s = strings.TrimLeftFunc(s[k:], unicode.IsSpace)
		if s == "" || s[0] != '=' {
			return "", fmt.Errorf("missing '=' after option %q", key)
		}
		s = strings.TrimLeftFunc(s[1:], unicode.IsSpace)
		var val string
		if s != "" && (s[0] == '"' || s[0] == '\'') {
			q := s[0]
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return "", fmt.Errorf("missing closing %c in option %q", q, key)
			}
			val = s[1 : 1+end]
			s = strings.TrimLeftFunc(s[2+end:], unicode.IsSpace)
			if s != "" && s[0] != ',' && s[0] != ']' {
				return "", fmt.Errorf("unexpected %q after quoted value of option %q", clip(s), key)
			}
		} else {
			end := strings.IndexAny(s, ",]")
			if end < 0 {
				return "", errors.New("missing ']' after options")
			}
			val = s[:end]
			s = s[end:]
		}
		opts[key] = strings.TrimFunc(val, unicode.IsSpace)
	}
}

// isOptNameRune: option names are fail2ban's [\w\-.].
func isOptNameRune(r rune) bool {
	return r == '_' || r == '-' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// refItem is one reference of a list, with its byte offset in the list text.
type refItem struct {
	text   string
	offset int
}

// splitRefs splits a list of references separated by spaces or new lines (a jail's action
// value) while keeping option groups whole, even when they contain spaces, new lines or quoted
// brackets (fail2ban's splitWithOptions). An unterminated group runs to the end of the text;
// ParseRef reports it.
func splitRefs(s string) []refItem {
	var out []refItem
	i := 0
	for {
		for i < len(s) && isSpaceByte(s[i]) {
			i++
		}
		if i >= len(s) {
			return out
		}
		start := i
		for i < len(s) && !isSpaceByte(s[i]) && s[i] != '[' {
			i++
		}
		for {
			j := i
			for j < len(s) && isSpaceByte(s[j]) {
				j++
			}
			if j >= len(s) || s[j] != '[' {
				break
			}
			i = skipGroup(s, j)
		}
		out = append(out, refItem{text: s[start:i], offset: start})
	}
}

// skipGroup returns the index after the ']' closing the option group that starts at
// s[i] == '[', or len(s) when the group is malformed.
func skipGroup(s string, i int) int {
	rest, err := parseOptionGroup(s[i+1:], map[string]string{})
	if err != nil {
		return len(s)
	}
	return len(s) - len(rest)
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
