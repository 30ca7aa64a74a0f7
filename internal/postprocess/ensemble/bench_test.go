package ensemble

import (
	"fmt"
	"testing"

	"imet/internal/data/simprobs"
	"imet/internal/postprocess/probs"
)

// BenchmarkCombine combines two 20,000 x 1,103 files (a fifth of iMet's
// training set) with each method.
func BenchmarkCombine(b *testing.B) {
	groupOf, _ := simprobs.IMetGroups()
	var in []Input
	for k := range 2 {
		sp := simprobs.Generate(20000, groupOf, 4.4, uint64(k))
		ids := make([]string, sp.Rows)
		for i := range ids {
			ids[i] = fmt.Sprint(i)
		}
		in = append(in, Input{Name: fmt.Sprint(k), File: &probs.File{Matrix: &probs.Matrix{Rows: sp.Rows, Cols: sp.Cols, Data: sp.Probs}, IDs: ids}})
	}
	for _, m := range []Method{Mean, Rank, GeoMean} {
		b.Run(string(m), func(b *testing.B) {
			for b.Loop() {
				if _, err := Combine(in, m, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
