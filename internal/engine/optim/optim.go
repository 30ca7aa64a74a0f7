// Package optim updates parameters from their gradients with PyTorch's own
// optimiser semantics: AdamW and SGD with momentum as torch.optim 1.13
// defines them (decoupled weight decay for AdamW, L2 added to the gradient
// for SGD), with parameter groups that each carry a learning rate and a
// weight decay, and state exportable as named tensors for checkpoints.
package optim

import (
	"fmt"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
)

// Group is a set of parameters sharing hyper-parameters, like one entry of
// a torch.optim param_groups list. A scheduler changes LR between steps.
type Group struct {
	// Name identifies the group (a layer group: "stem", "head", ...).
	Name string
	// Params are the parameters; state is keyed by their names.
	Params []*nn.Var
	// LR is the learning rate.
	LR float64
	// WeightDecay is the decay coefficient.
	WeightDecay float64
}

// Optimizer is what a training loop drives.
type Optimizer interface {
	// Step updates every parameter that has a gradient. Call it outside
	// autograd (it disables grad itself) and after Backward.
	Step() error
	// ZeroGrad drops every parameter's gradient.
	ZeroGrad()
	// Groups are the parameter groups, for schedulers to set LR.
	Groups() []*Group
	// State exports the optimiser state as named tensors (copies):
	// "<param>.<buffer>" plus "<param>.step".
	State() map[string]*torch.Tensor
	// LoadState restores what State exported; missing entries mean "not
	// stepped yet", mis-shaped ones are an error.
	LoadState(m map[string]*torch.Tensor) error
}

// AdamWOptions are torch.optim.AdamW's hyper-parameters besides lr and
// weight decay (which live on each Group). Zero values take PyTorch's
// defaults: betas (0.9, 0.999), eps 1e-8.
type AdamWOptions struct {
	Beta1, Beta2, Eps float64
}

type adamState struct {
	m, v *torch.Tensor
	step int
}

// AdamW is torch.optim.AdamW (amsgrad off).
type AdamW struct {
	groups []*Group
	o      AdamWOptions
	state  map[*nn.Var]*adamState
}

// NewAdamW creates an AdamW over the groups.
func NewAdamW(groups []*Group, o AdamWOptions) *AdamW {
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	return &AdamW{groups: groups, o: o, state: map[*nn.Var]*adamState{}}
}

// Groups returns the parameter groups.
func (a *AdamW) Groups() []*Group { return a.groups }

// ZeroGrad drops all gradients.
func (a *AdamW) ZeroGrad() { zeroGrad(a.groups) }

// Step applies one update.
func (a *AdamW) Step() error {
	return torch.Catch(func() {
		torch.NoGrad(func() {
			for _, g := range a.groups {
				for _, p := range g.Params {
					gr := p.T.Grad()
					if gr == nil {
						continue
					}
					st := a.state[p]
					if st == nil {
						st = &adamState{m: zerosLike(p.T), v: zerosLike(p.T)}
						a.state[p] = st
					}
					st.step++
					torch.AdamWStep(p.T, gr, st.m, st.v, g.LR, a.o.Beta1, a.o.Beta2, a.o.Eps, g.WeightDecay, st.step)
					gr.Free()
				}
			}
		})
	})
}

// State exports exp_avg, exp_avg_sq and step per parameter.
func (a *AdamW) State() map[string]*torch.Tensor {
	o := map[string]*torch.Tensor{}
	for p, st := range a.state {
		o[p.Name+".exp_avg"] = detachedCopy(st.m)
		o[p.Name+".exp_avg_sq"] = detachedCopy(st.v)
		o[p.Name+".step"] = torch.Keep(torch.FromFloat32([]float32{float32(st.step)}))
	}
	return o
}

// LoadState restores State's output.
func (a *AdamW) LoadState(m map[string]*torch.Tensor) error {
	return torch.Catch(func() {
		for _, g := range a.groups {
			for _, p := range g.Params {
				ea, eas, step := m[p.Name+".exp_avg"], m[p.Name+".exp_avg_sq"], m[p.Name+".step"]
				if ea == nil && eas == nil && step == nil {
					delete(a.state, p)
					continue
				}
				if ea == nil || eas == nil || step == nil {
					panic(&torch.Error{Op: "optim.load_state", Msg: "incomplete AdamW state for " + p.Name})
				}
				st := &adamState{m: loadLike(p, "exp_avg", ea), v: loadLike(p, "exp_avg_sq", eas), step: int(step.Item())}
				a.state[p] = st
			}
		}
	})
}

