package torch_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"imet/internal/engine/torch"
)

func TestParseDevice(t *testing.T) {
	var zero torch.Device
	if zero != torch.CPU || zero.IsCUDA() || zero.String() != "cpu" {
		t.Fatalf("the zero Device is %v, want the CPU", zero)
	}
	for name, want := range map[string]torch.Device{"cpu": torch.CPU, "cuda": torch.CUDA(0), "cuda:0": torch.CUDA(0), "cuda:7": torch.CUDA(7)} {
		d, err := torch.ParseDevice(name)
		if err != nil || d != want {
			t.Errorf("ParseDevice(%q) = %v, %v; want %v", name, d, err, want)
		}
	}
	if torch.CUDA(7).String() != "cuda:7" || torch.CUDA(7).Index() != 7 || torch.CPU.Index() != -1 {
		t.Errorf("names: %v %d %d", torch.CUDA(7), torch.CUDA(7).Index(), torch.CPU.Index())
	}
	for _, bad := range []string{"", "gpu", "CPU", "cuda:", "cuda:-1", "cuda:+1", "cuda:x", "cuda0", "cuda:1:2", "mps"} {
		if _, err := torch.ParseDevice(bad); err == nil || !strings.Contains(err.Error(), "want "+torch.DeviceSyntax) {
			t.Errorf("ParseDevice(%q): %v", bad, err)
		}
	}
}

// TestCheckDeviceNamesThisLibtorch asks for a GPU past the last one this
// process sees (on a CPU-only libtorch, any GPU): the refusal is one line
// naming the libtorch version and file in use.
func TestCheckDeviceNamesThisLibtorch(t *testing.T) {
	if err := torch.CheckDevice(torch.CPU); err != nil {
		t.Fatal(err)
	}
	n := torch.CUDADeviceCount()
	for i := 0; i < n; i++ {
		if err := torch.CheckDevice(torch.CUDA(i)); err != nil {
			t.Errorf("cuda:%d of %d: %v", i, n, err)
		}
	}
	err := torch.CheckDevice(torch.CUDA(n))
	if err == nil {
		t.Fatalf("cuda:%d accepted with %d GPUs", n, n)
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, "libtorch "+torch.Version()+" (") || !strings.Contains(msg, "libtorch_cpu.so") || strings.Contains(msg, "\n") {
		t.Errorf("refusal %q does not name the libtorch in use in one line", msg)
	}
	if n == 0 && !strings.Contains(msg, "sees no GPU") {
		if !strings.Contains(msg, "CPU-only build") || !strings.Contains(msg, "IMET_TORCH") || !strings.Contains(msg, "scripts/build-shim.sh") {
			t.Errorf("refusal %q does not say how to use a CUDA libtorch", msg)
		}
	}
}

