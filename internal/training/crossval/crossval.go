// Package crossval runs the whole K-fold workflow of the iMet solutions in
// one call: train every fold (resuming folds already started, skipping
// folds already finished), concatenate the out-of-fold probabilities,
// search decision thresholds on them, ensemble the folds' test
// probabilities, and write submission.csv.
package crossval

import (
	"context"
	"encoding/json"
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
}

// Result is where the outputs went.
type Result struct {
	Completed  bool // false: some fold stopped early (time budget); rerun to continue
	OOF        string
	Thresholds string
	Submission string
	Rule       string
	Score      float64
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
	cfg, err := trainconfig.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	if _, err := train.CheckEngine(&cfg.Engine); err != nil {
		return nil, fmt.Errorf("%s: %w", o.ConfigPath, err)
	}
	fp := cfg.Data.Folds
	if !filepath.IsAbs(fp) {
		fp = filepath.Join(cfg.Data.Root, fp)
	}
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
	return finish(&cfg, o, logf)
}

// finish searches thresholds on the OOF probabilities and writes the
// submission from the ensembled test probabilities.
func finish(cfg *trainconfig.Run, o Options, logf func(string, ...any)) (*Result, error) {
	ds, err := dataset.Open(cfg.Data.Root, dataset.Options{SkipImages: true})
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
	res := &Result{Completed: true, OOF: filepath.Join(o.Out, "oof.npy")}
	if err := probs.Save(res.OOF, oof); err != nil {
		return nil, err
	}
	truthByID := map[string][]int{}
	for _, r := range ds.Train {
		truthByID[r.ID] = r.Labels
	}
	pr := &thresholds.Problem{Rows: oof.Rows, Cols: oof.Cols, Probs: oof.Data, GroupOf: ds.Labels.GroupOf, Groups: ds.Labels.Groups}
	for _, id := range oof.IDs {
		t, ok := truthByID[id]
		if !ok {
			return nil, fmt.Errorf("%s: image %s is not in train.csv", res.OOF, id)
		}
		row := make([]int32, len(t))
		for i, c := range t {
			row[i] = int32(c)
		}
		pr.Truth = append(pr.Truth, row)
	}
	rules := o.Rules
	if len(rules) == 0 {
		rules = []string{thresholds.Global, thresholds.Group}
	}
	topts := thresholds.DefaultOptions()
	results, err := thresholds.Search(pr, rules, topts)
	if err != nil {
		return nil, err
	}
	best := thresholds.Best(results)
	for _, r := range results {
		logf("event=thresholds rule=%s f2=%.5f mean_labels=%.2f", r.Name, r.Score, r.MeanLabels)
	}
	res.Rule, res.Score = best.Name, best.Score
	res.Thresholds = filepath.Join(o.Out, "thresholds.json")
	tf := &thresholds.File{Version: thresholds.FileVersion, Use: best.Name, Beta: topts.Score.Beta,
		EmptyRows: topts.Score.BothEmpty.String(), Labels: oof.Labels, Groups: ds.Labels.Groups,
		LabelGroups: ds.Labels.GroupOf, Rows: oof.Rows, Rules: results}
	if err := thresholds.WriteFile(res.Thresholds, tf); err != nil {
		return nil, err
	}
	if len(testIn) == 0 {
		logf("event=cv status=no-test-probabilities")
		return res, nil
	}
	method := o.Ensemble
	if method == "" {
		method = ensemble.Mean
	}
	test, err := ensemble.Combine(testIn, method, nil)
	if err != nil {
		return nil, err
	}
	if err := probs.Save(filepath.Join(o.Out, "test.npy"), test); err != nil {
		return nil, err
	}
	pred, err := submission.Predict(test.Matrix, &best.Rule, ds.Labels.GroupOf, len(ds.Labels.Groups), submission.Options{})
	if err != nil {
		return nil, err
	}
	res.Submission = filepath.Join(o.Out, "submission.csv")
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
