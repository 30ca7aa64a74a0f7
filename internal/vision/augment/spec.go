package augment

import (
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"imet/internal/base/config"
)

// defaulter is implemented by every op: it fills albumentations' defaults.
type defaulter interface{ defaults() }

// registry builds each op, defaults filled, by its albumentations name.
var registry = map[string]func() Op{
	"Resize":                   func() Op { return &Resize{} },
	"LongestMaxSize":           func() Op { return &LongestMaxSize{} },
	"SmallestMaxSize":          func() Op { return &SmallestMaxSize{} },
	"PadIfNeeded":              func() Op { return &PadIfNeeded{} },
	"RandomCrop":               func() Op { return &RandomCrop{} },
	"CenterCrop":               func() Op { return &CenterCrop{} },
	"RandomResizedCrop":        func() Op { return &RandomResizedCrop{} },
	"RandomCropIfNeeded":       func() Op { return &RandomCropIfNeeded{} },
	"HorizontalFlip":           func() Op { return &HorizontalFlip{} },
	"VerticalFlip":             func() Op { return &VerticalFlip{} },
	"ShiftScaleRotate":         func() Op { return &ShiftScaleRotate{} },
	"RandomBrightnessContrast": func() Op { return &RandomBrightnessContrast{} },
	"HueSaturationValue":       func() Op { return &HueSaturationValue{} },
	"RandomGamma":              func() Op { return &RandomGamma{} },
	"GaussNoise":               func() Op { return &GaussNoise{} },
	"GaussianBlur":             func() Op { return &GaussianBlur{} },
	"CoarseDropout":            func() Op { return &CoarseDropout{} },
	"Normalize":                func() Op { return &Normalize{} },
}

// OpNames lists the ops available, sorted.
func OpNames() []string {
	var s []string
	for k := range registry {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// NewOp returns the op called name with albumentations' default parameters.
func NewOp(name string) (Op, error) {
	mk, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown op %q (known: %s)", name, strings.Join(OpNames(), ", "))
	}
	op := mk()
	op.(defaulter).defaults()
	return op, nil
}

// Spec is one op as written in YAML: `{op: Name, param: value, ...}`.
// Parameters not given keep albumentations' defaults; an unknown
// parameter is an error, as everywhere in imet's configuration.
type Spec struct{ Op Op }

// UnmarshalYAML decodes `{op: Name, ...}` strictly into the op's struct.
func (s *Spec) UnmarshalYAML(data []byte) error {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return err
	}
	name, _ := m["op"].(string)
	if name == "" {
		return fmt.Errorf("augmentation entry needs an `op:` naming it (one of %s)", strings.Join(OpNames(), ", "))
	}
	op, err := NewOp(name)
	if err != nil {
		return err
	}
	delete(m, "op")
	if len(m) > 0 {
		rest, err := yaml.Marshal(m)
		if err != nil {
			return err
		}
		if err := config.Decode("op "+name, rest, op); err != nil {
			return err
		}
	}
	if err := op.validate(); err != nil {
		return fmt.Errorf("op %s: %w", name, err)
	}
	s.Op = op
	return nil
}

// MarshalYAML writes `{op: Name, params...}`, e.g. to record a run's
// resolved pipeline.
func (s Spec) MarshalYAML() (any, error) {
	b, err := yaml.Marshal(s.Op)
	if err != nil {
		return nil, err
	}
	var m yaml.MapSlice
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return append(yaml.MapSlice{{Key: "op", Value: s.Op.Name()}}, m...), nil
}

// ChainOf builds a chain from YAML specs.
func ChainOf(specs []Spec) (*Chain, error) {
	ops := make([]Op, len(specs))
	for i, s := range specs {
		ops[i] = s.Op
	}
	return NewChain(ops...)
}

// Specs wraps ops as specs, the inverse of ChainOf.
func Specs(ops ...Op) []Spec {
	s := make([]Spec, len(ops))
	for i, op := range ops {
		s[i] = Spec{op}
	}
	return s
}
