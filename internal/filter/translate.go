package filter

import (
	"fmt"
	"regexp/syntax"
	"strings"
)

// Host tag patterns. They are ours, written for RE2 (no look-around), and match the same texts as
// fail2ban's so that a stock filter sees the same verdicts:
//
//   - an IPv4 address, optionally behind an IPv4-mapped IPv6 prefix (::ffff:1.2.3.4), is captured
//     without that prefix;
//   - an IPv6 address is any run of hex groups and colons of the usual shape; whether it is really
//     an address is decided afterwards by netip, never by the regex;
//   - <ADDR> may stand in brackets ([2001:db8::1]).
//
// The regexes are deliberately as loose as fail2ban's: a capture like 999.1.2.3 matches here and is
// then refused by the address parser, so the line is no failure.
const (
	reIP4  = `(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})`
	reIP6  = `(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:))`
	reDNS  = `(?P<dns>[\w\-.^_]*\w)`
	reCIDR = `(?P<cidr>\d+)`
	reAddr = `\[?(?:` + reIP4 + `|` + reIP6 + `)\]?`
	// reHost is <HOST> when names are to be resolved (usedns yes/warn/raw).
	reHost   = `(?:` + reAddr + `|` + reDNS + `)`
	reSubnet = `\[?(?:` + reIP4 + `|` + reIP6 + `)(?:/` + reCIDR + `)?\]?`
)

// UseDNS says what a <HOST> that is a name rather than an address becomes.
type UseDNS string

// The usedns values, with fail2ban's meaning.
const (
	DNSNo   UseDNS = "no"   // <HOST> matches addresses only
	DNSWarn UseDNS = "warn" // names match and are resolved, with a warning
	DNSYes  UseDNS = "yes"  // names match and are resolved
	DNSRaw  UseDNS = "raw"  // names match and are kept as text (no ban through the firewall)
)

// ParseUseDNS checks a usedns value; "" is DNSNo.
func ParseUseDNS(s string) (UseDNS, error) {
	switch v := UseDNS(strings.ToLower(strings.TrimSpace(s))); v {
	case "":
		return DNSNo, nil
	case DNSNo, DNSWarn, DNSYes, DNSRaw:
		return v, nil
	}
	return "", fmt.Errorf("usedns %q: want yes, warn, no or raw", s)
}

