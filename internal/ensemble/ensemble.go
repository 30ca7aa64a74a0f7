// Package ensemble combines probability files — the fold models' test
// predictions, several architectures, test-time-augmentation passes — into
// one, after checking that they describe the same images and labels.
//
// Methods:
//
//   - mean: the arithmetic mean of the probabilities;
//   - rank: each file's column replaced by the rank of each image within it
//     (ties share their average rank), divided by the number of images, then
//     averaged. Models with different calibration then count equally; this
//     is what the 2019 top solutions used. The result is a score in (0, 1],
//     not a probability, so thresholds must be searched on out-of-fold
//     predictions combined the same way;
//   - geomean: the geometric mean, exp(mean(log p)), with p clamped to
//     [1e-7, 1] so a single zero does not veto a label;
//   - weighted: the mean with the given weights (any method accepts
//     weights; they are normalised to sum to 1).
//
// Concat is the other way to combine: stacking the out-of-fold parts of K
// folds, which share no image, into one out-of-fold file.
package ensemble

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"imet/internal/probs"
)

// Method names a way of combining.
type Method string

// The methods; see the package comment.
const (
	Mean     Method = "mean"
	Rank     Method = "rank"
	GeoMean  Method = "geomean"
	Weighted Method = "weighted"
)

// Methods lists the known methods.
var Methods = []Method{Mean, Rank, GeoMean, Weighted}

// Input is one file to combine, with the name errors should use.
type Input struct {
	Name string
	File *probs.File
}

// align reorders in's rows (and columns, when both sides name them) to
// match ref, or says precisely why it cannot.
func align(ref, in Input) (*probs.Matrix, error) {
	r, f := ref.File, in.File
	if f.Cols != r.Cols {
		return nil, fmt.Errorf("%s has %d label columns, %s has %d", in.Name, f.Cols, ref.Name, r.Cols)
	}
	if f.Rows != r.Rows {
		return nil, fmt.Errorf("%s has %d images, %s has %d", in.Name, f.Rows, ref.Name, r.Rows)
	}
	rowMap, err := permutation(ref.Name, in.Name, "image", r.IDs, f.IDs)
	if err != nil {
		return nil, err
	}
	var colMap []int
	if r.Labels != nil && f.Labels != nil {
		if colMap, err = permutation(ref.Name, in.Name, "attribute", r.Labels, f.Labels); err != nil {
			return nil, err
		}
	}
	if rowMap == nil && colMap == nil {
		return f.Matrix, nil
	}
	out := probs.NewMatrix(r.Rows, r.Cols)
	for i := range r.Rows {
		src := i
		if rowMap != nil {
			src = rowMap[i]
		}
		srow, drow := f.Row(src), out.Row(i)
		if colMap == nil {
			copy(drow, srow)
			continue
		}
		for j := range drow {
			drow[j] = srow[colMap[j]]
		}
	}
	return out, nil
}

// permutation returns, for each of want's entries, its position in have;
// nil when the order is already the same.
func permutation(refName, name, what string, want, have []string) ([]int, error) {
	if slices.Equal(want, have) {
		return nil, nil
	}
	pos := make(map[string]int, len(have))
	for i, v := range have {
		pos[v] = i
	}
	out := make([]int, len(want))
	for i, v := range want {
		p, ok := pos[v]
		if !ok {
			return nil, fmt.Errorf("%s has no %s %q, which %s has (row %d of its sidecar)", name, what, v, refName, i+1)
		}
		out[i] = p
	}
	return out, nil
}

