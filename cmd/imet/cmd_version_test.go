package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type versionJSON struct {
	Engine struct {
		Torch string `json:"torch"`
		Shim  string `json:"shim"`
		CUDA  bool   `json:"cuda"`
	} `json:"engine"`
	Check float64 `json:"check"`
	Error string  `json:"engine_error"`
}

func runVersion(t *testing.T, bin string, env ...string) (versionJSON, string, error) {
	t.Helper()
	cmd := exec.Command(bin, "version", "--json", "--check")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	var v versionJSON
	if jerr := json.Unmarshal(out, &v); jerr != nil {
		t.Fatalf("imet version --json: %v\n%s", jerr, out)
	}
	return v, string(out), err
}

// TestOneBinaryTwoShims is the promise of the run-time loaded engine: the
// same imet executable runs on a second libtorch directory once only the
// shim is rebuilt against it, with no Go toolchain involved. The second
// directory is laid out as an unpacked libtorch zip (include/, lib/) over
// Debian's files, so it exercises scripts/build-shim.sh's non-Debian path.
func TestOneBinaryTwoShims(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the C++ shim (about 10 s of CPU)")
	}
	if _, err := os.Stat("/usr/include/torch/csrc/api/include/torch/torch.h"); err != nil {
		t.Skip("Debian's libtorch-dev is not installed (scripts/deps.sh)")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "imet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	zip := filepath.Join(tmp, "libtorch")
	os.MkdirAll(filepath.Join(zip, "lib"), 0o755)
	if err := os.Symlink("/usr/include", filepath.Join(zip, "include")); err != nil {
		t.Fatal(err)
	}
	libs, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/lib*.so*")
	for _, l := range libs {
		b := filepath.Base(l)
		if strings.HasPrefix(b, "libtorch") || strings.HasPrefix(b, "libc10") {
			os.Symlink(l, filepath.Join(zip, "lib", b))
		}
	}
	shimDir := filepath.Join(tmp, "shim")
	if out, err := exec.Command("../../scripts/build-shim.sh", zip, shimDir).CombinedOutput(); err != nil {
		t.Fatalf("build-shim.sh: %v\n%s", err, out)
	}

	def, out, err := runVersion(t, bin)
	if err != nil {
		t.Fatalf("default shim: %v\n%s", err, out)
	}
	other, out, err := runVersion(t, bin, "IMET_TORCH="+shimDir)
	if err != nil {
		t.Fatalf("IMET_TORCH=%s: %v\n%s", shimDir, err, out)
	}
	if other.Engine.Shim != filepath.Join(shimDir, "libimettorch.so") || def.Engine.Shim == other.Engine.Shim {
		t.Fatalf("shims loaded: default %q, IMET_TORCH %q", def.Engine.Shim, other.Engine.Shim)
	}
	if def.Engine.Torch == "" || def.Engine.Torch != other.Engine.Torch {
		t.Fatalf("libtorch versions %q and %q", def.Engine.Torch, other.Engine.Torch)
	}
	// Same libtorch underneath: the same bits.
	if def.Check == 0 || def.Check != other.Check {
		t.Fatalf("self-check %v with the default shim, %v with the rebuilt one", def.Check, other.Check)
	}
}

// TestMissingShimIsOneClearError: a wrong IMET_TORCH names what was tried
// and how to build a shim, instead of a crash.
func TestMissingShimIsOneClearError(t *testing.T) {
	t.Setenv("IMET_TORCH", filepath.Join(t.TempDir(), "nowhere"))
	// In-process the shim may already be loaded by another test, so ask a
	// child: the test binary re-executes as imet (see TestMain).
	cmd := exec.Command(os.Args[0], "version")
	cmd.Env = append(os.Environ(), asIMet+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("version succeeded without a shim:\n%s", out)
	}
	for _, want := range []string{"libimettorch.so could not be loaded", "nowhere", "build-shim.sh", "IMET_TORCH"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("message lacks %q:\n%s", want, out)
		}
	}
}
