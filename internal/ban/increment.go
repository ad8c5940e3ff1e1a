package ban

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/logjail/logjail/internal/config"
)

// Repeat offenders: fail2ban's bantime.* group.
//
// fail2ban's meaning, which NextBanTime follows (read from jail.conf's
// documentation and fail2ban's behaviour; no code of it is used here):
//
//   - bantime.increment: when the address was banned before (the count
//     comes from the ban history: BanCount in the store, in this jail, or in
//     every jail with bantime.overalljails), its ban time grows; a first
//     offence gets the jail's bantime.
//   - bantime.factor (default 1) scales the growth: the formula's banFactor,
//     and a common multiplier of bantime.multipliers.
//   - bantime.formula computes the ban time from ban.Time (the jail's
//     bantime), ban.Count (the earlier bans) and banFactor. fail2ban evaluates
//     it as Python; logjail recognises the two formulas fail2ban documents
//     (see Formula) and refuses any other.
//   - bantime.multipliers, when set, replace the formula: bantime × factor ×
//     multipliers[count], the last multiplier for every count beyond the list.
//     The list starts at count 0, which never applies (a first offence is not
//     increased), so "1 2 4 8" doubles from the first repeat like the default
//     formula.
//   - bantime.maxtime caps the computed time.
//   - bantime.rndtime then adds a random time from 0 to rndtime, so that a
//     botnet cannot compute when an address is unbanned; the sum may exceed
//     maxtime by up to rndtime, as in fail2ban.
//   - The result is never shorter than the jail's bantime (fail2ban only ever
//     prolongs a ban: a multiplier of 0, a factor below 1 or a maxtime below
//     bantime leave bantime), and a permanent bantime stays permanent.

// MaxBanTime caps an increased ban time when bantime.maxtime does not (or
// is larger): about a hundred years, effectively permanent, far from the
// overflow of time.Duration (292 years) and of the store's milliseconds. A
// huge count or factor ends here, never at a negative or wrapped duration.
const MaxBanTime = 100 * 365 * 24 * time.Hour

// Formula is a bantime.formula logjail computes natively.
type Formula int

const (
	// FormulaDoubling is fail2ban's default,
	//	ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor
	// bantime × 2^min(count, 20) × factor.
	FormulaDoubling Formula = iota
	// FormulaExp is fail2ban's documented "more aggressive" example,
	//	ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)
	// bantime × e^(count × factor). With factor ln 2 (fail2ban's "2.0 /
	// 2.885385") it doubles like FormulaDoubling.
	FormulaExp
)

// The documented formulas as jail.conf writes them, and their canonical
// texts (canonicalFormula), which ParseFormula compares with.
const (
	docFormulaDoubling = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor"
	docFormulaExp      = "ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)"
	canonDoubling      = "ban.Time*(1<<(ban.Count if ban.Count<20 else 20))*banFactor"
	canonExp           = "ban.Time*math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)"
)

// IncrementError is a bantime.* value NextBanTime cannot honour; the daemon
// reports it as a configuration error of Key.
type IncrementError struct {
	Key   string // "bantime.formula", "bantime.factor"
	Value string
	Msg   string
}

func (e *IncrementError) Error() string {
	return fmt.Sprintf("%s = %s: %s", e.Key, e.Value, e.Msg)
}

// ParseFormula recognises a bantime.formula. The empty text is the default
// (FormulaDoubling). Any other text must be one of fail2ban's documented
// formulas, written as in jail.conf; spacing does not matter (only where
// Python needs a space between two words, as in "ban.Count if"). There is no
// Python evaluator: any other formula is an *IncrementError.
func ParseFormula(s string) (Formula, error) {
	if strings.TrimSpace(s) == "" {
		return FormulaDoubling, nil
	}
	switch canonicalFormula(s) {
	case canonDoubling:
		return FormulaDoubling, nil
	case canonExp:
		return FormulaExp, nil
	}
	return 0, &IncrementError{Key: "bantime.formula", Value: s,
		Msg: "logjail does not evaluate Python: it knows fail2ban's default formula (" + docFormulaDoubling +
			") and its exponential example (" + docFormulaExp + "); for another growth use bantime.factor or bantime.multipliers"}
}

// canonicalFormula drops the spaces of a formula that Python ignores: every
// run of spaces goes, except one between two word characters.
func canonicalFormula(s string) string {
	word := func(c byte) bool {
		return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	var b strings.Builder
	var last byte // the last byte written; 0: none yet
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			space = true
			continue
		}
		if space && word(last) && word(c) {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
		last = c
	}
	return b.String()
}

// CheckBanTimeIncrement reports what in inc NextBanTime cannot honour, as an
// *IncrementError naming the key: an unknown bantime.formula (only when it is
// used: increment on and no multipliers, which replace the formula in
// fail2ban too), or a factor that is not a finite number above 0. The daemon
// calls it when it loads the configuration.
func CheckBanTimeIncrement(inc config.BanTimeIncrement) error {
	if !inc.Enabled {
		return nil
	}
	if f := inc.Factor; math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return &IncrementError{Key: "bantime.factor", Value: fmt.Sprint(f), Msg: "want a finite number above 0"}
	}
	if len(inc.Multipliers) == 0 {
		if _, err := ParseFormula(inc.Formula); err != nil {
			return err
		}
	}
	return nil
}

// NextBanTime returns the ban time of an address banned prevBans times before
// (store.BanCount, in this jail or in every jail with inc.OverallJails) when
// the jail's bantime is base, with fail2ban's meaning (see the comment at the
// top of this file). rnd(n) returns a random number in [0, n) (nil: math/rand);
// it is called only when inc.RndTime is set and the ban time grows.
//
// It returns base when the increment is off, for a first offence (prevBans
// <= 0) and for a permanent (or zero) base. A factor of 0 (unset) is 1.
// The formula must have passed CheckBanTimeIncrement; an unknown one is
// taken as the default formula here, so that a repeat offender still gets
// a longer ban.
func NextBanTime(base time.Duration, inc config.BanTimeIncrement, prevBans int, rnd func(n int64) int64) time.Duration {
	if !inc.Enabled || base <= 0 || prevBans <= 0 {
		return base
	}
	factor := inc.Factor
	if factor == 0 {
		factor = 1
	}
	var mult float64
	if m := inc.Multipliers; len(m) > 0 {
		mult = factor * float64(m[min(prevBans, len(m)-1)])
	} else {
		formula, _ := ParseFormula(inc.Formula)
		switch formula {
		case FormulaExp:
			mult = math.Exp(float64(prevBans) * factor)
		default:
			mult = float64(int64(1)<<min(prevBans, 20)) * factor
		}
	}
	limit := MaxBanTime
	if inc.MaxTime > 0 && inc.MaxTime < limit {
		limit = inc.MaxTime
	}
	var d time.Duration
	// In float: base × mult may be far beyond int64, Inf, or NaN (an
	// unchecked factor); every one of these is the limit.
	if f := float64(base) * mult; f < float64(limit) {
		d = time.Duration(f)
	} else {
		d = limit
	}
	if rt := min(inc.RndTime, MaxBanTime); rt > 0 {
		if rnd == nil {
			rnd = rand.Int64N
		}
		// 0..rt inclusive; a misbehaving rnd is clamped. d + r stays below
		// 2 × MaxBanTime, far from overflowing.
		r := min(max(rnd(int64(rt)+1), 0), int64(rt))
		d += time.Duration(r)
	}
	return max(d, base)
}
