package knn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"imet/internal/base/pyref"
	"imet/internal/postprocess/probs"
)

// clustered returns n rows of dimension d around c centres (so neighbours
// mean something), the centre of each row and a multi-hot truth per row
// derived from its centre.
func clustered(n, d, c, cols int, seed uint64) (x []float32, centre []int, truth [][]int) {
	r := rand.New(rand.NewPCG(seed, 3))
	cs := make([]float64, c*d)
	for i := range cs {
		cs[i] = r.NormFloat64()
	}
	x = make([]float32, n*d)
	centre = make([]int, n)
	truth = make([][]int, n)
	for i := range n {
		centre[i] = r.IntN(c)
		for j := range d {
			x[i*d+j] = float32(cs[centre[i]*d+j] + 0.7*r.NormFloat64())
		}
		truth[i] = []int{centre[i] % cols}
		if r.Float64() < 0.3 {
			truth[i] = append(truth[i], r.IntN(cols))
		}
		slices.Sort(truth[i])
		truth[i] = slices.Compact(truth[i])
	}
	return x, centre, truth
}

func multiHot(truth [][]int, cols int) []float32 {
	y := make([]float32, len(truth)*cols)
	for i, ls := range truth {
		for _, c := range ls {
			y[i*cols+c] = 1
		}
	}
	return y
}

// TestSearchMatchesNumPy compares the blocked libtorch search (blocks
// smaller than the query set, so several products and a partial last one)
// and the label transfer with NumPy's exhaustive float64 computation.
func TestSearchMatchesNumPy(t *testing.T) {
	py := pyref.Require(t, "numpy")
	const nq, nb, d, cols, k = 70, 230, 24, 9, 7
	const temp = 0.1
	q, _, _ := clustered(nq, d, 6, cols, 1)
	b, _, truth := clustered(nb, d, 6, cols, 2)
	r := rand.New(rand.NewPCG(9, 9))
	qg, bg := make([]int, nq), make([]int, nb)
	for i := range qg {
		qg[i] = r.IntN(4)
	}
	for i := range bg {
		bg[i] = r.IntN(4)
	}
	nbrs, err := Search(q, nq, b, nb, d, qg, bg, Options{K: k, Block: 32, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr := Transfer(nbrs, truth, cols, temp)

	dir := t.TempDir()
	write := func(name string, rows, cols int, v []float32) {
		if err := probs.WriteNPY(filepath.Join(dir, name+".npy"), &probs.Matrix{Rows: rows, Cols: cols, Data: v}); err != nil {
			t.Fatal(err)
		}
	}
	write("q", nq, d, q)
	write("b", nb, d, b)
	write("qg", nq, 1, groupsF(qg))
	write("bg", nb, 1, groupsF(bg))
	write("y", nb, cols, multiHot(truth, cols))
	if out, err := exec.Command(py, "testdata/knn_ref.py", dir, strconv.Itoa(k), fmt.Sprint(temp)).CombinedOutput(); err != nil {
		t.Fatalf("knn_ref.py: %v\n%s", err, out)
	}
	read := func(name string) []float32 {
		m, err := probs.ReadNPY(filepath.Join(dir, name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		return m.Data
	}
	wantIdx, wantSim, wantTr := read("idx"), read("sim"), read("tr")
	// float32 products against float64: similarities agree to about 1e-6;
	// two neighbours closer than that may swap places, nothing else.
	const tol = 1e-5
	for i := range nbrs.Index {
		if math.Abs(float64(nbrs.Sim[i]-wantSim[i])) > tol {
			t.Fatalf("query %d neighbour %d: similarity %g, NumPy %g", i/k, i%k, nbrs.Sim[i], wantSim[i])
		}
		if int(nbrs.Index[i]) != int(wantIdx[i]) && (i%k == k-1 || math.Abs(float64(wantSim[i]-wantSim[i+1])) > tol) {
			t.Fatalf("query %d neighbour %d: base row %d, NumPy %d", i/k, i%k, nbrs.Index[i], int(wantIdx[i]))
		}
		if qg[i/k] == bg[nbrs.Index[i]] {
			t.Fatalf("query %d (group %d) got base row %d of its own group", i/k, qg[i/k], nbrs.Index[i])
		}
	}
	for i := range tr {
		if math.Abs(float64(tr[i]-wantTr[i])) > tol {
			t.Fatalf("transfer cell %d: %g, NumPy %g", i, tr[i], wantTr[i])
		}
	}
}

func TestSearchRefusesTooFewRows(t *testing.T) {
	q, _, _ := clustered(4, 3, 2, 2, 1)
	if _, err := Search(q, 4, q, 4, 3, []int{0, 0, 1, 1}, []int{0, 0, 1, 1}, Options{K: 3}); err == nil {
		t.Fatal("k=3 accepted with 2 rows outside each group")
	}
}
