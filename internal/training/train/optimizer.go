package train

import (
	"fmt"
	"strings"

	"imet/internal/engine/nn"
	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
	"imet/internal/training/checkpoint"
	"imet/internal/training/trainconfig"
)

// optimizer is a stage's internal/engine/optim optimizer with the base rate of
// each layer group remembered, so the schedule's factor can be applied
// every step.
type optimizer struct {
	opt  optim.Optimizer
	base map[string]float64
}

func newOptimizer(cfg trainconfig.Optimizer, store *nn.Store, rates map[string]float64) (*optimizer, error) {
	groups, err := optim.ByGroup(store, rates, cfg.WeightDecay)
	if err != nil {
		return nil, err
	}
	o := &optimizer{base: map[string]float64{}}
	for _, g := range groups {
		o.base[g.Name] = g.LR
	}
	if o.opt, err = optim.New(cfg, groups); err != nil {
		return nil, err
	}
	return o, nil
}

// setRates sets every group's rate to base × factor, before a step.
func (o *optimizer) setRates(factor float64) {
	for _, g := range o.opt.Groups() {
		g.LR = o.base[g.Name] * factor
	}
}

func (o *optimizer) zeroGrad() { o.opt.ZeroGrad() }

// export adds the optimizer's state to a checkpoint's tensors as
// "optim/<param>.<buffer>".
func (o *optimizer) export(out map[string]checkpoint.Tensor) {
	for n, t := range o.opt.State() {
		out["optim/"+n] = toCkpt(t)
		t.Free()
	}
}

// load restores state exported by export.
func (o *optimizer) load(in map[string]checkpoint.Tensor) error {
	m := map[string]*torch.Tensor{}
	defer func() {
		for _, t := range m {
			t.Free()
		}
	}()
	err := torch.Catch(func() {
		for n, c := range in {
			shape := make([]int, len(c.Shape))
			for i, d := range c.Shape {
				shape[i] = int(d)
			}
			dt, ok := dtypeByName(c.DType)
			if !ok {
				panic(&torch.Error{Op: "load", Msg: "unknown dtype " + c.DType + " of " + n})
			}
			m[strings.TrimPrefix(n, "optim/")] = torch.FromBytes(c.Data, dt, shape...)
		}
	})
	if err != nil {
		return err
	}
	return o.opt.LoadState(m)
}

func dtypeByName(s string) (torch.DType, bool) {
	for _, d := range []torch.DType{torch.Float32, torch.BFloat16, torch.Int64, torch.Float64, torch.Uint8, torch.Bool, torch.Float16} {
		if d.String() == s {
			return d, true
		}
	}
	return 0, false
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
