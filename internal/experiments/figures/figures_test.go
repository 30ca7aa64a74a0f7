package figures_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"imet/internal/experiments/figures"
	"imet/internal/experiments/figures/figurestest"
	"imet/internal/experiments/plots"
	"imet/internal/experiments/registry"
	"imet/internal/postprocess/fbeta"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
)

func fixture(t *testing.T) (*figurestest.Run, *figures.CV) {
	t.Helper()
	run, err := figurestest.Write(t.TempDir(), 400, 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := figures.Compute(run.Sources)
	if err != nil {
		t.Fatal(err)
	}
	return run, cv
}

func result(t *testing.T, run *figurestest.Run, name string) thresholds.Result {
	t.Helper()
	for _, r := range run.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %s rule", name)
	return thresholds.Result{}
}

// The global curve tops out at the searched global threshold's score, at
// that threshold; each group's curve passes through the group rule's
// score at that group's chosen threshold.
func TestThresholdCurvesHitTheSearchedRules(t *testing.T) {
	run, cv := fixture(t)
	global, group := result(t, run, "global"), result(t, run, "group")
	if len(cv.Curves) != 3 || cv.Curves[0].Group != "global" || cv.Curves[1].Group != "group culture" || cv.Curves[2].Group != "group tag" {
		t.Fatalf("curves %v", names(cv.Curves))
	}
	g := cv.Curves[0]
	top := slices.Max(g.F2)
	if math.Abs(top-global.Score) > 1e-12 {
		t.Errorf("global curve's top %.15f, searched global rule %.15f", top, global.Score)
	}
	if k := slices.Index(g.F2, top); g.Thresholds[k] != global.Rule.Thresholds[0] {
		t.Errorf("global curve tops at %g, the search chose %g", g.Thresholds[k], global.Rule.Thresholds[0])
	}
	if g.Chosen == nil || g.Chosen.X != global.Rule.Thresholds[0] || g.Chosen.Y != global.Score {
		t.Errorf("global mark %+v", g.Chosen)
	}
	for gi, c := range cv.Curves[1:] {
		var at float64
		for j, t := range group.Rule.Thresholds {
			if (j < 30) == (gi == 0) {
				at = t
			}
		}
		k := slices.Index(c.Thresholds, at)
		if k < 0 || math.Abs(c.F2[k]-group.Score) > 1e-12 {
			t.Errorf("%s: curve at the chosen %g is not the group rule's %.15f", c.Group, at, group.Score)
		}
		if c.Chosen == nil || c.Chosen.X != at || c.Chosen.Y != group.Score {
			t.Errorf("%s mark %+v, want (%g, %g)", c.Group, c.Chosen, at, group.Score)
		}
	}
}

func names(cs []plots.ThresholdCurve) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Group)
	}
	return out
}

// Each fold's score is the F2 of that fold's rows under the chosen rule,
// scored here row by row with fbeta.Samples; the folds' scores weighted by
// rows give the run's.
func TestFoldScoresAreTheFoldsF2(t *testing.T) {
	run, cv := fixture(t)
	chosen := result(t, run, cv.Rule)
	if math.Abs(cv.Score-chosen.Score) > 1e-12 {
		t.Errorf("score %.15f, thresholds.json says %.15f", cv.Score, chosen.Score)
	}
	if len(cv.Folds) != 3 {
		t.Fatalf("%d folds", len(cv.Folds))
	}
	pd := thresholds.NewPredictor(&chosen.Rule, groupOf(), 2)
	var weighted float64
	for _, f := range cv.Folds {
		var truth, pred [][]int
		var uniform [][]float32
		for i, k := range run.Fold {
			if k != f.Fold {
				continue
			}
			row := run.Probs[i*run.Cols : (i+1)*run.Cols]
			pred = append(pred, pd.Predict(row, nil))
			truth = append(truth, ints(run.Truth[i]))
			uniform = append(uniform, row)
		}
		want, err := fbeta.Samples(truth, pred, fbeta.Default())
		if err != nil {
			t.Fatal(err)
		}
		if f.Rows != len(truth) || math.Abs(f.F2-want) > 1e-12 {
			t.Errorf("fold %d: %d rows F2 %.15f, want %d rows %.15f", f.Fold, f.Rows, f.F2, len(truth), want)
		}
		weighted += f.F2 * float64(f.Rows)
		// The fold's own best global threshold, by brute force over the
		// grid with the at-least-one fallback imet cv applies.
		best, bestAt := -1.0, 0.0
		for _, g := range thresholds.DefaultOptions().Grid {
			var p [][]int
			for i, row := range uniform {
				var sel []int
				top := 0
				for j, v := range row {
					if v >= float32(g) {
						sel = append(sel, j)
					}
					if v > row[top] {
						top = j
					}
				}
				if len(sel) == 0 {
					sel = []int{top}
				}
				p = append(p, sel)
				_ = i
			}
			v, _ := fbeta.Samples(truth, p, fbeta.Default())
			if v > best+1e-12 {
				best, bestAt = v, g
			}
		}
		if math.Abs(f.OwnBest-best) > 1e-12 || f.OwnBestAt != bestAt {
			t.Errorf("fold %d: own best %.15f at %g, brute force %.15f at %g", f.Fold, f.OwnBest, f.OwnBestAt, best, bestAt)
		}
	}
	if got := weighted / float64(len(run.IDs)); math.Abs(got-cv.Score) > 1e-12 {
		t.Errorf("row-weighted fold scores %.15f, run %.15f", got, cv.Score)
	}
}

