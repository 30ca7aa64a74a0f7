package train

import (
	"context"
	"fmt"
	"strings"
	"time"

	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
	"imet/internal/postprocess/fbeta"
	"imet/internal/training/checkpoint"
	"imet/internal/training/trainconfig"
)

// save writes a checkpoint of the current position; f2 marks it as a
// validation result (NaN: none) so the directory can keep the best.
func (t *trainer) save(f2 float64, reason string) (string, error) {
	// Every rank comes here at the same points; rank 0 alone writes, with
	// the hard-mining losses of all of them.
	if err := t.mergeMining(); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if !t.lead() {
		t.savedStep = t.st.GlobalStep
		return "", nil
	}
	t.st.ElapsedS = t.elapsed0 + time.Since(t.start).Seconds()
	if t.scaler != nil {
		st := t.scaler.State()
		t.st.LossScale = &checkpoint.LossScale{Scale: st.Scale, GrowthTracker: st.GrowthTracker}
	}
	// Bytes copies each tensor to the host: a checkpoint never depends on
	// the device that wrote it.
	c := &checkpoint.Checkpoint{State: t.st, Tensors: map[string]checkpoint.Tensor{}}
	err := torch.Catch(func() {
		for _, v := range t.store.Vars() {
			c.Tensors["model/"+v.Name] = toCkpt(v.T)
		}
		for n, e := range t.ema {
			c.Tensors["ema/"+n] = toCkpt(e)
		}
		// At a stage boundary the position already names the next stage,
		// whose optimizer starts fresh: the old moments are not kept.
		if t.opt != nil && t.optStage == t.st.Stage {
			t.opt.export(c.Tensors)
		}
	})
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if t.cfg.HardMining.Fraction > 0 {
		c.Tensors["mining/current"] = checkpoint.Float32([]int64{int64(len(t.mining))}, t.mining)
		if t.prev != nil {
			c.Tensors["mining/previous"] = checkpoint.Float32([]int64{int64(len(t.prev))}, t.prev)
		}
	}
	path, err := t.dir.Save(c, f2)
	if err != nil {
		return "", err
	}
	t.savedStep = t.st.GlobalStep
	t.Observer.OnCheckpoint(CheckpointEvent{Path: path, GlobalStep: t.st.GlobalStep, Reason: reason})
	return path, nil
}

