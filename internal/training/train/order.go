package train

import (
	"math"
	"math/rand/v2"
	"sort"
)

// EpochOrder is the sample order of one epoch: every index in 0..n-1 once,
// plus the hard indices (hard-example mining) a second time, shuffled
// together. It depends only on (seed, stage, epoch, n, hard), so a resumed
// session recomputes exactly the order it was cut in.
func EpochOrder(seed int64, stage, epoch, n int, hard []int) []int {
	order := make([]int, 0, n+len(hard))
	for i := 0; i < n; i++ {
		order = append(order, i)
	}
	order = append(order, hard...)
	r := rand.New(rand.NewPCG(uint64(seed), uint64(stage)<<32|uint64(epoch)))
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return order
}

// Hardest returns the round(frac*n) indices with the highest recorded
// loss, ties broken by index; samples never scored (NaN) are not eligible.
// losses holds one value per training sample from the previous epoch.
func Hardest(losses []float32, frac float64) []int {
	k := int(math.Round(frac * float64(len(losses))))
	if k <= 0 {
		return nil
	}
	idx := make([]int, 0, len(losses))
	for i, l := range losses {
		if !math.IsNaN(float64(l)) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return losses[idx[a]] > losses[idx[b]] })
	if k > len(idx) {
		k = len(idx)
	}
	out := append([]int(nil), idx[:k]...)
	sort.Ints(out)
	return out
}
