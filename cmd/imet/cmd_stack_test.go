package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"imet/internal/data/folds"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/stacking"
)

// stackData writes labels.csv, a train.csv of random labels, folds.csv and
// a first-level "OOF" file of random probabilities that know nothing of
// the labels: whatever a booster gets right about it, it memorised.
func stackData(t *testing.T, rows, cols int) (dir string, truth [][]int) {
	t.Helper()
	dir = t.TempDir()
	r := rand.New(rand.NewPCG(5, 5))
	var lb, tr strings.Builder
	lb.WriteString("attribute_id,attribute_name\n")
	for j := range cols {
		g := "tag"
		if j < cols/3 {
			g = "culture"
		}
		fmt.Fprintf(&lb, "%d,%s::v%d\n", j, g, j)
	}
	tr.WriteString("id,attribute_ids\n")
	ids := make([]string, rows)
	fold := make([]int, rows)
	p := make([]float32, rows*cols)
	truth = make([][]int, rows)
	for i := range rows {
		ids[i] = fmt.Sprintf("im%03d", i)
		fold[i] = i % 3
		var s []string
		for j := range cols {
			p[i*cols+j] = float32(r.Float64())
			if r.Float64() < 0.3 {
				truth[i] = append(truth[i], j)
				s = append(s, fmt.Sprint(j))
			}
		}
		fmt.Fprintf(&tr, "%s,%s\n", ids[i], strings.Join(s, " "))
	}
	os.WriteFile(filepath.Join(dir, "labels.csv"), []byte(lb.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "train.csv"), []byte(tr.String()), 0o644)
	if err := folds.Write(filepath.Join(dir, "folds.csv"), ids, fold); err != nil {
		t.Fatal(err)
	}
	if err := probs.Save(filepath.Join(dir, "oof.npy"), &probs.File{Matrix: &probs.Matrix{Rows: rows, Cols: cols, Data: p}, IDs: ids}); err != nil {
		t.Fatal(err)
	}
	return dir, truth
}

// auc is the probability that a random positive cell outscores a random
// negative one.
func auc(p []float32, truth [][]int, cols int) float64 {
	type cell struct {
		v   float32
		pos bool
	}
	var cs []cell
	for i, ls := range truth {
		for j := range cols {
			cs = append(cs, cell{p[i*cols+j], slices.Contains(ls, j)})
		}
	}
	sort.Slice(cs, func(a, b int) bool { return cs[a].v < cs[b].v })
	var pos, neg, sum float64
	for i, c := range cs {
		if c.pos {
			pos++
			sum += float64(i + 1)
		} else {
			neg++
		}
	}
	return (sum - pos*(pos+1)/2) / (pos * neg)
}

// TestStackOOFIsOutOfFold gives a deep booster random labels and random
// features. Fed its own training images as "test", the fold boosters
// recall the labels they memorised; the stacked OOF, whose every row comes
// from a booster that never saw it, is at chance.
func TestStackOOFIsOutOfFold(t *testing.T) {
	if err := stacking.Load(); err != nil {
		t.Skip(err)
	}
	dir, truth := stackData(t, 60, 6)
	in := filepath.Join(dir, "oof.npy")
	out := mustRun(t, "stack", "--oof", in, "--test", in, "--truth", filepath.Join(dir, "train.csv"),
		"--labels", filepath.Join(dir, "labels.csv"), "--folds", filepath.Join(dir, "folds.csv"),
		"--out-oof", filepath.Join(dir, "s_oof.npy"), "--out-test", filepath.Join(dir, "s_test.npy"),
		"--rounds", "60", "--depth", "8", "--eta", "0.5", "--threads", "1", "--param", "min_child_weight=0")
	if !strings.Contains(out, "5 features") {
		t.Errorf("summary: %s", out)
	}
	oof, err := probs.Load(filepath.Join(dir, "s_oof.npy"))
	if err != nil {
		t.Fatal(err)
	}
	test, err := probs.Load(filepath.Join(dir, "s_test.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if len(oof.Labels) != 6 || oof.IDs[59] != "im059" {
		t.Fatalf("sidecars: %v, %v", oof.Labels, oof.IDs[59])
	}
	seen, held := auc(test.Data, truth, 6), auc(oof.Data, truth, 6)
	t.Logf("AUC on rows the boosters trained on %.3f, stacked OOF %.3f", seen, held)
	if seen < 0.75 {
		t.Fatalf("the boosters did not memorise their training rows (AUC %.3f): the test cannot tell", seen)
	}
	if held > 0.62 {
		t.Fatalf("stacked OOF AUC %.3f on random labels: held-out rows leaked into their boosters", held)
	}
}

func TestStackRefusesMisalignedModels(t *testing.T) {
	dir, _ := stackData(t, 30, 6)
	f, _ := probs.Load(filepath.Join(dir, "oof.npy"))
	f.IDs[4], f.IDs[5] = f.IDs[5], f.IDs[4]
	other := filepath.Join(dir, "other.npy")
	probs.Save(other, f)
	code, _, errs := runCLI(t, "stack", "--oof", filepath.Join(dir, "oof.npy")+","+other, "--truth", filepath.Join(dir, "train.csv"),
		"--labels", filepath.Join(dir, "labels.csv"), "--folds", filepath.Join(dir, "folds.csv"), "--out-oof", filepath.Join(dir, "s.npy"))
	if code == 0 || !strings.Contains(errs, "other.ids.csv") || !strings.Contains(errs, "line 6") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "s.npy")); err == nil {
		t.Fatal("an output was written despite the error")
	}
}