func groupOf() []int {
	g := make([]int, 100)
	for j := 30; j < 100; j++ {
		g[j] = 1
	}
	return g
}

func ints(v []int32) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// A label's point is its positives and its F2 over images,
// 5·TP / (5·TP + 4·FN + FP), counted here directly.
func TestLabelScores(t *testing.T) {
	run, cv := fixture(t)
	chosen := result(t, run, cv.Rule)
	pd := thresholds.NewPredictor(&chosen.Rule, groupOf(), 2)
	tp, fp, fn := make([]int, 100), make([]int, 100), make([]int, 100)
	for i := range run.IDs {
		pred := pd.Predict(run.Probs[i*run.Cols:(i+1)*run.Cols], nil)
		truth := ints(run.Truth[i])
		for _, j := range pred {
			if slices.Contains(truth, j) {
				tp[j]++
			} else {
				fp[j]++
			}
		}
		for _, j := range truth {
			if !slices.Contains(pred, j) {
				fn[j]++
			}
		}
	}
	if len(cv.Labels) != 100 {
		t.Fatalf("%d labels", len(cv.Labels))
	}
	for j, l := range cv.Labels {
		want := 0.0
		if tp[j] > 0 {
			want = 5 * float64(tp[j]) / float64(5*tp[j]+4*fn[j]+fp[j])
		}
		if l.Positives != tp[j]+fn[j] || math.Abs(l.F2-want) > 1e-12 {
			t.Errorf("label %d: %d positives F2 %.6f, want %d and %.6f", j, l.Positives, l.F2, tp[j]+fn[j], want)
		}
		if wantG := map[bool]string{true: "culture", false: "tag"}[j < 30]; l.Group != wantG || l.ID != strconv.Itoa(3+7*j) {
			t.Errorf("label %d: id %s group %s", j, l.ID, l.Group)
		}
	}
}

