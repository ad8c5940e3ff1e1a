package daemon

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Go runtime collects when the heap has grown by GOGC percent (default 100) over what was
// live after the last collection. A daemon that keeps a few MiB live but reads a flood at a
// million lines a second then collects dozens of times a second, and each collection stops
// the matchers (write barriers, stack scans): about 15% of the ingest CPU here. gcTune lets the
// heap grow by gcSlack over the live heap instead, while that is more than GOGC's own growth:
// a small daemon collects far less often for a few MiB more RSS under load, and a large one
// (a million tracked addresses) keeps GOGC's proportion, never twice its memory. An idle
// daemon allocates almost nothing, so its heap does not grow either way.
const (
	gcSlack      = 32 << 20
	gcMaxPercent = 400
	gcTuneEvery  = 2 * time.Second
)

// gcTune adjusts GOGC to the live heap every gcTuneEvery until ctx ends. It leaves GOGC alone
// when the environment sets GOGC (the admin's choice wins).
func gcTune(ctx context.Context, envGOGC bool) {
	if envGOGC {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := 100
	t := time.NewTicker(gcTuneEvery)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := gcPercentFor(sample[0].Value.Uint64()); p != cur {
				debug.SetGCPercent(p)
				cur = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gcPercentFor is the GOGC that lets a heap of live bytes grow by gcSlack before the next
// collection, between 100 and gcMaxPercent, in steps of 50 (so that small changes of the live
// heap do not change it back and forth).
func gcPercentFor(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	p := int(uint64(gcSlack) * 100 / live)
	p = p / 50 * 50
	return max(100, min(gcMaxPercent, p))
}
