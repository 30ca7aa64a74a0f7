package ensemble

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"imet/internal/postprocess/probs"
)

type golden struct {
	Inputs   [][][]float32 `json:"inputs"`
	Weights  []float64     `json:"weights"`
	Mean     [][]float64   `json:"mean"`
	Rank     [][]float64   `json:"rank"`
	GeoMean  [][]float64   `json:"geomean"`
	Weighted [][]float64   `json:"weighted"`
}

func file(rows [][]float32, ids, labels []string) *probs.File {
	m := probs.NewMatrix(len(rows), len(rows[0]))
	for i, r := range rows {
		copy(m.Row(i), r)
	}
	if ids == nil {
		for i := range rows {
			ids = append(ids, fmt.Sprint("img", i))
		}
	}
	return &probs.File{Matrix: m, IDs: ids, Labels: labels}
}

func loadGolden(t *testing.T) (golden, []Input) {
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	var in []Input
	for k, m := range g.Inputs {
		in = append(in, Input{Name: fmt.Sprintf("m%d.npy", k), File: file(m, nil, []string{"1", "2", "3", "4"})})
	}
	return g, in
}

// TestGolden compares with NumPy/SciPy values from
// scripts/golden/ensemble_golden.py.
func TestGolden(t *testing.T) {
	g, in := loadGolden(t)
	cases := []struct {
		m    Method
		w    []float64
		want [][]float64
	}{{Mean, nil, g.Mean}, {Rank, nil, g.Rank}, {GeoMean, nil, g.GeoMean}, {Weighted, g.Weights, g.Weighted}}
	for _, c := range cases {
		t.Run(string(c.m), func(t *testing.T) {
			out, err := Combine(in, c.m, c.w)
			if err != nil {
				t.Fatal(err)
			}
			for i, row := range c.want {
				for j, v := range row {
					if got := float64(out.Row(i)[j]); math.Abs(got-v) > 1e-6 {
						t.Fatalf("[%d,%d] = %v, want %v", i, j, got, v)
					}
				}
			}
		})
	}
}

// TestAlignment: a file with rows and columns in another order gives the
// same result as one in the reference order.
func TestAlignment(t *testing.T) {
	_, in := loadGolden(t)
	want, _ := Combine(in, Rank, nil)
	f := in[1].File
	n, L := f.Rows, f.Cols
	sh := probs.NewMatrix(n, L)
	ids := make([]string, n)
	labels := []string{"4", "3", "2", "1"}
	for i := range n {
		ids[i] = f.IDs[n-1-i]
		for j := range L {
			sh.Row(i)[j] = f.Row(n - 1 - i)[L-1-j]
		}
	}
	in[1] = Input{Name: "shuffled.npy", File: &probs.File{Matrix: sh, IDs: ids, Labels: labels}}
	got, err := Combine(in, Rank, nil)
	if err != nil {
		t.Fatal(err)
	}
	for x := range want.Data {
		if got.Data[x] != want.Data[x] {
			t.Fatalf("value %d: %v after alignment, %v before", x, got.Data[x], want.Data[x])
		}
	}
}

