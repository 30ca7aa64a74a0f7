package knn

import (
	"errors"
	"fmt"

	"imet/internal/postprocess/thresholds"
)

// Problem is what label transfer reads: a model's OOF and test
// probabilities and embeddings of the same images.
type Problem struct {
	Rows, TestRows, Cols, Dim int
	// OOF and Test are the model's probabilities (row-major, Cols wide);
	// Test may be nil.
	OOF, Test []float32
	// TrainEmb and TestEmb hold the embeddings (Dim wide), one matrix per
	// embedding space: either one space for every image, or K, one per
	// fold model, where fold k's OOF rows are looked up in space k (the
	// model that did not train on them) and the test rows in every space,
	// the transfers averaged.
	TrainEmb, TestEmb [][]float32
	Truth             [][]int
	Fold              []int
	K                 int
}

// Grid is what Tune searches: blend weights and softmax temperatures.
type Grid struct {
	Alphas, Temps []float64
}

// DefaultGrid tries the neighbours' share in tenths and four temperatures
// from nearly hard (0.01: the nearest neighbour dominates) to soft.
func DefaultGrid() Grid {
	g := Grid{Temps: []float64{0.01, 0.03, 0.1, 0.3}}
	for a := 0; a <= 10; a++ {
		g.Alphas = append(g.Alphas, float64(a)/10)
	}
	return g
}

// Result is the tuned blend and its output.
type Result struct {
	Alpha, Temp float64
	// F2 is the OOF F2 of the blend at its best global threshold; BaseF2
	// the model's alone (Alpha 0) and KNNF2 the neighbours' alone.
	F2, BaseF2, KNNF2 float64
	// OOF and Test are the blended probabilities.
	OOF, Test []float32
}

func (p *Problem) check() error {
	if len(p.TrainEmb) != 1 && len(p.TrainEmb) != p.K {
		return fmt.Errorf("knn: %d embedding spaces for %d folds: give one, or one per fold", len(p.TrainEmb), p.K)
	}
	if p.Test != nil && len(p.TestEmb) != len(p.TrainEmb) {
		return fmt.Errorf("knn: %d test embedding spaces for %d train ones", len(p.TestEmb), len(p.TrainEmb))
	}
	for s, e := range p.TrainEmb {
		if len(e) != p.Rows*p.Dim {
			return fmt.Errorf("knn: train embeddings %d: %d values for %dx%d", s, len(e), p.Rows, p.Dim)
		}
	}
	for s, e := range p.TestEmb {
		if len(e) != p.TestRows*p.Dim {
			return fmt.Errorf("knn: test embeddings %d: %d values for %dx%d", s, len(e), p.TestRows, p.Dim)
		}
	}
	if len(p.OOF) != p.Rows*p.Cols || len(p.Truth) != p.Rows || len(p.Fold) != p.Rows {
		return errors.New("knn: OOF probabilities, truth and folds do not match the rows")
	}
	if p.K < 2 {
		return errors.New("knn: out-of-fold neighbours need at least 2 folds")
	}
	return nil
}

// OOFNeighbours finds each training row's neighbours among the rows of the
// other folds only (in its own fold's space when there are K).
func (p *Problem) OOFNeighbours(o Options) (*Neighbours, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if len(p.TrainEmb) == 1 {
		return Search(p.TrainEmb[0], p.Rows, p.TrainEmb[0], p.Rows, p.Dim, p.Fold, p.Fold, o)
	}
	out := &Neighbours{Rows: p.Rows, K: o.K, Index: make([]int32, p.Rows*o.K), Sim: make([]float32, p.Rows*o.K)}
	for k := 0; k < p.K; k++ {
		var held, others []int
		for i, f := range p.Fold {
			if f == k {
				held = append(held, i)
			} else {
				others = append(others, i)
			}
		}
		if len(held) == 0 {
			continue
		}
		e := p.TrainEmb[k]
		nb, err := Search(gather(e, held, p.Dim), len(held), gather(e, others, p.Dim), len(others), p.Dim, nil, nil, o)
		if err != nil {
			return nil, fmt.Errorf("fold %d: %w", k, err)
		}
		for x, i := range held {
			for n := 0; n < o.K; n++ {
				out.Index[i*o.K+n] = int32(others[nb.Index[x*o.K+n]])
				out.Sim[i*o.K+n] = nb.Sim[x*o.K+n]
			}
		}
	}
	return out, nil
}

// TestNeighbours finds each test row's neighbours among all training rows,
// once per embedding space.
func (p *Problem) TestNeighbours(o Options) ([]*Neighbours, error) {
	var out []*Neighbours
	for s := range p.TestEmb {
		nb, err := Search(p.TestEmb[s], p.TestRows, p.TrainEmb[s], p.Rows, p.Dim, nil, nil, o)
		if err != nil {
			return nil, err
		}
		out = append(out, nb)
	}
	return out, nil
}

func gather(e []float32, rows []int, d int) []float32 {
	out := make([]float32, 0, len(rows)*d)
	for _, i := range rows {
		out = append(out, e[i*d:(i+1)*d]...)
	}
	return out
}

// Tune transfers the OOF neighbours' labels at each temperature, blends
// them with the model's OOF probabilities at each weight, and keeps the
// pair of best OOF F2 (best global threshold, at least one label per
// image, as imet thresholds scores); it then applies that pair to the test
// rows. groupOf and groups describe the label columns.
func Tune(p *Problem, oofNb *Neighbours, testNb []*Neighbours, g Grid, groupOf []int, groups []string) (*Result, error) {
	if len(g.Alphas) == 0 || len(g.Temps) == 0 {
		return nil, errors.New("knn: an empty grid")
	}
	truth := thresholds.TruthOf(p.Truth)
	score := func(probs []float32) (float64, error) {
		pr := &thresholds.Problem{Rows: p.Rows, Cols: p.Cols, Probs: probs, Truth: truth, GroupOf: groupOf, Groups: groups}
		res, err := thresholds.Search(pr, []string{thresholds.Global}, thresholds.DefaultOptions())
		if err != nil {
			return 0, err
		}
		return res[0].Score, nil
	}
	best := &Result{F2: -1}
	var err error
	if best.BaseF2, err = score(p.OOF); err != nil {
		return nil, err
	}
	for _, temp := range g.Temps {
		q := Transfer(oofNb, p.Truth, p.Cols, temp)
		for _, a := range g.Alphas {
			f, err := score(Blend(p.OOF, q, a))
			if err != nil {
				return nil, err
			}
			if a == 1 && f > best.KNNF2 {
				best.KNNF2 = f
			}
			if f > best.F2 {
				best.F2, best.Alpha, best.Temp = f, a, temp
			}
		}
	}
	best.OOF = Blend(p.OOF, Transfer(oofNb, p.Truth, p.Cols, best.Temp), best.Alpha)
	if p.Test != nil {
		q := make([]float32, p.TestRows*p.Cols)
		for _, nb := range testNb {
			for i, v := range Transfer(nb, p.Truth, p.Cols, best.Temp) {
				q[i] += v / float32(len(testNb))
			}
		}
		best.Test = Blend(p.Test, q, best.Alpha)
	}
	return best, nil
}
