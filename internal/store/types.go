package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Bounds on the lines kept with a ban in force. The newest lines are kept;
// a longer line is cut at MaxLineBytes.
const (
	MaxLines     = 16
	MaxLineBytes = 1024
)

// Ban is a ban in force, as the ban manager hands it to the store.
type Ban struct {
	Jail   string
	Target netip.Prefix // one address is a /32 or /128; stored masked, IPv4-mapped IPv6 unmapped
	Start  time.Time
	End    time.Time // zero: permanent
	// Failures is the number of failures that led to the ban.
	Failures int
	// Lines are the log lines that caused it (bounded by MaxLines and
	// MaxLineBytes). They are dropped when the ban ends.
	Lines  []string
	Manual bool
	// Count is how many times this target has been banned, this ban
	// included (for repeat offenders). The ban manager sets it from
	// BanCount; 0 asks the store to count the bans of this target in this
	// jail that it holds, plus one.
	Count int
}

// HistBan is one ban of the history: every ban ever made, until purged.
type HistBan struct {
	ID       int64        `json:"id"`
	Jail     string       `json:"jail"`
	Target   netip.Prefix `json:"target"`
	Start    time.Time    `json:"start"`
	End      time.Time    `json:"end,omitzero"`   // planned end; zero: permanent
	Ended    time.Time    `json:"ended,omitzero"` // zero while in force
	Reason   string       `json:"reason,omitempty"`
	Failures int          `json:"failures"`
	Manual   bool         `json:"manual,omitempty"`
	Count    int          `json:"count"`
}

// Active reports whether the ban is still in force in the store.
func (h HistBan) Active() bool { return h.Ended.IsZero() }

// Query selects bans of the history. Zero fields select everything.
type Query struct {
	Jail   string
	Target netip.Prefix // exact target
	Since  time.Time    // Start at or after
	Until  time.Time    // Start before
	Limit  int          // newest first; 0: no limit
}

// Reasons a ban ends, as the store writes them itself.
const (
	ReasonSuperseded = "superseded" // PutBan with another Start for a (jail, target) in force
)

// normTarget masks p and unmaps an IPv4-mapped IPv6 prefix, so that one
// network has one spelling in the database.
func normTarget(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("%w: target %v", ErrInvalid, p)
	}
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

func hostPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

func decodeTarget(addr []byte, bits int) (netip.Prefix, error) {
	a, ok := netip.AddrFromSlice(addr)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("bad address of %d bytes", len(addr))
	}
	p := netip.PrefixFrom(a, bits)
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("bad prefix length %d for %v", bits, a)
	}
	return p, nil
}

func toMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// encodeLines keeps the newest MaxLines lines, each cut at MaxLineBytes, as
// a sequence of (uvarint length, bytes): lossless for any bytes, invalid
// UTF-8 included. No lines encode as nil (NULL).
func encodeLines(lines []string) []byte {
	if len(lines) > MaxLines {
		lines = lines[len(lines)-MaxLines:]
	}
	if len(lines) == 0 {
		return nil
	}
	n := 0
	for _, l := range lines {
		n += binary.MaxVarintLen32 + min(len(l), MaxLineBytes)
	}
	b := make([]byte, 0, n)
	for _, l := range lines {
		if len(l) > MaxLineBytes {
			l = l[:MaxLineBytes]
		}
		b = binary.AppendUvarint(b, uint64(len(l)))
		b = append(b, l...)
	}
	return b
}

var errBadLines = errors.New("bad lines encoding")

func decodeLines(b []byte) ([]string, error) {
	var lines []string
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return lines, errBadLines
		}
		lines = append(lines, string(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	return lines, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
