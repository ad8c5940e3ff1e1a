// Package source produces log lines from files: text logs and binary login records.
package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// UtmpRecordSize is the size of one glibc struct utmp on x86-64 Linux (bits/utmp.h): the
// record size of btmp, wtmp and utmp files. Records are read as little-endian, as x86-64
// writes them, whatever the host.
const UtmpRecordSize = 384

// Values of UtmpRecord.Type (ut_type, see utmp(5)). sshd and login write failed logins to btmp
// as UtmpLoginProcess records.
const (
	UtmpEmpty        int16 = 0 // no valid accounting information
	UtmpRunLevel     int16 = 1 // change of system run level
	UtmpBootTime     int16 = 2 // time of system boot
	UtmpNewTime      int16 = 3 // time after a system clock change
	UtmpOldTime      int16 = 4 // time before a system clock change
	UtmpInitProcess  int16 = 5 // process spawned by init
	UtmpLoginProcess int16 = 6 // session leader of a login; failed logins in btmp
	UtmpUserProcess  int16 = 7 // normal process
	UtmpDeadProcess  int16 = 8 // terminated process
	UtmpAccounting   int16 = 9 // not implemented on Linux
)

// Layout of struct utmp (glibc, x86-64, little-endian), checked against
// /usr/include/x86_64-linux-gnu/bits/utmp.h and utmp(5). ut_session and ut_tv are 32-bit
// even on 64-bit systems (__WORDSIZE_TIME64_COMPAT32). tv_sec was int32_t until glibc 2.40
// made it unsigned (commit 5361ad39, 2024, for Y2038); the two agree until 2038-01-19, and
// reading it unsigned keeps working until 2106.
const (
	utmpOffType    = 0   // int16, then 2 bytes of padding
	utmpOffPID     = 4   // int32
	utmpOffLine    = 8   // [32]byte
	utmpOffID      = 40  // [4]byte
	utmpOffUser    = 44  // [32]byte
	utmpOffHost    = 76  // [256]byte
	utmpOffExit    = 332 // struct { int16 e_termination, e_exit }, unused here
	utmpOffSession = 336 // int32
	utmpOffTvSec   = 340 // uint32 since glibc 2.40, int32 before
	utmpOffTvUsec  = 344 // int32
	utmpOffAddr    = 348 // [4]int32, the address bytes in network order
	utmpOffUnused  = 364 // [20]byte, __glibc_reserved

	utmpLineSize = 32
	utmpIDSize   = 4
	utmpUserSize = 32
	utmpHostSize = 256
)

// UtmpRecord is one decoded struct utmp.
//
// The string fields hold the raw bytes of the record up to the first NUL (a field that fills
// its array has no NUL, as utmp(5) allows). They are not sanitised: User is whatever login name
// a client tried, and Host may be a reverse-DNS name the client controls. Print them only
// through Text.
type UtmpRecord struct {
	Type int16  // ut_type, one of the Utmp* constants
	PID  int32  // ut_pid
	Line string // ut_line: the tty without "/dev/", "ssh:notty" for sshd
	ID   string // ut_id
	User string // ut_user
	Host string // ut_host

	// Addr is the address in ut_addr_v6, which the login program took from the socket.
	// It is IPv4 when only the first word is set, and IPv6 otherwise, with an IPv4-mapped
	// IPv6 address (::ffff:a.b.c.d) unmapped to IPv4. It is the zero Addr when all words are 0
	// (or hold ::ffff:0.0.0.0).
	Addr netip.Addr

	Time    time.Time // ut_tv, in UTC
	Session int32     // ut_session
}

// UtmpStats counts what an UtmpReader has read.
//
// Skipped is always the sum of the reasons (BadType to Partial): each skipped record is
// counted under the first check it failed.
type UtmpStats struct {
	Records int64 // well-formed records returned by Next
	Skipped int64 // records skipped: garbage or a trailing partial record

	BadType     int64 // ut_type outside 0..9
	BadPID      int64 // negative ut_pid
	BadTime     int64 // tv_usec outside 0..999999
	BadString   int64 // ut_line, ut_user or ut_host with a non-NUL byte after the first NUL
	BadReserved int64 // non-zero __glibc_reserved bytes
	BadAddr     int64 // ut_host is an IP address other than the one in ut_addr_v6
	Partial     int64 // a trailing record shorter than UtmpRecordSize, or one cut by a read error

	// Offset is the number of bytes of whole records consumed (read and either returned or
	// skipped as garbage). A follower that saves its position resumes at Offset, so that a
	// record still being written is read whole next time.
	Offset int64
}

