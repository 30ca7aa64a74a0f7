package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"imet/internal/base/atomicfile"
	"imet/internal/base/config"
	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
	"imet/internal/training/crossval"
	"imet/internal/training/train"
)

// Names of a plan's outputs under its folder.
const (
	ManifestName  = "plan.json"
	PartsDir      = "parts"
	ReferenceName = "rank-reference.npy"
	// PartConfigName is the configuration a part trains with, written in
	// its folder: the plan's source configuration with its overrides.
	PartConfigName = "config.yaml"
	// ManifestFormat identifies a plan.json this package writes.
	ManifestFormat = "imet-plan/1"
)

// Manifest is OUT/plan.json, written last: how the parts' probabilities
// were combined, for whoever predicts like the plan (a bundle).
type Manifest struct {
	Format string `json:"format"`
	Name   string `json:"name"`
	Method string `json:"method"`
	// Weights, one per part, weigh the parts' test probabilities; nil:
	// equal.
	Weights []float64 `json:"weights,omitempty"`
	// PerFold: each part trained some of the folds (fold_archs).
	PerFold bool           `json:"per_fold,omitempty"`
	Parts   []ManifestPart `json:"parts"`
	// Reference (rank method) is the probability file, relative to the
	// plan's folder, whose quantiles the rank scores are mapped onto.
	Reference  string   `json:"reference,omitempty"`
	Thresholds string   `json:"thresholds"`
	Score      float64  `json:"oof_f2"`
	HeldOut    *float64 `json:"heldout_f2,omitempty"`
	Rule       string   `json:"rule"`
}

// ManifestPart is one part as plan.json records it.
type ManifestPart struct {
	Name  string `json:"name"`
	Dir   string `json:"dir"` // relative to the plan's folder
	Arch  string `json:"arch"`
	Folds []int  `json:"folds,omitempty"`
}

// Options configure Run.
type Options struct {
	Out string // default runs/<plan name>
	Log io.Writer
	// Rules are searched when the plan names none.
	Rules []string
	// RunPart runs one part's cross-validation: o is ready but for
	// TrainFold (and Log), which the caller sets (in process, child
	// processes, recording) before calling o.Run. It returns what o.Run
	// returned.
	RunPart func(ctx context.Context, p Part, o crossval.Options) (*crossval.Result, error)
}

// PartResult is where one part ended.
type PartResult struct {
	Part
	Dir    string
	Result *crossval.Result
}

// Result is where a plan run ended.
type Result struct {
	crossval.Result
	Parts    []PartResult
	Weights  []float64
	Manifest string
}

// Dir is the part's folder under a plan's output folder.
func (p Part) Dir(out string) string { return filepath.Join(out, PartsDir, p.Name) }

// OutDir is the plan's output folder: out, or runs/<name>.
func (p *Plan) OutDir(out string) string {
	if out != "" {
		return out
	}
	return filepath.Join("runs", p.Name)
}

// Run trains (or resumes) every part in order and, once all are done,
// combines them. A part stopped early (time budget, signal) stops the plan
// with Completed false; running it again continues where it stopped,
// without retraining finished folds.
func (p *Plan) Run(ctx context.Context, o Options) (*Result, error) {
	out := p.OutDir(o.Out)
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	res := &Result{}
	for _, part := range p.Parts {
		dir := part.Dir(out)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		y, err := config.Marshal(part.Config)
		if err != nil {
			return nil, err
		}
		cfgPath := filepath.Join(dir, PartConfigName)
		if err := atomicfile.WriteBytes(cfgPath, y, 0o644); err != nil {
			return nil, err
		}
		logf("event=plan part=%s arch=%s dir=%s", part.Name, part.Config.Model.Arch, dir)
		// Each part's folds are averaged (a bundle averages them the same
		// way); the plan's method then combines the parts.
		co := crossval.Options{ConfigPath: cfgPath, Out: dir, Folds: part.Folds, Rules: p.rules(o), Ensemble: ensemble.Mean}
		r, err := o.RunPart(ctx, part, co)
		if err != nil {
			return nil, fmt.Errorf("plan %s, part %s: %w", p.Path, part.Name, err)
		}
		res.Parts = append(res.Parts, PartResult{Part: part, Dir: dir, Result: r})
		if !r.Completed {
			return res, nil
		}
	}
	if err := p.combine(out, o, res, logf); err != nil {
		return nil, fmt.Errorf("plan %s: %w", p.Path, err)
	}
	return res, nil
}

func (p *Plan) rules(o Options) []string {
	if len(p.Rules) > 0 {
		return p.Rules
	}
	return o.Rules
}

