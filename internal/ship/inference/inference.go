// Package inference predicts labels for new images with a trained model,
// whatever form the model comes in: a training run directory
// (RUN/fold<K>), the output of imet cv (every fold's model, their
// probabilities averaged), one checkpoint file, or an inference bundle
// written by Export. Open finds out which, and gathers in one Predictor
// everything prediction needs: the network and its weights, the
// preprocessing and TTA views, the label set, the threshold rules, and the
// engine settings (batch size, threads, precision, layout) the model was
// validated with. Prediction runs on the CPU or on a GPU (Options.Device)
// whatever device trained the model.
//
// Prediction goes through train.Predict, the function training uses for
// its out-of-fold and test predictions, so the same weights on the same
// images give bit-identical probabilities here, in a run's test_fold<K>.npy
// and in a bundle on another machine (on the same kind of device, with the
// same thread count and batch size).
//
// A bundle is a folder (see docs/predict.md):
//
//	imet, lib/, manifest.json    the binary and its libraries (internal/ship/bundle)
//	inference.json               Spec: architecture, head, preprocessing, files
//	pipelines.yaml               the preprocessing pipeline, spelled out
//	weights/fold<K>.tensors      each model's weights (internal/engine/torch named tensors)
//	labels.csv                   the label set
//	thresholds.json              the decision rules (internal/postprocess/thresholds)
//	train-config.yaml            the training recipe, for the record
package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"imet/internal/base/config"
	"imet/internal/base/snippet"
	"imet/internal/data/dataset"
	"imet/internal/engine/torch"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/fbeta"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/submission"
	"imet/internal/postprocess/thresholds"
	"imet/internal/ship/bundle"
	"imet/internal/training/checkpoint"
	"imet/internal/training/plan"
	"imet/internal/training/train"
	"imet/internal/training/trainconfig"
	"imet/internal/vision/loader"
	"imet/internal/vision/pipeline"
	"imet/internal/zoo/models"
)

// SpecFormat identifies an inference.json this package reads.
const SpecFormat = "imet-inference/1"

// Names of the files of a bundle besides the binary, libraries and manifest.
const (
	SpecName       = "inference.json"
	PipelinesName  = "pipelines.yaml"
	LabelsName     = "labels.csv"
	ThresholdsName = "thresholds.json"
	ConfigName     = "train-config.yaml"
	WeightsDir     = "weights"
)

// Spec is a bundle's inference.json: how to rebuild the network and
// prepare its input. File names are relative to the bundle.
type Spec struct {
	Format string `json:"format"`
	// Arch names the architecture in the model zoo (internal/zoo/models).
	Arch       string  `json:"arch"`
	NumClasses int     `json:"num_classes"`
	Pool       string  `json:"pool"`
	Features   string  `json:"features"`
	Dropout    float64 `json:"dropout"`
	// Variant is the architecture variant (models.Options.Variant).
	Variant string `json:"variant,omitempty"`
	// Pipeline names the preprocessing pipeline, defined in
	// PipelinesFile; TTA "none" keeps only its plain evaluation view.
	Pipeline      string `json:"pipeline"`
	PipelinesFile string `json:"pipelines_file"`
	TTA           string `json:"tta"`
	// Seed drives stochastic TTA draws, as in training.
	Seed int64 `json:"seed"`
	// Weights lists one weight file per model; with several (the folds of
	// a cross-validation), their probabilities are averaged.
	Weights    []string `json:"weights"`
	Labels     string   `json:"labels"`
	Thresholds string   `json:"thresholds"`
	// BatchSize, Threads, Precision and ChannelsLast are the engine
	// settings the model was validated with; predicting with the same ones
	// reproduces training's probabilities bit for bit on CPU. Precision is
	// fp32, bf16 or fp16 (empty: fp32); fp16 autocast exists on GPUs only,
	// so a CPU predicts an fp16 model in fp32.
	BatchSize    int    `json:"batch_size"`
	Threads      int    `json:"threads"`
	Precision    string `json:"precision,omitempty"`
	ChannelsLast bool   `json:"channels_last,omitempty"`
	// BF16 is how bundles written before Precision said bf16; OpenBundle
	// turns it into Precision.
	BF16 bool `json:"bf16,omitempty"`
	// Source records what the bundle was exported from.
	Source string `json:"source"`
	// Parts, in the bundle of an ensemble plan (imet cv --plan), are its
	// cross-validations, each predicting as a bundle of its own would;
	// Ensemble says how their probabilities are combined. The fields
	// above then describe the whole: Arch lists the parts' architectures.
	Parts    []Spec        `json:"parts,omitempty"`
	Ensemble *EnsembleSpec `json:"ensemble,omitempty"`
}

