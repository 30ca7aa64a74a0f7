// Package train runs a training recipe (internal/training/trainconfig) on one fold:
// stages in order, per-group learning rates and schedules, accumulation,
// gradient clipping, EMA of weights, hard-example resampling, validation
// with F2 at the best global threshold, checkpoints, a time budget that
// stops cleanly, and exact resume.
//
// # Devices and precision
//
// The model, the optimizer state, the EMA weights and every loss and
// metric live on engine.device (the CPU or one GPU): the parameter store
// moves there once, after its weights have loaded, and each batch follows
// from pinned host memory with an asynchronous copy while the loader's
// workers decode the next ones. Checkpoints hold host bytes, so a run may
// resume on another device. engine.precision bf16 autocasts forward and
// loss to bfloat16; fp16 (GPU only) autocasts to float16 and scales the
// loss with optim.GradScaler, whose state the checkpoint keeps.
//
// # Exact resume
//
// Nothing random in a run keeps hidden running state. The data order of an
// epoch is a function of (seed, stage, epoch); augmentation and mixing
// draws are functions of the epoch key and the position in the epoch (see
// Source); libtorch's generator, which dropout uses, is re-seeded before
// every optimizer step from (seed, global step); the learning rate is a
// pure function of the step (internal/training/schedule). What does change as the
// run proceeds — weights and BatchNorm statistics, optimizer moments, EMA
// weights, the plateau state, per-sample losses for hard mining, the best
// F2 — is all in the checkpoint. A resumed run therefore recomputes the
// same batches with the same rates on the same weights; on CPU, with the
// same thread count, its weights are bit-identical to an uninterrupted
// run's; on one GPU they are as far as its kernels are deterministic.
package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"imet/internal/engine/dist"
	"imet/internal/engine/nn"
	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
	"imet/internal/training/checkpoint"
	"imet/internal/training/losses"
	"imet/internal/training/schedule"
	"imet/internal/training/trainconfig"
)

// Model is a network whose tensors live in a Store.
type Model interface {
	Store() *nn.Store
	Forward(x *torch.Tensor) *torch.Tensor
}

// Options are what a training session needs besides the recipe.
type Options struct {
	Config trainconfig.Run
	Fold   int
	RunDir string // checkpoints, config.yaml and outputs go here
	// Resume continues from the newest checkpoint in RunDir whose checksum
	// verifies (checkpoint.Dir.Resumable: newer ones that do not are
	// skipped, named in StartEvent.Skipped); without it, a RunDir that
	// already holds checkpoints is refused.
	Resume bool
	// ResumeFrom, with Resume, names the checkpoint file (in RunDir's
	// checkpoints/) to continue from instead of the newest.
	ResumeFrom string
	// TimeBudget stops the session cleanly (checkpoint, then return with
	// Result.Completed false) before this much wall time has passed; 0:
	// no limit.
	TimeBudget time.Duration
	// ResumeHint is the command line that continues the run, shown when
	// the budget stops it.
	ResumeHint string
	Observer   Observer
	Model      Model
	Train, Val Source
	// Test, when set, is predicted at the end with every TTA view.
	Test Source
	// ValTruth holds each validation row's positive columns (for F2).
	ValTruth [][]int
	// Outputs writes OOF and test probabilities at the end; nil: none.
	// In a data-parallel run only rank 0 calls it.
	Outputs func(oof, test []float32, cols int) ([]string, error)
	// Group, when set, makes the session one rank of a data-parallel run
	// (see distributed.go): every rank runs Run with the same recipe and
	// data; rank 0 alone reads and writes RunDir and reports to Observer.
	Group *dist.Group
}

// Result summarises a session.
type Result struct {
	Completed bool
	// Stopped says why a session ended early: "budget", or "signal" for a
	// cancelled context (a signal through SignalContext, or the caller's).
	Stopped string
	Signal  string // the signal's name ("SIGTERM") when one stopped it
	// Resume is the command that continues a stopped run (ResumeHint).
	Resume string
	// GlobalStep is where the run stands: the step of the checkpoint a
	// resume continues from, when stopped.
	GlobalStep int64
	BestF2     float64
	Outputs    []string
}

