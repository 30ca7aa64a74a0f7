package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"imet/internal/jobs/cluster"
	"imet/internal/postprocess/probs"
	"imet/internal/training/checkpoint"
	"imet/internal/training/crossval"
)

// foldTask starts `imet cv` as one task of a cluster array: the test
// binary as imet, with the scheduler's variable set and no fold named.
func foldTask(t *testing.T, cfg, out string, env string, extra ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	args := append([]string{"cv", "--config", cfg, "--out", out, "--no-registry", "--fold-from-env"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(withoutSchedulerVars(os.Environ()), asIMet+"=1", env)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &b
}

// withoutSchedulerVars drops the fold variables of the scheduler this test
// may itself run under (CI in a Kubernetes Indexed Job, a Slurm array).
func withoutSchedulerVars(env []string) []string {
	var keep []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, crossval.EnvJobIndex+"=") && !strings.HasPrefix(kv, crossval.EnvSlurmTask+"=") {
			keep = append(keep, kv)
		}
	}
	return keep
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestCVFoldsAsJobs runs a two-fold cross-validation as a cluster would:
// each fold a separate `imet cv` process that reads its fold from the
// scheduler's variable (JOB_COMPLETION_INDEX for fold 0, as a Kubernetes
// Indexed Job sets it; SLURM_ARRAY_TASK_ID for fold 1), on one run root.
// Collecting before the folds exist, and again after fold 1's task was
// killed, is refused naming what is missing; fold 1's task is restarted
// (first stopped by a time budget, which exits 75 so the scheduler retries
// it, then to the end) and resumes from its checkpoint; collecting then
// writes the out-of-fold probabilities of every row and the submission.
func TestCVFoldsAsJobs(t *testing.T) {
	cfg := tinyRunOf(t, tinySpec{train: 40, test: 8, folds: 2, cultures: 3, tags: 6, headEpochs: 1, headLR: 1e-3})
	out := filepath.Join(t.TempDir(), "cv")
	code, _, errs := runCLI(t, "cv", "--config", cfg, "--out", out, "--collect", "--no-registry")
	if code != 1 || !strings.Contains(errs, "fold 0: missing") || !strings.Contains(errs, "fold 1: missing") {
		t.Fatalf("collect with no fold trained: exit %d\n%s", code, errs)
	}

	f0, out0 := foldTask(t, cfg, out, "JOB_COMPLETION_INDEX=0")
	f1, out1 := foldTask(t, cfg, out, "SLURM_ARRAY_TASK_ID=1")
	d1 := checkpoint.Dir{Path: filepath.Join(out, "fold1", "checkpoints")}
	killed := false
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if ix, err := d1.ReadIndex(); err == nil && ix.Latest != "" {
			f1.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	f1.Wait()
	if !killed {
		t.Fatalf("fold 1's task never checkpointed:\n%s", out1)
	}
	if err := f0.Wait(); err != nil {
		t.Fatalf("fold 0's task: %v\n%s", err, tail(out0.String()))
	}
	if !strings.Contains(out0.String(), "event=cv fold=0 chosen_by=JOB_COMPLETION_INDEX") {
		t.Errorf("fold 0's task did not say how its fold was chosen:\n%s", tail(out0.String()))
	}
	if _, err := os.Stat(filepath.Join(out, "fold1", "oof_fold1.npy")); err == nil {
		t.Fatal("fold 1 finished before it was killed: the test proves nothing")
	}
	code, _, errs = runCLI(t, "cv", "--config", cfg, "--out", out, "--collect", "--no-registry")
	if code != 1 || !strings.Contains(errs, "fold 1: unfinished, last checkpoint at step") || strings.Contains(errs, "fold 0:") {
		t.Fatalf("collect with fold 1 unfinished: exit %d\n%s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(out, "submission.csv")); err == nil {
		t.Fatal("a refused collect wrote a submission")
	}

	// The scheduler runs the task again: stopped by its budget first ...
	f1, out1 = foldTask(t, cfg, out, "SLURM_ARRAY_TASK_ID=1", "--time-budget", "1ns")
	if c := exitCodeOf(f1.Wait()); c != cluster.ExitIncomplete {
		t.Fatalf("fold 1 stopped by its budget exited %d, want %d:\n%s", c, cluster.ExitIncomplete, tail(out1.String()))
	}
	// ... then to the end.
	f1, out1 = foldTask(t, cfg, out, "SLURM_ARRAY_TASK_ID=1")
	if err := f1.Wait(); err != nil {
		t.Fatalf("fold 1's restarted task: %v\n%s", err, tail(out1.String()))
	}
	if !strings.Contains(out1.String(), "event=resume") {
		t.Errorf("fold 1's restarted task did not resume its checkpoint:\n%s", tail(out1.String()))
	}
	code, stdout, errs := runCLI(t, "cv", "--config", cfg, "--out", out, "--collect", "--no-registry")
	if code != 0 {
		t.Fatalf("collect: exit %d\n%s", code, errs)
	}
	oof, err := probs.Load(filepath.Join(out, "oof.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if oof.Rows != 40 {
		t.Errorf("oof.npy has %d rows, want every one of the 40 training rows", oof.Rows)
	}
	for _, f := range []string{"thresholds.json", "test.npy", "submission.csv"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("collect wrote no %s: %v\n%s", f, err, stdout)
		}
	}
}

// TestCVEmitKubernetes writes the Indexed Job of a run's folds and its
// collect Job, reads them back strictly into batch/v1 Job's fields (an
// unknown or misspelt field fails) and checks them against what the API
// requires (cluster.Job.Validate) and what resuming needs.
func TestCVEmitKubernetes(t *testing.T) {
	cfg := tinyRunOf(t, tinySpec{train: 24, test: 4, folds: 3, cultures: 2, tags: 4, headEpochs: 1, headLR: 1e-3})
	code, out, errs := runCLI(t, "cv", "--config", cfg, "--emit", "kubernetes", "--image", "registry.example/imet:1", "--volume", "imet-data",
		"--gpus", "1", "--memory", "32Gi", "--time-budget", "8h")
	if code != 0 {
		t.Fatalf("emit: exit %d\n%s", code, errs)
	}
	docs := strings.Split(out, "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%d YAML documents, want the folds' Job and the collect Job:\n%s", len(docs), out)
	}
	var jobs []cluster.Job
	for i, d := range docs {
		var j cluster.Job
		if err := yaml.UnmarshalWithOptions([]byte(d), &j, yaml.Strict()); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, d)
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("document %d is not a valid batch/v1 Job: %v\n%s", i, err, d)
		}
		jobs = append(jobs, j)
	}
	folds, collect := jobs[0], jobs[1]
	sp := folds.Spec
	if sp.CompletionMode != "Indexed" || sp.Completions == nil || *sp.Completions != 3 || sp.BackoffLimitPerIndex == nil {
		t.Errorf("folds Job: completionMode %q, completions %v, backoffLimitPerIndex %v; want Indexed, 3, set", sp.CompletionMode, sp.Completions, sp.BackoffLimitPerIndex)
	}
	c := sp.Template.Spec.Containers[0]
	cmd := strings.Join(c.Command, " ")
	if !strings.HasPrefix(cmd, "imet cv --config "+cfg) || strings.Contains(cmd, "--fold ") || !strings.Contains(cmd, "--fold-from-env") || !strings.Contains(cmd, "--time-budget 8h0m0s") {
		t.Errorf("fold command %q: want imet cv with the fold left to JOB_COMPLETION_INDEX and the budget", cmd)
	}
	if c.Image != "registry.example/imet:1" || c.Resources == nil || c.Resources.Limits["nvidia.com/gpu"] != "1" || c.Resources.Limits["memory"] != "32Gi" {
		t.Errorf("fold container: image %q, resources %+v", c.Image, c.Resources)
	}
	if v := sp.Template.Spec.Volumes; len(v) != 1 || v[0].PersistentVolumeClaim.ClaimName != "imet-data" || c.WorkingDir != "/work" {
		t.Errorf("volumes %+v, working directory %q: want the claim imet-data mounted as the working directory", v, c.WorkingDir)
	}
	ignored := map[string]bool{}
	for _, r := range sp.PodFailurePolicy.Rules {
		if r.Action == "Ignore" && r.OnExitCodes != nil && len(r.OnExitCodes.Values) == 1 && r.OnExitCodes.Values[0] == cluster.ExitIncomplete {
			ignored["exit"] = true
		}
		if r.Action == "Ignore" && len(r.OnPodConditions) == 1 && r.OnPodConditions[0].Type == "DisruptionTarget" {
			ignored["disruption"] = true
		}
	}
	if !ignored["exit"] || !ignored["disruption"] {
		t.Errorf("pod failure policy %+v: a stop before the end (exit %d) and an eviction must not use up the retries", sp.PodFailurePolicy, cluster.ExitIncomplete)
	}
	if cc := strings.Join(collect.Spec.Template.Spec.Containers[0].Command, " "); !strings.Contains(cc, "--collect") || collect.Spec.CompletionMode == "Indexed" {
		t.Errorf("collect Job: command %q, mode %q", cc, collect.Spec.CompletionMode)
	}
	if code, _, errs := runCLI(t, "cv", "--config", cfg, "--emit", "kubernetes"); code == 0 || !strings.Contains(errs, "--volume") {
		t.Errorf("emit without shared storage: exit %d %s", code, errs)
	}
}

