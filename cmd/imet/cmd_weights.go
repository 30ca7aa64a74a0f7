package main

import (
	"fmt"
	"text/tabwriter"

	"imet/internal/training/trainconfig"
	"imet/internal/zoo/models"
	"imet/internal/zoo/pretrained"
	"imet/internal/zoo/weights"
)

// weightsCmd groups what imet can tell about a pretrained-weight file
// before a training run depends on it.
type weightsCmd struct {
	Inspect weightsInspectCmd `cmd:"" help:"List a weight file's tensors (PyTorch .pth/.pt in either format, .safetensors, tfjs model dir); with --arch, report how it would load into that architecture."`
}

type weightsInspectCmd struct {
	File    string `arg:"" help:"Weight file, TensorFlow.js model directory, or imet run directory or checkpoint." type:"path"`
	Arch    string `help:"Check the file against this zoo architecture exactly as model.pretrained loads it, print the load report and the configuration lines that load it."`
	From    string `help:"Mapping of the file's names (auto, torchvision, cadene, timm, keras, imet)." default:"auto"`
	Variant string `help:"Architecture variant (keras); default: keras for a Keras file, else the reference implementation."`
	Classes int    `help:"Number of classes of the model checked against (a differing head is reported as re-initialised)." default:"1000"`
	Names   bool   `help:"Print every tensor (default: only a summary)."`
}

func init() {
	register("weights", "Inspect pretrained-weight files and check them against the model zoo.", "", &weightsCmd{})
}

func (c *weightsInspectCmd) Run(g *Globals) error {
	if c.From == pretrained.FromImet || (c.From == pretrained.FromAuto && pretrained.IsImet(c.File)) {
		if c.Arch == "" {
			return fmt.Errorf("%s is an imet run or checkpoint: name its architecture with --arch", c.File)
		}
	} else if err := c.summary(g); err != nil {
		return err
	}
	if c.Arch == "" {
		return nil
	}
	variant := c.Variant
	if src, ok := trainconfig.SourceRunModel(c.File); ok && variant == "" {
		variant = src.Variant // an imet run: the network it trained
	}
	keras := c.From == pretrained.FromKeras || (c.From == pretrained.FromAuto && pretrained.IsKeras(c.File))
	if variant == "" && keras && models.CheckVariant(c.Arch, models.VariantKeras) == nil {
		variant = models.VariantKeras
	}
	opts := models.Options{NumClasses: c.Classes, Variant: variant}
	r, err := pretrained.Check(c.Arch, opts, pretrained.Source{Path: c.File, From: c.From})
	if r != nil {
		fmt.Fprintln(g.Stdout, r)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "%s loads into %s with these lines of a run configuration:\n", c.File, c.Arch)
	fmt.Fprint(g.Stdout, trainconfig.PretrainedLines(c.Arch, variant, c.File, r.From))
	return nil
}

// summary prints the file's format and tensors.
func (c *weightsInspectCmd) summary(g *Globals) error {
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
		return tw.Flush()
	}
	return nil
}
