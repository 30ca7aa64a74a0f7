package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/base/pyref"
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
