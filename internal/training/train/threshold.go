package train

import (
	"math"

	"imet/internal/postprocess/fbeta"
)

// thresholdBins is the resolution of the global threshold search: 0.01.
const thresholdBins = 100

// BestGlobalThreshold returns the single threshold t in {0.01, ..., 0.99}
// that maximises the samples-averaged F-beta of (p >= t) against truth,
// and that F-beta. probs is rows x cols, row-major; truth holds each row's
// positive columns. It histograms each row once, so the cost is
// O(rows x (cols + bins)) rather than one scoring pass per threshold.
func BestGlobalThreshold(probs []float32, cols int, truth [][]int, o fbeta.Options) (threshold, score float64) {
	rows := len(truth)
	sum := make([]float64, thresholdBins)
	counted := make([]int, thresholdBins)
	var all, pos [thresholdBins + 1]int
	isPos := make([]bool, cols)
	for i := 0; i < rows; i++ {
		row := probs[i*cols : (i+1)*cols]
		for _, j := range truth[i] {
			isPos[j] = true
		}
		clear(all[:])
		clear(pos[:])
		for j, p := range row {
			b := bin(p)
			all[b]++
			if isPos[j] {
				pos[b]++
			}
		}
		// Suffix sums: predictions with p >= k/100 are those in bins >= k.
		nPred, tp := 0, 0
		for k := thresholdBins; k >= 1; k-- {
			nPred += all[k]
			tp += pos[k]
			if k < thresholdBins {
				f, ok := o.Row(tp, nPred, len(truth[i]))
				if ok {
					sum[k] += f
					counted[k]++
				}
			}
		}
		for _, j := range truth[i] {
			isPos[j] = false
		}
	}
	score = -1
	for k := 1; k < thresholdBins; k++ {
		f := 0.0
		if counted[k] > 0 {
			f = sum[k] / float64(counted[k])
		}
		if f > score {
			threshold, score = float64(k)/thresholdBins, f
		}
	}
	return threshold, score
}

// bin maps p to the largest k with k/100 <= p (0..100), exactly as the
// comparison p >= k/100 in float64 would.
func bin(p float32) int {
	x := float64(p)
	if !(x > 0) {
		return 0
	}
	k := int(math.Floor(x * thresholdBins))
	if k > thresholdBins {
		k = thresholdBins
	}
	// Guard against floating error at bin edges.
	for k < thresholdBins && x >= float64(k+1)/thresholdBins {
		k++
	}
	for k > 0 && x < float64(k)/thresholdBins {
		k--
	}
	return k
}
