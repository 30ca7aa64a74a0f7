package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"imet/internal/engine/torch"
	"imet/internal/postprocess/probs"
	"imet/internal/ship/inference"
)

type predictCmd struct {
	Bundle     string `help:"Inference bundle folder (imet export). Default: the bundle this binary runs from, if any." type:"existingdir"`
	From       string `help:"Predict with a run directory, an imet cv output folder (every fold averaged) or a checkpoint file instead of a bundle." type:"path"`
	Images     string `help:"Folder of images to predict (ids are the file names without extension)." required:"" type:"existingdir"`
	Out        string `help:"submission.csv to write." required:""`
	Probs      string `help:"Also write the probabilities here (.npy, with .ids.csv and .labels.csv sidecars)."`
	BatchSize  int    `help:"Images per forward pass (default: the model's validation batch size)."`
	Threads    int    `help:"libtorch intra-op threads (default: the model's engine.threads; 0 there: one per core)."`
	Device     string `help:"Where the networks run: cpu, cuda (GPU 0) or cuda:N, whatever device trained them." default:"cpu"`
	Workers    int    `help:"Image decoding goroutines (0: one per core)."`
	TTA        string `help:"none: plain view only; empty: the model's test-time augmentation." enum:",none" default:""`
	Thresholds string `help:"Threshold file to apply instead of the model's." type:"existingfile"`
	Rule       string `help:"Rule of the threshold file to apply (default: the file's chosen one)."`
	Embeddings string `help:"Also write the penultimate-layer embeddings (the classifier's input) here: .npy with .ids.csv; with several models one file per model, NAME.0.npy, NAME.1.npy... (a second pass over the images)."`
	SkipBroken bool   `help:"Leave images that do not decode out (each reported once; its probabilities stay zero) instead of stopping at the first."`
}

func init() {
	register("predict", "Predict labels for a folder of images with a bundle, a run or a checkpoint: probabilities and submission.csv.", "Inference", &predictCmd{})
}

func (c *predictCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dev, err := torch.ParseDevice(c.Device)
	if err == nil {
		err = torch.CheckDevice(dev) // before any weights are read
	}
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	src := c.From
	if c.Bundle != "" {
		if src != "" {
			return errors.New("give --bundle or --from, not both")
		}
		src = c.Bundle
	}
	if src == "" {
		dir, ok := inference.FindBundle()
		if !ok {
			return errors.New("no model: this imet is not running from a bundle; give --bundle DIR (imet export) or --from RUN_DIR|CV_DIR|CHECKPOINT")
		}
		src = dir
	}
	p, err := inference.Open(src)
	if err != nil {
		return err
	}
	if c.Thresholds != "" {
		if err := p.UseThresholds(c.Thresholds); err != nil {
			return err
		}
	}
	paths, ids, err := inference.ListImages(c.Images)
	if err != nil {
		return err
	}
	log := io.Discard
	if !g.Quiet {
		log = g.Stderr
	}
	views := len(p.Pipeline.TTA)
	if c.TTA == "none" {
		views = 1
	}
	fmt.Fprintf(log, "event=start source=%s kind=%s models=%d images=%d views=%d device=%s precision=%s\n",
		p.Origin, p.Kind, p.Models(), len(paths), views, dev, p.Precision(dev))
	start := time.Now()
	o := inference.Options{BatchSize: c.BatchSize, Threads: c.Threads, Workers: c.Workers, TTA: c.TTA, Device: dev, SkipBroken: c.SkipBroken}
	if !g.Quiet {
		o.Progress = progressPrinter(log, start)
	}
	var broken atomic.Int64
	o.OnBroken = func(path string, err error) {
		broken.Add(1)
		fmt.Fprintf(log, "warning: left out broken image %s (--skip-broken): %v\n", path, err)
	}
	f, err := p.Predict(ctx, paths, ids, o)
	if err != nil {
		return err
	}
	if c.Probs != "" {
		if err := probs.Save(c.Probs, f); err != nil {
			return err
		}
	}
	var embFiles []string
	if c.Embeddings != "" {
		es, err := p.Embed(ctx, paths, ids, o)
		if err != nil {
			return err
		}
		for k, e := range es {
			path := c.Embeddings
			if len(es) > 1 {
				path = strings.TrimSuffix(path, ".npy") + "." + strconv.Itoa(k) + ".npy"
			}
			if err := probs.Save(path, e); err != nil {
				return err
			}
			embFiles = append(embFiles, fmt.Sprintf("%s (%d x %d embeddings)", path, e.Rows, e.Cols))
		}
	}
	st, err := p.WriteSubmission(c.Out, f, c.Rule)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "event=finish images=%d seconds=%.1f\n", len(paths), time.Since(start).Seconds())
	fmt.Fprintf(g.Stdout, "%d images, %.2f labels per image\n  %s\n", len(paths), st.MeanLabels, c.Out)
	if n := broken.Load(); n > 0 {
		fmt.Fprintf(g.Stdout, "  %d broken image(s) left out: their probabilities are zero, their submission rows only the at-least-one-label fallback\n", n)
	}
	if c.Probs != "" {
		fmt.Fprintf(g.Stdout, "  %s\n", c.Probs)
	}
	for _, e := range embFiles {
		fmt.Fprintf(g.Stdout, "  %s\n", e)
	}
	return nil
}

// progressPrinter redraws one line on a terminal and otherwise writes a
// key=value line at most every 10 s (and at the end).
func progressPrinter(w io.Writer, start time.Time) func(done, total int) {
	live := false
	// Stat, not *os.File: stderr is a redact.Writer over the file.
	if f, ok := w.(interface{ Stat() (os.FileInfo, error) }); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			live = true
		}
	}
	var last time.Time
	return func(done, total int) {
		rate := float64(done) / time.Since(start).Seconds()
		switch {
		case live:
			fmt.Fprintf(w, "\rpredict %d/%d image views (%.1f/s)", done, total, rate)
			if done == total {
				fmt.Fprintln(w)
			}
		case done == total || time.Since(last) >= 10*time.Second:
			last = time.Now()
			fmt.Fprintf(w, "event=predict done=%d total=%d views_per_s=%.1f\n", done, total, rate)
		}
	}
}
