// Package figurestest writes what a finished imet cv run leaves behind, for
// tests of the figures drawn from it: a data set (labels.csv, train.csv,
// sample_submission.csv, folds.csv) and the run's oof.npy and
// thresholds.json, with out-of-fold probabilities simulated by
// internal/data/simprobs and thresholds searched as imet cv searches them.
// No images and no training: the figures need neither.
package figurestest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/data/simprobs"
	"imet/internal/experiments/figures"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
)

// Run is a written fixture.
type Run struct {
	Sources figures.Sources
	// Config is a run configuration naming the data set, as the registry
	// stores a cv run's.
	Config string
	// Results are the searched rules, as thresholds.json holds them.
	Results []thresholds.Result
	// IDs, Fold and Truth describe the OOF rows in file order: image id,
	// fold and true label columns.
	IDs   []string
	Fold  []int
	Truth [][]int32
	// Probs is the OOF matrix, row-major, Cols wide.
	Probs []float32
	Cols  int
}

// Write creates the fixture under dir: rows images over 30 culture and
// 70 tag labels (attribute ids not contiguous, so that a test mixing ids
// and columns fails), split into k folds. The same seed writes the same
// files.
func Write(dir string, rows, k int, seed uint64) (*Run, error) {
	const cultures, tags = 30, 70
	var ids []int
	var names []string
	groupOf := make([]int, cultures+tags)
	for j := range cultures + tags {
		ids = append(ids, 3+7*j)
		if j < cultures {
			names = append(names, fmt.Sprintf("culture::c%02d", j))
		} else {
			names = append(names, fmt.Sprintf("tag::t%02d", j-cultures))
			groupOf[j] = 1
		}
	}
	labels, err := dataset.NewLabels(ids, names)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	out := filepath.Join(dir, "cv")
	sp := simprobs.Generate(rows, groupOf, 3, seed)
	var trainRows []dataset.Row
	var imgs []string
	for i := range rows {
		id := fmt.Sprintf("img%05d", i)
		imgs = append(imgs, id)
		var ls []int
		for _, c := range sp.Truth[i] {
			ls = append(ls, int(c))
		}
		slices.Sort(ls)
		trainRows = append(trainRows, dataset.Row{ID: id, Labels: ls})
	}
	fold := folds.Random(rows, k, seed)
	for _, w := range []error{
		mkdirs(data, out),
		dataset.WriteLabels(filepath.Join(data, dataset.LabelsFile), labels),
		dataset.WriteTrain(filepath.Join(data, dataset.TrainFile), labels, trainRows),
		dataset.WriteSampleSubmission(filepath.Join(data, dataset.SampleFile), []string{"test0"}, "3"),
		folds.Write(filepath.Join(data, "folds.csv"), imgs, fold),
	} {
		if w != nil {
			return nil, w
		}
	}
	// imet cv concatenates the folds' OOF files in fold order.
	r := &Run{Cols: sp.Cols}
	for f := range k {
		for i := range rows {
			if fold[i] == f {
				r.IDs = append(r.IDs, imgs[i])
				r.Fold = append(r.Fold, f)
				r.Truth = append(r.Truth, sp.Truth[i])
				r.Probs = append(r.Probs, sp.Probs[i*sp.Cols:(i+1)*sp.Cols]...)
			}
		}
	}
	var cols []string
	for _, id := range ids {
		cols = append(cols, fmt.Sprint(id))
	}
	oof := &probs.File{Matrix: &probs.Matrix{Rows: rows, Cols: sp.Cols, Data: r.Probs}, IDs: r.IDs, Labels: cols}
	r.Sources = figures.Sources{OOF: filepath.Join(out, "oof.npy"), Thresholds: filepath.Join(out, "thresholds.json"),
		Data: data, Folds: filepath.Join(data, "folds.csv")}
	if err := probs.Save(r.Sources.OOF, oof); err != nil {
		return nil, err
	}
	pr := &thresholds.Problem{Rows: rows, Cols: sp.Cols, Probs: r.Probs, Truth: r.Truth, GroupOf: labels.GroupOf, Groups: labels.Groups}
	o := thresholds.DefaultOptions()
	if r.Results, err = thresholds.Search(pr, []string{thresholds.Global, thresholds.Group, thresholds.Label}, o); err != nil {
		return nil, err
	}
	tf := &thresholds.File{Version: thresholds.FileVersion, Use: thresholds.Best(r.Results).Name, Beta: o.Score.Beta,
		EmptyRows: o.Score.BothEmpty.String(), Labels: cols, Groups: labels.Groups, LabelGroups: labels.GroupOf,
		Rows: rows, Rules: r.Results}
	if err := thresholds.WriteFile(r.Sources.Thresholds, tf); err != nil {
		return nil, err
	}
	r.Config = fmt.Sprintf("name: fixture\ndata:\n  root: %s\n  folds: folds.csv\n", data)
	return r, nil
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
