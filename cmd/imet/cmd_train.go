package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"imet/internal/atomicfile"
	"imet/internal/config"
	"imet/internal/probs"
	"imet/internal/train"
	"imet/internal/trainconfig"
)

type trainCmd struct {
	Config     string        `help:"Run configuration (YAML); see configs/ and docs/training.md. Optional with --resume." type:"existingfile"`
	Fold       int           `help:"Fold held out for validation." default:"0"`
	RunDir     string        `help:"Run directory for checkpoints and outputs (default runs/<name>/fold<K>)."`
	Resume     string        `help:"Continue the run in this directory from its newest checkpoint." type:"existingdir"`
	TimeBudget time.Duration `help:"Stop cleanly before this much wall time (e.g. 8h30m): finish the step, checkpoint, exit 0."`
}

func init() {
	register("train", "Train one fold of a multi-stage recipe; stops and resumes exactly.", "Training", &trainCmd{})
}

// runInfo is what a run directory records besides its configuration, so
// that --resume needs nothing else.
type runInfo struct {
	Fold int `json:"fold"`
}

func (c *trainCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := trainFold(ctx, g, c.Config, c.Fold, c.RunDir, c.Resume, c.TimeBudget)
	return err
}

// trainFold runs or resumes one fold and reports how it ended.
func trainFold(ctx context.Context, g *Globals, cfgPath string, fold int, runDir, resume string, budget time.Duration) (train.Result, error) {
	var res train.Result
	if resume != "" {
		runDir = resume
		data, err := os.ReadFile(filepath.Join(runDir, "run.json"))
		if err != nil {
			return res, fmt.Errorf("--resume %s: not a run directory: %w", runDir, err)
		}
		var ri runInfo
		if err := json.Unmarshal(data, &ri); err != nil {
			return res, fmt.Errorf("%s: %w", filepath.Join(runDir, "run.json"), err)
		}
		fold = ri.Fold
		if cfgPath == "" {
			cfgPath = filepath.Join(runDir, "config.yaml")
		}
	}
	if cfgPath == "" {
		return res, errors.New("--config is required (or --resume RUN_DIR)")
	}
	cfg, err := trainconfig.Load(cfgPath)
	if err != nil {
		return res, err
	}
	if runDir == "" {
		runDir = filepath.Join("runs", cfg.Name, "fold"+strconv.Itoa(fold))
	}
	fd, err := train.OpenFold(&cfg, fold)
	if err != nil {
		return res, err
	}
	model, report, err := train.BuildModel(&cfg, fd.Dataset.Labels.Len())
	if err != nil {
		return res, err
	}
	if report != "" && !g.Quiet {
		fmt.Fprintln(g.Stderr, report)
	}
	if resume == "" {
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			return res, err
		}
		if _, err := os.Stat(filepath.Join(runDir, "checkpoints", "index.json")); err == nil {
			return res, fmt.Errorf("%s already holds a run: continue it with --resume %s, or choose another --run-dir", runDir, runDir)
		}
		y, err := config.Marshal(cfg)
		if err != nil {
			return res, err
		}
		if err := atomicfile.WriteBytes(filepath.Join(runDir, "config.yaml"), y, 0o644); err != nil {
			return res, err
		}
		ri, _ := json.Marshal(runInfo{Fold: fold})
		if err := atomicfile.WriteBytes(filepath.Join(runDir, "run.json"), ri, 0o644); err != nil {
			return res, err
		}
	}
	hint := "imet train --resume " + runDir
	if budget > 0 {
		hint += " --time-budget " + budget.String()
	}
	var obs train.Observers
	if !g.Quiet {
		obs = append(obs, train.NewProgress(g.Stderr))
	}
	opts := train.Options{
		Config: cfg, Fold: fold, RunDir: runDir, Resume: resume != "", TimeBudget: budget, ResumeHint: hint,
		Observer: obs, Model: model, Train: fd.Train, Val: fd.Val, ValTruth: fd.ValTruth,
		Outputs: func(oof, test []float32, cols int) ([]string, error) {
			p := filepath.Join(runDir, fmt.Sprintf("oof_fold%d.npy", fold))
			f := &probs.File{Matrix: &probs.Matrix{Rows: len(fd.ValIDs), Cols: cols, Data: oof}, IDs: fd.ValIDs, Labels: fd.LabelIDs}
			if err := probs.Save(p, f); err != nil {
				return nil, err
			}
			out := []string{p}
			if test != nil {
				p := filepath.Join(runDir, fmt.Sprintf("test_fold%d.npy", fold))
				f := &probs.File{Matrix: &probs.Matrix{Rows: len(fd.TestIDs), Cols: cols, Data: test}, IDs: fd.TestIDs, Labels: fd.LabelIDs}
				if err := probs.Save(p, f); err != nil {
					return nil, err
				}
				out = append(out, p)
			}
			return out, nil
		},
	}
	if fd.Test != nil {
		opts.Test = fd.Test
	}
	res, err = train.Run(ctx, opts)
	if err != nil {
		return res, err
	}
	if !res.Completed {
		fmt.Fprintf(g.Stdout, "stopped at step %d (%s), best F2 %.4f; continue with:\n  %s\n", res.GlobalStep, res.Stopped, res.BestF2, hint)
		return res, nil
	}
	fmt.Fprintf(g.Stdout, "fold %d done at step %d: best F2 %.4f\n", fold, res.GlobalStep, res.BestF2)
	for _, p := range res.Outputs {
		fmt.Fprintln(g.Stdout, "  "+p)
	}
	return res, nil
}
