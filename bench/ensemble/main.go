// Command ensemble times imet's ensemble methods against NumPy/SciPy
// (scripts/golden/ensemble_ref.py) on the same simulated files, and checks
// that the results agree.
//
//	go run ./bench/ensemble [-rows 20000] [-files 2] [-reps 2]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"imet/internal/data/simprobs"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/probs"
)

func main() {
	rows := flag.Int("rows", 20000, "images per file")
	nFiles := flag.Int("files", 2, "files to combine")
	reps := flag.Int("reps", 2, "repetitions of each side (the fastest is reported)")
	python := flag.String("python", "/usr/bin/python3", "Python with NumPy and SciPy; empty skips that side")
	flag.Parse()

	dir, err := os.MkdirTemp("", "imet-bench-ensemble-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	groupOf, _ := simprobs.IMetGroups()
	var in []ensemble.Input
	var paths []string
	for k := range *nFiles {
		sp := simprobs.Generate(*rows, groupOf, 4.4, uint64(k+1))
		ids := make([]string, sp.Rows)
		for i := range ids {
			ids[i] = fmt.Sprint(i)
		}
		f := &probs.File{Matrix: &probs.Matrix{Rows: sp.Rows, Cols: sp.Cols, Data: sp.Probs}, IDs: ids}
		p := filepath.Join(dir, fmt.Sprintf("in%d.npy", k))
		if err := probs.Save(p, f); err != nil {
			log.Fatal(err)
		}
		in = append(in, ensemble.Input{Name: p, File: f})
		paths = append(paths, p)
	}
	methods := []ensemble.Method{ensemble.Mean, ensemble.Rank, ensemble.GeoMean}
	goSecs := map[ensemble.Method]float64{}
	for _, m := range methods {
		var out *probs.File
		for r := range *reps {
			runtime.GC()
			t := time.Now()
			if out, err = ensemble.Combine(in, m, nil); err != nil {
				log.Fatal(err)
			}
			if s := time.Since(t).Seconds(); r == 0 || s < goSecs[m] {
				goSecs[m] = s
			}
		}
		if err := probs.WriteNPY(filepath.Join(dir, string(m)+".npy"), out.Matrix); err != nil {
			log.Fatal(err)
		}
	}
	ref := map[string]struct {
		Seconds float64 `json:"seconds"`
		MaxDiff float64 `json:"max_abs_diff"`
	}{}
	if *python != "" {
		cmd := exec.Command(*python, append([]string{"scripts/golden/ensemble_ref.py", fmt.Sprint(*reps)}, paths...)...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			log.Fatalf("numpy side: %v", err)
		}
		if err := json.Unmarshal(out, &ref); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%d files of %d x %d, best of %d, GOMAXPROCS=%d\n\n", *nFiles, *rows, len(groupOf), *reps, runtime.GOMAXPROCS(0))
	fmt.Println("| method | Go s | NumPy/SciPy s | ratio | max abs difference |\n|---|---|---|---|---|")
	for _, m := range methods {
		r := ref[string(m)]
		ratio := 0.0
		if r.Seconds > 0 {
			ratio = r.Seconds / goSecs[m]
		}
		fmt.Printf("| %s | %.2f | %.2f | %.1fx | %.1e |\n", m, goSecs[m], r.Seconds, ratio, r.MaxDiff)
	}
}
