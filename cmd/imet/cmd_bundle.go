package main

import (
	"fmt"

	"imet/internal/ship/bundle"
)

// bundleCmd groups the commands about offline bundles.
type bundleCmd struct {
	Verify bundleVerifyCmd `cmd:"" help:"Check every file of a bundle (binary, lib/, model files) against its manifest, and that ld.so would load it."`
}

func init() {
	register("bundle", "Check offline inference bundles (imet export).", "Inference", &bundleCmd{})
}

type bundleVerifyCmd struct {
	Dir string `arg:"" help:"Bundle folder." type:"existingdir"`
}

func (c *bundleVerifyCmd) Run(g *Globals) error {
	if err := bundle.Verify(c.Dir); err != nil {
		return err
	}
	if err := bundle.Check(c.Dir); err != nil {
		return err
	}
	m, err := bundle.ReadManifest(c.Dir)
	if err != nil {
		return err
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	if !g.Quiet {
		fmt.Fprintf(g.Stdout, "ok: %s: %d files (%.1f MB) match %s; every library loads from the bundle (glibc >= %s from the system)\n",
			c.Dir, len(m.Files), float64(size)/(1<<20), bundle.ManifestName, m.GlibcMin)
	}
	return nil
}
