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

	"imet/internal/base/atomicfile"
	"imet/internal/experiments/registry"
	"imet/internal/experiments/tracking"
	"imet/internal/jobs/cluster"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/thresholds"
	"imet/internal/training/crossval"
	"imet/internal/training/plan"
	"imet/internal/training/train"
	"imet/internal/training/trainconfig"
)

type cvCmd struct {
	Config     string        `help:"Run configuration (YAML); or --plan." type:"existingfile"`
	Plan       string        `help:"Ensemble plan (YAML, docs/training.md): trains each cross-validation it lists under OUT/parts/NAME, combines them on the out-of-fold and test probabilities (the plan names the method; --ensemble does not apply), searches thresholds on the combination and writes one submission; export OUT as one bundle." type:"existingfile"`
	Out        string        `help:"Run root: fold<K>/ per fold, then oof.npy, thresholds.json, test.npy, submission.csv (default runs/<name>)."`
	Folds      []int         `help:"Folds to train (default: all in folds.csv)."`
	Parallel   int           `help:"Folds trained at once, each in its own process (set engine.threads so they share the cores)." default:"1"`
	TimeBudget time.Duration `help:"Stop cleanly before this much wall time; run the same command again to continue."`
	Rules      []string      `help:"Threshold rules searched on the out-of-fold probabilities (${rules}); the one used scores best on folds its thresholds were not searched on." default:"global,group"`
	Ensemble   string        `help:"How the folds' test probabilities are combined: ${fold_methods}. A rank ensemble is then mapped onto the out-of-fold probabilities' quantiles." enum:"${fold_methods_enum}" default:"mean"`
	// Folds as cluster jobs (docs/scale.md).
	Fold        int           `help:"Train only this fold, as one task of a cluster array, and leave combining to --collect. Exits 75 when stopped before the fold is done." default:"-1"`
	FoldFromEnv bool          `help:"Train only the fold the scheduler names in JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array), with --folds the index into that list; the files --emit writes pass it. Off by default: a cv run inside some other job's pod must not take that job's index for a fold."`
	Collect     bool          `help:"Combine the folds that separate tasks trained under --out (OOF, thresholds, test ensemble, submission); refuses, naming them, folds missing or unfinished."`
	Wait        time.Duration `help:"With --collect: wait this long for folds still running before refusing."`
	Emit        string        `help:"Write what runs the folds on a cluster instead of training: kubernetes (an Indexed Job and a collect Job) or slurm (an sbatch array script)." enum:",kubernetes,slurm" default:""`
	EmitTo      string        `help:"With --emit: the file to write (default: standard output)." type:"path"`
	Image       string        `help:"With --emit kubernetes: the container image holding imet." default:"imet:latest"`
	Volume      string        `help:"With --emit kubernetes: the PersistentVolumeClaim of the shared storage (data, weights, run root)."`
	Mount       string        `help:"With --emit: the tasks' working directory, where the shared storage's root is (default /work for Kubernetes, where the volume is mounted; this directory for Slurm); --config and --out are written relative to this directory."`
	GPUs        int           `name:"gpus" help:"With --emit: GPUs per fold task."`
	CPUs        int           `name:"cpus" help:"With --emit: CPU cores per task."`
	Memory      string        `help:"With --emit: memory per task (e.g. 32Gi)."`
	Partition   string        `help:"With --emit slurm: the partition."`
	TimeLimit   string        `help:"With --emit slurm: a task's time limit (e.g. 8:00:00); a fold stopped by it requeues and resumes."`
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
	if (c.Config == "") == (c.Plan == "") {
		return fmt.Errorf("name a run configuration with --config or an ensemble plan with --plan (one of them)")
	}
	if c.Plan != "" {
		return c.runPlan(ctx, g, remaining)
	}
	if err := train.CheckConfig(c.Config); err != nil {
		return err
	}
	if c.Emit != "" {
		return c.emit(g)
	}
	if c.Collect {
		return c.collect(ctx, g)
	}
	one, from, err := c.chosenFold()
	if err != nil {
		return err
	}
	folds := c.Folds
	if one >= 0 {
		folds = []int{one}
		if !g.Quiet {
			fmt.Fprintf(g.Stderr, "event=cv fold=%d chosen_by=%s out=%s\n", one, from, c.outDir())
		}
	}
	again := c.continueCommand()
	o := crossval.Options{ConfigPath: c.Config, Out: c.Out, Folds: folds, Parallel: c.Parallel, Rules: c.Rules,
		Ensemble: ensemble.Method(c.Ensemble), TrainOnly: one >= 0}
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
	o.TrainFold = c.foldTrainer(g, c.Config, tr, remaining, again)
	res, err := o.Run(ctx)
	if tr != nil {
		endCV(tr, ctx, res, err, again)
	}
	if err != nil {
		return err
	}
	if !res.Completed {
		fmt.Fprintf(g.Stdout, "stopped before every fold finished; continue with:\n  %s\n", again)
		if one >= 0 {
			// a cluster task: its scheduler must run it again
			return &statusError{Code: cluster.ExitIncomplete}
		}
		return nil
	}
	if one >= 0 {
		fmt.Fprintf(g.Stdout, "fold %d done in %s; combine the folds with imet cv --config %s --out %s --collect\n", one,
			filepath.Join(c.outDir(), fmt.Sprintf("fold%d", one)), c.Config, c.outDir())
		return nil
	}
	printCV(g, res)
	return nil
}

