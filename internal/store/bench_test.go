package store

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Figures for the closing note:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/store    (the 100k/1M ones)
//	go test -run '^$' -bench PutBan ./internal/store
//
// The database lives under the test's temporary directory, on disk.

var benchLines = []string{
	"Mar  1 12:00:01 host sshd[4242]: Failed password for root from 203.0.113.77 port 52144 ssh2",
	"Mar  1 12:00:03 host sshd[4242]: Failed password for root from 203.0.113.77 port 52144 ssh2",
	"Mar  1 12:00:05 host sshd[4242]: Failed password for root from 203.0.113.77 port 52144 ssh2",
	"Mar  1 12:00:07 host sshd[4243]: Invalid user admin from 203.0.113.77 port 52190",
	"Mar  1 12:00:09 host sshd[4243]: Failed password for invalid user admin from 203.0.113.77 port 52190 ssh2",
}

func benchTarget(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i>>24&0x7f), byte(i >> 16), byte(i >> 8), byte(i)}), 32)
}

func benchBan(i int, lines []string) Ban {
	return Ban{Jail: "sshd", Target: benchTarget(i), Start: t0.Add(time.Duration(i) * time.Millisecond),
		End: t0.Add(time.Hour), Failures: 5, Lines: lines, Count: 1}
}

func benchOpen(b *testing.B, mode Sync) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "logjail.db"), Options{Sync: mode})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkPutBan: bans/s through the store, and the time from queueing a
// ban to its commit being reported (what a store-first ban waits for
// before its rule goes to the kernel).
func BenchmarkPutBan(b *testing.B) {
	for _, mode := range []struct {
		name string
		s    Sync
	}{{"normal", SyncNormal}, {"full", SyncFull}} {
		// A storm: the ban manager queues every ban at once and applies
		// the rules as commits are reported.
		b.Run("storm/"+mode.name, func(b *testing.B) {
			s := benchOpen(b, mode.s)
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			wg.Add(b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				queued := time.Now()
				s.PutBanAsync(benchBan(i, benchLines), func(err error) {
					if err != nil {
						b.Error(err)
					}
					lat[i] = time.Since(queued)
					wg.Done()
				})
			}
			wg.Wait()
			b.StopTimer()
			reportLatency(b, lat)
			st := s.Stats()
			b.ReportMetric(float64(st.Ops)/float64(max(st.Batches, 1)), "bans/commit")
		})
		// A steady rate: one ban every 500µs (2,000/s), each waited for.
		b.Run("steady2000/"+mode.name, func(b *testing.B) {
			s := benchOpen(b, mode.s)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				time.Sleep(time.Until(start.Add(time.Duration(i) * 500 * time.Microsecond)))
				queued := time.Now()
				if err := s.PutBan(benchBan(i, benchLines)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(queued))
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
		// Unbatched for comparison: one caller, one ban per commit.
		b.Run("one-by-one/"+mode.name, func(b *testing.B) {
			s := benchOpen(b, mode.s)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.PutBan(benchBan(i, benchLines)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bans/s")
		})
		// Many callers waiting for their own ban: group commit.
		b.Run("parallel64/"+mode.name, func(b *testing.B) {
			s := benchOpen(b, mode.s)
			var n atomic.Int64
			b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.PutBan(benchBan(int(n.Add(1)), benchLines)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bans/s")
			st := s.Stats()
			b.ReportMetric(float64(st.Ops)/float64(max(st.Batches, 1)), "bans/commit")
		})
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "bans/s")
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

// fill queues n bans (with lines, or not) and waits for them.
func fill(b *testing.B, s *Store, n int, lines []string) {
	b.Helper()
	for i := range n {
		s.PutBanAsync(benchBan(i, lines), nil)
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
}

func fileSize(b *testing.B, s *Store) int64 {
	b.Helper()
	if err := s.checkpoint(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// BenchmarkDBSize: bytes per ban in a database of 100,000 bans, after a
// checkpoint: in force with 5 lines each (what a ban of sshd carries), in
// force without lines, and ended (history: lines dropped).
func BenchmarkDBSize(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		s := benchOpen(b, SyncNormal)
		fill(b, s, n, benchLines)
		b.ReportMetric(float64(fileSize(b, s))/n, "B/ban-active-5lines")
		for i := range n {
			s.EndBanAsync("sshd", benchTarget(i), t0.Add(2*time.Hour), "expired", nil)
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		if _, err := s.wdb.Exec("VACUUM"); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fileSize(b, s))/n, "B/ban-history")

		s2 := benchOpen(b, SyncNormal)
		fill(b, s2, n, nil)
		b.ReportMetric(float64(fileSize(b, s2))/n, "B/ban-active-nolines")
	}
}

// BenchmarkActiveBans100k: loading 100,000 bans in force, as the daemon
// does at start.
func BenchmarkActiveBans100k(b *testing.B) {
	s := benchOpen(b, SyncNormal)
	fill(b, s, 100_000, benchLines)
	b.ResetTimer()
	for b.Loop() {
		bans, err := s.ActiveBans()
		if err != nil || len(bans) != 100_000 {
			b.Fatalf("ActiveBans = %d, %v", len(bans), err)
		}
	}
}

// history1M builds (once per process) a database of 1,000,000 bans over 30
// days: 200,000 addresses in 20,000 /24s, three jails, all ended but the
// 100,000 newest; it returns its path, closed.
var history1M = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "logjail-store-bench-")
	if err != nil {
		return "", err
	}
	benchDir.Store(&dir)
	path := filepath.Join(dir, "logjail.db")
	s, err := Open(path, Options{})
	if err != nil {
		return "", err
	}
	defer s.Close()
	const n, active = 1_000_000, 100_000
	rng := rand.New(rand.NewPCG(1, 2))
	tx, err := s.wdb.Begin()
	if err != nil {
		return "", err
	}
	ins, err := tx.Prepare(`INSERT INTO ban (jail, addr, bits, start_at, end_at, ended_at, reason, failures, manual, count, lines)
		VALUES (?, ?, 32, ?, ?, ?, ?, 5, 0, 1, ?)`)
	if err != nil {
		return "", err
	}
	jails := []string{"sshd", "nginx-http-auth", "postfix"}
	start := t0.Add(-30 * day)
	lines := encodeLines(benchLines)
	used := make(map[[5]byte]bool) // (jail, addr) in force: unique
	for i := range n {
		net := rng.IntN(20_000)
		host := rng.IntN(10)
		addr := []byte{byte(100 + net>>8), byte(net), 7, byte(host)}
		at := start.Add(time.Duration(int64(30*day) / n * int64(i)))
		jail := rng.IntN(len(jails))
		var ended, reason, l any
		key := [5]byte{byte(jail), addr[0], addr[1], addr[2], addr[3]}
		if i < n-active || used[key] {
			ended, reason = toMS(at.Add(time.Hour)), "expired"
		} else {
			used[key] = true
			l = lines
		}
		if _, err := ins.Exec(jails[jail], addr, toMS(at), toMS(at.Add(time.Hour)), ended, reason, l); err != nil {
			return "", err
		}
	}
	if err := tx.Commit(); err != nil {
		return "", err
	}
	return path, nil
})

var benchDir atomic.Pointer[string]

func TestMain(m *testing.M) {
	code := m.Run()
	if d := benchDir.Load(); d != nil {
		os.RemoveAll(*d)
	}
	os.Exit(code)
}

func open1M(b *testing.B) *Store {
	b.Helper()
	path, err := history1M()
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkReport1M: the report over 1,000,000 bans of history.
func BenchmarkReport1M(b *testing.B) {
	s := open1M(b)
	for _, tt := range []struct {
		name  string
		since time.Duration
	}{{"7d", 7 * day}, {"30d", 31 * day}} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				r, err := s.Report(ReportQuery{Since: t0.Add(-tt.since), Now: t0, Top: 10})
				if err != nil || r.Bans == 0 {
					b.Fatalf("Report: %v", err)
				}
			}
		})
	}
}