// StopReason words why the session stopped early, as logs, the registry
// and notifications say it: "time-budget", the signal ("SIGTERM",
// "SIGINT"), or "cancelled" for a context cancelled without a signal; ""
// for a completed session.
func (r Result) StopReason() string { return stopReason(r.Stopped, r.Signal) }

// CheckEngine checks a run's engine settings and that this process can
// use its device, and returns the device: the first thing a session does,
// so that asking a CPU-only libtorch for CUDA fails in one line before any
// data or weights are loaded.
func CheckEngine(e *trainconfig.Engine) (torch.Device, error) {
	if err := e.Validate(); err != nil {
		return torch.CPU, err
	}
	dev, err := torch.ParseDevice(e.Device)
	if err == nil {
		err = torch.CheckDevice(dev)
	}
	if err != nil {
		return torch.CPU, fmt.Errorf("engine.%w", err)
	}
	return dev, nil
}

// trainer is one session's state.
type trainer struct {
	Options
	cfg     *trainconfig.Run
	dev     torch.Device
	store   *nn.Store
	scaler  *optim.GradScaler // fp16 loss scaling; nil otherwise
	dir     checkpoint.Dir
	st      checkpoint.State
	opt     *optimizer
	sched   *schedule.Schedule
	loss    losses.Loss
	ema     map[string]*torch.Tensor
	mining  []float32 // per-sample loss in the current epoch (NaN: not seen)
	prev    []float32 // the previous epoch's, ranked by Hardest
	start   time.Time
	images  int64
	lastDur time.Duration
	groups  []string
	// pendingOptim holds a restored checkpoint's optimizer moments until
	// the stage's optimizer exists to receive them.
	pendingOptim map[string]checkpoint.Tensor
	optStage     int
	elapsed0     float64 // ElapsedS at session start
	// stageBest is the F2 of a validation at the end of a stage's last
	// epoch when it was a new best (NaN otherwise), for the stage-end save.
	stageBest float64
	savedStep int64 // global step of the newest checkpoint on disk; -1: none
	// minePos is, in a data-parallel run, the epoch position at which
	// this rank recorded each sample's loss since the last merge (-1:
	// not since then); nil in one process.
	minePos []float32
	comm    time.Duration // this session's time in step collectives
}

// Run trains (or resumes) one fold. It must be called on the goroutine that
// will run every step; it pins that goroutine to its OS thread.
func Run(ctx context.Context, o Options) (Result, error) { return run(ctx, o, nil) }

