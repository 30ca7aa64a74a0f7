package thresholds

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"imet/internal/data/simprobs"
	"imet/internal/postprocess/fbeta"
)

// smallProblem is a generated problem small enough for brute force.
func smallProblem(rows int, seed uint64) *Problem {
	groupOf := []int{0, 0, 0, 1, 1, 1, 1, 1, 2, 2}
	sp := simprobs.Generate(rows, groupOf, 3, seed)
	return &Problem{Rows: sp.Rows, Cols: sp.Cols, Probs: sp.Probs, Truth: sp.Truth,
		GroupOf: groupOf, Groups: []string{"a", "b", "c"}}
}

func smallOptions(atLeastOne bool, empty fbeta.BothEmpty) Options {
	o := DefaultOptions()
	o.Grid = LinearGrid(0.05, 0.95)
	o.AtLeastOne = atLeastOne
	o.Score.BothEmpty = empty
	o.Shrink = 0
	o.MaxK, o.MinK = 4, 2
	return o
}

// variants covers the scoring rules that change the sweeps' bookkeeping.
var variants = []struct {
	atLeastOne bool
	empty      fbeta.BothEmpty
}{{true, fbeta.BothEmptyZero}, {false, fbeta.BothEmptyZero}, {false, fbeta.BothEmptyOne}, {false, fbeta.BothEmptySkip}}

func eval(t *testing.T, pr *Problem, r Rule, o Options) float64 {
	t.Helper()
	r.AtLeastOne = o.AtLeastOne
	v, _, err := Evaluate(pr, &r, o.Score, 2)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGlobalSweepMatchesEvaluate(t *testing.T) {
	pr := smallProblem(200, 1)
	// Rows with no truth exercise the empty-row rules.
	pr.Truth[3], pr.Truth[7] = nil, nil
	for _, v := range variants {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			o := smallOptions(v.atLeastOne, v.empty)
			s, err := newSearcher(pr, o)
			if err != nil {
				t.Fatal(err)
			}
			score, _ := s.globalSweep()
			for k, g := range o.Grid {
				want := eval(t, pr, Rule{Thresholds: s.uniform(g)}, o)
				if math.Abs(score[k]-want) > 1e-12 {
					t.Fatalf("threshold %v: sweep %.15f, evaluate %.15f", g, score[k], want)
				}
			}
			rel := s.relativeSweep(s.uniform(o.Grid[1]))
			for k, r := range o.Grid {
				want := eval(t, pr, Rule{Thresholds: s.uniform(o.Grid[1]), Relative: r}, o)
				if math.Abs(rel[k]-want) > 1e-12 {
					t.Fatalf("relative %v: sweep %.15f, evaluate %.15f", r, rel[k], want)
				}
				r2 := Rule{Thresholds: s.uniform(o.Grid[1]), Relative: r, AtLeastOne: o.AtLeastOne}
				sp, sm := s.evalSparse(r2.Thresholds, r2.Relative)
				dv, dm, _ := Evaluate(pr, &r2, o.Score, 2)
				if math.Abs(sp-dv) > 1e-12 || math.Abs(sm-dm) > 1e-12 {
					t.Fatalf("relative %v: sparse evaluation %v/%v, dense %v/%v", r, sp, sm, dv, dm)
				}
			}
		})
	}
}

// bruteLabels is coordinate ascent over labels done the slow way.
func bruteLabels(t *testing.T, pr *Problem, start []float64, o Options) []float64 {
	th := slices.Clone(start)
	for range o.Rounds {
		for j := range th {
			best, bestT := -1.0, 0.0
			for _, g := range o.Grid {
				th[j] = g
				if v := eval(t, pr, Rule{Thresholds: th}, o); v > best+tieTol {
					best, bestT = v, g
				}
			}
			th[j] = bestT
		}
	}
	return th
}

