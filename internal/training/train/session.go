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
	"time"

	"imet/internal/base/atomicfile"
	"imet/internal/base/config"
	"imet/internal/postprocess/probs"
	"imet/internal/training/trainconfig"
)

// FoldRun describes one fold's session as the commands start it.
type FoldRun struct {
	ConfigPath string // run configuration; optional when resuming
	Fold       int
	RunDir     string // default runs/<name>/fold<K>
	Resume     bool   // continue RunDir from its newest checkpoint
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

// CheckConfig loads the run configuration at path and checks that this
// process can run its engine (CheckEngine), so that a command can refuse a
// GPU it lacks before it records or starts anything.
func CheckConfig(path string) error {
	cfg, err := trainconfig.Load(path)
	if err != nil {
		return err
	}
	if _, err := CheckEngine(&cfg.Engine); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// TrainFold opens the data, builds the model, and runs or resumes one
// fold, writing OOF and test probabilities (.npy with id and label
// sidecars) into the run directory. It returns the run directory used. A
// panic on the way is returned as a *PanicError.
func TrainFold(ctx context.Context, fr FoldRun) (res Result, runDir string, err error) {
	defer recoverPanic(&err)
	runDir = fr.RunDir
	cfgPath, fold := fr.ConfigPath, fr.Fold
	if fr.Resume {
		data, err := os.ReadFile(filepath.Join(runDir, "run.json"))
		if err != nil {
			return res, runDir, fmt.Errorf("resume %s: not a run directory: %w", runDir, err)
		}
		var ri runInfo
		if err := json.Unmarshal(data, &ri); err != nil {
			return res, runDir, fmt.Errorf("%s: %w", filepath.Join(runDir, "run.json"), err)
		}
		fold = ri.Fold
		if cfgPath == "" {
			cfgPath = filepath.Join(runDir, "config.yaml")
		}
	}
	if cfgPath == "" {
		return res, runDir, errors.New("a run configuration is required (or resume a run directory)")
	}
	cfg, err := trainconfig.Load(cfgPath)
	if err != nil {
		return res, runDir, err
	}
	if _, err := CheckEngine(&cfg.Engine); err != nil {
		return res, runDir, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if runDir == "" {
		runDir = filepath.Join("runs", cfg.Name, "fold"+strconv.Itoa(fold))
	}
	fd, err := OpenFold(&cfg, fold)
	if err != nil {
		return res, runDir, err
	}
	model, report, err := BuildModel(&cfg, fd.Dataset.Labels.Len())
	if err != nil {
		return res, runDir, err
	}
	if report != "" && fr.Log != nil {
		fmt.Fprintln(fr.Log, report)
	}
	if !fr.Resume {
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			return res, runDir, err
		}
		if _, err := os.Stat(filepath.Join(runDir, "checkpoints", "index.json")); err == nil {
			return res, runDir, fmt.Errorf("%s already holds a run: continue it with --resume %s, or choose another run directory", runDir, runDir)
		}
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
	if fr.Log != nil {
		obs = append(obs, NewProgress(fr.Log))
	}
	opts := Options{
		Config: cfg, Fold: fold, RunDir: runDir, Resume: fr.Resume, TimeBudget: fr.TimeBudget, ResumeHint: hint,
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
	res, err = Run(ctx, opts)
	return res, runDir, err
}
