package thresholds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"imet/internal/base/atomicfile"
)

// FileVersion is the threshold file format this package writes and reads.
const FileVersion = 1

// File is a threshold file: the searched rules with their scores, and the
// label columns they were searched for, so that applying them to
// probabilities with other labels, another order or other groups fails
// loudly instead of predicting the wrong attributes.
type File struct {
	Version int `json:"version"`
	// Use names the rule predict and submit apply unless told otherwise.
	Use string `json:"use"`
	// Beta and EmptyRows record the metric the scores were computed with.
	Beta      float64 `json:"beta"`
	EmptyRows string  `json:"empty_rows"`
	// Labels holds the attribute id of each column, in column order.
	Labels []string `json:"labels"`
	// Groups names the label groups; LabelGroups maps each column to one.
	Groups      []string `json:"groups"`
	LabelGroups []int    `json:"label_groups"`
	// Rows is the number of images the rules were searched on.
	Rows  int      `json:"rows"`
	Rules []Result `json:"rules"`
	// HeldOut, when the rules were cross-validated, holds each rule's
	// score with thresholds searched on the other folds (CrossValidate).
	HeldOut []CVResult `json:"held_out,omitempty"`
}

// Rule returns the named rule, or the file's Use rule when name is empty.
func (f *File) Rule(name string) (*Rule, error) {
	if name == "" {
		name = f.Use
	}
	var names []string
	for i := range f.Rules {
		if f.Rules[i].Name == name {
			return &f.Rules[i].Rule, nil
		}
		names = append(names, f.Rules[i].Name)
	}
	return nil, fmt.Errorf("threshold file has no rule %q (it has %s)", name, strings.Join(names, ", "))
}

// Check reports whether the file was made for these label columns and groups.
func (f *File) Check(labels, groups []string, groupOf []int) error {
	if len(labels) != len(f.Labels) {
		return fmt.Errorf("threshold file is for %d labels, the probabilities have %d", len(f.Labels), len(labels))
	}
	for j := range labels {
		if labels[j] != f.Labels[j] {
			return fmt.Errorf("label column %d is attribute %s here but %s in the threshold file", j, labels[j], f.Labels[j])
		}
	}
	if !slices.Equal(groups, f.Groups) {
		return fmt.Errorf("label groups %v differ from the threshold file's %v", groups, f.Groups)
	}
	if groupOf != nil && !slices.Equal(groupOf, f.LabelGroups) {
		return fmt.Errorf("label-to-group map differs from the threshold file's")
	}
	return nil
}

func (f *File) validate() error {
	if f.Version != FileVersion {
		return fmt.Errorf("format version %d; this imet reads version %d", f.Version, FileVersion)
	}
	if len(f.LabelGroups) != len(f.Labels) {
		return fmt.Errorf("%d labels but %d label_groups", len(f.Labels), len(f.LabelGroups))
	}
	for j, g := range f.LabelGroups {
		if g < 0 || g >= len(f.Groups) {
			return fmt.Errorf("label_groups[%d] = %d, outside the %d groups", j, g, len(f.Groups))
		}
	}
	if len(f.Rules) == 0 {
		return fmt.Errorf("no rules")
	}
	for _, r := range f.Rules {
		if len(r.Rule.Thresholds) != len(f.Labels) {
			return fmt.Errorf("rule %s has %d thresholds for %d labels", r.Name, len(r.Rule.Thresholds), len(f.Labels))
		}
		if r.Rule.Bounds != nil && len(r.Rule.Bounds) != len(f.Groups) {
			return fmt.Errorf("rule %s has %d group bounds for %d groups", r.Name, len(r.Rule.Bounds), len(f.Groups))
		}
		for g, b := range r.Rule.Bounds {
			if b.Min < 0 || b.Max < 0 || (b.Max > 0 && b.Min > b.Max) {
				return fmt.Errorf("rule %s: bounds of group %s are min %d, max %d", r.Name, f.Groups[g], b.Min, b.Max)
			}
		}
	}
	for _, h := range f.HeldOut {
		if _, err := f.Rule(h.Name); err != nil {
			return fmt.Errorf("held_out: %w", err)
		}
	}
	if _, err := f.Rule(""); err != nil {
		return err
	}
	return nil
}

// WriteFile writes f as indented JSON, atomically.
func WriteFile(path string, f *File) error {
	f.Version = FileVersion
	if err := f.validate(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, append(flattenArrays(data), '\n'), 0o644)
}

var (
	scalarArray = regexp.MustCompile(`\[[^\[\]{}]*\]`)
	lineBreak   = regexp.MustCompile(`\n\s*`)
)

// flattenArrays puts each array of numbers or strings on one line, so that a
// file with a thousand thresholds per rule stays readable (and diffable
// rule by rule). Raw newlines occur in JSON only between tokens, never
// inside strings, so only layout changes.
func flattenArrays(data []byte) []byte {
	return scalarArray.ReplaceAllFunc(data, func(a []byte) []byte {
		a = lineBreak.ReplaceAll(a, []byte(" "))
		a = bytes.Replace(a, []byte("[ "), []byte("["), 1)
		if bytes.HasSuffix(a, []byte(" ]")) {
			a = append(a[:len(a)-2], ']')
		}
		return a
	})
}

// ReadFile reads and validates a threshold file; unknown fields are errors.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: data after the JSON object", path)
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}
