package main

import (
	"fmt"
	"path/filepath"
	"time"

	"imet/internal/data/dataset"
	"imet/internal/vision/packed"
)

type datasetsPackCmd struct {
	Dir     string `arg:"" help:"Data set directory in the iMet layout; every image train.csv and sample_submission.csv list is packed." type:"existingdir"`
	Out     string `help:"Pack file to write (default: images.pack in the data set directory, where data.packed: images.pack finds it)."`
	MaxSide int    `help:"Cap the longest side of stored images at this many pixels (0: full size, batches bit-identical to decoding). Set it at or above what the pipeline's resize needs."`
	Workers int    `help:"Decoding goroutines; 0 uses every core."`
}

func (c *datasetsPackCmd) Run(g *Globals) error {
	ds, err := dataset.Open(c.Dir, dataset.Options{})
	if err != nil {
		return err
	}
	var keys []string
	for _, r := range ds.Train {
		keys = append(keys, dataset.TrainDir+"/"+r.ID+ds.Ext)
	}
	for _, id := range ds.TestIDs {
		keys = append(keys, dataset.TestDir+"/"+id+ds.Ext)
	}
	out := c.Out
	if out == "" {
		out = filepath.Join(c.Dir, "images.pack")
	}
	start := time.Now()
	opt := packed.Options{MaxSide: c.MaxSide, Workers: c.Workers}
	if !g.Quiet {
		// 109k images take minutes: say how far it got, every 10%.
		opt.Progress = func(done, total int) {
			if step := max(total/10, 1); done%step == 0 && done < total {
				fmt.Fprintf(g.Stderr, "packed %d of %d images (%.0fs)\n", done, total, time.Since(start).Seconds())
			}
		}
	}
	st, err := packed.Build(out, c.Dir, keys, opt)
	if err != nil {
		return err
	}
	if !g.Quiet {
		fmt.Fprintf(g.Stdout, "wrote %s in %.1fs: %d images (%d capped at %d px), %.1f MB of pixels from %.1f MB of files\n",
			out, time.Since(start).Seconds(), st.Images, st.Capped, c.MaxSide, float64(st.Bytes)/1e6, float64(st.SourceBytes)/1e6)
		fmt.Fprintf(g.Stdout, "use it with data.packed: %s in the run configuration\n", out)
	}
	return nil
}
