package folds

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/data/dataset"
)

// imetLike draws n rows of labels with iMet 2019's shape: 398 culture
// labels of which most images carry one, and 705 tags of which images carry
// 1-8, both with long-tailed (Zipf-like) frequencies, so that many labels
// have only a handful of examples.
func imetLike(n int, seed uint64) (labels [][]int, nLabels int) {
	const cultures, tags = 398, 705
	rng := rand.New(rand.NewPCG(seed, 7))
	cum := func(m int, s float64) []float64 {
		c := make([]float64, m)
		sum := 0.0
		for i := range c {
			sum += 1 / math.Pow(float64(i+1), s)
			c[i] = sum
		}
		for i := range c {
			c[i] /= sum
		}
		return c
	}
	cc, tc := cum(cultures, 1.1), cum(tags, 0.9)
	draw := func(c []float64) int {
		i, _ := slices.BinarySearch(c, rng.Float64())
		return min(i, len(c)-1)
	}
	labels = make([][]int, n)
	for i := range labels {
		var row []int
		if rng.Float64() < 0.8 {
			row = append(row, draw(cc))
		}
		nt := 1 + rng.IntN(4) + rng.IntN(5)*rng.IntN(2)
		for len(row) < nt+1 {
			t := cultures + draw(tc)
			if !slices.Contains(row, t) {
				row = append(row, t)
			}
		}
		labels[i] = row
	}
	return labels, cultures + tags
}

func TestStratifyAssignsEveryRow(t *testing.T) {
	cases := []struct {
		name   string
		labels [][]int
		k      int
	}{
		{"no labels at all", [][]int{{}, {}, {}, {}, {}}, 2},
		{"singletons and empties", [][]int{{0}, {1}, {2}, {}, {}, {0, 1, 2}, {3}}, 3},
		{"one rare label", [][]int{{0}, {0}, {0}, {0}, {0, 1}, {0}}, 5},
		{"repeated columns", [][]int{{0, 0}, {1, 1, 0}, {0}, {1}}, 2},
		{"exactly k rows", [][]int{{0}, {0}, {1}}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fold, err := Stratify(tc.labels, 4, tc.k, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(fold) != len(tc.labels) {
				t.Fatalf("%d folds for %d rows", len(fold), len(tc.labels))
			}
			sizes := make([]int, tc.k)
			for _, f := range fold {
				if f < 0 || f >= tc.k {
					t.Fatalf("fold %d out of range", f)
				}
				sizes[f]++
			}
			// No fold may come out empty, even when labels are few.
			for f, s := range sizes {
				if s == 0 {
					t.Fatalf("fold %d empty: sizes %v", f, sizes)
				}
			}
		})
	}
}

func TestStratifyErrors(t *testing.T) {
	if _, err := Stratify([][]int{{0}, {0}}, 1, 1, 0); err == nil || !strings.Contains(err.Error(), "k is 1") {
		t.Fatalf("k=1: %v", err)
	}
	if _, err := Stratify([][]int{{0}, {0}}, 1, 3, 0); err == nil || !strings.Contains(err.Error(), "at least 3") {
		t.Fatalf("too few rows: %v", err)
	}
	if _, err := Stratify([][]int{{0}, {5}}, 2, 2, 0); err == nil || !strings.Contains(err.Error(), "row 1 has label column 5") {
		t.Fatalf("bad column: %v", err)
	}
}

func TestStratifyDeterministic(t *testing.T) {
	labels, n := imetLike(3000, 1)
	a, _ := Stratify(labels, n, 5, 42)
	b, _ := Stratify(labels, n, 5, 42)
	c, _ := Stratify(labels, n, 5, 43)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different folds")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, identical folds")
	}
}

// The point of the package: on long-tailed multi-label data, iterative
// stratification spreads every label over the folds much more evenly than
// a random K-fold, on every measure of the report, across seeds.
func TestStratifyBeatsRandom(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		labels, n := imetLike(5000, seed)
		strat, err := Stratify(labels, n, 5, seed)
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := Evaluate(labels, n, strat, 5)
		rr, _ := Evaluate(labels, n, Random(len(labels), 5, seed), 5)
		t.Logf("seed %d: stratified abs %.3f rel %.3f LD %.4f missing %d; random abs %.3f rel %.3f LD %.4f missing %d",
			seed, rs.MeanAbsDev, rs.MeanRelDev, rs.LD, rs.MissingInFold, rr.MeanAbsDev, rr.MeanRelDev, rr.LD, rr.MissingInFold)
		// Relative deviation has a floor that no split escapes (a label
		// with 2 examples in 5 folds is at least 100% off in three of
		// them), so its margin is smaller.
		if rs.MeanAbsDev > 0.6*rr.MeanAbsDev || rs.MeanRelDev > 0.75*rr.MeanRelDev || rs.LD > 0.6*rr.LD {
			t.Errorf("seed %d: stratified split not clearly better than random", seed)
		}
		if rs.MissingInFold >= rr.MissingInFold {
			t.Errorf("seed %d: stratified leaves %d labels absent from a fold, random %d", seed, rs.MissingInFold, rr.MissingInFold)
		}
		// Fold sizes stay within a few percent of equal: iterative
		// stratification trades a little size balance for label balance.
		for _, s := range rs.FoldSizes {
			if math.Abs(float64(s)-1000) > 30 {
				t.Errorf("seed %d: fold sizes %v", seed, rs.FoldSizes)
				break
			}
		}
	}
}

