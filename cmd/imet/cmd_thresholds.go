package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"imet/internal/base/atomicfile"
	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/postprocess/fbeta"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
)

type thresholdsCmd struct {
	OOF        string   `help:"Out-of-fold probabilities: .npy (images x labels, float32) with its .ids.csv sidecar." required:"" type:"existingfile" name:"oof"`
	Truth      string   `help:"train.csv holding the true labels of the out-of-fold images (others are ignored)." required:"" type:"existingfile"`
	Labels     string   `help:"labels.csv: the label columns and their groups." required:"" type:"existingfile"`
	Out        string   `help:"Threshold file to write (JSON)." default:"thresholds.json"`
	Rules      []string `help:"Rules to search: ${rules}." default:"${rules_list}" sep:","`
	Use        string   `help:"Rule that predict and submit apply by default (default: the best scoring; with --folds, the best held-out)."`
	Beta       float64  `help:"F-beta's beta." default:"2"`
	EmptyRows  string   `help:"Score of an image with no true and no predicted label: zero (scikit-learn), one, or skip." enum:"zero,one,skip" default:"zero"`
	AllowEmpty bool     `help:"Score rules without the at-least-one-label fallback that submit applies by default."`
	Step       float64  `help:"Spacing of the candidate thresholds (step, 2*step, ... < 1)." default:"0.005"`
	Shrink     float64  `help:"Pull of the group threshold on rare labels' thresholds, in pseudo-positives (0: none)." default:"10"`
	Rounds     int      `help:"Coordinate-ascent passes of the group, label and top-k searches." default:"2"`
	MaxK       int      `help:"Largest per-group maximum tried by the top-k search." default:"10" name:"max-k"`
	MinK       int      `help:"Largest per-group minimum tried by the top-k search." default:"2" name:"min-k"`
	TargetMean float64  `help:"Mean labels per image for the target rule (default: the truth's mean)."`
	Bounds     string   `help:"Fix the topk rule's bounds instead of searching them, e.g. culture=..3,tag=1..8 (groups not named: no bounds)."`
	Folds      string   `help:"folds.csv: also cross-validate each rule (search on K-1 folds, score the one left out) and use the best held-out rule." type:"existingfile"`
	PerLabel   string   `help:"Write a CSV with each label's positives, threshold and F-beta under the rule used."`
}

func init() {
	register("thresholds", "Search out-of-fold probabilities for the thresholds that maximise F2, and write a threshold file.", "Post-processing", &thresholdsCmd{})
}

