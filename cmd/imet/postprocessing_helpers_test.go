package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/data/dataset"
	"imet/internal/data/simprobs"
	"imet/internal/postprocess/probs"
)

// ppData is a generated iMet-layout set for the post-processing commands:
// labels.csv, train.csv, out-of-fold and test probabilities.
type ppData struct {
	dir, labels, train, oof, test, sample string
	nLabels, nTest                        int
}

// ppSetup writes labels (culture then tag, or the given labels.csv), a
// train.csv whose truth the out-of-fold probabilities were simulated from,
// and test probabilities with a sample submission.
func ppSetup(t *testing.T, labelsCSV string, rows, testRows int) *ppData {
	t.Helper()
	d := &ppData{dir: t.TempDir(), nTest: testRows}
	d.labels = filepath.Join(d.dir, "labels.csv")
	if labelsCSV == "" {
		var b strings.Builder
		b.WriteString("attribute_id,attribute_name\n")
		for j := range 40 {
			g := "tag"
			if j < 12 {
				g = "culture"
			}
			fmt.Fprintf(&b, "%d,%s::v%d\n", 100+j, g, j)
		}
		if err := os.WriteFile(d.labels, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		data, err := os.ReadFile(labelsCSV)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(d.labels, data, 0o644)
	}
	labels, err := dataset.ReadLabels(d.labels)
	if err != nil {
		t.Fatal(err)
	}
	d.nLabels = labels.Len()
	sp := simprobs.Generate(rows, labels.GroupOf, 3, 11)
	var train strings.Builder
	train.WriteString("id,attribute_ids\n")
	ids := make([]string, rows)
	for i, tr := range sp.Truth {
		ids[i] = fmt.Sprintf("img%05d", i)
		cols := make([]int, len(tr))
		for x, j := range tr {
			cols[x] = int(j)
		}
		fmt.Fprintf(&train, "%s,%s\n", ids[i], dataset.FormatIDs(labels, cols))
	}
	d.train = filepath.Join(d.dir, "train.csv")
	os.WriteFile(d.train, []byte(train.String()), 0o644)
	d.oof = filepath.Join(d.dir, "oof.npy")
	if err := probs.Save(d.oof, &probs.File{Matrix: &probs.Matrix{Rows: rows, Cols: sp.Cols, Data: sp.Probs}, IDs: ids, Labels: attrIDs(labels)}); err != nil {
		t.Fatal(err)
	}
	tp := simprobs.Generate(testRows, labels.GroupOf, 3, 12)
	tids := make([]string, testRows)
	var sample strings.Builder
	sample.WriteString("id,attribute_ids\n")
	for i := range tids {
		tids[i] = fmt.Sprintf("test%04d", i)
	}
	// The sample lists the images in reverse, so --sample must reorder.
	for i := range tids {
		fmt.Fprintf(&sample, "%s,0\n", tids[testRows-1-i])
	}
	d.test = filepath.Join(d.dir, "test.npy")
	if err := probs.Save(d.test, &probs.File{Matrix: &probs.Matrix{Rows: testRows, Cols: tp.Cols, Data: tp.Probs}, IDs: tids, Labels: attrIDs(labels)}); err != nil {
		t.Fatal(err)
	}
	d.sample = filepath.Join(d.dir, "sample_submission.csv")
	os.WriteFile(d.sample, []byte(sample.String()), 0o644)
	return d
}

func (d *ppData) path(name string) string { return filepath.Join(d.dir, name) }

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("imet %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}
