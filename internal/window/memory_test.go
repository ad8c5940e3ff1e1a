package window

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// heapAlloc returns the bytes of live heap objects after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// bytesPerAddress fills what build returns with n addresses, each with
// failures failures, and returns the heap it holds per address.
func bytesPerAddress(n, failures int, build func() func(netip.Addr, time.Time)) float64 {
	before := heapAlloc()
	add := build()
	for i := range n {
		a := ipv4(i)
		for j := range failures {
			add(a, t0.Add(time.Duration(j)*time.Second))
		}
	}
	after := heapAlloc()
	runtime.KeepAlive(add)
	return float64(after-before) / float64(n)
}

// TestMemoryPerAddress measures the heap a Window holds per address with a
// million addresses tracked. The daemon's budget is 200 bytes. Run it with
// -v to see the figures:
//
//	go test -run MemoryPerAddress -v ./internal/window/
func TestMemoryPerAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a million addresses")
	}
	const n = 1000000
	tests := []struct {
		name     string
		opts     Options
		failures int
		limit    float64 // 0: only reported
	}{
		{"maxretry 5, cap 1e6", Options{MaxRetry: 5, FindTime: 10 * time.Minute, MaxTracked: n}, 4, 200},
		{"maxretry 5, cap 1e7", Options{MaxRetry: 5, FindTime: 10 * time.Minute, MaxTracked: 10 * n}, 4, 200},
		{"maxretry 16, cap 1e6", Options{MaxRetry: 16, FindTime: 10 * time.Minute, MaxTracked: n}, 1, 200},
		{"maxretry 600, cap 1e6", Options{MaxRetry: 600, FindTime: time.Minute, MaxTracked: n}, 4, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bytesPerAddress(n, tt.failures, func() func(netip.Addr, time.Time) {
				w := mustNew(t, tt.opts)
				return func(a netip.Addr, at time.Time) { w.Add(a, at) }
			})
			t.Logf("%s: %.1f bytes/address at %d addresses", tt.name, got, n)
			if tt.limit > 0 && got > tt.limit {
				t.Errorf("%.1f bytes/address, want at most %.0f", got, tt.limit)
			}
		})
	}
	// For comparison, the obvious design: a map from address to a slice of
	// times.
	got := bytesPerAddress(n, 4, func() func(netip.Addr, time.Time) {
		m := map[netip.Addr][]time.Time{}
		return func(a netip.Addr, at time.Time) { m[a] = append(m[a], at) }
	})
	t.Logf("map[netip.Addr][]time.Time, 4 failures: %.1f bytes/address at %d addresses", got, n)
}
