// Package lrfind is the learning-rate range test (Leslie Smith, "Cyclical
// Learning Rates for Training Neural Networks", 2015; fastai's lr_find):
// train for a few hundred steps while the rate grows exponentially from
// tiny to huge, and read a good rate off the loss curve, where the loss
// falls fastest.
//
// The sweep runs a recipe's stage as training would (the fold's training
// rows, the stage's freezing, optimizer, loss, batch size and mixing, the
// model with its pretrained weights) through train.Probe, on a model built
// for the purpose and thrown away: no run directory, checkpoint or registry
// entry. As in fastai, the loss is smoothed exponentially (β = 0.98, with
// bias correction, so the first points are not pulled toward 0), and the
// sweep stops once the smoothed loss exceeds 4× the best seen, or the loss
// is not finite.
//
// The suggested rate is the steepest descent of the smoothed loss against
// log(rate): the point where the loss falls fastest on its way down to its
// lowest point, leaving out the first tenth of the sweep and its last five
// points (fastai's trims, which drop the start's noise and the
// divergence). Unlike fastai's "steep" rule, nothing past the lowest point
// counts: on small data a loss that has started to blow up can dip again,
// more steeply than it ever descended, at a rate far too high. A loss that
// never falls gets the least steep rise. The rate at the smoothed minimum
// divided by 10, fastai's older rule, is reported beside it.
package lrfind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"imet/internal/base/atomicfile"
	"imet/internal/experiments/plots"
	"imet/internal/training/train"
	"imet/internal/training/trainconfig"
)

// Options shape the sweep.
type Options struct {
	Start float64 `json:"start"` // first rate
	End   float64 `json:"end"`   // last rate, reached at step Steps-1
	Steps int     `json:"steps"` // most optimizer steps
	// Beta is the smoothing factor of the loss.
	Beta float64 `json:"beta"`
	// Diverge stops the sweep once the smoothed loss exceeds Diverge × the
	// best smoothed loss.
	Diverge float64 `json:"diverge"`
}

// Defaults are fastai's: 1e-7 to 10 over 100 steps, β 0.98, stop at 4×.
func Defaults() Options { return Options{Start: 1e-7, End: 10, Steps: 100, Beta: 0.98, Diverge: 4} }

// Check reports options that cannot make a sweep.
func (o Options) Check() error {
	switch {
	case !(o.Start > 0) || !(o.End > o.Start) || math.IsInf(o.End, 0):
		return fmt.Errorf("lrfind: rates from %g to %g; want 0 < start < end", o.Start, o.End)
	case o.Steps < 2:
		return fmt.Errorf("lrfind: %d steps; want at least 2", o.Steps)
	case !(o.Beta >= 0 && o.Beta < 1):
		return fmt.Errorf("lrfind: beta %g; want 0 <= beta < 1", o.Beta)
	case !(o.Diverge > 1):
		return fmt.Errorf("lrfind: divergence factor %g; want more than 1", o.Diverge)
	}
	return nil
}

// Rate is step i's rate: Start·(End/Start)^(i/(Steps-1)), the same factor
// from each step to the next.
func (o Options) Rate(i int) float64 {
	return o.Start * math.Pow(o.End/o.Start, float64(i)/float64(o.Steps-1))
}

// Point is one step of the sweep.
type Point struct {
	LR       float64 `json:"lr"`
	Loss     float64 `json:"loss"`
	Smoothed float64 `json:"smoothed"`
}

// Recorder smooths a sweep's losses and says when it diverged.
type Recorder struct {
	o        Options
	avg      float64
	best     float64
	Points   []Point
	Diverged bool
}

// NewRecorder returns an empty recorder for o.
func NewRecorder(o Options) *Recorder { return &Recorder{o: o} }

// Add records the loss of a step at rate lr and reports whether the sweep
// should go on. A loss that is not finite ends it as diverged without
// being recorded (JSON has no NaN).
func (r *Recorder) Add(lr, loss float64) bool {
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		r.Diverged = true
		return false
	}
	r.avg = r.o.Beta*r.avg + (1-r.o.Beta)*loss
	sm := r.avg / (1 - math.Pow(r.o.Beta, float64(len(r.Points)+1)))
	r.Points = append(r.Points, Point{LR: lr, Loss: loss, Smoothed: sm})
	if len(r.Points) == 1 || sm < r.best {
		r.best = sm
	}
	if sm > r.o.Diverge*r.best {
		r.Diverged = true
		return false
	}
	return true
}

// Result is a finished sweep.
type Result struct {
	Options
	Stage    string  `json:"stage"`
	Fold     int     `json:"fold"`
	Points   []Point `json:"points"`
	Diverged bool    `json:"diverged"`
	// Suggested is the steepest descent of the smoothed loss (see the
	// package comment); SuggestedIndex is its point.
	Suggested      float64 `json:"suggested"`
	SuggestedIndex int     `json:"suggested_index"`
	// MinOver10 is the rate of the lowest smoothed loss divided by 10.
	MinOver10 float64 `json:"min_over_10"`
}

