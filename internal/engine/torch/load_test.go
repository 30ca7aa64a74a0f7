package torch_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"imet/internal/engine/torch"
)

// loader_gen.c must be what genloader makes of shim.h today: a function
// added to the header without regenerating would be missing from the
// binary's trampolines (a link error at best, a stale pointer never).
func TestLoaderIsGenerated(t *testing.T) {
	out := filepath.Join(t.TempDir(), "loader_gen.c")
	if b, err := exec.Command("go", "run", "./genloader", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("genloader: %v\n%s", err, b)
	}
	want, _ := os.ReadFile(out)
	got, err := os.ReadFile("loader_gen.c")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("loader_gen.c is stale: run `go generate ./internal/engine/torch`")
	}
}

func TestRuntimeInfo(t *testing.T) {
	rt, err := torch.RuntimeInfo()
	if err != nil {
		t.Fatal(err)
	}
	if rt.Torch != torch.Version() || rt.Shim == "" {
		t.Fatalf("runtime %+v, version %q", rt, torch.Version())
	}
	if rt.CUDA != (torch.CUDADeviceCount() > 0) {
		t.Fatalf("CUDA %v with %d devices", rt.CUDA, torch.CUDADeviceCount())
	}
}
