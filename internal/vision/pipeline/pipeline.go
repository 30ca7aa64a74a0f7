// Package pipeline names complete augmentation setups: what a model sees in
// training, in evaluation, and the test-time augmentation (TTA) variants
// whose predictions are averaged.
//
// Two are built in, the two the iMet 2019 work compared:
//
//   - aggressive256: the seed author's. Heavy RandomResizedCrop to 256,
//     flips and colour jitter in training; evaluation resizes the short side
//     and centre-crops; TTA draws the training augmentation n times
//     (stochastic TTA).
//   - resize320: the 1st-place one. Crop only images whose aspect ratio is
//     extreme (RandomCropIfNeeded), then squash to 320x320; horizontal
//     flips; TTA is the identity plus the mirror image.
//
// Users define more in YAML (see Config); a user pipeline may reuse a
// built-in name to replace it.
package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"imet/internal/base/config"
	"imet/internal/vision/augment"
)

// Pipeline is a resolved, validated pipeline.
type Pipeline struct {
	Name  string
	Train *augment.Chain
	Eval  *augment.Chain
	// TTA lists the evaluation variants, at least one. Each variant's
	// Stream keeps stochastic draws of different variants independent.
	TTA []Variant
}

// Variant is one TTA view of the data.
type Variant struct {
	Name   string
	Chain  *augment.Chain
	Stream uint64
}

// Config is the `pipelines:` section of a configuration file:
//
//	pipelines:
//	  mine:
//	    train:
//	      - {op: RandomResizedCrop, height: 288, width: 288, scale: [0.3, 1]}
//	      - {op: HorizontalFlip}
//	      - {op: Normalize}
//	    eval:
//	      - {op: Resize, height: 288, width: 288}
//	      - {op: Normalize}
//	    tta: {mode: flip}
type Config struct {
	Pipelines map[string]Spec `yaml:"pipelines" doc:"User-defined augmentation pipelines by name."`
}

// Spec is one pipeline in YAML.
type Spec struct {
	Train []augment.Spec `yaml:"train" doc:"Augmentations applied to each training sample, in order (op: name plus albumentations parameters)."`
	Eval  []augment.Spec `yaml:"eval" doc:"Deterministic transform for validation and prediction."`
	TTA   TTASpec        `yaml:"tta" doc:"Test-time augmentation variants."`
}

// TTASpec says which TTA variants to evaluate.
type TTASpec struct {
	Mode string `yaml:"mode" doc:"none (eval only), flip (eval and its mirror image) or stochastic (n draws of the train augmentation)."`
	N    int    `yaml:"n" doc:"Number of draws for mode stochastic."`
}

// Build validates a spec.
func Build(name string, s Spec) (*Pipeline, error) {
	if len(s.Train) == 0 || len(s.Eval) == 0 {
		return nil, fmt.Errorf("pipeline %s: needs both train and eval op lists", name)
	}
	train, err := augment.ChainOf(s.Train)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: train: %w", name, err)
	}
	eval, err := augment.ChainOf(s.Eval)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: eval: %w", name, err)
	}
	for _, c := range []struct {
		what string
		ch   *augment.Chain
	}{{"train", train}, {"eval", eval}} {
		if _, _, ok := c.ch.FixedSize(); !ok {
			return nil, fmt.Errorf("pipeline %s: %s: the output size depends on the input; end with an op of fixed size (Resize, CenterCrop, RandomCrop, RandomResizedCrop) applied with p: 1", name, c.what)
		}
	}
	p := &Pipeline{Name: name, Train: train, Eval: eval}
	switch s.TTA.Mode {
	case "", "none":
		p.TTA = []Variant{{Name: "eval", Chain: eval}}
	case "flip":
		flipped, err := eval.With(&augment.HorizontalFlip{P: 1})
		if err != nil {
			return nil, err
		}
		p.TTA = []Variant{{Name: "eval", Chain: eval}, {Name: "hflip", Chain: flipped, Stream: 1}}
	case "stochastic":
		if s.TTA.N <= 0 {
			return nil, fmt.Errorf("pipeline %s: tta mode stochastic needs n > 0", name)
		}
		for i := range s.TTA.N {
			p.TTA = append(p.TTA, Variant{Name: fmt.Sprintf("draw%d", i+1), Chain: train, Stream: uint64(i + 1)})
		}
	default:
		return nil, fmt.Errorf("pipeline %s: tta mode %q: want none, flip or stochastic", name, s.TTA.Mode)
	}
	return p, nil
}