// TestCVEmitSlurm writes the sbatch array script: one task per fold,
// requeued when stopped before the end, shell syntax checked by bash.
func TestCVEmitSlurm(t *testing.T) {
	cfg := tinyRunOf(t, tinySpec{train: 24, test: 4, folds: 3, cultures: 2, tags: 4, headEpochs: 1, headLR: 1e-3})
	script := filepath.Join(t.TempDir(), "folds.sbatch")
	code, _, errs := runCLI(t, "cv", "--config", cfg, "--emit", "slurm", "--emit-to", script, "--gpus", "2", "--time-limit", "8:00:00", "--parallel", "2")
	if code != 0 {
		t.Fatalf("emit: exit %d\n%s", code, errs)
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"#SBATCH --array=0-2%2", "#SBATCH --gres=gpu:2", "#SBATCH --time=8:00:00", "#SBATCH --requeue",
		"#SBATCH --signal=B:TERM@120", "scontrol requeue", "--dependency=afterok:$jid", "--collect", "imet cv --config " + cfg} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "--fold ") || !strings.Contains(s, "--fold-from-env") {
		t.Errorf("the script names a fold; SLURM_ARRAY_TASK_ID should choose it:\n%s", s)
	}
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
}

// TestChosenFold: the scheduler's index chooses a fold only when asked
// (CI itself may run in an Indexed Job), and asking without it is an error.
func TestChosenFold(t *testing.T) {
	t.Setenv(crossval.EnvJobIndex, "1")
	t.Setenv(crossval.EnvSlurmTask, "")
	cases := []struct {
		cmd     cvCmd
		want    int
		wantErr bool
	}{
		{cvCmd{Fold: -1}, -1, false},
		{cvCmd{Fold: 2}, 2, false},
		{cvCmd{Fold: -1, FoldFromEnv: true}, 1, false},
		{cvCmd{Fold: -1, FoldFromEnv: true, Folds: []int{3, 4}}, 4, false},
		{cvCmd{Fold: -1, FoldFromEnv: true, Folds: []int{3}}, -1, true},
	}
	for i, c := range cases {
		got, _, err := c.cmd.chosenFold()
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("case %d: fold %d, err %v; want %d, error %v", i, got, err, c.want, c.wantErr)
		}
	}
	t.Setenv(crossval.EnvJobIndex, "")
	if _, _, err := (&cvCmd{Fold: -1, FoldFromEnv: true}).chosenFold(); err == nil || !strings.Contains(err.Error(), crossval.EnvJobIndex) {
		t.Errorf("--fold-from-env with no variable set: %v", err)
	}
}
