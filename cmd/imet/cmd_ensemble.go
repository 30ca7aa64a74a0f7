package main

import (
	"fmt"

	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/probs"
)

type ensembleCmd struct {
	Method  string    `help:"How to combine: ${methods} (docs/postprocessing.md), or concat (stack disjoint out-of-fold parts)." enum:"${methods_enum}" default:"mean"`
	Weights []float64 `help:"One weight per file (method weighted, or to weight any method)." sep:","`
	Out     string    `help:"Combined .npy to write (with its .ids.csv and, when the inputs have one, .labels.csv)." required:""`
	Files   []string  `arg:"" help:"Probability files (.npy with sidecars): folds, models, TTA passes." type:"existingfile"`
}

func init() {
	register("ensemble", "Combine probability files (folds, models, TTA passes) after checking their images and labels line up.", "Post-processing", &ensembleCmd{})
}

func (c *ensembleCmd) Run(g *Globals) error {
	var in []ensemble.Input
	for _, p := range c.Files {
		f, err := probs.Load(p)
		if err != nil {
			return err
		}
		in = append(in, ensemble.Input{Name: p, File: f})
	}
	var out *probs.File
	var err error
	if c.Method == concatMethod {
		if c.Weights != nil {
			return fmt.Errorf("--weights makes no sense with --method concat")
		}
		out, err = ensemble.Concat(in)
	} else {
		out, err = ensemble.Combine(in, ensemble.Method(c.Method), c.Weights)
	}
	if err != nil {
		return err
	}
	if err := probs.Save(c.Out, out); err != nil {
		return err
	}
	if !g.Quiet {
		fmt.Fprintf(g.Stdout, "%s of %d files: %d images x %d labels -> %s\n", c.Method, len(in), out.Rows, out.Cols, c.Out)
	}
	return nil
}
