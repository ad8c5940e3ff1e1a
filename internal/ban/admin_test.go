package ban

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/logjail/logjail/internal/source"
)

// utmpRec is what a test record holds; encode lays it out as a glibc x86-64
// struct utmp (the layout of internal/source's reader).
type utmpRec struct {
	typ  int16
	pid  int32
	line string
	user string
	host string
	addr string // "" for none
}

func (r utmpRec) encode() []byte {
	const (
		offType, offPID, offLine, offID, offUser, offHost = 0, 4, 8, 40, 44, 76
		offSession, offTvSec, offAddr                     = 336, 340, 348
	)
	b := make([]byte, source.UtmpRecordSize)
	le := binary.LittleEndian
	le.PutUint16(b[offType:], uint16(r.typ))
	le.PutUint32(b[offPID:], uint32(r.pid))
	copy(b[offLine:offLine+32], r.line)
	copy(b[offID:offID+4], "ts/0")
	copy(b[offUser:offUser+32], r.user)
	copy(b[offHost:offHost+256], r.host)
	le.PutUint32(b[offSession:], uint32(r.pid))
	le.PutUint32(b[offTvSec:], uint32(t0.Unix()))
	if r.addr != "" {
		a := netip.MustParseAddr(r.addr)
		if a.Is4() {
			a4 := a.As4()
			copy(b[offAddr:], a4[:])
		} else {
			a16 := a.As16()
			copy(b[offAddr:], a16[:])
		}
	}
	return b
}

func utmpFile(recs ...utmpRec) []byte {
	var out []byte
	for _, r := range recs {
		out = append(out, r.encode()...)
	}
	return out
}