// UtmpReader reads struct utmp records (btmp, wtmp, utmp files) from an io.Reader.
//
// Garbage records are counted in Stats and skipped, never returned. A record is garbage when
//
//   - ut_type is outside 0..9, or ut_pid is negative;
//   - tv_usec is not a microsecond count (0..999999);
//   - ut_line, ut_user or ut_host has a byte other than NUL after its first NUL;
//   - the 20 __glibc_reserved bytes are not all zero;
//   - ut_host is an IP address, ut_addr_v6 is set, and the two differ.
//
// The last three are what catch a file whose records are misaligned: after a torn write (a
// crash or a full disk), every following 384-byte window straddles two records, and the next
// record's ut_type or strings land where these checks expect NUL padding or the address. The
// padding checks hold for real files because writers zero the whole record before filling it
// in (OpenSSH's record_failed_login does, and so does utmpdump -r); a writer that did not would
// see its records skipped and counted, not misread. The checks are otherwise lenient, as lastb
// is: a string that fills its array without a NUL is accepted; the padding after ut_type,
// ut_id, ut_exit and ut_session are not looked at; and the bytes of the strings are not
// judged, since a client picks the user name.
//
// What the checks cannot catch: the torn record itself, when the cut falls in its tv_sec,
// tv_usec or ut_addr_v6 (bytes 340 to 363) and ut_host is not an IP address (sshd with
// UseDNS yes). Its
// strings are intact, but its Addr or Time may be made of the next record's type, PID and
// ut_line: a nonsense address, never one a client chose, and the records after it are skipped
// as garbage.
//
// There is no other time check: tv_sec is read as glibc 2.40 declares it, an unsigned 32-bit
// count of seconds, so every value is a time between 1970 and 2106 (an older glibc's negative
// values, which nothing wrote before 2038, read as 2038 to 2106). Machines without a clock
// write 1970 into wtmp until they sync, so early times are not garbage either.
//
// Times are returned in UTC, so the rendered lines do not depend on the host's time zone and
// lose nothing: Text writes the numeric zone. A caller that wants local times converts
// UtmpRecord.Time before calling Text.
//
// Reading does not allocate per record beyond the strings of the record, and a field equal to
// the same field of the previous record reuses its string (btmp repeats "ssh:notty", and an
// attacker's address and user name over many records in a row).
type UtmpReader struct {
	r     io.Reader
	buf   [UtmpRecordSize]byte
	stats UtmpStats
	err   error // sticky: set after a partial record or a read error

	// The previous record's strings, reused when the bytes are equal.
	line, id, user, host string
}

// NewUtmpReader returns a reader of the utmp records in r. Wrap r in a bufio.Reader if its
// reads are expensive: UtmpReader reads one record at a time.
func NewUtmpReader(r io.Reader) *UtmpReader {
	return &UtmpReader{r: r}
}

// Next returns the next well-formed record, skipping and counting garbage.
//
// At the end of the input Next returns io.EOF. When the input ends on a record boundary, a
// later call reads on (from a file that has grown meanwhile, say). A trailing partial record
// is counted as skipped (Partial) and ends the stream for good, since the position of the next
// record is unknown: from then on Next returns io.EOF. A read error other than io.EOF also
// ends the stream; Next returns it wrapped, then and after.
func (r *UtmpReader) Next() (UtmpRecord, error) {
	for {
		if r.err != nil {
			return UtmpRecord{}, r.err
		}
		n, err := io.ReadFull(r.r, r.buf[:])
		if err != nil {
			if n > 0 { // the bytes are gone: alignment is lost
				r.skip(&r.stats.Partial)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if n == 0 { // at a record boundary: not sticky
					return UtmpRecord{}, io.EOF
				}
				r.err = io.EOF
			} else {
				r.err = fmt.Errorf("read utmp record: %w", err)
			}
			return UtmpRecord{}, r.err
		}
		r.stats.Offset += UtmpRecordSize
		if bad := checkUtmp(&r.buf); bad != utmpOK {
			r.skip(r.reasonCounter(bad))
			continue
		}
		rec := r.decode()
		if !rec.hostMatchesAddr() {
			r.skip(&r.stats.BadAddr)
			continue
		}
		r.stats.Records++
		return rec, nil
	}
}

// Stats returns the counts so far.
func (r *UtmpReader) Stats() UtmpStats { return r.stats }

func (r *UtmpReader) skip(reason *int64) {
	*reason++
	r.stats.Skipped++
}

func (r *UtmpReader) reasonCounter(bad utmpFault) *int64 {
	switch bad {
	case utmpBadType:
		return &r.stats.BadType
	case utmpBadPID:
		return &r.stats.BadPID
	case utmpBadTime:
		return &r.stats.BadTime
	case utmpBadReserved:
		return &r.stats.BadReserved
	default:
		return &r.stats.BadString
	}
}

