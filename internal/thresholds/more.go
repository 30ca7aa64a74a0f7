package thresholds

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"imet/internal/fbeta"
)

// Evaluate applies rule to every row of pr and returns the mean score and
// the mean number of labels predicted per image. It is the exact reference
// the fast sweeps are tested against, and what Search reports.
func Evaluate(pr *Problem, rule *Rule, score fbeta.Options, workers int) (mean, meanLabels float64, err error) {
	if err := pr.check(); err != nil {
		return 0, 0, err
	}
	if len(rule.Thresholds) != pr.Cols {
		return 0, 0, fmt.Errorf("thresholds: rule has %d thresholds for %d columns", len(rule.Thresholds), pr.Cols)
	}
	if rule.Bounds != nil && len(rule.Bounds) != len(pr.Groups) {
		return 0, 0, fmt.Errorf("thresholds: rule has %d group bounds for %d groups", len(rule.Bounds), len(pr.Groups))
	}
	s := &searcher{pr: pr, workers: workers}
	if s.workers <= 0 {
		s.workers = 2
	}
	chunks := s.split(pr.Rows)
	type part struct{ S, C, N float64 }
	parts := make([]part, len(chunks))
	var wg sync.WaitGroup
	for c, ch := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pd := NewPredictor(rule, pr.GroupOf, len(pr.Groups))
			mark := make([]bool, pr.Cols)
			var buf []int
			var pt part
			for i := ch[0]; i < ch[1]; i++ {
				buf = pd.Predict(pr.Probs[i*pr.Cols:(i+1)*pr.Cols], buf[:0])
				for _, j := range pr.Truth[i] {
					mark[j] = true
				}
				tp := 0
				for _, j := range buf {
					if mark[j] {
						tp++
					}
				}
				for _, j := range pr.Truth[i] {
					mark[j] = false
				}
				if f, ok := score.Row(tp, len(buf), len(pr.Truth[i])); ok {
					pt.S += f
					pt.C++
				}
				pt.N += float64(len(buf))
			}
			parts[c] = pt
		}()
	}
	wg.Wait()
	var t part
	for _, p := range parts {
		t.S += p.S
		t.C += p.C
		t.N += p.N
	}
	if t.C > 0 {
		mean = t.S / t.C
	}
	return mean, t.N / float64(max(pr.Rows, 1)), nil
}

// evalSparse is Evaluate for rules without bounds whose thresholds are
// all at or above the lowest grid value, computed from the sparse entries
// (nothing below the grid can pass). Search uses it to score rules cheaply;
// tests hold it to Evaluate.
func (s *searcher) evalSparse(th []float64, rel float64) (mean, meanLabels float64) {
	thr := make([]float32, len(th))
	for j, t := range th {
		thr[j] = float32(t)
	}
	r32 := float32(rel)
	chunks := s.split(s.pr.Rows)
	sums := make([][3]float64, len(chunks))
	var wg sync.WaitGroup
	for c, ch := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var S, C, N float64
			for i := ch[0]; i < ch[1]; i++ {
				bar := r32 * s.rowMax[i]
				tp, np := 0, 0
				for _, e := range s.ents[s.rowOff[i]:s.rowOff[i+1]] {
					if e.p >= thr[e.col] && (r32 <= 0 || e.p >= bar) {
						np++
						if e.tru {
							tp++
						}
					}
				}
				f, cc, n := s.score(i, tp, np)
				S += f
				C += cc
				N += float64(n)
			}
			sums[c] = [3]float64{S, C, N}
		}()
	}
	wg.Wait()
	var S, C, N float64
	for _, v := range sums {
		S += v[0]
		C += v[1]
		N += v[2]
	}
	if C > 0.5 {
		mean = S / C
	}
	return mean, N / float64(max(s.pr.Rows, 1))
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