func (c *thresholdsCmd) Run(g *Globals) error {
	labels, err := dataset.ReadLabels(c.Labels)
	if err != nil {
		return err
	}
	oof, err := probs.Load(c.OOF)
	if err != nil {
		return err
	}
	if err := checkColumns(c.OOF, oof, labels, c.Labels); err != nil {
		return err
	}
	rows, err := dataset.ReadTrain(c.Truth, labels, dataset.ReadOptions{AllowEmpty: true})
	if err != nil {
		return err
	}
	labelsOf, err := dataset.LabelsFor(rows, oof.IDs)
	if err != nil {
		return missingID(err, probs.IDsPath(c.OOF), c.Truth)
	}
	truth := thresholds.TruthOf(labelsOf)
	empty, err := fbeta.ParseBothEmpty(c.EmptyRows)
	if err != nil {
		return err
	}
	if c.Step <= 0 || c.Step >= 1 {
		return fmt.Errorf("--step %v must be in (0, 1)", c.Step)
	}
	o := thresholds.DefaultOptions()
	o.Grid = thresholds.LinearGrid(c.Step, 1-c.Step/2)
	o.Score = fbeta.Options{Beta: c.Beta, BothEmpty: empty}
	o.AtLeastOne = !c.AllowEmpty
	o.Shrink, o.Rounds, o.MaxK, o.MinK, o.TargetMean = c.Shrink, c.Rounds, c.MaxK, c.MinK, c.TargetMean
	if c.Bounds != "" {
		if o.Bounds, err = parseBounds(c.Bounds, labels.Groups); err != nil {
			return err
		}
	}
	if err := checkRange(c.OOF, oof, labels); err != nil {
		return err
	}
	pr := &thresholds.Problem{Rows: oof.Rows, Cols: oof.Cols, Probs: oof.Data, Truth: truth, GroupOf: labels.GroupOf, Groups: labels.Groups}
	start := time.Now()
	res, err := thresholds.Search(pr, c.Rules, o)
	if err != nil {
		return err
	}
	took := time.Since(start)
	var cv []thresholds.CVResult
	if c.Folds != "" {
		a, err := folds.Read(c.Folds)
		if err != nil {
			return err
		}
		fold, err := a.Of(oof.IDs)
		if err != nil {
			return missingID(err, probs.IDsPath(c.OOF), c.Folds)
		}
		if cv, err = thresholds.CrossValidate(pr, fold, a.K, c.Rules, o); err != nil {
			return fmt.Errorf("%s: %w", c.Folds, err)
		}
	}
	use := c.Use
	if use == "" {
		use = res[thresholds.Choose(res, cv)].Name
	}
	f := &thresholds.File{
		Use: use, Beta: c.Beta, EmptyRows: empty.String(), Labels: attrIDs(labels),
		Groups: labels.Groups, LabelGroups: labels.GroupOf, Rows: oof.Rows, Rules: res, HeldOut: cv,
	}
	if err := thresholds.WriteFile(c.Out, f); err != nil {
		return err
	}
	if g.Quiet {
		return nil
	}
	fmt.Fprintf(g.Stdout, "%d images x %d labels (truth from %d of the %d rows of %s); %d candidate thresholds; search took %v\n",
		oof.Rows, oof.Cols, oof.Rows, len(rows), c.Truth, len(o.Grid), took.Round(time.Millisecond))
	tw := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fb := "F" + strconv.FormatFloat(c.Beta, 'g', -1, 64)
	if cv != nil {
		fmt.Fprintf(tw, "rule\t%s\theld-out %s (mean ± sd over %d folds)\tlabels/image\tsetting\n", fb, fb, len(cv[0].PerFold))
	} else {
		fmt.Fprintf(tw, "rule\t%s\tlabels/image\tsetting\n", fb)
	}
	for x, r := range res {
		mark := ""
		if r.Name == use {
			mark = "  <- use"
		}
		held := ""
		if cv != nil {
			held = fmt.Sprintf("%.4f ± %.4f\t", cv[x].Mean, cv[x].SD)
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%s%.2f\t%s%s\n", r.Name, r.Score, held, r.MeanLabels, describe(&r.Rule, labels), mark)
	}
	tw.Flush()
	rule, _ := f.Rule(use)
	pd := thresholds.NewPredictor(rule, labels.GroupOf, len(labels.Groups))
	pred := make([][]int, oof.Rows)
	tr := make([][]int, oof.Rows)
	for i := range pred {
		pred[i] = pd.Predict(oof.Row(i), nil)
		tr[i] = labelsOf[i]
	}
	// Within one group many images have no true and no predicted label;
	// scoring those 0 (or 1) would swamp the figure, so they are skipped.
	pgOpts := o.Score
	pgOpts.BothEmpty = fbeta.BothEmptySkip
	pg, err := fbeta.PerGroup(tr, pred, labels.GroupOf, len(labels.Groups), pgOpts)
	if err != nil {
		return err
	}
	if c.PerLabel != "" {
		if err := writePerLabel(c.PerLabel, tr, pred, rule, labels, c.Beta); err != nil {
			return err
		}
	}
	var parts []string
	for k, v := range pg {
		parts = append(parts, fmt.Sprintf("%s %.4f", labels.Groups[k], v))
	}
	fmt.Fprintf(g.Stdout, "per group (rule %s; images with no label of the group on either side skipped): %s\nwrote %s\n", use, strings.Join(parts, ", "), c.Out)
	if c.PerLabel != "" {
		fmt.Fprintf(g.Stdout, "wrote %s\n", c.PerLabel)
	}
	return nil
}

// writePerLabel writes label,name,group,positives,predicted,threshold,fbeta
// for each column, so the labels a rule serves badly can be found.
func writePerLabel(path string, truth, pred [][]int, rule *thresholds.Rule, labels *dataset.Labels, beta float64) error {
	f, err := fbeta.PerLabel(truth, pred, labels.Len(), beta)
	if err != nil {
		return err
	}
	pos := make([]int, labels.Len())
	np := make([]int, labels.Len())
	for i := range truth {
		for _, j := range truth[i] {
			pos[j]++
		}
		for _, j := range pred[i] {
			np[j]++
		}
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"attribute_id", "attribute_name", "group", "positives", "predicted", "threshold", "fbeta"})
		for j := range labels.Len() {
			cw.Write([]string{strconv.Itoa(labels.IDs[j]), labels.Names[j], labels.Groups[labels.GroupOf[j]],
				strconv.Itoa(pos[j]), strconv.Itoa(np[j]), strconv.FormatFloat(rule.Thresholds[j], 'g', -1, 64),
				strconv.FormatFloat(f[j], 'f', 6, 64)})
		}
		cw.Flush()
		return cw.Error()
	})
}

