// Package demo prepares the main job that `make demo` runs: the embedded
// synthetic sample in iMet layout, its folds, the recipe that fine-tunes
// the ImageNet-started MobileNetV2 of npm nsfwjs and the same network's
// from-scratch baseline, and scores a submission against the sample's
// clean labels, which no real competition gives (the train labels carry
// iMet-like annotator noise).
package demo

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"imet/internal/base/atomicfile"
	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/data/synth"
	"imet/internal/postprocess/fbeta"
	"imet/internal/zoo/models"
)

//go:embed recipe.yaml.tmpl
var recipeTemplate string

//go:embed pipelines.yaml.tmpl
var pipelinesTemplate string

// Options size the demo. The zero value of a field takes its default.
type Options struct {
	Out   string // everything goes under here
	Data  string // an iMet-layout data set; empty: the synthetic sample under Out/data
	Synth synth.Config
	Folds int // default 2
	// Epochs is the length of the fine-tuning stage that follows the
	// one-epoch head stage; the baseline trains Epochs+1 (default 3).
	Epochs int
	// Size is the square side images are resized to (default 112).
	Size int
	// Assets is the npm assets directory holding nsfwjs (default: see
	// nsfwjsDir).
	Assets string
	// Scratch also writes the from-scratch baseline's recipe.
	// Device is the recipe's engine.device (cpu, cuda, cuda:N); empty: cpu.
	Device  string
	Scratch bool
	Seed    int64
	Log     io.Writer
}

// Prepared is what Prepare leaves on disk.
type Prepared struct {
	Data      string // data set directory
	Recipe    string // run configuration for imet cv: the fine-tuning
	Scratch   string // the baseline's, when asked for
	Weights   string // the nsfwjs MobileNetV2 the recipe starts from
	Generated bool   // the synthetic sample was generated now
}

