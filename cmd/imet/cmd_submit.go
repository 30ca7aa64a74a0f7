package main

import (
	"fmt"
	"strings"

	"imet/internal/data/dataset"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/submission"
	"imet/internal/postprocess/thresholds"
)

type submitCmd struct {
	Probs      string `help:"Test probabilities: .npy with its .ids.csv sidecar." required:"" type:"existingfile"`
	Thresholds string `help:"Threshold file written by imet thresholds." required:"" type:"existingfile"`
	Labels     string `help:"labels.csv: the label columns and their groups." required:"" type:"existingfile"`
	Out        string `help:"Submission to write." default:"submission.csv"`
	Rule       string `help:"Rule of the threshold file to apply (default: the one it marks to use)."`
	Sample     string `help:"sample_submission.csv: write rows in its order and check that the images are the same." type:"existingfile"`
	AllowEmpty bool   `help:"Leave a row empty when nothing passes, instead of writing its best label."`
}

func init() {
	register("submit", "Apply a threshold file to test probabilities and write submission.csv.", "Post-processing", &submitCmd{})
}

func (c *submitCmd) Run(g *Globals) error {
	labels, err := dataset.ReadLabels(c.Labels)
	if err != nil {
		return err
	}
	tf, err := thresholds.ReadFile(c.Thresholds)
	if err != nil {
		return err
	}
	if err := tf.Check(attrIDs(labels), labels.Groups, labels.GroupOf); err != nil {
		return fmt.Errorf("%s does not fit %s: %w", c.Thresholds, c.Labels, err)
	}
	rule, err := tf.Rule(c.Rule)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Thresholds, err)
	}
	f, err := probs.Load(c.Probs)
	if err != nil {
		return err
	}
	if err := checkColumns(c.Probs, f, labels, c.Labels); err != nil {
		return err
	}
	if err := checkRange(c.Probs, f, labels); err != nil {
		return err
	}
	ids, m := f.IDs, f.Matrix
	if c.Sample != "" {
		if ids, m, err = reorderAs(c.Sample, c.Probs, f); err != nil {
			return err
		}
	}
	pred, err := submission.Predict(m, rule, labels.GroupOf, len(labels.Groups), submission.Options{AllowEmpty: c.AllowEmpty})
	if err != nil {
		return err
	}
	if err := submission.Write(c.Out, ids, attrIDs(labels), pred); err != nil {
		return err
	}
	if g.Quiet {
		return nil
	}
	s := submission.Summarise(pred, labels.GroupOf, len(labels.Groups))
	var parts []string
	for k, v := range s.PerGroup {
		parts = append(parts, fmt.Sprintf("%s %.2f", labels.Groups[k], v))
	}
	name := c.Rule
	if name == "" {
		name = tf.Use
	}
	fmt.Fprintf(g.Stdout, "wrote %s: %d images, rule %s, %.2f labels/image (%s), %d empty rows\n",
		c.Out, s.Rows, name, s.MeanLabels, strings.Join(parts, ", "), s.Empty)
	return nil
}

// reorderAs puts f's rows in the order of a sample submission, which must
// list exactly f's images.
func reorderAs(samplePath, probsPath string, f *probs.File) ([]string, *probs.Matrix, error) {
	want, err := dataset.ReadSampleSubmission(samplePath)
	if err != nil {
		return nil, nil, err
	}
	pos := make(map[string]int, len(f.IDs))
	for i, id := range f.IDs {
		pos[id] = i
	}
	if len(want) != len(f.IDs) {
		return nil, nil, fmt.Errorf("%s lists %d images but %s has %d", samplePath, len(want), probsPath, len(f.IDs))
	}
	m := probs.NewMatrix(f.Rows, f.Cols)
	for i, id := range want {
		src, ok := pos[id]
		if !ok {
			return nil, nil, fmt.Errorf("image %q (line %d of %s) has no probabilities in %s", id, i+2, samplePath, probsPath)
		}
		copy(m.Row(i), f.Row(src))
	}
	return want, m, nil
}
