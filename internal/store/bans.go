package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

type stmtID int

const (
	stFindActive stmtID = iota
	stCountTarget
	stInsertBan
	stUpdateBan
	stEndByID
	stEndActive
	stPutPosition
	stDeletePosition
	stPurge
	numStmts
)

var stmtSQL = [numStmts]string{
	stFindActive:  `SELECT id, start_at FROM ban WHERE jail = ? AND addr = ? AND bits = ? AND ended_at IS NULL`,
	stCountTarget: `SELECT count(*) FROM ban WHERE addr = ? AND bits = ? AND jail = ?`,
	stInsertBan: `INSERT INTO ban (jail, addr, bits, start_at, end_at, failures, manual, count, lines)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	stUpdateBan: `UPDATE ban SET end_at = ?, failures = ?, manual = ?,
		count = CASE WHEN ?4 = 0 THEN count ELSE ?4 END, lines = ? WHERE id = ?`,
	stEndByID: `UPDATE ban SET ended_at = ?, reason = ?, lines = NULL WHERE id = ?`,
	stEndActive: `UPDATE ban SET ended_at = ?, reason = ?, lines = NULL
		WHERE jail = ? AND addr = ? AND bits = ? AND ended_at IS NULL`,
	stPutPosition: `INSERT INTO position (path, dev, inode, file_offset, head_len, head_hash, saved_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (path) DO UPDATE SET dev = excluded.dev, inode = excluded.inode,
			file_offset = excluded.file_offset, head_len = excluded.head_len,
			head_hash = excluded.head_hash, saved_at = excluded.saved_at`,
	stDeletePosition: `DELETE FROM position WHERE path = ?`,
	stPurge: `DELETE FROM ban WHERE id IN (SELECT id FROM ban
		WHERE start_at < ?1 AND ended_at IS NOT NULL AND ended_at < ?1 LIMIT ?2)`,
}

// stmts are the writer's statements, prepared once on the writer pool.
type stmts struct{ s [numStmts]*sql.Stmt }

func (st *stmts) prepare(db *sql.DB) error {
	for i, q := range stmtSQL {
		s, err := db.Prepare(q)
		if err != nil {
			st.close()
			return fmt.Errorf("prepare %q: %w", strings.Fields(q)[0], err)
		}
		st.s[i] = s
	}
	return nil
}

func (st *stmts) close() {
	for i, s := range st.s {
		if s != nil {
			s.Close()
			st.s[i] = nil
		}
	}
}

// putBan is PutBan's write, with its arguments already encoded.
type putBan struct {
	jail            string
	addr            []byte
	bits            int
	start, end      int64
	failures, count int
	manual          int
	lines           []byte
}

func (p *putBan) apply(t *txn) error {
	var id, start int64
	err := t.queryRow(stFindActive, p.jail, p.addr, p.bits).Scan(&id, &start)
	switch {
	case err == nil && start == p.start:
		_, err = t.exec(stUpdateBan, p.end, p.failures, p.manual, p.count, p.lines, id)
		return err
	case err == nil:
		// Another ban of this (jail, target) is in force: this one replaces it.
		if _, err := t.exec(stEndByID, p.start, ReasonSuperseded, id); err != nil {
			return err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	count := p.count
	if count == 0 {
		if err := t.queryRow(stCountTarget, p.addr, p.bits, p.jail).Scan(&count); err != nil {
			return err
		}
		count++
	}
	_, err = t.exec(stInsertBan, p.jail, p.addr, p.bits, p.start, p.end, p.failures, p.manual, count, p.lines)
	return err
}

func newPutBan(b Ban) (*putBan, error) {
	if b.Jail == "" {
		return nil, fmt.Errorf("%w: empty jail", ErrInvalid)
	}
	if b.Start.IsZero() {
		return nil, fmt.Errorf("%w: zero start", ErrInvalid)
	}
	t, err := normTarget(b.Target)
	if err != nil {
		return nil, err
	}
	return &putBan{
		jail:     b.Jail,
		addr:     t.Addr().AsSlice(),
		bits:     t.Bits(),
		start:    toMS(b.Start),
		end:      toMS(b.End),
		failures: b.Failures,
		count:    max(b.Count, 0),
		manual:   boolInt(b.Manual),
		lines:    encodeLines(b.Lines),
	}, nil
}

// PutBan records b as in force and waits for the commit. It is an upsert by
// (jail, target): with the same Start it updates the ban in force (End,
// Failures, Lines, Manual, and Count unless 0), which is how a ban is
// extended; with another Start it ends the ban in force (reason
// ReasonSuperseded) and records b as a new ban of the history.
func (s *Store) PutBan(b Ban) error {
	o, err := newPutBan(b)
	if err != nil {
		return err
	}
	return s.do(o)
}

// PutBanAsync queues PutBan(b) and returns at once. done, if not nil, is
// called from the writer goroutine once the write is committed (nil) or has
// failed; it must not block, nor call the synchronous methods of the Store
// (queueing more writes is fine). Callbacks run in the order the writes were
// queued. An invalid ban (ErrInvalid) or a closed Store (ErrClosed) calls
// done before PutBanAsync returns, on the caller's goroutine.
func (s *Store) PutBanAsync(b Ban, done func(error)) {
	o, err := newPutBan(b)
	if err != nil {
		if done != nil {
			done(err)
		}
		return
	}
	s.submit(o, done)
}

type endBan struct {
	jail   string
	addr   []byte
	bits   int
	at     int64
	reason string
}

func (e *endBan) apply(t *txn) error {
	_, err := t.exec(stEndActive, e.at, e.reason, e.jail, e.addr, e.bits)
	return err
}

func (s *Store) newEndBan(jail string, target netip.Prefix, at time.Time, reason string) (*endBan, error) {
	t, err := normTarget(target)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		at = s.clk.Now()
	}
	return &endBan{jail: jail, addr: t.Addr().AsSlice(), bits: t.Bits(), at: toMS(at), reason: reason}, nil
}

// EndBan ends the ban of target in jail at the time at (zero: now) for
// reason ("expired", "unban", ...), and waits for the commit. The ban stays
// in the history; its lines are dropped. Ending a ban that is not in force
// is a no-op, so a replayed unban is harmless.
func (s *Store) EndBan(jail string, target netip.Prefix, at time.Time, reason string) error {
	o, err := s.newEndBan(jail, target, at, reason)
	if err != nil {
		return err
	}
	return s.do(o)
}

// EndBanAsync queues EndBan; done as for PutBanAsync.
func (s *Store) EndBanAsync(jail string, target netip.Prefix, at time.Time, reason string, done func(error)) {
	o, err := s.newEndBan(jail, target, at, reason)
	if err != nil {
		if done != nil {
			done(err)
		}
		return
	}
	s.submit(o, done)
}

// PurgeChunk is how many rows one purge transaction deletes: a purge of a
// long history never holds the writer for long, and writes queued meanwhile
// are committed between the chunks.
const PurgeChunk = 5000

// Purge deletes the bans of the history that ended before the time before
// (dbpurgeage: now minus the age). Bans in force are never purged, however
// old. It returns how many were deleted.
func (s *Store) Purge(before time.Time) (int, error) {
	total := 0
	cut := toMS(before)
	for {
		var n int64
		err := s.do(opFunc(func(t *txn) error {
			r, err := t.exec(stPurge, cut, PurgeChunk)
			if err != nil {
				return err
			}
			n, err = r.RowsAffected()
			return err
		}))
		if err != nil {
			return total, fmt.Errorf("purge: %w", err)
		}
		total += int(n)
		if n < PurgeChunk {
			return total, nil
		}
	}
}

const banColumns = `jail, addr, bits, start_at, end_at, failures, manual, count, lines`

// ActiveBans returns every ban in force (expired ones included: see
// ExpiredActive), sorted by jail and start. It reads committed writes only:
// call Flush first to see writes still queued.
func (s *Store) ActiveBans() ([]Ban, error) {
	// Through the partial index of the bans in force, and sorted here: an
	// ORDER BY would have SQLite copy every row, lines and all, into its
	// sorter first.
	return s.queryBans(`SELECT ` + banColumns + ` FROM ban INDEXED BY ban_active WHERE ended_at IS NULL`)
}

// JailBans returns the bans in force of one jail (expired ones included),
// sorted like ActiveBans: what a jail adopts when it starts.
func (s *Store) JailBans(jail string) ([]Ban, error) {
	return s.queryBans(`SELECT `+banColumns+` FROM ban INDEXED BY ban_active WHERE jail = ? AND ended_at IS NULL`, jail)
}

// ExpiredActive returns the bans in force whose End is at or before now:
// those that ran out while nobody ended them (the daemon was down).
func (s *Store) ExpiredActive(now time.Time) ([]Ban, error) {
	return s.queryBans(`SELECT `+banColumns+` FROM ban
		WHERE ended_at IS NULL AND end_at != 0 AND end_at <= ?`, toMS(now))
}

func (s *Store) queryBans(q string, args ...any) ([]Ban, error) {
	rows, err := s.rdb.QueryContext(context.Background(), q, args...)
	if err != nil {
		return nil, fmt.Errorf("read bans: %w", err)
	}
	defer rows.Close()
	var bans []Ban
	for rows.Next() {
		var (
			b                 Ban
			addr, lines       []byte
			bits, manual      int
			start, end        int64
			failures, counter int
		)
		if err := rows.Scan(&b.Jail, &addr, &bits, &start, &end, &failures, &manual, &counter, &lines); err != nil {
			return nil, fmt.Errorf("read bans: %w", err)
		}
		if b.Target, err = decodeTarget(addr, bits); err != nil {
			s.log.Warn("skipping unreadable ban", "jail", b.Jail, "err", err)
			continue
		}
		b.Start, b.End = fromMS(start), fromMS(end)
		b.Failures, b.Manual, b.Count = failures, manual != 0, counter
		if b.Lines, err = decodeLines(lines); err != nil {
			s.log.Warn("unreadable lines of a ban", "jail", b.Jail, "target", b.Target, "err", err)
		}
		bans = append(bans, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read bans: %w", err)
	}
	slices.SortFunc(bans, func(a, b Ban) int {
		return cmp.Or(strings.Compare(a.Jail, b.Jail), a.Start.Compare(b.Start), a.Target.Addr().Compare(b.Target.Addr()),
			cmp.Compare(a.Target.Bits(), b.Target.Bits()))
	})
	return bans, nil
}

// BanCount returns how many bans of addr (as a single address) started at
// or after since: in jail, or in every jail when allJails is set (fail2ban's
// bantime.overalljails). The ban manager adds one for the ban it is making.
// A zero since counts the whole history (bounded by Purge).
func (s *Store) BanCount(jail string, addr netip.Addr, since time.Time, allJails bool) (int, error) {
	if !addr.IsValid() {
		return 0, fmt.Errorf("%w: address %v", ErrInvalid, addr)
	}
	p := hostPrefix(addr)
	q := `SELECT count(*) FROM ban WHERE addr = ? AND bits = ? AND start_at >= ?`
	args := []any{p.Addr().AsSlice(), p.Bits(), toMS(since)}
	if !allJails {
		q += ` AND jail = ?`
		args = append(args, jail)
	}
	var n int
	if err := s.rdb.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count bans: %w", err)
	}
	return n, nil
}

// History returns the bans q selects, newest first.
func (s *Store) History(q Query) ([]HistBan, error) {
	var (
		where []string
		args  []any
	)
	if q.Jail != "" {
		where = append(where, "jail = ?")
		args = append(args, q.Jail)
	}
	if q.Target.IsValid() {
		t, err := normTarget(q.Target)
		if err != nil {
			return nil, err
		}
		where = append(where, "addr = ? AND bits = ?")
		args = append(args, t.Addr().AsSlice(), t.Bits())
	}
	if !q.Since.IsZero() {
		where = append(where, "start_at >= ?")
		args = append(args, toMS(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "start_at < ?")
		args = append(args, toMS(q.Until))
	}
	sqlq := `SELECT id, jail, addr, bits, start_at, end_at, ended_at, reason, failures, manual, count FROM ban`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY start_at DESC, id DESC"
	if q.Limit > 0 {
		sqlq += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := s.rdb.QueryContext(context.Background(), sqlq, args...)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var out []HistBan
	for rows.Next() {
		var (
			h                 HistBan
			addr              []byte
			bits, manual      int
			start, end        int64
			ended             sql.NullInt64
			reason            sql.NullString
			failures, counter int
		)
		if err := rows.Scan(&h.ID, &h.Jail, &addr, &bits, &start, &end, &ended, &reason, &failures, &manual, &counter); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		if h.Target, err = decodeTarget(addr, bits); err != nil {
			s.log.Warn("skipping unreadable ban", "id", h.ID, "err", err)
			continue
		}
		h.Start, h.End, h.Ended = fromMS(start), fromMS(end), fromMS(ended.Int64)
		h.Reason, h.Failures, h.Manual, h.Count = reason.String, failures, manual != 0, counter
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return out, nil
}