func TestLabelAscentMatchesBruteForce(t *testing.T) {
	pr := smallProblem(150, 2)
	pr.Truth[0] = nil
	for _, v := range variants {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			o := smallOptions(v.atLeastOne, v.empty)
			s, err := newSearcher(pr, o)
			if err != nil {
				t.Fatal(err)
			}
			start := s.uniform(0.3)
			got := s.labelAscent(start)
			want := bruteLabels(t, pr, start, o)
			if !slices.Equal(got, want) {
				t.Fatalf("label thresholds\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestGroupAscentIsCoordinateOptimal(t *testing.T) {
	pr := smallProblem(300, 3)
	o := smallOptions(true, fbeta.BothEmptyZero)
	o.Rounds = 3
	s, _ := newSearcher(pr, o)
	th := s.groupAscent(s.uniform(0.5))
	base := eval(t, pr, Rule{Thresholds: th}, o)
	for g := range pr.Groups {
		for _, c := range o.Grid {
			alt := slices.Clone(th)
			for j := range alt {
				if pr.GroupOf[j] == g {
					alt[j] = c
				}
			}
			if v := eval(t, pr, Rule{Thresholds: alt}, o); v > base+1e-9 {
				// Coordinate ascent may stop short of a coordinate optimum only
				// if rounds run out; three rounds settle this problem.
				t.Errorf("group %d at %v scores %.6f > %.6f", g, c, v, base)
			}
		}
	}
}

func TestTopKIsCoordinateOptimal(t *testing.T) {
	pr := smallProblem(300, 4)
	for _, v := range variants {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			o := smallOptions(v.atLeastOne, v.empty)
			o.Rounds = 3
			s, _ := newSearcher(pr, o)
			th := s.uniform(0.1)
			b := s.topkAscent(th)
			base := eval(t, pr, Rule{Thresholds: th, Bounds: b}, o)
			noBounds := eval(t, pr, Rule{Thresholds: th}, o)
			if base < noBounds-1e-12 {
				t.Fatalf("bounds %v score %.6f below no bounds %.6f", b, base, noBounds)
			}
			for g := range pr.Groups {
				for mx := 0; mx <= o.MaxK; mx++ {
					for mn := 0; mn <= o.MinK; mn++ {
						if mx > 0 && mn > mx {
							continue
						}
						alt := slices.Clone(b)
						alt[g] = Bounds{Min: mn, Max: mx}
						if v := eval(t, pr, Rule{Thresholds: th, Bounds: alt}, o); v > base+1e-9 {
							t.Errorf("group %d bounds %v score %.6f > %.6f with %v", g, alt[g], v, base, b)
						}
					}
				}
			}
		})
	}
}

func TestSearchRules(t *testing.T) {
	pr := smallProblem(400, 5)
	o := smallOptions(true, fbeta.BothEmptyZero)
	o.Shrink = 10
	rs, err := Search(pr, AllRules, o)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Result{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	if len(byName) != len(AllRules) {
		t.Fatalf("got rules %v", rs)
	}
	// Each rule searches a space containing the one it starts from (the
	// label rule only without shrinkage), so it cannot do worse.
	if byName[Group].Score < byName[Global].Score-1e-12 {
		t.Errorf("group %.6f < global %.6f", byName[Group].Score, byName[Global].Score)
	}
	if byName[TopK].Score < byName[Label].Score-1e-12 || byName[Relative].Score < byName[Label].Score-1e-12 {
		t.Errorf("topk %.6f / relative %.6f below label %.6f", byName[TopK].Score, byName[Relative].Score, byName[Label].Score)
	}
	// Target: no grid threshold has a mean label count closer to the truth's.
	var target float64
	for _, tr := range pr.Truth {
		target += float64(len(tr))
	}
	target /= float64(pr.Rows)
	gap := math.Abs(byName[Target].MeanLabels - target)
	for _, g := range o.Grid {
		r := Rule{Thresholds: make([]float64, pr.Cols), AtLeastOne: true}
		for j := range r.Thresholds {
			r.Thresholds[j] = g
		}
		_, m, _ := Evaluate(pr, &r, o.Score, 2)
		if math.Abs(m-target) < gap-1e-12 {
			t.Errorf("threshold %v gives mean %.3f, closer to %.3f than the target rule's %.3f", g, m, target, byName[Target].MeanLabels)
		}
	}
	// Shrinkage keeps rare labels between their own optimum and the group's.
	if _, err := Search(pr, []string{"nope"}, o); err == nil {
		t.Error("unknown rule accepted")
	}
}

func TestPredictor(t *testing.T) {
	groupOf := []int{0, 0, 0, 1, 1, 1}
	row := []float32{0.9, 0.5, 0.4, 0.3, 0.2, 0.05}
	th := []float64{0.45, 0.45, 0.45, 0.25, 0.25, 0.25}
	cases := []struct {
		name string
		rule Rule
		row  []float32
		want []int
	}{
		{"thresholds", Rule{Thresholds: th}, row, []int{0, 1, 3}},
		{"relative", Rule{Thresholds: th, Relative: 0.5}, row, []int{0, 1}},
		{"max per group", Rule{Thresholds: th, Bounds: []Bounds{{0, 1}, {0, 0}}}, row, []int{0, 3}},
		{"min per group", Rule{Thresholds: th, Bounds: []Bounds{{0, 0}, {3, 0}}}, row, []int{0, 1, 3, 4, 5}},
		{"empty without fallback", Rule{Thresholds: []float64{1, 1, 1, 1, 1, 1}}, row, nil},
		{"fallback", Rule{Thresholds: []float64{1, 1, 1, 1, 1, 1}, AtLeastOne: true}, row, []int{0}},
		{"tie goes to lower index", Rule{Thresholds: []float64{1, 1, 1, 1, 1, 1}, Bounds: []Bounds{{1, 0}, {0, 0}}},
			[]float32{0.2, 0.3, 0.3, 0, 0, 0}, []int{1}},
		{"threshold is inclusive", Rule{Thresholds: th}, []float32{0.45, 0, 0, 0.25, 0, 0}, []int{0, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := NewPredictor(&c.rule, groupOf, 2).Predict(c.row, nil)
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestProblemErrors(t *testing.T) {
	pr := smallProblem(10, 6)
	bad := *pr
	bad.Truth = bad.Truth[:5]
	if _, err := Search(&bad, []string{Global}, DefaultOptions()); err == nil {
		t.Error("truth/probability row mismatch accepted")
	}
	bad = *pr
	bad.GroupOf = []int{0}
	if _, err := Search(&bad, []string{Global}, DefaultOptions()); err == nil {
		t.Error("group map of wrong length accepted")
	}
	o := DefaultOptions()
	o.Grid = []float64{0.5, 0.2}
	if _, err := Search(pr, []string{Global}, o); err == nil {
		t.Error("descending grid accepted")
	}
}

// TestBinLookup holds the table lookup to binary search, on grid values,
// their neighbours and random values, for coarse and fine grids.
func TestBinLookup(t *testing.T) {
	for _, step := range []float64{0.05, 0.005, 0.0001} {
		pr := smallProblem(5, 1)
		o := DefaultOptions()
		o.Grid = LinearGrid(step, 1)
		s, err := newSearcher(pr, o)
		if err != nil {
			t.Fatal(err)
		}
		vals := []float32{1, 0.99999994}
		for _, g := range s.grid32 {
			vals = append(vals, g, math.Nextafter32(g, 0), math.Nextafter32(g, 2))
		}
		for i := range 10000 {
			vals = append(vals, float32(i)/10000+1e-5)
		}
		for _, v := range vals {
			if v < s.grid32[0] {
				continue
			}
			if got, want := s.bin(v), s.binSearch(v); got != want {
				t.Fatalf("step %v: bin(%v) = %d, binary search %d", step, v, got, want)
			}
		}
	}
}

func TestCrossValidate(t *testing.T) {
	pr := smallProblem(300, 8)
	o := smallOptions(true, fbeta.BothEmptyZero)
	fold := make([]int, pr.Rows)
	for i := range fold {
		fold[i] = i % 3
	}
	cv, err := CrossValidate(pr, fold, 3, []string{Global, Label}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(cv) != 2 || cv[0].Name != Global || len(cv[0].PerFold) != 3 {
		t.Fatalf("got %+v", cv)
	}
	// Fold 1 by hand: search on folds 0 and 2, score on fold 1.
	var in, held []int
	for i, f := range fold {
		if f == 1 {
			held = append(held, i)
		} else {
			in = append(in, i)
		}
	}
	res, _ := Search(pr.subset(in), []string{Global, Label}, o)
	for r := range res {
		want, _, _ := Evaluate(pr.subset(held), &res[r].Rule, o.Score, 2)
		if cv[r].PerFold[1] != want {
			t.Errorf("%s fold 1: %v, by hand %v", res[r].Name, cv[r].PerFold[1], want)
		}
		// Held-out scores are not above the in-sample ones on average.
		if cv[r].Mean > res[r].Score+0.05 {
			t.Errorf("%s: held-out mean %.3f far above in-sample %.3f", res[r].Name, cv[r].Mean, res[r].Score)
		}
	}
	if _, err := CrossValidate(pr, fold[:10], 3, []string{Global}, o); err == nil {
		t.Error("short fold list accepted")
	}
	bad := slices.Clone(fold)
	bad[0] = 5
	if _, err := CrossValidate(pr, bad, 3, []string{Global}, o); err == nil {
		t.Error("fold index out of range accepted")
	}
}

// Choose goes by the held-out mean when there is one, else by the
// in-sample score; ties go to the earlier rule.
func TestChoose(t *testing.T) {
	res := []Result{{Name: Global, Score: 0.60}, {Name: Group, Score: 0.60}, {Name: Label, Score: 0.62}}
	if got := Choose(res, nil); got != 2 {
		t.Errorf("in sample: %d", got)
	}
	held := []CVResult{{Name: Global, Mean: 0.59}, {Name: Group, Mean: 0.59}, {Name: Label, Mean: 0.57}}
	if got := Choose(res, held); got != 0 {
		t.Errorf("held out: %d (a tie goes to the earlier rule)", got)
	}
	held[1].Mean = 0.595
	if got := Choose(res, held); got != 1 {
		t.Errorf("held out: %d", got)
	}
	if Best(res) != &res[2] || Best(nil) != nil {
		t.Error("Best disagrees with Choose")
	}
}
