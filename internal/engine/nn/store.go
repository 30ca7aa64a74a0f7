// Package nn builds neural-network layers on package torch: a Store that
// holds every parameter and buffer under the hierarchical name PyTorch's
// state_dict would give it ("layer1.0.conv1.weight", "bn1.running_mean"),
// a Builder that hands out those names as layers are constructed, and the
// layers convolutional classifiers are made of.
//
// Names matter: they are what pretrained weight files are keyed by, so a
// model built here must name each tensor exactly as the implementation
// whose weights users download.
//
// Every tensor a Store holds lives outside all scopes: create a model before
// opening the scope of a training step.
package nn

import (
	"fmt"
	"sort"

	"imet/internal/engine/torch"
)

// Var is one named tensor of a model: a trainable parameter, or a buffer
// (BatchNorm running statistics) that the optimiser never sees.
type Var struct {
	// Name is the state_dict key.
	Name string
	// T is the tensor. Replace it only through Store methods.
	T *torch.Tensor
	// Group is the layer group (stem, stage1..stage4, head) it belongs to.
	Group string
	// Buffer is true for non-trainable state.
	Buffer bool
}

// Store holds a model's named tensors, its train/eval mode and which layer
// groups are frozen.
type Store struct {
	vars     []*Var
	byName   map[string]*Var
	groups   []string
	training bool
	frozen   map[string]bool
	bnFrozen bool
}

// NewStore is an empty store in training mode.
func NewStore() *Store {
	return &Store{byName: map[string]*Var{}, training: true, frozen: map[string]bool{}}
}

// Root is a Builder at the top of the name hierarchy, in no group.
func (s *Store) Root() *Builder { return &Builder{s: s} }

func (s *Store) add(v *Var) *Var {
	if _, dup := s.byName[v.Name]; dup {
		panic(fmt.Sprintf("nn: %q registered twice", v.Name))
	}
	s.vars = append(s.vars, v)
	s.byName[v.Name] = v
	if v.Group != "" {
		seen := false
		for _, g := range s.groups {
			seen = seen || g == v.Group
		}
		if !seen {
			s.groups = append(s.groups, v.Group)
		}
	}
	return v
}

// Var is the tensor registered under name, or nil.
func (s *Store) Var(name string) *Var { return s.byName[name] }

// Vars is every parameter and buffer in registration order (the order of
// PyTorch's state_dict for the same module tree).
func (s *Store) Vars() []*Var { return append([]*Var(nil), s.vars...) }

// Params is every trainable parameter (frozen ones included) in order.
func (s *Store) Params() []*Var {
	var o []*Var
	for _, v := range s.vars {
		if !v.Buffer {
			o = append(o, v)
		}
	}
	return o
}

// Buffers is every buffer in order.
func (s *Store) Buffers() []*Var {
	var o []*Var
	for _, v := range s.vars {
		if v.Buffer {
			o = append(o, v)
		}
	}
	return o
}

// Trainable is the parameters of groups not frozen.
func (s *Store) Trainable() []*Var {
	var o []*Var
	for _, v := range s.vars {
		if !v.Buffer && !s.frozen[v.Group] {
			o = append(o, v)
		}
	}
	return o
}

// StateDict maps every name to its tensor (shared, not copied).
func (s *Store) StateDict() map[string]*torch.Tensor {
	m := make(map[string]*torch.Tensor, len(s.vars))
	for _, v := range s.vars {
		m[v.Name] = v.T
	}
	return m
}

// Names is every state_dict key, sorted.
func (s *Store) Names() []string {
	o := make([]string, 0, len(s.vars))
	for _, v := range s.vars {
		o = append(o, v.Name)
	}
	sort.Strings(o)
	return o
}

// Groups is the layer groups in the order their first tensor was built.
func (s *Store) Groups() []string { return append([]string(nil), s.groups...) }

// Group is the parameters (not buffers) of one layer group.
func (s *Store) Group(name string) []*Var {
	var o []*Var
	for _, v := range s.vars {
		if !v.Buffer && v.Group == name {
			o = append(o, v)
		}
	}
	return o
}

// Train switches between training (true) and evaluation mode: BatchNorm
// uses batch statistics and Dropout drops only in training mode.
func (s *Store) Train(on bool) { s.training = on }

