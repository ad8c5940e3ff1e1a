package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/logjail/logjail/internal/loggen"
)

// Lines carry the time they are generated at, so that both daemons count them in the window
// (they time failures by the line's own timestamp, and skip those older than findtime).

const syslogStamp = "Jan _2 15:04:05"            // 15 bytes
const accessStamp = "02/Jan/2006:15:04:05 -0700" // 26 bytes

// benchAddr is the i-th address of a run: 10.1.0.1 on, never .0 nor .255 in the last byte,
// distinct for i below maxAddrs.
func benchAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(1 + i/64000), byte((i / 250) % 256), byte(1 + i%250)})
}

// maxAddrs is how many distinct addresses benchAddr makes (10.1.0.1 to 10.200.255.250).
const maxAddrs = 200 * 64000

// Addresses outside benchAddr's range: the warm-up ban, and the sentinel that tells a
// fail2ban run that it read everything before it.
var (
	warmAddr     = netip.AddrFrom4([4]byte{10, 255, 0, 1})
	sentinelAddr = netip.AddrFrom4([4]byte{10, 255, 255, 254})
)

// sshdFailure is one failed password line, matched by logjail's and fail2ban's sshd filters.
func sshdFailure(buf []byte, now time.Time, a netip.Addr, seq int) []byte {
	buf = now.AppendFormat(buf, syslogStamp)
	return fmt.Appendf(buf, " bench sshd[%d]: Failed password for root from %s port %d ssh2\n", 3000+seq%30000, a, 1024+seq%60000)
}

// sshdNoise is one line of an auth.log that is no failure for either filter.
func sshdNoise(buf []byte, now time.Time, seq int) []byte {
	buf = now.AppendFormat(buf, syslogStamp)
	pid := 3000 + seq%30000
	switch seq % 5 {
	case 0:
		return fmt.Appendf(buf, " bench CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n", pid)
	case 1:
		return fmt.Appendf(buf, " bench systemd[1]: Started session-%d.scope - Session %d of User deploy.\n", pid, pid)
	case 2:
		return fmt.Appendf(buf, " bench sshd[%d]: Accepted publickey for deploy from 192.168.%d.%d port %d ssh2: ED25519 SHA256:kq3bSyZ0cWr0p3xJyKc9P1hX5o\n",
			pid, seq/250%256, 1+seq%250, 1024+seq%60000)
	case 3:
		return fmt.Appendf(buf, " bench sshd[%d]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)\n", pid)
	default:
		return fmt.Appendf(buf, " bench sshd[%d]: pam_unix(sshd:session): session closed for user deploy\n", pid)
	}
}

// accessFailure is a POST to xmlrpc.php: a failure for the wordpress filter.
func accessFailure(buf []byte, now time.Time, a netip.Addr) []byte {
	buf = fmt.Appendf(buf, "%s - - [", a)
	buf = now.AppendFormat(buf, accessStamp)
	return append(buf, "] \"POST /xmlrpc.php HTTP/1.1\" 200 412 \"-\" \"-\"\n"...)
}

// genLog is a generated log (internal/loggen) held in memory, with the timestamp of every line
// at a known place so that it can be rewritten to the present before each run.
type genLog struct {
	kind  string // sshd or access
	data  []byte
	lines int
	stamp []int32 // offset of each line's timestamp in data
}

func generate(kind string, n int, seed uint64) (*genLog, error) {
	var buf bytes.Buffer
	var err error
	switch kind {
	case "sshd":
		buf.Grow(n * 110)
		err = loggen.SSHD(&buf, n, seed)
	case "access":
		buf.Grow(n * 200)
		err = loggen.Access(&buf, n, seed)
	default:
		err = fmt.Errorf("unknown log kind %q", kind)
	}
	if err != nil {
		return nil, err
	}
	g := &genLog{kind: kind, data: buf.Bytes()}
	if len(g.data) > 1<<31-1 {
		return nil, fmt.Errorf("%s log of %d lines is over 2 GiB", kind, n)
	}
	g.stamp = make([]int32, 0, n)
	for off := 0; off < len(g.data); {
		end := bytes.IndexByte(g.data[off:], '\n')
		if end < 0 {
			return nil, fmt.Errorf("%s log: last line has no newline", kind)
		}
		line := g.data[off : off+end]
		at, err := stampOffset(kind, line)
		if err != nil {
			return nil, fmt.Errorf("%s log line %d: %w", kind, len(g.stamp)+1, err)
		}
		g.stamp = append(g.stamp, int32(off+at))
		off += end + 1
	}
	g.lines = len(g.stamp)
	return g, nil
}

// stampOffset finds the timestamp in a loggen line.
func stampOffset(kind string, line []byte) (int, error) {
	switch kind {
	case "sshd":
		if len(line) > len(syslogStamp) && line[len(syslogStamp)] == ' ' {
			if _, err := time.Parse(syslogStamp, string(line[:len(syslogStamp)])); err == nil {
				return 0, nil
			}
		}
	case "access":
		if i := bytes.Index(line, []byte(" - - [")); i >= 0 && len(line) > i+6+len(accessStamp) && line[i+6+len(accessStamp)] == ']' {
			if _, err := time.Parse(accessStamp, string(line[i+6:i+6+len(accessStamp)])); err == nil {
				return i + 6, nil
			}
		}
	}
	return 0, fmt.Errorf("no %s timestamp where expected: %q", kind, line)
}

// restamp writes now as the timestamp of lines [from, to).
func (g *genLog) restamp(now time.Time, from, to int) {
	var st []byte
	if g.kind == "sshd" {
		st = now.AppendFormat(nil, syslogStamp)
	} else {
		st = now.AppendFormat(nil, accessStamp)
	}
	for _, off := range g.stamp[from:to] {
		copy(g.data[off:], st)
	}
}

// lineOffset is where line i starts (len(data) for i == lines).
func (g *genLog) lineOffset(i int) int {
	if i >= g.lines {
		return len(g.data)
	}
	o := int(g.stamp[i])
	if g.kind == "access" { // the timestamp is after the address: back to the line's start
		for o > 0 && g.data[o-1] != '\n' {
			o--
		}
	}
	return o
}

// sentinel returns n failure lines of sentinelAddr in the log's format, stamped now: at the
// end of a log, their ban tells that everything before them was read.
func sentinel(kind string, n int, now time.Time) []byte {
	var b []byte
	for i := range n {
		if kind == "sshd" {
			b = sshdFailure(b, now, sentinelAddr, i)
		} else {
			b = accessFailure(b, now, sentinelAddr)
		}
	}
	return b
}

// appendFile creates a new log and opens it for appending, as a logger would. It must not
// exist: a daemon would count what is already in it.
func appendFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
}

// writeChunks appends data in writes of about chunk bytes, each ending at a line end.
func writeChunks(f *os.File, data []byte, chunk int) error {
	for len(data) > 0 {
		n := len(data)
		if n > chunk {
			n = bytes.LastIndexByte(data[:chunk], '\n') + 1
			if n == 0 {
				n = bytes.IndexByte(data, '\n') + 1
				if n == 0 {
					n = len(data)
				}
			}
		}
		if _, err := f.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}
