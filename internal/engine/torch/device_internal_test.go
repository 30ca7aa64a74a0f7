package torch

import (
	"strings"
	"testing"
)

// The refusal for a GPU number past the last cannot be met on a machine
// without GPUs; its wording is checked here for every case.
func TestDeviceErrorWording(t *testing.T) {
	cases := []struct {
		d    Device
		n    int
		cuda bool
		want []string
	}{
		{CUDA(3), 1, true, []string{"device cuda:3", "libtorch 2.3.0 (/opt/lt/libtorch_cpu.so)", "sees 1 GPU, cuda:0"}},
		{CUDA(2), 2, true, []string{"device cuda:2", "sees 2 GPUs, cuda:0 to cuda:1"}},
		{CUDA(0), 0, true, []string{"CUDA build but sees no GPU", "nvidia-smi"}},
		{CUDA(0), 0, false, []string{"CPU-only build", "IMET_TORCH", "libimettorch.so", "scripts/build-shim.sh", "CUDA libtorch"}},
	}
	for _, c := range cases {
		msg := deviceError(c.d, c.n, "2.3.0", "/opt/lt/libtorch_cpu.so", c.cuda).Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%v with %d GPUs (cuda build %v): %q lacks %q", c.d, c.n, c.cuda, msg, w)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%q is more than one line", msg)
		}
	}
}
