package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"imet/internal/engine/torch"
	"imet/internal/postprocess/probs"
)

// tinyRun writes a synthetic data set, its folds, a 32-pixel pipeline and a
// two-stage ResNet-18 recipe small enough to train in seconds.
func tinyRun(t *testing.T) (cfgPath string) {
	t.Helper()
	return tinyRunOf(t, tinySpec{train: 48, test: 8, folds: 3, cultures: 3, tags: 6, headEpochs: 1, headLR: 1e-3})
}

// tinySpec sizes a tiny run: the synthetic data set and its folds, and the
// length and rate of the first (head-only) stage.
type tinySpec struct {
	train, test, folds, cultures, tags int
	headEpochs                         int
	headLR                             float64
}

// tinyRunOf is tinyRun sized by s.
func tinyRunOf(t *testing.T, s tinySpec) (cfgPath string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if code, _, errs := runCLI(t, "datasets", "synth", "--out", data, "--train", strconv.Itoa(s.train), "--test", strconv.Itoa(s.test),
		"--cultures", strconv.Itoa(s.cultures), "--tags", strconv.Itoa(s.tags)); code != 0 {
		t.Fatalf("synth: %s", errs)
	}
	if code, _, errs := runCLI(t, "folds", "--data", data, "--k", strconv.Itoa(s.folds), "--out", filepath.Join(data, "folds.csv")); code != 0 {
		t.Fatalf("folds: %s", errs)
	}
	pipes := filepath.Join(dir, "pipelines.yaml")
	os.WriteFile(pipes, []byte(`pipelines:
  tiny32:
    train:
      - {op: Resize, height: 32, width: 32}
      - {op: HorizontalFlip}
      - {op: Normalize}
    eval:
      - {op: Resize, height: 32, width: 32}
      - {op: Normalize}
    tta: {mode: flip}
`), 0o644)
	cfgPath = filepath.Join(dir, "run.yaml")
	os.WriteFile(cfgPath, []byte(`name: tiny
seed: 1
data:
  root: `+data+`
  pipeline: tiny32
  pipelines_file: `+pipes+`
  workers: 2
model: {arch: resnet18, pool: concat}
stages:
  - name: head
    epochs: `+strconv.Itoa(s.headEpochs)+`
    frozen: [stem, stage1, stage2, stage3, stage4]
    lr: [`+strconv.FormatFloat(s.headLR, 'g', -1, 64)+`]
    batch_size: 8
  - name: all
    epochs: 1
    lr: [1.0e-4, 1.0e-3]
    batch_size: 8
    schedule: {name: cosine, warmup_steps: 1}
    mixup: {alpha: 0.4, prob: 1}
    loss: [{name: bce}, {name: fbeta, weight: 0.5}]
checkpoint: {every_steps: 2, keep: 2}
validation: {batch_size: 16}
engine: {threads: 1}
`), 0o644)
	return cfgPath
}

