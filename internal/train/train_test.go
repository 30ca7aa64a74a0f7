package train

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"imet/internal/checkpoint"
	"imet/internal/models"
	"imet/internal/schedule"
	"imet/internal/torch"
	"imet/internal/trainconfig"
)

// tinyRecipe exercises every piece of state a resume must restore: two
// stages (the first with frozen groups, the second with discriminative
// rates, accumulation, Mixup and a plateau schedule), EMA, hard-example
// mining, dropout, and mid-epoch validation.
func tinyRecipe() trainconfig.Run {
	r := trainconfig.Default()
	r.Name, r.Seed = "tiny", 3
	r.Model = trainconfig.Model{Arch: "tiny", Pool: "avg", Dropout: 0.2}
	s1 := trainconfig.DefaultStage()
	s1.Name, s1.Epochs, s1.BatchSize = "head", 2, 8
	s1.Frozen = []string{"stem", "stage1", "stage2"}
	s1.LR = []float64{1e-2, 3e-2}
	s1.Schedule.Name, s1.Schedule.WarmupSteps = schedule.Cosine, 2
	s2 := trainconfig.DefaultStage()
	s2.Name, s2.Epochs, s2.BatchSize, s2.Accumulate = "all", 2, 4, 2
	s2.LR = []float64{1e-3, 1e-2, 3e-2}
	s2.Optimizer.Name, s2.Optimizer.Momentum = "sgd", 0.9
	s2.Schedule.Name, s2.Schedule.Patience, s2.Schedule.Factor = schedule.Plateau, 0, 0.5
	s2.Mixup = trainconfig.Mix{Alpha: 0.4, Prob: 0.5}
	fb := trainconfig.DefaultLossTerm()
	fb.Name, fb.Weight = "fbeta", 0.5
	s2.Loss = append(s2.Loss, fb)
	r.Stages = []trainconfig.Stage{s1, s2}
	r.Validation = trainconfig.Validation{EveryEpochs: 1, EverySteps: 5, BatchSize: 16}
	r.Checkpoint = trainconfig.Checkpoint{EverySteps: 1, Keep: 2}
	r.EMA = trainconfig.EMA{Enabled: true, Decay: 0.9}
	r.HardMining.Fraction = 0.25
	r.Engine.Threads = 1
	return r
}

