// Package trainconfig is a training run's configuration: the data and model
// it uses and the ordered list of stages that make up the fine-tuning
// recipe. Gradual unfreezing, discriminative learning rates, a change of
// loss or optimizer halfway: each is a stage, so a recipe is configuration,
// not code.
//
// A run's configuration also decides whether a checkpoint may be resumed:
// Fingerprint flattens every field that shapes the computation into
// "path = value" lines, and Diff names the ones that changed, so a refused
// resume says exactly why.
package trainconfig

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"imet/internal/base/config"
	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
	"imet/internal/training/losses"
	"imet/internal/training/schedule"
	"imet/internal/training/targets"
	"imet/internal/vision/pipeline"
	"imet/internal/zoo/models"
	"imet/internal/zoo/pretrained"
)

// Run is the whole configuration of a training run.
type Run struct {
	Name       string     `yaml:"name" doc:"Run name, used in the run directory and logs."`
	Seed       int64      `yaml:"seed" doc:"Seed for data order, augmentation, initialisation and dropout."`
	Data       Data       `yaml:"data" doc:"Where the images and labels are, and how they are prepared."`
	Targets    Targets    `yaml:"targets" doc:"Training targets from an earlier round: a teacher's probabilities (distillation), pseudo-labelled test images, cleaned labels. Validation always scores against root's train.csv, so rounds compare."`
	Model      Model      `yaml:"model" doc:"Architecture and head."`
	Stages     []Stage    `yaml:"stages" doc:"Training stages, run in order; gradual unfreezing is a list of stages. A file's stages replace the default recipe's."`
	Validation Validation `yaml:"validation" doc:"When and how to validate."`
	Checkpoint Checkpoint `yaml:"checkpoint" doc:"When to write checkpoints and how many to keep." resume:"free"`
	EMA        EMA        `yaml:"ema" doc:"Exponential moving average of the weights."`
	HardMining HardMining `yaml:"hard_mining" doc:"Resampling of the previous epoch's hardest samples."`
	Engine     Engine     `yaml:"engine" doc:"Device, threads and precision."`
}

// Data says where a run's samples come from and how they are prepared.
type Data struct {
	Root          string   `yaml:"root" doc:"Data set directory in iMet layout (labels.csv, train.csv, sample_submission.csv, train/, test/)."`
	Folds         string   `yaml:"folds" doc:"folds.csv assigning each training image to a fold; a relative path is under root."`
	Pipeline      string   `yaml:"pipeline" doc:"Augmentation pipeline: a built-in one (${pipelines}) or one defined in pipelines_file."`
	PipelinesFile string   `yaml:"pipelines_file" doc:"YAML file with a pipelines: section of user-defined pipelines."`
	TTA           string   `yaml:"tta" doc:"Test-time augmentation: empty keeps the pipeline's own, none uses only the plain eval transform."`
	Workers       int      `yaml:"workers" doc:"Decoding goroutines (0: one per core); at most ${workers_per_cpu} per CPU of the machine that checks or trains." resume:"free"`
	CacheMB       int      `yaml:"cache_mb" doc:"Memory for decoded images kept between epochs of validation and test (0: none; not negative)." resume:"free"`
	Limit         int      `yaml:"limit" doc:"Use only the first N rows of train.csv (0: all; not negative); for smoke tests. Batches larger than the rows left are clamped to them, with a log line."`
	Packed        string   `yaml:"packed" doc:"Pack of decoded images made by imet datasets pack (a relative path is under root); the loaders read the images it holds from it instead of decoding their files. Empty: decode every epoch." resume:"free"`
	Labels        []string `yaml:"labels" doc:"Train a specialist on a subset of the labels: group names (tag, culture) and attribute ids, e.g. [tag] or [13, 51]; empty: every label. Its probability files hold only these columns (imet merge puts them back into the full label space)."`
	SkipBroken    bool     `yaml:"skip_broken" doc:"Leave images that do not decode out of training, validation and test prediction (each reported once in the log and recorded in the registry as a broken_image artifact; their probabilities stay zero) instead of stopping at the first." resume:"free"`
}

// FoldsPath is the folds file: Folds itself when absolute, else under Root.
func (d Data) FoldsPath() string {
	if filepath.IsAbs(d.Folds) {
		return d.Folds
	}
	return filepath.Join(d.Root, d.Folds)
}

// PackedPath is the pack file: Packed itself when absolute, else under
// Root; empty when no pack is configured.
func (d Data) PackedPath() string {
	if d.Packed == "" || filepath.IsAbs(d.Packed) {
		return d.Packed
	}
	return filepath.Join(d.Root, d.Packed)
}

