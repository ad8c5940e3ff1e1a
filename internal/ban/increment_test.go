package ban

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/config"
)

// noRnd fails the test if NextBanTime asks for a random number.
func noRnd(t *testing.T) func(int64) int64 {
	return func(n int64) int64 {
		t.Errorf("rnd(%d) called", n)
		return 0
	}
}

// TestNextBanTime checks ban times computed by hand from fail2ban's
// definitions.
func TestNextBanTime(t *testing.T) {
	const h, m = time.Hour, time.Minute
	on := func(inc config.BanTimeIncrement) config.BanTimeIncrement { inc.Enabled = true; return inc }
	def := on(config.BanTimeIncrement{Factor: 1})
	exp := on(config.BanTimeIncrement{Factor: 1, Formula: docFormulaExp})
	f2b1 := on(config.BanTimeIncrement{Factor: 1, Multipliers: []int{1, 2, 4, 8, 16, 32, 64}})
	f2b2 := on(config.BanTimeIncrement{Factor: 1, Multipliers: []int{1, 5, 30, 60, 300, 720, 1440, 2880}})
	tests := []struct {
		name string
		base time.Duration
		inc  config.BanTimeIncrement
		prev int
		want time.Duration
		tol  time.Duration // allowed error, for the exponential formula
	}{
		// Nothing grows.
		{"increment off", h, config.BanTimeIncrement{Factor: 1}, 5, h, 0},
		{"first offence", h, def, 0, h, 0},
		{"negative count", h, def, -3, h, 0},
		{"permanent stays permanent", config.Forever, def, 7, config.Forever, 0},
		{"zero base", 0, def, 7, 0, 0},

		// The default formula: bantime × 2^min(count, 20) × factor.
		{"default, 1 earlier", h, def, 1, 2 * h, 0},
		{"default, 2 earlier", h, def, 2, 4 * h, 0},
		{"default, 3 earlier", h, def, 3, 8 * h, 0},
		{"default written out", h, on(config.BanTimeIncrement{Factor: 1, Formula: docFormulaDoubling}), 3, 8 * h, 0},
		{"unset factor is 1", h, on(config.BanTimeIncrement{}), 3, 8 * h, 0},
		{"factor 1.5", h, on(config.BanTimeIncrement{Factor: 1.5}), 2, 6 * h, 0},           // 1h × 4 × 1.5
		{"factor 0.25, grown", h, on(config.BanTimeIncrement{Factor: 0.25}), 3, 2 * h, 0},  // 1h × 8 × 0.25
		{"factor 0.25, below base", h, on(config.BanTimeIncrement{Factor: 0.25}), 1, h, 0}, // 30m: never shorter
		{"2^20 of 10m", 10 * m, def, 20, 10 * m * (1 << 20), 0},                            // 174762h40m
		{"count capped at 20", 10 * m, def, 21, 10 * m * (1 << 20), 0},                     // same
		{"count 10^6", 10 * m, def, 1_000_000, 10 * m * (1 << 20), 0},                      // same
		{"2^20 hours: sane max", h, def, 20, MaxBanTime, 0},                                // 1048576h > 876000h
		{"huge factor", h, on(config.BanTimeIncrement{Factor: 1e300}), 5, MaxBanTime, 0},   // 8e300 hours
		{"infinite factor", h, on(config.BanTimeIncrement{Factor: math.Inf(1)}), 5, MaxBanTime, 0},
		{"NaN factor", h, on(config.BanTimeIncrement{Factor: math.NaN()}), 5, MaxBanTime, 0}, // refused by the check
		{"unknown formula: default", h, on(config.BanTimeIncrement{Factor: 1, Formula: "ban.Time*3"}), 2, 4 * h, 0},

		// The exponential formula: bantime × e^(count × factor).
		{"exp, 1 earlier", h, exp, 1, 9785814582 * time.Microsecond, time.Millisecond},  // 3600 s × e
		{"exp, 2 earlier", h, exp, 2, 26600601956 * time.Microsecond, time.Millisecond}, // 3600 s × e²
		// fail2ban: "the same values only for factor 2.0 / 2.885385": 2^3.
		{"exp, factor ln 2", h, on(config.BanTimeIncrement{Factor: 2.0 / 2.885385, Formula: docFormulaExp}), 3, 8 * h, time.Second},
		{"exp overflows to +Inf", h, on(config.BanTimeIncrement{Factor: 1000, Formula: docFormulaExp}), 1_000_000, MaxBanTime, 0},
		{"exp, factor 1e-9: below base", h, on(config.BanTimeIncrement{Factor: 1e-9, Formula: docFormulaExp}), 1, h + 3600*time.Nanosecond, time.Nanosecond},

		// Multipliers: bantime × factor × multipliers[min(count, len-1)].
		{"multipliers 1 earlier", 600 * time.Second, f2b1, 1, 1200 * time.Second, 0},
		{"multipliers 6 earlier", 600 * time.Second, f2b1, 6, 38400 * time.Second, 0}, // 10.67 hours, as jail.conf says
		{"multipliers past the end", 600 * time.Second, f2b1, 7, 38400 * time.Second, 0},
		{"multipliers far past the end", 600 * time.Second, f2b1, 1000, 38400 * time.Second, 0},
		{"minute multipliers 1", time.Minute, f2b2, 1, 5 * m, 0},
		{"minute multipliers 3", time.Minute, f2b2, 3, h, 0},
		{"minute multipliers 7", time.Minute, f2b2, 7, 48 * h, 0},
		{"minute multipliers 9", time.Minute, f2b2, 9, 48 * h, 0},
		{"multipliers with factor", time.Minute, on(config.BanTimeIncrement{Factor: 2, Multipliers: []int{1, 5}}), 1, 10 * m, 0},
		{"multiplier 0: base", h, on(config.BanTimeIncrement{Factor: 1, Multipliers: []int{1, 0, 3}}), 1, h, 0},
		{"multipliers replace any formula", h, on(config.BanTimeIncrement{Factor: 1, Formula: "ban.Time*7", Multipliers: []int{1, 3}}), 4, 3 * h, 0},
		{"huge multiplier", 7 * 24 * h, on(config.BanTimeIncrement{Factor: 1, Multipliers: []int{1, math.MaxInt32}}), 1, MaxBanTime, 0},

		// maxtime caps.
		{"maxtime caps", h, on(config.BanTimeIncrement{Factor: 1, MaxTime: 5 * h}), 3, 5 * h, 0},
		{"maxtime not reached", h, on(config.BanTimeIncrement{Factor: 1, MaxTime: 5 * h}), 2, 4 * h, 0},
		{"maxtime equal", h, on(config.BanTimeIncrement{Factor: 1, MaxTime: 4 * h}), 2, 4 * h, 0},
		{"maxtime below base", h, on(config.BanTimeIncrement{Factor: 1, MaxTime: 30 * m}), 2, h, 0},
		{"maxtime caps a huge count", h, on(config.BanTimeIncrement{Factor: 1e300, MaxTime: 7 * 24 * h}), 1 << 40, 7 * 24 * h, 0},
		{"maxtime beyond the sane max", h, on(config.BanTimeIncrement{Factor: 1e300, MaxTime: math.MaxInt64}), 3, MaxBanTime, 0},
		{"base beyond the sane max", 200 * 365 * 24 * h, def, 3, 200 * 365 * 24 * h, 0},
		{"maxtime caps multipliers", 600 * time.Second, on(config.BanTimeIncrement{Factor: 1, MaxTime: h, Multipliers: []int{1, 2, 4, 8}}), 3, h, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NextBanTime(tt.base, tt.inc, tt.prev, noRnd(t))
			if d := got - tt.want; d < -tt.tol || d > tt.tol {
				t.Errorf("NextBanTime(%v, %d earlier) = %v, want %v (±%v)", tt.base, tt.prev, got, tt.want, tt.tol)
			}
		})
	}
}

