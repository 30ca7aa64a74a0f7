package crossval

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"imet/internal/data/folds"
	"imet/internal/training/checkpoint"
	"imet/internal/training/trainconfig"
)

// The variables cluster schedulers give each task of an array, in the
// order FoldFromEnv reads them.
const (
	// EnvJobIndex is set by a Kubernetes Indexed Job (completionMode:
	// Indexed) in each pod: 0..completions-1, kept by a replacement pod.
	EnvJobIndex = "JOB_COMPLETION_INDEX"
	// EnvSlurmTask is set by Slurm in each task of an array job
	// (sbatch --array).
	EnvSlurmTask = "SLURM_ARRAY_TASK_ID"
)

// FoldFromEnv reads the fold a cluster task is to train from its
// scheduler's variables (JOB_COMPLETION_INDEX, then SLURM_ARRAY_TASK_ID).
// It reports the variable used; ok is false when neither is set. A value
// that is not a fold number is an error naming the variable.
func FoldFromEnv(getenv func(string) string) (fold int, from string, ok bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, name := range []string{EnvJobIndex, EnvSlurmTask} {
		v := getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, name, true, fmt.Errorf("%s=%q: want a fold number (0, 1, ...)", name, v)
		}
		return n, name, true, nil
	}
	return 0, "", false, nil
}

// FoldStatus is where one fold of a run root stands.
type FoldStatus struct {
	Fold int
	Dir  string
	// State is "done" (its OOF probabilities are written), "started" (a
	// checkpoint exists) or "missing" (nothing trained yet).
	State string
	// Step is the newest checkpoint's step (started folds).
	Step int64
}

func (s FoldStatus) String() string {
	switch s.State {
	case "done":
		return fmt.Sprintf("fold %d: done (%s)", s.Fold, s.Dir)
	case "started":
		return fmt.Sprintf("fold %d: unfinished, last checkpoint at step %d (%s)", s.Fold, s.Step, s.Dir)
	}
	return fmt.Sprintf("fold %d: missing, nothing trained in %s", s.Fold, s.Dir)
}

// plan resolves the configuration, the folds and the run root.
func (o *Options) plan() (*trainconfig.Run, error) {
	cfg, err := trainconfig.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	if o.Folds == nil {
		asg, err := folds.Read(cfg.Data.FoldsPath())
		if err != nil {
			return nil, err
		}
		for k := 0; k < asg.K; k++ {
			o.Folds = append(o.Folds, k)
		}
	}
	if o.Out == "" {
		o.Out = filepath.Join("runs", cfg.Name)
	}
	return &cfg, nil
}

// Status says where each of the run's folds stands.
func (o Options) Status() ([]FoldStatus, error) {
	if _, err := o.plan(); err != nil {
		return nil, err
	}
	return o.status(), nil
}

func (o Options) status() []FoldStatus {
	var out []FoldStatus
	for _, k := range o.Folds {
		dir := filepath.Join(o.Out, fmt.Sprintf("fold%d", k))
		s := FoldStatus{Fold: k, Dir: dir, State: "missing"}
		done, started := FoldState(dir, k)
		switch {
		case done:
			s.State = "done"
		case started:
			s.State = "started"
			d := checkpoint.Dir{Path: filepath.Join(dir, "checkpoints")}
			if ix, err := d.ReadIndex(); err == nil {
				fmt.Sscanf(ix.Latest, "step-%d.ckpt", &s.Step)
			}
		}
		out = append(out, s)
	}
	return out
}

// NotReadyError is Collect's refusal: the folds that are not done.
type NotReadyError struct {
	Root    string
	Pending []FoldStatus
	Waited  time.Duration
}

func (e *NotReadyError) Error() string {
	var b strings.Builder
	n := len(e.Pending)
	fmt.Fprintf(&b, "%s: %d fold(s) not finished", e.Root, n)
	if e.Waited > 0 {
		fmt.Fprintf(&b, " after waiting %v", e.Waited)
	}
	b.WriteString(", nothing combined:")
	for _, s := range e.Pending {
		b.WriteString("\n  " + s.String())
	}
	b.WriteString("\ntrain them (imet cv --fold K, or the cluster job's task K) and collect again")
	return b.String()
}

// Collect combines the folds that separate jobs trained into the run root
// (out-of-fold probabilities, thresholds, test ensemble, submission), as
// Run does once every fold is done. It waits up to wait for folds still
// missing or unfinished, checking every poll; then, if any is still not
// done, it refuses with a *NotReadyError naming each, and writes nothing.
func (o Options) Collect(ctx context.Context, wait, poll time.Duration) (*Result, error) {
	cfg, err := o.plan()
	if err != nil {
		return nil, err
	}
	if poll <= 0 {
		poll = 10 * time.Second
	}
	start := time.Now()
	for {
		var pending []FoldStatus
		for _, s := range o.status() {
			if s.State != "done" {
				pending = append(pending, s)
			}
		}
		if len(pending) == 0 {
			break
		}
		waited := time.Since(start)
		if waited >= wait {
			return nil, &NotReadyError{Root: o.Out, Pending: pending, Waited: wait}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(poll, wait-waited)):
		}
	}
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	return finish(cfg, o, logf)
}
