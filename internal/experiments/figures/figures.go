// Package figures computes what a cross-validation run's figures show from
// the files the run wrote, and draws them with internal/experiments/plots:
// F2 against the global threshold and each group's, with the points the
// threshold search chose; each label's F2 against its frequency; and the
// out-of-fold score of every fold. imet plots and the dashboard both draw
// from here, so the two never disagree.
//
// The inputs are the run's oof.npy (with its ids and labels sidecars) and
// thresholds.json, and the truth from the data set's train.csv with the
// fold of each image from folds.csv. The curves are scored exactly as the
// search scored its rules (internal/postprocess/thresholds, with the beta,
// empty-row rule and at-least-one fallback the file records, on the
// default grid imet cv searches), so the global curve's top is the global
// rule's score and each group's curve passes through the group rule's.
package figures

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/experiments/plots"
	"imet/internal/postprocess/fbeta"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
)

// Sources say where a cross-validation run's outputs and truth are.
type Sources struct {
	OOF        string // oof.npy, with its .ids.csv and .labels.csv sidecars
	Thresholds string // thresholds.json
	Data       string // data set root: labels.csv and train.csv
	Folds      string // folds.csv
}

// CV is the data behind a cross-validation run's figures.
type CV struct {
	// Rule names the rule the run chose (thresholds.json's "use") and
	// Score is its out-of-fold F2.
	Rule  string
	Score float64
	// Curves are F2 against the threshold: "global" (every label at the
	// same threshold, marked at the global rule when the file has one),
	// then "group <name>" for each group, its labels' threshold swept with
	// the other groups at the group rule's thresholds (marked at the group
	// rule), when the file has that rule.
	Curves []plots.ThresholdCurve
	// Labels has one entry per label column.
	Labels []LabelScore
	// Folds has one entry per fold in the out-of-fold rows, ascending.
	Folds []FoldScore
}

// LabelScore is one label's F2 over the out-of-fold images under the
// chosen rule.
type LabelScore struct {
	ID, Group string
	Positives int // images carrying the label
	F2        float64
}

// FoldScore is one fold's out-of-fold F2: under the rule the run chose
// for all folds together, and at the global threshold best for this fold
// alone (what the fold could reach with its own threshold).
type FoldScore struct {
	Fold, Rows int
	F2         float64
	OwnBest    float64
	OwnBestAt  float64
}

// Compute reads the sources and computes every figure's data.
func Compute(src Sources) (*CV, error) {
	oof, err := probs.Load(src.OOF)
	if err != nil {
		return nil, err
	}
	tf, err := thresholds.ReadFile(src.Thresholds)
	if err != nil {
		return nil, err
	}
	if oof.Labels == nil {
		return nil, fmt.Errorf("%s: no labels sidecar (%s); cannot match columns to %s", src.OOF, probs.LabelsPath(src.OOF), src.Thresholds)
	}
	if err := tf.Check(oof.Labels, tf.Groups, nil); err != nil {
		return nil, fmt.Errorf("%s against %s: %w", src.OOF, src.Thresholds, err)
	}
	truth, err := readTruth(src.Data, src.OOF, oof)
	if err != nil {
		return nil, err
	}
	fold, err := readFolds(src.Folds, oof.IDs)
	if err != nil {
		return nil, err
	}
	empty, err := fbeta.ParseBothEmpty(tf.EmptyRows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Thresholds, err)
	}
	chosen, err := tf.Rule("")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Thresholds, err)
	}
	// imet cv searches on the default grid; the file records the metric.
	o := thresholds.DefaultOptions()
	o.Score = fbeta.Options{Beta: tf.Beta, BothEmpty: empty}
	o.AtLeastOne = chosen.AtLeastOne
	pr := &thresholds.Problem{Rows: oof.Rows, Cols: oof.Cols, Probs: oof.Data, Truth: truth, GroupOf: tf.LabelGroups, Groups: tf.Groups}
	c := &CV{Rule: tf.Use}
	if c.Score, _, err = thresholds.Evaluate(pr, chosen, o.Score, 0); err != nil {
		return nil, err
	}
	if c.Curves, err = curves(pr, tf, o); err != nil {
		return nil, err
	}
	if c.Labels, err = labelScores(pr, tf, chosen, o.Score.Beta); err != nil {
		return nil, err
	}
	if c.Folds, err = foldScores(pr, fold, chosen, o); err != nil {
		return nil, err
	}
	return c, nil
}

