package ensemble

import (
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"imet/internal/base/pyref"
	"imet/internal/postprocess/probs"
)

func randomFile(rng *rand.Rand, rows, cols int) *probs.File {
	f := &probs.File{Matrix: probs.NewMatrix(rows, cols)}
	for i := range rows {
		f.IDs = append(f.IDs, "img"+strconv.Itoa(i))
	}
	for j := range cols {
		f.Labels = append(f.Labels, strconv.Itoa(j))
	}
	for x := range f.Data {
		f.Data[x] = rng.Float32()
	}
	return f
}

// The table is numpy's linear quantiles of each column (computed here at
// test time); float32 rounding of values in [0, 1) bounds the difference.
func TestQuantileTableMatchesNumpy(t *testing.T) {
	py := pyref.Require(t, "numpy")
	rng := rand.New(rand.NewPCG(1, 2))
	ref := randomFile(rng, 501, 7)
	// ties and a constant column, where interpolation between equal
	// neighbours must give the value itself
	for i := range ref.Rows {
		ref.Row(i)[3] = float32(i%5) / 4
		ref.Row(i)[6] = 0.25
	}
	const n = 33
	got, err := QuantileTable(ref, n)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.npy"), filepath.Join(dir, "out.npy")
	if err := probs.WriteNPY(in, ref.Matrix); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(py, filepath.Join("testdata", "quantile_table.py"), in, strconv.Itoa(n), out).CombinedOutput(); err != nil {
		t.Fatalf("reference: %v\n%s", err, b)
	}
	want, err := probs.ReadNPY(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != n || want.Rows != n || got.Cols != ref.Cols {
		t.Fatalf("table %dx%d, numpy %dx%d", got.Rows, got.Cols, want.Rows, want.Cols)
	}
	for x, v := range got.Data {
		if d := math.Abs(float64(v) - float64(want.Data[x])); d > 1e-7 {
			t.Fatalf("row %d column %d: %v, numpy %v", x/got.Cols, x%got.Cols, v, want.Data[x])
		}
	}
	// At most n rows already: the reference itself.
	if small, _ := QuantileTable(ref, ref.Rows); small != ref {
		t.Fatal("a reference of n rows was reduced")
	}
	if _, err := QuantileTable(ref, 1); err == nil {
		t.Fatal("a table of one row was accepted")
	}
}

// Mapping onto the table of a reference is mapping onto the reference when
// the table keeps every row, and Blend of rank is Combine then
// MatchQuantiles; of mean, Combine.
func TestBlend(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a, b, ref := randomFile(rng, 40, 5), randomFile(rng, 40, 5), randomFile(rng, 60, 5)
	in := []Input{{Name: "a", File: a}, {Name: "b", File: b}}
	r, err := Combine(in, Rank, []float64{1, 3})
	if err != nil {
		t.Fatal(err)
	}
	want, err := MatchQuantiles(Input{Name: "r", File: r}, Input{Name: "ref", File: ref})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Blend(in, Rank, []float64{1, 3}, &Input{Name: "ref", File: ref})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Data, want.Data) {
		t.Fatal("Blend(rank) is not MatchQuantiles of Combine(rank)")
	}
	mean, _ := Combine(in, Mean, nil)
	if got, err := Blend(in, Mean, nil, nil); err != nil || !slices.Equal(got.Data, mean.Data) {
		t.Fatalf("Blend(mean) is not Combine(mean): %v", err)
	}
	if _, err := Blend(in, Rank, nil, nil); err == nil || !strings.Contains(err.Error(), "reference") {
		t.Fatalf("rank without a reference: %v", err)
	}
}

// The search visits every point of the grid once and returns the best:
// with the score the closeness to a known mixture, that mixture.
func TestSearchWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	in := []Input{{Name: "a", File: randomFile(rng, 30, 4)}, {Name: "b", File: randomFile(rng, 30, 4)}, {Name: "c", File: randomFile(rng, 30, 4)}}
	target, err := Combine(in, Weighted, []float64{0.2, 0.5, 0.3})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	score := func(f *probs.File) (float64, error) {
		calls++
		var d float64
		for x, v := range f.Data {
			d += math.Abs(float64(v) - float64(target.Data[x]))
		}
		return -d, nil
	}
	w, s, err := SearchWeights(in, 0.1, score)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 66 { // C(10+2, 2)
		t.Fatalf("%d weightings tried, the 0.1 grid of 3 weights has 66", calls)
	}
	for i, v := range []float64{0.2, 0.5, 0.3} {
		if math.Abs(w[i]-v) > 1e-12 {
			t.Fatalf("weights %v, want [0.2 0.5 0.3] (score %v)", w, s)
		}
	}
	if _, _, err := SearchWeights(in, 0.3, score); err == nil {
		t.Fatal("a step that does not divide 1 was accepted")
	}
	if _, _, err := SearchWeights(in, 0.001, score); err == nil || !strings.Contains(err.Error(), "larger step") {
		t.Fatalf("a grid of half a million points: %v", err)
	}
}
