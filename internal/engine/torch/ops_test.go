package torch_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"testing"

	"imet/internal/engine/torch"
)

// referencePython is Debian's interpreter; scripts/deps.sh installs its torch.
const referencePython = "/usr/bin/python3"

// opCase is one exported operation, written once as Go and once as the
// PyTorch expression it must equal.
type opCase struct {
	name string
	goOp func(x, y *torch.Tensor) *torch.Tensor
	py   string
}

// The operations the models do not exercise through their own parity tests.
var opCases = []opCase{
	{"eq", func(x, y *torch.Tensor) *torch.Tensor { return x.Eq(x).To(torch.Float32) }, "torch.eq(x, x).float()"},
	{"gt", func(x, y *torch.Tensor) *torch.Tensor { return x.Gt(y).To(torch.Float32) }, "torch.gt(x, y).float()"},
	{"lt", func(x, y *torch.Tensor) *torch.Tensor { return x.Lt(y).To(torch.Float32) }, "torch.lt(x, y).float()"},
	{"gt_scalar", func(x, y *torch.Tensor) *torch.Tensor { return x.GtScalar(0.1).To(torch.Float32) }, "(x > 0.1).float()"},
	{"maximum", func(x, y *torch.Tensor) *torch.Tensor { return x.Maximum(y) }, "torch.maximum(x, y)"},
	{"minimum", func(x, y *torch.Tensor) *torch.Tensor { return x.Minimum(y) }, "torch.minimum(x, y)"},
	{"silu", func(x, y *torch.Tensor) *torch.Tensor { return x.Silu() }, "torch.nn.functional.silu(x)"},
	{"tanh", func(x, y *torch.Tensor) *torch.Tensor { return x.Tanh() }, "torch.tanh(x)"},
	{"relu6", func(x, y *torch.Tensor) *torch.Tensor { return x.MulScalar(8).Relu6() }, "torch.nn.functional.relu6(x * 8)"},
	{"log_sigmoid", func(x, y *torch.Tensor) *torch.Tensor { return x.LogSigmoid() }, "torch.nn.functional.logsigmoid(x)"},
	{"log_softmax", func(x, y *torch.Tensor) *torch.Tensor { return x.LogSoftmax(1) }, "torch.log_softmax(x, 1)"},
	{"mean_keep", func(x, y *torch.Tensor) *torch.Tensor { return x.MeanKeep(1).Sub(x) }, "x.mean(1, keepdim=True) - x"},
	{"permute", func(x, y *torch.Tensor) *torch.Tensor { return x.Permute(1, 0).Contiguous() }, "x.permute(1, 0).contiguous()"},
	{"argmax", func(x, y *torch.Tensor) *torch.Tensor { return x.Argmax(1).To(torch.Float32) }, "torch.argmax(x, 1).float()"},
	{"topk_values", func(x, y *torch.Tensor) *torch.Tensor { v, _ := x.TopK(2, 1); return v }, "torch.topk(x, 2, 1)[0]"},
	{"topk_indices", func(x, y *torch.Tensor) *torch.Tensor { _, i := x.TopK(3, 0); return i.To(torch.Float32) }, "torch.topk(x, 3, 0)[1].float()"},
	{"index_select", func(x, y *torch.Tensor) *torch.Tensor {
		return x.IndexSelect(1, torch.FromInt64([]int64{4, 0, 2}, 3))
	}, "torch.index_select(x, 1, torch.tensor([4, 0, 2]))"},
	// Add_ writes into its receiver: the receiver itself must hold the sum.
	{"add_", func(x, y *torch.Tensor) *torch.Tensor { s := x.Clone(); s.Add_(y); return s }, "x + y"},
	{"add_broadcast", func(x, y *torch.Tensor) *torch.Tensor {
		s := x.Clone()
		s.Add_(y.MeanKeep(0))
		return s
	}, "x + y.mean(0, keepdim=True)"},
	{"arange", func(x, y *torch.Tensor) *torch.Tensor {
		return torch.Arange(7, torch.Float32, torch.CPU).MulScalar(0.5)
	}, "torch.arange(7).float() * 0.5"},
}

// TestOpsMatchPyTorch checks every operation in opCases against PyTorch
// evaluated live on this machine: elementwise maths differs in the last
// bit between CPU kernels, so no committed number is involved.
func TestOpsMatchPyTorch(t *testing.T) {
	if err := exec.Command(referencePython, "-c", "import torch").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs %s with torch (scripts/deps.sh): %v", referencePython, err)
		}
		t.Skipf("reference %s with torch not available (%v); scripts/deps.sh installs it", referencePython, err)
	}
	const rows, cols = 4, 6
	xs, ys := make([]float32, rows*cols), make([]float32, rows*cols)
	for i := range xs {
		xs[i] = float32(math.Sin(0.7*float64(i)+0.3) * 2)
		ys[i] = float32(math.Cos(1.3*float64(i)) * 2)
	}
	req := map[string]any{"x": xs, "y": ys, "shape": []int{rows, cols}, "ops": map[string]string{}}
	for _, c := range opCases {
		req["ops"].(map[string]string)[c.name] = c.py
	}
	in, _ := json.Marshal(req)
	cmd := exec.Command(referencePython, "testdata/ops_ref.py")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ops_ref.py: %v", err)
	}
	var want map[string][]float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	unlock := torch.LockThread(1)
	defer unlock()
	for _, c := range opCases {
		t.Run(c.name, func(t *testing.T) {
			err := torch.Run(func() {
				x, y := torch.FromFloat32(xs, rows, cols), torch.FromFloat32(ys, rows, cols)
				got := c.goOp(x, y).Float32s()
				w := want[c.name]
				if len(got) != len(w) {
					t.Fatalf("%d values, PyTorch %d", len(got), len(w))
				}
				for i := range w {
					// 1e-6 relative: float32 elementwise kernels (AVX2,
					// AVX-512, scalar) agree to a few ulps.
					if d := math.Abs(float64(got[i]) - w[i]); d > 1e-6*math.Max(1, math.Abs(w[i])) {
						t.Fatalf("[%d] = %v, PyTorch %v", i, got[i], w[i])
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("int64s", func(t *testing.T) {
		err := torch.Run(func() {
			got := torch.Arange(5, torch.Int64, torch.CPU).Int64s()
			for i, v := range got {
				if v != int64(i) {
					t.Fatalf("Int64s() = %v", got)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestAddInPlaceBackward checks the two things the residual blocks rely on
// when they sum into a BatchNorm's output: gradients flow through Add_ as
// through Add, and writing over a tensor that backward needs is refused as
// an error rather than a wrong gradient.
func TestAddInPlaceBackward(t *testing.T) {
	unlock := torch.LockThread(1)
	defer unlock()
	err := torch.Run(func() {
		x := torch.FromFloat32([]float32{1, -2, 3}, 3).SetRequiresGrad(true)
		y := torch.FromFloat32([]float32{0.5, 0.5, 0.5}, 3)
		x.MulScalar(2).Add_(y).Mul(x).Sum().Backward() // d/dx (2x+y)x = 4x+y
		for i, g := range x.Grad().Float32s() {
			if want := 4*[]float32{1, -2, 3}[i] + 0.5; g != want {
				t.Fatalf("grad[%d] = %v, want %v", i, g, want)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	err = torch.Run(func() {
		x := torch.FromFloat32([]float32{1, -2, 3}, 3).SetRequiresGrad(true)
		s := x.Sigmoid() // sigmoid's backward reads its output
		s.Add_(x).Sum().Backward()
	})
	if err == nil {
		t.Fatal("backward through an overwritten sigmoid output succeeded")
	}
}
