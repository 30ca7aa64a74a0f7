// Command thresholds benchmarks the threshold search at iMet scale against
// the NumPy implementation of the same search
// (scripts/golden/thresholds_ref.py), side by side on the same data.
//
//	go run ./bench/thresholds [-rows 109237] [-reps 3] [-python /usr/bin/python3]
//
// It times global + per-group + one per-label sweep (rounds 1), each rule
// also scored exactly, and prints a Markdown table for docs/benchmarks.md.
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
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"imet/internal/data/simprobs"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
)

func main() {
	rows := flag.Int("rows", 109237, "images")
	reps := flag.Int("reps", 3, "repetitions of each side (the fastest is reported)")
	python := flag.String("python", "/usr/bin/python3", "Python with NumPy; empty skips the NumPy side")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the Go runs here")
	write := flag.String("write", "", "also write the problem as an iMet-layout set here (labels.csv, train.csv, oof.npy + sidecars) to try the commands at scale")
	flag.Parse()

	groupOf, groups := simprobs.IMetGroups()
	t0 := time.Now()
	sp := simprobs.Generate(*rows, groupOf, 4.4, 2019)
	var nTrue int
	for _, t := range sp.Truth {
		nTrue += len(t)
	}
	log.Printf("generated %d x %d (%.2f true labels/image) in %v", sp.Rows, sp.Cols, float64(nTrue)/float64(sp.Rows), time.Since(t0).Round(time.Millisecond))
	if *write != "" {
		if err := writeSet(*write, sp, groupOf, groups); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote labels.csv, train.csv, oof.npy in %s", *write)
	}
	pr := &thresholds.Problem{Rows: sp.Rows, Cols: sp.Cols, Probs: sp.Probs, Truth: sp.Truth, GroupOf: groupOf, Groups: groups}
	o := thresholds.DefaultOptions()
	o.Rounds = 1
	rules := []string{thresholds.Global, thresholds.Group, thresholds.Label}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
	}
	var best time.Duration
	var res []thresholds.Result
	for r := range *reps {
		runtime.GC()
		t := time.Now()
		var err error
		res, err = thresholds.Search(pr, rules, o)
		if err != nil {
			log.Fatal(err)
		}
		d := time.Since(t)
		log.Printf("go run %d: %v", r+1, d.Round(time.Millisecond))
		if r == 0 || d < best {
			best = d
		}
	}
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	var nnz int
	for _, v := range pr.Probs {
		if v >= float32(o.Grid[0]) {
			nnz++
		}
	}
	log.Printf("%.1f probabilities per image at or above the lowest candidate %v", float64(nnz)/float64(pr.Rows), o.Grid[0])
	fmt.Printf("| implementation | seconds | global F2 | group F2 | label F2 |\n|---|---|---|---|---|\n")
	fmt.Printf("| Go (GOMAXPROCS=%d), best of %d | %.2f | %.4f | %.4f | %.4f |\n", runtime.GOMAXPROCS(0), *reps, best.Seconds(), res[0].Score, res[1].Score, res[2].Score)
	if *python == "" {
		return
	}
	dir, err := os.MkdirTemp("", "imet-bench-thresholds-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := probs.WriteNPY(filepath.Join(dir, "p.npy"), &probs.Matrix{Rows: pr.Rows, Cols: pr.Cols, Data: pr.Probs}); err != nil {
		log.Fatal(err)
	}
	var sb strings.Builder
	for _, tr := range pr.Truth {
		for x, j := range tr {
			if x > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprint(&sb, j)
		}
		sb.WriteByte('\n')
	}
	os.WriteFile(filepath.Join(dir, "truth.txt"), []byte(sb.String()), 0o644)
	spec, _ := json.Marshal(map[string]any{
		"probs": filepath.Join(dir, "p.npy"), "truth": filepath.Join(dir, "truth.txt"),
		"group_of": groupOf, "n_groups": len(groups), "grid_step": 0.005, "grid_hi": 0.995,
		"beta": 2, "empty": "zero", "at_least_one": true, "shrink": o.Shrink, "rounds": 1, "repeat": *reps,
	})
	os.WriteFile(filepath.Join(dir, "spec.json"), spec, 0o644)
	cmd := exec.Command(*python, "scripts/golden/thresholds_ref.py", filepath.Join(dir, "spec.json"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("numpy side: %v", err)
	}
	var ref map[string]json.RawMessage
	json.Unmarshal(out, &ref)
	var secs float64
	json.Unmarshal(ref["seconds"], &secs)
	var scores [3]float64
	same := 0
	for x, name := range rules {
		var r struct {
			Thresholds []float64 `json:"thresholds"`
			Score      float64   `json:"score"`
		}
		json.Unmarshal(ref[name], &r)
		scores[x] = r.Score
		if slices.Equal(r.Thresholds, res[x].Rule.Thresholds) {
			same++
		}
	}
	fmt.Printf("| NumPy %s, best of %d | %.2f | %.4f | %.4f | %.4f |\n", numpyVersion(*python), *reps, secs, scores[0], scores[1], scores[2])
	fmt.Printf("\nratio NumPy / Go: %.1fx; rules with identical thresholds: %d of %d\n", secs/best.Seconds(), same, len(rules))
}

func numpyVersion(py string) string {
	out, err := exec.Command(py, "-c", "import numpy; print(numpy.__version__)").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// writeSet writes the simulated problem in the iMet layout.
func writeSet(dir string, sp *simprobs.Problem, groupOf []int, groups []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var lb strings.Builder
	lb.WriteString("attribute_id,attribute_name\n")
	attrs := make([]string, len(groupOf))
	for j, g := range groupOf {
		attrs[j] = fmt.Sprint(j)
		fmt.Fprintf(&lb, "%d,%s::label%d\n", j, groups[g], j)
	}
	if err := os.WriteFile(filepath.Join(dir, "labels.csv"), []byte(lb.String()), 0o644); err != nil {
		return err
	}
	var tb strings.Builder
	tb.WriteString("id,attribute_ids\n")
	ids := make([]string, sp.Rows)
	for i, tr := range sp.Truth {
		ids[i] = fmt.Sprintf("%016x", i*2654435761)
		tb.WriteString(ids[i] + ",")
		for x, j := range tr {
			if x > 0 {
				tb.WriteByte(' ')
			}
			fmt.Fprint(&tb, j)
		}
		tb.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "train.csv"), []byte(tb.String()), 0o644); err != nil {
		return err
	}
	return probs.Save(filepath.Join(dir, "oof.npy"), &probs.File{Matrix: &probs.Matrix{Rows: sp.Rows, Cols: sp.Cols, Data: sp.Probs}, IDs: ids, Labels: attrs})
}
