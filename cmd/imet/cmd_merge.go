package main

import (
	"fmt"
	"path/filepath"
	"strconv"

	"imet/internal/data/dataset"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/probs"
)

type mergeCmd struct {
	Labels string   `help:"labels.csv of the full label space." required:"" type:"existingfile"`
	Base   string   `help:"Probabilities of every label (a full model's) that the specialists complete or override; without it the specialists must cover every label." type:"existingfile"`
	Mode   string   `help:"Where a specialist and the base both predict a label: replace (the specialist's) or mean." enum:"replace,mean" default:"replace"`
	Out    string   `help:"Merged .npy to write, with sidecars of every label." required:""`
	Files  []string `arg:"" help:"Specialists' probability files (.npy with ids and labels sidecars), e.g. a data.labels: [tag] cv's oof.npy or test.npy." type:"existingfile"`
}

func init() {
	register("merge", "Put specialists' probabilities (one label group, or any subset) into the full label space, over a base model's or on their own.", "Post-processing", &mergeCmd{})
}

func (c *mergeCmd) Run(g *Globals) error {
	ls, err := dataset.ReadLabels(c.Labels)
	if err != nil {
		return err
	}
	labels := make([]string, ls.Len())
	for j, id := range ls.IDs {
		labels[j] = strconv.Itoa(id)
	}
	var base ensemble.Input
	if c.Base != "" {
		f, err := probs.Load(c.Base)
		if err != nil {
			return err
		}
		base = ensemble.Input{Name: c.Base, File: f}
	}
	var specs []ensemble.Input
	for _, p := range c.Files {
		f, err := probs.Load(p)
		if err != nil {
			return err
		}
		specs = append(specs, ensemble.Input{Name: p, File: f})
	}
	out, err := ensemble.Merge(base, specs, labels, c.Mode)
	if err != nil {
		return err
	}
	if err := probs.Save(c.Out, out); err != nil {
		return err
	}
	if !g.Quiet {
		n := 0
		for _, s := range specs {
			n += s.File.Cols
		}
		from := "the specialists alone"
		if c.Base != "" {
			from = filepath.Base(c.Base) + " (" + c.Mode + ")"
		}
		fmt.Fprintf(g.Stdout, "merged %d files (%d specialist columns) over %s: %d images x %d labels -> %s\n", len(specs), n, from, out.Rows, out.Cols, c.Out)
	}
	return nil
}
