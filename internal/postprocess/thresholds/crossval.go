package thresholds

import (
	"fmt"
	"math"
)

// subset returns the problem restricted to rows, in that order.
func (p *Problem) subset(rows []int) *Problem {
	s := &Problem{Rows: len(rows), Cols: p.Cols, Probs: make([]float32, len(rows)*p.Cols),
		Truth: make([][]int32, len(rows)), GroupOf: p.GroupOf, Groups: p.Groups}
	for x, i := range rows {
		copy(s.Probs[x*p.Cols:(x+1)*p.Cols], p.Probs[i*p.Cols:(i+1)*p.Cols])
		s.Truth[x] = p.Truth[i]
	}
	return s
}

// CVResult is a rule's cross-validated score: searched on all folds but
// one, scored on the one left out, for each fold in turn.
type CVResult struct {
	Name string `json:"name"`
	// Mean and SD summarise PerFold.
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
	// PerFold is the held-out score of each fold.
	PerFold []float64 `json:"per_fold"`
}

// Choose returns the index in res of the rule to use: the one with the
// best held-out mean when held (CrossValidate's results for the same
// rules) is given, as the in-sample score flatters the rules with the most
// freedom; else the best in sample. Ties go to the earlier, simpler rule.
// res must not be empty.
func Choose(res []Result, held []CVResult) int {
	b := 0
	for r := range res {
		if held != nil {
			if held[r].Mean > held[b].Mean+tieTol {
				b = r
			}
		} else if res[r].Score > res[b].Score+tieTol {
			b = r
		}
	}
	return b
}

// CrossValidate measures how much each rule's search overfits: for each of
// the k folds (fold[i] in 0..k-1 for row i) it searches the rules on the
// other folds and scores them on this one. A rule whose in-sample gain over
// a simpler one vanishes here is fitting noise.
func CrossValidate(pr *Problem, fold []int, k int, rules []string, o Options) ([]CVResult, error) {
	if err := pr.check(); err != nil {
		return nil, err
	}
	if len(fold) != pr.Rows {
		return nil, fmt.Errorf("thresholds: %d fold entries for %d rows", len(fold), pr.Rows)
	}
	if k < 2 {
		return nil, fmt.Errorf("thresholds: cross-validation needs at least 2 folds, got %d", k)
	}
	var out []CVResult
	for f := range k {
		var in, held []int
		for i, v := range fold {
			if v < 0 || v >= k {
				return nil, fmt.Errorf("thresholds: row %d has fold %d, outside 0..%d", i, v, k-1)
			}
			if v == f {
				held = append(held, i)
			} else {
				in = append(in, i)
			}
		}
		if len(held) == 0 || len(in) == 0 {
			return nil, fmt.Errorf("thresholds: fold %d is empty or holds every row", f)
		}
		res, err := Search(pr.subset(in), rules, o)
		if err != nil {
			return nil, err
		}
		test := pr.subset(held)
		if out == nil {
			out = make([]CVResult, len(res))
			for r := range res {
				out[r].Name = res[r].Name
			}
		}
		for r := range res {
			v, _, err := Evaluate(test, &res[r].Rule, o.Score, o.Workers)
			if err != nil {
				return nil, err
			}
			out[r].PerFold = append(out[r].PerFold, v)
		}
	}
	for r := range out {
		var s, s2 float64
		for _, v := range out[r].PerFold {
			s += v
		}
		out[r].Mean = s / float64(k)
		for _, v := range out[r].PerFold {
			s2 += (v - out[r].Mean) * (v - out[r].Mean)
		}
		out[r].SD = math.Sqrt(s2 / float64(k-1))
	}
	return out, nil
}