func TestUploadAndPinnedMemory(t *testing.T) {
	data := []float32{1, 2, 3, 4, 5, 6}
	err := torch.Run(func() {
		x := torch.Upload(data, torch.CPU, 2, 3)
		if x.Device() != torch.CPU || x.IsPinned() || !equal(x.Float32s(), data) {
			t.Errorf("CPU upload: %v pinned=%v %v", x, x.IsPinned(), x.Float32s())
		}
		data[0] = 9 // Upload copied
		if x.Float32s()[0] != 1 {
			t.Error("Upload shares the caller's slice")
		}
		data[0] = 1
	})
	if err != nil {
		t.Fatal(err)
	}
	if torch.CUDADeviceCount() == 0 {
		// Page-locked memory is CUDA's: a CPU-only libtorch refuses it
		// with an error, never a crash.
		err := torch.Run(func() { torch.PinnedFromFloat32(data, 2, 3) })
		if err == nil {
			t.Fatal("pinned memory without CUDA")
		}
		t.Logf("without CUDA: %v", err)
		return
	}
	err = torch.Run(func() {
		p := torch.PinnedFromFloat32(data, 2, 3)
		if !p.IsPinned() || p.Device() != torch.CPU {
			t.Errorf("staging tensor %v pinned=%v", p, p.IsPinned())
		}
		g := torch.Upload(data, torch.CUDA(0), 2, 3)
		if g.Device() != torch.CUDA(0) || !equal(g.Float32s(), data) {
			t.Errorf("GPU upload: %v %v", g, g.Float32s())
		}
		h := g.ToDevice(torch.Float32, torch.CPU)
		if h.Device() != torch.CPU || !equal(h.Float32s(), data) {
			t.Errorf("back to the host: %v", h)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAutocastOn(t *testing.T) {
	err := torch.Run(func() {
		x := torch.Randn(torch.Float32, torch.CPU, 4, 8)
		w := torch.Randn(torch.Float32, torch.CPU, 3, 8)
		torch.AutocastOn(torch.CPU, torch.BFloat16, func() {
			if got := torch.Linear(x, w, nil).DType(); got != torch.BFloat16 {
				t.Errorf("CPU autocast: linear gives %v", got)
			}
		})
		if got := torch.Linear(x, w, nil).DType(); got != torch.Float32 {
			t.Errorf("autocast leaked: %v", got)
		}
		if err := torch.Catch(func() { torch.AutocastOn(torch.CPU, torch.Float16, func() {}) }); err == nil || !strings.Contains(err.Error(), "bfloat16 only") {
			t.Errorf("fp16 CPU autocast: %v", err)
		}
		if torch.CUDADeviceCount() == 0 {
			return
		}
		xg, wg := x.ToDevice(torch.Float32, torch.CUDA(0)), w.ToDevice(torch.Float32, torch.CUDA(0))
		torch.AutocastOn(torch.CUDA(0), torch.Float16, func() {
			if got := torch.Linear(xg, wg, nil).DType(); got != torch.Float16 {
				t.Errorf("CUDA fp16 autocast: linear gives %v", got)
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCudnnBenchmarkSwitch(t *testing.T) {
	was := torch.CudnnBenchmark()
	defer torch.SetCudnnBenchmark(was)
	torch.SetCudnnBenchmark(true)
	if !torch.CudnnBenchmark() {
		t.Fatal("switch not kept")
	}
	torch.SetCudnnBenchmark(false)
	if torch.CudnnBenchmark() {
		t.Fatal("switch not cleared")
	}
}

// TestAmpUnscale checks GradScaler's unscale rule on the CPU path, and on a
// GPU that at::_amp_foreach_non_finite_check_and_unscale_ gives the same.
func TestAmpUnscale(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, dev := range devices() {
		err := torch.Run(func() {
			a := torch.Upload([]float32{2, -4, 6}, dev, 3)
			b := torch.Upload([]float32{8, 1}, dev, 2)
			if torch.AmpUnscale([]*torch.Tensor{a, b}, 0.25) {
				t.Errorf("%v: finite gradients flagged", dev)
			}
			if !equal(a.Float32s(), []float32{0.5, -1, 1.5}) || !equal(b.Float32s(), []float32{2, 0.25}) {
				t.Errorf("%v: unscaled to %v %v", dev, a.Float32s(), b.Float32s())
			}
			c := torch.Upload([]float32{1, inf, 3}, dev, 3)
			d := torch.Upload([]float32{float32(math.NaN())}, dev, 1)
			e := torch.Upload([]float32{4}, dev, 1)
			if !torch.AmpUnscale([]*torch.Tensor{e, c}, 0.5) || !torch.AmpUnscale([]*torch.Tensor{d}, 1) {
				t.Errorf("%v: inf or NaN not flagged", dev)
			}
			if got := e.Float32s(); got[0] != 2 {
				t.Errorf("%v: the finite tensor beside an inf one unscaled to %v", dev, got)
			}
			if torch.AmpUnscale(nil, 0.5) {
				t.Errorf("%v: no gradients flagged", dev)
			}
		})
		if err != nil {
			t.Fatalf("%v: %v", dev, err)
		}
	}
}

func devices() []torch.Device {
	ds := []torch.Device{torch.CPU}
	if torch.CUDADeviceCount() > 0 {
		ds = append(ds, torch.CUDA(0))
	}
	return ds
}

// TestClipGradNormMatchesPyTorch compares ClipGradNorm with
// torch.nn.utils.clip_grad_norm_ evaluated live: once clipping, once with
// a bound above the norm.
func TestClipGradNormMatchesPyTorch(t *testing.T) {
	if err := exec.Command(referencePython, "-c", "import torch").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs %s with torch (scripts/deps.sh): %v", referencePython, err)
		}
		t.Skipf("reference %s with torch not available: %v", referencePython, err)
	}
	a, b := make([]float32, 12), make([]float32, 5)
	for i := range a {
		a[i] = float32(math.Sin(0.9*float64(i)+0.2) * 3)
	}
	for i := range b {
		b[i] = float32(math.Cos(1.7 * float64(i)))
	}
	const script = `
import json, sys, torch
torch.set_num_threads(1)
r = json.load(sys.stdin)
out = []
for m in r["max"]:
    p = [torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True)]
    p[0].grad = torch.tensor(r["a"]).reshape(3, 4)
    p[1].grad = torch.tensor(r["b"])
    total = torch.nn.utils.clip_grad_norm_(p, m)
    out.append({"total": total.item(), "a": p[0].grad.flatten().tolist(), "b": p[1].grad.tolist()})
print(json.dumps(out))
`
	maxes := []float64{0.5, 1000}
	in, _ := json.Marshal(map[string]any{"a": a, "b": b, "max": maxes})
	cmd := exec.Command(referencePython, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	var want []struct {
		Total float64
		A, B  []float64
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	unlock := torch.LockThread(1)
	defer unlock()
	if len(want) != len(maxes) {
		t.Fatalf("reference gave %d results for %d bounds", len(want), len(maxes))
	}
	for k, m := range maxes {
		w := want[k]
		err := torch.Run(func() {
			ga, gb := torch.FromFloat32(a, 3, 4), torch.FromFloat32(b, 5)
			total := torch.ClipGradNorm([]*torch.Tensor{ga, gb}, m)
			// 1e-6 relative: float32 reductions and products agree to a
			// few ulps across vector units.
			close := func(x, y float64) bool { return math.Abs(x-y) <= 1e-6*math.Max(1, math.Abs(y)) }
			if !close(total, w.Total) {
				t.Errorf("max %g: total norm %v, PyTorch %v", m, total, w.Total)
			}
			for i, v := range append(ga.Float32s(), gb.Float32s()...) {
				ref := append(w.A, w.B...)[i]
				if !close(float64(v), ref) {
					t.Fatalf("max %g: clipped grad [%d] = %v, PyTorch %v", m, i, v, ref)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
