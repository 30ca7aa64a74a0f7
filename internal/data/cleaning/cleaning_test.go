package cleaning_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"imet/internal/data/cleaning"
	"imet/internal/data/dataset"
	"imet/internal/postprocess/probs"
)

func labelSet(t *testing.T, n int) *dataset.Labels {
	ids, names := make([]int, n), make([]string, n)
	for j := range n {
		ids[j], names[j] = 10+j, "tag::t"+strconv.Itoa(j)
	}
	l, err := dataset.NewLabels(ids, names)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The dropped rows are exactly those of largest mean BCE, computed here
// label by label; the others keep their order and labels.
func TestDropsTheWorstRows(t *testing.T) {
	const rows, cols = 200, 6
	labels := labelSet(t, cols)
	rng := rand.New(rand.NewPCG(1, 2))
	var train []dataset.Row
	oof := &probs.File{Matrix: probs.NewMatrix(rows, cols)}
	// The OOF file lists its columns reversed and its rows in another order.
	for c := range cols {
		oof.Labels = append(oof.Labels, strconv.Itoa(10+cols-1-c))
	}
	perm := rng.Perm(rows)
	bce := make([]float64, rows)
	for i := range rows {
		r := dataset.Row{ID: "im" + strconv.Itoa(i)}
		for j := range cols {
			if rng.Float64() < 0.3 {
				r.Labels = append(r.Labels, j)
			}
		}
		train = append(train, r)
		oof.IDs = append(oof.IDs, "")
	}
	for i, r := range train {
		dst := perm[i]
		oof.IDs[dst] = r.ID
		for j := range cols {
			p := float32(rng.Float64())
			oof.Row(dst)[cols-1-j] = p
			pv := math.Min(math.Max(float64(p), 1e-7), 1-1e-7)
			if slices.Contains(r.Labels, j) {
				bce[i] -= math.Log(pv) / cols
			} else {
				bce[i] -= math.Log(1-pv) / cols
			}
		}
	}
	o := cleaning.DefaultOptions()
	o.Share = 0.1
	res, err := cleaning.Clean(train, labels, oof, "oof.npy", o)
	if err != nil {
		t.Fatal(err)
	}
	order := make([]int, rows)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return bce[order[a]] > bce[order[b]] })
	if len(res.Touched) != 20 || len(res.Rows) != 180 {
		t.Fatalf("%d touched, %d kept", len(res.Touched), len(res.Rows))
	}
	for k, tc := range res.Touched {
		want := order[k]
		if tc.ID != train[want].ID || tc.Line != want+2 || math.Abs(tc.Score-bce[want]) > 1e-9 {
			t.Fatalf("worst %d: %+v, want %s (line %d, bce %v)", k, tc, train[want].ID, want+2, bce[want])
		}
	}
	dropped := map[string]bool{}
	for _, tc := range res.Touched {
		dropped[tc.ID] = true
	}
	var kept []dataset.Row
	for _, r := range train {
		if !dropped[r.ID] {
			kept = append(kept, r)
		}
	}
	for i := range kept {
		if kept[i].ID != res.Rows[i].ID || !slices.Equal(kept[i].Labels, res.Rows[i].Labels) {
			t.Fatalf("kept row %d: %+v, want %+v", i, res.Rows[i], kept[i])
		}
	}
	report := filepath.Join(t.TempDir(), "report.csv")
	if err := cleaning.WriteReport(report, res); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(report)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 21 || !strings.HasPrefix(lines[1], res.Touched[0].ID+",") {
		t.Fatalf("report:\n%s", b)
	}
}

func TestRelabelFlipsConfidentContradictions(t *testing.T) {
	labels := labelSet(t, 3)
	train := []dataset.Row{{ID: "a", Labels: []int{0}}, {ID: "b", Labels: []int{1}}, {ID: "c", Labels: []int{0, 2}}}
	oof := &probs.File{Matrix: &probs.Matrix{Rows: 3, Cols: 3, Data: []float32{
		0.8, 0.1, 0.2, // a: agrees
		0.95, 0.05, 0.5, // b: label 1 contradicted, 0 confidently missing
		0.6, 0.5, 0.02, // c: label 2 contradicted
	}}, IDs: []string{"a", "b", "c"}}
	o := cleaning.Options{By: cleaning.Contradictions, Share: 0.5, Action: cleaning.Relabel, Confident: 0.9}
	res, err := cleaning.Clean(train, labels, oof, "oof.npy", o)
	if err != nil {
		t.Fatal(err)
	}
	// Share 0.5 of 3 rows rounds to 2: b (2 contradictions), then c (1).
	if len(res.Touched) != 2 || res.Touched[0].ID != "b" || res.Touched[1].ID != "c" {
		t.Fatalf("touched %+v", res.Touched)
	}
	if b := res.Touched[0]; !slices.Equal(b.Added, []int{10}) || !slices.Equal(b.Removed, []int{11}) {
		t.Fatalf("b: %+v", b)
	}
	want := []dataset.Row{{ID: "a", Labels: []int{0}}, {ID: "b", Labels: []int{0}}, {ID: "c", Labels: []int{0}}}
	for i := range want {
		if res.Rows[i].ID != want[i].ID || !slices.Equal(res.Rows[i].Labels, want[i].Labels) {
			t.Fatalf("rows %+v, want %+v", res.Rows, want)
		}
	}
	// A training image without an OOF row is an error with its line.
	oof.IDs[2] = "z"
	if _, err := cleaning.Clean(train, labels, oof, "oof.npy", o); err == nil || !strings.Contains(err.Error(), "train.csv:4") {
		t.Fatalf("missing row: %v", err)
	}
}
