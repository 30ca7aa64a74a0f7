package train

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
	"imet/internal/training/trainconfig"
)

// scaledSession runs (or resumes) the tiny recipe r in dir; scale > 0
// turns loss scaling on with that growth interval, which a CPU run only
// gets this way (fp16 needs a GPU).
func scaledSession(t *testing.T, r trainconfig.Run, dir string, resume bool, scale int, m Model, o Options) (Result, error) {
	t.Helper()
	tr, val := newMemSource(1, 48, 5, 16), newMemSource(2, 24, 5, 16)
	if m == nil {
		m = tinyModel(t, r, 5)
	}
	o.Config, o.RunDir, o.Resume, o.Model, o.Train, o.Val, o.ValTruth = r, dir, resume, m, tr, val, val.truth()
	var setup func(*trainer)
	if scale > 0 {
		setup = func(tr *trainer) { tr.scaler = optim.NewGradScaler(optim.GradScalerOptions{GrowthInterval: scale}) }
	}
	return run(context.Background(), o, setup)
}

func clipped() trainconfig.Run {
	r := tinyRecipe()
	for i := range r.Stages {
		r.Stages[i].Optimizer.ClipGradNorm = 0.05
	}
	return r
}

// TestLossScalingIsExactInFloat32: scaling a float32 loss by a power of
// two and unscaling the gradients changes no bit (every backward op is
// linear in the incoming gradient), so a run with loss scaling must equal
// one without, byte for byte, through two stages with accumulation and
// gradient clipping. Clipping scaled gradients, or unscaling twice, would
// break it; so would a skipped step.
func TestLossScalingIsExactInFloat32(t *testing.T) {
	plain, scaled, unclipped := t.TempDir(), t.TempDir(), t.TempDir()
	if _, err := scaledSession(t, clipped(), plain, false, 0, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	var scales []float64
	obs := stepFunc(func(e StepEvent) {
		if e.Skipped {
			t.Errorf("step %d skipped", e.GlobalStep)
		}
		scales = append(scales, e.LossScale)
	})
	if _, err := scaledSession(t, clipped(), scaled, false, 3, nil, Options{Observer: obs}); err != nil {
		t.Fatal(err)
	}
	if _, err := scaledSession(t, tinyRecipe(), unclipped, false, 0, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	a, b, c := finalTensors(t, plain), finalTensors(t, scaled), finalTensors(t, unclipped)
	if len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("%d tensors without scaling, %d with", len(a.Tensors), len(b.Tensors))
	}
	for n, ta := range a.Tensors {
		if !bytes.Equal(ta.Data, b.Tensors[n].Data) {
			t.Errorf("%s differs with loss scaling", n)
		}
	}
	if bytes.Equal(a.Tensors["model/fc.weight"].Data, c.Tensors["model/fc.weight"].Data) {
		t.Error("clip_grad_norm 0.05 changed nothing: the test would not see clipping of scaled gradients")
	}
	if b.State.LossScale == nil || a.State.LossScale != nil {
		t.Fatalf("loss-scale state: %+v with scaling, %+v without", b.State.LossScale, a.State.LossScale)
	}
	if want := 65536 * math.Pow(2, float64(len(scales)/3)); b.State.LossScale.Scale != want || scales[len(scales)-1] != want {
		t.Errorf("after %d clean steps the scale is %v (checkpoint %v), want %v", len(scales), scales[len(scales)-1], b.State.LossScale.Scale, want)
	}
}

type stepFunc func(StepEvent)

func (f stepFunc) OnStart(StartEvent)           {}
func (f stepFunc) OnStep(e StepEvent)           { f(e) }
func (f stepFunc) OnEpoch(EpochEvent)           {}
func (f stepFunc) OnCheckpoint(CheckpointEvent) {}
func (f stepFunc) OnFinish(FinishEvent)         {}
func (f stepFunc) OnFail(error)                 {}

// poisoned multiplies the logits of chosen training forward passes (1-based
// count) by +Inf, so that their gradients hold infs and NaNs.
type poisoned struct {
	Model
	at map[int]bool
	n  int
}

func (p *poisoned) Forward(x *torch.Tensor) *torch.Tensor {
	out := p.Model.Forward(x)
	if p.Store().Training() {
		p.n++
		if p.at[p.n] {
			out = out.MulScalar(math.Inf(1))
		}
	}
	return out
}

// TestLossScalingSkipsPoisonedSteps poisons steps 2, 3 and 8 of a
// one-stage run: those updates are skipped (every parameter keeps its
// bits), the scale halves at each and grows back after 3 clean steps.
func TestLossScalingSkipsPoisonedSteps(t *testing.T) {
	r := tinyRecipe()
	r.Stages = r.Stages[:1]
	r.EMA.Enabled = false
	bad := map[int]bool{2: true, 3: true, 8: true}
	m := &poisoned{Model: tinyModel(t, r, 5), at: bad}
	params := func() []byte {
		var b []byte
		for _, v := range m.Store().Params() {
			b = append(b, v.T.Bytes()...)
		}
		return b
	}
	prev := params()
	scale, tracker := 65536.0, 0
	steps := 0
	obs := stepFunc(func(e StepEvent) {
		steps++
		now := params()
		if bad[steps] {
			scale, tracker = scale/2, 0
			if !e.Skipped || !bytes.Equal(now, prev) {
				t.Errorf("poisoned step %d: skipped %v, parameters kept %v", steps, e.Skipped, bytes.Equal(now, prev))
			}
		} else {
			if tracker++; tracker == 3 {
				scale, tracker = scale*2, 0
			}
			if e.Skipped || bytes.Equal(now, prev) {
				t.Errorf("clean step %d: skipped %v, parameters changed %v", steps, e.Skipped, !bytes.Equal(now, prev))
			}
		}
		if e.LossScale != scale {
			t.Errorf("step %d: loss scale %v, want %v", steps, e.LossScale, scale)
		}
		prev = now
	})
	res, err := scaledSession(t, r, t.TempDir(), false, 3, m, Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Completed || steps < 9 {
		t.Fatalf("%+v after %d steps", res, steps)
	}
}

// TestLossScaleStateResumes stops a scaled run after its first step and
// resumes it: the scale and the count of clean steps come back from the
// checkpoint, so the run ends exactly as an uninterrupted one.
func TestLossScaleStateResumes(t *testing.T) {
	straight, cut := t.TempDir(), t.TempDir()
	if _, err := scaledSession(t, tinyRecipe(), straight, false, 3, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := scaledSession(t, tinyRecipe(), cut, false, 3, nil, Options{TimeBudget: time.Nanosecond})
	if err != nil || res.Completed || res.GlobalStep != 1 {
		t.Fatalf("budgeted session: %+v %v", res, err)
	}
	if ls := finalTensors(t, cut).State.LossScale; ls == nil || ls.Scale != 65536 || ls.GrowthTracker != 1 {
		t.Fatalf("checkpoint after one step keeps loss scale %+v", ls)
	}
	if res, err := scaledSession(t, tinyRecipe(), cut, true, 3, nil, Options{}); err != nil || !res.Completed {
		t.Fatalf("resumed: %+v %v", res, err)
	}
	a, b := finalTensors(t, straight), finalTensors(t, cut)
	if *a.State.LossScale != *b.State.LossScale {
		t.Errorf("loss scale %+v straight, %+v resumed", *a.State.LossScale, *b.State.LossScale)
	}
	for n, ta := range a.Tensors {
		if !bytes.Equal(ta.Data, b.Tensors[n].Data) {
			t.Errorf("%s differs after resume", n)
		}
	}
	// A checkpoint without a loss scale cannot feed a scaled run.
	unscaled := t.TempDir()
	if _, err := scaledSession(t, tinyRecipe(), unscaled, false, 0, nil, Options{TimeBudget: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := scaledSession(t, tinyRecipe(), unscaled, true, 3, nil, Options{}); err == nil || !strings.Contains(err.Error(), "no loss-scale state") {
		t.Errorf("scaled resume of an unscaled checkpoint: %v", err)
	}
}

// TestCUDAOnThisLibtorchFailsBeforeTraining asks for the first GPU this
// process does not have (on a CPU-only libtorch: cuda): one line naming the
// libtorch, and nothing written.
func TestCUDAOnThisLibtorchFailsBeforeTraining(t *testing.T) {
	r := tinyRecipe()
	r.Engine.Device = torch.CUDA(torch.CUDADeviceCount()).String()
	dir := filepath.Join(t.TempDir(), "run")
	_, err := scaledSession(t, r, dir, false, 0, nil, Options{})
	if err == nil {
		t.Fatalf("%s accepted", r.Engine.Device)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "engine.device "+r.Engine.Device+": ") || !strings.Contains(msg, "libtorch "+torch.Version()) || strings.Contains(msg, "\n") {
		t.Errorf("refusal: %q", msg)
	}
	if torch.CUDADeviceCount() == 0 && !strings.Contains(msg, "IMET_TORCH") {
		t.Errorf("refusal %q does not say how to use a CUDA libtorch", msg)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s was created before the device was checked", dir)
	}
}

// TestRunsMoveBetweenDevices trains a step on the GPU, resumes on the CPU
// to the end, and the reverse: checkpoints hold host tensors, so either
// way the run completes. It needs a GPU.
func TestRunsMoveBetweenDevices(t *testing.T) {
	if torch.CUDADeviceCount() == 0 {
		t.Skip("no GPU")
	}
	for _, from := range []string{"cuda", "cpu"} {
		to := map[string]string{"cuda": "cpu", "cpu": "cuda"}[from]
		dir := t.TempDir()
		r := tinyRecipe()
		r.Engine.Device = from
		if res, err := scaledSession(t, r, dir, false, 0, nil, Options{TimeBudget: time.Nanosecond}); err != nil || res.Completed {
			t.Fatalf("%s session: %+v %v", from, res, err)
		}
		r.Engine.Device = to
		res, err := scaledSession(t, r, dir, true, 0, nil, Options{})
		if err != nil || !res.Completed {
			t.Fatalf("%s -> %s: %+v %v", from, to, res, err)
		}
	}
}

// TestFP16OnGPU trains the tiny recipe with fp16 autocast and loss
// scaling on the first GPU: finite losses, a learnt F2 and the scale in
// the checkpoint. It needs a GPU.
func TestFP16OnGPU(t *testing.T) {
	if torch.CUDADeviceCount() == 0 {
		t.Skip("no GPU")
	}
	for _, p := range []string{trainconfig.PrecisionFP16, trainconfig.PrecisionBF16} {
		r := tinyRecipe()
		r.Engine.Device, r.Engine.Precision, r.Engine.ChannelsLast, r.Engine.CudnnBenchmark = "cuda", p, true, true
		dir := t.TempDir()
		var losses []float64
		skipped := 0
		obs := stepFunc(func(e StepEvent) {
			losses = append(losses, e.Loss)
			if e.Skipped {
				skipped++
			}
		})
		res, err := scaledSession(t, r, dir, false, 0, nil, Options{Observer: obs})
		if err != nil || !res.Completed || res.BestF2 <= 0 {
			t.Fatalf("%s: %+v %v", p, res, err)
		}
		if last := losses[len(losses)-1]; math.IsNaN(last) || math.IsInf(last, 0) || skipped > len(losses)/4 {
			t.Errorf("%s: %d of %d steps skipped, losses %v", p, skipped, len(losses), losses)
		}
		if ls := finalTensors(t, dir).State.LossScale; (ls != nil) != (p == trainconfig.PrecisionFP16) {
			t.Errorf("%s: loss scale state %+v", p, ls)
		}
	}
}