// Training reports the mode.
func (s *Store) Training() bool { return s.training }

// Freeze stops (or, with false, resumes) training of a layer group: its
// parameters stop requiring gradients and its BatchNorm layers stay in
// evaluation mode, keeping their running statistics, as fine-tuning a
// pretrained backbone wants.
func (s *Store) Freeze(group string, frozen bool) error {
	found := false
	for _, v := range s.vars {
		if v.Group == group {
			found = true
			if !v.Buffer {
				v.T.SetRequiresGrad(!frozen)
			}
		}
	}
	if !found {
		return fmt.Errorf("nn: no layer group %q (have %v)", group, s.groups)
	}
	s.frozen[group] = frozen
	return nil
}

// Frozen reports whether a group is frozen.
func (s *Store) Frozen(group string) bool { return s.frozen[group] }

// FreezeBatchNorm keeps every BatchNorm layer in evaluation mode even while
// training (running statistics fixed, affine weights still learning), or,
// with false, lets them follow the mode again. Fine-tuning with small
// batches wants it; so does a data-parallel run that must compute what one
// process computes, since batch statistics would be each rank's own.
func (s *Store) FreezeBatchNorm(on bool) { s.bnFrozen = on }

// BatchNormFrozen reports FreezeBatchNorm's setting.
func (s *Store) BatchNormFrozen() bool { return s.bnFrozen }

// trainingGroup is whether layers of group behave as in training.
func (s *Store) trainingGroup(group string) bool { return s.training && !s.frozen[group] }

// replace swaps v's tensor for t, keeping requires-grad, and frees the old.
func (s *Store) replace(v *Var, t *torch.Tensor) {
	old := v.T
	v.T = torch.Keep(t)
	if !v.Buffer {
		v.T.SetRequiresGrad(!s.frozen[v.Group])
	}
	if old != t {
		old.Free()
	}
}

// ChannelsLast relays every 4-d parameter out NHWC, which, with inputs in
// the same layout, lets oneDNN run convolutions without reordering.
func (s *Store) ChannelsLast() error {
	return torch.Catch(func() {
		for _, v := range s.vars {
			if v.T.Dim() == 4 {
				var t *torch.Tensor
				torch.NoGrad(func() { t = v.T.Detach().ChannelsLast() })
				s.replace(v, t)
			}
		}
	})
}

// To moves every tensor to dev (floating tensors keep their dtype).
func (s *Store) To(dev torch.Device) error {
	return torch.Catch(func() {
		for _, v := range s.vars {
			if v.T.Device() == dev {
				continue
			}
			var t *torch.Tensor
			torch.NoGrad(func() { t = v.T.Detach().ToDevice(v.T.DType(), dev) })
			s.replace(v, t)
		}
	})
}

// Builder hands out hierarchical names while a model is constructed.
type Builder struct {
	s      *Store
	prefix string
	group  string
}

// Sub is a builder one level down: names get "name." prefixed.
func (b *Builder) Sub(name string) *Builder {
	return &Builder{s: b.s, prefix: b.prefix + name + ".", group: b.group}
}

// SubIndex is Sub with a numeric name, as nn.Sequential children have.
func (b *Builder) SubIndex(i int) *Builder { return b.Sub(fmt.Sprint(i)) }

// InGroup is the same builder putting what it builds in layer group g.
func (b *Builder) InGroup(g string) *Builder { return &Builder{s: b.s, prefix: b.prefix, group: g} }

// Store is the store the builder registers into.
func (b *Builder) Store() *Store { return b.s }

// Name is the full name a tensor called n gets here.
func (b *Builder) Name(n string) string { return b.prefix + n }

// GroupName is the layer group of what is built here.
func (b *Builder) GroupName() string { return b.group }

// Param registers t as trainable parameter n (requires-grad on) and keeps
// it out of any scope.
func (b *Builder) Param(n string, t *torch.Tensor) *Var {
	torch.Keep(t)
	t.SetRequiresGrad(true)
	return b.s.add(&Var{Name: b.Name(n), T: t, Group: b.group})
}

// Buffer registers t as non-trainable state n.
func (b *Builder) Buffer(n string, t *torch.Tensor) *Var {
	torch.Keep(t)
	return b.s.add(&Var{Name: b.Name(n), T: t, Group: b.group, Buffer: true})
}
