package store

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// The crash test runs a ban storm in a child process (this test binary, in
// TestCrashChild), kills it with SIGKILL in the middle, reopens the database
// and checks the contract of the package doc: the database holds exactly
// the effect of a prefix of the queued writes, and that prefix contains
// every write whose commit was reported.

const (
	envCrashDB   = "LOGJAIL_STORE_CRASH_DB"
	envCrashSync = "LOGJAIL_STORE_CRASH_SYNC"
	crashPosPath = "/var/log/storm.log"
	maxInFlight  = 2000
)

// crashOp is write number j of the storm: mostly bans, every third one ends
// the ban before it, every hundredth saves a log position.
type crashOp struct {
	kind   byte // 'p' put, 'e' end, 's' save position
	target netip.Prefix
	offset int64
}

func crashTarget(j int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)}), 32)
}

func crashOpN(j int) crashOp {
	switch {
	case j%100 == 99:
		return crashOp{kind: 's', offset: int64(j)}
	case j%3 == 2:
		return crashOp{kind: 'e', target: crashTarget(j - 1)}
	default:
		return crashOp{kind: 'p', target: crashTarget(j)}
	}
}

func TestCrashChild(t *testing.T) {
	path := os.Getenv(envCrashDB)
	if path == "" {
		t.Skip("runs as the child of TestCrashSIGKILL")
	}
	sync := SyncNormal
	if os.Getenv(envCrashSync) == "full" {
		sync = SyncFull
	}
	s, err := Open(path, Options{Sync: sync})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var acked atomic.Int64
	lines := []string{"Failed password for root from 10.0.0.1 port 2222 ssh2", "Failed password for admin from 10.0.0.1 port 2223 ssh2"}
	for j := 0; ; j++ {
		for int64(j)-acked.Load() > maxInFlight {
			time.Sleep(50 * time.Microsecond)
		}
		done := func(err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "write", j, err)
				os.Exit(3)
			}
			fmt.Fprintf(os.Stdout, "%d\n", j) // reported committed
			acked.Add(1)
		}
		switch o := crashOpN(j); o.kind {
		case 'p':
			s.PutBanAsync(Ban{Jail: "sshd", Target: o.target, Start: t0, End: t0.Add(time.Hour), Failures: 5, Lines: lines}, done)
		case 'e':
			s.EndBanAsync("sshd", o.target, t0.Add(time.Minute), "unban", done)
		case 's':
			s.SavePositionAsync(crashPosPath, Position{Offset: o.offset, Saved: t0}, done)
		}
	}
}

func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, syncMode := range []string{"normal", "full"} {
		t.Run(syncMode, func(t *testing.T) {
			path := dbPath(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
			cmd.Env = append(os.Environ(), envCrashDB+"="+path, envCrashSync+"="+syncMode)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			const killAfter = 20000
			sc := bufio.NewScanner(out)
			maxAck, acks := -1, 0
			for sc.Scan() {
				j, err := strconv.Atoi(sc.Text())
				if err != nil {
					continue // the test framework's own output
				}
				if j != maxAck+1 {
					t.Errorf("ack %d after %d: callbacks out of order", j, maxAck)
				}
				maxAck = j
				if acks++; acks == killAfter {
					cmd.Process.Kill() // SIGKILL, mid-storm
				}
			}
			cmd.Wait()
			if acks < killAfter {
				t.Fatalf("child ended after %d acks, before the kill", acks)
			}

			s := openAt(t, path, Options{})
			var check string
			if err := s.rdb.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
				t.Fatalf("integrity_check = %q, %v", check, err)
			}
			active, err := s.ActiveBans()
			if err != nil {
				t.Fatal(err)
			}
			var hist, ended int
			s.rdb.QueryRow("SELECT count(*), count(ended_at) FROM ban").Scan(&hist, &ended)
			pos, _, err := s.Position(crashPosPath)
			if err != nil {
				t.Fatal(err)
			}
			got := make(map[netip.Prefix]bool)
			for _, b := range active {
				if got[b.Target] {
					t.Errorf("ban of %v doubled", b.Target)
				}
				got[b.Target] = true
			}

			// Replay the model until it matches the database: the number
			// of writes applied must be above every reported one.
			model := make(map[netip.Prefix]bool)
			puts, ends := 0, 0
			var offset int64
			matched := -1
			for n := 0; n <= maxAck+maxInFlight+2; n++ {
				if n > maxAck && puts == hist && ends == ended && offset == pos.Offset && len(model) == len(got) {
					same := true
					for p := range model {
						if !got[p] {
							same = false
							break
						}
					}
					if same {
						matched = n
						break
					}
				}
				switch o := crashOpN(n); o.kind {
				case 'p':
					model[o.target] = true
					puts++
				case 'e':
					if model[o.target] {
						delete(model, o.target)
						ends++
					}
				case 's':
					offset = o.offset
				}
			}
			if matched < 0 {
				t.Fatalf("the database (%d bans in force, %d in history, %d ended, position %d) is no prefix of the writes with all %d reported ones",
					len(got), hist, ended, pos.Offset, maxAck+1)
			}
			t.Logf("killed after %d reported writes; the database holds the first %d writes (%d committed but not yet reported); %d bans in force",
				maxAck+1, matched, matched-maxAck-1, len(got))
		})
	}
}
