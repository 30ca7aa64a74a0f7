package main

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/experiments/figures/figurestest"
	"imet/internal/experiments/registry"
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

// seedCVRun records a finished cv run whose outputs are a figurestest
// fixture, as imet cv records them, and returns the registry and run id.
func seedCVRun(t *testing.T) (reg string, id int64, fx *figurestest.Run) {
	t.Helper()
	fx, err := figurestest.Write(t.TempDir(), 300, 3, 11)
	if err != nil {
		t.Fatal(err)
	}
	reg = filepath.Join(t.TempDir(), "registry.db")
	db, err := registry.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Start(registry.RunInfo{Name: "fixture", Kind: registry.KindCV, Config: fx.Config})
	if err != nil {
		t.Fatal(err)
	}
	for f := 0; f < 3; f++ {
		for s := 0; s < 20; s++ {
			r.Metric(s, float64(s)/10, fmt.Sprintf("fold%d/loss", f), 1/float64(s+1+f))
		}
	}
	r.Artifact("probabilities", fx.Sources.OOF)
	r.Artifact("thresholds", fx.Sources.Thresholds)
	r.Finish(registry.Summary{CVF2: fx.Results[0].Score})
	return reg, r.ID(), fx
}

// A cv run gets its threshold curves, per-label and per-fold figures
// besides its learning curves; a moved data set is found with --data.
func TestPlotsCVRun(t *testing.T) {
	reg, id, fx := seedCVRun(t)
	out := t.TempDir()
	code, stdout, errs := runCLI(t, "plots", fmt.Sprint(id), "--out", out, "--registry", reg, "--format", "svg")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, name := range []string{"learning", "thresholds", "labels", "folds"} {
		p := filepath.Join(out, fmt.Sprintf("%s-%d.svg", name, id))
		if !strings.Contains(stdout, p) {
			t.Errorf("%s not written:\n%s", p, stdout)
		}
	}
	svg, _ := os.ReadFile(filepath.Join(out, fmt.Sprintf("thresholds-%d.svg", id)))
	if !strings.Contains(string(svg), "group culture: chosen") {
		t.Errorf("threshold figure lacks the chosen group point")
	}
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(fx.Sources.Data, moved); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "plots", fmt.Sprint(id), "--out", out, "--registry", reg)
	if code != 0 || !strings.Contains(errs, "no cross-validation figures") || !strings.Contains(errs, fx.Sources.Data) {
		t.Errorf("data set gone: exit %d, %s", code, errs)
	}
	code, stdout, errs = runCLI(t, "plots", fmt.Sprint(id), "--out", out, "--registry", reg, "--data", moved)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("folds-%d.png", id)) {
		t.Errorf("--data: exit %d, %s %s", code, stdout, errs)
	}
}
