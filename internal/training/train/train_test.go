package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"imet/internal/engine/torch"
	"imet/internal/training/checkpoint"
	"imet/internal/training/schedule"
	"imet/internal/training/trainconfig"
	"imet/internal/zoo/models"
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
	return sessionCtx(context.Background(), t, dir, resume, obs)
}

// sessionCtx is session under ctx, which a test cancels to stop it.
func sessionCtx(ctx context.Context, t testing.TB, dir string, resume bool, obs Observer) (Result, error) {
	r := tinyRecipe()
	tr, val := newMemSource(1, 48, 5, 16), newMemSource(2, 24, 5, 16)
	if obs == nil {
		obs = Observers{}
	}
	return Run(ctx, Options{
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

// trainLosses records the train_loss of every validation by global step.
type trainLosses struct {
	Observers
	at map[int64]float64
}

func (l *trainLosses) OnEpoch(e EpochEvent) { l.at[e.GlobalStep] = e.TrainLoss }

// cancelAfter cancels the session's context after optimizer step n, as a
// signal does.
type cancelAfter struct {
	Observers
	n      int64
	cancel context.CancelFunc
}

func (c cancelAfter) OnStep(e StepEvent) {
	if e.GlobalStep == c.n {
		c.cancel()
	}
}

// stopAndResume runs the tiny recipe straight through, then again stopped
// by stop (a context and its cancellation, called after optimizer step
// cut) and resumed, and requires the resumed run to match the
// uninterrupted one: every train_loss reported (the epoch's running sum
// travels in the checkpoint) and every final tensor. Same machine, same
// thread count, bit-identical weights, so values are compared exactly.
// It returns the stopped session's result.
func stopAndResume(t *testing.T, cut int64, ctx context.Context, cancel func()) Result {
	t.Helper()
	straight := &trainLosses{at: map[int64]float64{}}
	sdir := t.TempDir()
	if _, err := session(t, sdir, false, straight); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	before := &trainLosses{at: map[int64]float64{}}
	res, err := sessionCtx(ctx, t, dir, false, Observers{cancelAfter{n: cut, cancel: cancel}, before})
	if err != nil {
		t.Fatalf("stopped session: %v", err)
	}
	if res.Completed || res.Stopped != "signal" {
		t.Fatalf("stopped session: %+v, want a stop", res)
	}
	after := &trainLosses{at: map[int64]float64{}}
	res2, err := session(t, dir, true, after)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Completed {
		t.Fatalf("resumed session: %+v", res2)
	}
	for step, want := range straight.at {
		got, ok := after.at[step]
		if !ok {
			got, ok = before.at[step]
		}
		if !ok || got != want {
			t.Errorf("train_loss at step %d: %v (reported %v), uninterrupted %v", step, got, ok, want)
		}
	}
	for step := range after.at {
		if _, ok := straight.at[step]; !ok {
			t.Errorf("the resumed session validated at step %d, the uninterrupted run did not", step)
		}
	}
	a, b := finalTensors(t, sdir), finalTensors(t, dir)
	for n, ta := range a.Tensors {
		if !bytes.Equal(ta.Data, b.Tensors[n].Data) {
			t.Errorf("%s differs after the stop and resume", n)
		}
	}
	t.Logf("stopped at step %d: validations %v before, %v after", res.GlobalStep, before.at, after.at)
	return res
}

// TestResumedTrainLossAveragesTheWholeEpoch stops the tiny recipe in the
// middle of an epoch: the resumed session's train_loss for that epoch must
// average the whole epoch, not the steps since the resume.
func TestResumedTrainLossAveragesTheWholeEpoch(t *testing.T) {
	// Stage 2 has 6 steps an epoch (13-18); 16 is mid-epoch and not a
	// validation step (every 5), so the stop comes between optimizer steps.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := stopAndResume(t, 16, ctx, cancel)
	if res.GlobalStep != 16 || res.StopReason() != "cancelled" {
		t.Errorf("stopped at step %d (%s), want 16 (cancelled)", res.GlobalStep, res.StopReason())
	}
}

// TestSignalDuringValidationStops sends SIGINT just before a mid-epoch
// validation. The validation is cut short, which is a stop, not a
// failure: the session ends at its last checkpoint (the step before), and
// the resume redoes that step and the validation exactly.
func TestSignalDuringValidationStops(t *testing.T) {
	ctx, stop := SignalContext(context.Background(), syscall.SIGINT)
	defer stop()
	send := func() {
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		<-ctx.Done() // delivery is asynchronous; validation must see it
	}
	res := stopAndResume(t, 15, ctx, send) // validations every 5 steps
	if res.GlobalStep != 14 || res.Signal != "SIGINT" || res.StopReason() != "SIGINT" {
		t.Errorf("stopped at step %d by %q (%s), want step 14, SIGINT", res.GlobalStep, res.Signal, res.StopReason())
	}
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
	if !strings.Contains(log.String(), "reason=time-budget") || !strings.Contains(log.String(), "resume with: imet train --resume "+dir) {
		t.Fatalf("no resume hint in:\n%s", log.String())
	}
	if c := finalTensors(t, dir); c.State.GlobalStep != 1 {
		t.Fatalf("checkpoint at step %d", c.State.GlobalStep)
	}
}

// panicky panics in its first validation, standing for a bug anywhere in
// a session; it records the failure it is told about.
type panicky struct {
	Observers
	failed error
}

func (p *panicky) OnEpoch(EpochEvent) { panic(fmt.Sprintf("observer bug %d", 42)) }
func (p *panicky) OnFail(err error)   { p.failed = err }

// TestPanicInTrainingIsAFailure: a panic inside a session ends it with an
// error carrying the panic and its stack, reported to the observers, not
// with a crash of the process.
func TestPanicInTrainingIsAFailure(t *testing.T) {
	obs := &panicky{}
	_, err := session(t, t.TempDir(), false, obs)
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v, want a *PanicError", err)
	}
	for _, want := range []string{"panic: observer bug 42", "goroutine ", "(*panicky).OnEpoch", "train_test.go"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	if obs.failed != err {
		t.Errorf("OnFail got %v", obs.failed)
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
	r.Engine.Precision = trainconfig.PrecisionBF16
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
