// Package stacking trains a second-level model over (image, label) rows:
// the 1st-place recipe of iMet 2019, where a gradient-boosted model reads
// every first-level model's probability of a label together with context
// that no single probability carries (how that label ranks within the
// image, how confident the model is about the image at all, how common the
// label is, which group it belongs to) and outputs a better probability.
//
// The booster is XGBoost, through its C API (xgb.go). It is trained once
// per fold on the out-of-fold probabilities of the other folds, so its own
// out-of-fold predictions are honest and thresholds can be searched on
// them as on any OOF file; the test probabilities are the mean of the K
// fold boosters.
package stacking

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Problem is the first-level output a stacker learns from.
type Problem struct {
	Rows, Cols int
	// OOF holds each first-level model's out-of-fold probabilities,
	// Rows x Cols row-major, rows and columns aligned across models.
	OOF [][]float32
	// TestRows and Test are the same models' test probabilities (Test may
	// be nil: then only the OOF is stacked).
	TestRows int
	Test     [][]float32
	// Truth lists the true label columns of each OOF row.
	Truth [][]int
	// Fold is each OOF row's fold, 0..K-1.
	Fold []int
	K    int
	// GroupOf is each column's label group (an index), a feature as is.
	GroupOf []int
}

// Options tune the second-level model.
type Options struct {
	// Rounds is the number of boosting iterations.
	Rounds int
	// Params go to XGBoost verbatim (objective, depth, learning rate...).
	Params []Param
	// Candidates, when positive, stacks only each image's Candidates labels
	// of highest mean first-level probability; the others get probability
	// 0. At iMet's 1103 labels and under 5 true labels per image, 30
	// candidates keep nearly every positive and cut the rows 37-fold.
	Candidates int
}

// DefaultOptions is a shallow, slowly learning booster: the features are
// few and already informative, and a deep one overfits the OOF.
func DefaultOptions() Options {
	return Options{Rounds: 100, Params: DefaultParams(4, 0.1, 0)}
}

// DefaultParams returns binary logistic boosting with the histogram method,
// depth and eta as given; threads 0 leaves XGBoost's default (every core).
func DefaultParams(depth int, eta float64, threads int) []Param {
	ps := []Param{
		{"objective", "binary:logistic"},
		{"tree_method", "hist"},
		{"max_depth", strconv.Itoa(depth)},
		{"eta", strconv.FormatFloat(eta, 'g', -1, 64)},
		{"seed", "0"},
	}
	if threads > 0 {
		ps = append(ps, Param{"nthread", strconv.Itoa(threads)})
	}
	return ps
}

// FeatureNames names the columns of the feature matrix for models
// first-level models: per model its probability, the label's rank within
// the image under that model (0: the image's most probable label) and the
// image's largest probability; then the label's prior frequency and group.
func FeatureNames(models int) []string {
	var out []string
	for m := 0; m < models; m++ {
		s := strconv.Itoa(m)
		out = append(out, "p"+s, "rank"+s, "image_max"+s)
	}
	return append(out, "prior", "group")
}

// Result is the second-level model's output, in the shape of the input.
type Result struct {
	OOF  []float32 // Rows x Cols
	Test []float32 // TestRows x Cols, nil without test input
	// Features is the width of the feature matrix; Examples the (image,
	// label) rows each fold's booster trained on, summed over folds.
	Features, Examples int
	// Recall is the share of the OOF rows' true labels among their
	// candidates (1 without Options.Candidates): the ceiling a candidate
	// cut puts on the stacked recall.
	Recall float64
}

func (p *Problem) check() error {
	if len(p.OOF) == 0 {
		return errors.New("stacking: no first-level model")
	}
	for m, a := range p.OOF {
		if len(a) != p.Rows*p.Cols {
			return fmt.Errorf("stacking: model %d has %d OOF values, want %dx%d", m, len(a), p.Rows, p.Cols)
		}
	}
	if p.Test != nil {
		if len(p.Test) != len(p.OOF) {
			return fmt.Errorf("stacking: %d test files for %d OOF files", len(p.Test), len(p.OOF))
		}
		for m, a := range p.Test {
			if len(a) != p.TestRows*p.Cols {
				return fmt.Errorf("stacking: model %d has %d test values, want %dx%d", m, len(a), p.TestRows, p.Cols)
			}
		}
	}
	if len(p.Truth) != p.Rows || len(p.Fold) != p.Rows || len(p.GroupOf) != p.Cols {
		return errors.New("stacking: truth, folds or groups do not match the OOF shape")
	}
	if p.K < 2 {
		return fmt.Errorf("stacking: %d fold(s); out-of-fold stacking needs at least 2", p.K)
	}
	for k := 0; k < p.K; k++ {
		if !slices.Contains(p.Fold, k) {
			return fmt.Errorf("stacking: fold %d has no OOF row", k)
		}
	}
	return nil
}

