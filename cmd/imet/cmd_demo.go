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
	Folds      int    `help:"Folds for cross-validation." default:"2"`
	Epochs     int    `help:"Epochs of the whole-network stage after the one-epoch head stage (the from-scratch baseline trains one more)." default:"3"`
	Size       int    `help:"Square side the images are resized to." default:"112"`
	NoScratch  bool   `help:"Skip the from-scratch baseline (the same network, data and passes, random weights)."`
	Assets     string `help:"npm assets directory holding nsfwjs (default $IMET_ASSETS, else .cache/npm/node_modules)." type:"path"`
	Train      int    `help:"Training images in the synthetic sample." default:"1200"`
	Test       int    `help:"Test images in the synthetic sample." default:"300"`
	Registry   string `help:"Run registry (default OUT/registry.db)." type:"path"`
	NoRegistry bool   `help:"Do not record the run."`
	Device     string `help:"Where to train and predict: cpu, cuda or cuda:N (the GPU check runs the demo on cuda)." default:"cpu"`
}

func init() {
	register("demo", "The main job end to end on the embedded sample: data, folds, cross-validated fine-tuning of nsfwjs' ImageNet-started MobileNetV2, thresholds, TTA, ensemble, submission, scored on clean labels beside the same network trained from scratch.", "", &demoCmd{})
}

func (c *demoCmd) Run(g *Globals) error {
	start := time.Now()
	cfg := synth.Default()
	cfg.Train, cfg.Test = c.Train, c.Test
	o := demo.Options{Out: c.Out, Data: c.Data, Synth: cfg, Folds: c.Folds, Epochs: c.Epochs, Size: c.Size,
		Assets: c.Assets, Scratch: !c.NoScratch, Device: c.Device}
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
	sub, err := c.crossValidate(g, p.Recipe, cvOut, reg)
	if sub == "" || err != nil {
		return err
	}
	// Drawn now, while the fine-tuning is the newest run.
	plotsDir := filepath.Join(c.Out, "plots")
	plotErr := error(nil)
	if !c.NoRegistry {
		pc := &plotsCmd{Out: plotsDir, Format: "png"}
		pc.Registry = reg
		quiet := *g
		quiet.Stdout = discard{}
		plotErr = pc.Run(&quiet)
	}
	var scratchSub string
	if p.Scratch != "" {
		if scratchSub, err = c.crossValidate(g, p.Scratch, filepath.Join(c.Out, "cv-scratch"), reg); scratchSub == "" || err != nil {
			return err
		}
	}
	fmt.Fprintf(g.Stdout, "\ndemo finished in %s\n", time.Since(start).Round(time.Second))
	if truth := filepath.Join(p.Data, "test_labels.csv"); fileExists(truth) {
		f2, err := demo.CleanScore(p.Data, sub, truth)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.Stdout, "test F2 on the clean labels: %.4f  (MobileNetV2 fine-tuned from nsfwjs' ImageNet-started weights, %d px)\n", f2, c.Size)
		if scratchSub != "" {
			f2s, err := demo.CleanScore(p.Data, scratchSub, truth)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "from scratch, same data and passes: %.4f  (the same network from random weights)\n", f2s)
		}
	}
	fmt.Fprintf(g.Stdout, "  submission   %s\n", sub)
	if scratchSub != "" {
		fmt.Fprintf(g.Stdout, "  baseline     %s\n", scratchSub)
	}
	if !c.NoRegistry {
		if plotErr != nil {
			// A rerun that found every fold trained records no new curves.
			fmt.Fprintf(g.Stdout, "  plots        none drawn: %v\n", plotErr)
		} else {
			fmt.Fprintf(g.Stdout, "  plots        %s\n", plotsDir)
		}
		fmt.Fprintf(g.Stdout, "  run record   imet runs show --registry %s\n", reg)
		fmt.Fprintf(g.Stdout, "  dashboard    imet dashboard --registry %s\n", reg)
	}
	return nil
}

// crossValidate runs imet cv on recipe into out and returns its
// submission, or "" when the run stopped early (a signal: cv has said how
// to continue).
func (c *demoCmd) crossValidate(g *Globals, recipe, out, reg string) (string, error) {
	// Fold -1 is the flag's default: every fold, then the combination.
	cv := &cvCmd{Config: recipe, Out: out, Parallel: 1, Rules: []string{"global", "group", "label"}, Ensemble: "mean", Fold: -1}
	cv.Registry, cv.NoRegistry = reg, c.NoRegistry
	if err := cv.Run(g); err != nil {
		return "", err
	}
	sub := filepath.Join(out, "submission.csv")
	if _, err := os.Stat(sub); err != nil {
		return "", nil
	}
	return sub, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
