// Package crossval runs the whole K-fold workflow of the iMet solutions in
// one call: train every fold (resuming folds already started, skipping
// folds already finished), concatenate the out-of-fold probabilities,
// search decision thresholds on them, ensemble the folds' test
// probabilities, and write submission.csv.
package crossval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/submission"
	"imet/internal/postprocess/thresholds"
	"imet/internal/training/train"
	"imet/internal/training/trainconfig"
)

// Options configure a cross-validation run.
type Options struct {
	ConfigPath string
	Out        string // run root: fold<K>/ per fold, then oof.npy, thresholds.json, submission.csv
	Folds      []int  // folds to train; nil: all in folds.csv
	Parallel   int    // folds trained at once (separate processes); <= 1: in this process, in order
	Rules      []string
	Ensemble   ensemble.Method
	// TrainFold trains or resumes one fold. In-process runs pass a
	// function around train.TrainFold; parallel runs one that starts a
	// child process. It returns whether the fold completed.
	TrainFold func(ctx context.Context, fold int, runDir string, resume bool) (completed bool, err error)
	Log       io.Writer
	// TrainOnly trains (or resumes) the folds and stops there, leaving
	// their combination to Collect: one fold of a cluster array job.
	TrainOnly bool
}

// Result is where the outputs went.
type Result struct {
	Completed  bool // false: some fold stopped early (time budget); rerun to continue
	OOF        string
	Thresholds string
	Submission string
	// Rule is the threshold rule written as the one to use: the best
	// held out when two or more folds were trained, else the best in
	// sample.
	Rule string
	// Score is Rule's F2 on the out-of-fold probabilities with thresholds
	// searched on them all (in sample); HeldOut, when not nil, its mean
	// F2 on each fold with thresholds searched on the other folds.
	Score   float64
	HeldOut *float64
}

// FoldState says where a fold's run directory stands.
func FoldState(runDir string, fold int) (done, started bool) {
	if _, err := os.Stat(train.OOFPath(runDir, fold)); err == nil {
		return true, true
	}
	if _, err := os.Stat(filepath.Join(runDir, "checkpoints", "index.json")); err == nil {
		return false, true
	}
	return false, false
}

