package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlots(t *testing.T) {
	reg := seedRegistry(t)
	runCLI(t, "runs", "lb", "1", "0.51", "--registry", reg)
	runCLI(t, "runs", "lb", "2", "0.56", "--registry", reg)
	out := t.TempDir()
	code, stdout, errs := runCLI(t, "plots", "1", "r101", "--out", out, "--registry", reg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, name := range []string{"learning-1.png", "learning-2.png", "cv-vs-lb.png"} {
		p := filepath.Join(out, name)
		if !strings.Contains(stdout, p) {
			t.Errorf("output does not name %s:\n%s", p, stdout)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 300 {
			t.Errorf("%s: %v", name, err)
		}
	}
	code, _, _ = runCLI(t, "plots", "3", "--format", "svg", "--out", out, "--registry", reg)
	if code != 0 {
		t.Errorf("run without curves but with a CV/LB scatter: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(out, "cv-vs-lb.svg")); err != nil {
		t.Error(err)
	}
}