// foldTrainer trains or resumes one fold of the run configuration cfgPath,
// in this process or (--parallel) in a child, within what is left of the
// time budget, recording into tr when not nil.
func (c *cvCmd) foldTrainer(g *Globals, cfgPath string, tr *tracking.Tracker, remaining func() (time.Duration, bool), again string) func(context.Context, int, string, bool) (bool, error) {
	return func(ctx context.Context, fold int, dir string, resume bool) (bool, error) {
		budget, ok := remaining()
		if !ok {
			return false, nil
		}
		if c.Parallel > 1 {
			return trainChild(ctx, c.childArgs(cfgPath, fold, dir, resume, budget), fold, dir)
		}
		fr := train.FoldRun{ConfigPath: cfgPath, Fold: fold, RunDir: dir, Resume: resume, TimeBudget: budget, ResumeCommand: again}
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
}

// endCV ends a cv run's record: failed, stopped (with the command that
// continues it) or finished with its outputs and scores.
func endCV(tr *tracking.Tracker, ctx context.Context, res *crossval.Result, err error, again string) {
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
		test := ""
		if res.OOF != "" {
			test = filepath.Join(filepath.Dir(res.OOF), "test.npy")
		}
		for _, a := range [][2]string{{"probabilities", res.OOF}, {"probabilities", test}, {"thresholds", res.Thresholds}, {"submission", res.Submission}} {
			if _, err := os.Stat(a[1]); a[1] != "" && err == nil {
				tr.Artifact(a[0], a[1])
			}
		}
		tr.End(nil, registry.Summary{CVF2: res.Score, HeldOutF2: res.HeldOut})
	}
}

// printCV says where a finished cross-validation's outputs are.
func printCV(g *Globals, res *crossval.Result) {
	held := "no held-out score with one fold"
	if res.HeldOut != nil {
		held = fmt.Sprintf("held out %.4f", *res.HeldOut)
	}
	fmt.Fprintf(g.Stdout, "out-of-fold F2 %.4f (%s) with the %s rule\n  %s\n  %s\n", res.Score, held, res.Rule, res.OOF, res.Thresholds)
	if res.Submission != "" {
		fmt.Fprintf(g.Stdout, "  %s\n", res.Submission)
	}
}