// Predictor holds a loaded model (or several, averaged) with everything
// needed to turn images into probabilities and a submission.
type Predictor struct {
	Spec       Spec
	Labels     *dataset.Labels
	Thresholds *thresholds.File
	Pipeline   *pipeline.Pipeline
	// Origin is what was opened; Kind is "bundle", "run", "cv" or
	// "checkpoint".
	Origin, Kind string

	models       []models.Model
	parts        []*Predictor // an ensemble plan's cross-validations (plan.go)
	reference    *probs.File  // the rank method's quantile reference
	pipelineSpec pipeline.Spec
	labelsPath   string
	configPath   string // training recipe, when known
}

// Options steer Predict. Zero values take the Predictor's Spec.
type Options struct {
	BatchSize int
	Threads   int
	Workers   int // image decoding goroutines (0: one per core)
	// Device runs the networks on the CPU (the zero value) or a GPU; the
	// weights move there before the first batch.
	Device torch.Device
	// TTA "none" predicts the plain evaluation view only; "" keeps the
	// pipeline's views.
	TTA string
	// Progress, when set, is called after each batch with the images done
	// over all models and views, and the total.
	Progress func(done, total int)
	// SkipBroken leaves images that do not decode out instead of stopping
	// at the first: their probability rows are zero. OnBroken, when set,
	// is told of each once (from a loader goroutine).
	SkipBroken bool
	OnBroken   func(path string, err error)
}

// Models is the number of networks whose probabilities are averaged.
func (p *Predictor) Models() int {
	n := len(p.models)
	for _, q := range p.parts {
		n += q.Models()
	}
	return n
}

// LabelIDs are the attribute ids of the probability columns, as strings.
func (p *Predictor) LabelIDs() []string {
	ids := make([]string, p.Labels.Len())
	for i, id := range p.Labels.IDs {
		ids[i] = strconv.Itoa(id)
	}
	return ids
}

// Open loads a predictor from path: an inference bundle folder (holding
// inference.json), a run directory of imet train (holding run.json), the
// output folder of imet cv (fold<K>/ run directories, thresholds.json), or
// a checkpoint file inside a run directory.
func Open(path string) (*Predictor, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !fi.IsDir() {
		return openCheckpoint(path)
	}
	switch {
	case exists(filepath.Join(path, SpecName)):
		return OpenBundle(path)
	case exists(filepath.Join(path, bundle.ManifestName)):
		return nil, fmt.Errorf("%s: no %s: a bundle of the binary only, not an inference bundle (write one with imet export)", path, filepath.Join(path, SpecName))
	case exists(filepath.Join(path, "run.json")):
		return openRuns(path, []string{path}, "run")
	case exists(filepath.Join(path, plan.ManifestName)):
		return openPlan(path)
	}
	folds, _ := filepath.Glob(filepath.Join(path, "fold*", "run.json"))
	if len(folds) == 0 {
		return nil, fmt.Errorf("%s: not a bundle (%s), a run directory (run.json) or an imet cv output (fold*/run.json)", path, SpecName)
	}
	var dirs []string
	for _, f := range folds {
		dirs = append(dirs, filepath.Dir(f))
	}
	sort.Strings(dirs)
	return openRuns(path, dirs, "cv")
}

