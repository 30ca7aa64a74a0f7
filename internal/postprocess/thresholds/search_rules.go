package thresholds

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// ruleKind is one entry of the table of rules: its name, what it does,
// and how it is searched from the state the rules before it left.
type ruleKind struct {
	name, doc string
	search    func(st *searchState) (Rule, error)
}

// rules is the one table of threshold rules, in the order Search runs them
// (a rule may build on the ones before it): AllRules, error messages,
// command help and the docs read their names from it. Adding a rule is a
// row here and its search function.
var rules = []ruleKind{
	{Global, "one threshold for every label", func(st *searchState) (Rule, error) {
		return Rule{Thresholds: st.global}, nil
	}},
	{Group, "one threshold per label group (culture, tag), from the global one", func(st *searchState) (Rule, error) {
		return Rule{Thresholds: st.groups()}, nil
	}},
	{Label, "one threshold per label, shrunk toward its group's, from the group ones", func(st *searchState) (Rule, error) {
		st.best = st.s.labelAscent(st.groups())
		return Rule{Thresholds: st.best}, nil
	}},
	{TopK, "the most refined thresholds with per-group bounds on the label count", func(st *searchState) (Rule, error) {
		b := st.o.Bounds
		if b == nil {
			b = st.s.topkAscent(st.best)
		}
		return Rule{Thresholds: st.best, Bounds: b}, nil
	}},
	{Relative, "the most refined thresholds, and a label also needs a share of the image's highest probability", func(st *searchState) (Rule, error) {
		r := st.o.Grid[argBest(st.s.relativeSweep(st.best))]
		return Rule{Thresholds: st.best, Relative: r}, nil
	}},
	{Target, "the global threshold whose mean label count is the truth's (or target_mean)", func(st *searchState) (Rule, error) {
		target := st.o.TargetMean
		if target <= 0 {
			for _, t := range st.pr.Truth {
				target += float64(len(t))
			}
			target /= float64(max(st.pr.Rows, 1))
		}
		k := 0
		for x, m := range st.gMean {
			if math.Abs(m-target) < math.Abs(st.gMean[k]-target)-1e-12 {
				k = x
			}
		}
		return Rule{Thresholds: st.s.uniform(st.o.Grid[k])}, nil
	}},
}

// AllRules lists every rule Search knows, in the order it runs them.
var AllRules = func() []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.name
	}
	return out
}()

// RuleDoc is a one-line description of the named rule ("" if unknown).
func RuleDoc(name string) string {
	for _, r := range rules {
		if r.name == name {
			return r.doc
		}
	}
	return ""
}

// searchState is what the rules share while Search runs: the global sweep,
// the group thresholds once some rule needed them, and the most refined
// thresholds so far (label, else group, else global), which topk and
// relative build on.
type searchState struct {
	s             *searcher
	pr            *Problem
	o             Options
	gMean         []float64
	global, group []float64
	best          []float64
}

func (st *searchState) groups() []float64 {
	if st.group == nil {
		st.group = st.s.groupAscent(st.global)
		st.best = st.group
	}
	return st.group
}

// Search runs the named rules (see AllRules) on pr and returns one Result
// per rule, in the order of AllRules. The group rule starts from the global
// threshold, the label rule from the group thresholds (or the global one),
// and the topk and relative rules build on the most refined thresholds
// searched (label, else group, else global).
func Search(pr *Problem, names []string, o Options) ([]Result, error) {
	want := map[string]bool{}
	for _, r := range names {
		if !slices.Contains(AllRules, r) {
			return nil, fmt.Errorf("thresholds: unknown rule %q (known: %s)", r, strings.Join(AllRules, ", "))
		}
		want[r] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("thresholds: no rule requested (known: %s)", strings.Join(AllRules, ", "))
	}
	s, err := newSearcher(pr, o)
	if err != nil {
		return nil, err
	}
	gScore, gMean := s.globalSweep()
	st := &searchState{s: s, pr: pr, o: o, gMean: gMean}
	st.global = s.uniform(o.Grid[argBest(gScore)])
	st.best = st.global
	// The group thresholds are searched when group or label is asked for,
	// before topk and relative, exactly as the rules' order implies.
	if want[Group] || want[Label] {
		st.groups()
	}
	var out []Result
	for _, k := range rules {
		if !want[k.name] {
			continue
		}
		rule, err := k.search(st)
		if err != nil {
			return nil, err
		}
		rule.AtLeastOne = o.AtLeastOne
		var v, m float64
		if rule.Bounds == nil {
			v, m = s.evalSparse(rule.Thresholds, rule.Relative)
		} else if v, m, err = Evaluate(pr, &rule, o.Score, s.workers); err != nil {
			return nil, err
		}
		if math.IsNaN(v) {
			return nil, fmt.Errorf("thresholds: rule %s scores NaN; are there NaN probabilities?", k.name)
		}
		out = append(out, Result{Name: k.name, Score: v, MeanLabels: m, Rule: rule})
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
