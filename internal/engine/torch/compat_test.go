package torch_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The shim must build against libtorch 1.13 and 2.x alike: every call whose
// spelling differs between them (docs/engine.md) may appear only inside the
// version-tested compat block of shim.cpp.
func TestShimUsesNoVersionSpecificCallsOutsideCompat(t *testing.T) {
	b, err := os.ReadFile("shim/shim.cpp")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	i, j := strings.Index(src, "// compat:begin"), strings.Index(src, "// compat:end")
	if i < 0 || j < i {
		t.Fatal("compat block markers missing")
	}
	outside := src[:i] + src[j:]
	for _, c := range []struct{ pattern, why string }{
		{`set_cpu_enabled|is_cpu_enabled`, "deprecated in 2.4: set_autocast_enabled(at::kCPU, ...)"},
		{`(set|get)_autocast_(cpu|gpu)_dtype`, "deprecated in 2.4: set_autocast_dtype(device, ...)"},
		{`autocast::(set|is)_enabled\(`, "2.4: takes a device type"},
		{`getNumGPUs|getCUDAHooks`, "CUDA hooks interface changed in 2.x; use torch::cuda::device_count"},
		{`\.data<`, "Tensor::data<T>() removed in 2.x; use data_ptr<T>()"},
		{`\.type\(\)`, "Tensor::type() (DeprecatedTypeProperties) removed in 2.x"},
		{`is_variable|toType\(|at::CPU\(|at::CUDA\(`, "removed before or in 2.x"},
		{`torch/torch\.h|torch/script\.h`, "heavy umbrella headers: slow compiles"},
	} {
		if loc := regexp.MustCompile(c.pattern).FindStringIndex(outside); loc != nil {
			line := strings.Count(outside[:loc[0]], "\n") + 1
			t.Errorf("shim.cpp uses %q outside the compat block (near line %d): %s", outside[loc[0]:loc[1]], line, c.why)
		}
	}
}