func TestTrainStopsOnBudgetAndResumes(t *testing.T) {
	cfg := tinyRun(t)
	run := filepath.Join(t.TempDir(), "run")
	code, out, errs := runCLI(t, "train", "--config", cfg, "--fold", "1", "--run-dir", run, "--time-budget", "1ns")
	if code != 0 {
		t.Fatalf("train exited %d: %s", code, errs)
	}
	if !strings.Contains(out, "stopped at step 1") || !strings.Contains(out, "imet train --resume "+run) {
		t.Fatalf("no resume instructions:\n%s", out)
	}
	code, _, errs = runCLI(t, "train", "--config", cfg, "--fold", "1", "--run-dir", run)
	if code == 0 || !strings.Contains(errs, "--resume") {
		t.Fatalf("a second fresh run in the same directory was not refused: %d %s", code, errs)
	}
	code, out, errs = runCLI(t, "train", "--resume", run)
	if code != 0 {
		t.Fatalf("resume exited %d: %s", code, errs)
	}
	if !strings.Contains(out, "done at step") {
		t.Fatalf("resume output:\n%s", out)
	}
	oof, err := probs.Load(filepath.Join(run, "oof_fold1.npy"))
	if err != nil {
		t.Fatal(err)
	}
	test, err := probs.Load(filepath.Join(run, "test_fold1.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if oof.Rows == 0 || test.Rows != 8 || oof.Cols != test.Cols || len(oof.Labels) != oof.Cols {
		t.Fatalf("oof %dx%d, test %dx%d", oof.Rows, oof.Cols, test.Rows, test.Cols)
	}
	for _, p := range oof.Data {
		if !(p > 0 && p < 1) {
			t.Fatalf("probability %g", p)
		}
	}
}

func TestTrainRefusesChangedConfigOnResume(t *testing.T) {
	cfg := tinyRun(t)
	run := filepath.Join(t.TempDir(), "run")
	if code, _, errs := runCLI(t, "train", "--config", cfg, "--run-dir", run, "--time-budget", "1ns"); code != 0 {
		t.Fatal(errs)
	}
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(data), "lr: [1.0e-4, 1.0e-3]", "lr: [1.0e-4, 2.0e-3]", 1)), 0o644)
	code, _, errs := runCLI(t, "train", "--resume", run, "--config", cfg)
	if code == 0 || !strings.Contains(errs, "stages[1].lr[1]: was 0.001, now 0.002") {
		t.Fatalf("changed recipe: exit %d, %s", code, errs)
	}
}

// A training session is recorded in the registry with its curves; one
// stopped by its time budget shows as interrupted, not finished.
func TestTrainIsRecordedInRegistry(t *testing.T) {
	cfg := tinyRun(t)
	reg := filepath.Join(t.TempDir(), "registry.db")
	run := filepath.Join(t.TempDir(), "run")
	if code, _, errs := runCLI(t, "train", "--config", cfg, "--run-dir", run, "--registry", reg, "--time-budget", "1ns"); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := runCLI(t, "runs", "list", "--registry", reg)
	if code != 0 || !strings.Contains(out, "interrupted") || strings.Contains(out, "finished") {
		t.Fatalf("budget-stopped run: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "train", "--resume", run, "--registry", reg); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs = runCLI(t, "runs", "show", "--registry", reg, "2")
	if code != 0 {
		t.Fatalf("runs show: %s", errs)
	}
	for _, want := range []string{"finished", "val_f2", "loss", "lr", "checkpoint", "oof_fold0.npy"} {
		if !strings.Contains(out, want) {
			t.Errorf("runs show lacks %q:\n%s", want, out)
		}
	}
}

// TestTrainOnAMissingGPUFailsFirst: engine.device naming a GPU this
// libtorch cannot reach stops imet train and imet cv in one line naming
// the libtorch in use, before any data, weights or run directory.
func TestTrainOnAMissingGPUFailsFirst(t *testing.T) {
	cfg := tinyRun(t)
	gpu := torch.CUDA(torch.CUDADeviceCount()).String()
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "engine: {threads: 1}", "engine: {threads: 1, device: '"+gpu+"'}", 1)), 0o644)
	runDir := filepath.Join(t.TempDir(), "run")
	out := filepath.Join(t.TempDir(), "cv")
	for _, args := range [][]string{{"train", "--config", cfg, "--run-dir", runDir}, {"cv", "--config", cfg, "--out", out}} {
		code, _, errs := runCLI(t, args...)
		t.Log(strings.TrimSpace(errs))
		if code == 0 || !strings.Contains(errs, cfg+": engine.device "+gpu+": ") || !strings.Contains(errs, "libtorch "+torch.Version()) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%s: exit %d: %s", args[0], code, errs)
		}
	}
	for _, d := range []string{runDir, out} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s exists: something ran before the device check", d)
		}
	}
}