// The records of a utmp file that are sessions: USER_PROCESS with a remote
// address, from ut_addr_v6 or an IP address in ut_host.
func TestUtmpSessions(t *testing.T) {
	data := utmpFile(
		utmpRec{typ: source.UtmpBootTime, line: "~", user: "reboot", host: "6.12.0"},
		utmpRec{typ: source.UtmpLoginProcess, pid: 500, line: "tty1", user: "LOGIN"},
		utmpRec{typ: source.UtmpUserProcess, pid: 501, line: "tty2", user: "root"}, // console
		utmpRec{typ: source.UtmpUserProcess, pid: 600, line: "pts/0", user: "root", host: "203.0.113.9", addr: "203.0.113.9"},
		utmpRec{typ: source.UtmpUserProcess, pid: 601, line: "pts/1", user: "alice", host: "2001:db8::5", addr: "2001:db8::5"},
		utmpRec{typ: source.UtmpUserProcess, pid: 602, line: "pts/2", user: "bob", host: "::ffff:198.51.100.4", addr: "::ffff:198.51.100.4"},
		utmpRec{typ: source.UtmpUserProcess, pid: 603, line: "pts/3", user: "carol", host: "192.0.2.44"}, // no ut_addr_v6
		utmpRec{typ: source.UtmpUserProcess, pid: 604, line: "pts/4", user: "dave", host: "gw.example.org", addr: "192.0.2.45"},
		utmpRec{typ: source.UtmpUserProcess, pid: 605, line: "pts/5", user: "erin", host: "tmux(1234).%0"},
		utmpRec{typ: source.UtmpUserProcess, pid: 606, line: "pts/6", user: "frank", host: ":0"},
		utmpRec{typ: source.UtmpDeadProcess, pid: 607, line: "pts/7", user: "", host: "203.0.113.10", addr: "203.0.113.10"},
		utmpRec{typ: source.UtmpLoginProcess, pid: 608, line: "ssh:notty", user: "admin", host: "203.0.113.11", addr: "203.0.113.11"},
	)
	got, err := readUtmpSessions(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Session{
		{Addr: addr("203.0.113.9"), What: "utmp root pts/0"},
		{Addr: addr("2001:db8::5"), What: "utmp alice pts/1"},
		{Addr: addr("198.51.100.4"), What: "utmp bob pts/2"},
		{Addr: addr("192.0.2.44"), What: "utmp carol pts/3"},
		{Addr: addr("192.0.2.45"), What: "utmp dave pts/4"},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
	// A torn file: what came before the cut is read.
	got, err = readUtmpSessions(bytes.NewReader(data[:len(data)-100]))
	if err != nil || len(got) != len(want) {
		t.Errorf("torn file: %d sessions, err %v; want %d", len(got), err, len(want))
	}
}

func isLittleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

// The established connections to sshd in /proc/net/tcp and tcp6 (the
// fixtures are from a little-endian machine, as the kernel prints them there).
func TestTCPSessions(t *testing.T) {
	if !isLittleEndian() {
		t.Skip("fixtures are in little-endian word order")
	}
	const age = 2 * time.Minute
	tests := []struct {
		file  string
		ports []uint16
		want  []string // addr, what, key
	}{
		{"proc_net_tcp", []uint16{22}, []string{
			"203.0.113.9|tcp :22 established|tcp 0A0200C0:0016 097100CB:C93A 4001",
			"203.0.113.9|tcp :22 established|tcp 0A0200C0:0016 097100CB:C990 4004",
		}},
		{"proc_net_tcp", []uint16{22, 2222}, []string{
			"203.0.113.9|tcp :22 established|tcp 0A0200C0:0016 097100CB:C93A 4001",
			"203.0.113.77|tcp :2222 established|tcp 0A0200C0:08AE 4D7100CB:CB20 4003",
			"203.0.113.9|tcp :22 established|tcp 0A0200C0:0016 097100CB:C990 4004",
		}},
		{"proc_net_tcp", []uint16{443}, nil},
		{"proc_net_tcp6", []uint16{22}, []string{
			"198.51.100.4|tcp :22 established|tcp 0000000000000000FFFF00000A0200C0:0016 0000000000000000FFFF0000046433C6:C3CB 5001",
			"2001:db8:1::5|tcp :22 established|tcp B80D0120000000000000000010000000:0016 B80D0120000001000000000005000000:C3CC 5002",
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.file, tt.ports), func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ss, err := readTCPSessions(f, tt.ports, age)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range ss {
				if s.MinAge != age {
					t.Errorf("MinAge = %v, want %v", s.MinAge, age)
				}
				got = append(got, s.Addr.String()+"|"+s.What+"|"+s.Key)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sessions, ports %v (-want +got):\n%s", tt.ports, diff)
			}
		})
	}
}

func TestParseProcAddr(t *testing.T) {
	if !isLittleEndian() {
		t.Skip("fixtures are in little-endian word order")
	}
	tests := []struct {
		in, want string // want "": not parsed
	}{
		{"0100007F:0016", "127.0.0.1:22"},
		{"0A0200C0:08AE", "192.0.2.10:2222"},
		{"00000000000000000000000001000000:0050", "[::1]:80"},
		{"0000000000000000FFFF00000A0200C0:0016", "192.0.2.10:22"},
		{"0100007F", ""},
		{"0100007F:", ""},
		{"0100007F:10000", ""},
		{"0100007G:0016", ""},
		{"100007F:0016", ""},
		{"-100007F:0016", ""},
		{"0000000000000000FFFF00000A0200C:0016", ""},
		{"", ""},
	}
	for _, tt := range tests {
		ap, ok := parseProcAddr(tt.in)
		got := ""
		if ok {
			got = ap.String()
		}
		if got != tt.want {
			t.Errorf("parseProcAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// AdminSessions reads every source, skips the ones that do not exist, and
// reports the ones it cannot read.
func TestAdminSessions(t *testing.T) {
	if !isLittleEndian() {
		t.Skip("fixtures are in little-endian word order")
	}
	dir := t.TempDir()
	utmp := filepath.Join(dir, "utmp")
	rec := utmpRec{typ: source.UtmpUserProcess, pid: 600, line: "pts/0", user: "root", host: "203.0.113.9", addr: "203.0.113.9"}
	if err := os.WriteFile(utmp, utmpFile(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	src := AdminSources{
		Utmp:      utmp,
		TCP:       []string{"testdata/proc_net_tcp", "testdata/proc_net_tcp6", filepath.Join(dir, "no-such-file")},
		SSHPorts:  []uint16{22},
		TCPMinAge: time.Minute,
	}
	ss, err := AdminSessions(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range ss {
		got = append(got, s.Addr.String()+" "+s.What)
	}
	want := []string{
		"203.0.113.9 utmp root pts/0",
		"203.0.113.9 tcp :22 established",
		"203.0.113.9 tcp :22 established",
		"198.51.100.4 tcp :22 established",
		"2001:db8:1::5 tcp :22 established",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}

	src.Utmp = dir // a directory: unreadable as a file
	ss, err = AdminSessions(src)
	if err == nil || !strings.Contains(err.Error(), dir) || len(ss) != 4 {
		t.Errorf("AdminSessions with a bad utmp = %d sessions, %v; want the 4 TCP ones and an error", len(ss), err)
	}
	if d := DefaultAdminSources(); d.Utmp != DefaultUtmpPath || len(d.TCP) != 2 || d.TCPMinAge < 2*time.Minute {
		t.Errorf("DefaultAdminSources() = %+v", d)
	}
}