// expandTags replaces fail2ban's tags in a regex: the host family (<HOST>, <ADDR>, <IP4>, <IP6>,
// <DNS>, <CIDR>, <SUBNET>, also in their <F-XXX/> self-closing forms), <F-ID/>, <F-PORT/>,
// <SKIPLINES>, and the field captures <F-NAME>...</F-NAME>, which become named groups with the
// lower-cased name (F-ID and F-PORT map to fid and fport as in fail2ban). A closing tag that was not
// opened and any other <tag> are left as they are: they then match their own text, which check
// reports as a warning (unknown reports them).
func expandTags(re string, dns UseDNS) (out string, unknown []string, skiplines int) {
	var b strings.Builder
	b.Grow(len(re) + 128)
	open := map[string]bool{}
	for i := 0; i < len(re); {
		c := re[i]
		if c == '\\' && i+1 < len(re) { // keep escapes whole: \< is a literal <
			b.WriteString(re[i : i+2])
			i += 2
			continue
		}
		if c != '<' || strings.HasSuffix(re[:i], "(?") || strings.HasSuffix(re[:i], "(?P") {
			// not a tag: a plain byte, or the name of a group (?P<name>...) / (?<name>...)
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(re[i:], '>')
		if end < 0 {
			b.WriteString(re[i:])
			break
		}
		tag := re[i+1 : i+end]
		whole := re[i : i+end+1]
		if !isTagName(tag) {
			// not a tag: keep the '<' and look again from the next byte (as in "<<F-USER>")
			b.WriteByte(c)
			i++
			continue
		}
		i += end + 1
		switch tag {
		case "HOST":
			if dns == DNSNo {
				b.WriteString(reAddr)
			} else {
				b.WriteString(reHost)
			}
			continue
		case "SKIPLINES":
			fmt.Fprintf(&b, `\n(?P<skiplines%d>(?:(?:.*\n)*?))`, skiplines)
			skiplines++
			continue
		}
		if p, ok := hostTags[tag]; ok {
			b.WriteString(p)
			continue
		}
		switch {
		case strings.HasPrefix(tag, "/F-") && isCustomName(tag[3:]):
			if open[tag[3:]] {
				b.WriteByte(')')
				continue
			}
		case strings.HasPrefix(tag, "F-") && isCustomName(tag[2:]):
			open[tag[2:]] = true
			b.WriteString("(?P<")
			b.WriteString(groupName(tag[2:]))
			b.WriteByte('>')
			continue
		}
		b.WriteString(whole)
		unknown = append(unknown, whole)
	}
	return b.String(), unknown, skiplines
}

// hostTags are the fixed tags; the self-closing F- forms capture the same groups.
var hostTags = map[string]string{
	"IP4": reIP4, "F-IP4/": reIP4,
	"IP6": reIP6, "F-IP6/": reIP6,
	"ADDR": reAddr, "F-ADDR/": reAddr,
	"DNS": reDNS, "F-DNS/": reDNS,
	"CIDR": reCIDR, "F-CIDR/": reCIDR,
	"SUBNET": reSubnet, "F-SUBNET/": reSubnet,
	"F-ID/":   `(?P<fid>\S+)`,
	"F-PORT/": `(?P<fport>\w+)`,
}

// isCustomName reports whether n is a valid custom field name (F-NAME): upper-case letters,
// digits, '_' and '-', as fail2ban requires.
func isCustomName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isTagName(t string) bool {
	t = strings.TrimPrefix(t, "/")
	t = strings.TrimSuffix(t, "/")
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// groupName maps an F- tag name to its capture group: F-ID -> fid, F-PORT -> fport, others lower-cased
// with '-' (invalid in group names) turned into '_'.
func groupName(tag string) string {
	n := strings.ToLower(tag)
	switch n {
	case "id":
		return "fid"
	case "port":
		return "fport"
	}
	return strings.ReplaceAll(n, "-", "_")
}

// pyToGo rewrites the parts of Python's regex syntax that Go's parser would accept with another
// meaning, or reject although RE2 can do them:
//
//   - x{,n} is {0,n} in Python and a literal in Go;
//   - \Z is Go's \z;
//   - (?#...) comments are dropped.
//
// Everything RE2 cannot do (look-around, back-references, conditionals) is left for the fallback
// engine; needsBacktrack tells which.
func pyToGo(re string) string {
	var b strings.Builder
	b.Grow(len(re))
	inClass := false
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\' && i+1 < len(re):
			if !inClass && re[i+1] == 'Z' {
				b.WriteString(`\z`)
			} else {
				b.WriteString(re[i : i+2])
			}
			i++
			continue
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// a ']' right after '[' or '[^' is a literal in both dialects
			if i+1 < len(re) && re[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(re) && re[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
			continue
		case c == '{' && i+1 < len(re) && re[i+1] == ',':
			j := i + 2
			for j < len(re) && re[j] >= '0' && re[j] <= '9' {
				j++
			}
			if j > i+2 && j < len(re) && re[j] == '}' {
				b.WriteString("{0,")
				b.WriteString(re[i+2 : j+1])
				i = j
				continue
			}
		case c == '(' && strings.HasPrefix(re[i:], "(?#"):
			if j := strings.IndexByte(re[i:], ')'); j > 0 {
				i += j
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// needsBacktrack reports whether Go's RE2 parser refused re because of a feature only a
// backtracking engine has, as opposed to a plain syntax error.
func needsBacktrack(err error) bool {
	var se *syntax.Error
	if !asSyntaxError(err, &se) {
		return false
	}
	switch se.Code {
	case syntax.ErrInvalidPerlOp, syntax.ErrInvalidNamedCapture:
		// (?=, (?!, (?<=, (?<!, (?(cond)..), (?P=name)
		return true
	case syntax.ErrInvalidEscape:
		// \1 .. \9 back-references
		return len(se.Expr) >= 2 && se.Expr[1] >= '1' && se.Expr[1] <= '9'
	}
	return false
}

// toRegexp2 rewrites Python syntax into the .NET syntax dlclark/regexp2 reads.
func toRegexp2(re string) string {
	var b strings.Builder
	b.Grow(len(re))
	for i := 0; i < len(re); i++ {
		if re[i] == '\\' && i+1 < len(re) {
			b.WriteString(re[i : i+2])
			i++
			continue
		}
		if strings.HasPrefix(re[i:], "(?P<") {
			b.WriteString("(?<")
			i += 3
			continue
		}
		if strings.HasPrefix(re[i:], "(?P=") {
			if j := strings.IndexByte(re[i:], ')'); j > 0 {
				b.WriteString(`\k<` + re[i+4:i+j] + `>`)
				i += j
				continue
			}
		}
		b.WriteByte(re[i])
	}
	return b.String()
}
