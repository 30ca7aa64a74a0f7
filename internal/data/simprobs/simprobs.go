// Package simprobs simulates model outputs: iMet-shaped multi-label problems — label
// frequencies with a long tail, a few true labels per image, and model
// probabilities that are confident on most labels and unsure on some — for
// tests, benchmarks and demos that must not depend on the real data.
package simprobs

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
)

// Problem is a generated set of images: probabilities (row-major, Rows ×
// Cols) and each image's true label columns.
type Problem struct {
	Rows, Cols int
	Probs      []float32
	Truth      [][]int32
}

// Generate draws rows images over len(groupOf) labels. Each image gets
// about meanLabels true labels (at least one), spread over groups in
// proportion to their sizes, labels within a group drawn with Zipf-like
// frequencies. A true label's logit is drawn around +0.2, a false one's
// around −8 with a tail of hard negatives, so F2-optimal thresholds land
// near iMet's (0.1–0.3). The same seed gives the same problem.
func Generate(rows int, groupOf []int, meanLabels float64, seed uint64) *Problem {
	cols := len(groupOf)
	p := &Problem{Rows: rows, Cols: cols, Probs: make([]float32, rows*cols), Truth: make([][]int32, rows)}
	if cols == 0 || rows == 0 {
		return p
	}
	// Cumulative Zipf weights over all columns in a fixed shuffled order, so
	// that every group has frequent and rare labels.
	r0 := rand.New(rand.NewPCG(seed, 0x1e7))
	perm := r0.Perm(cols)
	cum := make([]float64, cols)
	var tot float64
	for k := range cols {
		tot += 1 / math.Pow(float64(k+1), 0.9)
		cum[k] = tot
	}
	pick := func(r *rand.Rand) int32 { return int32(perm[sort.SearchFloat64s(cum, r.Float64()*tot)]) }
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	const block = 4096
	nBlocks := (rows + block - 1) / block
	next := make(chan int, nBlocks)
	for b := range nBlocks {
		next <- b
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mark := make([]bool, cols)
			for b := range next {
				r := rand.New(rand.NewPCG(seed, uint64(b)+1))
				for i := b * block; i < min(rows, (b+1)*block); i++ {
					k := 1 + int(r.ExpFloat64()*(meanLabels-1)+0.5)
					var t []int32
					for len(t) < k && len(t) < cols {
						j := pick(r)
						if !mark[j] {
							mark[j] = true
							t = append(t, j)
						}
					}
					sort.Slice(t, func(a, c int) bool { return t[a] < t[c] })
					row := p.Probs[i*cols : (i+1)*cols]
					for j := range row {
						var z float64
						if mark[j] {
							z = 0.2 + 1.8*r.NormFloat64()
						} else {
							z = -8 + 1.5*r.NormFloat64()
							if r.Float64() < 0.02 {
								z += 5.5 // hard negatives: plausible but wrong labels
							}
						}
						row[j] = float32(1 / (1 + math.Exp(-z)))
					}
					for _, j := range t {
						mark[j] = false
					}
					p.Truth[i] = t
				}
			}
		}()
	}
	wg.Wait()
	return p
}

// IMetGroups returns the 2019 iMet group layout: 398 culture labels
// (group 0) then 705 tag labels (group 1).
func IMetGroups() (groupOf []int, names []string) {
	groupOf = make([]int, 1103)
	for j := 398; j < 1103; j++ {
		groupOf[j] = 1
	}
	return groupOf, []string{"culture", "tag"}
}