// Prepare makes sure the data set, its folds.csv and the recipe exist,
// generating the synthetic sample when no data set is given. Files already
// there are kept, so a second demo reuses the sample.
func Prepare(o Options) (*Prepared, error) {
	if o.Folds == 0 {
		o.Folds = 2
	}
	if o.Epochs == 0 {
		o.Epochs = 3
	}
	if o.Size == 0 {
		o.Size = 112
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	p := &Prepared{Data: o.Data}
	if p.Data == "" {
		p.Data = filepath.Join(o.Out, "data")
		if _, err := os.Stat(filepath.Join(p.Data, "train.csv")); err != nil {
			cfg := o.Synth
			if cfg.Train == 0 {
				cfg = synth.Default()
			}
			fmt.Fprintf(o.Log, "generating the synthetic sample (%d train, %d test images) in %s\n", cfg.Train, cfg.Test, p.Data)
			if _, err := synth.Generate(p.Data, cfg, false); err != nil {
				return nil, err
			}
			p.Generated = true
		}
	}
	abs, err := filepath.Abs(p.Data)
	if err != nil {
		return nil, err
	}
	p.Data = abs
	foldsPath := filepath.Join(p.Data, "folds.csv")
	if _, err := os.Stat(foldsPath); err != nil {
		ds, err := dataset.Open(p.Data, dataset.Options{SkipImages: true})
		if err != nil {
			return nil, err
		}
		labels := make([][]int, len(ds.Train))
		ids := make([]string, len(ds.Train))
		for i, r := range ds.Train {
			labels[i], ids[i] = r.Labels, r.ID
		}
		fold, err := folds.Stratify(labels, ds.Labels.Len(), o.Folds, uint64(o.Seed))
		if err != nil {
			return nil, err
		}
		if err := folds.Write(foldsPath, ids, fold); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "wrote %s (%d folds, iterative stratification)\n", foldsPath, o.Folds)
	}
	if p.Weights, err = nsfwjsDir(o.Assets); err != nil {
		return nil, err
	}
	vars := map[string]any{"Seed": o.Seed, "Data": p.Data, "Epochs": o.Epochs, "ScratchEpochs": o.Epochs + 1,
		"Device": o.Device, "Size": o.Size, "Pretrained": p.Weights}
	pipes := filepath.Join(o.Out, "pipelines.yaml")
	if err := write(pipes, pipelinesTemplate, vars); err != nil {
		return nil, err
	}
	vars["Pipelines"] = pipes
	p.Recipe = filepath.Join(o.Out, "recipe.yaml")
	if err := write(p.Recipe, recipeTemplate, vars); err != nil {
		return nil, err
	}
	if o.Scratch {
		vars["Pretrained"] = ""
		p.Scratch = filepath.Join(o.Out, "recipe-scratch.yaml")
		if err := write(p.Scratch, recipeTemplate, vars); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func write(path, tmpl string, vars map[string]any) error {
	var buf bytes.Buffer
	if err := template.Must(template.New(filepath.Base(path)).Parse(tmpl)).Execute(&buf, vars); err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, buf.Bytes(), 0o644)
}

// nsfwjsDir finds the nsfwjs MobileNetV2 (scripts/assets.sh installs it):
// under assets when given, else $IMET_ASSETS, else .cache/npm/node_modules
// in the working directory or one above it (a checkout's root), or above
// the executable's folder (bin/imet in a checkout).
func nsfwjsDir(assets string) (string, error) {
	var tried []string
	try := []string{assets}
	if assets == "" {
		try = []string{os.Getenv("IMET_ASSETS")}
		if wd, err := os.Getwd(); err == nil {
			for d := wd; ; d = filepath.Dir(d) {
				try = append(try, filepath.Join(d, ".cache", "npm", "node_modules"))
				if filepath.Dir(d) == d {
					break
				}
			}
		}
		if exe, err := os.Executable(); err == nil {
			try = append(try, filepath.Join(filepath.Dir(filepath.Dir(exe)), ".cache", "npm", "node_modules"))
		}
	}
	for _, a := range try {
		if a == "" {
			continue
		}
		dir := models.NSFWJSModelDir(a)
		if _, err := os.Stat(dir); err == nil {
			return filepath.Abs(dir)
		}
		tried = append(tried, dir)
	}
	if assets == "" {
		return "", fmt.Errorf("the demo fine-tunes nsfwjs' MobileNetV2, which is not installed: no %s under $IMET_ASSETS, nor under .cache/npm/node_modules here, in a directory above, or beside the executable's folder; run scripts/assets.sh (make deps), or set IMET_ASSETS", models.NSFWJSModelDir(""))
	}
	return "", fmt.Errorf("the demo fine-tunes nsfwjs' MobileNetV2, which is not in %s: run scripts/assets.sh (make deps)", strings.Join(tried, ", "))
}

// CleanScore is the F2 of a submission against a label file in train.csv
// format, such as the synthetic sample's test_labels.csv.
func CleanScore(dataDir, submission, truth string) (float64, error) {
	labels, err := dataset.ReadLabels(filepath.Join(dataDir, "labels.csv"))
	if err != nil {
		return 0, err
	}
	want, err := dataset.ReadTrain(truth, labels, dataset.ReadOptions{AllowEmpty: true})
	if err != nil {
		return 0, err
	}
	got, err := dataset.ReadTrain(submission, labels, dataset.ReadOptions{AllowEmpty: true})
	if err != nil {
		return 0, err
	}
	ids := make([]string, len(want))
	t := make([][]int, len(want))
	for i, r := range want {
		ids[i], t[i] = r.ID, r.Labels
	}
	p, err := dataset.LabelsFor(got, ids)
	if err != nil {
		var m *dataset.MissingIDError
		if errors.As(err, &m) {
			return 0, fmt.Errorf("%s: no prediction for image %q of %s", submission, m.ID, truth)
		}
		return 0, err
	}
	return fbeta.Samples(t, p, fbeta.Default())
}
