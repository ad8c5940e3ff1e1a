package ban

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/action"
	"github.com/logjail/logjail/internal/store"
)

// nopBackend is a backend whose calls cost nothing: what is measured is the
// manager, and the store behind it.
type nopBackend struct{}

func (nopBackend) Name() string                               { return "nop" }
func (nopBackend) Start(context.Context) error                { return nil }
func (nopBackend) Stop(context.Context) error                 { return nil }
func (nopBackend) Ban(context.Context, action.Target) error   { return nil }
func (nopBackend) Unban(context.Context, action.Target) error { return nil }
func (nopBackend) BanBatch(_ context.Context, ts []action.Target) []error {
	return make([]error, len(ts))
}

// BenchmarkBanThroughput measures automatic bans per second through the
// manager until every one is applied (its backend call done), without a store
// and with the SQLite store (bantime.increment's count and the write before
// the kernel call: see Store). Compare the two bans/s figures of one run:
//
//	go test -run XXX -bench BanThroughput -benchtime 20000x ./internal/ban/
func BenchmarkBanThroughput(b *testing.B) {
	for _, withStore := range []bool{false, true} {
		name := "store=off"
		if withStore {
			name = "store=sqlite"
		}
		b.Run(name, func(b *testing.B) {
			o := Options{
				Logger:    slog.New(slog.DiscardHandler),
				Self:      func() ([]netip.Addr, error) { return nil, nil },
				Admins:    func() ([]Session, error) { return nil, nil },
				AdminPoll: -1,
			}
			if withStore {
				st, err := store.Open(filepath.Join(b.TempDir(), "logjail.db"), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				o.Store = st
			}
			m := New(o)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			defer func() { cancel(); <-done }()
			spec := JailSpec{Name: "bench", BanTime: time.Hour}
			spec.Increment.Enabled = true
			if err := m.SetJail(ctx, spec, nopBackend{}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				if _, err := m.Ban(Order{Jail: "bench", Target: netip.PrefixFrom(a, 32), Failures: 5,
					Lines: []string{fmt.Sprintf("failure from %v", a)}}); err != nil {
					b.Fatal(err)
				}
			}
			for {
				s := m.Stats("bench")
				if s.Pending == 0 && s.Banned == b.N && allApplied(m) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bans/s")
		})
	}
}

func allApplied(m *Manager) bool {
	for _, bn := range m.Bans("bench") {
		if !bn.Applied {
			return false
		}
	}
	return true
}