// Combine merges inputs with method m. weights, when not nil, has one
// non-negative entry per input. The result takes the first input's row and
// column order; the others are aligned to it by image id and attribute id.
func Combine(inputs []Input, m Method, weights []float64) (*probs.File, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("ensemble: no input files")
	}
	if !slices.Contains(Methods, m) {
		return nil, fmt.Errorf("ensemble: unknown method %q (known: %v)", m, Methods)
	}
	if m == Weighted && weights == nil {
		return nil, fmt.Errorf("ensemble: method weighted needs one weight per file")
	}
	w := make([]float64, len(inputs))
	if weights == nil {
		for i := range w {
			w[i] = 1
		}
	} else {
		if len(weights) != len(inputs) {
			return nil, fmt.Errorf("ensemble: %d weights for %d files", len(weights), len(inputs))
		}
		copy(w, weights)
	}
	var sum float64
	for i, v := range w {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("ensemble: weight %v of %s must be a finite non-negative number", v, inputs[i].Name)
		}
		sum += v
	}
	if sum == 0 {
		return nil, fmt.Errorf("ensemble: weights sum to 0")
	}
	ref := inputs[0]
	labels := ref.File.Labels
	for _, in := range inputs[1:] {
		if labels == nil && in.File.Labels != nil {
			return nil, fmt.Errorf("ensemble: %s names its label columns but %s does not; give every file a labels sidecar or none", in.Name, ref.Name)
		}
	}
	rows, cols := ref.File.Rows, ref.File.Cols
	acc := make([]float64, rows*cols)
	for k, in := range inputs {
		m2, err := align(ref, in)
		if err != nil {
			return nil, fmt.Errorf("ensemble: %w", err)
		}
		for x, v := range m2.Data {
			if math.IsNaN(float64(v)) {
				return nil, fmt.Errorf("ensemble: %s: NaN at image %q, column %d", in.Name, ref.File.IDs[x/cols], x%cols)
			}
		}
		wk := w[k] / sum
		switch m {
		case Mean, Weighted:
			for x, v := range m2.Data {
				acc[x] += wk * float64(v)
			}
		case GeoMean:
			for x, v := range m2.Data {
				acc[x] += wk * math.Log(math.Min(math.Max(float64(v), 1e-7), 1))
			}
		case Rank:
			addRanks(acc, m2, wk)
		}
	}
	out := &probs.File{Matrix: probs.NewMatrix(rows, cols), IDs: slices.Clone(ref.File.IDs), Labels: slices.Clone(labels)}
	for x, v := range acc {
		if m == GeoMean {
			v = math.Exp(v)
		}
		out.Data[x] = float32(v)
	}
	return out, nil
}

// addRanks adds w·rank/rows of each value within its column to acc.
func addRanks(acc []float64, m *probs.Matrix, w float64) {
	var wg sync.WaitGroup
	next := make(chan int, m.Cols)
	for j := range m.Cols {
		next <- j
	}
	close(next)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := make([]int32, m.Rows)
			for j := range next {
				for i := range idx {
					idx[i] = int32(i)
				}
				sort.Slice(idx, func(a, b int) bool {
					return m.Data[int(idx[a])*m.Cols+j] < m.Data[int(idx[b])*m.Cols+j]
				})
				// Ties share the mean of the ranks they span (1-based), as
				// scipy.stats.rankdata does.
				for a := 0; a < len(idx); {
					b := a + 1
					v := m.Data[int(idx[a])*m.Cols+j]
					for b < len(idx) && m.Data[int(idx[b])*m.Cols+j] == v {
						b++
					}
					r := (float64(a+1) + float64(b)) / 2 / float64(m.Rows)
					for _, i := range idx[a:b] {
						acc[int(i)*m.Cols+j] += w * r
					}
					a = b
				}
			}
		}()
	}
	wg.Wait()
}

// Concat stacks files that hold disjoint images with the same columns,
// such as the out-of-fold parts of a K-fold run, into one file whose rows
// follow the inputs in order.
func Concat(inputs []Input) (*probs.File, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("ensemble: no input files")
	}
	ref := inputs[0]
	seen := map[string]string{}
	total := 0
	for _, in := range inputs {
		if in.File.Cols != ref.File.Cols {
			return nil, fmt.Errorf("ensemble: %s has %d label columns, %s has %d", in.Name, in.File.Cols, ref.Name, ref.File.Cols)
		}
		if (in.File.Labels == nil) != (ref.File.Labels == nil) || (in.File.Labels != nil && !slices.Equal(in.File.Labels, ref.File.Labels)) {
			return nil, fmt.Errorf("ensemble: %s and %s have different label columns", in.Name, ref.Name)
		}
		for _, id := range in.File.IDs {
			if prev, dup := seen[id]; dup {
				return nil, fmt.Errorf("ensemble: image %q is in both %s and %s; concat is for disjoint parts", id, prev, in.Name)
			}
			seen[id] = in.Name
		}
		total += in.File.Rows
	}
	out := &probs.File{Matrix: probs.NewMatrix(total, ref.File.Cols), Labels: slices.Clone(ref.File.Labels)}
	off := 0
	for _, in := range inputs {
		copy(out.Data[off:], in.File.Data)
		off += len(in.File.Data)
		out.IDs = append(out.IDs, in.File.IDs...)
	}
	return out, nil
}