// run is Run; setup, when set, adjusts the trainer before it restores a
// checkpoint or starts (tests turn loss scaling on for a CPU run with it).
func run(ctx context.Context, o Options, setup func(*trainer)) (res Result, err error) {
	t := &trainer{Options: o, cfg: &o.Config, store: o.Model.Store(), start: time.Now(), stageBest: math.NaN(), savedStep: -1}
	if t.Observer == nil {
		t.Observer = Observers{}
	}
	defer func() {
		// A bug anywhere in the session (observers included) must end it
		// as a reported failure, not as a crash.
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
		if err != nil {
			t.Observer.OnFail(err)
		}
	}()
	if t.dev, err = CheckEngine(&t.cfg.Engine); err != nil {
		return res, err
	}
	unlock := torch.LockThread(t.cfg.Engine.Threads)
	defer unlock()
	if err := t.place(); err != nil {
		return res, err
	}
	if t.cfg.Engine.Precision == trainconfig.PrecisionFP16 {
		t.scaler = optim.NewGradScaler(optim.GradScalerOptions{})
	}
	t.store.FreezeBatchNorm(t.cfg.Model.FreezeBN)
	if setup != nil {
		setup(t)
	}
	if err := t.checkWorld(); err != nil {
		return res, err
	}
	t.groups = t.store.Groups()
	t.dir = checkpoint.Dir{Path: filepath.Join(o.RunDir, "checkpoints"), Keep: t.cfg.Checkpoint.Keep}
	n := o.Train.Len()
	t.mining = nanSlice(n)
	if t.Group != nil && t.cfg.HardMining.Fraction > 0 {
		t.minePos = make([]float32, n)
		for i := range t.minePos {
			t.minePos[i] = -1
		}
	}
	info, path, err := t.begin()
	if t.Group != nil {
		info, err = t.syncStart(info, path, err)
	}
	if err != nil {
		return res, err
	}
	resumed, from, skipped := info.Resumed, info.From, info.Skipped
	t.st.World = t.world()
	t.st.Sessions++
	t.elapsed0 = t.st.ElapsedS
	if t.cfg.EMA.Enabled && t.ema == nil {
		t.initEMA()
	}
	t.Observer.OnStart(StartEvent{RunDir: o.RunDir, Fold: o.Fold, Resumed: resumed, ResumedFrom: from, Skipped: skipped, GlobalStep: t.st.GlobalStep,
		Stages: len(t.cfg.Stages), TrainRows: n, ValRows: o.Val.Len(), Device: t.dev.String(), Precision: t.cfg.Engine.Precision,
		Threads: torch.NumThreads(), World: t.world(), WorldWas: info.WorldWas})

	stopped, err := t.loop(ctx)
	// A signal during a validation or the final predictions cuts them
	// short: that is a stop, not a failure. The position is then just
	// before work that did not happen, so the newest checkpoint, not the
	// position, is where the run resumes, redoing the steps since it.
	cut := err != nil && (ctx.Err() != nil && errors.Is(err, ctx.Err()) || errors.Is(err, errPeerStopped))
	if cut {
		stopped, err = "signal", nil
	}
	if err != nil {
		return res, err
	}
	res = Result{GlobalStep: t.st.GlobalStep, BestF2: t.st.BestF2}
	if stopped == "" && o.Outputs != nil {
		res.Outputs, err = t.predictOutputs(ctx)
		if err != nil && (ctx.Err() != nil && errors.Is(err, ctx.Err()) || errors.Is(err, errPeerStopped)) {
			stopped, cut, err, res.Outputs = "signal", true, nil, nil
		}
		if err != nil {
			return res, err
		}
	}
	if stopped != "" {
		// Without any checkpoint yet, saving the position is the only way
		// to resume at all (it skips a mid-epoch validation that was cut).
		if !cut || t.savedStep < 0 {
			if _, err := t.save(math.NaN(), stopped); err != nil {
				return res, err
			}
		}
		res.Stopped, res.GlobalStep, res.Resume = stopped, t.savedStep, o.ResumeHint
		if stopped == "signal" {
			res.Signal = StopSignal(ctx)
		}
		t.Observer.OnFinish(FinishEvent{Completed: false, Resume: o.ResumeHint, Reason: res.StopReason(), BestF2: t.st.BestF2, GlobalStep: res.GlobalStep})
		return res, nil
	}
	res.Completed = true
	t.Observer.OnFinish(FinishEvent{Completed: true, BestF2: t.st.BestF2, GlobalStep: t.st.GlobalStep, Outputs: res.Outputs})
	return res, nil
}

