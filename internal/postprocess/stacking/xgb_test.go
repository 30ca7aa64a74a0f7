package stacking

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/base/pyref"
	"imet/internal/postprocess/probs"
)

// synthetic returns rows x cols features and a noisy label that depends on
// the first two, so the booster has something to learn.
func synthetic(rows, cols int, seed uint64) ([]float32, []float32) {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, rows*cols)
	y := make([]float32, rows)
	for i := range rows {
		for j := range cols {
			x[i*cols+j] = float32(r.NormFloat64())
		}
		if x[i*cols]+0.5*x[i*cols+1]*x[i*cols+1]+0.5*float32(r.NormFloat64()) > 0.5 {
			y[i] = 1
		}
	}
	return x, y
}

func TestBoosterMatchesPythonXGBoost(t *testing.T) {
	py := pyref.Require(t, "numpy", "xgboost")
	if err := Load(); err != nil {
		t.Fatal(err)
	}
	const rows, cols, rounds = 500, 6, 25
	x, y := synthetic(rows, cols, 1)
	xt, _ := synthetic(200, cols, 2)
	params := []Param{{"objective", "binary:logistic"}, {"tree_method", "hist"}, {"max_depth", "3"},
		{"eta", "0.3"}, {"subsample", "0.8"}, {"seed", "7"}, {"nthread", "1"}}
	b, err := Train(x, rows, cols, y, params, rounds)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	got, err := b.Predict(xt, 200, cols)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	for name, m := range map[string]*probs.Matrix{
		"x": {Rows: rows, Cols: cols, Data: x}, "y": {Rows: rows, Cols: 1, Data: y},
		"xtest": {Rows: 200, Cols: cols, Data: xt},
	} {
		if err := probs.WriteNPY(filepath.Join(dir, name+".npy"), m); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := json.Marshal(map[string]any{"params": params, "rounds": rounds})
	if err := os.WriteFile(filepath.Join(dir, "params.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, "testdata/xgb_ref.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("xgb_ref.py: %v\n%s", err, out)
	}
	want, err := probs.ReadNPY(filepath.Join(dir, "pred.npy"))
	if err != nil {
		t.Fatal(err)
	}
	// Same library, same data, same parameters: the trees are the same, and
	// only the summation order of leaf values could differ.
	var worst float64
	spread := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want.Data[i])))
		spread = math.Max(spread, math.Abs(float64(got[i]-got[0])))
	}
	t.Logf("largest difference %g over %d predictions (spread %g)", worst, len(got), spread)
	if worst > 1e-6 {
		t.Fatalf("Go and python xgboost differ by up to %g", worst)
	}
	if spread < 0.1 {
		t.Fatalf("predictions hardly vary (spread %g): the booster learned nothing, the comparison proves little", spread)
	}
}

func TestBadParameterIsNamed(t *testing.T) {
	if err := Load(); err != nil {
		t.Skip(err)
	}
	x, y := synthetic(50, 3, 3)
	_, err := Train(x, 50, 3, y, []Param{{"objective", "no:such"}}, 2)
	if err == nil {
		t.Fatal("an unknown objective was accepted")
	}
	if !strings.Contains(err.Error(), "no:such") || strings.Contains(err.Error(), "Stack trace") {
		t.Fatalf("error does not name the bad value in one sentence: %v", err)
	}
}