// FindBundle reports the bundle the running binary belongs to: the folder
// of the executable, when it holds manifest.json and inference.json.
func FindBundle() (string, bool) {
	exe, err := os.Executable()
	if err != nil {
		return "", false
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	dir := filepath.Dir(exe)
	if exists(filepath.Join(dir, bundle.ManifestName)) && exists(filepath.Join(dir, SpecName)) {
		return dir, true
	}
	return "", false
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// OpenBundle loads an inference bundle written by Export. Every file of
// it, the binary and the libraries under lib/ included, is first checked
// against the manifest (bundle.Verify), so a damaged or tampered copy is
// named rather than predicted from; the engine's libraries are loaded only
// at the first tensor operation, after this check. A folder without a
// manifest is refused: it could not be checked.
func OpenBundle(dir string) (*Predictor, error) {
	specPath := filepath.Join(dir, SpecName)
	data, err := os.ReadFile(specPath)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if !exists(filepath.Join(dir, bundle.ManifestName)) {
		return nil, fmt.Errorf("bundle %s: no %s, so its files cannot be verified; export it again with imet export", dir, bundle.ManifestName)
	}
	if err := bundle.Verify(dir); err != nil {
		return nil, err
	}
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", specPath, err)
	}
	if s.Format != SpecFormat {
		return nil, fmt.Errorf("%s: format %s, this imet reads %q", specPath, snippet.Quote(s.Format), SpecFormat)
	}
	if len(s.Parts) > 0 {
		return openPlanBundle(dir, specPath, s)
	}
	return bundlePredictor(dir, specPath, s, true)
}

// bundlePredictor builds the predictor of one bundle spec; an ensemble
// plan's part carries no thresholds of its own (withThresholds false).
func bundlePredictor(dir, specPath string, s Spec, withThresholds bool) (*Predictor, error) {
	var err error
	if len(s.Weights) == 0 {
		return nil, fmt.Errorf("%s: no weight files listed", specPath)
	}
	if s.BF16 {
		if s.Precision != "" && s.Precision != trainconfig.PrecisionBF16 {
			return nil, fmt.Errorf("%s: bf16 (the old key) is true but precision is %s", specPath, s.Precision)
		}
		s.Precision, s.BF16 = trainconfig.PrecisionBF16, false
	}
	switch s.Precision {
	case "":
		s.Precision = trainconfig.PrecisionFP32
	case trainconfig.PrecisionFP32, trainconfig.PrecisionBF16, trainconfig.PrecisionFP16:
	default:
		return nil, fmt.Errorf("%s: precision %s: want fp32, bf16 or fp16", specPath, snippet.Quote(s.Precision))
	}
	in := func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }
	p := &Predictor{Spec: s, Origin: dir, Kind: "bundle", labelsPath: in(s.Labels)}
	if s.PipelinesFile == "" {
		return nil, fmt.Errorf("%s: no pipelines_file", specPath)
	}
	if p.Pipeline, p.pipelineSpec, err = resolvePipeline(s.Pipeline, in(s.PipelinesFile), s.TTA); err != nil {
		return nil, err
	}
	if p.Labels, err = dataset.ReadLabels(p.labelsPath); err != nil {
		return nil, err
	}
	if p.Labels.Len() != s.NumClasses {
		return nil, fmt.Errorf("%s: %d labels, but %s says the model has %d outputs", p.labelsPath, p.Labels.Len(), specPath, s.NumClasses)
	}
	if withThresholds {
		if p.Thresholds, err = thresholds.ReadFile(in(s.Thresholds)); err != nil {
			return nil, err
		}
		if err := p.Thresholds.Check(p.LabelIDs(), p.Labels.Groups, p.Labels.GroupOf); err != nil {
			return nil, fmt.Errorf("%s: %w", in(s.Thresholds), err)
		}
	}
	if exists(in(ConfigName)) {
		p.configPath = in(ConfigName)
	}
	for _, w := range s.Weights {
		m, err := p.newModel()
		if err != nil {
			return nil, err
		}
		if err := loadTensorFile(m, in(w)); err != nil {
			return nil, err
		}
		p.models = append(p.models, m)
	}
	return p, nil
}

