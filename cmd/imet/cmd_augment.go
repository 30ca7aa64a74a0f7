package main

import (
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"imet/internal/base/atomicfile"
	"imet/internal/vision/imageio"
	"imet/internal/vision/pipeline"
)

type augmentCmd struct {
	Preview augmentPreviewCmd `cmd:"" help:"Render a PNG grid of originals, augmented draws and TTA variants."`
}

type augmentPreviewCmd struct {
	Pipeline string `help:"Pipeline name: a built-in (${pipelines}) or one defined in --config." default:"resize320"`
	Config   string `help:"YAML file with a pipelines: section defining more pipelines." type:"existingfile"`
	Images   string `help:"Directory of JPEG/PNG images; the first --rows in name order are shown." required:"" type:"existingdir"`
	Out      string `help:"Output PNG file." required:""`
	Rows     int    `help:"Number of images (rows)." default:"6"`
	Draws    int    `help:"Training augmentation draws per image." default:"4"`
	Cell     int    `help:"Cell size in pixels." default:"160"`
	Seed     uint64 `help:"Seed of the draws." default:"0"`
}

func init() {
	register("augment", "Inspect augmentation pipelines.", "", &augmentCmd{})
}

// Run renders the grid and writes it atomically.
func (c *augmentPreviewCmd) Run(g *Globals) error {
	var cfg *pipeline.Config
	if c.Config != "" {
		var err error
		if cfg, err = pipeline.LoadConfig(c.Config); err != nil {
			return err
		}
	}
	p, err := pipeline.Get(c.Pipeline, cfg)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(c.Images)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("%s: no .jpg, .jpeg or .png images", c.Images)
	}
	var imgs []*imageio.Image
	for _, n := range names[:min(len(names), c.Rows)] {
		img, err := imageio.Decode(filepath.Join(c.Images, n), imageio.Hint{})
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	}
	grid, err := pipeline.Preview(p, imgs, pipeline.PreviewOptions{Draws: c.Draws, Cell: c.Cell, Seed: c.Seed})
	if err != nil {
		return err
	}
	if err := atomicfile.Write(c.Out, 0o644, func(w io.Writer) error { return png.Encode(w, grid) }); err != nil {
		return err
	}
	var tta []string
	for _, v := range p.TTA {
		tta = append(tta, v.Name)
	}
	if !g.Quiet {
		fmt.Fprintf(g.Stdout, "%s: %d images; columns: original | %d train draws | TTA %s\n",
			c.Out, len(imgs), c.Draws, strings.Join(tta[:min(len(tta), max(c.Draws, 2))], ", "))
	}
	return nil
}
