package optim

import (
	"errors"
	"fmt"
	"math"

	"imet/internal/engine/torch"
)

// GradScalerOptions are torch.cuda.amp.GradScaler's arguments. Zero values
// take its defaults: initial scale 65536, growth ×2 after 2000 consecutive
// steps without inf or NaN gradients, backoff ×0.5.
type GradScalerOptions struct {
	InitScale      float64
	GrowthFactor   float64
	BackoffFactor  float64
	GrowthInterval int
}

// GradScalerState is what a checkpoint keeps of a GradScaler, PyTorch's
// state_dict "scale" and "_growth_tracker".
type GradScalerState struct {
	Scale         float64 `json:"scale"`
	GrowthTracker int     `json:"growth_tracker"`
}

// GradScaler is dynamic loss scaling for float16 training with
// torch.cuda.amp.GradScaler's semantics (PyTorch 1.13). Per optimizer
// step:
//
//	ScaleLoss(loss).Backward()     // each micro-batch
//	Unscale(opt)                   // optional: clip the true gradients next
//	Step(opt)                      // skipped when a gradient held inf or NaN
//	Update()                       // halve the scale after a skip, double it after GrowthInterval clean steps
//
// The scale is a float32 held in Go: the optimizer runs from Go, so the
// one host sync per step that GradScaler.step makes to decide on skipping
// is needed here too, and the update is then a few host instructions.
type GradScaler struct {
	o       GradScalerOptions
	scale   float32
	tracker int
	stage   scalerStage
	found   bool
}

type scalerStage int

// The stages of one step, as GradScaler's OptState.
const (
	scalerReady scalerStage = iota
	scalerUnscaled
	scalerStepped
)

// NewGradScaler is a scaler at its initial scale.
func NewGradScaler(o GradScalerOptions) *GradScaler {
	if o.InitScale == 0 {
		o.InitScale = 65536
	}
	if o.GrowthFactor == 0 {
		o.GrowthFactor = 2
	}
	if o.BackoffFactor == 0 {
		o.BackoffFactor = 0.5
	}
	if o.GrowthInterval == 0 {
		o.GrowthInterval = 2000
	}
	return &GradScaler{o: o, scale: float32(o.InitScale)}
}

// Options are the scaler's settings, defaults filled in.
func (s *GradScaler) Options() GradScalerOptions { return s.o }

// Scale is the current loss scale.
func (s *GradScaler) Scale() float64 { return float64(s.scale) }

// ScaleLoss is loss × scale, the tensor to call Backward on.
func (s *GradScaler) ScaleLoss(loss *torch.Tensor) *torch.Tensor {
	return loss.MulScalar(float64(s.scale))
}

// Unscale divides o's gradients by the scale in place and records whether
// any held an inf or NaN. Call it at most once per step, after the last
// backward pass and before clipping; Step calls it when it was not.
func (s *GradScaler) Unscale(o Optimizer) error {
	switch s.stage {
	case scalerUnscaled:
		return errors.New("grad scaler: Unscale called twice since the last Update")
	case scalerStepped:
		return errors.New("grad scaler: Unscale called after Step")
	}
	grads := Grads(o)
	defer freeAll(grads)
	// GradScaler takes the reciprocal in float64 and rounds it to float32.
	inv := float64(float32(1 / float64(s.scale)))
	err := torch.Catch(func() { s.found = torch.AmpUnscale(grads, inv) })
	if err != nil {
		return err
	}
	s.stage = scalerUnscaled
	return nil
}

// Step runs o.Step unless a gradient held an inf or NaN, in which case the
// weights and the optimizer's state stay as they were. It reports whether
// o stepped.
func (s *GradScaler) Step(o Optimizer) (bool, error) {
	if s.stage == scalerStepped {
		return false, errors.New("grad scaler: Step called twice since the last Update")
	}
	if s.stage == scalerReady {
		if err := s.Unscale(o); err != nil {
			return false, err
		}
	}
	s.stage = scalerStepped
	if s.found {
		return false, nil
	}
	return true, o.Step()
}

// FoundInf reports whether this step's gradients held an inf or NaN; valid
// after Unscale or Step.
func (s *GradScaler) FoundInf() bool { return s.found }

// Update ends the step: after an inf or NaN the scale is multiplied by the
// backoff factor and the count of clean steps restarts; otherwise the count
// grows, and on reaching the growth interval the scale is multiplied by the
// growth factor (unless that overflows float32) and the count restarts.
// This is at::_amp_update_scale_'s kernel, float32 rounding included.
func (s *GradScaler) Update() error {
	if s.stage == scalerReady {
		return errors.New("grad scaler: Update without Unscale or Step in this step")
	}
	if s.found {
		s.scale = float32(float64(s.scale) * s.o.BackoffFactor)
		s.tracker = 0
	} else if s.tracker+1 == s.o.GrowthInterval {
		if ns := float32(float64(s.scale) * s.o.GrowthFactor); !math.IsInf(float64(ns), 0) && !math.IsNaN(float64(ns)) {
			s.scale = ns
		}
		s.tracker = 0
	} else {
		s.tracker++
	}
	s.stage, s.found = scalerReady, false
	return nil
}

// State is the scaler's state for a checkpoint; take it after Update.
func (s *GradScaler) State() GradScalerState {
	return GradScalerState{Scale: float64(s.scale), GrowthTracker: s.tracker}
}

// LoadState restores a state taken by State.
func (s *GradScaler) LoadState(st GradScalerState) error {
	if !(st.Scale > 0) || math.IsInf(st.Scale, 0) || float64(float32(st.Scale)) != st.Scale {
		return fmt.Errorf("grad scaler: scale %v is not a positive float32", st.Scale)
	}
	if st.GrowthTracker < 0 || st.GrowthTracker >= s.o.GrowthInterval {
		return fmt.Errorf("grad scaler: growth tracker %d outside [0, %d)", st.GrowthTracker, s.o.GrowthInterval)
	}
	s.scale, s.tracker = float32(st.Scale), st.GrowthTracker
	s.stage, s.found = scalerReady, false
	return nil
}

// Grads is the gradient of every parameter of o that has one, in group
// order: handles sharing the gradients' memory, for the caller to free.
func Grads(o Optimizer) []*torch.Tensor {
	var gs []*torch.Tensor
	for _, g := range o.Groups() {
		for _, p := range g.Params {
			if gr := p.T.Grad(); gr != nil {
				gs = append(gs, gr)
			}
		}
	}
	return gs
}

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ over o's parameters: when
// the 2-norm of all their gradients together exceeds maxNorm, each is
// scaled by maxNorm/(norm+1e-6). It returns the norm before clipping. With
// loss scaling, call it after GradScaler.Unscale.
func ClipGradNorm(o Optimizer, maxNorm float64) (norm float64, err error) {
	grads := Grads(o)
	defer freeAll(grads)
	err = torch.Catch(func() { norm = torch.ClipGradNorm(grads, maxNorm) })
	return norm, err
}

func freeAll(ts []*torch.Tensor) {
	for _, t := range ts {
		t.Free()
	}
}