// readTruth returns the true label columns of every OOF row, in the OOF's
// column order, from the data set's labels.csv and train.csv.
func readTruth(root, oofPath string, oof *probs.File) ([][]int32, error) {
	labels, err := dataset.ReadLabels(filepath.Join(root, dataset.LabelsFile))
	if err != nil {
		return nil, err
	}
	rows, err := dataset.ReadTrain(filepath.Join(root, dataset.TrainFile), labels, dataset.ReadOptions{AllowEmpty: true})
	if err != nil {
		return nil, err
	}
	col := map[int]int32{} // data set column -> OOF column
	for j, s := range oof.Labels {
		id, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s: label column %d is %q, not an attribute id", probs.LabelsPath(oofPath), j, s)
		}
		c, ok := labels.Index(id)
		if !ok {
			return nil, fmt.Errorf("attribute %d of %s is not in %s", id, oofPath, filepath.Join(root, dataset.LabelsFile))
		}
		col[c] = int32(j)
	}
	byID := make(map[string][]int, len(rows))
	for _, r := range rows {
		byID[r.ID] = r.Labels
	}
	truth := make([][]int32, oof.Rows)
	for i, id := range oof.IDs {
		ls, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("image %s of %s is not in %s", id, oofPath, filepath.Join(root, dataset.TrainFile))
		}
		for _, c := range ls {
			j, ok := col[c]
			if !ok {
				return nil, fmt.Errorf("image %s has attribute %d, which %s has no column for", id, labels.IDs[c], oofPath)
			}
			truth[i] = append(truth[i], j)
		}
	}
	return truth, nil
}