// topkAscent searches per-group bounds on top of thresholds th by
// coordinate ascent over groups, each candidate scored exactly.
func (s *searcher) topkAscent(th []float64) []Bounds {
	pr := s.pr
	NG := len(pr.Groups)
	maxK, minK := max(s.o.MaxK, 1), max(s.o.MinK, 0)
	n := pr.Rows
	thr := make([]float32, len(th))
	for j, t := range th {
		thr[j] = float32(t)
	}
	// Per image and group: passing count and true count, true flags of the
	// first maxK passing labels by probability, and of the first minK
	// non-passing ones (taken from the dense row: they may lie below the
	// grid).
	passCnt := make([]int32, n*NG)
	passTp := make([]int32, n*NG)
	passTru := make([]bool, n*NG*maxK)
	npTru := make([]bool, n*NG*max(minK, 1))
	npCnt := make([]int8, n*NG)
	var wg sync.WaitGroup
	for _, ch := range s.split(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mark := make([]bool, pr.Cols)
			type cand struct {
				p   float32
				col int
			}
			pass := make([][]cand, NG)
			np := make([][]cand, NG)
			less := func(a, b cand) int {
				switch {
				case a.p > b.p:
					return -1
				case a.p < b.p:
					return 1
				}
				return a.col - b.col
			}
			for i := ch[0]; i < ch[1]; i++ {
				for _, j := range pr.Truth[i] {
					mark[j] = true
				}
				for g := range NG {
					pass[g], np[g] = pass[g][:0], np[g][:0]
				}
				row := pr.Probs[i*pr.Cols : (i+1)*pr.Cols]
				for j, v := range row {
					g := pr.GroupOf[j]
					if v >= thr[j] {
						pass[g] = append(pass[g], cand{v, j})
						continue
					}
					if minK == 0 {
						continue
					}
					// Keep the minK most probable non-passing labels.
					c := cand{v, j}
					l := np[g]
					if len(l) == minK && less(c, l[minK-1]) >= 0 {
						continue
					}
					if len(l) < minK {
						l = append(l, c)
					} else {
						l[minK-1] = c
					}
					for x := len(l) - 1; x > 0 && less(l[x], l[x-1]) < 0; x-- {
						l[x], l[x-1] = l[x-1], l[x]
					}
					np[g] = l
				}
				for g := range NG {
					slices.SortFunc(pass[g], less)
					k := i*NG + g
					passCnt[k] = int32(len(pass[g]))
					for x, c := range pass[g] {
						if mark[c.col] {
							passTp[k]++
							if x < maxK {
								passTru[k*maxK+x] = true
							}
						}
					}
					npCnt[k] = int8(len(np[g]))
					for x, c := range np[g] {
						npTru[k*max(minK, 1)+x] = mark[c.col]
					}
				}
				for _, j := range pr.Truth[i] {
					mark[j] = false
				}
			}
		}()
	}
	wg.Wait()
	groupCounts := func(k int, b Bounds) (tp, np int) {
		cnt := int(passCnt[k])
		if b.Max == 0 || b.Max >= cnt {
			tp, np = int(passTp[k]), cnt
		} else {
			np = b.Max
			for x := range np {
				if passTru[k*maxK+x] {
					tp++
				}
			}
		}
		for x := 0; np < b.Min && x < int(npCnt[k]); x++ {
			np++
			if npTru[k*max(minK, 1)+x] {
				tp++
			}
		}
		return tp, np
	}
	bounds := make([]Bounds, NG)
	curTp := make([]int32, n*NG)
	curNp := make([]int32, n*NG)
	for k := range curTp {
		tp, np := groupCounts(k, Bounds{})
		curTp[k], curNp[k] = int32(tp), int32(np)
	}
	var cands []Bounds
	for mx := 0; mx <= maxK; mx++ {
		for mn := 0; mn <= minK; mn++ {
			if mx == 0 || mn <= mx {
				cands = append(cands, Bounds{Min: mn, Max: mx})
			}
		}
	}
	scoreOf := func(g int, b Bounds) float64 {
		chunks := s.split(n)
		sums := make([][2]float64, len(chunks))
		var wg sync.WaitGroup
		for c, ch := range chunks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var S, C float64
				for i := ch[0]; i < ch[1]; i++ {
					tp, np := 0, 0
					for h := range NG {
						if h != g {
							tp += int(curTp[i*NG+h])
							np += int(curNp[i*NG+h])
						}
					}
					gt, gn := groupCounts(i*NG+g, b)
					f, cc, _ := s.score(i, tp+gt, np+gn)
					S += f
					C += cc
				}
				sums[c] = [2]float64{S, C}
			}()
		}
		wg.Wait()
		var S, C float64
		for _, v := range sums {
			S += v[0]
			C += v[1]
		}
		if C < 0.5 {
			return 0
		}
		return S / C
	}
	for r := 0; r < max(s.o.Rounds, 1); r++ {
		for g := range NG {
			best, bestB := scoreOf(g, bounds[g]), bounds[g]
			for _, b := range cands {
				if v := scoreOf(g, b); v > best+tieTol {
					best, bestB = v, b
				}
			}
			bounds[g] = bestB
			for i := range n {
				tp, np := groupCounts(i*NG+g, bestB)
				curTp[i*NG+g], curNp[i*NG+g] = int32(tp), int32(np)
			}
		}
	}
	return bounds
}

// Search runs the named rules (see AllRules) on pr and returns one Result
// per rule, in the order of AllRules. The group rule starts from the global
// threshold, the label rule from the group thresholds (or the global one),
// and the topk and relative rules build on the best thresholds found.
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
		if err := add(TopK, Rule{Thresholds: best, Bounds: s.topkAscent(best)}); err != nil {
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
	var b *Result
	for i := range rs {
		if b == nil || rs[i].Score > b.Score+tieTol {
			b = &rs[i]
		}
	}
	return b
}