// The three figures render, and say what they show.
func TestFiguresRender(t *testing.T) {
	_, cv := fixture(t)
	dir := t.TempDir()
	if d := os.Getenv("IMET_ARTIFACTS"); d != "" {
		dir = filepath.Join(d, "figures")
		os.MkdirAll(dir, 0o755)
	}
	for name, draw := range map[string]func(string) (*plots.Figure, error){
		"thresholds": cv.ThresholdFigure, "labels": cv.LabelFigure, "folds": cv.FoldFigure,
	} {
		f, err := draw("fixture")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, ext := range []string{".png", ".svg"} {
			if err := f.Save(filepath.Join(dir, name+ext)); err != nil {
				t.Fatal(err)
			}
		}
		svg, _ := f.SVG()
		want := map[string][]string{
			"thresholds": {"global: chosen", "group culture: chosen", "group tag: chosen"},
			"labels":     {"culture (", "tag ("},
			"folds":      {"fold 0 (", "fold 2 (", "all folds", "own best global threshold"},
		}[name]
		for _, w := range want {
			if !strings.Contains(string(svg), w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
	// The threshold axis is cut after the interesting part, not at 1.
	fig, _ := cv.ThresholdFigure("")
	if max := fig.Panels[0].X.Max; max >= 0.9 || max < cv.Curves[0].Chosen.X {
		t.Errorf("threshold axis ends at %g", max)
	}
}

func TestComputeErrorsNameTheFile(t *testing.T) {
	run, _ := fixture(t)
	src := run.Sources
	src.Folds = filepath.Join(t.TempDir(), "nope.csv")
	if _, err := figures.Compute(src); err == nil || !strings.Contains(err.Error(), "nope.csv") {
		t.Errorf("missing folds: %v", err)
	}
	train := filepath.Join(run.Sources.Data, "train.csv")
	data, _ := os.ReadFile(train)
	lines := strings.SplitN(string(data), "\n", 3)
	os.WriteFile(train, []byte(lines[0]+"\n"+lines[2]), 0o644) // drop img00000
	_, err := figures.Compute(run.Sources)
	if err == nil || !strings.Contains(err.Error(), "not in "+train) || !strings.Contains(err.Error(), "img00000") {
		t.Errorf("missing image: %v", err)
	}
}

// A cv run's figures are found from its registry record: its artifacts
// and recorded configuration.
func TestSourcesOf(t *testing.T) {
	run, _ := fixture(t)
	rec := &registry.Record{ID: 4, Kind: registry.KindCV, Config: run.Config}
	arts := []registry.Artifact{
		{Kind: "probabilities", Path: "/x/cv/fold0/oof_fold0.npy"},
		{Kind: "probabilities", Path: run.Sources.OOF},
		{Kind: "thresholds", Path: run.Sources.Thresholds},
		{Kind: "submission", Path: "/x/cv/submission.csv"},
	}
	got, err := figures.SourcesOf(rec, arts, "")
	if err != nil || got != run.Sources {
		t.Errorf("SourcesOf = %+v, %v; want %+v", got, err, run.Sources)
	}
	got, _ = figures.SourcesOf(rec, arts, "/moved")
	if got.Data != "/moved" || got.Folds != "/moved/folds.csv" {
		t.Errorf("data override: %+v", got)
	}
	if _, err := figures.SourcesOf(rec, arts[:1], ""); !errors.Is(err, figures.ErrNoCV) {
		t.Errorf("train-like run: %v", err)
	}
}

// Rows in any order give the same figures: imet cv writes the folds one
// after the other, which the per-fold scores use without copying, but a
// file from elsewhere need not.
func TestRowOrderDoesNotMatter(t *testing.T) {
	run, cv := fixture(t)
	f, err := probs.Load(run.Sources.OOF)
	if err != nil {
		t.Fatal(err)
	}
	perm := rand.New(rand.NewPCG(5, 6)).Perm(f.Rows)
	g := &probs.File{Matrix: probs.NewMatrix(f.Rows, f.Cols), Labels: f.Labels}
	for i, p := range perm {
		copy(g.Row(i), f.Row(p))
		g.IDs = append(g.IDs, f.IDs[p])
	}
	src := run.Sources
	src.OOF = filepath.Join(t.TempDir(), "shuffled.npy")
	if err := probs.Save(src.OOF, g); err != nil {
		t.Fatal(err)
	}
	got, err := figures.Compute(src)
	if err != nil {
		t.Fatal(err)
	}
	for i, fs := range cv.Folds {
		h := got.Folds[i]
		if h.Fold != fs.Fold || h.Rows != fs.Rows || math.Abs(h.F2-fs.F2) > 1e-12 || math.Abs(h.OwnBest-fs.OwnBest) > 1e-12 || h.OwnBestAt != fs.OwnBestAt {
			t.Errorf("fold %d: %+v shuffled, %+v in order", fs.Fold, h, fs)
		}
	}
	for i, c := range cv.Curves {
		for k := range c.F2 {
			if math.Abs(c.F2[k]-got.Curves[i].F2[k]) > 1e-12 {
				t.Fatalf("%s at %g: %g shuffled, %g in order", c.Group, c.Thresholds[k], got.Curves[i].F2[k], c.F2[k])
			}
		}
	}
}
