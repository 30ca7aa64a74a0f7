package main

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/stacking"
)

type stackCmd struct {
	OOF        []string `help:"Out-of-fold probability files of the first-level models (.npy with sidecars), same images in the same order." required:"" name:"oof" sep:","`
	Test       []string `help:"The same models' test probability files, in the same model order." sep:","`
	Truth      string   `help:"train.csv with the true labels of the out-of-fold images." required:"" type:"existingfile"`
	Labels     string   `help:"labels.csv: the label columns and their groups." required:"" type:"existingfile"`
	Folds      string   `help:"folds.csv the first-level models were cross-validated with: the second level uses the same folds." required:"" type:"existingfile"`
	OutOOF     string   `help:"Stacked out-of-fold probabilities to write (.npy with sidecars)." required:"" name:"out-oof"`
	OutTest    string   `help:"Stacked test probabilities to write (needs --test)." name:"out-test"`
	Rounds     int      `help:"Boosting rounds." default:"100"`
	Depth      int      `help:"Tree depth (XGBoost max_depth)." default:"4"`
	Eta        float64  `help:"Learning rate (XGBoost eta)." default:"0.1"`
	Threads    int      `help:"XGBoost threads (0: every core)." default:"0"`
	Candidates int      `help:"Stack only each image's N most probable labels (mean over models); the others get 0. 0: every label." default:"0"`
	Param      []string `help:"Further XGBoost parameters, name=value (e.g. subsample=0.8), after the ones above." sep:","`
}

func init() {
	register("stack", "Train a second-level XGBoost model per fold over (image, label) rows of first-level probabilities; write its out-of-fold and test probabilities.", "Post-processing", &stackCmd{})
}

func (c *stackCmd) Run(g *Globals) error {
	if len(c.Test) > 0 && len(c.Test) != len(c.OOF) {
		return fmt.Errorf("%d --test files for %d --oof files: give one per model, in the same order", len(c.Test), len(c.OOF))
	}
	if (c.OutTest != "") != (len(c.Test) > 0) {
		return fmt.Errorf("--out-test and --test go together")
	}
	labels, err := dataset.ReadLabels(c.Labels)
	if err != nil {
		return err
	}
	load := func(paths []string) ([]*probs.File, error) {
		var out []*probs.File
		for _, p := range paths {
			f, err := probs.Load(p)
			if err != nil {
				return nil, err
			}
			if err := checkColumns(p, f, labels, c.Labels); err != nil {
				return nil, err
			}
			if err := checkRange(p, f, labels); err != nil {
				return nil, err
			}
			if len(out) > 0 && !slices.Equal(f.IDs, out[0].IDs) {
				return nil, fmt.Errorf("%s lists other images (or another order) than %s: %s", probs.IDsPath(p), probs.IDsPath(paths[0]), firstDiff(f.IDs, out[0].IDs))
			}
			out = append(out, f)
		}
		return out, nil
	}
	oof, err := load(c.OOF)
	if err != nil {
		return err
	}
	test, err := load(c.Test)
	if err != nil {
		return err
	}
	rows, err := dataset.ReadTrain(c.Truth, labels, dataset.ReadOptions{AllowEmpty: true})
	if err != nil {
		return err
	}
	truth, err := dataset.LabelsFor(rows, oof[0].IDs)
	if err != nil {
		return missingID(err, probs.IDsPath(c.OOF[0]), c.Truth)
	}
	a, err := folds.Read(c.Folds)
	if err != nil {
		return err
	}
	fold, err := a.Of(oof[0].IDs)
	if err != nil {
		return missingID(err, probs.IDsPath(c.OOF[0]), c.Folds)
	}
	p := &stacking.Problem{Rows: oof[0].Rows, Cols: oof[0].Cols, Truth: truth, Fold: fold, K: a.K, GroupOf: labels.GroupOf}
	for _, f := range oof {
		p.OOF = append(p.OOF, f.Data)
	}
	for _, f := range test {
		p.Test = append(p.Test, f.Data)
		p.TestRows = f.Rows
	}
	o := stacking.Options{Rounds: c.Rounds, Candidates: c.Candidates, Params: stacking.DefaultParams(c.Depth, c.Eta, c.Threads)}
	for _, kv := range c.Param {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--param %q: want name=value", kv)
		}
		o.Params = append(o.Params, stacking.Param{Name: k, Value: v})
	}
	res, err := stacking.Stack(p, o)
	if err != nil {
		return err
	}
	ids := attrIDs(labels)
	if err := probs.Save(c.OutOOF, &probs.File{Matrix: &probs.Matrix{Rows: p.Rows, Cols: p.Cols, Data: res.OOF}, IDs: oof[0].IDs, Labels: ids}); err != nil {
		return err
	}
	if c.OutTest != "" {
		if err := probs.Save(c.OutTest, &probs.File{Matrix: &probs.Matrix{Rows: p.TestRows, Cols: p.Cols, Data: res.Test}, IDs: test[0].IDs, Labels: ids}); err != nil {
			return err
		}
	}
	if !g.Quiet {
		fmt.Fprintf(g.Stdout, "%d models, %d folds: %d features, %d training rows over the folds\n", len(oof), a.K, res.Features, res.Examples)
		if c.Candidates > 0 {
			fmt.Fprintf(g.Stdout, "the %d candidates per image hold %.2f%% of the OOF images' true labels (the rest are lost)\n", c.Candidates, 100*res.Recall)
		}
		for m, f := range oof {
			fmt.Fprintf(g.Stdout, "log loss %-8.4f %s\n", logLoss(f.Data, truth, p.Cols), c.OOF[m])
		}
		fmt.Fprintf(g.Stdout, "log loss %-8.4f stacked out-of-fold -> %s\n", logLoss(res.OOF, truth, p.Cols), c.OutOOF)
	}
	return nil
}

// logLoss is the mean binary cross-entropy over every (image, label) cell:
// what the booster minimises, so the comparison shows what it gained.
func logLoss(p []float32, truth [][]int, cols int) float64 {
	var s float64
	for i, ls := range truth {
		for j := 0; j < cols; j++ {
			q := math.Min(math.Max(float64(p[i*cols+j]), 1e-7), 1-1e-7)
			if slices.Contains(ls, j) {
				s -= math.Log(q)
			} else {
				s -= math.Log(1 - q)
			}
		}
	}
	return s / float64(len(truth)*cols)
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("line %d is %q, not %q", i+2, a[i], b[i])
		}
	}
	return fmt.Sprintf("%d ids, not %d", len(a), len(b))
}
