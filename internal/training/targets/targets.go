// Package targets builds a later round's training targets from an earlier
// round's outputs, the multi-pass loops of the iMet 2019 winners: a
// teacher's probabilities combined with the noisy labels (distillation,
// 9th place: max(y, 0.7 p)), and the test images an ensemble is most
// confident about joined to training with their predicted labels
// (pseudo-labels, 1st place). Everything here works on ids, label
// columns and probabilities; internal/training/train turns the result into
// loader items.
package targets

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"imet/internal/data/dataset"
	"imet/internal/postprocess/probs"
)

// The rules that combine a label y (0 or 1) with a teacher's probability p.
const (
	Replace = "replace" // p
	Max     = "max"     // max(y, a p)
	Mix     = "mix"     // (1 - a) y + a p
)

// DefaultAlpha is the a of the 9th place's distillation, max(y, 0.7 p).
const DefaultAlpha = 0.7

// DefaultShare is the share of test images pseudo-labelled by default.
const DefaultShare = 0.25

var ruleDocs = map[string]string{
	Replace: "the teacher's p",
	Max:     "max(y, alpha p): a label stays on, a confident teacher adds one",
	Mix:     "(1 - alpha) y + alpha p",
}

// Rules lists the rule names.
func Rules() []string { return []string{Replace, Max, Mix} }

// RuleDoc says what a rule computes.
func RuleDoc(name string) string { return ruleDocs[name] }

// CheckRule refuses an unknown rule name.
func CheckRule(name string) error {
	if _, ok := ruleDocs[name]; !ok {
		return fmt.Errorf("%q: want one of %s", name, strings.Join(Rules(), ", "))
	}
	return nil
}

// Combine returns the target of a label y and a teacher's p under rule.
func Combine(rule string, alpha float64, y, p float32) float32 {
	switch rule {
	case Replace:
		return p
	case Mix:
		return float32((1-alpha)*float64(y) + alpha*float64(p))
	default:
		return max(y, float32(alpha*float64(p)))
	}
}

// Teacher is a probability file read onto a data set's label columns.
type Teacher struct {
	Path string
	file *probs.File
	row  map[string]int
	// col[j] is the file's column of the data set's label j, -1 when the
	// file lacks it.
	col []int
	// Missing counts the data set's labels the file lacks.
	Missing int
}

// Load reads a probability file and maps its columns onto labels by
// attribute id. A file without a labels sidecar must have exactly the
// data set's columns; a label id the data set does not know is an error.
func Load(path string, labels *dataset.Labels) (*Teacher, error) {
	f, err := probs.Load(path)
	if err != nil {
		return nil, err
	}
	t := &Teacher{Path: path, file: f, row: make(map[string]int, len(f.IDs)), col: make([]int, labels.Len())}
	for i, id := range f.IDs {
		t.row[id] = i
	}
	for j := range t.col {
		t.col[j] = -1
	}
	if f.Labels == nil {
		if f.Cols != labels.Len() {
			return nil, fmt.Errorf("%s: %d columns and no labels sidecar %s, but the data set has %d labels", path, f.Cols, probs.LabelsPath(path), labels.Len())
		}
		for j := range t.col {
			t.col[j] = j
		}
		return t, nil
	}
	for c, s := range f.Labels {
		id, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: attribute id %q is not an integer", probs.LabelsPath(path), c+2, s)
		}
		j, ok := labels.Index(id)
		if !ok {
			return nil, fmt.Errorf("%s:%d: attribute id %d is not in the data set's labels.csv", probs.LabelsPath(path), c+2, id)
		}
		t.col[j] = c
	}
	for _, c := range t.col {
		if c < 0 {
			t.Missing++
		}
	}
	return t, nil
}

// IDs are the file's image ids in file order.
func (t *Teacher) IDs() []string { return t.file.IDs }

// Has reports whether the file has a row for image id.
func (t *Teacher) Has(id string) bool { _, ok := t.row[id]; return ok }

// Row returns image id's probabilities on the data set's columns (NaN where
// the file lacks a label), or false when the file has no row for it.
func (t *Teacher) Row(id string) ([]float32, bool) {
	i, ok := t.row[id]
	if !ok {
		return nil, false
	}
	src := t.file.Data[i*t.file.Cols : (i+1)*t.file.Cols]
	out := make([]float32, len(t.col))
	for j, c := range t.col {
		if c < 0 {
			out[j] = float32(math.NaN())
		} else {
			out[j] = src[c]
		}
	}
	return out, true
}

// Soften replaces hard targets y (one row of the data set's columns) by
// rule's combination with p; labels p lacks (NaN) keep y.
func Soften(rule string, alpha float64, y, p []float32) {
	for j, pj := range p {
		if pj == pj {
			y[j] = Combine(rule, alpha, y[j], pj)
		}
	}
}

// Confidence is the mean of |p - 0.5| over the labels p has: 0.5 for a
// row of certain zeros and ones, 0 for a row of coin flips.
func Confidence(p []float32) float64 {
	s, n := 0.0, 0
	for _, v := range p {
		if v == v {
			s += math.Abs(float64(v) - 0.5)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// Selection picks pseudo-labelled images.
type Selection struct {
	Share         float64 // of the candidates, the most confident first
	MinConfidence float64 // candidates below it never join
	// Threshold 0 keeps the probabilities as targets; above 0 they become
	// 1 where p >= Threshold, else 0.
	Threshold float64
}

// Pseudo is one pseudo-labelled image.
type Pseudo struct {
	ID         string
	Target     []float32
	Confidence float64
}

// Select returns the candidates (ids of the teacher's file, in any order)
// that the selection keeps, the most confident first (ties in candidate
// order), with their targets.
func (t *Teacher) Select(candidates []string, s Selection) ([]Pseudo, error) {
	var out []Pseudo
	for _, id := range candidates {
		p, ok := t.Row(id)
		if !ok {
			return nil, fmt.Errorf("%s has no row for image %s", t.Path, id)
		}
		c := Confidence(p)
		if c < s.MinConfidence {
			continue
		}
		for j, v := range p {
			switch {
			case v != v:
				p[j] = 0 // a label the teacher lacks is taken as absent
			case s.Threshold > 0 && float64(v) >= s.Threshold:
				p[j] = 1
			case s.Threshold > 0:
				p[j] = 0
			}
		}
		out = append(out, Pseudo{ID: id, Target: p, Confidence: c})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Confidence > out[b].Confidence })
	n := int(math.Round(s.Share * float64(len(candidates))))
	if n < len(out) {
		out = out[:n]
	}
	return slices.Clip(out), nil
}