// resolvePipeline builds the named pipeline from file (or the built-ins
// when file is empty) and returns its spec too, for export.
func resolvePipeline(name, file, tta string) (*pipeline.Pipeline, pipeline.Spec, error) {
	var cfg *pipeline.Config
	if file != "" {
		var err error
		if cfg, err = pipeline.LoadConfig(file); err != nil {
			return nil, pipeline.Spec{}, err
		}
	}
	var spec pipeline.Spec
	ok := false
	if cfg != nil {
		spec, ok = cfg.Pipelines[name]
	}
	if !ok {
		spec, ok = pipeline.Builtin()[name]
	}
	if !ok {
		where := "the built-in pipelines"
		if file != "" {
			where = file + " or the built-in pipelines"
		}
		return nil, spec, fmt.Errorf("pipeline %q is not in %s", name, where)
	}
	p, err := pipeline.Build(name, spec)
	if err != nil {
		return nil, spec, err
	}
	if tta == "none" {
		p.TTA = p.TTA[:1]
	}
	return p, spec, nil
}

func (p *Predictor) newModel() (models.Model, error) {
	s := &p.Spec
	return models.New(s.Arch, models.Options{NumClasses: s.NumClasses, Pool: s.Pool, Features: s.Features, Dropout: s.Dropout, Variant: s.Variant})
}

// tensorSource yields a stored tensor by name: dtype name, shape, bytes.
type tensorSource func(name string) (dtype string, shape []int64, data []byte, ok bool)

// assign copies every variable of m from src, checking names, dtypes and
// shapes; file names the source in errors. Tensors src holds that m does
// not use are not looked at (a checkpoint also holds optimizer state).
func assign(m models.Model, src tensorSource, file string) error {
	vars := m.Store().Vars()
	data := make([][]byte, len(vars))
	for i, v := range vars {
		dt, shape, b, ok := src(v.Name)
		if !ok {
			return fmt.Errorf("%s: no tensor %s", file, v.Name)
		}
		want := v.T.Shape()
		same := len(shape) == len(want)
		for i := 0; same && i < len(want); i++ {
			same = shape[i] == int64(want[i])
		}
		if !same || dt != v.T.DType().String() {
			return fmt.Errorf("%s: tensor %s is %s %v, the model's is %s %v", file, v.Name, dt, shape, v.T.DType(), want)
		}
		data[i] = b
	}
	return torch.Catch(func() {
		torch.NoGrad(func() {
			for i, v := range vars {
				t := torch.FromBytes(data[i], v.T.DType(), v.T.Shape()...)
				v.T.CopyFrom(t)
				t.Free()
			}
		})
	})
}

