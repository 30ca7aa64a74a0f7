// Command knn times imet's exact cosine k-NN search (internal/postprocess/knn:
// blocked matrix product and top-k on libtorch) at iMet's scale, 109,237
// training embeddings of 2,048 dimensions, on a sample of queries, and the
// same search in NumPy (blocked float32 product, argpartition) on the same
// data, checking that both find the same neighbours.
//
//	go run ./bench/knn [-base 109237] [-dim 2048] [-queries 2048] [-k 20] [-block 1024] [-device cpu]
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"imet/internal/base/cpuinfo"
	"imet/internal/engine/torch"
	"imet/internal/postprocess/knn"
	"imet/internal/postprocess/probs"
)

func main() {
	nb := flag.Int("base", 109237, "base (training) embeddings")
	d := flag.Int("dim", 2048, "embedding width")
	nq := flag.Int("queries", 2048, "queries timed (the full self-search is extrapolated from them)")
	k := flag.Int("k", 20, "neighbours")
	block := flag.Int("block", 1024, "query rows per product")
	threads := flag.Int("threads", 0, "libtorch threads (0: one per core)")
	device := flag.String("device", "cpu", "cpu or cuda[:N]")
	python := flag.String("python", "/usr/bin/python3", "Python with NumPy; empty skips that side")
	flag.Parse()
	dev, err := torch.ParseDevice(*device)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, GOMAXPROCS %d\n", cpuinfo.Read(), runtime.GOMAXPROCS(0))

	r := rand.New(rand.NewPCG(1, 1))
	base := make([]float32, *nb**d)
	for i := range base {
		base[i] = float32(r.NormFloat64())
	}
	// Queries near base rows, so the neighbours are not a toss-up.
	query := make([]float32, *nq**d)
	for i := range *nq {
		j := r.IntN(*nb)
		for x := range *d {
			query[i**d+x] = base[j**d+x] + 0.5*float32(r.NormFloat64())
		}
	}
	o := knn.Options{K: *k, Block: *block, Device: dev, Threads: *threads}
	// Load libtorch and warm its kernels up on a small problem first.
	if _, err := knn.Search(query[:*d], 1, base[:100**d], 100, *d, nil, nil, o); err != nil {
		log.Fatal(err)
	}
	// One query: what uploading and normalising the base costs alone.
	start := time.Now()
	if _, err := knn.Search(query[:*d], 1, base, *nb, *d, nil, nil, o); err != nil {
		log.Fatal(err)
	}
	prepS := time.Since(start).Seconds()
	start = time.Now()
	res, err := knn.Search(query, *nq, base, *nb, *d, nil, nil, o)
	if err != nil {
		log.Fatal(err)
	}
	goS := time.Since(start).Seconds()
	full := prepS + (goS-prepS)/float64(*nq)*float64(*nb)
	fmt.Printf("imet knn: %d queries x %d base x %d dims, k=%d, block %d on %s: %.2f s, of which base upload+normalise %.2f s (%.0f queries/s; full %d x %d self-search about %.0f s)\n",
		*nq, *nb, *d, *k, *block, dev, goS, prepS, float64(*nq)/(goS-prepS), *nb, *nb, full)
	if *python == "" {
		return
	}
	dir, err := os.MkdirTemp("", "imet-bench-knn-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for name, m := range map[string]*probs.Matrix{"base": {Rows: *nb, Cols: *d, Data: base}, "query": {Rows: *nq, Cols: *d, Data: query}} {
		if err := probs.WriteNPY(filepath.Join(dir, name+".npy"), m); err != nil {
			log.Fatal(err)
		}
	}
	out, err := exec.Command(*python, "-c", numpySide, dir, fmt.Sprint(*k), fmt.Sprint(*block)).CombinedOutput()
	if err != nil {
		log.Fatalf("numpy: %v\n%s", err, out)
	}
	var npS float64
	fmt.Sscan(strings.TrimSpace(string(out)), &npS)
	idx, err := probs.ReadNPY(filepath.Join(dir, "idx.npy"))
	if err != nil {
		log.Fatal(err)
	}
	same := 0
	for i := range *nq {
		want := map[int]bool{}
		for n := range *k {
			want[int(idx.Data[i**k+n])] = true
		}
		for n := range *k {
			if want[int(res.Index[i**k+n])] {
				same++
			}
		}
	}
	fmt.Printf("numpy: %.2f s (%.0f queries/s); imet/numpy time %.2f; neighbour sets agree on %.4f of the %d x %d\n",
		npS, float64(*nq)/npS, goS/npS, float64(same)/float64(*nq**k), *nq, *k)
}

// numpySide is the reference: the same normalisation, products of the same
// block size in float32 (NumPy's BLAS), the top k by argpartition.
const numpySide = `
import sys, time, os
import numpy as np
d, k, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = np.load(os.path.join(d, "base.npy")); q = np.load(os.path.join(d, "query.npy"))
t = time.perf_counter()
bt = (b / np.linalg.norm(b, axis=1, keepdims=True)).T.copy()
out = np.empty((len(q), k), dtype=np.int64)
for s in range(0, len(q), block):
    x = q[s:s+block]; x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ bt
    part = np.argpartition(-sim, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sim, part, 1), axis=1)
    out[s:s+block] = np.take_along_axis(part, order, 1)
el = time.perf_counter() - t
np.save(os.path.join(d, "idx.npy"), out.astype(np.float32))
print(el)
`
