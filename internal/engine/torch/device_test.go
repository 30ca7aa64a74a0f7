package torch_test

import (
	"strings"
	"testing"

	"imet/internal/engine/torch"
)

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]torch.Device{"cpu": torch.CPU, "cuda": torch.CUDA(0), "cuda:0": torch.CUDA(0), "cuda:3": torch.CUDA(3)} {
		d, err := torch.ParseDevice(in)
		if err != nil || d != want {
			t.Errorf("%q: %v, %v; want %v", in, d, err, want)
		}
		if in != "cuda" && d.String() != in {
			t.Errorf("%q prints as %q", in, d)
		}
	}
	for _, in := range []string{"", "gpu", "CPU", "cuda:", "cuda:-1", "cuda:+1", "cuda:x", "cuda0", "cuda:1:2", "mps"} {
		if _, err := torch.ParseDevice(in); err == nil || !strings.Contains(err.Error(), torch.DeviceSyntax) {
			t.Errorf("%q: error %v, want one naming %s", in, err, torch.DeviceSyntax)
		}
	}
}
