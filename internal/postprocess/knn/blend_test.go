package knn

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// bruteForce is the k most cosine-similar rows of base among allowed to
// query row i, in float64.
func bruteForce(e []float32, d, i int, allowed func(j int) bool, k int) []int {
	dot := func(a, b int) float64 {
		var s float64
		for x := range d {
			s += float64(e[a*d+x]) * float64(e[b*d+x])
		}
		return s
	}
	var js []int
	var sims []float64
	n := len(e) / d
	for j := range n {
		if allowed(j) {
			js = append(js, j)
			sims = append(sims, dot(i, j)/math.Sqrt(dot(i, i)*dot(j, j)))
		}
	}
	idx := make([]int, len(js))
	for x := range idx {
		idx[x] = x
	}
	sort.SliceStable(idx, func(a, b int) bool { return sims[idx[a]] > sims[idx[b]] })
	out := make([]int, k)
	for x := range out {
		out[x] = js[idx[x]]
	}
	return out
}

// TestPerFoldSpaces gives each fold model its own embedding space and
// checks that fold k's rows find exactly their brute-force neighbours in
// space k among the other folds' rows.
func TestPerFoldSpaces(t *testing.T) {
	const n, d, k, folds = 45, 8, 4, 3
	r := rand.New(rand.NewPCG(4, 4))
	p := &Problem{Rows: n, Cols: 2, Dim: d, K: folds, OOF: make([]float32, n*2), Truth: make([][]int, n), Fold: make([]int, n)}
	for range folds {
		e := make([]float32, n*d)
		for i := range e {
			e[i] = float32(r.NormFloat64())
		}
		p.TrainEmb = append(p.TrainEmb, e)
	}
	for i := range p.Fold {
		p.Fold[i] = r.IntN(folds)
	}
	nb, err := p.OOFNeighbours(Options{K: k, Block: 5, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		f := p.Fold[i]
		want := bruteForce(p.TrainEmb[f], d, i, func(j int) bool { return p.Fold[j] != f }, k)
		for x, j := range want {
			if int(nb.Index[i*k+x]) != j {
				t.Fatalf("row %d (fold %d): neighbours %v, brute force in space %d %v", i, f, nb.Index[i*k:(i+1)*k], f, want)
			}
		}
	}
}
