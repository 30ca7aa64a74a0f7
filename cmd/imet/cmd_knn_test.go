package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/data/folds"
	"imet/internal/postprocess/probs"
)

// twinData writes pairs of training images with identical embeddings and
// a label set no other pair has, uninformative model probabilities, test
// images that copy one pair's embedding each, and two fold splits: twins
// in one fold, or twins split across folds.
func twinData(t *testing.T) (dir string, labelsOf [][]int) {
	t.Helper()
	dir = t.TempDir()
	const pairs, d, cols = 30, 16, 22
	r := rand.New(rand.NewPCG(8, 8))
	var lb, tr strings.Builder
	lb.WriteString("attribute_id,attribute_name\n")
	for j := range cols {
		fmt.Fprintf(&lb, "%d,tag::v%d\n", j, j)
	}
	tr.WriteString("id,attribute_ids\n")
	n := 2 * pairs
	ids := make([]string, n)
	emb := make([]float32, n*d)
	p := make([]float32, n*cols)
	same, split := make([]int, n), make([]int, n)
	labelsOf = make([][]int, pairs)
	for q := range pairs {
		labelsOf[q] = []int{q % 20, 20 + q/20}
		v := make([]float32, d)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		for s := range 2 {
			i := 2*q + s
			ids[i] = fmt.Sprintf("tw%02d_%d", q, s)
			copy(emb[i*d:], v)
			same[i] = q % 3
			split[i] = (q + s) % 3
			fmt.Fprintf(&tr, "%s,%d %d\n", ids[i], labelsOf[q][0], labelsOf[q][1])
		}
	}
	for i := range p {
		p[i] = float32(r.Float64() * 0.3)
	}
	os.WriteFile(filepath.Join(dir, "labels.csv"), []byte(lb.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "train.csv"), []byte(tr.String()), 0o644)
	folds.Write(filepath.Join(dir, "same.csv"), ids, same)
	folds.Write(filepath.Join(dir, "split.csv"), ids, split)
	save := func(name string, rows, cols int, data []float32, ids []string) {
		if err := probs.Save(filepath.Join(dir, name), &probs.File{Matrix: &probs.Matrix{Rows: rows, Cols: cols, Data: data}, IDs: ids}); err != nil {
			t.Fatal(err)
		}
	}
	save("oof.npy", n, cols, p, ids)
	// The embeddings list the images in reverse: knn must align by id.
	rev, revEmb := slices.Clone(ids), make([]float32, 0, n*d)
	slices.Reverse(rev)
	for i := n - 1; i >= 0; i-- {
		revEmb = append(revEmb, emb[i*d:(i+1)*d]...)
	}
	save("emb_train.npy", n, d, revEmb, rev)
	tids := make([]string, pairs)
	temb := make([]float32, 0, pairs*d)
	for q := range pairs {
		tids[q] = fmt.Sprintf("test%02d", q)
		temb = append(temb, emb[2*q*d:(2*q+1)*d]...)
	}
	save("test.npy", pairs, cols, p[:pairs*cols], tids)
	save("emb_test.npy", pairs, d, temb, tids)
	return dir, labelsOf
}

// TestKNNNeighboursComeFromOtherFolds runs imet knn with one neighbour and
// the neighbours alone (share 1): the OOF row of an image is then exactly
// its neighbour's labels. With twins in one fold, no image may get its
// twin's labels (unique to the pair): the twin, similarity 1, is excluded.
// With twins in different folds every image gets them.
func TestKNNNeighboursComeFromOtherFolds(t *testing.T) {
	dir, labelsOf := twinData(t)
	f := func(n string) string { return filepath.Join(dir, n) }
	run := func(foldsFile string) *probs.File {
		mustRun(t, "knn", "--oof", f("oof.npy"), "--test", f("test.npy"), "--train-emb", f("emb_train.npy"),
			"--test-emb", f("emb_test.npy"), "--truth", f("train.csv"), "--labels", f("labels.csv"), "--folds", f(foldsFile),
			"--out-oof", f("knn_oof.npy"), "--out-test", f("knn_test.npy"), "--k", "1", "--alphas", "1", "--temps", "0.1",
			"--block", "7", "--threads", "1")
		out, err := probs.Load(f("knn_oof.npy"))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	hasLabels := func(o *probs.File, i, pair int) bool {
		var on []int
		for j, v := range o.Row(i) {
			if v > 0.5 {
				on = append(on, j)
			}
		}
		return slices.Equal(on, labelsOf[pair])
	}
	same := run("same.csv")
	for i := range same.Rows {
		if hasLabels(same, i, i/2) {
			t.Fatalf("image %s got its same-fold twin's labels: a neighbour from its own fold", same.IDs[i])
		}
	}
	test, err := probs.Load(f("knn_test.npy"))
	if err != nil {
		t.Fatal(err)
	}
	for q := range test.Rows {
		if !hasLabels(test, q, q) {
			t.Fatalf("test image %d copies pair %d but got %v", q, q, test.Row(q))
		}
	}
	split := run("split.csv")
	for i := range split.Rows {
		if !hasLabels(split, i, i/2) {
			t.Fatalf("image %s did not get its other-fold twin's labels: %v", split.IDs[i], split.Row(i))
		}
	}
}

func TestKNNNamesMissingEmbeddingRows(t *testing.T) {
	dir, _ := twinData(t)
	f := func(n string) string { return filepath.Join(dir, n) }
	code, _, errs := runCLI(t, "knn", "--oof", f("oof.npy"), "--train-emb", f("emb_test.npy"), "--truth", f("train.csv"),
		"--labels", f("labels.csv"), "--folds", f("same.csv"), "--out-oof", f("k.npy"))
	if code == 0 || !strings.Contains(errs, "emb_test.ids.csv has no row for image") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
