package stacking

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// problem returns two first-level "models" over rows x cols whose
// probabilities carry the truth with noise, a random fold split and two
// label groups.
func problem(rows, cols, k int, seed uint64) *Problem {
	r := rand.New(rand.NewPCG(seed, 2))
	p := &Problem{Rows: rows, Cols: cols, K: k, TestRows: rows / 2,
		Truth: make([][]int, rows), Fold: make([]int, rows), GroupOf: make([]int, cols)}
	for c := range cols {
		p.GroupOf[c] = c % 2
	}
	truth := func(n int) [][]int {
		out := make([][]int, n)
		for i := range out {
			for c := range cols {
				if r.Float64() < 0.15 {
					out[i] = append(out[i], c)
				}
			}
		}
		return out
	}
	model := func(tr [][]int, noise float64) []float32 {
		a := make([]float32, len(tr)*cols)
		for i, ls := range tr {
			for c := range cols {
				z := r.NormFloat64() * noise
				if slices.Contains(ls, c) {
					z += 1
				}
				a[i*cols+c] = float32(1 / (1 + math.Exp(-2*z+1)))
			}
		}
		return a
	}
	p.Truth = truth(rows)
	testTruth := truth(p.TestRows)
	for i := range p.Fold {
		p.Fold[i] = i % k
	}
	for _, noise := range []float64{0.8, 1.2} {
		p.OOF = append(p.OOF, model(p.Truth, noise))
		p.Test = append(p.Test, model(testTruth, noise))
	}
	return p
}

func quick() Options {
	return Options{Rounds: 10, Params: DefaultParams(3, 0.3, 1)}
}

// TestEachFoldIsPredictedWithoutItself retrains, for every fold, a booster
// on the other folds' rows alone and checks it reproduces the stacked OOF
// of that fold: the rows of fold k are predicted by a model that never saw
// them, and the test rows get the mean of the fold models.
func TestEachFoldIsPredictedWithoutItself(t *testing.T) {
	if err := Load(); err != nil {
		t.Skip(err)
	}
	p := problem(60, 8, 3, 1)
	o := quick()
	res, err := Stack(p, o)
	if err != nil {
		t.Fatal(err)
	}
	nf := len(FeatureNames(len(p.OOF)))
	wantTest := make([]float32, len(res.Test))
	for k := 0; k < p.K; k++ {
		var train, held []int
		for i, f := range p.Fold {
			if f == k {
				held = append(held, i)
			} else {
				train = append(train, i)
			}
		}
		// The booster must not depend on the held rows at all: scramble
		// their probabilities and truth and train on what is left.
		q := *p
		q.OOF = [][]float32{slices.Clone(p.OOF[0]), slices.Clone(p.OOF[1])}
		q.Truth = slices.Clone(p.Truth)
		for _, i := range held {
			for m := range q.OOF {
				for c := 0; c < p.Cols; c++ {
					q.OOF[m][i*p.Cols+c] = 0.5
				}
			}
			q.Truth[i] = nil
		}
		prior := make([]float32, p.Cols)
		for _, i := range train {
			for _, c := range q.Truth[i] {
				prior[c] += 1 / float32(len(train))
			}
		}
		x, cells := features(q.OOF, p.Cols, train, nil, prior, p.GroupOf)
		y := make([]float32, len(cells))
		for r, c := range cells {
			if slices.Contains(q.Truth[c[0]], c[1]) {
				y[r] = 1
			}
		}
		b, err := Train(x, len(cells), nf, y, o.Params, o.Rounds)
		if err != nil {
			t.Fatal(err)
		}
		xh, hc := features(p.OOF, p.Cols, held, nil, prior, p.GroupOf)
		pred, err := b.Predict(xh, len(hc), nf)
		if err != nil {
			t.Fatal(err)
		}
		for r, c := range hc {
			if got := res.OOF[c[0]*p.Cols+c[1]]; math.Abs(float64(got-pred[r])) > 1e-6 {
				t.Fatalf("fold %d row %d label %d: stacked %g, booster without the fold %g", k, c[0], c[1], got, pred[r])
			}
		}
		all := make([]int, p.TestRows)
		for i := range all {
			all[i] = i
		}
		if err := predictInto(b, p.Test, p.Cols, all, nil, prior, p.GroupOf, wantTest, 1/float32(p.K)); err != nil {
			t.Fatal(err)
		}
		b.Free()
	}
	for i := range wantTest {
		if math.Abs(float64(wantTest[i]-res.Test[i])) > 1e-6 {
			t.Fatalf("test cell %d: %g, mean of the fold boosters %g", i, res.Test[i], wantTest[i])
		}
	}
}

func TestFeatures(t *testing.T) {
	m := [][]float32{{0.1, 0.7, 0.3, 0.7, 0.2, 0.1}} // 2 images x 3 labels
	x, cells := features(m, 3, []int{1}, nil, []float32{0.5, 0.25, 0.125}, []int{0, 1, 1})
	// Image 1 is (0.7, 0.2, 0.1): ranks 0, 1, 2, max 0.7.
	want := []float32{
		0.7, 0, 0.7, 0.5, 0,
		0.2, 1, 0.7, 0.25, 1,
		0.1, 2, 0.7, 0.125, 1,
	}
	if !slices.Equal(x, want) || len(cells) != 3 || cells[2] != [2]int{1, 2} {
		t.Fatalf("features %v cells %v, want %v", x, cells, want)
	}
}

func TestCandidatesKeepTheTopLabels(t *testing.T) {
	if err := Load(); err != nil {
		t.Skip(err)
	}
	p := problem(45, 10, 3, 2)
	o := quick()
	o.Candidates = 3
	res, err := Stack(p, o)
	if err != nil {
		t.Fatal(err)
	}
	cand := candidates(p.OOF, p.Rows, p.Cols, 3)
	in, all := 0, 0
	for i, ls := range p.Truth {
		for _, c := range ls {
			all++
			if slices.Contains(cand[i], c) {
				in++
			}
		}
	}
	if want := float64(in) / float64(all); res.Recall != want || want == 1 {
		t.Fatalf("candidate recall %g, counted %g (of %d positives)", res.Recall, want, all)
	}
	for i := 0; i < p.Rows; i++ {
		nonzero := 0
		for c := 0; c < p.Cols; c++ {
			if v := res.OOF[i*p.Cols+c]; v != 0 {
				nonzero++
				if !slices.Contains(cand[i], c) {
					t.Fatalf("row %d: label %d is no candidate but got %g", i, c, v)
				}
			}
		}
		if nonzero != 3 {
			t.Fatalf("row %d: %d stacked labels, want 3", i, nonzero)
		}
	}
}

func TestRefusesBadProblems(t *testing.T) {
	p := problem(30, 4, 3, 3)
	p.K = 1
	if _, err := Stack(p, quick()); err == nil {
		t.Fatal("one fold accepted")
	}
	p = problem(30, 4, 3, 3)
	p.K = 4
	if _, err := Stack(p, quick()); err == nil {
		t.Fatal("an empty fold accepted")
	}
}
