package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"imet/internal/experiments/registry"
	"imet/internal/experiments/tracking"
	"imet/internal/training/train"
)

type trainCmd struct {
	Config     string        `help:"Run configuration (YAML); see configs/ and docs/training.md. Optional with --resume." type:"existingfile"`
	Fold       int           `help:"Fold held out for validation." default:"0"`
	RunDir     string        `help:"Run directory for checkpoints and outputs (default runs/<name>/fold<K>)."`
	Resume     string        `help:"Continue a run: its directory (from the newest checkpoint that verifies) or a checkpoint file RUN_DIR/checkpoints/step-*.ckpt (from that one)." type:"path"`
	TimeBudget time.Duration `help:"Stop cleanly before this much wall time (e.g. 8h30m): finish the step, checkpoint, exit 0."`
	AutoResume bool          `help:"Resume the run directory when it already holds a run, start it otherwise: the one command a restarted job repeats (torchrun --max-restarts, a replaced pod)."`
	trackFlags
}

func init() {
	register("train", "Train one fold of a multi-stage recipe; stops and resumes exactly.", "Training", &trainCmd{})
}

func (c *trainCmd) Run(g *Globals) error { return c.run(g) }

// run is Run with observers added to the session; tests inject faults
// through them.
func (c *trainCmd) run(g *Globals, extra ...train.Observer) error {
	ctx, stop := train.SignalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fr := train.FoldRun{ConfigPath: c.Config, Fold: c.Fold, RunDir: c.RunDir, TimeBudget: c.TimeBudget,
		ResumeFlags: c.resumeFlags(), Observers: extra, AutoResume: c.AutoResume}
	if c.Resume != "" {
		dir, ckpt, err := train.ResumeTarget(c.Resume)
		if err != nil {
			return err
		}
		fr.RunDir, fr.ResumeFrom, fr.Resume = dir, ckpt, true
	}
	if !g.Quiet {
		fr.Log = g.Stderr
	}
	cfgPath := c.Config
	if cfgPath == "" && c.Resume != "" {
		cfgPath = filepath.Join(fr.RunDir, "config.yaml")
	}
	if cfgPath != "" {
		// A GPU this libtorch lacks fails here, before the registry records a run.
		if err := train.CheckConfig(cfgPath); err != nil {
			return err
		}
	}
	var tr *tracking.Tracker
	lead := cfgPath == "" || train.LaunchRank(cfgPath, nil) == 0
	if lead {
		// one registry row and one notification per run: rank 0's
		var err error
		if tr, err = c.startTracking(g, registry.KindTrain, "", cfgPath); err != nil {
			return err
		}
	}
	if tr != nil {
		fr.Log = trackLog(tr, fr.Log)
		rec := &trainRecorder{t: tr, warn: g.Stderr}
		fr.Observers = append(fr.Observers, rec)
		fr.OnBroken = rec.OnBroken
	}
	res, runDir, err := train.TrainFold(ctx, fr)
	if tr != nil {
		switch {
		case err == nil && !res.Completed:
			tr.Stop(res.StopReason(), res.Resume)
		default:
			tr.End(err, registry.Summary{CVF2: res.BestF2})
		}
	}
	if err != nil {
		return err
	}
	if lead { // one report per data-parallel run
		report(g.Stdout, res, runDir)
	}
	return nil
}

// resumeFlags are the flags a resume must repeat to continue this run the
// same way: the configuration a resume was told to read, and where the
// run is recorded and announced.
func (c *trainCmd) resumeFlags() []string {
	var out []string
	if c.Resume != "" && c.Config != "" {
		out = append(out, "--config", c.Config)
	}
	return append(out, c.trackFlags.resumeFlags()...)
}

// report tells how a fold's session ended.
func report(w io.Writer, res train.Result, runDir string) {
	if !res.Completed {
		best := "none yet"
		if res.BestF2 >= 0 {
			best = fmt.Sprintf("%.4f", res.BestF2)
		}
		fmt.Fprintf(w, "stopped at step %d (%s), best F2 %s; continue with:\n  %s\n", res.GlobalStep, res.StopReason(), best, res.Resume)
		return
	}
	fmt.Fprintf(w, "%s done at step %d: best F2 %.4f\n", runDir, res.GlobalStep, res.BestF2)
	for _, p := range res.Outputs {
		fmt.Fprintln(w, "  "+p)
	}
}