// Stack trains one booster per fold k on the rows of the other folds and
// predicts fold k's rows with it, and averages the K boosters on the test
// rows. The prior-frequency feature is computed, for each booster, from its
// own training rows only: a held-out image's labels never reach a feature.
func Stack(p *Problem, o Options) (*Result, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	nf := len(FeatureNames(len(p.OOF)))
	res := &Result{OOF: make([]float32, p.Rows*p.Cols), Features: nf}
	oofCand := candidates(p.OOF, p.Rows, p.Cols, o.Candidates)
	res.Recall = 1
	if oofCand != nil {
		var in, all int
		for i, ls := range p.Truth {
			for _, c := range ls {
				all++
				if _, ok := slices.BinarySearch(oofCand[i], c); ok {
					in++
				}
			}
		}
		if all > 0 {
			res.Recall = float64(in) / float64(all)
		}
	}
	var testCand [][]int
	if p.Test != nil {
		res.Test = make([]float32, p.TestRows*p.Cols)
		testCand = candidates(p.Test, p.TestRows, p.Cols, o.Candidates)
	}
	for k := 0; k < p.K; k++ {
		var train, held []int
		for i, f := range p.Fold {
			if f == k {
				held = append(held, i)
			} else {
				train = append(train, i)
			}
		}
		prior := make([]float32, p.Cols)
		for _, i := range train {
			for _, c := range p.Truth[i] {
				prior[c]++
			}
		}
		for c := range prior {
			prior[c] /= float32(len(train))
		}
		x, cells := features(p.OOF, p.Cols, train, oofCand, prior, p.GroupOf)
		y := make([]float32, len(cells))
		for r, cell := range cells {
			if slices.Contains(p.Truth[cell[0]], cell[1]) {
				y[r] = 1
			}
		}
		b, err := Train(x, len(cells), nf, y, o.Params, o.Rounds)
		if err != nil {
			return nil, fmt.Errorf("stacking: fold %d: %w", k, err)
		}
		res.Examples += len(cells)
		if err := predictInto(b, p.OOF, p.Cols, held, oofCand, prior, p.GroupOf, res.OOF, 1); err != nil {
			b.Free()
			return nil, fmt.Errorf("stacking: fold %d: %w", k, err)
		}
		if p.Test != nil {
			all := make([]int, p.TestRows)
			for i := range all {
				all[i] = i
			}
			if err := predictInto(b, p.Test, p.Cols, all, testCand, prior, p.GroupOf, res.Test, 1/float32(p.K)); err != nil {
				b.Free()
				return nil, fmt.Errorf("stacking: fold %d on test: %w", k, err)
			}
		}
		b.Free()
	}
	return res, nil
}

// predictInto adds scale times b's predictions for rows' candidate cells
// into out (Rows x cols).
func predictInto(b *Booster, models [][]float32, cols int, rows []int, cand [][]int, prior []float32, groupOf []int, out []float32, scale float32) error {
	x, cells := features(models, cols, rows, cand, prior, groupOf)
	pred, err := b.Predict(x, len(cells), len(FeatureNames(len(models))))
	if err != nil {
		return err
	}
	for r, cell := range cells {
		out[cell[0]*cols+cell[1]] += scale * pred[r]
	}
	return nil
}

// candidates returns, per row, the columns to stack (all when k <= 0 or
// k >= cols), ranked by the mean probability over models.
func candidates(models [][]float32, rows, cols, k int) [][]int {
	if k <= 0 || k >= cols {
		return nil
	}
	out := make([][]int, rows)
	mean := make([]float32, cols)
	idx := make([]int, cols)
	for i := 0; i < rows; i++ {
		clear(mean)
		for _, m := range models {
			for c, v := range m[i*cols : (i+1)*cols] {
				mean[c] += v
			}
		}
		for c := range idx {
			idx[c] = c
		}
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(mean[b], mean[a]) })
		out[i] = slices.Clone(idx[:k])
		slices.Sort(out[i])
	}
	return out
}

// features builds the feature matrix of rows' candidate cells (every
// column when cand is nil) and the (row, column) of each matrix row.
func features(models [][]float32, cols int, rows []int, cand [][]int, prior []float32, groupOf []int) ([]float32, [][2]int) {
	nf := len(FeatureNames(len(models)))
	var cells [][2]int
	for _, i := range rows {
		if cand == nil {
			for c := 0; c < cols; c++ {
				cells = append(cells, [2]int{i, c})
			}
		} else {
			for _, c := range cand[i] {
				cells = append(cells, [2]int{i, c})
			}
		}
	}
	x := make([]float32, len(cells)*nf)
	rank := make([]int, cols)
	order := make([]int, cols)
	r := 0
	for _, i := range rows {
		n := cols
		if cand != nil {
			n = len(cand[i])
		}
		for m, a := range models {
			row := a[i*cols : (i+1)*cols]
			for c := range order {
				order[c] = c
			}
			// Ties take the lower column first, so the rank is a function of
			// the probabilities alone.
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(row[b], row[a]) })
			for pos, c := range order {
				rank[c] = pos
			}
			mx := row[order[0]]
			for q := 0; q < n; q++ {
				c := cells[r+q][1]
				f := x[(r+q)*nf:]
				f[3*m], f[3*m+1], f[3*m+2] = row[c], float32(rank[c]), mx
			}
		}
		for q := 0; q < n; q++ {
			c := cells[r+q][1]
			f := x[(r+q)*nf:]
			f[nf-2], f[nf-1] = prior[c], float32(groupOf[c])
		}
		r += n
	}
	return x, cells
}
