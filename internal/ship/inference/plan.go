package inference

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"imet/internal/base/config"
	"imet/internal/data/dataset"
	"imet/internal/engine/torch"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
	"imet/internal/ship/bundle"
	"imet/internal/training/plan"
	"imet/internal/vision/pipeline"
)

// EnsembleSpec is how an ensemble plan's parts are combined: the method
// and weights of its plan.json, and for the rank method the quantile
// reference (a probability file in the bundle) the scores are mapped onto.
type EnsembleSpec struct {
	Method    string    `json:"method"`
	Weights   []float64 `json:"weights,omitempty"`
	Reference string    `json:"reference,omitempty"`
}

// openPlan loads the output folder of imet cv --plan: each part as the
// cross-validation output it is, the plan's thresholds, and how plan.json
// says the parts are combined.
func openPlan(dir string) (*Predictor, error) {
	m, err := plan.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	p := &Predictor{Origin: dir, Kind: "plan"}
	for _, mp := range m.Parts {
		q, err := Open(filepath.Join(dir, filepath.FromSlash(mp.Dir)))
		if err != nil {
			return nil, fmt.Errorf("plan %s, part %s: %w", dir, mp.Name, err)
		}
		if q.Kind != "cv" {
			return nil, fmt.Errorf("plan %s, part %s: %s is a %s, not a cross-validation", dir, mp.Name, q.Origin, q.Kind)
		}
		p.parts = append(p.parts, q)
	}
	es := &EnsembleSpec{Method: m.Method, Weights: m.Weights}
	if m.Reference != "" {
		if p.reference, err = probs.Load(filepath.Join(dir, filepath.FromSlash(m.Reference))); err != nil {
			return nil, err
		}
		es.Reference = plan.ReferenceName
	}
	th := filepath.Join(dir, filepath.FromSlash(m.Thresholds))
	if err := p.fillPlan(es, th, dir); err != nil {
		return nil, err
	}
	return p, nil
}

// fillPlan completes a plan predictor whose parts are loaded: the label
// set (the parts must share it), the whole's Spec and the thresholds.
func (p *Predictor) fillPlan(es *EnsembleSpec, thresholdsPath, source string) error {
	switch ensemble.Method(es.Method) {
	case ensemble.Mean, ensemble.Weighted:
	case ensemble.Rank:
		if p.reference == nil {
			return fmt.Errorf("%s: the rank method needs its quantile reference, which is missing", p.Origin)
		}
	default:
		return fmt.Errorf("%s: ensemble method %q: want mean, rank or weighted", p.Origin, es.Method)
	}
	if es.Weights != nil && len(es.Weights) != len(p.parts) {
		return fmt.Errorf("%s: %d weights for %d parts", p.Origin, len(es.Weights), len(p.parts))
	}
	q0 := p.parts[0]
	var archs []string
	for _, q := range p.parts {
		if !slices.Equal(q.Labels.IDs, q0.Labels.IDs) || !slices.Equal(q.Labels.GroupOf, q0.Labels.GroupOf) {
			return fmt.Errorf("%s: the parts %s and %s have different label sets", p.Origin, q0.Origin, q.Origin)
		}
		archs = append(archs, q.Spec.Arch)
	}
	p.Labels, p.labelsPath, p.Pipeline = q0.Labels, q0.labelsPath, q0.Pipeline
	p.Spec = Spec{Format: SpecFormat, Arch: strings.Join(archs, "+"), NumClasses: q0.Spec.NumClasses, Source: source, Ensemble: es}
	for _, q := range p.parts {
		p.Spec.Parts = append(p.Spec.Parts, q.Spec)
	}
	var err error
	if p.Thresholds, err = thresholds.ReadFile(thresholdsPath); err != nil {
		return err
	}
	if err := p.Thresholds.Check(p.LabelIDs(), p.Labels.Groups, p.Labels.GroupOf); err != nil {
		return fmt.Errorf("%s: %w", thresholdsPath, err)
	}
	return nil
}

// openPlanBundle loads the bundle of an ensemble plan (already verified):
// one predictor per part spec, all reading the bundle's labels.
func openPlanBundle(dir, specPath string, s Spec) (*Predictor, error) {
	if s.Ensemble == nil {
		return nil, fmt.Errorf("%s: parts without an ensemble section", specPath)
	}
	p := &Predictor{Origin: dir, Kind: "bundle"}
	for i, ps := range s.Parts {
		if len(ps.Parts) > 0 {
			return nil, fmt.Errorf("%s: part %d is itself an ensemble", specPath, i+1)
		}
		q, err := bundlePredictor(dir, specPath, ps, false)
		if err != nil {
			return nil, fmt.Errorf("%s, part %d (%s): %w", specPath, i+1, ps.Arch, err)
		}
		p.parts = append(p.parts, q)
	}
	in := func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }
	if s.Ensemble.Reference != "" {
		var err error
		if p.reference, err = probs.Load(in(s.Ensemble.Reference)); err != nil {
			return nil, err
		}
	}
	if err := p.fillPlan(s.Ensemble, in(s.Thresholds), s.Source); err != nil {
		return nil, err
	}
	p.Spec.Thresholds, p.Spec.Labels = s.Thresholds, s.Labels
	return p, nil
}