// Builtin returns the built-in pipeline specs by name.
func Builtin() map[string]Spec {
	norm := func() augment.Op { o, _ := augment.NewOp("Normalize"); return o }
	return map[string]Spec{
		"aggressive256": {
			Train: augment.Specs(
				&augment.RandomResizedCrop{Height: 256, Width: 256, Scale: augment.Range{Lo: 0.2, Hi: 1}, Ratio: augment.Range{Lo: 3.0 / 4, Hi: 4.0 / 3}, P: 1},
				&augment.HorizontalFlip{P: 0.5},
				&augment.RandomBrightnessContrast{BrightnessLimit: augment.Sym(0.2), ContrastLimit: augment.Sym(0.2), BrightnessByMax: true, P: 0.5},
				&augment.HueSaturationValue{HueShiftLimit: augment.Sym(10), SatShiftLimit: augment.Sym(20), ValShiftLimit: augment.Sym(10), P: 0.3},
				norm(),
			),
			Eval: augment.Specs(
				&augment.SmallestMaxSize{SizeLimit: augment.SizeLimit{MaxSize: 256, P: 1}},
				&augment.CenterCrop{CropSize: augment.CropSize{Height: 256, Width: 256, P: 1}},
				norm(),
			),
			TTA: TTASpec{Mode: "stochastic", N: 8},
		},
		"resize320": {
			Train: augment.Specs(
				&augment.RandomCropIfNeeded{MaxRatio: 2, P: 1},
				&augment.Resize{Height: 320, Width: 320, P: 1},
				&augment.HorizontalFlip{P: 0.5},
				&augment.RandomBrightnessContrast{BrightnessLimit: augment.Sym(0.1), ContrastLimit: augment.Sym(0.1), BrightnessByMax: true, P: 0.5},
				norm(),
			),
			Eval: augment.Specs(
				&augment.RandomCropIfNeeded{MaxRatio: 2, Center: true, P: 1},
				&augment.Resize{Height: 320, Width: 320, P: 1},
				norm(),
			),
			TTA: TTASpec{Mode: "flip"},
		},
	}
}

// Names lists the built-in pipelines and those in cfg, sorted.
func Names(cfg *Config) []string {
	seen := map[string]bool{}
	for k := range Builtin() {
		seen[k] = true
	}
	if cfg != nil {
		for k := range cfg.Pipelines {
			seen[k] = true
		}
	}
	var s []string
	for k := range seen {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Check reports whether name is a pipeline of cfg (which may be nil) or a
// built-in one, with the known ones in the error.
func Check(name string, cfg *Config) error {
	if cfg != nil {
		if _, ok := cfg.Pipelines[name]; ok {
			return nil
		}
	}
	if _, ok := Builtin()[name]; ok {
		return nil
	}
	return fmt.Errorf("unknown pipeline %q (known: %s)", name, strings.Join(Names(cfg), ", "))
}

// Get resolves a pipeline by name: cfg's definitions first (cfg may be
// nil), then the built-ins.
func Get(name string, cfg *Config) (*Pipeline, error) {
	if cfg != nil {
		if s, ok := cfg.Pipelines[name]; ok {
			return Build(name, s)
		}
	}
	if s, ok := Builtin()[name]; ok {
		return Build(name, s)
	}
	return nil, Check(name, cfg)
}

// LoadConfig reads a YAML file holding a `pipelines:` section (and nothing
// else: this is for a dedicated file; a run configuration embeds Config).
func LoadConfig(path string) (*Config, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig for a file already in memory; name is used in
// error messages. It is held to config.Decode's bounds on size, nesting
// and aliases, like a run configuration.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	if err := config.Decode(name, data, &c); err != nil {
		return nil, err
	}
	for pname, s := range c.Pipelines {
		if _, err := Build(pname, s); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return &c, nil
}
