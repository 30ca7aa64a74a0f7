package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/base/pyref"
	"imet/internal/zoo/models"
)

func TestWeightsInspect(t *testing.T) {
	legacy := filepath.Join("..", "..", "internal", "zoo", "weights", "testdata", "plain_legacy.pth")
	code, out, errs := runCLI(t, "weights", "inspect", "--names", legacy)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"pytorch-legacy, 18 tensors", "transposed             [5, 3]", "bf16", "0.weight"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, _, errs = runCLI(t, "weights", "inspect", filepath.Join(t.TempDir(), "none.pth"))
	if code != 1 || !strings.Contains(errs, "none.pth") {
		t.Errorf("missing file: exit %d, %q", code, errs)
	}
}

// A real check against an architecture: seeded torchvision mobilenet_v2
// weights with 7 classes, checked as a 1000-class model.
func TestWeightsInspectAgainstArch(t *testing.T) {
	py := pyref.Require(t, "torch", "torchvision")
	dir := t.TempDir()
	if out, err := exec.Command(py, filepath.Join("..", "..", "scripts", "golden", "torchvision_parity.py"),
		"mobilenet_v2", dir).CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, out)
	}
	code, out, errs := runCLI(t, "weights", "inspect", "--arch", "mobilenet_v2", filepath.Join(dir, "weights.pth"))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errs, out)
	}
	for _, want := range []string{"2 head tensors re-initialised", "classifier.1.weight: model [1000, 1280], file [7, 1280]", "loads into mobilenet_v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "weights", "inspect", "--arch", "densenet121", filepath.Join(dir, "weights.pth"))
	if code != 1 || !strings.Contains(out, "in the file but not in the model") {
		t.Errorf("wrong architecture: exit %d\n%s", code, out)
	}
}

// The lines weights inspect prints are a model section that config check
// accepts and that loads the file: here nsfwjs' Keras MobileNetV2, whose
// variant and mapping inspect finds by itself.
func TestWeightsInspectPrintsTheConfigLines(t *testing.T) {
	assets := os.Getenv("IMET_ASSETS")
	if assets == "" {
		assets = filepath.Join("..", "..", ".cache", "npm", "node_modules")
	}
	dir := models.NSFWJSModelDir(assets)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("nsfwjs assets not installed (%v); run scripts/assets.sh or set IMET_ASSETS", err)
	}
	code, out, errs := runCLI(t, "weights", "inspect", "--arch", "mobilenet_v2", "--classes", "3", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errs, out)
	}
	_, lines, ok := strings.Cut(out, "with these lines of a run configuration:\n")
	if !ok {
		t.Fatalf("no configuration lines in:\n%s", out)
	}
	for _, want := range []string{"  variant: keras\n", "  from: keras\n", "mapping keras (picked automatically)", "260 tensors", "mlp.0.weight"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	recipe := filepath.Join(t.TempDir(), "recipe.yaml")
	if err := os.WriteFile(recipe, []byte("name: inspected\n"+lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "config", "check", recipe); code != 0 {
		t.Fatalf("config check of the printed lines: exit %d: %s%s\n%s", code, out, errs, lines)
	}
	// Without the variant line the same file is refused, saying why.
	bad := strings.Replace(lines, "  variant: keras\n", "", 1)
	if err := os.WriteFile(recipe, []byte("name: inspected\n"+bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "config", "check", recipe); code == 0 || !strings.Contains(errs, "set model.variant: keras") {
		t.Errorf("without variant: exit %d, %s", code, errs)
	}
}
