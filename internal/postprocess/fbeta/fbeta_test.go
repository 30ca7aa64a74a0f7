package fbeta

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"imet/internal/base/config"
)

type goldenCase struct {
	NLabels      int       `json:"n_labels"`
	Beta         float64   `json:"beta"`
	GroupOf      []int     `json:"group_of"`
	Truth        [][]int   `json:"truth"`
	Pred         [][]int   `json:"pred"`
	SamplesZero  float64   `json:"samples_zero"`
	SamplesOne   float64   `json:"samples_one"`
	SamplesSkip  float64   `json:"samples_skip"`
	PerLabel     []float64 `json:"per_label"`
	PerGroupZero []float64 `json:"per_group_zero"`
	PerGroupOne  []float64 `json:"per_group_one"`
}

// TestGoldenSklearn compares with values written by
// scripts/golden/fbeta_golden.py from scikit-learn's fbeta_score.
func TestGoldenSklearn(t *testing.T) {
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	const tol = 1e-12
	for ci, c := range g.Cases {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			for _, tc := range []struct {
				rule BothEmpty
				want float64
			}{{BothEmptyZero, c.SamplesZero}, {BothEmptyOne, c.SamplesOne}, {BothEmptySkip, c.SamplesSkip}} {
				got, err := Samples(c.Truth, c.Pred, Options{Beta: c.Beta, BothEmpty: tc.rule})
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(got-tc.want) > tol {
					t.Errorf("samples %v: got %.15f, sklearn %.15f", tc.rule, got, tc.want)
				}
			}
			pl, err := PerLabel(c.Truth, c.Pred, c.NLabels, c.Beta)
			if err != nil {
				t.Fatal(err)
			}
			for j := range pl {
				if math.Abs(pl[j]-c.PerLabel[j]) > tol {
					t.Errorf("label %d: got %.15f, sklearn %.15f", j, pl[j], c.PerLabel[j])
				}
			}
			for _, tc := range []struct {
				rule BothEmpty
				want []float64
			}{{BothEmptyZero, c.PerGroupZero}, {BothEmptyOne, c.PerGroupOne}} {
				pg, err := PerGroup(c.Truth, c.Pred, c.GroupOf, 3, Options{Beta: c.Beta, BothEmpty: tc.rule})
				if err != nil {
					t.Fatal(err)
				}
				for k := range pg {
					if math.Abs(pg[k]-tc.want[k]) > tol {
						t.Errorf("group %d (%v): got %.15f, sklearn %.15f", k, tc.rule, pg[k], tc.want[k])
					}
				}
			}
		})
	}
}

func TestRowEdgeCases(t *testing.T) {
	cases := []struct {
		name             string
		rule             BothEmpty
		tp, nPred, nTrue int
		want             float64
		counted          bool
	}{
		{"both empty zero", BothEmptyZero, 0, 0, 0, 0, true},
		{"both empty one", BothEmptyOne, 0, 0, 0, 1, true},
		{"both empty skip", BothEmptySkip, 0, 0, 0, 0, false},
		{"nothing predicted", BothEmptyOne, 0, 0, 3, 0, true},
		{"nothing true", BothEmptyOne, 0, 2, 0, 0, true},
		{"perfect", BothEmptyZero, 4, 4, 4, 1, true},
		{"one of two found, one extra", BothEmptyZero, 1, 2, 2, 0.5, true},
		// P = 1/4, R = 1: 5·(1/4)/(4·(1/4)+1) = 5/8.
		{"recall-heavy", BothEmptyZero, 1, 4, 1, 5.0 / 8, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, ok := Options{Beta: 2, BothEmpty: c.rule}.Row(c.tp, c.nPred, c.nTrue)
			if ok != c.counted || math.Abs(f-c.want) > 1e-15 {
				t.Fatalf("Row(%d,%d,%d) = %v,%v want %v,%v", c.tp, c.nPred, c.nTrue, f, ok, c.want, c.counted)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	if _, err := Samples([][]int{{1}}, nil, Default()); err == nil {
		t.Error("row count mismatch accepted")
	}
	if _, err := PerLabel([][]int{{5}}, [][]int{{}}, 3, 2); err == nil {
		t.Error("label index out of range accepted")
	}
	if _, err := ParseBothEmpty("maybe"); err == nil {
		t.Error("unknown rule accepted")
	}
	for _, b := range []BothEmpty{BothEmptyZero, BothEmptyOne, BothEmptySkip} {
		if got, err := ParseBothEmpty(b.String()); err != nil || got != b {
			t.Errorf("round trip of %v gave %v, %v", b, got, err)
		}
	}
}

func ExampleSamples() {
	truth := [][]int{{0, 1}, {2}}
	pred := [][]int{{0}, {2, 3}}
	f, _ := Samples(truth, pred, Default())
	fmt.Printf("%.4f\n", f)
	// Output: 0.6944
}

func TestOptionsFromYAML(t *testing.T) {
	o := Default()
	if err := config.Decode("score.yaml", []byte("beta: 1\nempty_rows: skip\n"), &o); err != nil {
		t.Fatal(err)
	}
	if o.Beta != 1 || o.BothEmpty != BothEmptySkip {
		t.Fatalf("decoded %+v", o)
	}
	err := config.Decode("score.yaml", []byte("empty_rows: never\n"), &o)
	if err == nil || !strings.Contains(err.Error(), "never") {
		t.Fatalf("bad rule: %v", err)
	}
}