func (r *UtmpReader) decode() UtmpRecord {
	b := &r.buf
	le := binary.LittleEndian
	sec := le.Uint32(b[utmpOffTvSec:])
	usec := le.Uint32(b[utmpOffTvUsec:])
	return UtmpRecord{
		Type:    int16(le.Uint16(b[utmpOffType:])),
		PID:     int32(le.Uint32(b[utmpOffPID:])),
		Line:    reuse(&r.line, cString(b[utmpOffLine:utmpOffLine+utmpLineSize])),
		ID:      reuse(&r.id, cString(b[utmpOffID:utmpOffID+utmpIDSize])),
		User:    reuse(&r.user, cString(b[utmpOffUser:utmpOffUser+utmpUserSize])),
		Host:    reuse(&r.host, cString(b[utmpOffHost:utmpOffHost+utmpHostSize])),
		Addr:    utmpAddr((*[16]byte)(b[utmpOffAddr : utmpOffAddr+16])),
		Time:    time.Unix(int64(sec), int64(usec)*1000).UTC(),
		Session: int32(le.Uint32(b[utmpOffSession:])),
	}
}

// reuse returns *prev when it equals b, and otherwise a new string that it also keeps in *prev.
func reuse(prev *string, b []byte) string {
	if string(b) != *prev { // the conversion in a comparison does not allocate
		*prev = string(b)
	}
	return *prev
}

// cString returns field up to its first NUL, or all of it.
func cString(field []byte) []byte {
	for i, c := range field {
		if c == 0 {
			return field[:i]
		}
	}
	return field
}

