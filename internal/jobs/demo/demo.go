// Package demo prepares the main job that `make demo` runs: the embedded
// synthetic sample in iMet layout, its folds and a small recipe, and scores
// the resulting submission against the sample's clean labels, which no real
// competition gives (the train labels carry iMet-like annotator noise).
package demo

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/template"

	"imet/internal/base/atomicfile"
	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/data/synth"
	"imet/internal/postprocess/fbeta"
)

//go:embed recipe.yaml.tmpl
var recipeTemplate string

//go:embed pipelines.yaml
var pipelines []byte

// Options size the demo. The zero value of a field takes its default.
type Options struct {
	Out    string // everything goes under here
	Data   string // an iMet-layout data set; empty: the synthetic sample under Out/data
	Synth  synth.Config
	Folds  int // default 3
	Epochs int // default 8
	// Device is the recipe's engine.device (cpu, cuda, cuda:N); empty: cpu.
	Device string
	Seed   int64
	Log    io.Writer
}

// Prepared is what Prepare leaves on disk.
type Prepared struct {
	Data      string // data set directory
	Recipe    string // run configuration for imet cv
	Generated bool   // the synthetic sample was generated now
}

// Prepare makes sure the data set, its folds.csv and the recipe exist,
// generating the synthetic sample when no data set is given. Files already
// there are kept, so a second demo reuses the sample.
func Prepare(o Options) (*Prepared, error) {
	if o.Folds == 0 {
		o.Folds = 3
	}
	if o.Epochs == 0 {
		o.Epochs = 8
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
	pipes := filepath.Join(o.Out, "pipelines.yaml")
	if err := atomicfile.WriteBytes(pipes, pipelines, 0o644); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tmpl := template.Must(template.New("recipe").Parse(recipeTemplate))
	if err := tmpl.Execute(&buf, map[string]any{"Seed": o.Seed, "Data": p.Data, "Pipelines": pipes, "Epochs": o.Epochs, "Device": o.Device}); err != nil {
		return nil, err
	}
	p.Recipe = filepath.Join(o.Out, "recipe.yaml")
	if err := atomicfile.WriteBytes(p.Recipe, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return p, nil
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
