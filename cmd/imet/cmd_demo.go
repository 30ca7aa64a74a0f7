package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"imet/internal/data/synth"
	"imet/internal/jobs/demo"
)

type demoCmd struct {
	Out        string `help:"Directory for the sample, the runs, the submission and the plots." default:"out/demo" type:"path"`
	Data       string `help:"An iMet-layout data set to use instead of the embedded synthetic sample." type:"existingdir"`
	Folds      int    `help:"Folds for cross-validation." default:"3"`
	Epochs     int    `help:"Training epochs per fold." default:"8"`
	Train      int    `help:"Training images in the synthetic sample." default:"1200"`
	Test       int    `help:"Test images in the synthetic sample." default:"300"`
	Registry   string `help:"Run registry (default OUT/registry.db)." type:"path"`
	NoRegistry bool   `help:"Do not record the run."`
	Device     string `help:"Where to train and predict: cpu, cuda or cuda:N (the GPU check runs the demo on cuda)." default:"cpu"`
}

func init() {
	register("demo", "The main job end to end on the embedded sample: data, folds, cross-validated training, thresholds, TTA, ensemble, submission, scored on clean labels.", "", &demoCmd{})
}

func (c *demoCmd) Run(g *Globals) error {
	start := time.Now()
	cfg := synth.Default()
	cfg.Train, cfg.Test = c.Train, c.Test
	o := demo.Options{Out: c.Out, Data: c.Data, Synth: cfg, Folds: c.Folds, Epochs: c.Epochs, Device: c.Device}
	if !g.Quiet {
		o.Log = g.Stderr
	}
	p, err := demo.Prepare(o)
	if err != nil {
		return err
	}
	reg := c.Registry
	if reg == "" {
		reg = filepath.Join(c.Out, "registry.db")
	}
	cvOut := filepath.Join(c.Out, "cv")
	cv := &cvCmd{Config: p.Recipe, Out: cvOut, Fold: -1, Parallel: 1, Rules: []string{"global", "group", "label"}, Ensemble: "mean"}
	cv.Registry, cv.NoRegistry = reg, c.NoRegistry
	if err := cv.Run(g); err != nil {
		return err
	}
	sub := filepath.Join(cvOut, "submission.csv")
	if _, err := os.Stat(sub); err != nil {
		// The run stopped early (a signal); cv has said how to continue.
		return nil
	}
	fmt.Fprintf(g.Stdout, "\ndemo finished in %s\n", time.Since(start).Round(time.Second))
	if truth := filepath.Join(p.Data, "test_labels.csv"); fileExists(truth) {
		f2, err := demo.CleanScore(p.Data, sub, truth)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.Stdout, "test F2 on the clean labels: %.4f\n", f2)
	}
	fmt.Fprintf(g.Stdout, "  submission   %s\n", sub)
	if !c.NoRegistry {
		plotsDir := filepath.Join(c.Out, "plots")
		pc := &plotsCmd{Out: plotsDir, Format: "png"}
		pc.Registry = reg
		quiet := *g
		quiet.Stdout = discard{}
		if err := pc.Run(&quiet); err != nil {
			// A rerun that found every fold trained records no new curves.
			fmt.Fprintf(g.Stdout, "  plots        none drawn: %v\n", err)
		} else {
			fmt.Fprintf(g.Stdout, "  plots        %s\n", plotsDir)
		}
		fmt.Fprintf(g.Stdout, "  run record   imet runs show --registry %s\n", reg)
		fmt.Fprintf(g.Stdout, "  dashboard    imet dashboard --registry %s\n", reg)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
