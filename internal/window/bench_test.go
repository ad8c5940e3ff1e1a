package window

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkAdd measures Add in the jail's steady states:
//
//	go test -run '^$' -bench . -benchmem ./internal/window/
//
// known: failures of 100,000 tracked addresses, a minute apart per address so
// that none is banned. new-at-cap: a botnet of new addresses against a full
// window, each Add evicting the stalest. ban: every 5th failure of an address
// is a ban, which forgets it, so that the next one is new.
func BenchmarkAdd(b *testing.B) {
	const tracked = 100000
	for _, maxRetry := range []int{5, 600} {
		o := Options{MaxRetry: maxRetry, FindTime: time.Minute, MaxTracked: tracked}
		b.Run(fmt.Sprintf("maxretry=%d/known", maxRetry), func(b *testing.B) {
			w := mustNew(b, o)
			addrs := make([]netip.Addr, tracked)
			for i := range addrs {
				addrs[i] = ipv6(i)
				w.Add(addrs[i], t0)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				w.Add(addrs[i%tracked], t0.Add(time.Duration(i/tracked+1)*time.Minute))
				i++
			}
		})
		b.Run(fmt.Sprintf("maxretry=%d/new-at-cap", maxRetry), func(b *testing.B) {
			w := mustNew(b, o)
			for i := range tracked {
				w.Add(ipv6(i), t0)
			}
			i := tracked
			b.ReportAllocs()
			for b.Loop() {
				w.Add(ipv6(i), t0)
				i++
			}
			b.ReportMetric(float64(w.Evicted())/float64(b.N), "evictions/op")
		})
	}
	b.Run("maxretry=5/ban", func(b *testing.B) {
		w := mustNew(b, Options{MaxRetry: 5, FindTime: time.Minute, MaxTracked: tracked})
		a := netip.MustParseAddr("192.0.2.1")
		b.ReportAllocs()
		for b.Loop() {
			w.Add(a, t0)
		}
	})
}

// BenchmarkExpire measures a full Expire pass over a million tracked
// addresses of which none is due, the common case of a periodic call.
func BenchmarkExpire(b *testing.B) {
	const n = 1000000
	w := mustNew(b, Options{MaxRetry: 5, FindTime: time.Minute, MaxTracked: n})
	for i := range n {
		w.Add(ipv4(i), t0)
	}
	b.ReportAllocs()
	for b.Loop() {
		if w.Expire(t0) != 0 {
			b.Fatal("expired")
		}
	}
}
