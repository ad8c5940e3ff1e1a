package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// ReportQuery selects the bans a report covers: those that started in
// [Since, Now].
type ReportQuery struct {
	Since time.Time // zero: the whole history
	Jail  string    // "": every jail
	Top   int       // length of TopAddresses and TopPrefixes; 0: all
	Now   time.Time // end of the period, and the time bans in force are counted at; zero: the clock's now
	// Prefix lengths the neighbourhoods are grouped by; 0: 24 and 64.
	Prefix4, Prefix6 int
}

// Report is what `logjail report` prints (its --json output).
type Report struct {
	Since     time.Time `json:"since,omitzero"`
	Until     time.Time `json:"until"`
	Jail      string    `json:"jail,omitempty"`
	Bans      int       `json:"bans"`      // bans in the period, of every target
	Addresses int       `json:"addresses"` // distinct single addresses banned
	Prefix4   int       `json:"prefix4"`
	Prefix6   int       `json:"prefix6"`
	// TopAddresses are the single addresses banned, most bans first (then
	// latest ban first, then by address).
	TopAddresses []AddrStat `json:"top_addresses"`
	// TopPrefixes are the neighbourhoods (Prefix4 / Prefix6), most bans
	// first (then most addresses, then by prefix). A ban of a prefix wider
	// than the neighbourhood is its own entry.
	TopPrefixes []PrefixStat `json:"top_prefixes"`
	Jails       []JailStat   `json:"jails"` // by name
}

// AddrStat is the record of one address.
type AddrStat struct {
	Addr  netip.Addr `json:"address"`
	Bans  int        `json:"bans"`
	Share float64    `json:"share"` // of Report.Bans, 0..1
	First time.Time  `json:"first"`
	Last  time.Time  `json:"last"`
	// MeanInterval is the mean time between two of its bans, (Last -
	// First) / (Bans - 1); zero with one ban.
	MeanInterval Interval `json:"mean_interval_s,omitzero"`
	Jails        []string `json:"jails"`
}