// describe summarises a rule's setting in one line.
func describe(r *thresholds.Rule, labels *dataset.Labels) string {
	var parts []string
	for k, name := range labels.Groups {
		var ts []float64
		for j, gj := range labels.GroupOf {
			if gj == k {
				ts = append(ts, r.Thresholds[j])
			}
		}
		if len(ts) == 0 {
			continue
		}
		lo, hi := slices.Min(ts), slices.Max(ts)
		s := fmt.Sprintf("%s %.3g", name, lo)
		if hi != lo {
			s = fmt.Sprintf("%s %.3g..%.3g", name, lo, hi)
		}
		if r.Bounds != nil {
			b := r.Bounds[k]
			if b.Max > 0 {
				s += fmt.Sprintf(" [%d..%d]", b.Min, b.Max)
			} else if b.Min > 0 {
				s += fmt.Sprintf(" [%d..]", b.Min)
			}
		}
		parts = append(parts, s)
	}
	s := strings.Join(parts, ", ")
	if r.Relative > 0 {
		s += fmt.Sprintf(", and p >= %.3g*max", r.Relative)
	}
	return s
}

// attrIDs returns the attribute ids of the label columns as strings.
func attrIDs(l *dataset.Labels) []string {
	out := make([]string, l.Len())
	for j, id := range l.IDs {
		out[j] = strconv.Itoa(id)
	}
	return out
}

// checkColumns makes sure a probability file's columns are labels.csv's,
// in order: by its labels sidecar when it has one, else by count.
func checkColumns(path string, f *probs.File, labels *dataset.Labels, labelsPath string) error {
	if f.Cols != labels.Len() {
		return fmt.Errorf("%s has %d label columns but %s has %d labels", path, f.Cols, labelsPath, labels.Len())
	}
	if f.Labels == nil {
		return nil
	}
	want := attrIDs(labels)
	for j := range want {
		if f.Labels[j] != want[j] {
			return fmt.Errorf("column %d of %s is attribute %s (line %d of %s) but %s has %s there", j, path, f.Labels[j], j+2, probs.LabelsPath(path), labelsPath, want[j])
		}
	}
	return nil
}

// parseBounds reads --bounds: comma-separated group=min..max, either side
// optional.
func parseBounds(spec string, groups []string) ([]thresholds.Bounds, error) {
	out := make([]thresholds.Bounds, len(groups))
	for _, part := range strings.Split(spec, ",") {
		name, rng, ok := strings.Cut(strings.TrimSpace(part), "=")
		lo, hi, ok2 := strings.Cut(rng, "..")
		if !ok || !ok2 {
			return nil, fmt.Errorf("--bounds: %q is not group=min..max (e.g. culture=..3 or tag=1..8)", part)
		}
		g := slices.Index(groups, name)
		if g < 0 {
			return nil, fmt.Errorf("--bounds: no label group %q (groups: %s)", name, strings.Join(groups, ", "))
		}
		var b thresholds.Bounds
		var err error
		if lo != "" {
			if b.Min, err = strconv.Atoi(lo); err != nil || b.Min < 0 {
				return nil, fmt.Errorf("--bounds: minimum %q of %s is not a count", lo, name)
			}
		}
		if hi != "" {
			if b.Max, err = strconv.Atoi(hi); err != nil || b.Max < 1 {
				return nil, fmt.Errorf("--bounds: maximum %q of %s is not a positive count", hi, name)
			}
			if b.Min > b.Max {
				return nil, fmt.Errorf("--bounds: %s has minimum %d above maximum %d", name, b.Min, b.Max)
			}
		}
		out[g] = b
	}
	return out, nil
}

// checkRange refuses NaN probabilities, which no threshold can judge, and
// values outside [0, 1], which are most often logits saved by mistake.
func checkRange(path string, f *probs.File, labels *dataset.Labels) error {
	for x, v := range f.Data {
		if v != v || v < 0 || v > 1 {
			i, j := x/f.Cols, x%f.Cols
			what := "is NaN"
			if v == v {
				what = fmt.Sprintf("is %v, outside [0, 1] (logits? apply a sigmoid first)", v)
			}
			return fmt.Errorf("%s: probability of image %q, column %d (attribute %d) %s", path, f.IDs[i], j, labels.IDs[j], what)
		}
	}
	return nil
}

// missingID words a failed join by id with the files involved: the line of
// the ids sidecar (after its header) and the file that lacks the image.
func missingID(err error, idsFile, other string) error {
	var m *dataset.MissingIDError
	if errors.As(err, &m) {
		return fmt.Errorf("image %q (line %d of %s) is not in %s", m.ID, m.Index+2, idsFile, other)
	}
	return err
}
