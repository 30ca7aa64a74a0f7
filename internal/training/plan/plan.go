// Package plan runs several cross-validations as one workflow and
// ensembles them: a plan file lists the parts (each a run configuration,
// optionally with another architecture, or one configuration with an
// architecture per fold), Run trains each part through
// internal/training/crossval (resuming what is started, skipping what is
// done), combines the parts' out-of-fold probabilities by the plan's method
// (mean, rank, or weighted with weights searched on the out-of-fold
// probabilities), searches thresholds on the combination, combines the
// parts' test probabilities the same way and writes one submission. The
// plan's Manifest (plan.json) tells internal/ship/inference how to predict
// like the plan, so that one bundle holds the whole ensemble.
package plan

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"imet/internal/base/config"
	"imet/internal/base/snippet"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/thresholds"
	"imet/internal/training/trainconfig"
	"imet/internal/zoo/models"
)

// File is a plan file as written.
type File struct {
	Name       string     `yaml:"name" doc:"The plan's name in the registry (default: the plan file's name without extension)."`
	Ensemble   string     `yaml:"ensemble" doc:"How the parts are combined: mean, rank (mapped back onto the probability scale) or weighted (weights searched on the out-of-fold probabilities)."`
	WeightStep float64    `yaml:"weight_step" doc:"Grid step of the weight search of the weighted method (weights are multiples of it summing to 1)."`
	Rules      []string   `yaml:"rules" doc:"Threshold rules searched on the combined out-of-fold probabilities (empty: the command's --rules)."`
	Parts      []PartFile `yaml:"parts" doc:"The cross-validations to train and combine; each has its own folder OUT/parts/NAME."`
	Config     string     `yaml:"config" doc:"With fold_archs instead of parts: the one run configuration every fold trains with."`
	FoldArchs  []string   `yaml:"fold_archs" doc:"With config: the architecture of each fold, fold k training with fold_archs[k]."`
	// Pretrained maps each of fold_archs to its starting weights.
	Pretrained map[string]string `yaml:"pretrained" doc:"With fold_archs: the weights file each architecture starts from (arch: file, or none for random initialisation); required for every architecture other than the configuration's when it names pretrained weights."`
}

// PartFile is one entry of a plan file's parts.
type PartFile struct {
	Name   string `yaml:"name" doc:"The part's name: its folder under OUT/parts and its name in the registry."`
	Config string `yaml:"config" doc:"Its run configuration (paths in it are relative to the working directory, as for imet cv)."`
	Arch   string `yaml:"arch" doc:"Architecture replacing the configuration's model.arch (empty: keep it)."`
	// Pretrained goes with Arch: another architecture's weights would not
	// load.
	Pretrained string `yaml:"pretrained" doc:"Weights file replacing model.pretrained (none: random initialisation); required with arch when the configuration names pretrained weights."`
}

// Defaults of a plan file.
const (
	DefaultWeightStep = 0.05
	// QuantileRows bounds the rank method's reference: the combined
	// out-of-fold probabilities reduced to this many quantiles per label
	// (ensemble.QuantileTable), which a bundle carries.
	QuantileRows = 1024
)

// Plan is a loaded, checked plan: its parts resolved to configurations.
type Plan struct {
	Path       string
	Name       string
	Method     ensemble.Method
	WeightStep float64
	Rules      []string
	Parts      []Part
	// PerFold: the parts share the folds between them (fold_archs), so
	// their out-of-fold rows are disjoint and are stacked, not averaged.
	PerFold bool
}

// Part is one cross-validation of a plan.
type Part struct {
	Name   string
	Source string          // the configuration file it derives from
	Config trainconfig.Run // that configuration with the plan's overrides
	Folds  []int           // nil: every fold of folds.csv
}

