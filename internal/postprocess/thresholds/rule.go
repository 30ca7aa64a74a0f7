// Package thresholds turns label probabilities into label sets, and searches
// out-of-fold probabilities for the decision rule that maximises the
// samples-averaged F-beta (F2 in iMet).
//
// # The decision rule
//
// Every rule the searches produce is one Rule, applied to an image's row of
// probabilities p in this order:
//
//  1. label j passes when p[j] >= Thresholds[j] and, if Relative > 0,
//     p[j] >= Relative·max(p) (the image's own scale: a confident image
//     gets a higher bar);
//  2. within each label group, at most Bounds.Max passing labels are kept
//     (the most probable; Max 0 means no limit), and when fewer than
//     Bounds.Min pass, the group's most probable remaining labels are added
//     up to Min;
//  3. if nothing is left and AtLeastOne is set, the image's single most
//     probable label is predicted, because an empty row scores 0.
//
// Comparisons are made in float32, the precision of the probabilities, so
// that a threshold file gives the same labels here and in NumPy. Ties in
// probability are broken by the lower column index.
//
// # The searches
//
// Search runs the requested rules on a grid of candidate thresholds: one
// global threshold; one per label group (coordinate ascent over groups);
// one per label (coordinate ascent over labels, shrunk toward the group
// value for labels with few positives, which otherwise overfit); top-k
// bounds per group; a relative factor on top of the best thresholds; and the
// global threshold whose mean label count per image is closest to a target.
// Sweeps are sort- and histogram-based: each costs O(entries + grid), not
// O(entries × grid), where entries are the probabilities at or above the
// lowest candidate. CrossValidate searches on all folds but one and scores
// the one left out, which shows how much of a rule's gain is overfitting.
//
// A File stores the searched rules with the label ids and groups they were
// searched for; File.Check refuses to apply them to other labels.
package thresholds

import (
	"math"
	"slices"
)

// Bounds limits how many labels of one group an image receives.
type Bounds struct {
	Min int `json:"min" yaml:"min" doc:"Fewest labels of the group per image."`
	// Max 0 means no upper limit.
	Max int `json:"max" yaml:"max" doc:"Most labels of the group per image; 0 means no limit."`
}

// Rule is a decision rule over label columns; see the package comment.
type Rule struct {
	// Thresholds has one entry per label column.
	Thresholds []float64 `json:"thresholds"`
	// Relative, when above 0, also requires p >= Relative·max p.
	Relative float64 `json:"relative,omitempty"`
	// Bounds has one entry per group, or is nil for no bounds.
	Bounds []Bounds `json:"bounds,omitempty"`
	// AtLeastOne predicts the best label when nothing else is predicted.
	AtLeastOne bool `json:"at_least_one"`
}

// Predictor applies a Rule to rows of probabilities. It keeps scratch space,
// so one Predictor must not be used by two goroutines at once.
type Predictor struct {
	rule    *Rule
	thr     []float32
	rel     float32
	groupOf []int
	nGroups int
	byGroup [][]int
	top     []int
	bar     float32
}

// NewPredictor prepares rule for columns whose groups are groupOf (group
// indices 0..nGroups-1).
func NewPredictor(rule *Rule, groupOf []int, nGroups int) *Predictor {
	p := &Predictor{rule: rule, groupOf: groupOf, nGroups: nGroups, rel: float32(rule.Relative)}
	p.thr = make([]float32, len(rule.Thresholds))
	for j, t := range rule.Thresholds {
		p.thr[j] = float32(t)
	}
	p.byGroup = make([][]int, nGroups)
	return p
}

// Predict appends to dst the columns predicted for one image's row, in
// increasing column order, and returns it.
func (p *Predictor) Predict(row []float32, dst []int) []int {
	start := len(dst)
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	var bar float32
	if p.rel > 0 {
		bar = p.rel * row[best]
	}
	p.bar = bar
	if p.rule.Bounds == nil {
		for j, v := range row {
			if v >= p.thr[j] && (p.rel <= 0 || v >= bar) {
				dst = append(dst, j)
			}
		}
	} else {
		// Only the passing labels are sorted, and only the Min best others
		// are looked for: sorting whole groups per image was most of the
		// cost of scoring a top-k rule.
		for g := range p.byGroup {
			p.byGroup[g] = p.byGroup[g][:0]
		}
		for j, v := range row {
			if v >= p.thr[j] && (p.rel <= 0 || v >= bar) {
				p.byGroup[p.groupOf[j]] = append(p.byGroup[p.groupOf[j]], j)
			}
		}
		byProb := func(a, c int) int {
			switch {
			case row[a] > row[c]:
				return -1
			case row[a] < row[c]:
				return 1
			}
			return a - c
		}
		for g, pass := range p.byGroup {
			b := p.rule.Bounds[g]
			if b.Max > 0 && len(pass) > b.Max {
				slices.SortFunc(pass, byProb)
				pass = pass[:b.Max]
			}
			dst = append(dst, pass...)
			if need := b.Min - len(pass); need > 0 {
				dst = p.bestOthers(row, g, need, dst, byProb)
			}
		}
		slices.Sort(dst[start:])
	}
	if len(dst) == start && p.rule.AtLeastOne && len(row) > 0 {
		dst = append(dst, best)
	}
	return dst
}

// bestOthers appends the need most probable labels of group g that do not
// pass the rule.
func (p *Predictor) bestOthers(row []float32, g, need int, dst []int, byProb func(a, c int) int) []int {
	top := p.top[:0]
	for j, v := range row {
		if p.groupOf[j] != g || (v >= p.thr[j] && (p.rel <= 0 || v >= p.bar)) {
			continue
		}
		if len(top) == need && byProb(j, top[need-1]) >= 0 {
			continue
		}
		if len(top) < need {
			top = append(top, j)
		} else {
			top[need-1] = j
		}
		for x := len(top) - 1; x > 0 && byProb(top[x], top[x-1]) < 0; x-- {
			top[x], top[x-1] = top[x-1], top[x]
		}
	}
	p.top = top
	return append(dst, top...)
}

// round6 keeps thresholds to six decimals, so that files stay readable and a
// value means the same float32 in every consumer.
func round6(x float64) float64 { return math.Floor(x*1e6+0.5) / 1e6 }