// TestNextBanTimeRandom checks bantime.rndtime: a random 0..rndtime added
// after the cap, only when the time grows.
func TestNextBanTimeRandom(t *testing.T) {
	const h, m = time.Hour, time.Minute
	inc := config.BanTimeIncrement{Enabled: true, Factor: 1, MaxTime: 5 * h, RndTime: 10 * m}
	tests := []struct {
		name string
		prev int
		r    int64 // what rnd returns; -1: n-1, its largest
		want time.Duration
	}{
		{"zero", 2, 0, 4 * h},
		{"largest", 2, -1, 4*h + 10*m},
		{"some", 2, int64(90 * time.Second), 4*h + 90*time.Second},
		{"added after the cap", 3, -1, 5*h + 10*m}, // 8h capped at 5h, then up to 10m more, as fail2ban
		{"rnd too large: clamped", 2, math.MaxInt64, 4*h + 10*m},
		{"rnd negative: clamped", 2, -5, 4 * h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []int64
			rnd := func(n int64) int64 {
				calls = append(calls, n)
				if tt.r == -1 {
					return n - 1
				}
				return tt.r
			}
			if got := NextBanTime(h, inc, tt.prev, rnd); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if len(calls) != 1 || calls[0] != int64(10*m)+1 {
				t.Errorf("rnd calls %v, want one with rndtime+1 = %d", calls, int64(10*m)+1)
			}
		})
	}

	t.Run("first offence: no random", func(t *testing.T) {
		if got := NextBanTime(h, inc, 0, noRnd(t)); got != h {
			t.Errorf("got %v, want %v", got, h)
		}
	})
	t.Run("huge rndtime", func(t *testing.T) {
		inc := config.BanTimeIncrement{Enabled: true, Factor: 1e300, RndTime: math.MaxInt64}
		got := NextBanTime(h, inc, 3, func(n int64) int64 { return n - 1 })
		if got != 2*MaxBanTime {
			t.Errorf("got %v, want %v (2 × MaxBanTime)", got, 2*MaxBanTime)
		}
	})
	t.Run("nil rnd", func(t *testing.T) {
		for range 100 {
			got := NextBanTime(h, inc, 1, nil)
			if got < 2*h || got > 2*h+10*m {
				t.Fatalf("got %v, want 2h..2h10m", got)
			}
		}
	})
}