// restore loads a checkpoint after checking it belongs to this recipe.
func (t *trainer) restore(c *checkpoint.Checkpoint, path string) (err error) {
	if err := checkpoint.Compatible(path, &c.State, t.cfg.Fingerprint(), trainconfig.Diff); err != nil {
		return err
	}
	if c.State.Fold != t.Fold {
		return fmt.Errorf("%s is a checkpoint of fold %d, not fold %d", path, c.State.Fold, t.Fold)
	}
	if err := t.loadModel(c, "model/"); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if t.cfg.EMA.Enabled {
		t.initEMA()
		for n, e := range t.ema {
			ct, ok := c.Tensors["ema/"+n]
			if !ok {
				return fmt.Errorf("%s: no EMA weights for %s", path, n)
			}
			if err := fromCkpt(e, ct); err != nil {
				return fmt.Errorf("%s: ema/%s: %w", path, n, err)
			}
		}
	}
	for n, ct := range c.Tensors {
		if strings.HasPrefix(n, "optim/") {
			if t.pendingOptim == nil {
				t.pendingOptim = map[string]checkpoint.Tensor{}
			}
			t.pendingOptim[n] = ct
		}
	}
	if t.pendingOptim == nil && c.State.StageStep > 0 {
		return fmt.Errorf("%s: no optimizer state, but stage %d is %d steps in", path, c.State.Stage, c.State.StageStep)
	}
	if ct, ok := c.Tensors["mining/current"]; ok {
		if t.mining, err = ct.Floats32(); err != nil {
			return err
		}
	}
	if ct, ok := c.Tensors["mining/previous"]; ok {
		if t.prev, err = ct.Floats32(); err != nil {
			return err
		}
	}
	if len(t.mining) != t.Train.Len() {
		return fmt.Errorf("%s: hard-mining state for %d samples, but the fold has %d", path, len(t.mining), t.Train.Len())
	}
	if t.scaler != nil {
		ls := c.State.LossScale
		if ls == nil {
			return fmt.Errorf("%s: no loss-scale state for a run with loss scaling", path)
		}
		if err := t.scaler.LoadState(optim.GradScalerState{Scale: ls.Scale, GrowthTracker: ls.GrowthTracker}); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	t.st = c.State
	t.savedStep = c.State.GlobalStep
	return nil
}

// loadModel copies prefix+name tensors of c into the model, wherever its
// tensors live.
func (t *trainer) loadModel(c *checkpoint.Checkpoint, prefix string) error {
	for _, v := range t.store.Vars() {
		ct, ok := c.Tensors[prefix+v.Name]
		if !ok {
			return fmt.Errorf("no tensor %s%s", prefix, v.Name)
		}
		if err := fromCkpt(v.T, ct); err != nil {
			return fmt.Errorf("%s%s: %w", prefix, v.Name, err)
		}
	}
	return nil
}

func isFloat(d torch.DType) bool {
	return d == torch.Float32 || d == torch.Float64 || d == torch.BFloat16 || d == torch.Float16
}

// initEMA starts the average at the current weights. Integer buffers
// (BatchNorm's batch counter) are tracked too, by copying.
func (t *trainer) initEMA() {
	t.ema = map[string]*torch.Tensor{}
	torch.NoGrad(func() {
		for _, v := range t.store.Vars() {
			t.ema[v.Name] = torch.Keep(v.T.Detach().Clone())
		}
	})
}

// updateEMA moves the average toward the weights: e = d*e + (1-d)*w, as
// timm's ModelEmaV2 does, buffers included.
func (t *trainer) updateEMA() {
	d := t.cfg.EMA.Decay
	torch.NoGrad(func() {
		for _, v := range t.store.Vars() {
			e := t.ema[v.Name]
			if isFloat(v.T.DType()) {
				e.CopyFrom(e.MulScalar(d).Add(v.T.MulScalar(1 - d)))
			} else {
				e.CopyFrom(v.T)
			}
		}
	})
}

// withEMA runs f with the EMA weights in the model (when enabled), then
// puts the trained weights back.
func (t *trainer) withEMA(f func() error) error {
	if t.ema == nil {
		return f()
	}
	backup := map[string]*torch.Tensor{}
	err := torch.Catch(func() {
		torch.NoGrad(func() {
			for _, v := range t.store.Vars() {
				backup[v.Name] = torch.Keep(v.T.Detach().Clone())
				v.T.CopyFrom(t.ema[v.Name])
			}
		})
	})
	defer func() {
		torch.NoGrad(func() {
			for _, v := range t.store.Vars() {
				if b := backup[v.Name]; b != nil {
					v.T.CopyFrom(b)
					b.Free()
				}
			}
		})
	}()
	if err != nil {
		return err
	}
	return f()
}

// predict returns sigmoid probabilities of every sample of src, averaged
// over views TTA views (at least 1), and the mean BCE against its targets.
func (t *trainer) predict(ctx context.Context, src Source, views int) ([]float32, float64, error) {
	t.store.Train(false)
	defer t.store.Train(true)
	return Predict(ctx, t.Model, src, PredictOptions{Views: views, BatchSize: t.cfg.Validation.BatchSize, Device: t.dev,
		Precision: t.cfg.Engine.Precision, ChannelsLast: t.cfg.Engine.ChannelsLast})
}

// validate scores the validation split (view 0 only, for speed), feeds the
// plateau schedule and reports whether this is the best F2 so far.
func (t *trainer) validate(ctx context.Context, s *trainconfig.Stage, trainLoss float64) (f2 float64, best bool, err error) {
	var probs []float32
	var valLoss float64
	err = t.withEMA(func() error {
		var err error
		probs, valLoss, err = t.predictAll(ctx, t.Val, 1)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("validation: %w", err)
	}
	th, f2 := BestGlobalThreshold(probs, t.Val.Classes(), t.ValTruth, fbeta.Default())
	t.sched.Observe(&t.st.Schedule, f2)
	best = f2 > t.st.BestF2
	if best {
		t.st.BestF2 = f2
	}
	t.st.LastF2, t.st.Threshold = f2, th
	t.Observer.OnEpoch(EpochEvent{Stage: t.st.Stage, Epoch: t.st.Epoch, StageName: s.Name, GlobalStep: t.st.GlobalStep,
		TrainLoss: trainLoss, ValLoss: valLoss, F2: f2, Threshold: th, Best: best})
	return f2, best, nil
}

// predictOutputs loads the best checkpoint's weights (EMA ones when kept)
// and predicts the validation and test splits with every TTA view. In a
// data-parallel run rank 0 reads the checkpoint and sends its weights,
// all ranks predict their parts, and rank 0 writes the outputs.
func (t *trainer) predictOutputs(ctx context.Context) ([]string, error) {
	best := false
	var err error
	if t.lead() {
		best, err = t.loadBest()
	}
	if t.Group != nil {
		if err = t.agree(err); err == nil && t.Group.Max(boolInt(best)) == 1 {
			best = true
			err = torch.Catch(func() { t.Group.BroadcastTensors(t.storeTensors()) })
			err = t.agree(err)
		}
	}
	if err != nil {
		return nil, err
	}
	run := t.withEMA
	if best {
		run = func(f func() error) error { return f() } // already the weights to use
	}
	var oof, test []float32
	err = run(func() error {
		var err error
		if oof, _, err = t.predictAll(ctx, t.Val, t.Val.Views()); err != nil {
			return fmt.Errorf("out-of-fold prediction: %w", err)
		}
		if t.Test != nil {
			if test, _, err = t.predictAll(ctx, t.Test, t.Test.Views()); err != nil {
				return fmt.Errorf("test prediction: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !t.lead() {
		return nil, nil
	}
	return t.Outputs(oof, test, t.Val.Classes())
}

// loadBest puts the best checkpoint's weights (its EMA weights when the
// run keeps them) into the model, and reports whether there was one.
func (t *trainer) loadBest() (bool, error) {
	ix, err := t.dir.ReadIndex()
	if err != nil {
		return false, err
	}
	if ix.Best == "" {
		return false, nil
	}
	c, err := checkpoint.Read(t.dir.Path + "/" + ix.Best)
	if err != nil {
		return false, err
	}
	prefix := "model/"
	if t.ema != nil {
		prefix = "ema/"
	}
	if err := t.loadModel(c, prefix); err != nil {
		return false, fmt.Errorf("best checkpoint %s: %w", ix.Best, err)
	}
	return true, nil
}

// storeTensors is every weight and buffer of the model, in order.
func (t *trainer) storeTensors() []*torch.Tensor {
	vars := t.store.Vars()
	ts := make([]*torch.Tensor, len(vars))
	for i, v := range vars {
		ts[i] = v.T
	}
	return ts
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