// Run trains the folds and, once every fold is done, builds the submission.
func (o Options) Run(ctx context.Context) (*Result, error) {
	cfg, err := trainconfig.LoadChecked(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	if _, err := train.CheckEngine(&cfg.Engine); err != nil {
		return nil, fmt.Errorf("%s: %w", o.ConfigPath, err)
	}
	fp := cfg.Data.FoldsPath()
	asg, err := folds.Read(fp)
	if err != nil {
		return nil, err
	}
	if o.Folds == nil {
		for k := 0; k < asg.K; k++ {
			o.Folds = append(o.Folds, k)
		}
	}
	if o.Out == "" {
		o.Out = filepath.Join("runs", cfg.Name)
	}
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	par := max(o.Parallel, 1)
	sem := make(chan struct{}, par)
	var mu sync.Mutex
	var firstErr error
	incomplete := false
	var wg sync.WaitGroup
	for _, k := range o.Folds {
		dir := filepath.Join(o.Out, fmt.Sprintf("fold%d", k))
		done, started := FoldState(dir, k)
		if done {
			logf("event=cv fold=%d status=done dir=%s", k, dir)
			continue
		}
		run := func() {
			ok, err := o.TrainFold(ctx, k, dir, started)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("fold %d: %w", k, err)
			}
			if err == nil && !ok {
				incomplete = true
			}
		}
		if par == 1 {
			run()
			if firstErr != nil || incomplete {
				break
			}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			run()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if incomplete {
		return &Result{}, nil
	}
	if o.TrainOnly {
		return &Result{Completed: true}, nil
	}
	return finish(&cfg, o, logf)
}

// finish gathers the folds' out-of-fold and test probabilities and hands
// them to Decide.
func finish(cfg *trainconfig.Run, o Options, logf func(string, ...any)) (*Result, error) {
	ds, err := train.OpenDataset(cfg)
	if err != nil {
		return nil, err
	}
	var oofIn, testIn []ensemble.Input
	for _, k := range o.Folds {
		dir := filepath.Join(o.Out, fmt.Sprintf("fold%d", k))
		f, err := probs.Load(train.OOFPath(dir, k))
		if err != nil {
			return nil, err
		}
		oofIn = append(oofIn, ensemble.Input{Name: train.OOFPath(dir, k), File: f})
		if tp := train.TestPath(dir, k); fileExists(tp) {
			f, err := probs.Load(tp)
			if err != nil {
				return nil, err
			}
			testIn = append(testIn, ensemble.Input{Name: tp, File: f})
		}
	}
	oof, err := ensemble.Concat(oofIn)
	if err != nil {
		return nil, err
	}
	// Each OOF row is held out by the fold whose file it came from, so the
	// rules can be scored on folds their thresholds were not searched on.
	fold := make([]int, 0, oof.Rows)
	for x, in := range oofIn {
		for range in.File.Rows {
			fold = append(fold, x)
		}
	}
	d := Decision{Data: ds, OOF: oof, Fold: fold, Folds: len(oofIn), Rules: o.Rules, Out: o.Out, Specialist: len(cfg.Data.Labels) > 0}
	if len(testIn) > 0 {
		method := o.Ensemble
		if method == "" {
			method = ensemble.Mean
		}
		if d.Test, err = ensemble.Blend(testIn, method, nil, &ensemble.Input{Name: filepath.Join(o.Out, "oof.npy"), File: oof}); err != nil {
			return nil, err
		}
		if method == ensemble.Rank {
			logf("event=ensemble method=rank mapped_onto=%s", filepath.Join(o.Out, "oof.npy"))
		}
	}
	return Decide(d, logf)
}

// Decision is what the last step of a cross-validation works from: the
// out-of-fold probabilities of every training image and, when there are
// test images, their combined test probabilities.
type Decision struct {
	Data *dataset.Dataset
	OOF  *probs.File
	// Fold is the fold (0 .. Folds-1) that held out each OOF row; with
	// Folds >= 2 the threshold rules are also scored held out.
	Fold  []int
	Folds int
	Test  *probs.File // nil: no test images, no submission
	Rules []string    // nil: global and group
	Out   string      // oof.npy, thresholds.json, test.npy and submission.csv go here
	// Specialist is set when the label space is a subset (data.labels):
	// its submission would leave out every other label, so none is
	// written; imet merge puts its files into a full model's.
	Specialist bool
}

// Decide writes OUT/oof.npy, searches the threshold rules on it (choosing
// the one that scores best held out), writes OUT/thresholds.json and, with
// test probabilities, OUT/test.npy and OUT/submission.csv. An ensemble of
// several cross-validations (internal/training/plan) ends the same way.
func Decide(d Decision, logf func(string, ...any)) (*Result, error) {
	ds, oof := d.Data, d.OOF
	res := &Result{Completed: true, OOF: filepath.Join(d.Out, "oof.npy")}
	if err := probs.Save(res.OOF, oof); err != nil {
		return nil, err
	}
	pr := &thresholds.Problem{Rows: oof.Rows, Cols: oof.Cols, Probs: oof.Data, GroupOf: ds.Labels.GroupOf, Groups: ds.Labels.Groups}
	truth, err := dataset.LabelsFor(ds.Train, oof.IDs)
	if err != nil {
		var m *dataset.MissingIDError
		if errors.As(err, &m) {
			return nil, fmt.Errorf("%s: image %s is not in train.csv", res.OOF, m.ID)
		}
		return nil, err
	}
	pr.Truth = thresholds.TruthOf(truth)
	rules := d.Rules
	if len(rules) == 0 {
		rules = []string{thresholds.Global, thresholds.Group}
	}
	topts := thresholds.DefaultOptions()
	results, err := thresholds.Search(pr, rules, topts)
	if err != nil {
		return nil, err
	}
	var held []thresholds.CVResult
	if d.Folds >= 2 {
		if held, err = thresholds.CrossValidate(pr, d.Fold, d.Folds, rules, topts); err != nil {
			return nil, fmt.Errorf("%s: held-out threshold scores: %w", res.OOF, err)
		}
	}
	for x, r := range results {
		if held != nil {
			logf("event=thresholds rule=%s f2=%.5f heldout_f2=%.5f heldout_sd=%.5f mean_labels=%.2f", r.Name, r.Score, held[x].Mean, held[x].SD, r.MeanLabels)
		} else {
			logf("event=thresholds rule=%s f2=%.5f mean_labels=%.2f", r.Name, r.Score, r.MeanLabels)
		}
	}
	use := thresholds.Choose(results, held)
	best := &results[use]
	res.Rule, res.Score = best.Name, best.Score
	if held != nil {
		res.HeldOut = &held[use].Mean
		logf("event=thresholds use=%s chosen_by=heldout f2=%.5f heldout_f2=%.5f folds=%d", best.Name, best.Score, held[use].Mean, d.Folds)
	} else {
		logf("event=thresholds use=%s chosen_by=in-sample f2=%.5f (one fold: no held-out score)", best.Name, best.Score)
	}
	res.Thresholds = filepath.Join(d.Out, "thresholds.json")
	tf := &thresholds.File{Version: thresholds.FileVersion, Use: best.Name, Beta: topts.Score.Beta,
		EmptyRows: topts.Score.BothEmpty.String(), Labels: oof.Labels, Groups: ds.Labels.Groups,
		LabelGroups: ds.Labels.GroupOf, Rows: oof.Rows, Rules: results, HeldOut: held}
	if err := thresholds.WriteFile(res.Thresholds, tf); err != nil {
		return nil, err
	}
	if d.Test == nil {
		logf("event=cv status=no-test-probabilities")
		return res, nil
	}
	test := d.Test
	if err := probs.Save(filepath.Join(d.Out, "test.npy"), test); err != nil {
		return nil, err
	}
	if d.Specialist {
		logf("event=cv status=done submission=none reason=%q", fmt.Sprintf("a specialist on %d of the labels: imet merge its oof.npy and test.npy into a full model's", oof.Cols))
		return res, nil
	}
	pred, err := submission.Predict(test.Matrix, &best.Rule, ds.Labels.GroupOf, len(ds.Labels.Groups), submission.Options{})
	if err != nil {
		return nil, err
	}
	res.Submission = filepath.Join(d.Out, "submission.csv")
	if err := submission.Write(res.Submission, test.IDs, test.Labels, pred); err != nil {
		return nil, err
	}
	summary, _ := json.Marshal(res)
	logf("event=cv status=done %s", strings.ReplaceAll(string(summary), "\n", ""))
	return res, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
