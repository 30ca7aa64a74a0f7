// Package fbeta scores multi-label predictions with the F-beta measure the
// iMet competitions used: F2 computed per image and averaged over images,
// which is scikit-learn's fbeta_score(..., beta=2, average='samples').
//
// Label sets are given as lists of column indices (one list per image); the
// order inside a list does not matter but an index must not repeat.
//
// # Rows with nothing to find and nothing predicted
//
// For an image whose true set and predicted set are both empty, precision
// and recall are 0/0. scikit-learn settles this with its zero_division
// argument; its default ("warn") scores such a row 0 and still counts it in
// the average. That is this package's default too (BothEmptyZero), so
// figures match a notebook. BothEmptyOne scores the row 1 (the prediction
// is perfect), which is what zero_division=1 does; BothEmptySkip leaves the
// row out of the average altogether. iMet training rows always carry at
// least one label, so the rule matters for held-out subsets and for scores
// restricted to one label group, where empty rows are common.
//
// For every other row the score is (1+β²)·TP / ((1+β²)·TP + β²·FN + FP),
// which equals the harmonic form of precision and recall and is 0 when TP
// is 0, whatever zero_division says.
package fbeta

import "fmt"

// BothEmpty says how an image whose true and predicted label sets are both
// empty is scored.
type BothEmpty int

const (
	// BothEmptyZero scores the row 0 and counts it: scikit-learn's default
	// (zero_division="warn" or 0).
	BothEmptyZero BothEmpty = iota
	// BothEmptyOne scores the row 1 and counts it: zero_division=1.
	BothEmptyOne
	// BothEmptySkip leaves the row out of the average.
	BothEmptySkip
)

// String returns the name used on the command line and in threshold files.
func (b BothEmpty) String() string {
	switch b {
	case BothEmptyZero:
		return "zero"
	case BothEmptyOne:
		return "one"
	case BothEmptySkip:
		return "skip"
	}
	return fmt.Sprintf("BothEmpty(%d)", int(b))
}

// ParseBothEmpty is the inverse of BothEmpty.String.
func ParseBothEmpty(s string) (BothEmpty, error) {
	switch s {
	case "zero", "":
		return BothEmptyZero, nil
	case "one":
		return BothEmptyOne, nil
	case "skip":
		return BothEmptySkip, nil
	}
	return 0, fmt.Errorf("fbeta: unknown empty-row rule %q (want zero, one or skip)", s)
}

// MarshalText writes the rule's name, so configs and files say "zero",
// "one" or "skip".
func (b BothEmpty) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads a rule's name.
func (b *BothEmpty) UnmarshalText(text []byte) error {
	v, err := ParseBothEmpty(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Options are the scoring parameters.
type Options struct {
	Beta      float64   `yaml:"beta" doc:"Weight of recall against precision; the iMet metric uses 2."`
	BothEmpty BothEmpty `yaml:"empty_rows" doc:"Score of an image with no true and no predicted label: zero (scikit-learn's default), one, or skip."`
}

// Default returns the iMet metric: β = 2, empty rows scored as scikit-learn does.
func Default() Options { return Options{Beta: 2, BothEmpty: BothEmptyZero} }

// Row scores one image from its counts: tp true positives, nPred predicted
// labels, nTrue true labels. counted is false when the rule skips the row.
func (o Options) Row(tp, nPred, nTrue int) (f float64, counted bool) {
	if nPred == 0 && nTrue == 0 {
		switch o.BothEmpty {
		case BothEmptyOne:
			return 1, true
		case BothEmptySkip:
			return 0, false
		}
		return 0, true
	}
	if tp == 0 {
		return 0, true
	}
	b2 := o.Beta * o.Beta
	t := float64(tp)
	// (1+b²)TP + b²FN + FP = b²·nTrue + nPred.
	return (1 + b2) * t / (b2*float64(nTrue) + float64(nPred)), true
}

// Samples returns the F-beta of each image averaged over images, like
// fbeta_score(average='samples'). truth and pred hold one label list per
// image. With BothEmptySkip and every row skipped the result is 0.
func Samples(truth, pred [][]int, o Options) (float64, error) {
	if len(truth) != len(pred) {
		return 0, fmt.Errorf("fbeta: %d true rows but %d predicted rows", len(truth), len(pred))
	}
	var sum float64
	n := 0
	mark := map[int]struct{}{}
	for i := range truth {
		clear(mark)
		for _, j := range truth[i] {
			mark[j] = struct{}{}
		}
		tp := 0
		for _, j := range pred[i] {
			if _, ok := mark[j]; ok {
				tp++
			}
		}
		if f, ok := o.Row(tp, len(pred[i]), len(truth[i])); ok {
			sum += f
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	return sum / float64(n), nil
}

// PerLabel returns the F-beta of each of nLabels columns computed over
// images, like fbeta_score(average=None) with zero_division=0: a label never
// true and never predicted scores 0. It shows which labels a threshold
// serves badly.
func PerLabel(truth, pred [][]int, nLabels int, beta float64) ([]float64, error) {
	if len(truth) != len(pred) {
		return nil, fmt.Errorf("fbeta: %d true rows but %d predicted rows", len(truth), len(pred))
	}
	tp := make([]int, nLabels)
	np := make([]int, nLabels)
	nt := make([]int, nLabels)
	mark := make([]bool, nLabels)
	for i := range truth {
		for _, j := range truth[i] {
			if j < 0 || j >= nLabels {
				return nil, fmt.Errorf("fbeta: row %d: label index %d outside 0..%d", i, j, nLabels-1)
			}
			mark[j] = true
			nt[j]++
		}
		for _, j := range pred[i] {
			if j < 0 || j >= nLabels {
				return nil, fmt.Errorf("fbeta: row %d: label index %d outside 0..%d", i, j, nLabels-1)
			}
			np[j]++
			if mark[j] {
				tp[j]++
			}
		}
		for _, j := range truth[i] {
			mark[j] = false
		}
	}
	o := Options{Beta: beta}
	out := make([]float64, nLabels)
	for j := range out {
		out[j], _ = o.Row(tp[j], np[j], nt[j])
	}
	return out, nil
}

// PerGroup returns, for each of nGroups label groups, the samples-averaged
// F-beta computed on that group's columns alone (groupOf maps a column to
// its group). Rows with no true and no predicted label in a group follow
// o.BothEmpty, which is why the rule is configurable.
func PerGroup(truth, pred [][]int, groupOf []int, nGroups int, o Options) ([]float64, error) {
	out := make([]float64, nGroups)
	for g := range nGroups {
		sub := func(rows [][]int) ([][]int, error) {
			r := make([][]int, len(rows))
			for i, row := range rows {
				for _, j := range row {
					if j < 0 || j >= len(groupOf) {
						return nil, fmt.Errorf("fbeta: row %d: label index %d outside 0..%d", i, j, len(groupOf)-1)
					}
					if groupOf[j] == g {
						r[i] = append(r[i], j)
					}
				}
			}
			return r, nil
		}
		t, err := sub(truth)
		if err != nil {
			return nil, err
		}
		p, err := sub(pred)
		if err != nil {
			return nil, err
		}
		if out[g], err = Samples(t, p, o); err != nil {
			return nil, err
		}
	}
	return out, nil
}
