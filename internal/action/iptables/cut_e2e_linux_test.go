//go:build linux

package iptables

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// BenchmarkE2ECut measures the real cut (netlinkCut) in the server namespace of a fresh topology,
// with one conntrack entry per target put in before each round: one walk for 1 target, one walk
// for 100, and 100 walks of one target (what a cut per ban costs, less the conntrack process it
// used to fork). sys-ms/op is the kernel time of the thread that cut; most of it is the walk over
// every bucket of the conntrack hash, which is the kernel's, not the namespace's.
//
//	sudo go test -run '^$' -bench E2ECut -benchtime 20x ./internal/action/iptables/
func BenchmarkE2ECut(b *testing.B) {
	requireE2E(b)
	tp := newTopo(b)
	targets := make([]netip.Prefix, 100)
	for i := range targets {
		targets[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 32)
	}
	for _, bc := range []struct {
		name       string
		n, perWalk int
	}{
		{"targets=1", 1, 1},
		{"targets=100/one-walk", 100, 100},
		{"targets=100/walk-each", 100, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			err := inNetns(tp.srv, func() error {
				h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
				if err != nil {
					return err
				}
				defer h.Close()
				var sys time.Duration
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					for i, p := range targets[:bc.n] {
						if err := h.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, udpFlow(p.Addr(), uint16(10000+i))); err != nil {
							return fmt.Errorf("create a conntrack entry: %w", err)
						}
					}
					before := threadSys()
					b.StartTimer()
					for i := 0; i < bc.n; i += bc.perWalk {
						n, err := netlinkCut(b.Context(), "ipv4", targets[i:i+bc.perWalk])
						if err != nil {
							return err
						}
						if n != uint(bc.perWalk) {
							return fmt.Errorf("cut %d entries, want %d", n, bc.perWalk)
						}
					}
					b.StopTimer()
					sys += threadSys() - before
				}
				b.ReportMetric(float64(sys.Microseconds())/1e3/float64(b.N), "sys-ms/op")
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// udpFlow is a conntrack entry of a UDP exchange from src to 10.9.255.1:53.
func udpFlow(src netip.Addr, sport uint16) *netlink.ConntrackFlow {
	dst := net.IPv4(10, 9, 255, 1).To4()
	return &netlink.ConntrackFlow{
		FamilyType: unix.AF_INET,
		Forward:    netlink.IPTuple{SrcIP: src.AsSlice(), DstIP: dst, SrcPort: sport, DstPort: 53, Protocol: unix.IPPROTO_UDP},
		Reverse:    netlink.IPTuple{SrcIP: dst, DstIP: src.AsSlice(), SrcPort: 53, DstPort: sport, Protocol: unix.IPPROTO_UDP},
		TimeOut:    300,
	}
}

// threadSys is the kernel time of the calling thread so far.
func threadSys() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Stime.Nano())
}
