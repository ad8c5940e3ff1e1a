package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"
)

// MaxHead is the longest head of a log file a Position fingerprints.
const MaxHead = 1024

// Position is how far a log file was read, and what the file was.
//
// On resume the follower compares the file now at the path with it: the
// same Dev and Inode and the same head (SameHead) mean the same file, read
// on from Offset (from 0 if the file is now shorter than Offset: it was
// truncated); anything else is another file (rotated while the daemon was
// down), read from its start.
type Position struct {
	Dev, Inode uint64
	Offset     int64
	// HeadLen bytes at the start of the file hash to HeadHash (SHA-256).
	// A file shorter than MaxHead when saved has a shorter head; save again
	// as it grows, so that the fingerprint grows with it.
	HeadLen  int
	HeadHash [32]byte
	Saved    time.Time
}

// Head returns the length and SHA-256 of the first min(n, MaxHead) bytes of
// r (fewer if r is shorter), for Position.HeadLen and HeadHash.
func Head(r io.ReaderAt, n int) (int, [32]byte, error) {
	buf := make([]byte, min(max(n, 0), MaxHead))
	k, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, [32]byte{}, err
	}
	return k, sha256.Sum256(buf[:k]), nil
}

// SameHead reports whether r starts with the head p was saved with. A
// HeadLen of 0 (an empty file when saved) matches any file.
func (p Position) SameHead(r io.ReaderAt) (bool, error) {
	if p.HeadLen == 0 {
		return true, nil
	}
	n, sum, err := Head(r, p.HeadLen)
	if err != nil {
		return false, err
	}
	return n == p.HeadLen && bytes.Equal(sum[:], p.HeadHash[:]), nil
}

type savePosition struct {
	path string
	p    Position
}

func (o *savePosition) apply(t *txn) error {
	_, err := t.exec(stPutPosition, o.path, int64(o.p.Dev), int64(o.p.Inode), o.p.Offset,
		o.p.HeadLen, o.p.HeadHash[:], toMS(o.p.Saved))
	return err
}

func (s *Store) newSavePosition(path string, p Position) (*savePosition, error) {
	if path == "" || p.Offset < 0 || p.HeadLen < 0 || p.HeadLen > MaxHead {
		return nil, fmt.Errorf("%w: position %q offset %d head %d", ErrInvalid, path, p.Offset, p.HeadLen)
	}
	if p.Saved.IsZero() {
		p.Saved = s.clk.Now()
	}
	return &savePosition{path: path, p: p}, nil
}

// SavePosition records the position of the log file at path and waits for
// the commit.
func (s *Store) SavePosition(path string, p Position) error {
	o, err := s.newSavePosition(path, p)
	if err != nil {
		return err
	}
	return s.do(o)
}

// SavePositionAsync queues SavePosition; done (may be nil) as for
// PutBanAsync. Positions and bans share the queue, so a position queued
// after the bans its lines caused is never committed before them.
func (s *Store) SavePositionAsync(path string, p Position, done func(error)) {
	o, err := s.newSavePosition(path, p)
	if err != nil {
		if done != nil {
			done(err)
		}
		return
	}
	s.submit(o, done)
}

// DeletePosition forgets the position of path (a log no jail follows any
// more).
func (s *Store) DeletePosition(path string) error {
	return s.do(opFunc(func(t *txn) error {
		_, err := t.exec(stDeletePosition, path)
		return err
	}))
}

// Position returns the saved position of the log file at path, and whether
// there is one.
func (s *Store) Position(path string) (Position, bool, error) {
	row := s.rdb.QueryRowContext(context.Background(),
		`SELECT dev, inode, file_offset, head_len, head_hash, saved_at FROM position WHERE path = ?`, path)
	p, err := scanPosition(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("read position of %s: %w", path, err)
	}
	return p, true, nil
}

// Positions returns every saved position by path.
func (s *Store) Positions() (map[string]Position, error) {
	rows, err := s.rdb.QueryContext(context.Background(),
		`SELECT path, dev, inode, file_offset, head_len, head_hash, saved_at FROM position`)
	if err != nil {
		return nil, fmt.Errorf("read positions: %w", err)
	}
	defer rows.Close()
	out := make(map[string]Position)
	for rows.Next() {
		var path string
		p, err := scanPosition(func(dest ...any) error {
			return rows.Scan(append([]any{&path}, dest...)...)
		})
		if err != nil {
			return nil, fmt.Errorf("read positions: %w", err)
		}
		out[path] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read positions: %w", err)
	}
	return out, nil
}

func scanPosition(scan func(dest ...any) error) (Position, error) {
	var (
		p          Position
		dev, inode int64
		hash       []byte
		saved      int64
	)
	if err := scan(&dev, &inode, &p.Offset, &p.HeadLen, &hash, &saved); err != nil {
		return Position{}, err
	}
	if len(hash) != len(p.HeadHash) {
		return Position{}, fmt.Errorf("head hash of %d bytes", len(hash))
	}
	copy(p.HeadHash[:], hash)
	p.Dev, p.Inode, p.Saved = uint64(dev), uint64(inode), fromMS(saved)
	return p, nil
}