// Targets are a later round's training targets, built from an earlier
// round's outputs (internal/training/targets). Paths are relative to the
// working directory.
type Targets struct {
	TrainCSV string `yaml:"train_csv" doc:"train.csv to take the training rows' labels from instead of root's (imet labels clean writes one): rows it lacks leave training, rows it relabels train on its labels; validation rows keep root's labels."`
	Soft     Soft   `yaml:"soft" doc:"Soft targets for the training rows from a probability file (distillation)."`
	Pseudo   Pseudo `yaml:"pseudo" doc:"Test images joining training with targets predicted for them (pseudo-labels)."`
}

// Soft combines a teacher's probabilities with the labels.
type Soft struct {
	File  string  `yaml:"file" doc:"Probability file (.npy with its .ids.csv and .labels.csv sidecars), e.g. a teacher ensemble's oof.npy: out-of-fold, so that no row's target comes from a model that trained on it. Every training row must have a row in it; labels it lacks keep the hard target. Empty: hard targets."`
	Rule  string  `yaml:"rule" doc:"How a label y and the teacher's p make the target: ${soft_rules}."`
	Alpha float64 `yaml:"alpha" doc:"The a of the rules max and mix, in (0, 1]."`
}

// Pseudo selects confident test images and gives them targets.
type Pseudo struct {
	File          string  `yaml:"file" doc:"Probability file of test images (e.g. an ensemble's test.npy with sidecars); rows of training images are left out (a validation fold never sees its own images). Empty: no pseudo-labels."`
	Share         float64 `yaml:"share" doc:"Share of the file's test images that join, the most confident first (confidence: the mean of |p - 0.5| over the labels), in (0, 1]."`
	MinConfidence float64 `yaml:"min_confidence" doc:"Images whose confidence is below this (0 to 0.5) never join."`
	Threshold     float64 `yaml:"threshold" doc:"0: the targets are the probabilities themselves; above 0: hard targets, 1 where p >= threshold."`
}

// Model names the network and its head.
type Model struct {
	Arch       string  `yaml:"arch" doc:"Architecture from the model zoo: ${architectures}."`
	Pretrained string  `yaml:"pretrained" doc:"Weights to start from: a .pth/.pt/.safetensors file, a TensorFlow.js model directory (nsfwjs' mobilenet_v2 or inception_v3), or an imet run directory or checkpoint; empty: random initialisation. imet weights inspect --arch A FILE prints the lines that load a file; config check refuses a source that maps no tensor or lacks some."`
	From       string  `yaml:"from" doc:"Names the pretrained file uses: ${pretrained_from}."`
	Variant    string  `yaml:"variant" doc:"Architecture variant the pretrained weights need: empty for the reference implementation, keras for Keras weights (mobilenet_v2, inception_v3)."`
	Pool       string  `yaml:"pool" doc:"Head pooling: avg, max or concat."`
	Features   string  `yaml:"features" doc:"Features fed to the head: last (last stage) or last2 (last two stages concatenated)."`
	Dropout    float64 `yaml:"dropout" doc:"Dropout before the classifier."`
	FreezeBN   bool    `yaml:"freeze_bn" doc:"Keep every BatchNorm in eval mode while training (running statistics fixed, scale and shift still learn): the usual choice for small batches, and what makes a data-parallel run compute what one process does at the same global batch."`
}

// Stage is one phase of the recipe.
type Stage struct {
	Name       string          `yaml:"name" doc:"Stage name, shown in logs and checkpoints."`
	Epochs     int             `yaml:"epochs" doc:"Length in epochs (either epochs or steps)."`
	Steps      int             `yaml:"steps" doc:"Length in optimizer steps (either epochs or steps)."`
	Frozen     []string        `yaml:"frozen" doc:"Layer groups whose weights do not train (of stem, stage1..stage4, head; at least one must train); their BatchNorm stays in eval mode."`
	LR         []float64       `yaml:"lr" doc:"Learning rates: one for all groups, or one per entry of lr_groups (default split: the last rate for the head, the others over the body in order, so at most one per trainable body group plus the head)."`
	LRGroups   [][]string      `yaml:"lr_groups" doc:"Which layer groups each rate in lr applies to; empty: the default split."`
	Optimizer  Optimizer       `yaml:"optimizer" doc:"Optimizer for this stage."`
	Schedule   schedule.Config `yaml:"schedule" doc:"Learning-rate schedule for this stage."`
	Loss       []LossTerm      `yaml:"loss" doc:"Loss: a weighted sum of terms."`
	Mixup      Mix             `yaml:"mixup" doc:"Mixup at batch level."`
	CutMix     Mix             `yaml:"cutmix" doc:"CutMix at batch level."`
	BatchSize  int             `yaml:"batch_size" doc:"Images per forward pass (at least 1). Clamped to the fold's training rows; every fold of folds.csv must hold at least the smallest stage batch; on the CPU, refused when the estimated memory of a training step exceeds MemAvailable."`
	Accumulate int             `yaml:"accumulate" doc:"Forward passes whose gradients are summed before each optimizer step."`
}

