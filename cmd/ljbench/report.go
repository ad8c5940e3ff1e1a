package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// latStats summarizes ban latencies. Bans never seen count as infinitely late: a percentile
// that falls on one is reported as missing (NaN in JSON as null, "> cap" in the table).
type latStats struct {
	N      int     `json:"bans"`     // bans asked for
	Seen   int     `json:"seen"`     // bans seen in the kernel
	P50    float64 `json:"p50_ms"`   // milliseconds; -1: fell on a ban never seen
	P90    float64 `json:"p90_ms"`   //
	P99    float64 `json:"p99_ms"`   //
	Max    float64 `json:"max_ms"`   // of those seen
	Mean   float64 `json:"mean_ms"`  // of those seen
	Min    float64 `json:"min_ms"`   // of those seen
	CapSec float64 `json:"cap_s"`    // how long ljbench waited after the last write
	Missed int     `json:"not_seen"` // N - Seen
}

func latencyStats(lat []time.Duration, n int, capWait time.Duration) latStats {
	s := latStats{N: n, Seen: len(lat), Missed: n - len(lat), CapSec: capWait.Seconds()}
	if len(lat) == 0 {
		s.P50, s.P90, s.P99, s.Max, s.Mean, s.Min = -1, -1, -1, -1, -1, -1
		return s
	}
	ms := make([]float64, len(lat))
	var sum float64
	for i, d := range lat {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	sort.Float64s(ms)
	s.Min, s.Max, s.Mean = ms[0], ms[len(ms)-1], sum/float64(len(ms))
	s.P50, s.P90, s.P99 = pct(ms, n, 0.50), pct(ms, n, 0.90), pct(ms, n, 0.99)
	return s
}

// pct is the nearest-rank percentile of n values of which the sorted ms are the finite ones
// (the others being +Inf): -1 when it falls on an infinite one.
func pct(ms []float64, n int, p float64) float64 {
	rank := int(math.Ceil(p*float64(n))) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(ms) {
		return -1
	}
	return ms[rank]
}

// fmtMS prints milliseconds with sensible precision; -1 is "> cap".
func fmtMS(v float64, capSec float64) string {
	switch {
	case v < 0:
		return fmt.Sprintf("> %.0f s", capSec)
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f s", v/1000)
	}
}

// ratio is a/b, or NaN.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return math.NaN()
	}
	return a / b
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "n/a"
	}
	if r >= 10 {
		return fmt.Sprintf("%.0fx", r)
	}
	return fmt.Sprintf("%.1fx", r)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// result is one machine-readable line: bench, daemon, and the figures.
type result map[string]any

// table prints an aligned table under a title.
func table(w io.Writer, title string, header []string, rows [][]string, notes ...string) {
	fmt.Fprintf(w, "\n== %s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintf(w, "   %s\n", n)
	}
}

// emit prints one result as a machine-readable line and keeps it.
func (b *bench) emit(r result) {
	js, err := json.Marshal(sanitize(r))
	if err != nil {
		js = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	fmt.Fprintf(b.out, "RESULT %s\n", js)
	b.results = append(b.results, json.RawMessage(js))
}

// sanitize replaces NaN and infinities (which JSON cannot carry) by nil.
func sanitize(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return math.Round(x*1000) / 1000
	case result:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = sanitize(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = sanitize(e)
		}
		return m
	case latStats:
		return sanitize(map[string]any{
			"bans": x.N, "seen": x.Seen, "not_seen": x.Missed, "cap_s": x.CapSec,
			"p50_ms": nonNeg(x.P50), "p90_ms": nonNeg(x.P90), "p99_ms": nonNeg(x.P99),
			"max_ms": nonNeg(x.Max), "mean_ms": nonNeg(x.Mean), "min_ms": nonNeg(x.Min),
		})
	}
	return v
}

func nonNeg(v float64) float64 {
	if v < 0 {
		return math.NaN()
	}
	return v
}

// median of some durations, in milliseconds (-1 for none).
func median(d []time.Duration) float64 {
	if len(d) == 0 {
		return -1
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[(len(s)-1)/2]) / float64(time.Millisecond)
}

// fmtLoad shows how many CPUs other processes used (and the hypervisor stole).
func fmtLoad(other, steal float64) string {
	if steal >= 0.05 {
		return fmt.Sprintf("%.2f cpu (+%.2f stolen)", other, steal)
	}
	return fmt.Sprintf("%.2f cpu", other)
}
