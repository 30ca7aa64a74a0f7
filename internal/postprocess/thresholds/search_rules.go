package thresholds

import (
	"fmt"
	"math"
	"slices"
)

// Search runs the named rules (see AllRules) on pr and returns one Result
// per rule, in the order of AllRules. The group rule starts from the global
// threshold, the label rule from the group thresholds (or the global one),
// and the topk and relative rules build on the most refined thresholds
// searched (label, else group, else global).
func Search(pr *Problem, rules []string, o Options) ([]Result, error) {
	want := map[string]bool{}
	for _, r := range rules {
		if !slices.Contains(AllRules, r) {
			return nil, fmt.Errorf("thresholds: unknown rule %q (known: %v)", r, AllRules)
		}
		want[r] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("thresholds: no rule requested (known: %v)", AllRules)
	}
	s, err := newSearcher(pr, o)
	if err != nil {
		return nil, err
	}
	var out []Result
	add := func(name string, rule Rule) error {
		rule.AtLeastOne = o.AtLeastOne
		var v, m float64
		if rule.Bounds == nil {
			v, m = s.evalSparse(rule.Thresholds, rule.Relative)
		} else {
			var err error
			if v, m, err = Evaluate(pr, &rule, o.Score, s.workers); err != nil {
				return err
			}
		}
		if math.IsNaN(v) {
			return fmt.Errorf("thresholds: rule %s scores NaN; are there NaN probabilities?", name)
		}
		out = append(out, Result{Name: name, Score: v, MeanLabels: m, Rule: rule})
		return nil
	}
	gScore, gMean := s.globalSweep()
	global := s.uniform(o.Grid[argBest(gScore)])
	best := global
	if want[Global] {
		if err := add(Global, Rule{Thresholds: global}); err != nil {
			return nil, err
		}
	}
	var group []float64
	if want[Group] || want[Label] {
		group = s.groupAscent(global)
		best = group
		if want[Group] {
			if err := add(Group, Rule{Thresholds: group}); err != nil {
				return nil, err
			}
		}
	}
	if want[Label] {
		label := s.labelAscent(group)
		best = label
		if err := add(Label, Rule{Thresholds: label}); err != nil {
			return nil, err
		}
	}
	if want[TopK] {
		b := o.Bounds
		if b == nil {
			b = s.topkAscent(best)
		}
		if err := add(TopK, Rule{Thresholds: best, Bounds: b}); err != nil {
			return nil, err
		}
	}
	if want[Relative] {
		r := o.Grid[argBest(s.relativeSweep(best))]
		if err := add(Relative, Rule{Thresholds: best, Relative: r}); err != nil {
			return nil, err
		}
	}
	if want[Target] {
		target := o.TargetMean
		if target <= 0 {
			for _, t := range pr.Truth {
				target += float64(len(t))
			}
			target /= float64(max(pr.Rows, 1))
		}
		k := 0
		for x, m := range gMean {
			if math.Abs(m-target) < math.Abs(gMean[k]-target)-1e-12 {
				k = x
			}
		}
		if err := add(Target, Rule{Thresholds: s.uniform(o.Grid[k])}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Best returns the highest-scoring result; ties go to the earlier (simpler)
// rule.
func Best(rs []Result) *Result {
	if len(rs) == 0 {
		return nil
	}
	return &rs[Choose(rs, nil)]
}

// relativeSweep scores every grid value r as the relative factor on top of
// thresholds th.
func (s *searcher) relativeSweep(th []float64) []float64 {
	thr := make([]float32, len(th))
	for j, t := range th {
		thr[j] = float32(t)
	}
	lo := s.grid32[0]
	score, _ := s.sweep(func(i int, bins []uint16, tru []bool) (int, int, []uint16, []bool) {
		mx := s.rowMax[i]
		for _, e := range s.ents[s.rowOff[i]:s.rowOff[i+1]] {
			if e.p < thr[e.col] {
				continue
			}
			q := e.p / mx
			if q < lo {
				continue
			}
			b := s.bin(q)
			// Insertion keeps bins descending; lists are short and nearly sorted.
			bins = append(bins, uint16(b))
			tru = append(tru, e.tru)
			for x := len(bins) - 1; x > 0 && bins[x] > bins[x-1]; x-- {
				bins[x], bins[x-1] = bins[x-1], bins[x]
				tru[x], tru[x-1] = tru[x-1], tru[x]
			}
		}
		return 0, 0, bins, tru
	})
	return score
}