// Optimizer is a stage's optimizer; internal/engine/optim owns its fields and
// the names it accepts.
type Optimizer = optim.Config

// LossTerm is one term of a stage's loss sum; internal/training/losses owns its
// fields, their defaults and the names it accepts.
type LossTerm = losses.Config

// Mix configures Mixup or CutMix.
type Mix struct {
	Alpha float64 `yaml:"alpha" doc:"Beta(alpha, alpha) mixing distribution; 0 disables."`
	Prob  float64 `yaml:"prob" doc:"Probability a batch is mixed."`
}

// Validation says when to validate.
type Validation struct {
	EveryEpochs int `yaml:"every_epochs" doc:"Validate every N epochs (and at the end of every stage; 0: only there)."`
	EverySteps  int `yaml:"every_steps" doc:"Also validate every N optimizer steps (0: never mid-epoch)."`
	BatchSize   int `yaml:"batch_size" doc:"Images per forward pass at validation and test time (at least 1). Clamped to the fold's validation rows; on the CPU, refused when the estimated activations exceed MemAvailable." resume:"free"`
}

// Checkpoint controls how often state is saved and how much is kept.
type Checkpoint struct {
	EverySteps int `yaml:"every_steps" doc:"Write a checkpoint every N optimizer steps (0: only at stage ends and on stop)."`
	Keep       int `yaml:"keep" doc:"Most recent checkpoints kept, at least 1 (the best by validation F2 is kept besides)."`
}

// EMA configures the moving average of weights.
type EMA struct {
	Enabled bool    `yaml:"enabled" doc:"Keep an exponential moving average of the weights and validate with it."`
	Decay   float64 `yaml:"decay" doc:"Decay per optimizer step."`
}

// HardMining configures hard-example resampling.
type HardMining struct {
	Fraction float64 `yaml:"fraction" doc:"Share of an epoch drawn again from the previous epoch's highest-loss samples (0: off)."`
}

// Engine chooses where and how the network runs.
type Engine struct {
	Device  string `yaml:"device" doc:"Device to run on: ${devices}; training refuses a device it cannot use. Checkpoints hold CPU tensors, so a run may resume on another device; it is bit-identical only on the same device with the same threads." resume:"free"`
	Threads int    `yaml:"threads" doc:"Intra-op threads for libtorch (0: one per core; at most ${threads_per_cpu} per CPU of the machine that checks or trains). Changing it may change float rounding." resume:"free"`
	// Precision is one of the Precision* names.
	Precision string `yaml:"precision" doc:"fp32; bf16: autocast forward and loss to bfloat16 (CPU or CUDA); fp16: CUDA autocast to float16 with dynamic loss scaling (PyTorch's GradScaler: scale 65536, x2 after 2000 clean steps, x0.5 and the step skipped on inf/NaN gradients)."`
	// BF16 is the key precision replaced; Parse turns it into Precision
	// and clears it, so it is never part of a fingerprint.
	BF16         *bool `yaml:"bf16,omitempty" doc:"Deprecated: use precision. true means precision bf16, false fp32; set both only if they agree." resume:"free"`
	ChannelsLast bool  `yaml:"channels_last" doc:"Lay weights and input batches out NHWC (faster convolutions on oneDNN and on tensor cores). Changes float rounding."`
	// Distributed is one of the Distributed* names.
	Distributed    string `yaml:"distributed" doc:"Data-parallel training: auto joins the process group torchrun's variables describe (WORLD_SIZE above 1) with Gloo on the CPU and NCCL on a GPU; gloo or nccl: that backend (the variables must be set); off: one process, whatever the environment. Each stage's batch_size is the global batch, split evenly over the processes." resume:"free"`
	CudnnBenchmark bool   `yaml:"cudnn_benchmark" doc:"Let cuDNN time its convolution algorithms on the first batch and keep the fastest (CUDA only). The choice may change between runs, and float rounding with it." resume:"free"`
}

// The values of Engine.Distributed ("" reads as auto).
const (
	DistributedAuto = "auto"
	DistributedOff  = "off"
	DistributedGloo = "gloo"
	DistributedNCCL = "nccl"
)

