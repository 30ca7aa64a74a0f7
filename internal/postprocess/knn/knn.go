// Package knn transfers labels from nearest neighbours: the 4th-place
// technique of iMet 2019, where an image's labels are predicted from the
// training images most like it in a model's penultimate-layer embedding
// (cosine similarity, softmax weights over the k nearest), and the result
// is averaged with the model's own probabilities.
//
// The search is exact: a blocked matrix product of L2-normalised
// embeddings on libtorch (CPU or GPU), keeping each block's top k before
// the next block is computed, so memory stays at one block of similarities
// whatever the number of images. Out-of-fold rows search only the other
// folds' rows: a training image never finds itself or an image its own
// fold model (or its own fold's held-out truth) should not know.
package knn

import (
	"errors"
	"fmt"
	"math"

	"imet/internal/engine/torch"
)

// Options steer Search.
type Options struct {
	// K is the number of neighbours kept per query.
	K int
	// Block is the number of query rows per matrix product (default 1024):
	// a block of similarities is Block x base rows float32.
	Block int
	// Device runs the products (the zero value: the CPU).
	Device torch.Device
	// Threads is libtorch's intra-op thread count (0: one per core).
	Threads int
}

// Neighbours are the K nearest base rows of each query, most similar first.
type Neighbours struct {
	Rows, K int
	// Index[i*K+n] is query i's n-th neighbour (a base row); Sim its cosine
	// similarity.
	Index []int32
	Sim   []float32
}

// Search finds, for each of the q rows of query (q x d, row-major), the
// o.K base rows (b x d) of highest cosine similarity. With groups, a query
// of group g never gets a base row of group g (qGroup and bGroup: one
// group per row, e.g. the fold; nil for no exclusion). Zero vectors have
// similarity 0 to everything.
func Search(query []float32, q int, base []float32, b, d int, qGroup, bGroup []int, o Options) (*Neighbours, error) {
	if len(query) != q*d || len(base) != b*d || q == 0 || b == 0 || d == 0 {
		return nil, fmt.Errorf("knn: %d query values for %dx%d, %d base values for %dx%d", len(query), q, d, len(base), b, d)
	}
	if (qGroup == nil) != (bGroup == nil) || (qGroup != nil && (len(qGroup) != q || len(bGroup) != b)) {
		return nil, errors.New("knn: give a group for every query and base row, or none")
	}
	if o.K < 1 {
		return nil, errors.New("knn: k must be at least 1")
	}
	if o.Block <= 0 {
		o.Block = 1024
	}
	k := o.K
	if qGroup != nil {
		// The excluded rows are pushed to the bottom, not removed: never
		// ask for more neighbours than the smallest pool a query can have.
		in := map[int]int{}
		for _, h := range bGroup {
			in[h]++
		}
		for _, g := range qGroup {
			if pool := b - in[g]; pool < k {
				return nil, fmt.Errorf("knn: a query of group %d has %d base rows outside its group, fewer than k=%d", g, pool, k)
			}
		}
	} else if b < k {
		return nil, fmt.Errorf("knn: %d base rows, fewer than k=%d", b, k)
	}
	nb := &Neighbours{Rows: q, K: k, Index: make([]int32, q*k), Sim: make([]float32, q*k)}
	unlock := torch.LockThread(o.Threads)
	defer unlock()
	// The normalised baseᵀ (d x b) and the base groups stay on the device
	// for every block of queries; they belong to this scope.
	outer := torch.NewScope()
	defer outer.Close()
	var baseT, bg *torch.Tensor
	err := torch.Catch(func() {
		torch.InferenceMode(func() {
			baseT = torch.Zeros(torch.Float32, o.Device, d, b)
			if bGroup != nil {
				bg = torch.Upload(groupsF(bGroup), o.Device, 1, b)
			}
			// Normalised block by block into baseT's columns: the base is
			// never held twice.
			for start := 0; start < b; start += o.Block {
				n := min(o.Block, b-start)
				err := torch.Run(func() {
					blk := normalise(torch.Upload(base[start*d:(start+n)*d], o.Device, n, d))
					baseT.Narrow(1, start, n).CopyFrom(blk.Permute(1, 0))
				})
				if err != nil {
					panic(err)
				}
			}
		})
	})
	if err != nil {
		return nil, err
	}
	for start := 0; start < q; start += o.Block {
		n := min(o.Block, q-start)
		err := torch.Run(func() {
			torch.InferenceMode(func() {
				x := normalise(torch.Upload(query[start*d:(start+n)*d], o.Device, n, d))
				sim := x.Matmul(baseT)
				if bg != nil {
					qg := torch.Upload(groupsF(qGroup[start:start+n]), o.Device, n, 1)
					// Cosines lie in [-1, 1]: 4 below puts every same-group
					// row under every other.
					sim = sim.Sub(qg.Eq(bg).To(torch.Float32).MulScalar(4))
				}
				// The pool check above leaves k rows of other groups for every
				// query, so no pushed-down row reaches the top k.
				v, idx := sim.TopK(k, 1)
				copy(nb.Sim[start*k:], v.ToDevice(torch.Float32, torch.CPU).Float32s())
				for i, j := range idx.ToDevice(torch.Int64, torch.CPU).Int64s() {
					nb.Index[start*k+i] = int32(j)
				}
			})
		})
		if err != nil {
			return nil, err
		}
	}
	return nb, nil
}

// normalise divides each row by its L2 norm (rows of zeros stay zero).
func normalise(x *torch.Tensor) *torch.Tensor {
	n := x.Shape()[0]
	norm := x.Mul(x).Sum(1).Sqrt().Reshape(n, 1).Clamp(1e-12, math.MaxFloat32)
	return x.Div(norm)
}

func groupsF(g []int) []float32 {
	out := make([]float32, len(g))
	for i, v := range g {
		out[i] = float32(v)
	}
	return out
}

// Transfer returns the neighbours' labels as probabilities (q x cols): for
// query i, the sum over its neighbours n of w_n·y_n, with w the softmax of
// the similarities divided by temp and y_n neighbour n's multi-hot truth.
func Transfer(nb *Neighbours, truth [][]int, cols int, temp float64) []float32 {
	out := make([]float32, nb.Rows*cols)
	w := make([]float64, nb.K)
	for i := 0; i < nb.Rows; i++ {
		sims := nb.Sim[i*nb.K : (i+1)*nb.K]
		// Sorted descending: sims[0] is the largest, subtracted for a
		// softmax that cannot overflow at small temperatures.
		var z float64
		for n, s := range sims {
			w[n] = math.Exp((float64(s) - float64(sims[0])) / temp)
			z += w[n]
		}
		row := out[i*cols : (i+1)*cols]
		for n := range sims {
			for _, c := range truth[nb.Index[i*nb.K+n]] {
				row[c] += float32(w[n] / z)
			}
		}
	}
	return out
}

// Blend is (1-a)·p + a·q elementwise: the model's probabilities p and the
// neighbours' q.
func Blend(p, q []float32, a float64) []float32 {
	out := make([]float32, len(p))
	for i := range p {
		out[i] = float32((1-a)*float64(p[i]) + a*float64(q[i]))
	}
	return out
}