// predictParts predicts with each part as it would alone and combines
// the parts as the plan did (ensemble.Blend), so the same images give the
// plan's test probabilities bit for bit. A rank ensemble ranks each image
// among the images predicted together: only the plan's own test images
// give the plan's scores.
func (p *Predictor) predictParts(ctx context.Context, paths, ids []string, o Options) (*probs.File, error) {
	es := p.Spec.Ensemble
	total := 0
	for _, q := range p.parts {
		total += len(paths) * len(q.Pipeline.TTA) * q.Models()
	}
	base := 0
	var ins []ensemble.Input
	for i, q := range p.parts {
		qo := o
		if o.Progress != nil {
			off := base
			qo.Progress = func(done, _ int) { o.Progress(off+done, total) }
		}
		base += len(paths) * len(q.Pipeline.TTA) * q.Models()
		f, err := q.Predict(ctx, paths, ids, qo)
		if err != nil {
			return nil, fmt.Errorf("part %d (%s): %w", i+1, q.Spec.Arch, err)
		}
		ins = append(ins, ensemble.Input{Name: fmt.Sprintf("part %d (%s)", i+1, q.Spec.Arch), File: f})
	}
	var ref *ensemble.Input
	if p.reference != nil {
		ref = &ensemble.Input{Name: "the rank reference", File: p.reference}
	}
	return ensemble.Blend(ins, ensemble.Method(es.Method), es.Weights, ref)
}

// exportParts writes the bundle of an ensemble plan: each part's weights
// under weights/part<I>/, its pipeline in pipelines/part<I>.yaml, and one
// inference.json listing the parts with the combination.
func (p *Predictor) exportParts(dir, binary, tmp string) (*bundle.Manifest, error) {
	s := p.Spec
	s.Format, s.Labels, s.Thresholds = SpecFormat, LabelsName, ThresholdsName
	s.Source = p.Origin
	if p.Kind == "bundle" {
		s.Source = p.Spec.Source
	}
	es := *s.Ensemble
	s.Ensemble = &es
	s.Parts = nil
	var files []bundle.File
	for i, q := range p.parts {
		ps := q.Spec
		ps.Format, ps.Labels, ps.Thresholds, ps.Source = SpecFormat, LabelsName, "", ""
		ps.PipelinesFile = fmt.Sprintf("pipelines/part%d.yaml", i)
		ps.Weights = nil
		for k, m := range q.models {
			name := fmt.Sprintf("%s/part%d/fold%d.tensors", WeightsDir, i, k)
			src := filepath.Join(tmp, fmt.Sprintf("p%d-w%d", i, k))
			if err := torch.Save(src, m.Store().StateDict()); err != nil {
				return nil, fmt.Errorf("export weights: %w", err)
			}
			ps.Weights = append(ps.Weights, name)
			files = append(files, bundle.File{Name: name, Source: src})
		}
		pipes, err := config.Marshal(pipeline.Config{Pipelines: map[string]pipeline.Spec{ps.Pipeline: q.pipelineSpec}})
		if err != nil {
			return nil, fmt.Errorf("export pipeline: %w", err)
		}
		files = append(files, bundle.File{Name: ps.PipelinesFile, Data: pipes})
		if q.configPath != "" {
			files = append(files, bundle.File{Name: fmt.Sprintf("configs/part%d.yaml", i), Source: q.configPath})
		}
		s.Parts = append(s.Parts, ps)
	}
	if p.reference != nil {
		es.Reference = plan.ReferenceName
		ref := filepath.Join(tmp, plan.ReferenceName)
		if err := probs.Save(ref, p.reference); err != nil {
			return nil, err
		}
		for _, f := range []string{ref, probs.IDsPath(ref), probs.LabelsPath(ref)} {
			if !exists(f) {
				continue // a file without column names has no labels sidecar
			}
			files = append(files, bundle.File{Name: filepath.Base(f), Source: f})
		}
	}
	specData, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
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
		bundle.File{Name: ThresholdsName, Source: th},
		bundle.File{Name: LabelsName, Source: lp})
	if err := torch.Available(); err != nil {
		return nil, err
	}
	return bundle.Write(dir, binary, files, torch.ShimPath())
}