func TestStratifyGroupsKeepsGroupsTogether(t *testing.T) {
	labels, n := imetLike(2000, 5)
	groups := make([]string, len(labels))
	for i := range groups {
		groups[i] = fmt.Sprint("g", i/3) // triples, like skin-tone variants
	}
	fold, err := StratifyGroups(labels, groups, n, 4, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fold {
		if fold[i] != fold[i-i%3] {
			t.Fatalf("row %d in fold %d, its group's first row in %d", i, fold[i], fold[i-i%3])
		}
	}
	r, _ := Evaluate(labels, n, fold, 4)
	rr, _ := Evaluate(labels, n, Random(len(labels), 4, 9), 4)
	if r.MeanAbsDev >= rr.MeanAbsDev {
		t.Fatalf("grouped stratification %.3f no better than random rows %.3f", r.MeanAbsDev, rr.MeanAbsDev)
	}
}

func TestEvaluateByHand(t *testing.T) {
	// Label 0 has 4 examples split 3/1 over 2 folds: ideal 2 each, so the
	// deviations are 1 and 1, relative 0.5. Label 1 (2 examples) is split
	// 1/1: no deviation.
	labels := [][]int{{0}, {0, 1}, {0}, {0, 1}}
	r, err := Evaluate(labels, 2, []int{0, 0, 0, 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.MeanAbsDev != 0.5 || r.MaxAbsDev != 1 || r.MeanRelDev != 0.25 || r.ED != 1 || r.MissingInFold != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.Worst[0].Label != 0 || !slices.Equal(r.Worst[0].Counts, []int{3, 1}) {
		t.Fatalf("worst %+v", r.Worst)
	}
	if _, err := Evaluate(labels, 2, []int{0, 0, 0, 2}, 2); err == nil {
		t.Fatal("fold 2 of 2 accepted")
	}
}

func TestFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "folds.csv")
	ids := []string{"b", "a", "c", "d"}
	if err := Write(path, ids, []int{1, 0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	a, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.K != 2 || !slices.Equal(a.IDs, ids) {
		t.Fatalf("read %+v", a)
	}
	got, err := a.For([]string{"a", "b", "c", "d"})
	if err != nil || !slices.Equal(got, []int{0, 1, 1, 0}) {
		t.Fatalf("For: %v %v", got, err)
	}
	if _, err := a.For([]string{"a", "b", "c", "e"}); err == nil || !strings.Contains(err.Error(), `"e"`) {
		t.Fatalf("missing id: %v", err)
	}
	if _, err := a.For([]string{"a", "b", "c"}); err == nil || !strings.Contains(err.Error(), `"d"`) {
		t.Fatalf("extra id: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	cases := []struct{ body, want string }{
		{"id,fold\na,0\nb,x\n", `folds.csv:3: fold is not a non-negative integer: "x"`},
		{"id,fold\na,0\na,1\n", `folds.csv:3: duplicate id (first on line 2): "a"`},
		{"id,split\na,0\n", `folds.csv:1: header is not "id,fold"`},
		{"id,fold\na,0\nb,2\n", `folds.csv:3: fold 2 is outside 0..0: no row has fold 1`},
		{"id,fold\na,1\n", `folds.csv: fold 0 has no rows`},
		// A stray 7 among folds 0..2 is named with its line, not taken for
		// folds 3..7.
		{"id,fold\na,0\nb,1\nc,7\nd,2\ne,9\n", `folds.csv:4: fold 7 is outside 0..2: no row has fold 3`},
		{"id,fold\na," + strings.Repeat("9", 10<<20) + "\n", `folds.csv:2: fold is not a non-negative integer: "999`},
		{"id,fold\n", `folds.csv: no rows`},
		{"id,fold\na,0,1\n", `folds.csv:2: want 2 fields, got 3`},
	}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), "folds.csv")
		os.WriteFile(path, []byte(tc.body), 0o644)
		_, err := Read(path)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || len(err.Error()) > 300 {
			t.Errorf("%.80q: error %.300v, want %s (and at most 300 bytes)", tc.body, err, tc.want)
		}
	}
}

// A stray fold number within 0..k-1 (one row of fold 3 after an even
// split into 0..2) became an extra fold of one row; CheckSizes names it.
func TestCheckSizesNamesAStrayFold(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,fold\n")
	for i := range 30 {
		fmt.Fprintf(&b, "r%d,%d\n", i, i%3)
	}
	b.WriteString("stray,3\n")
	path := filepath.Join(t.TempDir(), "folds.csv")
	os.WriteFile(path, []byte(b.String()), 0o644)
	a, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	err = a.CheckSizes(8)
	want := "folds.csv:32: fold 3 has 1 row(s), fewer than a batch of 8 (a stray fold number?; the other folds have 10..10 rows)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	if err := a.CheckSizes(1); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkStratifyIMet splits an iMet 2019-sized label matrix (109,237
// rows, 1,103 labels) into 5 folds, beside the random split it is
// measured against.
func BenchmarkStratifyIMet(b *testing.B) {
	labels, n := imetLike(109237, 1)
	b.Run("stratified", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Stratify(labels, n, 5, uint64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("random", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Random(len(labels), 5, uint64(i))
		}
	})
	b.Run("evaluate", func(b *testing.B) {
		fold, _ := Stratify(labels, n, 5, 1)
		for i := 0; i < b.N; i++ {
			Evaluate(labels, n, fold, 5)
		}
	})
}

func TestAssignmentOfSubset(t *testing.T) {
	a := &Assignment{IDs: []string{"a", "b", "c"}, Fold: []int{0, 1, 0}, K: 2}
	got, err := a.Of([]string{"c", "b"})
	if err != nil || fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("Of = %v, %v", got, err)
	}
	var m *dataset.MissingIDError
	if _, err := a.Of([]string{"b", "x"}); !errors.As(err, &m) || m.Index != 1 || m.ID != "x" {
		t.Fatalf("missing id: %v", err)
	}
}