// PrefixStat is the record of one neighbourhood.
type PrefixStat struct {
	Prefix    netip.Prefix `json:"prefix"`
	Bans      int          `json:"bans"`  // of its addresses and of prefixes within it
	Share     float64      `json:"share"` // of Report.Bans, 0..1
	Addresses int          `json:"addresses"`
	// PrefixBans counts the bans of the prefix itself or of prefixes
	// within it (subnet bans), included in Bans.
	PrefixBans int       `json:"prefix_bans,omitempty"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
}

// JailStat is the total of one jail.
type JailStat struct {
	Jail    string    `json:"jail"`
	Bans    int       `json:"bans"`
	Share   float64   `json:"share"`
	Targets int       `json:"targets"` // distinct addresses and prefixes
	Manual  int       `json:"manual,omitempty"`
	Active  int       `json:"active"` // in force at Now, whenever they started
	First   time.Time `json:"first,omitzero"`
	Last    time.Time `json:"last,omitzero"`
}

// Interval is a duration that JSON encodes as seconds, the unit a report's
// reader computes with.
type Interval time.Duration

// MarshalJSON writes the interval in seconds.
func (d Interval) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', -1, 64), nil
}

// UnmarshalJSON reads seconds.
func (d *Interval) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("interval: %w", err)
	}
	*d = Interval(f * float64(time.Second))
	return nil
}

func (d Interval) String() string { return time.Duration(d).String() }

type span struct{ first, last int64 }

func (s *span) add(first, last int64) {
	if s.first == 0 || first < s.first {
		s.first = first
	}
	if last > s.last {
		s.last = last
	}
}

// Report computes the report of q.
//
// One query does the grouping: SQLite walks the covering index ban_addr
// (addr, bits, jail, start_at, manual) and returns one row per (target,
// jail) with its count, first and last start, in target order, without
// sorting and without reading the table. Go then folds consecutive rows
// into the per-address entries, and adds them up per prefix and per jail.
// Over 1,000,000 bans this takes about a second (see BenchmarkReport1M).
func (s *Store) Report(q ReportQuery) (*Report, error) {
	if q.Now.IsZero() {
		q.Now = s.clk.Now()
	}
	if q.Prefix4 <= 0 || q.Prefix4 > 32 {
		q.Prefix4 = 24
	}
	if q.Prefix6 <= 0 || q.Prefix6 > 128 {
		q.Prefix6 = 64
	}
	ctx := context.Background()
	sqlq := `SELECT addr, bits, jail, count(*), min(start_at), max(start_at), sum(manual)
		FROM ban INDEXED BY ban_addr WHERE start_at >= ? AND start_at <= ?`
	args := []any{toMS(q.Since), toMS(q.Now)}
	if q.Jail != "" {
		sqlq += ` AND jail = ?`
		args = append(args, q.Jail)
	}
	sqlq += ` GROUP BY addr, bits, jail ORDER BY addr, bits, jail` // index order: no sort
	rows, err := s.rdb.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer rows.Close()

	r := &Report{
		Since: q.Since, Until: q.Now, Jail: q.Jail,
		Prefix4: q.Prefix4, Prefix6: q.Prefix6,
		TopAddresses: []AddrStat{}, TopPrefixes: []PrefixStat{}, Jails: []JailStat{},
	}
	jails := make(map[string]*JailStat)
	jailSpans := make(map[string]*span)
	prefixes := make(map[netip.Prefix]*PrefixStat)
	prefixSpans := make(map[netip.Prefix]*span)

	// The target being folded: rows of one target are consecutive.
	var (
		cur      netip.Prefix
		curBans  int
		curSpan  span
		curJails []string
	)
	flush := func() {
		if curBans == 0 {
			return
		}
		host := cur.IsSingleIP()
		if host {
			a := AddrStat{Addr: cur.Addr(), Bans: curBans, First: fromMS(curSpan.first), Last: fromMS(curSpan.last),
				Jails: slices.Clone(curJails)}
			if curBans > 1 {
				a.MeanInterval = Interval(time.Duration(curSpan.last-curSpan.first) * time.Millisecond / time.Duration(curBans-1))
			}
			r.TopAddresses = append(r.TopAddresses, a)
		}
		gb := q.Prefix6
		if cur.Addr().Is4() {
			gb = q.Prefix4
		}
		key := cur
		if cur.Bits() >= gb {
			key = netip.PrefixFrom(cur.Addr(), gb).Masked()
		}
		ps := prefixes[key]
		if ps == nil {
			ps = &PrefixStat{Prefix: key}
			prefixes[key] = ps
			prefixSpans[key] = &span{}
		}
		ps.Bans += curBans
		if host {
			ps.Addresses++
		} else {
			ps.PrefixBans += curBans
		}
		prefixSpans[key].add(curSpan.first, curSpan.last)
		curBans, curSpan, curJails = 0, span{}, curJails[:0]
	}
	var addr, jailName sql.RawBytes
	for rows.Next() {
		var (
			bits, n, manual int
			first, last     int64
		)
		if err := rows.Scan(&addr, &bits, &jailName, &n, &first, &last, &manual); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		t, err := decodeTarget(addr, bits)
		if err != nil {
			s.log.Warn("report: skipping unreadable bans", "jail", string(jailName), "err", err)
			continue
		}
		if t != cur {
			flush()
			cur = t
		}
		js := jails[string(jailName)]
		if js == nil {
			js = &JailStat{Jail: string(jailName)}
			jails[js.Jail] = js
			jailSpans[js.Jail] = &span{}
		}
		js.Bans += n
		js.Targets++
		js.Manual += manual
		jailSpans[js.Jail].add(first, last)
		r.Bans += n
		curBans += n
		curSpan.add(first, last)
		curJails = append(curJails, js.Jail) // sorted: rows come by jail within a target
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	flush()
	rows.Close()

	// Bans in force now, whenever they started.
	aq := `SELECT jail, count(*) FROM ban WHERE ended_at IS NULL AND (end_at = 0 OR end_at > ?)`
	aargs := []any{toMS(q.Now)}
	if q.Jail != "" {
		aq += ` AND jail = ?`
		aargs = append(aargs, q.Jail)
	}
	aq += ` GROUP BY jail`
	arows, err := s.rdb.QueryContext(ctx, aq, aargs...)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var (
			jail string
			n    int
		)
		if err := arows.Scan(&jail, &n); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		js := jails[jail]
		if js == nil {
			js = &JailStat{Jail: jail}
			jails[jail] = js
		}
		js.Active = n
	}
	if err := arows.Err(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}

	share := func(n int) float64 {
		if r.Bans == 0 {
			return 0
		}
		return float64(n) / float64(r.Bans)
	}
	r.Addresses = len(r.TopAddresses)
	slices.SortFunc(r.TopAddresses, func(a, b AddrStat) int {
		return cmp.Or(cmp.Compare(b.Bans, a.Bans), b.Last.Compare(a.Last), a.Addr.Compare(b.Addr))
	})
	if q.Top > 0 {
		r.TopAddresses = r.TopAddresses[:min(q.Top, len(r.TopAddresses))]
	}
	for i := range r.TopAddresses {
		r.TopAddresses[i].Share = share(r.TopAddresses[i].Bans)
	}
	for k, ps := range prefixes {
		ps.Share = share(ps.Bans)
		ps.First, ps.Last = fromMS(prefixSpans[k].first), fromMS(prefixSpans[k].last)
		r.TopPrefixes = append(r.TopPrefixes, *ps)
	}
	slices.SortFunc(r.TopPrefixes, func(a, b PrefixStat) int {
		return cmp.Or(cmp.Compare(b.Bans, a.Bans), cmp.Compare(b.Addresses, a.Addresses),
			a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	if q.Top > 0 {
		r.TopPrefixes = r.TopPrefixes[:min(q.Top, len(r.TopPrefixes))]
	}
	for name, js := range jails {
		js.Share = share(js.Bans)
		if sp := jailSpans[name]; sp != nil {
			js.First, js.Last = fromMS(sp.first), fromMS(sp.last)
		}
		r.Jails = append(r.Jails, *js)
	}
	slices.SortFunc(r.Jails, func(a, b JailStat) int { return cmp.Compare(a.Jail, b.Jail) })
	return r, nil
}
