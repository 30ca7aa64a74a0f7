package train

import (
	"fmt"
	"strings"

	"imet/internal/checkpoint"
	"imet/internal/nn"
	"imet/internal/torch"
	"imet/internal/trainconfig"
)

// optimizer applies AdamW or SGD to the trainable parameters of a stage,
// each with its layer group's rate, and exports its moments for
// checkpoints. Its state lives outside every scope.
type optimizer struct {
	cfg    trainconfig.Optimizer
	params []*nn.Var
	rates  map[string]float64 // base rate per group
	m, v   map[string]*torch.Tensor
	steps  int
}

func newOptimizer(cfg trainconfig.Optimizer, store *nn.Store, rates map[string]float64) *optimizer {
	o := &optimizer{cfg: cfg, rates: rates, m: map[string]*torch.Tensor{}, v: map[string]*torch.Tensor{}}
	for _, p := range store.Trainable() {
		if _, ok := rates[p.Group]; !ok {
			continue
		}
		o.params = append(o.params, p)
		var z1, z2 *torch.Tensor
		torch.NoGrad(func() {
			z1 = torch.Zeros(p.T.DType(), p.T.Device(), p.T.Shape()...)
			if cfg.Name == "adamw" {
				z2 = torch.Zeros(p.T.DType(), p.T.Device(), p.T.Shape()...)
			}
		})
		o.m[p.Name] = z1
		if z2 != nil {
			o.v[p.Name] = z2
		}
	}
	return o
}

// step updates every parameter with its group's rate times factor.
func (o *optimizer) step(factor float64) {
	o.steps++
	torch.NoGrad(func() {
		for _, p := range o.params {
			g := p.T.Grad()
			if g == nil {
				continue
			}
			lr := o.rates[p.Group] * factor
			if o.cfg.Name == "adamw" {
				torch.AdamWStep(p.T, g, o.m[p.Name], o.v[p.Name], lr, o.cfg.Betas[0], o.cfg.Betas[1], o.cfg.Eps, o.cfg.WeightDecay, o.steps)
			} else {
				torch.SGDStep(p.T, g, o.m[p.Name], lr, o.cfg.Momentum, 0, o.cfg.WeightDecay, o.cfg.Nesterov, o.steps == 1)
			}
		}
	})
}

func (o *optimizer) zeroGrad() {
	for _, p := range o.params {
		p.T.ZeroGrad()
	}
}

func (o *optimizer) free() {
	for _, t := range o.m {
		t.Free()
	}
	for _, t := range o.v {
		t.Free()
	}
}

// export adds the optimizer's state to a checkpoint's tensors.
func (o *optimizer) export(out map[string]checkpoint.Tensor) {
	for n, t := range o.m {
		out["optim/m/"+n] = toCkpt(t)
	}
	for n, t := range o.v {
		out["optim/v/"+n] = toCkpt(t)
	}
}

// load restores moments exported by export; steps comes from the state.
func (o *optimizer) load(in map[string]checkpoint.Tensor, steps int) error {
	o.steps = steps
	for prefix, dst := range map[string]map[string]*torch.Tensor{"optim/m/": o.m, "optim/v/": o.v} {
		for n, t := range dst {
			c, ok := in[prefix+n]
			if !ok {
				return fmt.Errorf("checkpoint has no optimizer state %s%s", prefix, n)
			}
			if err := fromCkpt(t, c); err != nil {
				return fmt.Errorf("%s%s: %w", prefix, n, err)
			}
		}
	}
	for k := range in {
		if strings.HasPrefix(k, "optim/") {
			n := k[len("optim/m/"):]
			if o.m[n] == nil {
				return fmt.Errorf("checkpoint has optimizer state for %s, which this stage does not train", n)
			}
		}
	}
	return nil
}

// toCkpt copies a tensor's bytes out for a checkpoint.
func toCkpt(t *torch.Tensor) checkpoint.Tensor {
	shape := t.Shape()
	s := make([]int64, len(shape))
	for i, d := range shape {
		s[i] = int64(d)
	}
	return checkpoint.Tensor{DType: t.DType().String(), Shape: s, Data: t.Bytes()}
}

// fromCkpt copies a checkpoint tensor into dst in place.
func fromCkpt(dst *torch.Tensor, c checkpoint.Tensor) error {
	if c.DType != dst.DType().String() {
		return fmt.Errorf("dtype %s, want %s", c.DType, dst.DType())
	}
	shape := dst.Shape()
	if len(shape) != len(c.Shape) {
		return fmt.Errorf("shape %v, want %v", c.Shape, shape)
	}
	for i := range shape {
		if int64(shape[i]) != c.Shape[i] {
			return fmt.Errorf("shape %v, want %v", c.Shape, shape)
		}
	}
	return torch.Catch(func() {
		torch.NoGrad(func() {
			src := torch.FromBytes(c.Data, dst.DType(), shape...)
			dst.CopyFrom(src)
			src.Free()
		})
	})
}
