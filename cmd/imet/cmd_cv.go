package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"imet/internal/experiments/registry"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/thresholds"
	"imet/internal/training/crossval"
	"imet/internal/training/train"
)

type cvCmd struct {
	Config     string        `help:"Run configuration (YAML)." required:"" type:"existingfile"`
	Out        string        `help:"Run root: fold<K>/ per fold, then oof.npy, thresholds.json, test.npy, submission.csv (default runs/<name>)."`
	Folds      []int         `help:"Folds to train (default: all in folds.csv)."`
	Parallel   int           `help:"Folds trained at once, each in its own process (set engine.threads so they share the cores)." default:"1"`
	TimeBudget time.Duration `help:"Stop cleanly before this much wall time; run the same command again to continue."`
	Rules      []string      `help:"Threshold rules searched on the out-of-fold probabilities (${rules}); the one used scores best on folds its thresholds were not searched on." default:"global,group"`
	Ensemble   string        `help:"How the folds' test probabilities are combined: ${fold_methods}. A rank ensemble is then mapped onto the out-of-fold probabilities' quantiles." enum:"${fold_methods_enum}" default:"mean"`
	trackFlags
}

func init() {
	register("cv", "Train every fold, search thresholds on out-of-fold predictions, ensemble the test predictions, write submission.csv.", "Training", &cvCmd{})
}

func (c *cvCmd) Run(g *Globals) error {
	ctx, stop := train.SignalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	remaining := func() (time.Duration, bool) {
		if c.TimeBudget <= 0 {
			return 0, true
		}
		r := c.TimeBudget - time.Since(start)
		return r, r > 0
	}
	// Misspelt options must fail before hours of training, not after.
	for _, r := range c.Rules {
		if !slices.Contains(thresholds.AllRules, r) {
			return fmt.Errorf("--rules: unknown rule %q (known: %s)", r, strings.Join(thresholds.AllRules, ", "))
		}
	}
	if err := train.CheckConfig(c.Config); err != nil {
		return err
	}
	again := c.continueCommand()
	o := crossval.Options{ConfigPath: c.Config, Out: c.Out, Folds: c.Folds, Parallel: c.Parallel, Rules: c.Rules,
		Ensemble: ensemble.Method(c.Ensemble)}
	if !g.Quiet {
		o.Log = g.Stderr
	}
	tr, err := c.startTracking(g, registry.KindCV, "", c.Config)
	if err != nil {
		return err
	}
	if tr != nil {
		o.Log = trackLog(tr, o.Log)
	}
	o.TrainFold = func(ctx context.Context, fold int, dir string, resume bool) (bool, error) {
		budget, ok := remaining()
		if !ok {
			return false, nil
		}
		if c.Parallel > 1 {
			return trainChild(ctx, c.childArgs(fold, dir, resume, budget), fold, dir)
		}
		fr := train.FoldRun{ConfigPath: c.Config, Fold: fold, RunDir: dir, Resume: resume, TimeBudget: budget, ResumeCommand: again}
		if !g.Quiet {
			fr.Log = g.Stderr
		}
		if tr != nil {
			fr.Log = trackLog(tr, fr.Log)
			rec := &trainRecorder{t: tr, prefix: fmt.Sprintf("fold%d/", fold), warn: g.Stderr}
			fr.Observers = append(fr.Observers, rec)
			fr.OnBroken = rec.OnBroken
		}
		res, _, err := train.TrainFold(ctx, fr)
		return res.Completed, err
	}
	res, err := o.Run(ctx)
	if tr != nil {
		switch {
		case err != nil:
			tr.End(err, registry.Summary{})
		case !res.Completed:
			reason := train.StopSignal(ctx)
			if reason == "" {
				reason = "time-budget"
			}
			tr.Stop(reason, again)
		default:
			for _, a := range [][2]string{{"probabilities", res.OOF}, {"thresholds", res.Thresholds}, {"submission", res.Submission}} {
				if a[1] != "" {
					tr.Artifact(a[0], a[1])
				}
			}
			tr.End(nil, registry.Summary{CVF2: res.Score, HeldOutF2: res.HeldOut})
		}
	}
	if err != nil {
		return err
	}
	if !res.Completed {
		fmt.Fprintf(g.Stdout, "stopped before every fold finished; continue with:\n  %s\n", again)
		return nil
	}
	held := "no held-out score with one fold"
	if res.HeldOut != nil {
		held = fmt.Sprintf("held out %.4f", *res.HeldOut)
	}
	fmt.Fprintf(g.Stdout, "out-of-fold F2 %.4f (%s) with the %s rule\n  %s\n  %s\n", res.Score, held, res.Rule, res.OOF, res.Thresholds)
	if res.Submission != "" {
		fmt.Fprintf(g.Stdout, "  %s\n", res.Submission)
	}
	return nil
}

// continueCommand is the command line that continues this run with the same
// choices: every flag that changes what is trained or produced is repeated.
func (c *cvCmd) continueCommand() string {
	args := []string{"imet", "cv", "--config", c.Config}
	if c.Out != "" {
		args = append(args, "--out", c.Out)
	}
	if len(c.Folds) > 0 {
		fs := make([]string, len(c.Folds))
		for i, f := range c.Folds {
			fs[i] = strconv.Itoa(f)
		}
		args = append(args, "--folds", strings.Join(fs, ","))
	}
	if c.Parallel > 1 {
		args = append(args, "--parallel", strconv.Itoa(c.Parallel))
	}
	if c.TimeBudget > 0 {
		args = append(args, "--time-budget", c.TimeBudget.String())
	}
	args = append(args, "--rules", strings.Join(c.Rules, ","), "--ensemble", c.Ensemble)
	if c.NoRegistry {
		args = append(args, "--no-registry")
	} else if c.Registry != "" && c.Registry != "runs/registry.db" {
		args = append(args, "--registry", c.Registry)
	}
	return strings.Join(args, " ")
}

// childArgs is the imet command line that trains or resumes one fold in a
// child process. The child records its own train run where this cv run
// records (or nowhere), and notifies as configured here. --quiet is left
// out: the child's output goes to its train.log, not to the terminal.
func (c *cvCmd) childArgs(fold int, dir string, resume bool, budget time.Duration) []string {
	args := []string{"train", "--config", c.Config}
	if resume {
		args = append(args, "--resume", dir)
	} else {
		args = append(args, "--fold", strconv.Itoa(fold), "--run-dir", dir)
	}
	if budget > 0 {
		args = append(args, "--time-budget", budget.String())
	}
	if c.NoRegistry {
		args = append(args, "--no-registry")
	} else {
		// Named even when it came from IMET_REGISTRY or the default, so
		// that nothing in the child's environment can pick another.
		reg := c.Registry
		if reg == "" {
			reg = registry.DefaultPath
		}
		if abs, err := filepath.Abs(reg); err == nil {
			reg = abs
		}
		args = append(args, "--registry", reg)
		if c.NotifyFile != "" {
			args = append(args, "--notify-file", c.NotifyFile)
		}
	}
	return args
}

// trainChild runs imet with args (childArgs) in a child process (libtorch
// scopes are per process, so parallel folds need their own), logging to
// RUN_DIR/train.log, and says whether the fold finished.
func trainChild(ctx context.Context, args []string, fold int, dir string) (bool, error) {
	exe, err := os.Executable()
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "train.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("imet %v: %w (see %s)", args, err, filepath.Join(dir, "train.log"))
	}
	done, _ := crossval.FoldState(dir, fold)
	return done, nil
}
