// Package models is imet's model zoo: every architecture is created by name
// from one registry, with parameter names identical to the implementation
// whose pretrained weights users download, so a weight file loads without
// renaming. Each registry entry carries its key mappings from other
// implementations' names (timm's, for instance) beside it.
//
// Architectures register themselves from init in their own file. One that
// lives outside this package builds a Backbone and calls Assemble, which
// adds the configurable classification head every model shares.
package models

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
)

// Options configure a model's head.
type Options struct {
	// NumClasses is the number of outputs (default 1000, ImageNet's).
	NumClasses int `yaml:"num_classes" doc:"number of outputs of the classification head (default 1000)"`
	// Pool is "avg" (default), "max" or "concat" (both, concatenated).
	Pool string `yaml:"pool" doc:"global pooling of the feature map: avg, max or concat"`
	// Features is "last" (default) or "last2": the last two stages' pooled
	// features concatenated, as the 10th-place iMet solution did.
	Features string `yaml:"features" doc:"features fed to the head: last (last stage) or last2 (last two stages concatenated)"`
	// Dropout is the dropout probability before the final linear layer.
	Dropout float64 `yaml:"dropout" doc:"dropout probability before the final linear layer (0 = none)"`
	// Variant selects a form of the architecture that another framework's
	// weights need (Spec.Variants); empty is the implementation named by
	// Spec.Source.
	Variant string `yaml:"variant" doc:"architecture variant another framework's weights need (keras: Keras padding and batch-norm epsilon); empty: the reference implementation"`
}

func (o Options) withDefaults() (Options, error) {
	if o.NumClasses == 0 {
		o.NumClasses = 1000
	}
	if o.Pool == "" {
		o.Pool = "avg"
	}
	if o.Features == "" {
		o.Features = "last"
	}
	if o.NumClasses < 0 {
		return o, fmt.Errorf("models: num_classes %d must be positive", o.NumClasses)
	}
	switch o.Pool {
	case "avg", "max", "concat":
	default:
		return o, fmt.Errorf("models: pool %q: want avg, max or concat", o.Pool)
	}
	switch o.Features {
	case "last", "last2":
	default:
		return o, fmt.Errorf("models: features %q: want last or last2", o.Features)
	}
	if o.Dropout < 0 || o.Dropout >= 1 {
		return o, fmt.Errorf("models: dropout %v must be in [0, 1)", o.Dropout)
	}
	return o, nil
}

// Model is a built classifier.
type Model interface {
	// Forward maps a batch of NCHW float images to logits (batch, classes).
	Forward(x *torch.Tensor) *torch.Tensor
	// Store holds the named parameters and buffers, the train/eval mode,
	// the layer groups (stem, stage1..stage4, head) and freezing.
	Store() *nn.Store
}

// Embedder is a model that can stop before its classifier: Embed maps a
// batch of images to the input of the last linear layer (batch,
// EmbedDim()), the penultimate-layer embedding that nearest-neighbour label
// transfer compares images by. Every architecture imet builds is one.
type Embedder interface {
	Embed(x *torch.Tensor) *torch.Tensor
	EmbedDim() int
}

// Spec is one registry entry.
type Spec struct {
	// Build creates the model with freshly initialised weights.
	Build func(o Options) (Model, error)
	// Source names whose state_dict keys the model uses, e.g. "torchvision"
	// or "pretrainedmodels (Cadene)".
	Source string
	// KeyMaps translates other implementations' state_dict keys into this
	// model's, by implementation name ("timm"). A mapping returns false for
	// keys it does not know.
	KeyMaps map[string]func(key string) (string, bool)
	// InputSize is the image side the pretrained weights were trained at.
	InputSize int
	// Variants are the other forms of the architecture Build makes when
	// Options.Variant names one, each with what it changes, in words.
	Variants map[string]string
	// Loads says which weight files load onto the architecture, and
	// KeyMapNote what its key maps do, in words: docs/weights.md's table is
	// generated from them (Reference).
	Loads, KeyMapNote string
}

var (
	regMu    sync.RWMutex
	registry = map[string]Spec{}
)

// Register adds an architecture. Registering a name twice panics: two
// definitions of one name is a programming error.
func Register(name string, s Spec) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("models: " + name + " registered twice")
	}
	registry[name] = s
}

// Lookup is the entry for name.
func Lookup(name string) (Spec, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	s, ok := registry[name]
	return s, ok
}

// Names is every registered architecture, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	o := make([]string, 0, len(registry))
	for n := range registry {
		o = append(o, n)
	}
	sort.Strings(o)
	return o
}