func TestMismatchNamesTheFile(t *testing.T) {
	a := file([][]float32{{0.1, 0.2}, {0.3, 0.4}}, []string{"x", "y"}, []string{"1", "2"})
	cases := []struct {
		name string
		b    *probs.File
		want string
	}{
		{"other image", file([][]float32{{0.1, 0.2}, {0.3, 0.4}}, []string{"x", "z"}, []string{"1", "2"}), `b.npy has no image "y"`},
		{"other label", file([][]float32{{0.1, 0.2}, {0.3, 0.4}}, []string{"x", "y"}, []string{"1", "9"}), `b.npy has no attribute "2"`},
		{"more columns", file([][]float32{{0.1, 0.2, 0}, {0.3, 0.4, 0}}, []string{"x", "y"}, nil), "b.npy has 3 label columns"},
		{"fewer rows", file([][]float32{{0.1, 0.2}}, []string{"x"}, nil), "b.npy has 1 images"},
		{"nan", file([][]float32{{float32(math.NaN()), 0.2}, {0.3, 0.4}}, []string{"x", "y"}, []string{"1", "2"}), `b.npy: NaN at image "x"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Combine([]Input{{"a.npy", a}, {"b.npy", c.b}}, Mean, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	if _, err := Combine([]Input{{"a.npy", a}}, Weighted, nil); err == nil {
		t.Error("weighted without weights accepted")
	}
	if _, err := Combine([]Input{{"a.npy", a}, {"b.npy", a}}, Mean, []float64{1, -1}); err == nil {
		t.Error("negative weight accepted")
	}
	if _, err := Combine([]Input{{"a.npy", a}}, "median", nil); err == nil {
		t.Error("unknown method accepted")
	}
}

func TestConcat(t *testing.T) {
	a := file([][]float32{{0.1, 0.2}}, []string{"x"}, nil)
	b := file([][]float32{{0.3, 0.4}, {0.5, 0.6}}, []string{"y", "z"}, nil)
	out, err := Concat([]Input{{"a", a}, {"b", b}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Rows != 3 || strings.Join(out.IDs, ",") != "x,y,z" || out.Row(2)[1] != 0.6 {
		t.Fatalf("concat gave %d rows %v %v", out.Rows, out.IDs, out.Data)
	}
	if _, err := Concat([]Input{{"a", a}, {"a2", a}}); err == nil || !strings.Contains(err.Error(), `"x" is in both a and a2`) {
		t.Fatalf("overlap: %v", err)
	}
}

// TestRankNegativeAndTies: ranks follow value order across signs, and
// -0 ties with +0.
func TestRankNegativeAndTies(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	a := file([][]float32{{-2}, {negZero}, {0}, {-0.5}, {3}}, nil, nil)
	out, err := Combine([]Input{{"a", a}}, Rank, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1.0 / 5, 3.5 / 5, 3.5 / 5, 2.0 / 5, 5.0 / 5}
	for i, w := range want {
		if out.Data[i] != w {
			t.Fatalf("rank of row %d = %v, want %v (all %v)", i, out.Data[i], w, out.Data)
		}
	}
}

func TestRadixSortHigh(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 17, 5000} {
		keys := make([]uint64, n)
		for i := range keys {
			v := orderedBits(float32(r.NormFloat64()))
			if i%7 == 0 {
				v = orderedBits(0.5) // ties
			}
			keys[i] = uint64(v)<<32 | uint64(i)
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		got := radixSortHigh(slices.Clone(keys), make([]uint64, n))
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d: radix order differs from sort", n)
		}
	}
}

// TestGeoMeanPaths: the product-and-root path (equal weights) and the
// logarithm path (unequal weights) agree, for 1, 2, 3 and 4 files.
func TestGeoMeanPaths(t *testing.T) {
	_, in := loadGolden(t)
	in = append(in, in[0])
	for n := 1; n <= 4; n++ {
		eq, err := Combine(in[:n], GeoMean, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := make([]float64, n)
		for i := range w {
			w[i] = 1 + 1e-12*float64(i) // unequal: forces the log path
		}
		lg, _ := Combine(in[:n], GeoMean, w)
		for x := range eq.Data {
			if d := math.Abs(float64(eq.Data[x] - lg.Data[x])); d > 1e-6*float64(eq.Data[x])+1e-12 {
				t.Fatalf("%d files, value %d: product %v, logs %v", n, x, eq.Data[x], lg.Data[x])
			}
		}
	}
}

// TestMatchQuantiles: a column's rank r of n becomes ref's quantile at
// (r-½)/n, interpolated; ties share a value; columns align by attribute.
func TestMatchQuantiles(t *testing.T) {
	ref := file([][]float32{{0.1, 7}, {0.4, 5}, {0.2, 6}, {0.3, 8}}, nil, []string{"1", "2"})
	// Column "2" of scores is ref's column 1; column "1" holds a tie.
	scores := file([][]float32{{50, 1}, {-1, 2}, {30, 2}}, nil, []string{"2", "1"})
	out, err := MatchQuantiles(Input{"scores", scores}, Input{"ref", ref})
	if err != nil {
		t.Fatal(err)
	}
	// m=4, n=3: position ((2r-1)·4-3)/6 in ref's sorted column. Column
	// "2" (5, 6, 7, 8): ranks 3, 1, 2 -> 17/6, 1/6, 3/2. Column "1" (0.1,
	// 0.2, 0.3, 0.4): ranks 1, 2.5, 2.5 -> 1/6, 13/6, 13/6.
	want := [][]float64{{7 + 5.0/6, 0.1 + 0.1/6}, {5 + 1.0/6, 0.3 + 0.1/6}, {6.5, 0.3 + 0.1/6}}
	for i, row := range want {
		for j, v := range row {
			if got := float64(out.Row(i)[j]); math.Abs(got-v) > 1e-6 {
				t.Errorf("[%d,%d] = %v, want %v", i, j, got, v)
			}
		}
	}
	if !slices.Equal(out.Labels, scores.Labels) || !slices.Equal(out.IDs, scores.IDs) {
		t.Errorf("ids %v labels %v", out.IDs, out.Labels)
	}

	// Scores ordered as ref, on another scale, map onto ref itself.
	r := rand.New(rand.NewPCG(3, 4))
	big := probs.NewMatrix(500, 3)
	ranked := probs.NewMatrix(500, 3)
	for x := range big.Data {
		v := float32(r.IntN(50)) / 50 // ties
		big.Data[x], ranked.Data[x] = v, 10*v-3
	}
	bigRef := &probs.File{Matrix: big, IDs: make([]string, 500)}
	same, err := MatchQuantiles(Input{"ranked", &probs.File{Matrix: ranked, IDs: bigRef.IDs}}, Input{"ref", bigRef})
	if err != nil {
		t.Fatal(err)
	}
	for x, v := range big.Data {
		// A tie run maps to the middle of its positions, where ref's
		// values are the tied value too.
		if same.Data[x] != v {
			t.Fatalf("value %d: %v, ref %v", x, same.Data[x], v)
		}
	}

	for _, c := range []struct {
		scores, ref *probs.File
		want        string
	}{
		{file([][]float32{{1}}, nil, nil), ref, "scores has 1 label columns, ref has 2"},
		{file([][]float32{{1, 2}}, nil, []string{"1", "3"}), ref, `ref has no attribute "3"`},
		{file([][]float32{{1, float32(math.NaN())}}, nil, nil), ref, `scores: NaN at image "img0", column 1`},
	} {
		if _, err := MatchQuantiles(Input{"scores", c.scores}, Input{"ref", c.ref}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}
