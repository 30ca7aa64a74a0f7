package main

import (
	"fmt"
	"os"
	"path/filepath"

	"imet/internal/ship/inference"
)

type exportCmd struct {
	Source     string `arg:"" help:"Run directory, imet cv output folder (every fold's model), checkpoint file, or bundle." type:"path"`
	Out        string `help:"Bundle folder to write (replaced only once the new bundle is complete)." required:""`
	Thresholds string `help:"Threshold file to ship instead of the model's." type:"existingfile"`
	Binary     string `help:"imet binary to ship (default: this one). It must be built with the bundle run path (make build)." type:"existingfile"`
}

func init() {
	register("export", "Write an offline inference bundle: binary, shared libraries, weights, preprocessing, labels, thresholds.", "Inference", &exportCmd{})
}

func (c *exportCmd) Run(g *Globals) error {
	p, err := inference.Open(c.Source)
	if err != nil {
		return err
	}
	if c.Thresholds != "" {
		if err := p.UseThresholds(c.Thresholds); err != nil {
			return err
		}
	}
	bin := c.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	m, err := p.Export(c.Out, bin)
	if err != nil {
		return err
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	fmt.Fprintf(g.Stdout, "%s: %s from %s (%d model(s)), %d files, %.1f MB, needs glibc >= %s\n  run: %s --images IMGDIR --out submission.csv\n",
		c.Out, p.Spec.Arch, p.Origin, p.Models(), len(m.Files), float64(size)/(1<<20), m.GlibcMin, filepath.Join(c.Out, "imet")+" predict")
	return nil
}