// loadTensorFile loads a named-tensor file (torch.Save) into m; every
// tensor in the file must belong to the model.
func loadTensorFile(m models.Model, path string) error {
	var ts map[string]*torch.Tensor
	var err error
	if cerr := torch.Catch(func() { ts, err = torch.Load(path) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	defer func() {
		for _, t := range ts {
			t.Free()
		}
	}()
	for name := range ts {
		if m.Store().Var(name) == nil {
			return fmt.Errorf("%s: tensor %s is not a parameter of the model", path, name)
		}
	}
	return assign(m, func(name string) (string, []int64, []byte, bool) {
		t, ok := ts[name]
		if !ok {
			return "", nil, nil, false
		}
		var sh []int64
		for _, d := range t.Shape() {
			sh = append(sh, int64(d))
		}
		return t.DType().String(), sh, t.Bytes(), true
	}, path)
}

// openCheckpoint loads one checkpoint file of a run directory
// (RUN/checkpoints/step-N.ckpt), whose configuration is RUN/config.yaml.
func openCheckpoint(path string) (*Predictor, error) {
	runDir := filepath.Dir(filepath.Dir(path))
	cfgPath := filepath.Join(runDir, "config.yaml")
	if !exists(cfgPath) {
		return nil, fmt.Errorf("%s: a checkpoint must sit in RUN/checkpoints/ with RUN/config.yaml beside it; %s not found", path, cfgPath)
	}
	cfg, err := trainconfig.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	p, err := fromConfig(&cfg, cfgPath, path, "checkpoint")
	if err != nil {
		return nil, err
	}
	c, err := checkpoint.Read(path)
	if err != nil {
		return nil, err
	}
	m, err := p.loadCheckpoint(&cfg, c, path)
	if err != nil {
		return nil, err
	}
	p.models = []models.Model{m}
	p.Thresholds, err = globalRule(p.Labels, []float64{c.State.Threshold}, c.State.BestF2)
	return p, err
}

// fromConfig fills a predictor's spec, pipeline and labels from a run's
// configuration.
func fromConfig(cfg *trainconfig.Run, cfgPath, origin, kind string) (*Predictor, error) {
	if len(cfg.Data.Labels) > 0 {
		// Its outputs are columns of a subset, which every consumer of a
		// predictor (thresholds, submission, bundle) reads as the full set.
		return nil, fmt.Errorf("%s: a specialist on data.labels %v: its cross-validation writes oof.npy and test.npy; imet merge them into a full model's and submit from there (a predictor and a bundle hold a model of every label)", origin, cfg.Data.Labels)
	}
	p := &Predictor{Origin: origin, Kind: kind, configPath: cfgPath}
	p.labelsPath = filepath.Join(cfg.Data.Root, "labels.csv")
	var err error
	if p.Labels, err = dataset.ReadLabels(p.labelsPath); err != nil {
		return nil, fmt.Errorf("the run's label set: %w", err)
	}
	p.Spec = Spec{Format: SpecFormat, Arch: cfg.Model.Arch, NumClasses: p.Labels.Len(), Pool: cfg.Model.Pool,
		Features: cfg.Model.Features, Dropout: cfg.Model.Dropout, Variant: cfg.Model.Variant, Pipeline: cfg.Data.Pipeline, TTA: cfg.Data.TTA,
		Seed: cfg.Seed, BatchSize: cfg.Validation.BatchSize, Threads: cfg.Engine.Threads, Precision: cfg.Engine.Precision,
		ChannelsLast: cfg.Engine.ChannelsLast, Source: origin}
	if p.Pipeline, p.pipelineSpec, err = resolvePipeline(cfg.Data.Pipeline, cfg.Data.PipelinesFile, cfg.Data.TTA); err != nil {
		return nil, err
	}
	return p, nil
}

// loadCheckpoint builds the network and loads a checkpoint's weights into
// it: the EMA weights when the recipe kept them, as training predicts with.
func (p *Predictor) loadCheckpoint(cfg *trainconfig.Run, c *checkpoint.Checkpoint, path string) (models.Model, error) {
	m, err := p.newModel()
	if err != nil {
		return nil, err
	}
	prefix := "model/"
	if cfg.EMA.Enabled {
		prefix = "ema/"
	}
	err = assign(m, func(name string) (string, []int64, []byte, bool) {
		t, ok := c.Tensors[prefix+name]
		return t.DType, t.Shape, t.Data, ok
	}, path)
	return m, err
}

// openRuns loads the best checkpoint of each run directory (one fold each)
// with the run's configuration; origin is what the user named.
func openRuns(origin string, dirs []string, kind string) (*Predictor, error) {
	var p *Predictor
	var cfg0 trainconfig.Run
	var ths []float64
	var f2 float64
	for i, dir := range dirs {
		cfgPath := filepath.Join(dir, "config.yaml")
		cfg, err := trainconfig.Load(cfgPath)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if p, err = fromConfig(&cfg, cfgPath, origin, kind); err != nil {
				return nil, err
			}
			cfg0 = cfg
		} else if d := trainconfig.Diff(cfg0.Fingerprint(), cfg.Fingerprint()); len(d) > 0 {
			return nil, fmt.Errorf("%s: the folds were trained with different recipes (%s and %s differ: %s)", origin, dirs[0], dir, strings.Join(d, "; "))
		}
		// Training writes the fold's OOF probabilities last: without them
		// the run stopped early, and its best checkpoint may be far from
		// what the finished run would give.
		if !exists(train.OOFPath(dir, runFold(dir))) {
			return nil, fmt.Errorf("%s: training has not finished (no %s); resume it with imet train --resume %s, or name a checkpoint file to predict with it anyway", dir, filepath.Base(train.OOFPath(dir, runFold(dir))), dir)
		}
		d := checkpoint.Dir{Path: filepath.Join(dir, "checkpoints")}
		ix, err := d.ReadIndex()
		if err != nil {
			return nil, err
		}
		name := ix.Best
		if name == "" {
			name = ix.Latest
		}
		if name == "" {
			return nil, fmt.Errorf("%s: no checkpoint yet (%s missing or empty)", dir, filepath.Join(d.Path, "index.json"))
		}
		ckPath := filepath.Join(d.Path, name)
		c, err := checkpoint.Read(ckPath)
		if err != nil {
			return nil, err
		}
		m, err := p.loadCheckpoint(&cfg, c, ckPath)
		if err != nil {
			return nil, err
		}
		p.models = append(p.models, m)
		ths = append(ths, c.State.Threshold)
		f2 += c.State.BestF2 / float64(len(dirs))
	}
	th := filepath.Join(origin, ThresholdsName)
	if kind == "cv" && exists(th) {
		f, err := thresholds.ReadFile(th)
		if err != nil {
			return nil, err
		}
		if err := f.Check(p.LabelIDs(), p.Labels.Groups, p.Labels.GroupOf); err != nil {
			return nil, fmt.Errorf("%s: %w", th, err)
		}
		p.Thresholds = f
		return p, nil
	}
	var err error
	p.Thresholds, err = globalRule(p.Labels, ths, f2)
	return p, err
}

// runFold is the fold a run directory trained, from its run.json (-1 when
// unreadable, which then names a file that does not exist).
func runFold(dir string) int {
	var ri struct {
		Fold int `json:"fold"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil || json.Unmarshal(data, &ri) != nil {
		return -1
	}
	return ri.Fold
}

// globalRule is the threshold file of one global threshold: the mean of
// the ones training chose on each fold's validation rows, scoring f2.
func globalRule(l *dataset.Labels, ths []float64, f2 float64) (*thresholds.File, error) {
	var t float64
	for _, x := range ths {
		t += x / float64(len(ths))
	}
	if !(t > 0 && t < 1) {
		return nil, fmt.Errorf("the checkpoint records no validation threshold (%g); name a threshold file", t)
	}
	rule := thresholds.Rule{Thresholds: make([]float64, l.Len()), AtLeastOne: true}
	for i := range rule.Thresholds {
		rule.Thresholds[i] = t
	}
	ids := make([]string, l.Len())
	for i, id := range l.IDs {
		ids[i] = strconv.Itoa(id)
	}
	return &thresholds.File{Version: thresholds.FileVersion, Use: thresholds.Global, Beta: 2, EmptyRows: fbeta.Default().BothEmpty.String(),
		Labels: ids, Groups: l.Groups, LabelGroups: l.GroupOf,
		Rules: []thresholds.Result{{Name: thresholds.Global, Score: f2, Rule: rule}}}, nil
}

// UseThresholds replaces the predictor's threshold rules by a file's,
// after checking it was made for the same label columns.
func (p *Predictor) UseThresholds(path string) error {
	f, err := thresholds.ReadFile(path)
	if err != nil {
		return err
	}
	if err := f.Check(p.LabelIDs(), p.Labels.Groups, p.Labels.GroupOf); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	p.Thresholds = f
	return nil
}

// Precision is the precision the models run in on dev: the one they were
// validated with, except that fp16, which only GPUs autocast to, runs in
// fp32 on the CPU.
func (p *Predictor) Precision(dev torch.Device) string {
	if p.Spec.Precision == trainconfig.PrecisionFP16 && !dev.IsCUDA() {
		return trainconfig.PrecisionFP32
	}
	if p.Spec.Precision == "" {
		return trainconfig.PrecisionFP32
	}
	return p.Spec.Precision
}

// Predict returns the probabilities of the images at paths (rows named
// ids), each model's TTA views averaged, then the models averaged
// (ensemble.Mean). It must run on one goroutine, which it pins to its OS
// thread for libtorch.
func (p *Predictor) Predict(ctx context.Context, paths, ids []string, o Options) (*probs.File, error) {
	if p.parts != nil {
		return p.predictParts(ctx, paths, ids, o)
	}
	ins, err := p.forward(ctx, paths, ids, o, false)
	if err != nil {
		return nil, err
	}
	if len(ins) == 1 {
		return ins[0].File, nil
	}
	return ensemble.Combine(ins, ensemble.Mean, nil)
}

// Embed returns, per model, the penultimate-layer embeddings of the images
// at paths (rows named ids, columns the width of the model's last hidden
// layer, no labels sidecar), each averaged over the TTA views like the
// probabilities. Models are not averaged: each fold's model embeds images
// in its own space, and an out-of-fold neighbour search must query fold k's
// images in the space of the model that did not train on them.
func (p *Predictor) Embed(ctx context.Context, paths, ids []string, o Options) ([]*probs.File, error) {
	if p.parts != nil {
		// Each part's models embed in spaces of their own widths: embed
		// from a part's own run directory instead.
		return nil, errors.New("predict: embeddings of an ensemble plan: embed from one of its parts (DIR/parts/NAME)")
	}
	ins, err := p.forward(ctx, paths, ids, o, true)
	if err != nil {
		return nil, err
	}
	out := make([]*probs.File, len(ins))
	for i, in := range ins {
		out[i] = in.File
	}
	return out, nil
}

func (p *Predictor) forward(ctx context.Context, paths, ids []string, o Options, embed bool) ([]ensemble.Input, error) {
	if len(paths) != len(ids) {
		return nil, fmt.Errorf("predict: %d paths for %d ids", len(paths), len(ids))
	}
	if len(paths) == 0 {
		return nil, errors.New("predict: no images")
	}
	if err := torch.CheckDevice(o.Device); err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	threads := o.Threads
	if threads == 0 {
		threads = p.Spec.Threads
	}
	unlock := torch.LockThread(threads)
	defer unlock()
	bs := o.BatchSize
	if bs == 0 {
		bs = p.Spec.BatchSize
	}
	pipe := p.Pipeline
	switch o.TTA {
	case "":
	case "none":
		cp := *pipe
		cp.TTA = pipe.TTA[:1]
		pipe = &cp
	default:
		return nil, fmt.Errorf("predict: tta %q: want none or empty", o.TTA)
	}
	L := p.Labels.Len()
	items := make([]loader.Item, len(paths))
	for i, path := range paths {
		items[i] = loader.Item{Path: path, Target: make([]float32, L)}
	}
	broken := &train.BrokenImages{OnReport: o.OnBroken}
	lo := loader.Options{Workers: o.Workers, Seed: uint64(p.Spec.Seed), SkipBroken: o.SkipBroken}
	if o.SkipBroken {
		lo.OnSkip = broken.Report
	}
	src := train.NewImageSource(items, pipe, lo, L)
	src.SetBrokenHint("predict with --skip-broken to leave broken images out (each reported once, its row predicting no label), or list them all first with imet datasets validate --decode")
	total := len(paths) * src.Views() * len(p.models)
	labels := p.LabelIDs()
	var ins []ensemble.Input
	for k, m := range p.models {
		m.Store().Train(false)
		if err := m.Store().To(o.Device); err != nil {
			return nil, fmt.Errorf("predict: model %d to %v: %w", k, o.Device, err)
		}
		if p.Spec.ChannelsLast {
			if err := m.Store().ChannelsLast(); err != nil {
				return nil, fmt.Errorf("predict: model %d channels-last: %w", k, err)
			}
		}
		po := train.PredictOptions{Views: src.Views(), BatchSize: bs, Device: o.Device, Precision: p.Precision(o.Device),
			ChannelsLast: p.Spec.ChannelsLast}
		cols, colIDs := L, labels
		if embed {
			e, ok := m.(models.Embedder)
			if !ok {
				return nil, fmt.Errorf("predict: model %d (%s) cannot stop before its classifier: no embeddings", k, p.Spec.Arch)
			}
			po.Embed, po.EmbedDim = e.Embed, e.EmbedDim()
			cols, colIDs = po.EmbedDim, nil
		}
		if o.Progress != nil {
			base := k * len(paths) * src.Views()
			po.OnBatch = func(done, _ int) { o.Progress(base+done, total) }
		}
		out, _, err := train.Predict(ctx, m, src, po)
		if err != nil {
			return nil, err
		}
		f := &probs.File{Matrix: &probs.Matrix{Rows: len(paths), Cols: cols, Data: out}, IDs: ids, Labels: colIDs}
		ins = append(ins, ensemble.Input{Name: fmt.Sprintf("model %d", k), File: f})
	}
	return ins, nil
}

// WriteSubmission applies the named threshold rule (the file's chosen one
// when empty) to f and writes submission.csv at path; every row gets at
// least one label.
func (p *Predictor) WriteSubmission(path string, f *probs.File, rule string) (submission.Stats, error) {
	r, err := p.Thresholds.Rule(rule)
	if err != nil {
		return submission.Stats{}, err
	}
	pred, err := submission.Predict(f.Matrix, r, p.Labels.GroupOf, len(p.Labels.Groups), submission.Options{})
	if err != nil {
		return submission.Stats{}, err
	}
	if err := submission.Write(path, f.IDs, f.Labels, pred); err != nil {
		return submission.Stats{}, err
	}
	return submission.Summarise(pred, p.Labels.GroupOf, len(p.Labels.Groups)), nil
}

// imageExts are the file types ListImages picks up.
var imageExts = []string{".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}

// ListImages lists the image files of dir (not its subfolders), sorted by
// name, with their ids: the file name without its extension, as in the
// iMet test folder.
func ListImages(dir string) (paths, ids []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("images: %w", err)
	}
	seen := map[string]string{}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || !slices.Contains(imageExts, ext) {
			continue
		}
		id := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
		if prev, dup := seen[id]; dup {
			return nil, nil, fmt.Errorf("images: %s and %s in %s have the same id %s", prev, e.Name(), dir, id)
		}
		seen[id] = e.Name()
		paths = append(paths, filepath.Join(dir, e.Name()))
		ids = append(ids, id)
	}
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("images: no image files (%s) in %s", strings.Join(imageExts, ", "), dir)
	}
	return paths, ids, nil
}

// Export writes an inference bundle of the predictor to dir: binary (an
// imet built with -ldflags=bundle.BuildFlag) with its libraries through
// bundle.Write, the loaded libimettorch.so with the libtorch under it, and
// the files listed in the package comment. Like
// bundle.Write it replaces dir only once everything is written and checked.
func (p *Predictor) Export(dir, binary string) (*bundle.Manifest, error) {
	tmp, err := os.MkdirTemp("", "imet-export-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if p.parts != nil {
		return p.exportParts(dir, binary, tmp)
	}
	s := p.Spec
	s.Format = SpecFormat
	s.PipelinesFile, s.Labels, s.Thresholds = PipelinesName, LabelsName, ThresholdsName
	s.Source = p.Origin
	if p.Kind == "bundle" {
		s.Source = p.Spec.Source
	}
	s.Weights = nil
	var files []bundle.File
	for k, m := range p.models {
		name := fmt.Sprintf("%s/fold%d.tensors", WeightsDir, k)
		src := filepath.Join(tmp, fmt.Sprintf("w%d", k))
		if err := torch.Save(src, m.Store().StateDict()); err != nil {
			return nil, fmt.Errorf("export weights: %w", err)
		}
		s.Weights = append(s.Weights, name)
		files = append(files, bundle.File{Name: name, Source: src})
	}
	specData, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	pipes, err := config.Marshal(pipeline.Config{Pipelines: map[string]pipeline.Spec{s.Pipeline: p.pipelineSpec}})
	if err != nil {
		return nil, fmt.Errorf("export pipeline: %w", err)
	}
	th := filepath.Join(tmp, ThresholdsName)
	if err := thresholds.WriteFile(th, p.Thresholds); err != nil {
		return nil, err
	}
	lp := filepath.Join(tmp, LabelsName)
	if err := dataset.WriteLabels(lp, p.Labels); err != nil {
		return nil, err
	}
	files = append(files,
		bundle.File{Name: SpecName, Data: append(specData, '\n')},
		bundle.File{Name: PipelinesName, Data: pipes},
		bundle.File{Name: ThresholdsName, Source: th},
		bundle.File{Name: LabelsName, Source: lp})
	if p.configPath != "" {
		files = append(files, bundle.File{Name: ConfigName, Source: p.configPath})
	}
	// The engine travels as the shim this process loaded, with the libtorch
	// it was built against: the bundle predicts on the libtorch it was
	// verified with.
	if err := torch.Available(); err != nil {
		return nil, err
	}
	return bundle.Write(dir, binary, files, torch.ShimPath())
}
