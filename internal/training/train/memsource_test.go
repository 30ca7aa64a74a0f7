package train

import (
	"context"
	"iter"
	"math/rand/v2"
)

// memSource is a small synthetic data set in memory: image i is noise plus
// a bright square whose position encodes its labels, so a network can
// learn it. Training batches are flipped and mixed with randomness drawn
// only from the epoch key and batch number, as the image loader does.
type memSource struct {
	n, classes, side int
	images           [][]float32 // C*H*W each
	targets          [][]float32
	views            int
	noFlip           bool // training batches as they are (the PyTorch DDP reference)
}

func newMemSource(seed uint64, n, classes, side int) *memSource {
	r := rand.New(rand.NewPCG(seed, 99))
	s := &memSource{n: n, classes: classes, side: side, views: 2}
	for i := 0; i < n; i++ {
		img := make([]float32, 3*side*side)
		for j := range img {
			img[j] = float32(r.NormFloat64() * 0.3)
		}
		t := make([]float32, classes)
		for c := 0; c < classes; c++ {
			if r.IntN(3) == 0 {
				t[c] = 1
				// a bright patch in the c-th horizontal band, channel c%3
				y0 := c * side / classes
				for y := y0; y < y0+side/classes; y++ {
					for x := 0; x < side/2; x++ {
						img[(c%3)*side*side+y*side+x] += 1.5
					}
				}
			}
		}
		s.images = append(s.images, img)
		s.targets = append(s.targets, t)
	}
	return s
}

func (s *memSource) Len() int     { return s.n }
func (s *memSource) Classes() int { return s.classes }
func (s *memSource) Views() int   { return s.views }

func (s *memSource) batch(idx []int, flip []bool) *Batch {
	side := s.side
	b := &Batch{N: len(idx), C: 3, H: side, W: side, L: s.classes, Indices: append([]int(nil), idx...)}
	for k, i := range idx {
		img := s.images[i]
		if flip != nil && flip[k] {
			f := make([]float32, len(img))
			for c := 0; c < 3; c++ {
				for y := 0; y < side; y++ {
					for x := 0; x < side; x++ {
						f[c*side*side+y*side+x] = img[c*side*side+y*side+side-1-x]
					}
				}
			}
			img = f
		}
		b.Images = append(b.Images, img...)
		b.Targets = append(b.Targets, s.targets[i]...)
	}
	return b
}

func (s *memSource) Train(ctx context.Context, key EpochKey, order []int, batchSize, start int, mix MixConfig) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		for bn := start; (bn+1)*batchSize <= len(order); bn++ {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			r := rand.New(rand.NewPCG(uint64(key.Seed), uint64(key.Global)<<32|uint64(bn)))
			idx := order[bn*batchSize : (bn+1)*batchSize]
			flip := make([]bool, len(idx))
			for k := range flip {
				// keyed by the position in the epoch's whole order, as the
				// loader's draws are, so a data-parallel rank flips what
				// one process would
				pos := key.Position(bn*batchSize + k)
				flip[k] = !s.noFlip && rand.New(rand.NewPCG(uint64(key.Seed)^uint64(key.Global)<<40, uint64(pos))).IntN(2) == 1
			}
			b := s.batch(idx, flip)
			if mix.MixupAlpha > 0 && r.Float64() < mix.MixupProb {
				lam := float32(r.Float64()*0.5 + 0.5)
				perm := r.Perm(b.N)
				img, tgt := append([]float32(nil), b.Images...), append([]float32(nil), b.Targets...)
				per, pl := len(img)/b.N, b.L
				for k := 0; k < b.N; k++ {
					for j := 0; j < per; j++ {
						b.Images[k*per+j] = lam*img[k*per+j] + (1-lam)*img[perm[k]*per+j]
					}
					for j := 0; j < pl; j++ {
						b.Targets[k*pl+j] = lam*tgt[k*pl+j] + (1-lam)*tgt[perm[k]*pl+j]
					}
				}
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

func (s *memSource) Eval(ctx context.Context, batchSize, variant int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		for lo := 0; lo < s.n; lo += batchSize {
			// Cancellation ends a prediction, as it does the image loader's.
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			hi := min(lo+batchSize, s.n)
			idx := make([]int, 0, hi-lo)
			var flip []bool
			for i := lo; i < hi; i++ {
				idx = append(idx, i)
				flip = append(flip, variant == 1)
			}
			if !yield(s.batch(idx, flip), nil) {
				return
			}
		}
	}
}

func (s *memSource) truth() [][]int {
	out := make([][]int, s.n)
	for i, t := range s.targets {
		for j, v := range t {
			if v > 0.5 {
				out[i] = append(out[i], j)
			}
		}
	}
	return out
}