// groups is the layer groups every architecture's store holds.
var groups = []string{"stem", "stage1", "stage2", "stage3", "stage4", "head"}

// Groups is the layer groups of every architecture in network order, head
// last (TestEveryArchitecture holds each to it), so that a configuration's
// frozen groups and rates can be checked without building a model.
func Groups() []string { return append([]string(nil), groups...) }

// Check reports whether name is a registered architecture, with the known
// ones in the error.
func Check(name string) error {
	if _, ok := Lookup(name); !ok {
		return fmt.Errorf("unknown architecture %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return nil
}

// Check reports the first head option New would refuse.
func (o Options) Check() error {
	_, err := o.withDefaults()
	return err
}

// CheckVariant reports whether arch has the variant (empty: the reference
// form, which every architecture has), naming the ones it has.
func CheckVariant(arch, variant string) error {
	s, ok := Lookup(arch)
	if !ok {
		return Check(arch)
	}
	if _, ok := s.Variants[variant]; variant == "" || ok {
		return nil
	}
	var have []string
	for v := range s.Variants {
		have = append(have, v)
	}
	sort.Strings(have)
	if len(have) == 0 {
		return fmt.Errorf("%s has no variant %q (it has only its %s form)", arch, variant, s.Source)
	}
	return fmt.Errorf("%s has no variant %q (have %s)", arch, variant, strings.Join(have, ", "))
}

// New builds the named architecture with the given head options.
func New(name string, o Options) (Model, error) {
	s, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("models: %w", Check(name))
	}
	if err := CheckVariant(name, o.Variant); err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	var m Model
	if err := torch.Catch(func() { m, err = s.Build(o) }); err != nil {
		return nil, fmt.Errorf("models: building %s: %w", name, err)
	}
	return m, err
}

// Backbone is an architecture without its head: it maps images to the
// feature maps of its last two stages.
type Backbone interface {
	// Features returns the penultimate and the last stage's feature maps,
	// as fresh tensors: the head frees both once it has pooled them.
	Features(x *torch.Tensor) (penultimate, last *torch.Tensor)
	// Channels is the channel count of those two maps.
	Channels() (penultimate, last int)
}

// Assemble puts the shared head on a backbone whose tensors are already in
// b's store: global pooling (avg, max or concat) of the last stage or the
// last two, dropout, then a linear layer registered as headName
// ("fc" for torchvision ResNets, "last_linear" for Cadene's SE-ResNeXt) in
// layer group "head".
func Assemble(b *nn.Builder, bb Backbone, headName string, o Options) (Model, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	c3, c4 := bb.Channels()
	in := c4
	if o.Features == "last2" {
		in += c3
	}
	if o.Pool == "concat" {
		in *= 2
	}
	hb := b.InGroup("head")
	m := &classifier{store: b.Store(), bb: bb, o: o}
	m.drop = nn.Dropout(hb, o.Dropout)
	m.fc = nn.Linear(hb.Sub(headName), in, o.NumClasses).Done()
	return m, nil
}

type classifier struct {
	store *nn.Store
	bb    Backbone
	o     Options
	drop  nn.Layer
	fc    *nn.LinearLayer
}

func (m *classifier) Store() *nn.Store { return m.store }

func (m *classifier) pool(x *torch.Tensor) *torch.Tensor {
	switch m.o.Pool {
	case "max":
		return torch.AdaptiveMaxPool2d(x, 1, 1).Flatten(1, -1)
	case "concat":
		a := nn.Then(nn.Flatten, torch.AdaptiveAvgPool2d(x, 1, 1))
		m := nn.Then(nn.Flatten, torch.AdaptiveMaxPool2d(x, 1, 1))
		defer a.Free()
		defer m.Free()
		return torch.Cat(1, a, m)
	}
	return torch.AdaptiveAvgPool2d(x, 1, 1).Flatten(1, -1)
}

func (m *classifier) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Then(m.fc, nn.Then(m.drop, m.Embed(x)))
}

// EmbedDim is the width of the pooled features the head reads.
func (m *classifier) EmbedDim() int { return m.fc.W.T.Shape()[1] }

// Embed is Forward without dropout and the final linear layer.
func (m *classifier) Embed(x *torch.Tensor) *torch.Tensor {
	f3, f4 := m.bb.Features(x)
	h := m.pool(f4)
	f4.Free()
	if m.o.Features == "last2" {
		h3 := m.pool(f3)
		h = nn.Then(nn.Func(func(h4 *torch.Tensor) *torch.Tensor { return torch.Cat(1, h3, h4) }), h)
		h3.Free()
	}
	if f3 != x {
		f3.Free()
	}
	return h
}