var partName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Load reads and checks a plan file: every configuration it names must
// load and every architecture be registered, so a misspelt part fails
// before the first part trains, naming the file and line.
func Load(path string) (*Plan, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := File{Ensemble: string(ensemble.Mean), WeightStep: DefaultWeightStep}
	if err := config.Decode(path, data, &f); err != nil {
		return nil, err
	}
	bad := func(key, format string, a ...any) error {
		return &config.Error{File: path, Line: config.KeyLine(data, key), Msg: fmt.Sprintf(format, a...)}
	}
	p := &Plan{Path: path, Name: f.Name, Method: ensemble.Method(f.Ensemble), WeightStep: f.WeightStep, Rules: f.Rules}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if err := trainconfig.CheckName(p.Name); err != nil {
		return nil, bad("name", "name %s: %v", snippet.Quote(p.Name), err)
	}
	switch p.Method {
	case ensemble.Mean, ensemble.Rank, ensemble.Weighted:
	default:
		return nil, bad("ensemble", "ensemble %s: want mean, rank or weighted", snippet.Quote(f.Ensemble))
	}
	if !(f.WeightStep > 0 && f.WeightStep <= 1) {
		return nil, bad("weight_step", "weight_step %v: want a number in (0, 1]", f.WeightStep)
	}
	for i, r := range f.Rules {
		if !slices.Contains(thresholds.AllRules, r) {
			return nil, bad(fmt.Sprintf("rules[%d]", i), "unknown rule %s (known: %s)", snippet.Quote(r), strings.Join(thresholds.AllRules, ", "))
		}
	}
	switch {
	case len(f.Parts) > 0 && (f.Config != "" || len(f.FoldArchs) > 0):
		return nil, bad("parts", "a plan lists either parts or config with fold_archs, not both")
	case len(f.Parts) > 0:
		seen := map[string]bool{}
		for i, pf := range f.Parts {
			key := fmt.Sprintf("parts[%d]", i)
			if !partName.MatchString(pf.Name) {
				return nil, bad(key+".name", "part name %s: want 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit", snippet.Quote(pf.Name))
			}
			if seen[pf.Name] {
				return nil, bad(key+".name", "part name %s is used twice", snippet.Quote(pf.Name))
			}
			seen[pf.Name] = true
			part, err := resolve(pf.Name, pf.Config, pf.Arch, pf.Pretrained, nil)
			if err != nil {
				return nil, bad(key, "part %s: %v", pf.Name, err)
			}
			p.Parts = append(p.Parts, part)
		}
		if len(p.Parts) < 2 {
			return nil, bad("parts", "a plan needs at least two parts (one cross-validation is imet cv --config)")
		}
	case f.Config != "" && len(f.FoldArchs) > 0:
		if p.Method == ensemble.Weighted {
			return nil, bad("ensemble", "ensemble weighted needs every part's out-of-fold probabilities for every image; with fold_archs each fold has one architecture (use mean or rank)")
		}
		p.PerFold = true
		var order []string
		byArch := map[string][]int{}
		for k, a := range f.FoldArchs {
			if _, ok := byArch[a]; !ok {
				order = append(order, a)
			}
			byArch[a] = append(byArch[a], k)
		}
		if len(order) < 2 {
			return nil, bad("fold_archs", "fold_archs names one architecture: that is imet cv --config")
		}
		for a := range f.Pretrained {
			if _, ok := byArch[a]; !ok {
				return nil, bad("pretrained", "pretrained names %s, which fold_archs does not list", snippet.Quote(a))
			}
		}
		for _, a := range order {
			part, err := resolve(a, f.Config, a, f.Pretrained[a], byArch[a])
			if err != nil {
				return nil, bad("fold_archs", "%v", err)
			}
			p.Parts = append(p.Parts, part)
		}
	default:
		return nil, bad("", "a plan lists parts (each with a config), or a config with fold_archs")
	}
	// The parts are combined image by image and scored against one
	// train.csv: they must read the same data and folds.
	d0 := p.Parts[0].Config.Data
	for _, q := range p.Parts[1:] {
		d := q.Config.Data
		if d.Root != d0.Root || d.FoldsPath() != d0.FoldsPath() {
			return nil, bad("parts", "part %s reads data %s (folds %s), part %s reads %s (folds %s): the parts of a plan share one data set and its folds",
				q.Name, d.Root, d.FoldsPath(), p.Parts[0].Name, d0.Root, d0.FoldsPath())
		}
	}
	if p.PerFold {
		if n := len(f.FoldArchs); n > 0 {
			if k, err := foldCount(d0.FoldsPath()); err == nil && k != n {
				return nil, bad("fold_archs", "fold_archs lists %d architectures, %s has %d folds", n, d0.FoldsPath(), k)
			}
		}
	}
	return p, nil
}

// resolve loads one part's configuration and applies the plan's
// architecture and starting weights to it.
func resolve(name, cfgPath, arch, pretrained string, folds []int) (Part, error) {
	if cfgPath == "" {
		return Part{}, fmt.Errorf("no config")
	}
	cfg, err := trainconfig.Load(cfgPath)
	if err != nil {
		return Part{}, err
	}
	if arch != "" {
		if err := models.Check(arch); err != nil {
			return Part{}, err
		}
		if arch != cfg.Model.Arch && cfg.Model.Pretrained != "" && pretrained == "" {
			return Part{}, fmt.Errorf("arch %s replaces %s, whose weights %s (model.pretrained) it cannot load: name its own with pretrained (or pretrained: none)",
				arch, cfg.Model.Arch, cfg.Model.Pretrained)
		}
		cfg.Model.Arch = arch
	}
	switch pretrained {
	case "":
	case "none":
		cfg.Model.Pretrained = ""
	default:
		cfg.Model.Pretrained = pretrained
	}
	cfg.Name = cfg.Name + "-" + name
	return Part{Name: name, Source: cfgPath, Config: cfg, Folds: folds}, nil
}
