package main

import (
	"fmt"
	"text/tabwriter"

	"imet/internal/zoo/models"
	"imet/internal/zoo/weights"
)

// weightsCmd groups what imet can tell about a pretrained-weight file
// before a training run depends on it.
type weightsCmd struct {
	Inspect weightsInspectCmd `cmd:"" help:"List a weight file's tensors (PyTorch .pth/.pt in either format, .safetensors, tfjs model dir); with --arch, report how it would load into that architecture."`
}

type weightsInspectCmd struct {
	File    string `arg:"" help:"Weight file, or a TensorFlow.js model directory." type:"path"`
	Arch    string `help:"Check the file against this zoo architecture and print the load report (missing, unexpected, mis-shaped keys; head re-initialised)."`
	From    string `help:"Key names the file uses when they are not the architecture's own, e.g. timm for a timm SE-ResNeXt."`
	Classes int    `help:"Number of classes of the model checked against (a differing head is reported as re-initialised)." default:"1000"`
	Names   bool   `help:"Print every tensor (default: only a summary)."`
}

func init() {
	register("weights", "Inspect pretrained-weight files and check them against the model zoo.", "", &weightsCmd{})
}

func (c *weightsInspectCmd) Run(g *Globals) error {
	format, err := weights.Detect(c.File)
	if err != nil {
		return err
	}
	set, err := weights.Load(c.File)
	if err != nil {
		return err
	}
	var params int64
	dtypes := map[weights.DType]int{}
	for _, t := range set {
		params += t.Numel()
		dtypes[t.DType]++
	}
	fmt.Fprintf(g.Stdout, "%s: %s, %d tensors, %d values, dtypes %v\n", c.File, format, len(set), params, dtypes)
	if c.Names {
		tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
		for _, n := range set.Names() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", n, weights.ShapeString(set[n].Shape), set[n].DType)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if c.Arch == "" {
		return nil
	}
	m, err := models.New(c.Arch, models.Options{NumClasses: c.Classes})
	if err != nil {
		return err
	}
	set, err = models.PrepareKeys(c.Arch, set, c.From)
	if err != nil {
		return err
	}
	r, err := models.LoadWeights(m, set, weights.LoadOptions{})
	fmt.Fprintln(g.Stdout, r)
	if err != nil {
		return fmt.Errorf("%s does not load into %s", c.File, c.Arch)
	}
	fmt.Fprintf(g.Stdout, "%s loads into %s\n", c.File, c.Arch)
	return nil
}
