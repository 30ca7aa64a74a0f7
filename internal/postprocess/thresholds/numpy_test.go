package thresholds

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/base/pyref"
	"imet/internal/postprocess/fbeta"
	"imet/internal/postprocess/probs"
)

// RefSpec is the input of scripts/golden/thresholds_ref.py, the NumPy
// implementation of the same search.
type refSpec struct {
	Probs      string  `json:"probs"`
	Truth      string  `json:"truth"`
	GroupOf    []int   `json:"group_of"`
	NGroups    int     `json:"n_groups"`
	GridStep   float64 `json:"grid_step"`
	GridHi     float64 `json:"grid_hi"`
	Beta       float64 `json:"beta"`
	Empty      string  `json:"empty"`
	AtLeastOne bool    `json:"at_least_one"`
	Shrink     float64 `json:"shrink"`
	Rounds     int     `json:"rounds"`
}

type refRule struct {
	Thresholds []float64 `json:"thresholds"`
	Score      float64   `json:"score"`
}

// TestMatchesNumPy runs the NumPy implementation on small problems and
// asserts the same thresholds and scores.
func TestMatchesNumPy(t *testing.T) {
	pyref.Require(t, "numpy")
	cases := []struct {
		atLeastOne bool
		empty      fbeta.BothEmpty
		shrink     float64
		rounds     int
	}{{true, fbeta.BothEmptyZero, 10, 1}, {false, fbeta.BothEmptySkip, 0, 2}, {false, fbeta.BothEmptyOne, 3, 1}}
	for ci, c := range cases {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			dir := t.TempDir()
			pr := smallProblem(500, uint64(10+ci))
			pr.Truth[4] = nil
			o := DefaultOptions()
			o.Grid = LinearGrid(0.01, 0.99)
			o.AtLeastOne, o.Score.BothEmpty, o.Shrink, o.Rounds = c.atLeastOne, c.empty, c.shrink, c.rounds
			res, err := Search(pr, []string{Global, Group, Label}, o)
			if err != nil {
				t.Fatal(err)
			}
			ref := runRef(t, dir, pr, refSpec{GridStep: 0.01, GridHi: 0.99, Beta: 2, Empty: c.empty.String(),
				AtLeastOne: c.atLeastOne, Shrink: c.shrink, Rounds: c.rounds})
			for _, r := range res {
				want := ref[r.Name]
				if !slices.Equal(r.Rule.Thresholds, want.Thresholds) {
					t.Errorf("%s thresholds differ:\n go    %v\n numpy %v", r.Name, r.Rule.Thresholds, want.Thresholds)
				}
				if math.Abs(r.Score-want.Score) > 1e-12 {
					t.Errorf("%s score: go %.15f, numpy %.15f", r.Name, r.Score, want.Score)
				}
			}
		})
	}
}

func runRef(t testing.TB, dir string, pr *Problem, spec refSpec) map[string]refRule {
	spec.Probs = filepath.Join(dir, "p.npy")
	spec.Truth = filepath.Join(dir, "truth.txt")
	spec.GroupOf, spec.NGroups = pr.GroupOf, len(pr.Groups)
	if err := probs.WriteNPY(spec.Probs, &probs.Matrix{Rows: pr.Rows, Cols: pr.Cols, Data: pr.Probs}); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, tr := range pr.Truth {
		for x, j := range tr {
			if x > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprint(&sb, j)
		}
		sb.WriteByte('\n')
	}
	os.WriteFile(spec.Truth, []byte(sb.String()), 0o644)
	sp, _ := json.Marshal(spec)
	specPath := filepath.Join(dir, "spec.json")
	os.WriteFile(specPath, sp, 0o644)
	out, err := exec.Command(pyref.Python, "../../../scripts/golden/thresholds_ref.py", specPath).Output()
	if err != nil {
		t.Fatalf("numpy search: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	ref := map[string]refRule{}
	for _, name := range []string{Global, Group, Label} {
		var r refRule
		if err := json.Unmarshal(raw[name], &r); err != nil {
			t.Fatal(err)
		}
		ref[name] = r
	}
	return ref
}