// begin restores the checkpoint a resume continues from, or initialises
// a fresh run's state; in a data-parallel run only rank 0 calls it (the
// others follow in syncStart). It returns what happened and the file
// restored.
func (t *trainer) begin() (info startInfo, path string, err error) {
	o := &t.Options
	fp := t.cfg.Fingerprint()
	t.st = checkpoint.State{Fingerprint: fp, ConfigHash: trainconfig.Hash(fp), Fold: o.Fold, BestF2: -1, LastF2: -1}
	if !t.lead() {
		return info, "", nil
	}
	if err := os.MkdirAll(o.RunDir, 0o755); err != nil {
		return info, "", err
	}
	switch {
	case !o.Resume && t.dir.HasCheckpoints():
		return info, "", fmt.Errorf("%s already holds checkpoints (%s): resume it with --resume, or choose another run directory", o.RunDir, t.dir.Path)
	case o.Resume:
		c, path, skip, err := t.dir.Resumable(o.ResumeFrom)
		if err != nil {
			return info, "", err
		}
		if c == nil {
			return info, "", fmt.Errorf("--resume %s: no checkpoint there to resume from", o.RunDir)
		}
		if err := t.restore(c, path); err != nil {
			return info, "", err
		}
		info.Resumed, info.From = true, path
		if w := max(c.State.World, 1); w != t.world() {
			info.WorldWas = w
		}
		for _, s := range skip {
			info.Skipped = append(info.Skipped, s.String())
		}
		return info, path, nil
	}
	return info, "", nil
}

// place moves the model to the session's device, once, its weights
// loaded, and lays its weights out channels-last when asked. cuDNN's
// autotuner is a process-wide switch, set here for the session.
func (t *trainer) place() error {
	torch.SetCudnnBenchmark(t.cfg.Engine.CudnnBenchmark)
	if err := t.store.To(t.dev); err != nil {
		return fmt.Errorf("model to %v: %w", t.dev, err)
	}
	if t.cfg.Engine.ChannelsLast {
		if err := t.store.ChannelsLast(); err != nil {
			return fmt.Errorf("model channels-last: %w", err)
		}
	}
	return nil
}

