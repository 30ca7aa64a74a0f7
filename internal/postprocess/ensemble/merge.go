package ensemble

import (
	"fmt"
	"slices"

	"imet/internal/postprocess/probs"
)

// How Merge treats a label that a specialist and the base both predict.
const (
	MergeReplace = "replace" // the specialist's probability
	MergeMean    = "mean"    // the mean of the base's and every specialist's
)

// Merge puts specialists' probability files (each over a subset of the
// labels: one group, or any subset) into the label space of labels, the
// full list of attribute ids in column order. base, when its File is not
// nil, covers every label and gives the rows' order; without a base every
// label must come from some specialist and the first specialist gives the
// rows' order. Every file must hold the same images and name its labels
// (a .labels.csv sidecar). Where several specialists cover a label their
// mean is taken; mode says what happens to the base's own column there.
func Merge(base Input, specialists []Input, labels []string, mode string) (*probs.File, error) {
	if mode != MergeReplace && mode != MergeMean {
		return nil, fmt.Errorf("merge mode %q: want %s or %s", mode, MergeReplace, MergeMean)
	}
	if len(specialists) == 0 {
		return nil, fmt.Errorf("merge: no specialist files")
	}
	col := make(map[string]int, len(labels))
	for j, l := range labels {
		col[l] = j
	}
	ref := specialists[0]
	if base.File != nil {
		ref = base
	}
	rows := ref.File.Rows
	out := &probs.File{Matrix: probs.NewMatrix(rows, len(labels)), IDs: slices.Clone(ref.File.IDs), Labels: slices.Clone(labels)}
	sum := make([]float64, rows*len(labels))
	count := make([]int, len(labels))
	add := func(in Input, isBase bool) error {
		f := in.File
		if f.Labels == nil {
			if !isBase || f.Cols != len(labels) {
				return fmt.Errorf("%s has no labels sidecar %s: merging needs the attribute id of every column", in.Name, probs.LabelsPath(in.Name))
			}
		}
		if f.Rows != rows {
			return fmt.Errorf("%s has %d images, %s has %d", in.Name, f.Rows, ref.Name, rows)
		}
		rowMap, err := permutation(ref.Name, in.Name, "image", ref.File.IDs, f.IDs)
		if err != nil {
			return err
		}
		dst := make([]int, f.Cols)
		for c := range dst {
			if f.Labels == nil {
				dst[c] = c
				continue
			}
			j, ok := col[f.Labels[c]]
			if !ok {
				return fmt.Errorf("%s:%d: attribute id %s is not in the label set", probs.LabelsPath(in.Name), c+2, f.Labels[c])
			}
			dst[c] = j
		}
		for c, j := range dst {
			count[j]++
			for i := range rows {
				src := i
				if rowMap != nil {
					src = rowMap[i]
				}
				sum[i*len(labels)+j] += float64(f.Data[src*f.Cols+c])
			}
		}
		return nil
	}
	for _, s := range specialists {
		if err := add(s, false); err != nil {
			return nil, err
		}
	}
	covered := slices.Clone(count)
	if base.File != nil {
		if base.File.Labels != nil {
			for _, l := range labels {
				if !slices.Contains(base.File.Labels, l) {
					return nil, fmt.Errorf("%s lacks attribute %s: a base file covers every label", base.Name, l)
				}
			}
		}
		// The base's column counts where no specialist predicts, and in
		// the mean where one does.
		saved := slices.Clone(sum)
		savedCount := slices.Clone(count)
		clear(sum)
		clear(count)
		if err := add(base, true); err != nil {
			return nil, err
		}
		for j := range labels {
			if covered[j] == 0 {
				continue
			}
			for i := range rows {
				k := i*len(labels) + j
				if mode == MergeReplace {
					sum[k] = saved[k]
				} else {
					sum[k] += saved[k]
				}
			}
			if mode == MergeReplace {
				count[j] = savedCount[j]
			} else {
				count[j] += savedCount[j]
			}
		}
	}
	for j, l := range labels {
		if count[j] == 0 {
			return nil, fmt.Errorf("no file predicts attribute %s: give a base file of every label (--base), or a specialist for it", l)
		}
	}
	for k, v := range sum {
		out.Data[k] = float32(v / float64(count[k%len(labels)]))
	}
	return out, nil
}