// combine ensembles the finished parts, searches thresholds and writes the
// submission and the manifest.
func (p *Plan) combine(out string, o Options, res *Result, logf func(string, ...any)) error {
	cfg := &p.Parts[0].Config
	ds, err := train.OpenDataset(cfg)
	if err != nil {
		return err
	}
	var oofs, tests []ensemble.Input
	for _, pr := range res.Parts {
		f, err := probs.Load(pr.Result.OOF)
		if err != nil {
			return err
		}
		oofs = append(oofs, ensemble.Input{Name: pr.Result.OOF, File: f})
		tp := filepath.Join(pr.Dir, "test.npy")
		if pr.Result.Submission == "" {
			continue
		}
		if f, err = probs.Load(tp); err != nil {
			return err
		}
		tests = append(tests, ensemble.Input{Name: tp, File: f})
	}
	if len(tests) != 0 && len(tests) != len(oofs) {
		return fmt.Errorf("some parts have test probabilities and some not (test.npy in each part's folder): the parts must read the same data")
	}
	var weights []float64
	var oof *probs.File
	switch {
	case p.PerFold:
		// Every image was held out by one fold, so by one part: the
		// out-of-fold file is the parts' rows stacked. On the test images
		// each part counts as many times as it has folds, as if every
		// fold's model were averaged alone.
		if oof, err = ensemble.Concat(oofs); err != nil {
			return err
		}
		for _, pr := range res.Parts {
			weights = append(weights, float64(len(pr.Folds)))
		}
	case p.Method == ensemble.Weighted:
		score := func(f *probs.File) (float64, error) { return globalF2(ds, f) }
		var best float64
		if weights, best, err = ensemble.SearchWeights(oofs, p.WeightStep, score); err != nil {
			return err
		}
		logf("event=plan weights=%v oof_global_f2=%.5f step=%g", weights, best, p.WeightStep)
		if oof, err = ensemble.Combine(oofs, ensemble.Weighted, weights); err != nil {
			return err
		}
	case p.Method == ensemble.Rank:
		// Rank scores are not probabilities; mapped onto the quantiles
		// of the parts' mean they are on the scale thresholds expect.
		mean, err := ensemble.Combine(oofs, ensemble.Mean, nil)
		if err != nil {
			return err
		}
		if oof, err = ensemble.Blend(oofs, ensemble.Rank, nil, &ensemble.Input{Name: "the mean of the parts' out-of-fold probabilities", File: mean}); err != nil {
			return err
		}
	default:
		if oof, err = ensemble.Combine(oofs, ensemble.Mean, nil); err != nil {
			return err
		}
	}
	res.Weights = weights
	asg, err := folds.Read(cfg.Data.FoldsPath())
	if err != nil {
		return err
	}
	of, err := asg.Of(oof.IDs)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Data.FoldsPath(), err)
	}
	fold, nf := dense(of)
	d := crossval.Decision{Data: ds, OOF: oof, Fold: fold, Folds: nf, Rules: p.rules(o), Out: out}
	m := Manifest{Format: ManifestFormat, Name: p.Name, Method: string(p.Method), Weights: weights, PerFold: p.PerFold, Thresholds: "thresholds.json"}
	for _, pr := range res.Parts {
		rel, err := filepath.Rel(out, pr.Dir)
		if err != nil {
			return err
		}
		m.Parts = append(m.Parts, ManifestPart{Name: pr.Name, Dir: filepath.ToSlash(rel), Arch: pr.Config.Model.Arch, Folds: pr.Folds})
	}
	if len(tests) > 0 {
		var ref *ensemble.Input
		if p.Method == ensemble.Rank {
			table, err := ensemble.QuantileTable(oof, QuantileRows)
			if err != nil {
				return err
			}
			m.Reference = ReferenceName
			refPath := filepath.Join(out, ReferenceName)
			if err := probs.Save(refPath, table); err != nil {
				return err
			}
			ref = &ensemble.Input{Name: refPath, File: table}
		}
		if d.Test, err = ensemble.Blend(tests, p.Method, weights, ref); err != nil {
			return err
		}
	}
	cv, err := crossval.Decide(d, logf)
	if err != nil {
		return err
	}
	res.Result = *cv
	m.Score, m.HeldOut, m.Rule = cv.Score, cv.HeldOut, cv.Rule
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	res.Manifest = filepath.Join(out, ManifestName)
	if err := atomicfile.WriteBytes(res.Manifest, append(data, '\n'), 0o644); err != nil {
		return err
	}
	names := make([]string, len(res.Parts))
	for i, pr := range res.Parts {
		names[i] = pr.Name
	}
	logf("event=plan status=done parts=%s method=%s f2=%.5f manifest=%s", strings.Join(names, ","), p.Method, cv.Score, res.Manifest)
	return nil
}

// globalF2 is the F2 of the best single threshold on f: what the weight
// search maximises (the group rules have more thresholds to fit and would
// reward weights that suit them by chance).
func globalF2(ds *dataset.Dataset, f *probs.File) (float64, error) {
	truth, err := dataset.LabelsFor(ds.Train, f.IDs)
	if err != nil {
		return 0, err
	}
	pr := &thresholds.Problem{Rows: f.Rows, Cols: f.Cols, Probs: f.Data, GroupOf: ds.Labels.GroupOf, Groups: ds.Labels.Groups, Truth: thresholds.TruthOf(truth)}
	r, err := thresholds.Search(pr, []string{thresholds.Global}, thresholds.DefaultOptions())
	if err != nil {
		return 0, err
	}
	return r[0].Score, nil
}

// dense numbers the folds present 0..n-1 in increasing order.
func dense(of []int) ([]int, int) {
	ks := slices.Clone(of)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	out := make([]int, len(of))
	for i, k := range of {
		out[i], _ = slices.BinarySearch(ks, k)
	}
	return out, len(ks)
}

// ReadManifest reads OUT/plan.json.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%s: format %q, this imet reads %q", path, m.Format, ManifestFormat)
	}
	if len(m.Parts) == 0 {
		return nil, fmt.Errorf("%s: no parts", path)
	}
	return &m, nil
}

func foldCount(path string) (int, error) {
	a, err := folds.Read(path)
	if err != nil {
		return 0, err
	}
	return a.K, nil
}