func nanSlice(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

// stageLength resolves a stage's optimizer steps per epoch and in total.
func (t *trainer) stageLength(s *trainconfig.Stage) (batchesPerEpoch, stepsPerEpoch, total int) {
	n := t.Train.Len()
	stepsPerEpoch = n / (s.BatchSize * s.Accumulate)
	if stepsPerEpoch < 1 {
		stepsPerEpoch = 1
	}
	batchesPerEpoch = stepsPerEpoch * s.Accumulate
	if s.Steps > 0 {
		return batchesPerEpoch, stepsPerEpoch, s.Steps
	}
	return batchesPerEpoch, stepsPerEpoch, s.Epochs * stepsPerEpoch
}

// enterStage freezes groups, builds the optimizer, schedule and loss.
func (t *trainer) enterStage(i int) error {
	s := &t.cfg.Stages[i]
	for _, g := range t.groups {
		if err := t.store.Freeze(g, contains(s.Frozen, g)); err != nil {
			return err
		}
	}
	rates, err := s.GroupRates(t.groups)
	if err != nil {
		return err
	}
	if t.opt, err = newOptimizer(s.Optimizer, t.store, rates); err != nil {
		return fmt.Errorf("stage %s: %w", s.Name, err)
	}
	_, spe, total := t.stageLength(s)
	if t.sched, err = schedule.New(s.Schedule, total, spe); err != nil {
		return fmt.Errorf("stage %s: %w", s.Name, err)
	}
	t.loss, err = losses.New(s.Loss)
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loop runs stages from the state's position. It returns a non-empty
// reason ("budget", "signal") when it stopped early.
func (t *trainer) loop(ctx context.Context) (string, error) {
	entered := -1
	for t.st.Stage < len(t.cfg.Stages) {
		si := t.st.Stage
		s := &t.cfg.Stages[si]
		if entered != si {
			if err := t.enterStage(si); err != nil {
				return "", err
			}
			if t.pendingOptim != nil {
				if err := t.opt.load(t.pendingOptim); err != nil {
					return "", fmt.Errorf("resume: %w", err)
				}
				t.pendingOptim = nil
			}
			entered = si
			t.optStage = si
		}
		bpe, _, total := t.stageLength(s)
		for t.st.StageStep < total {
			key := EpochKey{Seed: t.cfg.Seed, Stage: si, Epoch: t.st.Epoch, Global: t.globalEpoch()}
			order := EpochOrder(t.cfg.Seed, si, t.st.Epoch, t.Train.Len(), Hardest(t.prev, t.cfg.HardMining.Fraction))
			order = order[:t.Train.Len()]
			if w := t.world(); w > 1 {
				key.Offset, key.Stride = t.rank(), w
				order = ShardOrder(order, t.rank(), w)
			}
			mix := MixConfig{MixupAlpha: s.Mixup.Alpha, MixupProb: s.Mixup.Prob, CutMixAlpha: s.CutMix.Alpha, CutMixProb: s.CutMix.Prob}
			stop, err := t.epoch(ctx, s, key, order, bpe, total, mix)
			if err != nil || stop != "" {
				return stop, err
			}
		}
		// Stage complete: the checkpoint already points at the next stage,
		// whose optimizer starts fresh.
		t.st.Stage++
		t.st.StageStep, t.st.Epoch, t.st.Batch = 0, 0, 0
		t.st.Schedule = schedule.State{}
		f2 := t.stageBest
		t.stageBest = math.NaN()
		if _, err := t.save(f2, "stage"); err != nil {
			return "", err
		}
	}
	t.st.Done = true
	return "", nil
}

// globalEpoch counts epochs over all stages, so each has its own
// augmentation stream.
func (t *trainer) globalEpoch() int {
	g := 0
	for i := 0; i < t.st.Stage; i++ {
		s := &t.cfg.Stages[i]
		_, spe, total := t.stageLength(s)
		g += (total + spe - 1) / spe
	}
	return g + t.st.Epoch
}

// epoch runs the rest of the current epoch, validating at its end.
func (t *trainer) epoch(ctx context.Context, s *trainconfig.Stage, key EpochKey, order []int, bpe, total int, mix MixConfig) (string, error) {
	micro, stepImages := 0, 0
	var stepLoss float64
	local := s.BatchSize / t.world() // this rank's share of each global batch
	// The source never sees cancellation: a session stops only between
	// optimizer steps (shouldStop), where the state is consistent.
	batches := t.Train.Train(context.WithoutCancel(ctx), key, order, local, t.st.Batch, mix)
	var scope *torch.Scope
	defer func() {
		if scope != nil {
			scope.Close()
		}
	}()
	for b, err := range batches {
		if err != nil {
			return "", err
		}
		if b.SkippedBatches > 0 && t.Group != nil {
			// The ranks would no longer meet at the same steps.
			if b.Release != nil {
				b.Release()
			}
			return "", fmt.Errorf("stage %s epoch %d: rank %d: every image of %d batch(es) before batch %d was broken; a data-parallel run cannot skip whole batches: remove the broken images (imet datasets validate --decode lists them)",
				s.Name, t.st.Epoch+1, t.rank(), b.SkippedBatches, t.st.Batch+b.SkippedBatches)
		}
		t.st.Batch += b.SkippedBatches
		if t.st.Batch >= bpe || t.st.StageStep >= total {
			if b.Release != nil {
				b.Release()
			}
			break
		}
		stepStart := time.Now()
		if micro == 0 {
			scope = torch.NewScope()
			torch.ManualSeed(mixSeed(uint64(t.cfg.Seed), uint64(t.st.GlobalStep)))
		}
		var lossVal float64
		err = torch.Catch(func() { lossVal = t.forwardBackward(b, s.Accumulate, key, t.st.Batch*local) })
		if b.Release != nil {
			b.Release()
		}
		if err != nil {
			return "", fmt.Errorf("stage %s step %d: %w", s.Name, t.st.GlobalStep, err)
		}
		stepLoss += lossVal
		stepImages += b.N
		micro++
		t.st.Batch++
		if micro < s.Accumulate {
			continue
		}
		commBefore := t.comm
		stepLoss, stepImages, err = t.reduceStep(stepLoss, stepImages)
		if err != nil {
			scope.Close()
			scope = nil
			return "", fmt.Errorf("stage %s step %d: gradient all-reduce: %w", s.Name, t.st.GlobalStep, err)
		}
		t.images += int64(stepImages)
		t.st.Samples += int64(stepImages)
		factor := t.sched.Factor(t.st.StageStep, &t.st.Schedule)
		var stepErr error
		skipped := false
		err = torch.Catch(func() {
			if skipped, stepErr = t.optimizerStep(s, factor); stepErr != nil {
				return
			}
			t.opt.zeroGrad()
			if stepErr = t.syncBuffers(); stepErr != nil {
				return
			}
			if t.ema != nil {
				t.updateEMA()
			}
		})
		if err == nil {
			err = stepErr
		}
		scope.Close()
		scope = nil
		if err != nil {
			return "", fmt.Errorf("stage %s step %d: %w", s.Name, t.st.GlobalStep, err)
		}
		micro, stepImages = 0, 0
		t.st.StageStep++
		t.st.GlobalStep++
		// A step the loss scaler skipped has an inf/NaN loss and changed
		// nothing: it is left out of the epoch's mean (and the checkpoint).
		if l := stepLoss / float64(s.Accumulate); !math.IsNaN(l) && !math.IsInf(l, 0) {
			t.st.EpochLossSum += l
			t.st.EpochLossSteps++
		}
		t.lastDur = time.Since(stepStart) * time.Duration(s.Accumulate)
		el := time.Since(t.start)
		ev := StepEvent{Stage: t.st.Stage, Epoch: t.st.Epoch, StageName: s.Name, Batch: t.st.Batch, Batches: bpe,
			GlobalStep: t.st.GlobalStep, Loss: stepLoss / float64(s.Accumulate), LR: factor * s.LR[len(s.LR)-1],
			ImagesPerSec: float64(t.images) / el.Seconds(), Elapsed: el, Skipped: skipped, World: t.world(),
			StepTime: t.lastDur, Comm: t.comm - commBefore}
		if t.scaler != nil {
			ev.LossScale = t.scaler.Scale()
		}
		t.Observer.OnStep(ev)
		stepLoss = 0
		endOfEpoch := t.st.Batch >= bpe || t.st.StageStep >= total
		if endOfEpoch {
			break
		}
		f2 := math.NaN()
		if v := t.cfg.Validation.EverySteps; v > 0 && t.st.GlobalStep%int64(v) == 0 {
			var best bool
			if f2, best, err = t.validate(ctx, s, t.st.EpochLossSum/float64(t.st.EpochLossSteps)); err != nil {
				return "", err
			}
			if !best {
				f2 = math.NaN()
			}
		}
		if c := t.cfg.Checkpoint.EverySteps; !math.IsNaN(f2) || (c > 0 && t.st.GlobalStep%int64(c) == 0) {
			if _, err := t.save(f2, "every"); err != nil {
				return "", err
			}
		}
		if reason := t.shouldStop(ctx); reason != "" {
			return reason, nil
		}
	}
	if t.st.Batch < bpe && t.st.StageStep < total {
		return "", fmt.Errorf("stage %s epoch %d: the data ended after %d of %d batches", s.Name, t.st.Epoch+1, t.st.Batch, bpe)
	}
	// Epoch complete: validate, roll the mining losses, move on.
	lastEpoch := t.st.StageStep >= total
	every := t.cfg.Validation.EveryEpochs
	trainLoss := math.NaN()
	if t.st.EpochLossSteps > 0 {
		trainLoss = t.st.EpochLossSum / float64(t.st.EpochLossSteps)
	}
	f2, best := math.NaN(), false
	if lastEpoch || (every > 0 && (t.st.Epoch+1)%every == 0) {
		var err error
		if f2, best, err = t.validate(ctx, s, trainLoss); err != nil {
			return "", err
		}
	}
	if lastEpoch && best {
		t.stageBest = f2
	}
	if err := t.mergeMining(); err != nil {
		return "", err
	}
	t.prev, t.mining = t.mining, nanSlice(t.Train.Len())
	t.st.Epoch++
	t.st.Batch = 0
	t.st.EpochLossSum, t.st.EpochLossSteps = 0, 0
	if !lastEpoch {
		// A new best is saved now, once the position is past the epoch,
		// so that resuming from it does not validate the epoch twice.
		c := t.cfg.Checkpoint.EverySteps
		if best || (c > 0 && t.st.GlobalStep%int64(c) == 0) {
			if !best {
				f2 = math.NaN()
			}
			if _, err := t.save(f2, "every"); err != nil {
				return "", err
			}
		}
		if reason := t.shouldStop(ctx); reason != "" {
			return reason, nil
		}
	}
	return "", nil
}

// shouldStop says whether the session stops here; in a data-parallel run
// every rank calls it at the same points and they agree (agreeStop).
func (t *trainer) shouldStop(ctx context.Context) string {
	reason := ""
	switch {
	case ctx.Err() != nil:
		reason = "signal"
	case t.TimeBudget > 0 && time.Since(t.start)+t.lastDur >= t.TimeBudget:
		reason = "budget"
	}
	return t.agreeStop(reason)
}

// forwardBackward runs one micro-batch and returns its loss. first is the
// index of the batch's first row in the order the source was given (key
// places it in the epoch), for the positions of hard-mining records.
func (t *trainer) forwardBackward(b *Batch, accumulate int, key EpochKey, first int) float64 {
	t.store.Train(true)
	var idx []int
	if t.cfg.HardMining.Fraction > 0 {
		idx = append(idx, b.Indices...) // the source may reuse b once released
	}
	x, y := upload(b, t.dev, t.cfg.Engine.ChannelsLast, true)
	var logits, loss *torch.Tensor
	autocast(t.cfg.Engine.Precision, t.dev, func() {
		logits = t.Model.Forward(x)
		loss = t.loss.Forward(logits, y)
	})
	if t.cfg.Engine.Precision != trainconfig.PrecisionFP32 {
		logits = logits.To(torch.Float32)
		loss = loss.To(torch.Float32)
	}
	v := loss.Item()
	if accumulate > 1 {
		loss = loss.DivScalar(float64(accumulate))
	}
	if t.scaler != nil {
		loss = t.scaler.ScaleLoss(loss)
	}
	loss.Backward()
	if idx != nil {
		for i, l := range losses.PerSample(logits, y) {
			t.mining[idx[i]] = l
			if t.minePos != nil {
				t.minePos[idx[i]] = float32(key.Position(first + i))
			}
		}
	}
	return v
}

// optimizerStep applies the accumulated gradients. With loss scaling they
// are unscaled first, and the update is skipped (and the scale backs off)
// when one holds an inf or NaN; clipping then acts on the true gradients,
// as PyTorch's AMP recipe has it. It reports a skipped update.
func (t *trainer) optimizerStep(s *trainconfig.Stage, factor float64) (skipped bool, err error) {
	sc := t.scaler
	if sc != nil {
		if err := sc.Unscale(t.opt.opt); err != nil {
			return false, err
		}
	}
	if c := s.Optimizer.ClipGradNorm; c > 0 && (sc == nil || !sc.FoundInf()) {
		if _, err := optim.ClipGradNorm(t.opt.opt, c); err != nil {
			return false, err
		}
	}
	t.opt.setRates(factor)
	if sc == nil {
		return false, t.opt.opt.Step()
	}
	stepped, err := sc.Step(t.opt.opt)
	if err != nil {
		return false, err
	}
	return !stepped, sc.Update()
}

// mixSeed derives a 64-bit seed from two values (SplitMix64 finaliser).
func mixSeed(a, b uint64) uint64 {
	x := a*0x9e3779b97f4a7c15 ^ (b + 0x632be59bd9b4e019)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x & (1<<63 - 1)
}
