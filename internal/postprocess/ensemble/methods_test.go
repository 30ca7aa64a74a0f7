package ensemble

import (
	"math"
	"testing"
)

// TestEveryMethodCombines combines two small files with each method of
// Methods (with weights, which every method accepts and weighted needs):
// every output is finite, in [0, 1], and lies between the inputs for the
// averaging methods. No name can be listed without a combination behind it.
func TestEveryMethodCombines(t *testing.T) {
	a := [][]float32{{0.9, 0.1, 0.5}, {0.2, 0.8, 0.4}, {0.6, 0.3, 0.7}}
	b := [][]float32{{0.7, 0.3, 0.4}, {0.1, 0.9, 0.6}, {0.5, 0.2, 0.9}}
	in := []Input{{Name: "a.npy", File: file(a, nil, nil)}, {Name: "b.npy", File: file(b, nil, nil)}}
	for _, m := range Methods {
		out, err := Combine(in, m, []float64{1, 3})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if out.Rows != 3 || out.Cols != 3 {
			t.Fatalf("%s: %d x %d", m, out.Rows, out.Cols)
		}
		for i := range 3 {
			for j, v := range out.Row(i) {
				if math.IsNaN(float64(v)) || v < 0 || v > 1 {
					t.Errorf("%s: [%d][%d] = %v", m, i, j, v)
				}
				lo, hi := min(a[i][j], b[i][j]), max(a[i][j], b[i][j])
				if m != Rank && (v < lo-1e-6 || v > hi+1e-6) {
					t.Errorf("%s: [%d][%d] = %v outside the inputs [%v, %v]", m, i, j, v, lo, hi)
				}
			}
		}
	}
}