func tinyModel(t testing.TB, r trainconfig.Run, classes int) Model {
	torch.ManualSeed(uint64(r.Seed))
	m, err := models.NewResNet(models.ResNetConfig{Blocks: [4]int{1, 1, 1, 1}, Width: 4},
		models.Options{NumClasses: classes, Pool: r.Model.Pool, Dropout: r.Model.Dropout})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// session runs (or resumes) the tiny recipe in dir.
func session(t testing.TB, dir string, resume bool, obs Observer) (Result, error) {
	r := tinyRecipe()
	tr, val := newMemSource(1, 48, 5, 16), newMemSource(2, 24, 5, 16)
	if obs == nil {
		obs = Observers{}
	}
	return Run(context.Background(), Options{
		Config: r, Fold: 0, RunDir: dir, Resume: resume, Observer: obs,
		Model: tinyModel(t, r, 5), Train: tr, Val: val, ValTruth: val.truth(), Test: val,
		Outputs: func(oof, test []float32, cols int) ([]string, error) {
			p := filepath.Join(dir, "oof.bin")
			return []string{p}, os.WriteFile(p, checkpoint.Float32(nil, oof).Data, 0o644)
		},
	})
}

// slow makes a child session slow enough to be killed half-way.
type slow struct{ Observers }

func (slow) OnStep(StepEvent) { time.Sleep(30 * time.Millisecond) }

// TestResumeChild is the process the resume test kills; it does nothing
// unless started by TestResumeAfterKillIsBitIdentical.
func TestResumeChild(t *testing.T) {
	dir := os.Getenv("IMET_RESUME_CHILD_DIR")
	if dir == "" {
		t.Skip("only runs as the child of TestResumeAfterKillIsBitIdentical")
	}
	if _, err := session(t, dir, false, slow{}); err != nil {
		t.Fatal(err)
	}
}

// finalTensors reads the newest checkpoint of a run.
func finalTensors(t *testing.T, dir string) *checkpoint.Checkpoint {
	d := checkpoint.Dir{Path: filepath.Join(dir, "checkpoints")}
	p, err := d.Latest()
	if err != nil || p == "" {
		t.Fatalf("no checkpoint in %s: %v", dir, err)
	}
	c, err := checkpoint.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestResumeAfterKillIsBitIdentical trains the tiny recipe straight
// through, then again in a child process killed with SIGKILL half-way and
// resumed here, and requires bit-identical weights, EMA weights, optimizer
// moments and out-of-fold probabilities. On CPU libtorch is deterministic
// for a fixed thread count, so no tolerance is needed.
func TestResumeAfterKillIsBitIdentical(t *testing.T) {
	straight := t.TempDir()
	res, err := session(t, straight, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Completed {
		t.Fatal("straight run did not complete")
	}
	total := res.GlobalStep

	cut := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "IMET_RESUME_CHILD_DIR="+cut)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := checkpoint.Dir{Path: filepath.Join(cut, "checkpoints")}
	deadline := time.Now().Add(60 * time.Second)
	killedAt := int64(-1)
	for time.Now().Before(deadline) {
		if ix, err := d.ReadIndex(); err == nil && ix.Latest != "" {
			var step int64
			fmt.Sscanf(ix.Latest, "step-%d.ckpt", &step)
			if step >= total/2+3 { // mid-epoch, in the stage with accumulation and Mixup
				cmd.Process.Signal(syscall.SIGKILL)
				killedAt = step
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Wait()
	if killedAt < 0 {
		t.Fatalf("child never reached step %d:\n%s", total/2+3, out.String())
	}
	if killedAt >= total {
		t.Fatalf("child finished before it was killed (step %d of %d)", killedAt, total)
	}
	res2, err := session(t, cut, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Completed || res2.GlobalStep != total {
		t.Fatalf("resumed run: %+v, want completed at step %d", res2, total)
	}
	a, b := finalTensors(t, straight), finalTensors(t, cut)
	var names []string
	for n := range a.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("%d tensors straight, %d resumed", len(a.Tensors), len(b.Tensors))
	}
	for _, n := range names {
		if !bytes.Equal(a.Tensors[n].Data, b.Tensors[n].Data) {
			t.Errorf("%s differs after kill at step %d and resume", n, killedAt)
		}
	}
	if a.State.BestF2 != b.State.BestF2 || a.State.Schedule != b.State.Schedule {
		t.Errorf("state differs: %+v vs %+v", a.State, b.State)
	}
	oa, _ := os.ReadFile(filepath.Join(straight, "oof.bin"))
	ob, _ := os.ReadFile(filepath.Join(cut, "oof.bin"))
	if len(oa) == 0 || !bytes.Equal(oa, ob) {
		t.Error("out-of-fold probabilities differ")
	}
	t.Logf("killed at step %d of %d; %d tensors identical", killedAt, total, len(names))
}

func TestRefusesIncompatibleResumeAndExistingRun(t *testing.T) {
	dir := t.TempDir()
	if _, err := session(t, dir, true, nil); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Fatalf("resume of an empty dir: %v", err)
	}
	if _, err := session(t, dir, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := session(t, dir, false, nil); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("second fresh run in the same dir: %v", err)
	}
	r := tinyRecipe()
	r.Stages[1].LR[2] = 1e-2
	tr, val := newMemSource(1, 48, 5, 16), newMemSource(2, 24, 5, 16)
	_, err := Run(context.Background(), Options{Config: r, RunDir: dir, Resume: true, Model: tinyModel(t, r, 5),
		Train: tr, Val: val, ValTruth: val.truth()})
	if err == nil || !strings.Contains(err.Error(), "stages[1].lr[2]: was 0.03, now 0.01") {
		t.Fatalf("incompatible resume: %v", err)
	}
}

func TestTimeBudgetStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	r := tinyRecipe()
	tr, val := newMemSource(1, 48, 5, 16), newMemSource(2, 24, 5, 16)
	res, err := Run(context.Background(), Options{Config: r, RunDir: dir, Model: tinyModel(t, r, 5), Train: tr, Val: val,
		ValTruth: val.truth(), TimeBudget: time.Nanosecond, ResumeHint: "imet train --resume " + dir,
		Observer: &Progress{W: &log}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed || res.Stopped != "budget" || res.GlobalStep != 1 {
		t.Fatalf("result %+v, want a stop after the first step", res)
	}
	if !strings.Contains(log.String(), "resume with: imet train --resume "+dir) {
		t.Fatalf("no resume hint in:\n%s", log.String())
	}
	if c := finalTensors(t, dir); c.State.GlobalStep != 1 {
		t.Fatalf("checkpoint at step %d", c.State.GlobalStep)
	}
}

func TestLearnsTheSyntheticTask(t *testing.T) {
	r := trainconfig.Default()
	r.Seed = 5
	r.Model = trainconfig.Model{Arch: "tiny", Pool: "avg"}
	s := trainconfig.DefaultStage()
	s.Name, s.Epochs, s.BatchSize, s.LR = "all", 12, 8, []float64{1e-2}
	s.Schedule.Name = schedule.Cosine
	r.Stages = []trainconfig.Stage{s}
	r.Checkpoint = trainconfig.Checkpoint{Keep: 1}
	r.Validation = trainconfig.Validation{EveryEpochs: 4, BatchSize: 32}
	r.Engine.Threads = 1
	tr, val := newMemSource(1, 96, 5, 16), newMemSource(2, 48, 5, 16)
	var log bytes.Buffer
	res, err := Run(context.Background(), Options{Config: r, RunDir: t.TempDir(), Model: tinyModel(t, r, 5),
		Train: tr, Val: val, ValTruth: val.truth(), Observer: &Progress{W: &log}})
	if err != nil {
		t.Fatal(err)
	}
	// The labels are visible patches. Predicting every label scores about
	// 0.66 (a third of labels positive); learning must do clearly better.
	// The run is exact on one machine, but other CPUs' kernels move it:
	// 0.816 with the default kernels on Intel AVX-512, 0.817 with AMD's
	// (ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Zen), 0.803 with
	// ATEN_CPU_CAPABILITY=default, 0.7999 with SSE4.1 oneDNN and OpenBLAS
	// (under the old floor of 0.8). The floor sits halfway between the
	// baseline and those.
	if res.BestF2 < 0.73 {
		t.Fatalf("best F2 %.3f\n%s", res.BestF2, log.String())
	}
	t.Logf("best F2 %.4f", res.BestF2)
}

// TestBF16Autocast runs the tiny recipe with bfloat16 autocast around the
// forward pass and the loss: it must train (finite losses, a result) and
// resume like the float32 run.
func TestBF16Autocast(t *testing.T) {
	r := tinyRecipe()
	r.Engine.BF16 = true
	r.Stages = r.Stages[:1]
	tr, val := newMemSource(1, 48, 5, 16), newMemSource(2, 24, 5, 16)
	var log bytes.Buffer
	res, err := Run(context.Background(), Options{Config: r, RunDir: t.TempDir(), Model: tinyModel(t, r, 5),
		Train: tr, Val: val, ValTruth: val.truth(), Observer: &Progress{W: &log}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Completed || strings.Contains(log.String(), "NaN") || res.BestF2 <= 0 {
		t.Fatalf("bf16 run: %+v\n%s", res, log.String())
	}
}
