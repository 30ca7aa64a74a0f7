// Command weights times reading pretrained-weight files: imet's pure-Go
// readers (internal/zoo/weights) against torch.load in Debian's Python torch,
// on the same files, alternating, and prints the ratios. The files are a
// seeded torchvision state dict in both torch.save formats, written by
// load.py into a temporary directory.
//
//	go run ./bench/weights [-arch densenet161] [-repeats 3]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"imet/internal/zoo/weights"
)

func main() {
	arch := flag.String("arch", "densenet161", "torchvision architecture whose state dict is read")
	repeats := flag.Int("repeats", 3, "timings per side; the best is kept")
	flag.Parse()
	if err := run(*arch, *repeats); err != nil {
		fmt.Fprintln(os.Stderr, "bench/weights:", err)
		os.Exit(1)
	}
}

func run(arch string, repeats int) error {
	dir, err := os.MkdirTemp("", "imet-bench-weights")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join("bench", "weights", "load.py")
	if out, err := exec.Command("/usr/bin/python3", script, "write", dir, arch).CombinedOutput(); err != nil {
		return fmt.Errorf("writing files: %v\n%s", err, out)
	}
	fmt.Printf("%-28s %10s %12s %12s %8s\n", "file", "MB", "go s", "torch s", "torch/go")
	for _, format := range []string{"zip", "legacy"} {
		path := filepath.Join(dir, arch+"_"+format+".pth")
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		goBest, pyBest := 1e9, 1e9
		for i := 0; i < repeats; i++ {
			t0 := time.Now()
			set, err := weights.ReadTorch(path)
			if err != nil {
				return err
			}
			var s float64
			for _, t := range set {
				for _, v := range t.Data {
					s += float64(v)
				}
			}
			goBest = min(goBest, time.Since(t0).Seconds())
			out, err := exec.Command("/usr/bin/python3", script, "time", path, "1").Output()
			if err != nil {
				return fmt.Errorf("torch.load: %v", err)
			}
			py, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			if err != nil {
				return err
			}
			pyBest = min(pyBest, py)
		}
		fmt.Printf("%-28s %10.1f %12.3f %12.3f %8.2f\n", filepath.Base(path), float64(fi.Size())/1e6, goBest, pyBest, pyBest/goBest)
	}
	return nil
}
