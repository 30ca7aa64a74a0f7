package main

import (
	"fmt"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/training/lrfind"
)

// snapshot lists every file under dir with its size and modification time.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %d", p, info.Size(), info.ModTime().UnixNano()))
		return nil
	})
	return out
}

// The range test sweeps the rate exponentially on the recipe's first stage,
// suggests a rate inside the sweep, and writes nothing but its three files:
// no run directory, no registry, nothing next to the data.
func TestLRFind(t *testing.T) {
	cfg := tinyRun(t)
	home := t.TempDir()
	t.Chdir(home)
	reg := filepath.Join(t.TempDir(), "registry.db")
	t.Setenv("IMET_REGISTRY", reg)
	before := snapshot(t, filepath.Dir(cfg))
	code, stdout, errs := runCLI(t, "lr-find", "--config", cfg, "--steps", "30")
	if code != 0 {
		t.Fatalf("lr-find exited %d: %s", code, errs)
	}
	out := filepath.Join("runs", "lr-find", "tiny")
	var want []string
	for _, f := range lrfind.Files {
		want = append(want, filepath.Join(out, f))
		if !strings.Contains(stdout, filepath.Join(out, f)) {
			t.Errorf("output does not name %s:\n%s", f, stdout)
		}
	}
	var written []string
	filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			written = append(written, p)
		}
		return nil
	})
	slices.Sort(written)
	if !slices.Equal(written, want) {
		t.Errorf("wrote %v, want only %v", written, want)
	}
	if _, err := os.Stat(reg); err == nil {
		t.Error("lr-find created the registry")
	}
	if after := snapshot(t, filepath.Dir(cfg)); !slices.Equal(before, after) {
		t.Errorf("the data set or recipe changed:\n%v\n%v", before, after)
	}
	res, err := lrfind.ReadResult(filepath.Join(out, "lr-find.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stage != "head" || res.Fold != 0 || len(res.Points) < 2 || len(res.Points) > 30 {
		t.Fatalf("stage %q fold %d, %d points", res.Stage, res.Fold, len(res.Points))
	}
	factor := math.Pow(10/1e-7, 1.0/29)
	if res.Points[0].LR != 1e-7 {
		t.Errorf("first rate %g", res.Points[0].LR)
	}
	for i := 1; i < len(res.Points); i++ {
		if r := res.Points[i].LR / res.Points[i-1].LR; math.Abs(r/factor-1) > 1e-9 {
			t.Errorf("step %d: rate grew by %.12g, want %.12g", i, r, factor)
		}
	}
	if first, last := res.Points[0].LR, res.Points[len(res.Points)-1].LR; !(res.Suggested >= first && res.Suggested <= last) {
		t.Errorf("suggested %g outside the swept %g..%g", res.Suggested, first, last)
	}
	if res.Points[res.SuggestedIndex].LR != res.Suggested {
		t.Errorf("suggested %g is not point %d's rate", res.Suggested, res.SuggestedIndex)
	}
	if !strings.Contains(stdout, fmt.Sprintf("suggested learning rate %.3g", res.Suggested)) {
		t.Errorf("stdout:\n%s", stdout)
	}
	f, err := os.Open(filepath.Join(out, "lr-find.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 400 {
		t.Errorf("lr-find.png: %v", err)
	}
	if svg, _ := os.ReadFile(filepath.Join(out, "lr-find.svg")); !strings.Contains(string(svg), "suggested") {
		t.Error("the SVG does not mark the suggestion")
	}
}

// Rates from 1 to 1e6 make AdamW throw the head's weights around: the
// smoothed loss passes 4x its best within a few steps and the sweep stops
// there, long before its 60 steps.
func TestLRFindStopsOnDivergence(t *testing.T) {
	cfg := tinyRun(t)
	out := t.TempDir()
	code, stdout, errs := runCLI(t, "lr-find", "--config", cfg, "--start", "1", "--end", "1e6", "--steps", "60", "--out", out)
	if code != 0 {
		t.Fatalf("lr-find exited %d: %s", code, errs)
	}
	res, err := lrfind.ReadResult(filepath.Join(out, "lr-find.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Diverged || len(res.Points) >= 60 || !strings.Contains(stdout, "the loss diverged") {
		t.Fatalf("diverged %v after %d points:\n%s", res.Diverged, len(res.Points), stdout)
	}
	last := res.Points[len(res.Points)-1]
	best := math.Inf(1)
	for _, p := range res.Points[:len(res.Points)-1] {
		best = math.Min(best, p.Smoothed)
		if p.Smoothed > 4*best {
			t.Errorf("went on past a smoothed loss of %g > 4 x %g", p.Smoothed, best)
		}
	}
	if !(last.Smoothed > 4*best) {
		t.Errorf("stopped at smoothed %g, not above 4 x %g", last.Smoothed, best)
	}
}

func TestLRFindRefusesBadRange(t *testing.T) {
	cfg := tinyRun(t)
	code, _, errs := runCLI(t, "lr-find", "--config", cfg, "--start", "1", "--end", "0.1", "--out", t.TempDir())
	if code == 0 || !strings.Contains(errs, "0 < start < end") {
		t.Errorf("end below start: exit %d, %s", code, errs)
	}
	code, _, errs = runCLI(t, "lr-find", "--config", cfg, "--stage", "5", "--out", t.TempDir())
	if code == 0 || !strings.Contains(errs, "stages 0..1") {
		t.Errorf("stage 5: exit %d, %s", code, errs)
	}
}