// runPlan trains and ensembles an ensemble plan (internal/training/plan):
// each part is recorded as a cv run, the plan as a plan run whose parents
// they are.
func (c *cvCmd) runPlan(ctx context.Context, g *Globals, remaining func() (time.Duration, bool)) error {
	if c.Fold >= 0 || c.FoldFromEnv || c.Collect || c.Emit != "" || len(c.Folds) > 0 {
		return fmt.Errorf("--plan trains every part's folds in this process (or its children): --folds, --fold, --fold-from-env, --collect and --emit are for one configuration")
	}
	pl, err := plan.Load(c.Plan)
	if err != nil {
		return err
	}
	again := c.continueCommand()
	var tr *tracking.Tracker
	if !c.NoRegistry {
		if tr, err = c.startTracking(g, registry.KindPlan, pl.Name, ""); err != nil {
			return err
		}
	}
	o := plan.Options{Out: c.Out, Rules: c.Rules}
	if !g.Quiet {
		o.Log = g.Stderr
	}
	o.Log = trackLog(tr, o.Log)
	o.RunPart = func(ctx context.Context, p plan.Part, co crossval.Options) (*crossval.Result, error) {
		pt, err := c.startTracking(g, registry.KindCV, p.Config.Name, co.ConfigPath)
		if err != nil {
			return nil, err
		}
		co.Parallel, co.Log = c.Parallel, trackLog(pt, o.Log)
		co.TrainFold = c.foldTrainer(g, co.ConfigPath, pt, remaining, again)
		res, err := co.Run(ctx)
		if pt != nil {
			endCV(pt, ctx, res, err, again)
			if tr != nil {
				tr.AddParents(pt.ID())
			}
		}
		return res, err
	}
	res, err := pl.Run(ctx, o)
	if tr != nil {
		var cv *crossval.Result
		if res != nil {
			cv = &res.Result
			cv.Completed = res.Manifest != ""
		}
		endCV(tr, ctx, cv, err, again)
		if err == nil && cv.Completed {
			tr.Artifact("plan", res.Manifest)
		}
	}
	if err != nil {
		return err
	}
	if res.Manifest == "" {
		fmt.Fprintf(g.Stdout, "stopped before every part finished; continue with:\n  %s\n", again)
		return nil
	}
	printCV(g, &res.Result)
	fmt.Fprintf(g.Stdout, "  %s (export the ensemble with imet export %s --out BUNDLE)\n", res.Manifest, filepath.Dir(res.Manifest))
	return nil
}

// chosenFold is the one fold this invocation trains: --fold, else the
// cluster task's index (mapped through --folds when given); -1: all.
func (c *cvCmd) chosenFold() (int, string, error) {
	if c.Fold >= 0 {
		return c.Fold, "--fold", nil
	}
	if !c.FoldFromEnv {
		return -1, "", nil
	}
	idx, from, ok, err := crossval.FoldFromEnv(nil)
	if err != nil {
		return -1, "", err
	}
	if !ok {
		return -1, "", fmt.Errorf("--fold-from-env: neither %s nor %s is set", crossval.EnvJobIndex, crossval.EnvSlurmTask)
	}
	if len(c.Folds) > 0 {
		if idx >= len(c.Folds) {
			return -1, "", fmt.Errorf("%s=%d: --folds lists %d folds (indices 0..%d)", from, idx, len(c.Folds), len(c.Folds)-1)
		}
		return c.Folds[idx], from, nil
	}
	return idx, from, nil
}

// outDir is the run root: --out, or runs/<name>.
func (c *cvCmd) outDir() string {
	if c.Out != "" {
		return c.Out
	}
	if cfg, err := trainconfig.Load(c.Config); err == nil {
		return filepath.Join("runs", cfg.Name)
	}
	return ""
}

