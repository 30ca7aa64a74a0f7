package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"imet/internal/postprocess/fbeta"
)

// TestBestGlobalThresholdMatchesBruteForce scores every threshold with
// fbeta.Samples directly and checks the histogram search agrees.
func TestBestGlobalThresholdMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rows, cols := 200, 30
	probs := make([]float32, rows*cols)
	truth := make([][]int, rows)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			pos := r.Float64() < 0.1
			if pos {
				truth[i] = append(truth[i], j)
			}
			p := r.Float64() * 0.6
			if pos {
				p += 0.3 * r.Float64()
			}
			if r.IntN(10) == 0 {
				p = float64(r.IntN(100)) / 100 // exactly on a bin edge
			}
			probs[i*cols+j] = float32(p)
		}
	}
	o := fbeta.Default()
	bestT, bestF := 0.0, -1.0
	for k := 1; k < 100; k++ {
		th := float64(k) / 100
		pred := make([][]int, rows)
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				if float64(probs[i*cols+j]) >= th {
					pred[i] = append(pred[i], j)
				}
			}
		}
		f, err := fbeta.Samples(truth, pred, o)
		if err != nil {
			t.Fatal(err)
		}
		if f > bestF {
			bestT, bestF = th, f
		}
	}
	gotT, gotF := BestGlobalThreshold(probs, cols, truth, o)
	if gotT != bestT || math.Abs(gotF-bestF) > 1e-12 {
		t.Fatalf("threshold %g F2 %.15g; brute force %g %.15g", gotT, gotF, bestT, bestF)
	}
}