// The values of Engine.Precision.
const (
	PrecisionFP32 = "fp32"
	PrecisionBF16 = "bf16"
	PrecisionFP16 = "fp16"
)

// KeyError is a validation error about one configuration key, which Parse
// turns into an error naming the key's line.
type KeyError struct {
	Key string // dotted path, e.g. engine.device
	Msg string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Msg }

// Default is the default recipe: the seed's three-stage fine-tuning of a
// ResNet-50 (head only, then the top of the body, then everything with
// discriminative rates).
func Default() Run {
	return Run{
		Name: "run",
		Seed: 42,
		Data: Data{Folds: "folds.csv", Pipeline: "aggressive256"},
		Targets: Targets{Soft: Soft{Rule: targets.Max, Alpha: targets.DefaultAlpha},
			Pseudo: Pseudo{Share: targets.DefaultShare}},
		Model: Model{Arch: "resnet50", Pool: "avg", Features: "last"},
		Stages: []Stage{
			withDefaults(Stage{Name: "head", Epochs: 1, Frozen: []string{"stem", "stage1", "stage2", "stage3", "stage4"}, LR: []float64{1e-3}}),
			withDefaults(Stage{Name: "top", Epochs: 2, Frozen: []string{"stem", "stage1", "stage2"}, LR: []float64{1e-4, 5e-4}}),
			withDefaults(Stage{Name: "all", Epochs: 10, LR: []float64{1e-5, 8e-5, 5e-4}, Schedule: schedule.Config{Name: schedule.Cosine, WarmupEpochs: 0.5}}),
		},
		Validation: Validation{EveryEpochs: 1, BatchSize: 64},
		Checkpoint: Checkpoint{EverySteps: 500, Keep: 2},
		EMA:        EMA{Decay: 0.999},
		Engine:     Engine{Device: "cpu", Precision: PrecisionFP32, Distributed: DistributedAuto},
	}
}

// DefaultStage is a stage with every default filled in.
func DefaultStage() Stage { return withDefaults(Stage{}) }

// withDefaults fills zero fields of s. Schedule parameters other than the
// name keep PyTorch's defaults unless set.
func withDefaults(s Stage) Stage {
	if s.Optimizer.Name == "" {
		s.Optimizer = optim.DefaultConfig()
	}
	sc := schedule.Default()
	if s.Schedule.Name != "" {
		sc.Name = s.Schedule.Name
		sc.WarmupEpochs = s.Schedule.WarmupEpochs
		sc.WarmupSteps = s.Schedule.WarmupSteps
	}
	s.Schedule = sc
	if len(s.Loss) == 0 {
		l := losses.DefaultConfig()
		l.Name = losses.DefaultName
		s.Loss = []LossTerm{l}
	}
	if s.LR == nil {
		s.LR = []float64{1e-4}
	}
	if s.BatchSize == 0 {
		s.BatchSize = 32
	}
	if s.Accumulate == 0 {
		s.Accumulate = 1
	}
	s.Mixup.Prob, s.CutMix.Prob = 1, 1
	return s
}

// Load reads a run configuration from path on top of Default. Stages in the
// file replace the default stages; fields a stage leaves out take stage
// defaults (AdamW, constant schedule, BCE, batch 32).
func Load(path string) (Run, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return Run{}, err
	}
	return Parse(path, data)
}

// Parse is Load for a configuration already in memory; name is used in
// error messages.
func Parse(name string, data []byte) (Run, error) {
	r, err := Decode(name, data)
	if err != nil {
		return Run{}, err
	}
	err = r.Engine.upgrade(config.KeyLine(data, "engine.precision") > 0)
	if err == nil {
		err = r.Validate()
	}
	if err != nil {
		return Run{}, locate(name, data, err)
	}
	return r, nil
}