// utmpAddr decodes ut_addr_v6: IPv4 in the first word alone, as sshd and login write it, or
// IPv6. sshd unmaps IPv4-mapped peers before writing; a writer that does not would leave
// ::ffff:a.b.c.d, which is unmapped here so that the same client has one address.
func utmpAddr(a *[16]byte) netip.Addr {
	var rest [12]byte
	if [12]byte(a[4:]) == rest {
		if [4]byte(a[:4]) == [4]byte{} {
			return netip.Addr{}
		}
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	if addr := netip.AddrFrom16(*a).Unmap(); addr != netip.IPv4Unspecified() {
		return addr
	}
	return netip.Addr{} // ::ffff:0.0.0.0 is no address either
}

// hostMatchesAddr reports whether ut_host, when it is an IP address and ut_addr_v6 is set,
// is the same address. sshd (with UseDNS no, its default) and login write both from the same
// socket address, so a difference means the record is not what was written.
func (rec *UtmpRecord) hostMatchesAddr() bool {
	if !rec.Addr.IsValid() || rec.Host == "" {
		return true
	}
	if c := rec.Host[0]; !(c == ':' || '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
		return true // not an address; saves parsing every host name
	}
	h, err := netip.ParseAddr(rec.Host)
	if err != nil {
		return true
	}
	return h.Unmap().WithZone("") == rec.Addr
}

type utmpFault uint8

const (
	utmpOK utmpFault = iota
	utmpBadType
	utmpBadPID
	utmpBadTime
	utmpBadString
	utmpBadReserved
)

// checkUtmp tells whether b is a plausible struct utmp, and if not, the first reason why not.
func checkUtmp(b *[UtmpRecordSize]byte) utmpFault {
	le := binary.LittleEndian
	if t := int16(le.Uint16(b[utmpOffType:])); t < UtmpEmpty || t > UtmpAccounting {
		return utmpBadType
	}
	if int32(le.Uint32(b[utmpOffPID:])) < 0 {
		return utmpBadPID
	}
	// Writers fill tv_usec from gettimeofday or leave it 0. (Every tv_sec is a plausible
	// time, see UtmpReader.)
	if le.Uint32(b[utmpOffTvUsec:]) > 999_999 {
		return utmpBadTime
	}
	if !nulPadded(b[utmpOffLine:utmpOffLine+utmpLineSize]) ||
		!nulPadded(b[utmpOffUser:utmpOffUser+utmpUserSize]) ||
		!nulPadded(b[utmpOffHost:utmpOffHost+utmpHostSize]) {
		return utmpBadString
	}
	if [UtmpRecordSize - utmpOffUnused]byte(b[utmpOffUnused:]) != [UtmpRecordSize - utmpOffUnused]byte{} {
		return utmpBadReserved
	}
	return utmpOK
}

// nulPadded reports whether field has only NULs after its first NUL (or has no NUL).
func nulPadded(field []byte) bool {
	for i, c := range field {
		if c == 0 {
			for _, d := range field[i+1:] {
				if d != 0 {
					return false
				}
			}
			return true
		}
	}
	return true
}

// LooksLikeUtmp reports whether head, the first bytes of a file, looks like utmp records
// rather than text: it holds at least one whole record, its first record is well-formed
// (files start on a record boundary), and more of its whole records are well-formed than
// garbage. A trailing partial record in head is ignored, so head may be any buffer size;
// a few KiB is plenty. An empty or short head is not utmp.
func LooksLikeUtmp(head []byte) bool {
	good, bad := 0, 0
	for len(head) >= UtmpRecordSize {
		if checkUtmp((*[UtmpRecordSize]byte)(head[:UtmpRecordSize])) == utmpOK {
			good++
		} else {
			if good == 0 {
				return false
			}
			bad++
		}
		head = head[UtmpRecordSize:]
	}
	return good > bad
}

// Widths of the columns of Text, those of lastb.
const (
	utmpUserWidth = 8
	utmpLineWidth = 12
	utmpHostWidth = 16
)

// utmpTimeLayout is the time column: ISO 8601 with a numeric zone, as
// `lastb --time-format iso` prints it (+00:00, never Z).
const utmpTimeLayout = "2006-01-02T15:04:05-07:00"

// Text renders rec as one line in the format of `lastb --time-format iso`: user, tty, host
// and time, each column but the last padded with spaces to 8, 12 and 16 bytes and followed by
// one space (a longer value is not cut; it pushes the next column right), for example
//
//	root     ssh:notty    192.0.2.7        2026-11-22T13:42:01+00:00
//
// The time is printed in the location of rec.Time, to the second, with a numeric zone.
//
// The line is a security boundary, because the user name is whatever a client tried to log in
// as, and a filter must never take text from the user column for the host. So:
//
//   - every byte of user, tty and host that is not printable non-space ASCII (0x21-0x7e) is
//     written as \xHH, and so is every backslash; a column therefore never contains a space,
//     a control character or a non-ASCII byte, and the line always has exactly four
//     space-separated columns, the time last;
//   - an empty column is written as "-", and a value that is exactly "-" as \x2d, so "-"
//     always means empty and the rendering of each column is unambiguous;
//   - the host column is rec.Addr when it is set (the address the login program took from the
//     socket), and ut_host, escaped the same way, only when it is not; ut_host may hold a
//     reverse-DNS name, which a client can choose.
//
// A filter should still anchor its regex on the columns (see filter.d/btmp.conf) and find the
// time at the end of the line, since a user name can look like an address or a date.
func (rec UtmpRecord) Text() string {
	var sb strings.Builder
	sb.Grow(utmpUserWidth + utmpLineWidth + utmpHostWidth + 3 + len(utmpTimeLayout) +
		4*(len(rec.User)+len(rec.Line)+len(rec.Host)))
	writeUtmpColumn(&sb, rec.User, utmpUserWidth)
	writeUtmpColumn(&sb, rec.Line, utmpLineWidth)
	if rec.Addr.IsValid() {
		var ab [len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]byte
		writeUtmpPadded(&sb, rec.Addr.Unmap().WithZone("").AppendTo(ab[:0]), utmpHostWidth)
	} else {
		writeUtmpColumn(&sb, rec.Host, utmpHostWidth)
	}
	var tb [len(utmpTimeLayout) + 8]byte
	sb.Write(rec.Time.AppendFormat(tb[:0], utmpTimeLayout))
	return sb.String()
}

// writeUtmpColumn writes s escaped, padded to width, and one space.
func writeUtmpColumn(sb *strings.Builder, s string, width int) {
	if s == "" {
		writeUtmpPadded(sb, []byte("-"), width)
		return
	}
	if s == "-" {
		writeUtmpPadded(sb, []byte(`\x2d`), width)
		return
	}
	const hex = "0123456789abcdef"
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '\\' {
			sb.WriteByte(c)
			n++
			continue
		}
		sb.WriteString(`\x`)
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&0xf])
		n += 4
	}
	writeUtmpSpaces(sb, width-n)
}

// writeUtmpPadded writes s, which needs no escaping, padded to width, and one space.
func writeUtmpPadded(sb *strings.Builder, s []byte, width int) {
	sb.Write(s)
	writeUtmpSpaces(sb, width-len(s))
}

func writeUtmpSpaces(sb *strings.Builder, pad int) {
	for ; pad > 0; pad-- {
		sb.WriteByte(' ')
	}
	sb.WriteByte(' ')
}
