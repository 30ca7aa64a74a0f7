package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"imet/internal/base/config"
	"imet/internal/experiments/notify"
	"imet/internal/experiments/registry"
	"imet/internal/experiments/tracking"
	"imet/internal/training/train"
	"imet/internal/training/trainconfig"
)

// trackFlags are the flags of commands whose runs are recorded in the
// registry and announced through notifications.
type trackFlags struct {
	registryFlag
	NoRegistry bool   `help:"Do not record this run in the registry (nor notify)."`
	NotifyFile string `help:"YAML file configuring notifications (docs/registry.md); tokens come from the environment or a file, never from it." type:"existingfile" env:"IMET_NOTIFY_CONFIG"`
}

// startTracking opens the registry and records a run of kind for the run
// configuration at cfgPath. It returns nil, nil when tracking is switched
// off. A registry that cannot be opened is an error: a run that was asked
// to be recorded and is not would be lost from the comparison later.
func (f trackFlags) startTracking(g *Globals, kind registry.Kind, name, cfgPath string) (*tracking.Tracker, error) {
	if f.NoRegistry {
		return nil, nil
	}
	info := registry.RunInfo{Name: name, Kind: kind, Args: os.Args}
	var inputs []string
	if cfgPath != "" {
		cfg, err := trainconfig.Load(cfgPath)
		if err != nil {
			return nil, err
		}
		if info.Name == "" {
			info.Name = cfg.Name
		}
		if y, err := config.Marshal(cfg); err == nil {
			info.Config = string(y)
		}
		for _, p := range []string{cfg.Targets.TrainCSV, cfg.Targets.Soft.File, cfg.Targets.Pseudo.File} {
			if p != "" {
				inputs = append(inputs, p)
			}
		}
		if root := cfg.Data.Root; root != "" {
			if fp, err := registry.DataSetFingerprint(root, cfg.Data.Folds); err == nil {
				info.DataFingerprint = fp
			}
		}
	}
	ncfg := notify.DefaultConfig()
	if f.NotifyFile != "" {
		if err := config.Load(f.NotifyFile, &ncfg); err != nil {
			return nil, err
		}
	}
	n, err := notify.New(ncfg)
	if err != nil {
		return nil, err
	}
	for _, w := range n.Warnings() {
		fmt.Fprintln(g.Stderr, w)
	}
	db, err := f.open()
	if err != nil {
		return nil, err
	}
	t, err := tracking.Start(db, info, n, g.Stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(g.Stderr, "recorded as run %d in %s\n", t.ID(), f.Registry)
	for _, p := range inputs {
		parents, err := t.Input(p)
		if err != nil {
			return nil, err
		}
		if len(parents) > 0 {
			fmt.Fprintf(g.Stderr, "  %s was written by run(s) %v: recorded as parents\n", p, parents)
		}
	}
	return t, nil
}

// resumeFlags are the tracking flags a command that continues this run must
// repeat, so that the continuation is recorded and announced in the same
// place.
func (f trackFlags) resumeFlags() []string {
	if f.NoRegistry {
		return []string{"--no-registry"}
	}
	var out []string
	if def, err := filepath.Abs(filepath.Join("runs", "registry.db")); f.Registry != "" && (err != nil || f.Registry != def) {
		out = append(out, "--registry", f.Registry)
	}
	if f.NotifyFile != "" {
		out = append(out, "--notify-file", f.NotifyFile)
	}
	return out
}

// trackLog tees a command's log into the tracker, which keeps the last lines
// for a failure report.
func trackLog(t *tracking.Tracker, w io.Writer) io.Writer {
	if t == nil {
		return w
	}
	if w == nil {
		return t.Log()
	}
	return io.MultiWriter(w, t.Log())
}

// trainRecorder turns training events into registry metrics and artifacts.
type trainRecorder struct {
	t      *tracking.Tracker
	prefix string // e.g. "fold0/" when several folds share one run
	epoch  float64
	warned atomic.Bool
	warn   io.Writer
}

func (r *trainRecorder) check(err error) {
	if err != nil && !r.warned.Swap(true) {
		// The registry must never stop training; say once that it failed.
		fmt.Fprintf(r.warn, "warning: recording metrics: %v\n", err)
	}
}

// OnBroken records an image the session left out as broken
// (data.skip_broken) as an artifact of kind "broken_image". It is called
// from a loader goroutine.
func (r *trainRecorder) OnBroken(path string, _ error) {
	r.check(r.t.Artifact("broken_image", path))
}

func (r *trainRecorder) OnStart(train.StartEvent) {}

func (r *trainRecorder) OnStep(e train.StepEvent) {
	ep := float64(e.Epoch)
	if e.Batches > 0 {
		ep += float64(e.Batch) / float64(e.Batches)
	}
	r.epoch = ep
	step := int(e.GlobalStep)
	r.check(r.t.Metric(step, ep, r.prefix+"loss", e.Loss))
	r.check(r.t.Metric(step, ep, r.prefix+"lr", e.LR))
	r.check(r.t.Metric(step, ep, r.prefix+"images_per_sec", e.ImagesPerSec))
}

func (r *trainRecorder) OnEpoch(e train.EpochEvent) {
	step, ep := int(e.GlobalStep), float64(e.Epoch+1)
	r.check(r.t.Metric(step, ep, r.prefix+"train_loss", e.TrainLoss))
	r.check(r.t.Metric(step, ep, r.prefix+"val_loss", e.ValLoss))
	r.check(r.t.Metric(step, ep, r.prefix+"val_f2", e.F2))
	r.check(r.t.Metric(step, ep, r.prefix+"val_threshold", e.Threshold))
}

func (r *trainRecorder) OnCheckpoint(e train.CheckpointEvent) {
	r.check(r.t.Checkpoint(r.epoch, e.Path))
}

func (r *trainRecorder) OnFinish(e train.FinishEvent) {
	for _, p := range e.Outputs {
		r.check(r.t.Artifact("probabilities", p))
	}
}

func (r *trainRecorder) OnFail(error) {}
