package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/experiments/registry"
	"imet/internal/postprocess/probs"
)

// breakImages damages three training images of the tiny data set: one cut
// in half, one emptied, one replaced by text. It returns their paths.
func breakImages(t *testing.T, data string) []string {
	t.Helper()
	imgs, _ := filepath.Glob(filepath.Join(data, "train", "*"))
	slices.Sort(imgs)
	if len(imgs) < 3 {
		t.Fatalf("train images: %v", imgs)
	}
	b, _ := os.ReadFile(imgs[0])
	os.WriteFile(imgs[0], b[:len(b)/2], 0o644)
	os.WriteFile(imgs[1], nil, 0o644)
	os.WriteFile(imgs[2], []byte("<html>404</html>"), 0o644)
	return imgs[:3]
}

// imet datasets validate does not decode; --decode does, and lists every
// broken image with its CSV line and why.
func TestDatasetsValidateDecode(t *testing.T) {
	cfg := tinyRun(t)
	data := filepath.Join(filepath.Dir(cfg), "data")
	broken := breakImages(t, data)
	if code, out, errs := runCLI(t, "datasets", "validate", data); code != 0 || !strings.Contains(out, "ok: ") {
		t.Fatalf("validate without --decode: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := runCLI(t, "datasets", "validate", "--decode", data)
	if code != 1 || !strings.Contains(errs, "3 errors") {
		t.Fatalf("validate --decode: exit %d\n%s%s", code, out, errs)
	}
	for i, why := range []string{"broken image, truncated", "broken image, zero bytes", "broken image, not an image"} {
		rel := "train/" + filepath.Base(broken[i])
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "train.csv:") && strings.Contains(l, why) && strings.Contains(l, `"`+rel+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line says %s is %q:\n%s", rel, why, out)
		}
	}
}

// By default the first broken image stops training with a message naming
// data.skip_broken; with it, training completes, each broken image is
// reported once and recorded in the registry, and every row is predicted.
func TestTrainSkipsBrokenImagesWhenAsked(t *testing.T) {
	cfg := tinyRun(t)
	data := filepath.Join(filepath.Dir(cfg), "data")
	broken := breakImages(t, data)
	code, _, errs := runCLI(t, "train", "--config", cfg, "--run-dir", filepath.Join(t.TempDir(), "run"), "--no-registry")
	if code == 0 || !strings.Contains(errs, "data.skip_broken: true") || !strings.Contains(errs, "imet datasets validate --decode") {
		t.Fatalf("default: exit %d\n%s", code, errs)
	}
	if !slices.ContainsFunc(broken, func(p string) bool { return strings.Contains(errs, p) }) {
		t.Errorf("the error names none of the broken images:\n%s", errs)
	}

	text, _ := os.ReadFile(cfg)
	skip := filepath.Join(filepath.Dir(cfg), "skip.yaml")
	os.WriteFile(skip, []byte(strings.Replace(string(text), "  workers: 2\n", "  workers: 2\n  skip_broken: true\n", 1)), 0o644)
	reg := filepath.Join(t.TempDir(), "registry.db")
	run := filepath.Join(t.TempDir(), "run")
	code, out, errs := runCLI(t, "train", "--config", skip, "--run-dir", run, "--registry", reg)
	if code != 0 || !strings.Contains(out, "done at step") {
		t.Fatalf("skip_broken: exit %d\n%s%s", code, out, errs)
	}
	for _, p := range broken {
		if n := strings.Count(errs, "warning: left out broken image "+p+" "); n != 1 {
			t.Errorf("%s reported %d times, want once:\n%s", p, n, errs)
		}
	}
	var recorded []string
	for _, a := range recordedArtifacts(t, reg, 1) {
		if a.Kind == "broken_image" {
			recorded = append(recorded, a.Path)
		}
	}
	slices.Sort(recorded)
	if !slices.Equal(recorded, broken) {
		t.Errorf("registry records broken images %v, want %v", recorded, broken)
	}
	oof, err := probs.Load(filepath.Join(run, "oof_fold0.npy"))
	if err != nil {
		t.Fatal(err)
	}
	test, err := probs.Load(filepath.Join(run, "test_fold0.npy"))
	if err != nil || test.Rows != 8 || oof.Rows == 0 {
		t.Fatalf("outputs: oof %v, test %v, %v", oof, test, err)
	}
}

func recordedArtifacts(t *testing.T, reg string, id int64) []registry.Artifact {
	t.Helper()
	db, err := registry.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	arts, err := db.Artifacts(id)
	if err != nil {
		t.Fatal(err)
	}
	return arts
}

// imet predict stops at a broken image naming --skip-broken; with it,
// the image is reported, and its row is zero while the others are
// predicted.
func TestPredictSkipBroken(t *testing.T) {
	run, data := tinyTrained(t)
	imgs, _ := filepath.Glob(filepath.Join(data, "test", "*"))
	slices.Sort(imgs)
	os.WriteFile(imgs[0], nil, 0o644)
	tmp := t.TempDir()
	code, _, errs := runCLI(t, "predict", "--from", run, "--images", filepath.Join(data, "test"), "--out", filepath.Join(tmp, "s.csv"))
	if code == 0 || !strings.Contains(errs, "--skip-broken") || !strings.Contains(errs, imgs[0]) {
		t.Fatalf("default: exit %d\n%s", code, errs)
	}
	npy := filepath.Join(tmp, "p.npy")
	code, out, errs := runCLI(t, "predict", "--from", run, "--images", filepath.Join(data, "test"), "--out", filepath.Join(tmp, "s.csv"), "--probs", npy, "--skip-broken")
	if code != 0 || strings.Count(errs, "warning: left out broken image "+imgs[0]) != 1 || !strings.Contains(out, "1 broken image(s) left out") {
		t.Fatalf("--skip-broken: exit %d\n%s%s", code, out, errs)
	}
	f, err := probs.Load(npy)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSuffix(filepath.Base(imgs[0]), filepath.Ext(imgs[0]))
	for i, rid := range f.IDs {
		var sum float32
		for _, v := range f.Row(i) {
			sum += v
		}
		if (rid == id) != (sum == 0) {
			t.Errorf("row %s sums to %g", rid, sum)
		}
	}
}