// SGDOptions are torch.optim.SGD's hyper-parameters besides lr and weight
// decay.
type SGDOptions struct {
	Momentum, Dampening float64
	Nesterov            bool
}

// SGD is torch.optim.SGD.
type SGD struct {
	groups []*Group
	o      SGDOptions
	buf    map[*nn.Var]*torch.Tensor
}

// NewSGD creates an SGD over the groups.
func NewSGD(groups []*Group, o SGDOptions) *SGD {
	return &SGD{groups: groups, o: o, buf: map[*nn.Var]*torch.Tensor{}}
}

// Groups returns the parameter groups.
func (s *SGD) Groups() []*Group { return s.groups }

// ZeroGrad drops all gradients.
func (s *SGD) ZeroGrad() { zeroGrad(s.groups) }

// Step applies one update.
func (s *SGD) Step() error {
	return torch.Catch(func() {
		torch.NoGrad(func() {
			for _, g := range s.groups {
				for _, p := range g.Params {
					gr := p.T.Grad()
					if gr == nil {
						continue
					}
					var buf *torch.Tensor
					first := false
					if s.o.Momentum != 0 {
						buf = s.buf[p]
						if buf == nil {
							buf = zerosLike(p.T)
							s.buf[p] = buf
							first = true
						}
					}
					torch.SGDStep(p.T, gr, buf, g.LR, s.o.Momentum, s.o.Dampening, g.WeightDecay, s.o.Nesterov, first)
					gr.Free()
				}
			}
		})
	})
}

// State exports momentum_buffer per parameter.
func (s *SGD) State() map[string]*torch.Tensor {
	o := map[string]*torch.Tensor{}
	for p, b := range s.buf {
		o[p.Name+".momentum_buffer"] = detachedCopy(b)
	}
	return o
}

// LoadState restores State's output.
func (s *SGD) LoadState(m map[string]*torch.Tensor) error {
	return torch.Catch(func() {
		for _, g := range s.groups {
			for _, p := range g.Params {
				if b := m[p.Name+".momentum_buffer"]; b != nil {
					s.buf[p] = loadLike(p, "momentum_buffer", b)
				} else {
					delete(s.buf, p)
				}
			}
		}
	})
}

func zeroGrad(groups []*Group) {
	for _, g := range groups {
		for _, p := range g.Params {
			p.T.ZeroGrad()
		}
	}
}

func zerosLike(t *torch.Tensor) *torch.Tensor {
	return torch.Keep(torch.Zeros(t.DType(), t.Device(), t.Shape()...))
}

func detachedCopy(t *torch.Tensor) *torch.Tensor {
	var o *torch.Tensor
	torch.NoGrad(func() { o = t.Detach().Clone() })
	return torch.Keep(o)
}

func loadLike(p *nn.Var, what string, src *torch.Tensor) *torch.Tensor {
	if a, b := fmt.Sprint(src.Shape()), fmt.Sprint(p.T.Shape()); a != b {
		panic(&torch.Error{Op: "optim.load_state", Msg: p.Name + "." + what + ": shape " + a + ", parameter " + b})
	}
	t := zerosLike(p.T)
	t.CopyFrom(src)
	return t
}

// ByGroup builds one Group per layer group of a store, skipping frozen
// groups, with learning rate lr[group] (or lr["*"] as the default) and
// weight decay wd.
func ByGroup(s *nn.Store, lr map[string]float64, wd float64) ([]*Group, error) {
	var gs []*Group
	for _, name := range s.Groups() {
		if s.Frozen(name) {
			continue
		}
		l, ok := lr[name]
		if !ok {
			l, ok = lr["*"]
		}
		if !ok {
			return nil, fmt.Errorf("optim: no learning rate for layer group %q (give it or \"*\")", name)
		}
		gs = append(gs, &Group{Name: name, Params: s.Group(name), LR: l, WeightDecay: wd})
	}
	for name := range lr {
		if name == "*" {
			continue
		}
		found := false
		for _, g := range s.Groups() {
			found = found || g == name
		}
		if !found {
			return nil, fmt.Errorf("optim: learning rate for unknown layer group %q (have %v)", name, s.Groups())
		}
	}
	return gs, nil
}
