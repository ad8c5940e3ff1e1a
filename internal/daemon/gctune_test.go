package daemon

import "testing"

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, gcMaxPercent},
		{1 << 20, gcMaxPercent}, // 1 MiB live: capped
		{8 << 20, 400},          // 32/8 = 400%
		{12 << 20, 250},         // 266% rounded down to a step
		{16 << 20, 200},         // 32/16
		{32 << 20, 100},         // GOGC's own growth from here on
		{1 << 30, 100},          // never less than the default
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}
