package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"imet/internal/base/atomicfile"
	"imet/internal/base/config"
	"imet/internal/engine/dist"
	"imet/internal/engine/torch"
	"imet/internal/postprocess/probs"
	"imet/internal/training/checkpoint"
	"imet/internal/training/trainconfig"
	"imet/internal/vision/imageio"
)

// FoldRun describes one fold's session as the commands start it.
type FoldRun struct {
	ConfigPath string // run configuration; optional when resuming
	Fold       int
	RunDir     string // default runs/<name>/fold<K>
	Resume     bool   // continue RunDir from its newest checkpoint that verifies
	// ResumeFrom is a checkpoint file to continue from instead (it implies
	// Resume; RunDir defaults to the run directory it belongs to).
	ResumeFrom string
	TimeBudget time.Duration
	// ResumeCommand is the command line shown to continue a stopped run;
	// default "imet train --resume RUN_DIR [--time-budget D]" followed by
	// ResumeFlags.
	ResumeCommand string
	// ResumeFlags are the caller's flags that the default resume command
	// must repeat to continue the run the same way (e.g. --registry PATH).
	ResumeFlags []string
	Log         io.Writer // progress and the weight-loading report; nil: none
	Observers   Observers // attached besides the progress display
	// OnBroken, when set, is told of each image left out as broken
	// (data.skip_broken), once, from a loader goroutine; the log says it
	// too.
	OnBroken func(path string, err error)
	// AutoResume resumes RunDir when it already holds a run and starts
	// one otherwise: the command a restarted job runs again unchanged
	// (torchrun --max-restarts, a replaced Kubernetes pod, a requeued
	// Slurm task).
	AutoResume bool
	// Getenv reads the launch environment (torchrun's RANK, WORLD_SIZE,
	// ...); nil: os.Getenv.
	Getenv func(string) string
}

// LaunchRank is the data-parallel rank this process has in the run the
// configuration at cfgPath describes (engine.distributed and the launch
// environment), 0 for a single process: commands record runs and send
// notifications from rank 0 only.
func LaunchRank(cfgPath string, getenv func(string) string) int {
	cfg, err := trainconfig.Load(cfgPath)
	if err != nil || cfg.Engine.Distributed == trainconfig.DistributedOff {
		return 0
	}
	e, ok, err := dist.FromEnv(getenv)
	if !ok || err != nil {
		return 0
	}
	return e.Rank
}

// hasRun reports whether dir holds a run to resume.
func hasRun(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "checkpoints", "index.json"))
	return err == nil
}

// lockedWriter serialises writes: broken images are reported from loader
// goroutines while the session logs its progress.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Stat lets terminal detection see the file underneath.
func (l *lockedWriter) Stat() (os.FileInfo, error) {
	if f, ok := l.w.(interface{ Stat() (os.FileInfo, error) }); ok {
		return f.Stat()
	}
	return nil, errors.New("not a file")
}

// prefixWriter starts every line with prefix (a rank's log lines).
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// placeRank gives a rank its own GPU (cuda means cuda:LOCAL_RANK) and,
// when the recipe says one thread per core, its share of the machine's
// cores, so that the ranks on one machine do not oversubscribe it.
func placeRank(e *trainconfig.Engine, dev torch.Device, env dist.Env) {
	if dev.IsCUDA() && e.Device == "cuda" {
		e.Device = fmt.Sprintf("cuda:%d", env.LocalRank)
	}
	if e.Threads <= 0 {
		e.Threads = env.Threads()
	}
}

// runInfo is what a run directory records besides its configuration, so
// that a resume needs nothing else.
type runInfo struct {
	Fold int `json:"fold"`
}

// OOFPath and TestPath are where a fold's probabilities are written.
func OOFPath(runDir string, fold int) string {
	return filepath.Join(runDir, fmt.Sprintf("oof_fold%d.npy", fold))
}

// TestPath is where a fold's test probabilities are written.
func TestPath(runDir string, fold int) string {
	return filepath.Join(runDir, fmt.Sprintf("test_fold%d.npy", fold))
}