// BenchmarkOpen1M: Open (quick_check, or integrity_check) of the 1M-ban
// database, then loading its 100,000 bans in force: the store's share of
// the daemon's start-up.
func BenchmarkOpen1M(b *testing.B) {
	path, err := history1M()
	if err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	for _, full := range []bool{false, true} {
		b.Run(fmt.Sprintf("fullcheck=%v", full), func(b *testing.B) {
			for b.Loop() {
				s, err := Open(path, Options{FullCheck: full})
				if err != nil {
					b.Fatal(err)
				}
				bans, err := s.ActiveBans()
				if err != nil || len(bans) == 0 {
					b.Fatalf("ActiveBans = %d, %v", len(bans), err)
				}
				s.Close()
			}
			b.ReportMetric(float64(fi.Size())/1e6, "MB")
		})
	}
}

// BenchmarkBanCount1M: a repeat-offender lookup in 1,000,000 bans.
func BenchmarkBanCount1M(b *testing.B) {
	s := open1M(b)
	addr := netip.AddrFrom4([4]byte{100, 5, 7, 3})
	for b.Loop() {
		if _, err := s.BanCount("sshd", addr, t0.Add(-7*day), true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPurge1M: purging the 1,000,000-ban history: in bulk (every
// ban that ended more than 7 days ago, about 770,000), and as the daemon
// would every hour with dbpurgeage 30d (one hour's worth, about 1,400).
func BenchmarkPurge1M(b *testing.B) {
	path, err := history1M()
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		before time.Time
	}{{"bulk7d", t0.Add(-7 * day)}, {"hourly", t0.Add(-30*day + 2*time.Hour)}} {
		b.Run(tt.name, func(b *testing.B) {
			var rows, chunks int64
			for b.Loop() {
				b.StopTimer()
				cp := filepath.Join(b.TempDir(), "copy.db")
				if err := os.WriteFile(cp, data, 0o600); err != nil {
					b.Fatal(err)
				}
				s, err := Open(cp, Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				n, err := s.Purge(tt.before)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rows, chunks = int64(n), s.Stats().Batches
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(rows), "rows")
			b.ReportMetric(float64(chunks), "chunks")
		})
	}
}

// BenchmarkStartup100k: what the daemon's start costs in the store with
// 100,000 bans in force (and no other history): Open with its quick_check,
// then ActiveBans.
func BenchmarkStartup100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "logjail.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, s, 100_000, benchLines)
	s.Close()
	for b.Loop() {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if bans, err := s.ActiveBans(); err != nil || len(bans) != 100_000 {
			b.Fatalf("ActiveBans = %d, %v", len(bans), err)
		}
		s.Close()
	}
}