// Suggestion is the rule Suggested follows, as the figure names it.
const Suggestion = "steepest descent"

// Result returns the sweep so far with its suggestions; an error when it
// has fewer than two points, too few for a slope.
func (r *Recorder) Result() (*Result, error) {
	res := &Result{Options: r.o, Points: r.Points, Diverged: r.Diverged}
	n := len(r.Points)
	if n < 2 {
		return nil, fmt.Errorf("lrfind: the sweep stopped after %d step(s), too few for a slope; lower the start rate", n)
	}
	lo, hi := n/10, n-5
	if hi-lo < 2 {
		lo, hi = 0, n
	}
	// Only the way down to the lowest point counts: past it, a dip in a
	// loss that has started to blow up can be steeper than the real
	// descent, and its rate is far too high.
	bottom := lo
	for i := lo; i < hi; i++ {
		if r.Points[i].Smoothed < r.Points[bottom].Smoothed {
			bottom = i
		}
	}
	if bottom > lo {
		hi = bottom + 1
	}
	best := lo
	bestGrad := math.Inf(1)
	for i := lo; i+1 < hi; i++ {
		p, q := r.Points[i], r.Points[i+1]
		g := (q.Smoothed - p.Smoothed) / (math.Log(q.LR) - math.Log(p.LR))
		if g < bestGrad {
			best, bestGrad = i, g
		}
	}
	res.SuggestedIndex, res.Suggested = best, r.Points[best].LR
	m := 0
	for i, p := range r.Points {
		if p.Smoothed < r.Points[m].Smoothed {
			m = i
		}
	}
	res.MinOver10 = r.Points[m].LR / 10
	return res, nil
}

// Run sweeps stage stage of cfg on fold's training rows, building the data
// and the model as training does (train.OpenFold, train.BuildModel). log,
// when not nil, gets the weight-loading report and a line every ten steps.
func Run(ctx context.Context, cfg trainconfig.Run, fold, stage int, o Options, log io.Writer) (*Result, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if stage < 0 || stage >= len(cfg.Stages) {
		return nil, fmt.Errorf("stage %d: the recipe has stages 0..%d", stage, len(cfg.Stages)-1)
	}
	fd, err := train.OpenFold(&cfg, fold)
	if err != nil {
		return nil, err
	}
	model, report, err := train.BuildModel(&cfg, fd.Dataset.Labels.Len())
	if err != nil {
		return nil, err
	}
	if report != "" && log != nil {
		fmt.Fprintln(log, report)
	}
	rec := NewRecorder(o)
	_, err = train.Probe(ctx, train.ProbeOptions{Config: cfg, Stage: stage, Model: model, Train: fd.Train, Steps: o.Steps, LR: o.Rate,
		After: func(step int, lr, loss float64) bool {
			more := rec.Add(lr, loss)
			if log != nil && (step%10 == 0 || !more) {
				sm := math.NaN()
				if n := len(rec.Points); n > 0 {
					sm = rec.Points[n-1].Smoothed
				}
				fmt.Fprintf(log, "event=lr-find step=%d lr=%.3g loss=%.5g smoothed=%.5g\n", step, lr, loss, sm)
			}
			return more
		}})
	if err != nil {
		return nil, err
	}
	res, err := rec.Result()
	if err != nil {
		return nil, err
	}
	res.Stage, res.Fold = cfg.Stages[stage].Name, fold
	return res, nil
}

// Figure draws the sweep with its suggestion marked.
func (r *Result) Figure(title string) (*plots.Figure, error) {
	lr := make([]float64, len(r.Points))
	loss := make([]float64, len(r.Points))
	sm := make([]float64, len(r.Points))
	for i, p := range r.Points {
		lr[i], loss[i], sm[i] = p.LR, p.Loss, p.Smoothed
	}
	return plots.LRFinder(title, lr, loss, sm, r.Suggested, Suggestion)
}

// Files are the names Write gives its outputs.
var Files = []string{"lr-find.json", "lr-find.png", "lr-find.svg"}

// Write saves the points and suggestions as lr-find.json and the figure as
// lr-find.png and lr-find.svg in dir, and returns their paths.
func (r *Result) Write(dir, title string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(Files))
	for i, f := range Files {
		paths[i] = filepath.Join(dir, f)
	}
	if err := atomicfile.WriteBytes(paths[0], append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	fig, err := r.Figure(title)
	if err != nil {
		return nil, err
	}
	for _, p := range paths[1:] {
		if err := fig.Save(p); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// ReadResult reads a lr-find.json written by Write.
func ReadResult(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Points) == 0 {
		return nil, errors.New(path + ": no points")
	}
	return &r, nil
}