// TestNextBanTimeNeverShrinks runs many counts and factors: the result is
// never below base, never above the caps, and never wraps negative.
func TestNextBanTimeNeverShrinks(t *testing.T) {
	bases := []time.Duration{time.Second, time.Hour, 7 * 24 * time.Hour, MaxBanTime, math.MaxInt64 / 2}
	factors := []float64{1e-300, 0.1, 1, 2.5, 1e10, 1e300}
	counts := []int{1, 2, 19, 20, 21, 63, 64, 65, 1000, math.MaxInt32, math.MaxInt}
	for _, formula := range []string{"", docFormulaExp} {
		for _, base := range bases {
			for _, f := range factors {
				for _, c := range counts {
					inc := config.BanTimeIncrement{Enabled: true, Factor: f, Formula: formula, RndTime: time.Hour}
					got := NextBanTime(base, inc, c, func(n int64) int64 { return n - 1 })
					if got < base || got > max(base, MaxBanTime+time.Hour) {
						t.Fatalf("formula %q, base %v, factor %g, count %d: %v", formula, base, f, c, got)
					}
				}
			}
		}
	}
}

func TestParseFormula(t *testing.T) {
	ok := []struct {
		text string
		want Formula
	}{
		{"", FormulaDoubling},
		{"   ", FormulaDoubling},
		{docFormulaDoubling, FormulaDoubling},
		{"ban.Time*(1<<(ban.Count if ban.Count<20 else 20))*banFactor", FormulaDoubling},
		{"  ban.Time  *  ( 1 << ( ban.Count  if  ban.Count < 20  else  20 ) )\t* banFactor ", FormulaDoubling},
		{docFormulaExp, FormulaExp},
		{"ban.Time * math.exp( float( ban.Count + 1 ) * banFactor ) / math.exp( 1 * banFactor )", FormulaExp},
	}
	for _, tt := range ok {
		got, err := ParseFormula(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("ParseFormula(%q) = %v, %v; want %v", tt.text, got, err, tt.want)
		}
	}
	bad := []string{
		"ban.Time * 2",
		"ban.Time * (1<<(ban.Count if ban.Count<10 else 10)) * banFactor", // another cap
		"ban.Time * (1<<(ban.Count if ban.Count<20 else 20))",             // no factor
		"ban.Time*(1<<(ban.Countif ban.Count<20 else 20))*banFactor",      // not Python
		"ban.Ti me*(1<<(ban.Count if ban.Count<20 else 20))*banFactor",    // a space inside a name
		"ban.Time * math.exp(float(ban.Count)*banFactor)",                 // a variant, not the documented text
		"__import__('os').system('reboot')",
	}
	for _, text := range bad {
		_, err := ParseFormula(text)
		var ie *IncrementError
		if !errors.As(err, &ie) || ie.Key != "bantime.formula" || ie.Value != text {
			t.Errorf("ParseFormula(%q) = %v; want an IncrementError of bantime.formula", text, err)
		}
	}
	// The constants the switch compares with are what canonicalFormula
	// makes of the documented texts.
	if c := canonicalFormula(docFormulaDoubling); c != canonDoubling {
		t.Errorf("canonical default formula %q, want %q", c, canonDoubling)
	}
	if c := canonicalFormula(docFormulaExp); c != canonExp {
		t.Errorf("canonical exponential formula %q, want %q", c, canonExp)
	}
}

func TestCheckBanTimeIncrement(t *testing.T) {
	tests := []struct {
		name string
		inc  config.BanTimeIncrement
		key  string // "": no error
	}{
		{"off, unknown formula", config.BanTimeIncrement{Formula: "ban.Time*3"}, ""},
		{"default", config.BanTimeIncrement{Enabled: true, Factor: 1}, ""},
		{"exponential", config.BanTimeIncrement{Enabled: true, Factor: 1, Formula: docFormulaExp}, ""},
		{"unknown formula", config.BanTimeIncrement{Enabled: true, Factor: 1, Formula: "ban.Time*3"}, "bantime.formula"},
		{"multipliers: formula unused", config.BanTimeIncrement{Enabled: true, Factor: 1, Formula: "ban.Time*3", Multipliers: []int{1, 2}}, ""},
		{"unset factor", config.BanTimeIncrement{Enabled: true}, ""},
		{"NaN factor", config.BanTimeIncrement{Enabled: true, Factor: math.NaN()}, "bantime.factor"},
		{"infinite factor", config.BanTimeIncrement{Enabled: true, Factor: math.Inf(1)}, "bantime.factor"},
		{"negative factor", config.BanTimeIncrement{Enabled: true, Factor: -1}, "bantime.factor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckBanTimeIncrement(tt.inc)
			if tt.key == "" {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			var ie *IncrementError
			if !errors.As(err, &ie) || ie.Key != tt.key {
				t.Fatalf("got %v, want an IncrementError of %s", err, tt.key)
			}
			if msg := err.Error(); len(msg) < len(tt.key) || msg[:len(tt.key)] != tt.key {
				t.Errorf("message %q does not start with the key", msg)
			}
		})
	}
}
