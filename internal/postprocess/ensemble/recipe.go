package ensemble

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"imet/internal/postprocess/probs"
)

// Blend is Combine followed, for the rank method, by MatchQuantiles onto
// ref, which puts the rank scores back on ref's probability scale (ref is
// required then, and ignored otherwise). Every place that combines test
// probabilities the way a cross-validation or an ensemble plan decided
// (imet cv, imet cv --plan, a bundle's predict) goes through it, so they
// give the same bytes from the same inputs.
func Blend(inputs []Input, m Method, weights []float64, ref *Input) (*probs.File, error) {
	out, err := Combine(inputs, m, weights)
	if err != nil || m != Rank {
		return out, err
	}
	if ref == nil {
		return nil, fmt.Errorf("ensemble: a rank ensemble needs reference probabilities to map its scores onto")
	}
	return MatchQuantiles(Input{Name: "the rank ensemble", File: out}, *ref)
}

// QuantileTable reduces ref to at most n rows: row i of column j is the
// column's quantile at i/(n-1), interpolated linearly between its sorted
// values. MatchQuantiles only looks at each column's sorted values, so the
// table stands in for ref at a fraction of its size (a bundle carries it
// instead of every out-of-fold row). With ref's rows at most n, ref itself
// is returned.
func QuantileTable(ref *probs.File, n int) (*probs.File, error) {
	if n < 2 {
		return nil, fmt.Errorf("ensemble: a quantile table needs at least 2 rows, not %d", n)
	}
	m := ref.Rows
	if m <= n {
		return ref, nil
	}
	if x := firstNaN(ref.Data); x >= 0 {
		return nil, fmt.Errorf("ensemble: NaN at row %d, column %d of the quantile reference", x/ref.Cols+1, x%ref.Cols)
	}
	out := &probs.File{Matrix: probs.NewMatrix(n, ref.Cols), IDs: make([]string, n), Labels: slices.Clone(ref.Labels)}
	for i := range out.IDs {
		out.IDs[i] = "q" + strconv.Itoa(i)
	}
	col := make([]float32, m)
	for j := range ref.Cols {
		for i := range m {
			col[i] = ref.Data[i*ref.Cols+j]
		}
		slices.Sort(col)
		for i := range n {
			pos := float64(i) * float64(m-1) / float64(n-1)
			lo := int(pos)
			v := float64(col[lo])
			if f := pos - float64(lo); f > 0 && lo+1 < m {
				v += f * (float64(col[lo+1]) - v)
			}
			out.Data[i*ref.Cols+j] = float32(v)
		}
	}
	return out, nil
}

// SearchWeights tries every weighting of inputs on a grid of the simplex
// (weights multiples of step, summing to 1) and returns the one whose
// weighted mean scores highest under score, with that score; the first
// found wins ties, so equal weights are not preferred over a better
// one-sided mix, but the search is deterministic. The grid has
// C(1/step + n - 1, n - 1) points; more than MaxWeightPoints is refused.
func SearchWeights(inputs []Input, step float64, score func(*probs.File) (float64, error)) ([]float64, float64, error) {
	if len(inputs) == 0 {
		return nil, 0, fmt.Errorf("ensemble: no input files")
	}
	if !(step > 0 && step <= 1) {
		return nil, 0, fmt.Errorf("ensemble: weight step %v: want a number in (0, 1]", step)
	}
	units := int(math.Round(1 / step))
	if math.Abs(float64(units)*step-1) > 1e-9 {
		return nil, 0, fmt.Errorf("ensemble: weight step %v does not divide 1", step)
	}
	if p := gridPoints(units, len(inputs)); p > MaxWeightPoints {
		return nil, 0, fmt.Errorf("ensemble: %d files with weight step %v make %d weightings to try (at most %d): take a larger step", len(inputs), step, p, MaxWeightPoints)
	}
	var best []float64
	bestScore := math.Inf(-1)
	parts := make([]int, len(inputs))
	var walk func(k, left int) error
	walk = func(k, left int) error {
		if k == len(parts)-1 {
			parts[k] = left
			w := make([]float64, len(parts))
			for i, p := range parts {
				w[i] = float64(p) / float64(units)
			}
			f, err := Combine(inputs, Weighted, w)
			if err != nil {
				return err
			}
			s, err := score(f)
			if err != nil {
				return err
			}
			if s > bestScore {
				best, bestScore = w, s
			}
			return nil
		}
		for p := left; p >= 0; p-- {
			parts[k] = p
			if err := walk(k+1, left-p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(0, units); err != nil {
		return nil, 0, err
	}
	return best, bestScore, nil
}

// MaxWeightPoints bounds SearchWeights' grid: each point combines every
// input and scores the result.
const MaxWeightPoints = 5000

// gridPoints is C(units+n-1, n-1), saturating above MaxWeightPoints.
func gridPoints(units, n int) int {
	c := 1
	for i := 1; i < n; i++ {
		c = c * (units + i) / i
		if c > MaxWeightPoints {
			return c
		}
	}
	return c
}
