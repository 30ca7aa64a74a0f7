package folds

import (
	"fmt"
	"io"
	"math"
	"sort"
)

// Report measures how far a split is from the ideal one, in which every
// fold holds exactly 1/k of the rows and 1/k of each label's examples.
type Report struct {
	K         int
	Rows      int
	FoldSizes []int
	Labels    int // labels with at least one example

	// MeanAbsDev is the mean over labels and folds of |count - n/k|, in
	// examples, where n is the label's example count.
	MeanAbsDev float64
	// MaxAbsDev is the largest such deviation.
	MaxAbsDev float64
	// MeanRelDev is the mean over labels of the mean over folds of
	// |count - n/k| / (n/k): 0.1 means a typical fold is 10% off its share.
	MeanRelDev float64
	// LD and ED are Sechidis et al.'s Label Distribution and Examples
	// Distribution measures (lower is better; 0 is a perfect split).
	LD, ED float64
	// MissingInFold counts labels with at least k examples that have none
	// in some fold, so that fold's validation cannot score them.
	MissingInFold int
	// Worst lists the labels with the largest relative deviation, worst
	// first (at most 5).
	Worst []LabelDeviation
}

// LabelDeviation is one label's spread over the folds.
type LabelDeviation struct {
	Label  int   // column
	Total  int   // examples
	Counts []int // examples per fold
	RelDev float64
}

// Evaluate computes the report of a split. labels[i] holds row i's label
// columns; fold[i] its fold in [0, k).
func Evaluate(labels [][]int, nLabels int, fold []int, k int) (*Report, error) {
	if len(fold) != len(labels) {
		return nil, fmt.Errorf("folds: %d rows but %d fold values", len(labels), len(fold))
	}
	r := &Report{K: k, Rows: len(labels), FoldSizes: make([]int, k)}
	counts := make([]int, nLabels*k)
	totals := make([]int, nLabels)
	for i, ls := range labels {
		f := fold[i]
		if f < 0 || f >= k {
			return nil, fmt.Errorf("folds: row %d: fold %d: %w [0, %d)", i, f, ErrFoldRange, k)
		}
		r.FoldSizes[f]++
		for _, l := range ls {
			counts[l*k+f]++
			totals[l]++
		}
	}
	n := float64(len(labels))
	for _, s := range r.FoldSizes {
		r.ED += math.Abs(float64(s) - n/float64(k))
	}
	r.ED /= float64(k)
	var devs []LabelDeviation
	sumAbs, nAbs := 0.0, 0
	for l := 0; l < nLabels; l++ {
		if totals[l] == 0 {
			continue
		}
		r.Labels++
		c := counts[l*k : l*k+k]
		ideal := float64(totals[l]) / float64(k)
		dl := 0.0
		missing := false
		ld := 0.0
		whole := float64(totals[l]) / math.Max(n-float64(totals[l]), 1)
		for f, cf := range c {
			d := math.Abs(float64(cf) - ideal)
			sumAbs += d
			nAbs++
			dl += d
			r.MaxAbsDev = math.Max(r.MaxAbsDev, d)
			if cf == 0 {
				missing = true
			}
			rest := float64(r.FoldSizes[f] - cf)
			ld += math.Abs(float64(cf)/math.Max(rest, 1) - whole)
		}
		r.LD += ld / float64(k)
		if missing && totals[l] >= k {
			r.MissingInFold++
		}
		rel := dl / float64(k) / ideal
		r.MeanRelDev += rel
		devs = append(devs, LabelDeviation{Label: l, Total: totals[l], Counts: append([]int(nil), c...), RelDev: rel})
	}
	if r.Labels > 0 {
		r.LD /= float64(r.Labels)
		r.MeanRelDev /= float64(r.Labels)
		r.MeanAbsDev = sumAbs / float64(nAbs)
	}
	sort.SliceStable(devs, func(i, j int) bool {
		if devs[i].RelDev != devs[j].RelDev {
			return devs[i].RelDev > devs[j].RelDev
		}
		return devs[i].Total > devs[j].Total
	})
	r.Worst = devs[:min(5, len(devs))]
	return r, nil
}

// Write prints the report as aligned text; names gives each column's label
// name (nil prints column numbers).
func (r *Report) Write(w io.Writer, names []string) error {
	_, err := fmt.Fprintf(w, `%d rows in %d folds, sizes %v
labels with examples:                    %d
mean |count - n/k| per label and fold:   %.3f examples
max  |count - n/k|:                      %.3f examples
mean relative deviation per label:       %.4f
Sechidis LD / ED:                        %.3g / %.3g
labels (n >= k) absent from some fold:   %d
`, r.Rows, r.K, r.FoldSizes, r.Labels, r.MeanAbsDev, r.MaxAbsDev, r.MeanRelDev, r.LD, r.ED, r.MissingInFold)
	if err != nil {
		return err
	}
	if len(r.Worst) > 0 {
		fmt.Fprintln(w, "largest relative deviations (label, examples, per fold):")
	}
	for _, d := range r.Worst {
		name := fmt.Sprint("column ", d.Label)
		if names != nil {
			name = names[d.Label]
		}
		if _, err := fmt.Fprintf(w, "  %-40s %6d  %v  (%.2f)\n", name, d.Total, d.Counts, d.RelDev); err != nil {
			return err
		}
	}
	return nil
}