// locate names the file, and the line of the key at fault for a
// KeyError.
func locate(name string, data []byte, err error) error {
	var ke *KeyError
	if errors.As(err, &ke) {
		return &config.Error{File: name, Line: keyLine(data, ke.Key), Msg: ke.Error()}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// keyLine is the line of key, or of the nearest enclosing key the
// document sets (a stage that lacks epochs is named by its own line).
func keyLine(data []byte, key string) int {
	for key != "" {
		if l := config.KeyLine(data, key); l > 0 {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// Decode is Parse without Validate: data on top of Default, with every
// default the loader applies to what the file leaves out (the generated
// reference is checked against it).
func Decode(name string, data []byte) (Run, error) {
	r := Default()
	if err := config.Decode(name, data, &r); err != nil {
		return Run{}, err
	}
	return r, nil
}

// upgrade turns the deprecated engine.bf16 into engine.precision;
// explicit says the file set precision itself, which must then agree.
func (e *Engine) upgrade(explicit bool) error {
	if e.BF16 == nil {
		return nil
	}
	legacy := PrecisionFP32
	if *e.BF16 {
		legacy = PrecisionBF16
	}
	if explicit && e.Precision != legacy {
		return &KeyError{Key: "engine.bf16", Msg: fmt.Sprintf("%v (deprecated) means precision %s, but engine.precision is %s; keep only precision", *e.BF16, legacy, e.Precision)}
	}
	e.Precision, e.BF16 = legacy, nil
	return nil
}

// UnmarshalYAML starts every stage in a file from DefaultStage, so that a
// stage naming only its epochs and rates is still complete.
func (s *Stage) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Stage // without this method, to avoid recursion
	d := plain(DefaultStage())
	if err := unmarshal(&d); err != nil {
		return err
	}
	*s = Stage(d)
	return nil
}

// DefaultLossTerm is what a loss term in a file starts from
// (losses.DefaultConfig).
func DefaultLossTerm() LossTerm { return losses.DefaultConfig() }

// Validate checks what the types cannot.
func (r *Run) Validate() error {
	if err := CheckName(r.Name); err != nil {
		return err
	}
	if len(r.Stages) == 0 {
		return fmt.Errorf("no stages")
	}
	if r.Data.TTA != "" && r.Data.TTA != "none" {
		return &KeyError{Key: "data.tta", Msg: fmt.Sprintf("%q: want empty (the pipeline's own) or none", r.Data.TTA)}
	}
	if r.Data.PipelinesFile == "" {
		// With a pipelines file the name may be one of its own; CheckFiles
		// looks there.
		if err := pipeline.Check(r.Data.Pipeline, nil); err != nil {
			return &KeyError{Key: "data.pipeline", Msg: err.Error()}
		}
	}
	if err := models.Check(r.Model.Arch); err != nil {
		return &KeyError{Key: "model.arch", Msg: err.Error()}
	}
	if err := (models.Options{Pool: r.Model.Pool, Features: r.Model.Features, Dropout: r.Model.Dropout}).Check(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := r.Model.validate(); err != nil {
		return err
	}
	if err := r.checkCounts(); err != nil {
		return err
	}
	if err := r.Targets.validate(); err != nil {
		return err
	}
	for i, l := range r.Data.Labels {
		if strings.TrimSpace(l) == "" {
			return &KeyError{Key: fmt.Sprintf("data.labels[%d]", i), Msg: "empty: want a group name (tag, culture) or an attribute id"}
		}
	}
	for i := range r.Stages {
		if err := r.Stages[i].validate(i); err != nil {
			return err
		}
	}
	if r.EMA.Enabled && (r.EMA.Decay <= 0 || r.EMA.Decay >= 1) {
		return &KeyError{Key: "ema.decay", Msg: fmt.Sprintf("%g outside (0, 1)", r.EMA.Decay)}
	}
	if r.HardMining.Fraction < 0 || r.HardMining.Fraction >= 1 {
		return &KeyError{Key: "hard_mining.fraction", Msg: fmt.Sprintf("%g outside [0, 1)", r.HardMining.Fraction)}
	}
	return r.Engine.Validate()
}

func (t *Targets) validate() error {
	if err := targets.CheckRule(t.Soft.Rule); err != nil {
		return &KeyError{Key: "targets.soft.rule", Msg: err.Error()}
	}
	if !(t.Soft.Alpha > 0 && t.Soft.Alpha <= 1) {
		return &KeyError{Key: "targets.soft.alpha", Msg: fmt.Sprintf("%g outside (0, 1]", t.Soft.Alpha)}
	}
	if !(t.Pseudo.Share > 0 && t.Pseudo.Share <= 1) {
		return &KeyError{Key: "targets.pseudo.share", Msg: fmt.Sprintf("%g outside (0, 1]", t.Pseudo.Share)}
	}
	if !(t.Pseudo.MinConfidence >= 0 && t.Pseudo.MinConfidence <= 0.5) {
		return &KeyError{Key: "targets.pseudo.min_confidence", Msg: fmt.Sprintf("%g outside [0, 0.5]", t.Pseudo.MinConfidence)}
	}
	if !(t.Pseudo.Threshold >= 0 && t.Pseudo.Threshold < 1) {
		return &KeyError{Key: "targets.pseudo.threshold", Msg: fmt.Sprintf("%g outside [0, 1)", t.Pseudo.Threshold)}
	}
	return nil
}

// checkFiles checks that the files the targets name exist.
func (t *Targets) checkFiles() error {
	for _, f := range []struct{ key, path string }{{"targets.train_csv", t.TrainCSV}, {"targets.soft.file", t.Soft.File}, {"targets.pseudo.file", t.Pseudo.File}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return &KeyError{Key: f.key, Msg: err.Error()}
		}
	}
	return nil
}

// validate checks the pretrained source's keys; whether the file loads is
// CheckPretrained's question.
func (m *Model) validate() error {
	if err := models.CheckVariant(m.Arch, m.Variant); err != nil {
		return &KeyError{Key: "model.variant", Msg: err.Error()}
	}
	if err := pretrained.CheckFrom(m.From); err != nil {
		return &KeyError{Key: "model.from", Msg: err.Error()}
	}
	if m.From != "" && m.Pretrained == "" {
		return &KeyError{Key: "model.from", Msg: fmt.Sprintf("%s names the mapping of model.pretrained, which is empty", m.From)}
	}
	return nil
}

// Options are the zoo options the model is built with for classes outputs.
func (m *Model) Options(classes int) models.Options {
	return models.Options{NumClasses: classes, Pool: m.Pool, Features: m.Features, Dropout: m.Dropout, Variant: m.Variant}
}

// PretrainedLines is the model section of a run configuration that loads
// path into arch with the mapping from: what imet weights inspect prints.
func PretrainedLines(arch, variant, path, from string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "model:\n  arch: %s\n", arch)
	if variant != "" {
		fmt.Fprintf(&b, "  variant: %s\n", variant)
	}
	fmt.Fprintf(&b, "  pretrained: %s\n  from: %s\n", strconv.Quote(path), from)
	return b.String()
}

// SourceRunModel is the model section of the imet run that path (a run
// directory, or a checkpoint in RUN/checkpoints/) belongs to, when path is
// one and its config.yaml reads.
func SourceRunModel(path string) (Model, bool) {
	if !pretrained.IsImet(path) {
		return Model{}, false
	}
	run := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		run = filepath.Dir(filepath.Dir(path))
	}
	r, err := Load(filepath.Join(run, "config.yaml"))
	if err != nil {
		return Model{}, false
	}
	return r.Model, true
}

// CheckPretrained loads model.pretrained into the configured network (any
// class count: a differing head is re-initialised, never an error), so
// that a source that maps no tensor, or lacks some, is refused before a
// run starts rather than training from random weights.
func (m *Model) CheckPretrained() error {
	if m.Pretrained == "" {
		return nil
	}
	if src, ok := SourceRunModel(m.Pretrained); ok && src.Variant != m.Variant && (m.From == "" || m.From == pretrained.FromAuto || m.From == pretrained.FromImet) {
		return &KeyError{Key: "model.variant", Msg: fmt.Sprintf("%s was trained as %s variant %q; this run builds variant %q, whose layers compute otherwise on the same weights: set model.variant: %s", m.Pretrained, src.Arch, src.Variant, m.Variant, src.Variant)}
	}
	r, err := pretrained.Check(m.Arch, m.Options(1), pretrained.Source{Path: m.Pretrained, From: m.From})
	if err != nil {
		key := "model.pretrained"
		switch {
		case errors.Is(err, pretrained.ErrMapping):
			key = "model.from"
		case errors.Is(err, pretrained.ErrVariant):
			key = "model.variant"
		}
		msg := err.Error()
		if r != nil && len(r.Tried) > 1 {
			msg += "\n(mappings tried: " + strings.Join(r.Tried, "; ") + ")"
		}
		return &KeyError{Key: key, Msg: msg}
	}
	return nil
}

// checkCounts refuses negative counts, which used to mean the default
// without a word (`limit: -5` trained on every row).
func (r *Run) checkCounts() error {
	for _, c := range []struct {
		key string
		v   int
		min int
		doc string
	}{
		{"data.workers", r.Data.Workers, 0, "0 uses one per core"},
		{"data.cache_mb", r.Data.CacheMB, 0, "0 caches nothing"},
		{"data.limit", r.Data.Limit, 0, "0 uses every row"},
		{"validation.every_epochs", r.Validation.EveryEpochs, 0, "0 validates at stage ends only"},
		{"validation.every_steps", r.Validation.EverySteps, 0, "0 never validates mid-epoch"},
		{"validation.batch_size", r.Validation.BatchSize, 1, "images per forward pass"},
		{"checkpoint.every_steps", r.Checkpoint.EverySteps, 0, "0 writes at stage ends and on stop only"},
		{"checkpoint.keep", r.Checkpoint.Keep, 1, "the newest checkpoints kept"},
		{"engine.threads", r.Engine.Threads, 0, "0 uses one per core"},
	} {
		if c.v < c.min {
			return &KeyError{Key: c.key, Msg: fmt.Sprintf("%d: must be at least %d (%s)", c.v, c.min, c.doc)}
		}
	}
	return nil
}

// validate checks stage i, naming the key at fault (stages[i].lr) so
// that Parse can give its line. The layer groups are models.Groups, which
// every architecture shares, so frozen groups, lr_groups and the rate
// count are checked here, not when training reaches the stage.
func (s *Stage) validate(i int) error {
	key := func(k string) string { return fmt.Sprintf("stages[%d].%s", i, k) }
	at := fmt.Sprintf("stage %d (%s)", i, s.Name)
	bad := func(k, format string, a ...any) error {
		return &KeyError{Key: key(k), Msg: at + ": " + fmt.Sprintf(format, a...)}
	}
	switch {
	case s.Epochs < 0:
		return bad("epochs", "epochs %d is negative", s.Epochs)
	case s.Steps < 0:
		return bad("steps", "steps %d is negative", s.Steps)
	case (s.Epochs > 0) == (s.Steps > 0):
		return bad("epochs", "set exactly one of epochs and steps")
	case s.BatchSize < 1:
		return bad("batch_size", "batch_size %d: must be at least 1", s.BatchSize)
	case s.Accumulate < 1:
		return bad("accumulate", "accumulate %d: must be at least 1", s.Accumulate)
	case len(s.LR) == 0:
		return bad("lr", "lr is empty")
	case len(s.LRGroups) > 0 && len(s.LRGroups) != len(s.LR):
		return bad("lr_groups", "%d rates for %d lr_groups", len(s.LR), len(s.LRGroups))
	case s.Mixup.Alpha < 0 || s.CutMix.Alpha < 0:
		return bad("mixup", "mixing alpha must not be negative")
	case s.Mixup.Alpha > 0 && s.CutMix.Alpha > 0:
		return bad("cutmix", "choose Mixup or CutMix, not both")
	case s.Mixup.Prob < 0 || s.Mixup.Prob > 1 || s.CutMix.Prob < 0 || s.CutMix.Prob > 1:
		return bad("mixup", "mixing prob outside [0, 1]")
	}
	if c := s.Optimizer.ClipGradNorm; !(c >= 0) || math.IsInf(c, 0) {
		return bad("optimizer.clip_grad_norm", "optimizer.clip_grad_norm %g: want 0 (off) or a positive norm", c)
	}
	for _, lr := range s.LR {
		if !(lr >= 0) || math.IsInf(lr, 0) {
			return bad("lr", "learning rate %g", lr)
		}
	}
	if err := optim.Check(s.Optimizer.Name); err != nil {
		return bad("optimizer", "optimizer: %v", err)
	}
	if err := s.Schedule.Validate(); err != nil {
		return bad("schedule", "%v", err)
	}
	if len(s.Loss) == 0 {
		return bad("loss", "loss is empty")
	}
	for j, l := range s.Loss {
		if err := losses.Check(l.Name); err != nil {
			return bad(fmt.Sprintf("loss[%d]", j), "loss[%d]: %v", j, err)
		}
	}
	groups := models.Groups()
	for _, f := range s.Frozen {
		if !slices.Contains(groups, f) {
			return bad("frozen", "frozen group %q is not one of %s", f, strings.Join(groups, ", "))
		}
	}
	rates, err := s.GroupRates(groups)
	if err != nil {
		k := "lr"
		if len(s.LRGroups) > 0 {
			k = "lr_groups"
		}
		return &KeyError{Key: key(k), Msg: err.Error()}
	}
	if len(rates) == 0 {
		return bad("frozen", "every layer group is frozen (%s); a stage needs at least one that trains", strings.Join(s.Frozen, ", "))
	}
	return nil
}

// Validate checks the engine's settings: the names, and fp16 only on a
// GPU. Whether this process can use the device is torch.CheckDevice's
// question, asked when training starts.
func (e *Engine) Validate() error {
	dev, err := torch.ParseDevice(e.Device)
	if err != nil {
		return &KeyError{Key: "engine.device", Msg: err.Error()}
	}
	switch e.Precision {
	case PrecisionFP32, PrecisionBF16:
	case PrecisionFP16:
		if !dev.IsCUDA() {
			return &KeyError{Key: "engine.precision", Msg: "fp16 needs a CUDA device (engine.device is " + e.Device + "): CPU autocast runs bfloat16 only; use bf16"}
		}
	default:
		return &KeyError{Key: "engine.precision", Msg: fmt.Sprintf("%q: want fp32, bf16 or fp16", e.Precision)}
	}
	if e.BF16 != nil {
		return &KeyError{Key: "engine.bf16", Msg: "deprecated: set engine.precision"}
	}
	switch e.Distributed {
	case "", DistributedAuto, DistributedOff, DistributedGloo, DistributedNCCL:
	default:
		return &KeyError{Key: "engine.distributed", Msg: fmt.Sprintf("%q: want auto, off, gloo or nccl", e.Distributed)}
	}
	return nil
}

// CheckFiles is what Validate cannot check without reading the files the
// configuration names: a pipeline defined in pipelines_file, and the
// files targets names.
func (r *Run) CheckFiles() error {
	if _, err := r.pipelines(); err != nil {
		return err
	}
	return r.Targets.checkFiles()
}

// pipelines reads the pipelines file (nil when there is none) and checks
// that data.pipeline is one of its pipelines or a built-in one.
func (r *Run) pipelines() (*pipeline.Config, error) {
	if r.Data.PipelinesFile == "" {
		return nil, nil
	}
	cfg, err := pipeline.LoadConfig(r.Data.PipelinesFile)
	if err != nil {
		return nil, &KeyError{Key: "data.pipelines_file", Msg: err.Error()}
	}
	if err := pipeline.Check(r.Data.Pipeline, cfg); err != nil {
		return nil, &KeyError{Key: "data.pipeline", Msg: err.Error()}
	}
	return cfg, nil
}

// DocVars are the lists of accepted names that the configuration's doc
// tags name as ${var}, each read from the table of the package that
// implements the names (see config.Reference).
func DocVars() map[string]string {
	return map[string]string{
		"losses":          describe(losses.Names(), losses.Doc),
		"optimizers":      describe(optim.Names(), optim.Doc),
		"schedules":       describe(schedule.Names(), schedule.Doc),
		"architectures":   strings.Join(models.Names(), ", "),
		"pipelines":       strings.Join(pipeline.Names(nil), ", "),
		"devices":         torch.DeviceSyntax,
		"pretrained_from": describe(pretrained.Froms(), pretrained.FromDoc),
		"soft_rules":      describe(targets.Rules(), targets.RuleDoc),
		// The bounds CheckResources applies.
		"threads_per_cpu": strconv.Itoa(MaxThreadsPerCPU),
		"workers_per_cpu": strconv.Itoa(MaxWorkersPerCPU),
	}
}

// describe lists names as "a (what a is), b (what b is)".
func describe(names []string, doc func(string) string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s (%s)", n, doc(n))
	}
	return strings.Join(parts, ", ")
}

// GroupRates resolves a stage's learning rates onto the model's layer
// groups (in network order, head last). Frozen groups get no entry.
func (s *Stage) GroupRates(groups []string) (map[string]float64, error) {
	known := map[string]bool{}
	for _, g := range groups {
		known[g] = true
	}
	for _, f := range s.Frozen {
		if !known[f] {
			return nil, fmt.Errorf("stage %s: frozen group %q is not one of %s", s.Name, f, strings.Join(groups, ", "))
		}
	}
	out := map[string]float64{}
	if len(s.LRGroups) > 0 {
		for i, gs := range s.LRGroups {
			for _, g := range gs {
				if !known[g] {
					return nil, fmt.Errorf("stage %s: lr_groups names %q, not one of %s", s.Name, g, strings.Join(groups, ", "))
				}
				out[g] = s.LR[i]
			}
		}
		for _, g := range groups {
			if _, ok := out[g]; !ok && !s.isFrozen(g) {
				return nil, fmt.Errorf("stage %s: trainable group %q has no rate in lr_groups", s.Name, g)
			}
		}
	} else {
		n := len(s.LR)
		if n == 1 {
			for _, g := range groups {
				out[g] = s.LR[0]
			}
		} else {
			// Default split over trainable groups: head gets the last rate,
			// the body is cut into n-1 contiguous runs, earlier runs slower.
			var body []string
			head := groups[len(groups)-1]
			for _, g := range groups[:len(groups)-1] {
				if !s.isFrozen(g) {
					body = append(body, g)
				}
			}
			if len(body) < n-1 {
				return nil, fmt.Errorf("stage %s: %d rates for %d trainable body groups and the head", s.Name, n, len(body))
			}
			for i, g := range body {
				out[g] = s.LR[i*(n-1)/len(body)]
			}
			out[head] = s.LR[n-1]
		}
	}
	for _, f := range s.Frozen {
		delete(out, f)
	}
	return out, nil
}

func (s *Stage) isFrozen(g string) bool {
	for _, f := range s.Frozen {
		if f == g {
			return true
		}
	}
	return false
}