// CheckConfig loads the run configuration at path with every check
// `imet config check` makes (trainconfig.LoadChecked) and checks that this
// process can run its engine (CheckEngine), so that a command can refuse a
// GPU it lacks before it records or starts anything.
func CheckConfig(path string) error {
	cfg, err := trainconfig.LoadChecked(path)
	if err != nil {
		return err
	}
	if _, err := CheckEngine(&cfg.Engine); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ResumeTarget resolves what imet train --resume names: a run directory
// (continued from its newest checkpoint that verifies), or a checkpoint
// file RUN_DIR/checkpoints/step-*.ckpt (continued from that one). It
// returns the run directory and the checkpoint file, "" for a directory.
func ResumeTarget(path string) (runDir, ckpt string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("resume: %w", err)
	}
	if fi.IsDir() {
		return path, "", nil
	}
	ckDir := filepath.Dir(path)
	if filepath.Base(ckDir) != "checkpoints" {
		return "", "", fmt.Errorf("resume %s: not a checkpoint of a run directory (RUN_DIR/checkpoints/step-*.ckpt)", path)
	}
	return filepath.Dir(ckDir), path, nil
}

// TrainFold opens the data, builds the model, and runs or resumes one
// fold, writing OOF and test probabilities (.npy with id and label
// sidecars) into the run directory. It returns the run directory used. A
// panic on the way is returned as a *PanicError.
//
// The whole session holds the run directory's lock (checkpoint.LockRun):
// a second session on the same directory is refused, naming the holder's
// pid. Once the lock is held, the temporary files that interrupted writes
// left in the directory and its checkpoints/ are removed, as no writer
// can still be filling them.
func TrainFold(ctx context.Context, fr FoldRun) (res Result, runDir string, err error) {
	defer recoverPanic(&err)
	if fr.Log != nil {
		fr.Log = &lockedWriter{w: fr.Log}
	}
	if fr.ResumeFrom != "" {
		fr.Resume = true
		if fr.RunDir == "" {
			if fr.RunDir, _, err = ResumeTarget(fr.ResumeFrom); err != nil {
				return res, "", err
			}
		}
	}
	runDir = fr.RunDir
	cfgPath, fold := fr.ConfigPath, fr.Fold
	if fr.AutoResume && !fr.Resume && runDir == "" && cfgPath != "" {
		// the default run directory, to see whether it holds a run
		if cfg, err := trainconfig.Load(cfgPath); err == nil {
			runDir = filepath.Join("runs", cfg.Name, "fold"+strconv.Itoa(fold))
		}
	}
	if fr.AutoResume && !fr.Resume && runDir != "" && hasRun(runDir) {
		fr.Resume = true
	}
	if fr.Resume {
		data, err := os.ReadFile(filepath.Join(runDir, "run.json"))
		switch {
		case err == nil:
			var ri runInfo
			if err := json.Unmarshal(data, &ri); err != nil {
				return res, runDir, fmt.Errorf("%s: %w", filepath.Join(runDir, "run.json"), err)
			}
			fold = ri.Fold
			if cfgPath == "" {
				cfgPath = filepath.Join(runDir, "config.yaml")
			}
		case cfgPath == "":
			return res, runDir, fmt.Errorf("resume %s: not a run directory: %w", runDir, err)
		}
		// Otherwise the configuration and fold given stand in for the
		// run directory's: a data-parallel rank on a machine that does
		// not hold it (rank 0 sends the checkpoint).
	}
	if cfgPath == "" {
		return res, runDir, errors.New("a run configuration is required (or resume a run directory)")
	}
	cfg, err := trainconfig.LoadChecked(cfgPath)
	if err != nil {
		return res, runDir, err
	}
	dev, err := CheckEngine(&cfg.Engine)
	if err != nil {
		return res, runDir, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if runDir == "" {
		// cfg.Name is one plain path component (trainconfig.CheckName).
		runDir = filepath.Join("runs", cfg.Name, "fold"+strconv.Itoa(fold))
	}
	group, env, err := JoinFromEnv(&cfg.Engine, dev, fr.Getenv)
	if err != nil {
		return res, runDir, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if group != nil {
		defer group.Close()
		placeRank(&cfg.Engine, dev, env)
		if group.Rank != 0 {
			// Rank 0 owns the run directory and reports; the others
			// say only what concerns their own share (broken images).
			fr.Observers = nil
			if fr.Log != nil {
				fr.Log = &prefixWriter{w: fr.Log, prefix: fmt.Sprintf("rank %d: ", group.Rank)}
			}
		}
	}
	lead := group == nil || group.Rank == 0
	if lead {
		lock, err := checkpoint.LockRun(runDir)
		if err != nil {
			return res, runDir, err
		}
		defer lock.Release()
		for _, d := range []string{runDir, filepath.Join(runDir, "checkpoints")} {
			removed, n, err := checkpoint.RemoveStaleTemps(d)
			if err != nil {
				return res, runDir, err
			}
			if len(removed) > 0 && fr.Log != nil {
				fmt.Fprintf(fr.Log, "removed %d stale temporary file(s) of interrupted writes in %s (%.1f MB): %s\n",
					len(removed), d, float64(n)/(1<<20), strings.Join(removed, ", "))
			}
		}
	}
	if !fr.Resume && lead {
		if _, err := os.Stat(filepath.Join(runDir, "checkpoints", "index.json")); err == nil {
			return res, runDir, fmt.Errorf("%s already holds a run: continue it with --resume %s, or choose another run directory", runDir, runDir)
		}
	}
	fd, err := OpenFold(&cfg, fold)
	if err != nil {
		return res, runDir, err
	}
	fd.Broken.OnReport = func(path string, err error) {
		if fr.Log != nil {
			why := err
			var de *imageio.DecodeError
			if errors.As(err, &de) && de.Path != "" {
				why = de.Err // the path is said already
			}
			fmt.Fprintf(fr.Log, "warning: left out broken image %s (data.skip_broken): %v\n", path, why)
		}
		if fr.OnBroken != nil {
			fr.OnBroken(path, err)
		}
	}
	if sum := fd.Summary(); sum != "" && fr.Log != nil {
		fmt.Fprintln(fr.Log, sum)
	}
	clampBatches(&cfg, fd.Train.Len(), fd.Val.Len(), fr.Log)
	model, report, err := BuildModel(&cfg, fd.Dataset.Labels.Len())
	if err != nil {
		return res, runDir, err
	}
	if report != "" && fr.Log != nil {
		fmt.Fprintln(fr.Log, report)
	}
	if !fr.Resume && lead {
		y, err := config.Marshal(cfg)
		if err != nil {
			return res, runDir, err
		}
		if err := atomicfile.WriteBytes(filepath.Join(runDir, "config.yaml"), y, 0o644); err != nil {
			return res, runDir, err
		}
		ri, _ := json.Marshal(runInfo{Fold: fold})
		if err := atomicfile.WriteBytes(filepath.Join(runDir, "run.json"), ri, 0o644); err != nil {
			return res, runDir, err
		}
	}
	hint := fr.ResumeCommand
	if hint == "" {
		hint = "imet train --resume " + runDir
		if fr.TimeBudget > 0 {
			hint += " --time-budget " + fr.TimeBudget.String()
		}
		if len(fr.ResumeFlags) > 0 {
			hint += " " + strings.Join(fr.ResumeFlags, " ")
		}
	}
	obs := append(Observers{}, fr.Observers...)
	if fr.Log != nil && lead {
		obs = append(obs, NewProgress(fr.Log))
	}
	opts := Options{
		Config: cfg, Fold: fold, RunDir: runDir, Resume: fr.Resume, ResumeFrom: fr.ResumeFrom, TimeBudget: fr.TimeBudget, ResumeHint: hint,
		Observer: obs, Model: model, Train: fd.Train, Val: fd.Val, ValTruth: fd.ValTruth,
		Outputs: func(oof, test []float32, cols int) ([]string, error) {
			p := OOFPath(runDir, fold)
			f := &probs.File{Matrix: &probs.Matrix{Rows: len(fd.ValIDs), Cols: cols, Data: oof}, IDs: fd.ValIDs, Labels: fd.LabelIDs}
			if err := probs.Save(p, f); err != nil {
				return nil, err
			}
			out := []string{p}
			if test != nil {
				p := TestPath(runDir, fold)
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
	if group != nil {
		opts.Group = group
	}
	res, err = Run(ctx, opts)
	return res, runDir, err
}

// clampBatches lowers each stage's batch_size to the training rows the
// fold has, and validation.batch_size to its validation rows, saying so in
// the log: a batch larger than the data would fill no batch at all (the
// loader drops a partial last batch) or allocate for rows that do not
// exist. The clamped values are what the run records (config.yaml and its
// fingerprint), so a resume on the same data clamps alike.
func clampBatches(cfg *trainconfig.Run, trainRows, valRows int, log io.Writer) {
	for i := range cfg.Stages {
		s := &cfg.Stages[i]
		if trainRows > 0 && s.BatchSize > trainRows {
			if log != nil {
				fmt.Fprintf(log, "stage %s: batch_size %d clamped to the fold's %d training rows\n", s.Name, s.BatchSize, trainRows)
			}
			s.BatchSize = trainRows
		}
	}
	if valRows > 0 && cfg.Validation.BatchSize > valRows {
		if log != nil {
			fmt.Fprintf(log, "validation.batch_size %d clamped to the fold's %d validation rows\n", cfg.Validation.BatchSize, valRows)
		}
		cfg.Validation.BatchSize = valRows
	}
}
