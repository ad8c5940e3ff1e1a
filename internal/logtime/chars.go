package logtime

import (
	"unicode"
	"unicode/utf8"
)

// Character predicates with the meaning Python 3 gives them for str patterns
// (fail2ban's regexes are Unicode-aware): \w is any letter or number plus '_',
// \d any decimal digit (Nd), \s anything str.isspace accepts. ASCII takes a
// table lookup; only other runes reach the unicode package.

const (
	ctWord  = 1 << iota // [A-Za-z0-9_]
	ctDigit             // [0-9]
	ctSpace             // [ \t\n\v\f\r\x1c-\x1f]
	ctAlnum             // [A-Za-z0-9]
)

// asciiType classifies the ASCII runes; built by a constant expression so
// that there is no init-time work.
var asciiType = func() (t [128]uint8) {
	for c := 0; c < 128; c++ {
		switch {
		case c >= '0' && c <= '9':
			t[c] = ctWord | ctDigit | ctAlnum
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			t[c] = ctWord | ctAlnum
		case c == '_':
			t[c] = ctWord
		case c == ' ', c >= '\t' && c <= '\r', c >= 0x1c && c <= 0x1f:
			t[c] = ctSpace
		}
	}
	return t
}()

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && asciiType[r]&ctWord != 0
	}
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsNumber(r))
}

// isAlnumRune is Python's str.isalnum for one character.
func isAlnumRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && asciiType[r]&ctAlnum != 0
	}
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsNumber(r))
}

func isDigitRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '0' && r <= '9'
	}
	return unicode.IsDigit(r)
}

func isSpaceRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && asciiType[r]&ctSpace != 0
	}
	return unicode.IsSpace(r)
}

// digitValue returns the value of a decimal digit of any script, as Python's
// int() reads it. Unicode keeps every Nd block as ten consecutive code points
// starting at zero, and adjacent blocks merged in the range table still start
// at a zero, so the offset in the range modulo ten is the value.
func digitValue(r rune) int {
	if r >= '0' && r <= '9' {
		return int(r - '0')
	}
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	return -1
}

// foldEq reports whether two runes are equal under simple case folding.
func foldEq(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return lowerASCII(a) == lowerASCII(b) && isASCIILetter(a)
	}
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}

func lowerASCII(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

func isASCIILetter(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

// runeAt decodes the rune at byte offset i; i must be < len(s).
func runeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// runeBefore decodes the rune ending at byte offset i; i must be > 0.
func runeBefore(s string, i int) (rune, int) {
	if c := s[i-1]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeLastRuneInString(s[:i])
}

// class properties usable inside a character class or alone (\d, \W, ...).
const (
	propDigit = 1 << iota
	propNotDigit
	propWord
	propNotWord
	propSpace
	propNotSpace
)

type runeRange struct{ lo, hi rune }

// charClass is a compiled [...] set, or one of \d \D \w \W \s \S, or '.'.
// Membership for ASCII runes is precomputed (folding and properties included);
// other runes go through ranges and properties.
type charClass struct {
	ascii  [2]uint64
	ranges []runeRange
	props  uint8
	neg    bool
	fold   bool
	dotNL  bool // '.' that also matches '\n' (only used when isDot)
	isDot  bool
}

func (c *charClass) addASCII(r rune) { c.ascii[r>>6] |= 1 << (uint(r) & 63) }

func (c *charClass) hasASCII(r rune) bool { return c.ascii[r>>6]&(1<<(uint(r)&63)) != 0 }

// finish precomputes the ASCII bitmap once ranges, properties and folding are
// known.
func (c *charClass) finish() {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		if c.hasASCII(r) {
			continue
		}
		if c.rawHas(r) {
			c.addASCII(r)
			continue
		}
		if c.fold {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				if c.rawHas(f) {
					c.addASCII(r)
					break
				}
			}
		}
	}
}

// rawHas is membership without negation, folding or the ASCII table.
func (c *charClass) rawHas(r rune) bool {
	if r < utf8.RuneSelf && c.hasASCII(r) {
		return true
	}
	for _, rg := range c.ranges {
		if r >= rg.lo && r <= rg.hi {
			return true
		}
	}
	p := c.props
	if p == 0 {
		return false
	}
	if p&propDigit != 0 && isDigitRune(r) ||
		p&propNotDigit != 0 && !isDigitRune(r) ||
		p&propWord != 0 && isWordRune(r) ||
		p&propNotWord != 0 && !isWordRune(r) ||
		p&propSpace != 0 && isSpaceRune(r) ||
		p&propNotSpace != 0 && !isSpaceRune(r) {
		return true
	}
	return false
}

func (c *charClass) has(r rune) bool {
	if c.isDot {
		return c.dotNL || r != '\n'
	}
	var in bool
	if r >= 0 && r < utf8.RuneSelf {
		in = c.hasASCII(r)
	} else {
		in = c.rawHas(r)
		if !in && c.fold {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				if c.rawHas(f) {
					in = true
					break
				}
			}
		}
	}
	return in != c.neg
}

// mayMatchWide reports whether some rune >= 0x80 may be in the class (used for
// first-byte sets; conservative).
func (c *charClass) mayMatchWide() bool {
	return c.isDot || c.neg || c.props != 0 || len(c.ranges) > 0 || c.fold
}
