package jail

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryPerAddress: a jail tracking a million addresses (a botnet, each address with 4
// failures of maxretry 5) holds under 200 bytes an address, lines included: the window's slots
// and the bounded recent lines. Run with -v for the figure.
func TestMemoryPerAddress(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("fills a million addresses (slow with -race)")
	}
	const n = 1_000_000
	spec := sshSpec(t)
	spec.MaxRetry, spec.MaxTracked = 5, n
	line := "Nov 22 13:59:00 srv1 sshd[2101]: Failed password for root from 10.1.2.3 port 51122 ssh2"
	// Lines as the follower hands them: one string each.
	lines := make([]string, 4)
	before := heapAlloc()
	eng, err := newSpecEngine(&spec, 0)
	mustDo(t, err)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		for k := range lines {
			lines[k] = fmt.Sprint(line, k) // a new string, as each line read is
			p := pending{addr: a, t: t0.Add(-time.Minute + time.Duration(k)*time.Second), line: lines[k]}
			if _, ok := eng.add(&p, t0); ok {
				t.Fatal("banned at 4 failures")
			}
		}
	}
	after := heapAlloc()
	runtime.KeepAlive(eng)
	per := float64(after-before) / n
	t.Logf("%.1f bytes/address at %d addresses tracked (recent lines for %d)", per, eng.win.Len(), eng.recent.len())
	if eng.win.Len() != n || eng.recent.len() != DefaultRecentAddrs {
		t.Errorf("tracked %d, recent %d", eng.win.Len(), eng.recent.len())
	}
	if per > 200 {
		t.Errorf("%.1f bytes/address, want at most 200", per)
	}
}