func readFolds(path string, ids []string) ([]int, error) {
	a, err := folds.Read(path)
	if err != nil {
		return nil, err
	}
	f, err := a.For(ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func curves(pr *thresholds.Problem, tf *thresholds.File, o thresholds.Options) ([]plots.ThresholdCurve, error) {
	cs, err := thresholds.NewCurves(pr, o)
	if err != nil {
		return nil, err
	}
	out := []plots.ThresholdCurve{{Group: "global", Thresholds: o.Grid, F2: cs.Global()}}
	if r, err := tf.Rule(thresholds.Global); err == nil {
		out[0].Chosen = &plots.Point{X: r.Thresholds[0], Y: score(tf, thresholds.Global)}
	}
	r, err := tf.Rule(thresholds.Group)
	if err != nil {
		return out, nil // no group rule searched: nothing to hold the others at
	}
	for gi, name := range tf.Groups {
		cols := slices.Index(tf.LabelGroups, gi)
		if cols < 0 {
			continue
		}
		curve, err := cs.Group(r.Thresholds, gi)
		if err != nil {
			return nil, err
		}
		out = append(out, plots.ThresholdCurve{Group: "group " + name, Thresholds: o.Grid, F2: curve,
			Chosen: &plots.Point{X: r.Thresholds[cols], Y: score(tf, thresholds.Group)}})
	}
	return out, nil
}

func score(tf *thresholds.File, rule string) float64 {
	for _, r := range tf.Rules {
		if r.Name == rule {
			return r.Score
		}
	}
	return math.NaN()
}

func labelScores(pr *thresholds.Problem, tf *thresholds.File, rule *thresholds.Rule, beta float64) ([]LabelScore, error) {
	pd := thresholds.NewPredictor(rule, pr.GroupOf, len(pr.Groups))
	truth := make([][]int, pr.Rows)
	pred := make([][]int, pr.Rows)
	out := make([]LabelScore, pr.Cols)
	for i := range pr.Rows {
		pred[i] = pd.Predict(pr.Probs[i*pr.Cols:(i+1)*pr.Cols], nil)
		for _, j := range pr.Truth[i] {
			truth[i] = append(truth[i], int(j))
			out[j].Positives++
		}
	}
	f2, err := fbeta.PerLabel(truth, pred, pr.Cols, beta)
	if err != nil {
		return nil, err
	}
	for j := range out {
		out[j].ID, out[j].Group, out[j].F2 = tf.Labels[j], tf.Groups[tf.LabelGroups[j]], f2[j]
	}
	return out, nil
}

func foldScores(pr *thresholds.Problem, fold []int, rule *thresholds.Rule, o thresholds.Options) ([]FoldScore, error) {
	var ks []int
	for _, k := range fold {
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	var out []FoldScore
	for _, k := range ks {
		sub := foldRows(pr, fold, k)
		fs := FoldScore{Fold: k, Rows: sub.Rows}
		var err error
		if fs.F2, _, err = thresholds.Evaluate(sub, rule, o.Score, 0); err != nil {
			return nil, err
		}
		cs, err := thresholds.NewCurves(sub, o)
		if err != nil {
			return nil, err
		}
		curve := cs.Global()
		best := 0
		for x, v := range curve {
			if v > curve[best] {
				best = x
			}
		}
		fs.OwnBest, fs.OwnBestAt = curve[best], o.Grid[best]
		out = append(out, fs)
	}
	return out, nil
}

// foldRows is the problem restricted to fold k's rows. imet cv writes the
// folds one after the other, so the rows are a slice of pr's, shared; rows
// in another order are copied.
func foldRows(pr *thresholds.Problem, fold []int, k int) *thresholds.Problem {
	sub := &thresholds.Problem{Cols: pr.Cols, GroupOf: pr.GroupOf, Groups: pr.Groups}
	first, contiguous := -1, true
	for i, f := range fold {
		if f != k {
			continue
		}
		if first < 0 {
			first = i
		} else if i != first+sub.Rows {
			contiguous = false
		}
		sub.Rows++
		sub.Truth = append(sub.Truth, pr.Truth[i])
	}
	if contiguous {
		sub.Probs = pr.Probs[first*pr.Cols : (first+sub.Rows)*pr.Cols]
		return sub
	}
	for i, f := range fold {
		if f == k {
			sub.Probs = append(sub.Probs, pr.Probs[i*pr.Cols:(i+1)*pr.Cols]...)
		}
	}
	return sub
}

// ThresholdFigure draws Curves, cut a little after every curve has fallen
// halfway from its top, so that the region of interest fills the width.
func (c *CV) ThresholdFigure(title string) (*plots.Figure, error) {
	if len(c.Curves) == 0 {
		return nil, errors.New("figures: no threshold curves")
	}
	n := 0
	for _, cv := range c.Curves {
		// A group's curve levels off at what the other groups score, not
		// at 0: halfway from its floor to its top is where it has fallen.
		mid := (slices.Max(cv.F2) + slices.Min(cv.F2)) / 2
		last := 0
		for k, v := range cv.F2 {
			if v >= mid {
				last = k
			}
		}
		if cv.Chosen != nil {
			for k, t := range cv.Thresholds {
				if t <= cv.Chosen.X {
					last = max(last, k)
				}
			}
		}
		n = max(n, last+1)
	}
	cut := make([]plots.ThresholdCurve, len(c.Curves))
	for i, cv := range c.Curves {
		m := min(len(cv.Thresholds), n+n/5+1)
		cut[i] = cv
		cut[i].Thresholds, cut[i].F2 = cv.Thresholds[:m], cv.F2[:m]
	}
	return plots.ThresholdCurves(title, cut)
}

// LabelFigure draws each label's F2 against its positives, by group.
func (c *CV) LabelFigure(title string) (*plots.Figure, error) {
	freq := make([]float64, len(c.Labels))
	f2 := make([]float64, len(c.Labels))
	groups := make([]string, len(c.Labels))
	for j, l := range c.Labels {
		freq[j], f2[j], groups[j] = float64(l.Positives), l.F2, l.Group
	}
	return plots.LabelF2VsFrequency(title, freq, f2, groups)
}

// FoldFigure draws each fold's F2 under the chosen rule and at its own
// best global threshold, with the score of all folds together.
func (c *CV) FoldFigure(title string) (*plots.Figure, error) {
	if len(c.Folds) == 0 {
		return nil, errors.New("figures: no folds")
	}
	names := make([]string, len(c.Folds))
	chosen := plots.Bars{Name: c.Rule + " rule, searched on all folds"}
	own := plots.Bars{Name: "fold's own best global threshold"}
	for i, f := range c.Folds {
		names[i] = fmt.Sprintf("fold %d (%d images)", f.Fold, f.Rows)
		chosen.Values = append(chosen.Values, f.F2)
		own.Values = append(own.Values, f.OwnBest)
	}
	return plots.BarChart(title, "out-of-fold F2", names, []plots.Bars{chosen, own}, []plots.Reference{{Name: "all folds", Y: c.Score}})
}
