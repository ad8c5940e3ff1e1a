package ban

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logjail/logjail/internal/source"
)

// Session is the session of a logged-in administrator, whose address is
// never banned without Order.Force.
type Session struct {
	Addr netip.Addr
	What string // "utmp root pts/0", "tcp :22 established"
	// Key identifies the session from one read to the next ("" for none);
	// with MinAge it lets the manager tell an old session from a new one.
	Key string
	// MinAge, when positive, is how long the session must have been seen
	// before it counts: see AdminSources.TCPMinAge.
	MinAge time.Duration
}

// Defaults of AdminSources.
const (
	DefaultUtmpPath = "/var/run/utmp"
	DefaultSSHPort  = 22
	// DefaultTCPMinAge is sshd's default LoginGraceTime (2 minutes) plus a
	// margin.
	DefaultTCPMinAge = 2*time.Minute + 30*time.Second
)

// AdminSources says where AdminSessions looks for logged-in administrators.
type AdminSources struct {
	// Utmp is the utmp file: every USER_PROCESS record with a remote address
	// is a session (a console login has none; a user logged in is trusted
	// as much as an administrator, since they hold valid credentials). ""
	// skips it.
	Utmp string
	// TCP lists files in the format of /proc/net/tcp and /proc/net/tcp6:
	// every established connection to one of SSHPorts is a session, which
	// covers ssh sessions without a terminal (scp, sftp, ansible), absent
	// from utmp.
	TCP      []string
	SSHPorts []uint16
	// TCPMinAge is the MinAge of the TCP sessions. An established connection
	// to sshd is not yet a login: an attacker guessing passwords holds one
	// too, and without a minimum age the sshd jail could never ban an
	// attacker whose connection is still open. sshd drops a connection that
	// has not authenticated after LoginGraceTime (120 s by default), so one
	// older than that has logged in. 0 counts every connection at once.
	TCPMinAge time.Duration
}

// DefaultAdminSources returns utmp at DefaultUtmpPath and the TCP
// connections to port 22 in /proc/net/tcp and /proc/net/tcp6.
func DefaultAdminSources() AdminSources {
	return AdminSources{
		Utmp:      DefaultUtmpPath,
		TCP:       []string{"/proc/net/tcp", "/proc/net/tcp6"},
		SSHPorts:  []uint16{DefaultSSHPort},
		TCPMinAge: DefaultTCPMinAge,
	}
}

// AdminSessions reads the sessions of logged-in administrators from src. A
// file that does not exist has none (no IPv6, no utmp in a container). It
// returns what it could read, and the errors of the rest.
func AdminSessions(src AdminSources) ([]Session, error) {
	var out []Session
	var errs []error
	read := func(path string, fn func(io.Reader) ([]Session, error)) {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			errs = append(errs, err)
			return
		}
		defer f.Close()
		ss, err := fn(f)
		out = append(out, ss...)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", path, err))
		}
	}
	if src.Utmp != "" {
		read(src.Utmp, readUtmpSessions)
	}
	for _, p := range src.TCP {
		read(p, func(r io.Reader) ([]Session, error) { return readTCPSessions(r, src.SSHPorts, src.TCPMinAge) })
	}
	return out, errors.Join(errs...)
}

// readUtmpSessions returns the USER_PROCESS records of a utmp file that have
// a remote address: ut_addr_v6, or ut_host when it is an IP address (never a
// name, which would need DNS).
func readUtmpSessions(r io.Reader) ([]Session, error) {
	ur := source.NewUtmpReader(bufio.NewReader(r))
	var out []Session
	for {
		rec, err := ur.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if rec.Type != source.UtmpUserProcess {
			continue
		}
		a := rec.Addr
		if !a.IsValid() {
			h, err := netip.ParseAddr(rec.Host)
			if err != nil {
				continue // a console, X display, tmux or mosh session
			}
			a = h.Unmap().WithZone("")
		}
		if a.IsUnspecified() {
			continue
		}
		out = append(out, Session{Addr: a, What: "utmp " + rec.User + " " + rec.Line})
	}
}

// readTCPSessions returns the established connections (state 01) to a local
// port in ports from a file in the format of /proc/net/tcp or /proc/net/tcp6.
// Lines it cannot parse are skipped.
//
// The kernel prints each address as 32-bit words in the machine's byte order
// (%08X of the word), and the port in host order: 0100007F:0016 is
// 127.0.0.1:22 on a little-endian machine.
func readTCPSessions(r io.Reader, ports []uint16, minAge time.Duration) ([]Session, error) {
	sc := bufio.NewScanner(r)
	var out []Session
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		if len(f) < 10 || f[3] != "01" {
			continue
		}
		local, ok := parseProcAddr(f[1])
		if !ok || !slices.Contains(ports, local.Port()) {
			continue
		}
		remote, ok := parseProcAddr(f[2])
		if !ok || !remote.Addr().IsValid() || remote.Addr().IsUnspecified() {
			continue
		}
		out = append(out, Session{
			Addr:   remote.Addr(),
			What:   fmt.Sprintf("tcp :%d established", local.Port()),
			Key:    "tcp " + f[1] + " " + f[2] + " " + f[9],
			MinAge: minAge,
		})
	}
	return out, sc.Err()
}

// parseProcAddr parses "0100007F:0016" (IPv4) or 32 hex digits and a port
// (IPv6). An IPv4-mapped IPv6 address is returned as IPv4.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var a netip.Addr
	switch len(h) {
	case 8:
		var b [4]byte
		if !putWords(b[:], h) {
			return netip.AddrPort{}, false
		}
		a = netip.AddrFrom4(b)
	case 32:
		var b [16]byte
		if !putWords(b[:], h) {
			return netip.AddrPort{}, false
		}
		a = netip.AddrFrom16(b).Unmap()
	default:
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

// putWords fills b with the 32-bit words written in hex in h, each in the
// machine's byte order.
func putWords(b []byte, h string) bool {
	for i := 0; i < len(b); i += 4 {
		w, err := strconv.ParseUint(h[2*i:2*i+8], 16, 32)
		if err != nil {
			return false
		}
		binary.NativeEndian.PutUint32(b[i:], uint32(w))
	}
	return true
}