// collect combines the folds trained by separate tasks.
func (c *cvCmd) collect(ctx context.Context, g *Globals) error {
	o := crossval.Options{ConfigPath: c.Config, Out: c.Out, Folds: c.Folds, Rules: c.Rules, Ensemble: ensemble.Method(c.Ensemble)}
	if !g.Quiet {
		o.Log = g.Stderr
	}
	res, err := o.Collect(ctx, c.Wait, 0)
	if err != nil {
		return err
	}
	printCV(g, res)
	return nil
}

// emit writes the cluster manifest of this run's folds.
func (c *cvCmd) emit(g *Globals) error {
	o := crossval.Options{ConfigPath: c.Config, Out: c.Out, Folds: c.Folds}
	st, err := o.Status()
	if err != nil {
		return err
	}
	cfg, err := trainconfig.Load(c.Config)
	if err != nil {
		return err
	}
	// The tasks run in the shared storage's root (--mount): paths are
	// written relative to this directory, which should be that root here.
	rel := func(p string) string {
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
		return p
	}
	base := []string{"imet", "cv", "--config", rel(c.Config), "--out", rel(c.outDir())}
	if len(c.Folds) > 0 {
		fs := make([]string, len(c.Folds))
		for i, f := range c.Folds {
			fs[i] = strconv.Itoa(f)
		}
		base = append(base, "--folds", strings.Join(fs, ","))
	}
	base = append(base, "--rules", strings.Join(c.Rules, ","), "--ensemble", c.Ensemble)
	// The registry is one SQLite file, which tasks on many machines must
	// not write at once over a network file system: they record nothing.
	base = append(base, "--no-registry")
	fold := append(append([]string(nil), base...), "--fold-from-env")
	if c.TimeBudget > 0 {
		fold = append(fold, "--time-budget", c.TimeBudget.String())
	}
	collect := append(append([]string(nil), base...), "--collect", "--wait", "168h")
	workDir := c.Mount
	if workDir == "" {
		workDir = "/work"
		if c.Emit == "slurm" {
			workDir, _ = os.Getwd() // the nodes see the same file system
		}
	}
	spec := cluster.Spec{Name: cfg.Name, Folds: len(st), Parallelism: c.Parallel, Fold: fold, Collect: collect, WorkDir: workDir,
		Image: c.Image, Claim: c.Volume, MountAt: workDir, GPUs: c.GPUs, CPUs: c.CPUs, Memory: c.Memory,
		Partition: c.Partition, TimeLimit: c.TimeLimit}
	if c.Parallel <= 1 {
		spec.Parallelism = 0 // every fold at once: the cluster has the room
	}
	var out []byte
	switch c.Emit {
	case "kubernetes":
		if c.Volume == "" {
			return fmt.Errorf("--emit kubernetes: name the shared storage's PersistentVolumeClaim with --volume (the folds, the collect step and the data must see the same files)")
		}
		out, err = cluster.Kubernetes(spec)
	case "slurm":
		out, err = cluster.Slurm(spec)
	}
	if err != nil {
		return err
	}
	if c.EmitTo == "" {
		_, err = g.Stdout.Write(out)
		return err
	}
	if err := atomicfile.WriteBytes(c.EmitTo, out, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "wrote %s: %d fold task(s)\n", c.EmitTo, len(st))
	return nil
}

// continueCommand is the command line that continues this run with the same
// choices: every flag that changes what is trained or produced is repeated.
func (c *cvCmd) continueCommand() string {
	args := []string{"imet", "cv", "--config", c.Config}
	if c.Plan != "" {
		args = []string{"imet", "cv", "--plan", c.Plan}
	}
	if c.Fold >= 0 {
		args = append(args, "--fold", strconv.Itoa(c.Fold))
	}
	if c.FoldFromEnv {
		args = append(args, "--fold-from-env")
	}
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
func (c *cvCmd) childArgs(cfgPath string, fold int, dir string, resume bool, budget time.Duration) []string {
	args := []string{"train", "--config", cfgPath}
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
