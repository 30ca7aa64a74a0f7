package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/ship/bundle"
)

// TestExportedBundleRunsWithoutSystemLibtorch is the offline-bundle test:
// train a tiny model, predict with it in process, export a bundle with a
// real imet binary, copy the bundle to a fresh folder, and run
// DIR/imet predict there (the bundle found from the executable's folder)
// with the system library directory reduced to glibc; the probabilities
// must be the same bytes. The bundle is about 215 MB, so this is the only
// test that writes one.
func TestExportedBundleRunsWithoutSystemLibtorch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 215 MB bundle test")
	}
	if _, err := os.Stat("/usr/include/ATen/ATen.h"); err != nil {
		t.Skip("libtorch-dev not installed (scripts/deps.sh installs it)")
	}
	bin := filepath.Join(t.TempDir(), "imet")
	if out, err := exec.Command("go", "build", "-ldflags="+bundle.BuildFlag, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run, data := tinyTrained(t)
	images := filepath.Join(data, "test")
	tmp := t.TempDir()
	want := filepath.Join(tmp, "want.npy")
	if code, _, errs := runCLI(t, "predict", "--from", run, "--images", images, "--out", filepath.Join(tmp, "want.csv"), "--probs", want); code != 0 {
		t.Fatalf("predict exited %d: %s", code, errs)
	}
	built := filepath.Join(tmp, "built")
	code, out, errs := runCLI(t, "export", run, "--out", built, "--binary", bin)
	if code != 0 {
		t.Fatalf("export exited %d: %s", code, errs)
	}
	t.Log(strings.TrimSpace(out))
	dir := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", built, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	os.RemoveAll(built)
	args := []string{"predict", "--images", images, "--out", filepath.Join(tmp, "got.csv"), "--probs", filepath.Join(tmp, "got.npy")}
	exe := filepath.Join(dir, "imet")
	hideErr := bundle.CanHideSystemLibraries()
	var cmd *exec.Cmd
	if hideErr == nil {
		if out, err := bundle.HideSystemLibraries(t.TempDir(), bin, "version").CombinedOutput(); err == nil {
			t.Fatalf("the unbundled imet ran with the system libraries hidden: %s", out)
		}
		cmd = bundle.HideSystemLibraries(t.TempDir(), exe, args...)
	} else {
		cmd = exec.Command(exe, args...)
	}
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bundled predict: %v\n%s", err, got)
	}
	t.Logf("bundled predict:\n%s", got)
	for _, f := range []string{".npy", ".ids.csv", ".labels.csv"} {
		a, _ := os.ReadFile(filepath.Join(tmp, "want"+f))
		b, err := os.ReadFile(filepath.Join(tmp, "got"+f))
		if err != nil || len(a) == 0 || !bytes.Equal(a, b) {
			t.Fatalf("bundle's %s differs from the prediction before export (%v)", f, err)
		}
	}
	if a, b := readFile(t, filepath.Join(tmp, "want.csv")), readFile(t, filepath.Join(tmp, "got.csv")); a != b {
		t.Fatalf("submissions differ:\n%s\n%s", a, b)
	}
	if hideErr != nil {
		t.Skipf("bundle predicted identically, but with the system libraries visible: %v", hideErr)
	}
}
