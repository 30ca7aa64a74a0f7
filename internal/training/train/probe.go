package train

import (
	"context"
	"errors"
	"fmt"

	"imet/internal/engine/torch"
	"imet/internal/training/trainconfig"
)

// ProbeOptions describe optimizer steps run outside a training session, for
// experiments on a recipe that must leave no trace, such as the
// learning-rate range test (internal/training/lrfind).
type ProbeOptions struct {
	Config trainconfig.Run
	// Stage is the index of the stage whose freezing, optimizer, loss,
	// batch size, accumulation and mixing the steps use; its schedule is
	// replaced by LR.
	Stage int
	Model Model
	Train Source
	// Steps is the most optimizer steps run.
	Steps int
	// LR is step i's rate for the stage's last lr entry (the head's under
	// the default split); every other layer group keeps its ratio to it,
	// as the recipe has them.
	LR func(step int) float64
	// After receives each step's loss (the mean over its micro-batches);
	// returning false ends the probe.
	After func(step int, lr, loss float64) bool
}

// Probe runs up to o.Steps optimizer steps of one stage, at the rates o.LR
// gives, over o.Train epoch after epoch in the order a session uses, with
// the same forward and backward pass, optimizer and loss as Run. It returns
// how many steps it ran. It writes nothing (no run directory, checkpoint
// or output) and reports to no observer; it does change the model's
// weights, so the model should be thrown away after. Like Run, it must be
// called on the goroutine that runs every step. A cancelled ctx stops it
// between steps with ctx's error.
func Probe(ctx context.Context, o ProbeOptions) (steps int, err error) {
	defer recoverPanic(&err)
	if o.Stage < 0 || o.Stage >= len(o.Config.Stages) {
		return 0, fmt.Errorf("stage %d: the recipe has stages 0..%d", o.Stage, len(o.Config.Stages)-1)
	}
	if o.LR == nil || o.After == nil {
		return 0, errors.New("train: Probe needs LR and After")
	}
	if d := o.Config.Engine.Device; d != "" && d != "cpu" {
		return 0, fmt.Errorf("engine.device %q: this trainer keeps tensors on the CPU so far; use cpu", d)
	}
	cfg := o.Config
	// Hard mining resamples from the previous epoch's losses, which a
	// probe of a few hundred steps does not have.
	cfg.HardMining.Fraction = 0
	t := &trainer{Options: Options{Config: cfg, Model: o.Model, Train: o.Train}, store: o.Model.Store()}
	t.cfg = &t.Options.Config
	unlock := torch.LockThread(t.cfg.Engine.Threads)
	defer unlock()
	t.groups = t.store.Groups()
	if err := t.enterStage(o.Stage); err != nil {
		return 0, err
	}
	s := &t.cfg.Stages[o.Stage]
	head := s.LR[len(s.LR)-1]
	if head <= 0 {
		return 0, fmt.Errorf("stage %s: its last learning rate is %g; the probe scales the rates from it", s.Name, head)
	}
	mix := MixConfig{MixupAlpha: s.Mixup.Alpha, MixupProb: s.Mixup.Prob, CutMixAlpha: s.CutMix.Alpha, CutMixProb: s.CutMix.Prob}
	n := o.Train.Len()
	var scope *torch.Scope
	defer func() {
		if scope != nil {
			scope.Close()
		}
	}()
	for epoch := 0; steps < o.Steps; epoch++ {
		key := EpochKey{Seed: cfg.Seed, Stage: o.Stage, Epoch: epoch, Global: epoch}
		order := EpochOrder(cfg.Seed, o.Stage, epoch, n, nil)[:n]
		micro, batches := 0, 0
		var stepLoss float64
		for b, err := range o.Train.Train(context.WithoutCancel(ctx), key, order, s.BatchSize, 0, mix) {
			if err != nil {
				return steps, err
			}
			batches++
			if micro == 0 {
				scope = torch.NewScope()
				torch.ManualSeed(mixSeed(uint64(cfg.Seed), uint64(steps)))
			}
			var v float64
			err = torch.Catch(func() { v = t.forwardBackward(b, s.Accumulate, key, 0) })
			if b.Release != nil {
				b.Release()
			}
			if err != nil {
				return steps, fmt.Errorf("stage %s probe step %d: %w", s.Name, steps, err)
			}
			stepLoss += v
			if micro++; micro < s.Accumulate {
				continue
			}
			lr := o.LR(steps)
			var stepErr error
			err = torch.Catch(func() {
				if _, stepErr = t.optimizerStep(s, lr/head); stepErr == nil {
					t.opt.zeroGrad()
				}
			})
			scope.Close()
			scope = nil
			if err == nil {
				err = stepErr
			}
			if err != nil {
				return steps, fmt.Errorf("stage %s probe step %d: %w", s.Name, steps, err)
			}
			steps++
			more := o.After(steps-1, lr, stepLoss/float64(s.Accumulate))
			micro, stepLoss = 0, 0
			if !more || steps >= o.Steps {
				return steps, nil
			}
			if ctx.Err() != nil {
				return steps, ctx.Err()
			}
		}
		if micro > 0 {
			// An epoch that ends inside an accumulation drops the partial
			// step, as a session does, rather than carrying its gradients.
			if err := torch.Catch(t.opt.zeroGrad); err != nil {
				return steps, err
			}
			scope.Close()
			scope = nil
		}
		if batches == 0 {
			return steps, fmt.Errorf("stage %s: %d training rows do not fill one batch of %d", s.Name, n, s.BatchSize)
		}
	}
	return steps, nil
}
