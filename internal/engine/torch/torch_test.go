package torch_test

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"imet/internal/engine/torch"
)

// A shape mismatch deep inside a step comes back as an error naming the
// operation; the process carries on.
func Example() {
	w := torch.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3) // a parameter: outside any scope
	err := torch.Run(func() {
		x := torch.FromFloat32([]float32{1, 1}, 1, 2)
		y := torch.Linear(x, w, nil) // (1,2)·(3,2)ᵀ: wrong inner size
		fmt.Println(y.Shape())
	})
	fmt.Println(err != nil)
	var te *torch.Error
	fmt.Println(errors.As(err, &te), te.Op)
	err = torch.Run(func() {
		x := torch.FromFloat32([]float32{1, 1, 1}, 1, 3)
		fmt.Println(torch.Linear(x, w, nil).Float32s())
	})
	fmt.Println(err)
	// Output:
	// true
	// true linear
	// [6 15]
	// <nil>
}

func TestAutogradMatchesHandDerivative(t *testing.T) {
	x := torch.FromFloat32([]float32{1, -2, 3}, 3).SetRequiresGrad(true)
	err := torch.Run(func() {
		// loss = sum(x^2 * 3) -> d/dx = 6x
		loss := x.Pow(2).MulScalar(3).Sum()
		loss.Backward()
	})
	if err != nil {
		t.Fatal(err)
	}
	g := x.Grad().Float32s()
	want := []float32{6, -12, 18}
	for i := range want {
		if g[i] != want[i] {
			t.Fatalf("grad %v, want %v", g, want)
		}
	}
	x.ZeroGrad()
	if x.Grad() != nil {
		t.Fatal("grad survives ZeroGrad")
	}
}

func TestErrorsAreCaught(t *testing.T) {
	cases := []struct {
		name string
		f    func()
	}{
		{"matmul shape", func() {
			torch.Zeros(torch.Float32, torch.CPU, 2, 3).Matmul(torch.Zeros(torch.Float32, torch.CPU, 2, 3))
		}},
		{"conv channels", func() {
			torch.Conv2d(torch.Zeros(torch.Float32, torch.CPU, 1, 3, 8, 8),
				torch.Zeros(torch.Float32, torch.CPU, 4, 2, 3, 3), nil, torch.ConvOpts{})
		}},
		{"reshape", func() { torch.Zeros(torch.Float32, torch.CPU, 5).Reshape(2, 3) }},
		{"from data", func() { torch.FromFloat32([]float32{1, 2, 3}, 2, 2) }},
		{"freed", func() {
			x := torch.Zeros(torch.Float32, torch.CPU, 1)
			x.Free()
			x.Relu()
		}},
		{"cat dtypes/dims", func() {
			torch.Cat(0, torch.Zeros(torch.Float32, torch.CPU, 2, 2), torch.Zeros(torch.Float32, torch.CPU, 2))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := torch.Run(c.f)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
		})
	}
}

func TestBCEWithLogitsWeighted(t *testing.T) {
	err := torch.Run(func() {
		x := torch.FromFloat32([]float32{0.5, -1, 2, 0}, 2, 2)
		y := torch.FromFloat32([]float32{1, 0, 0, 1}, 2, 2)
		w := torch.FromFloat32([]float32{1, 2}, 2)
		got := torch.BCEWithLogits(x, y, w, nil, torch.ReduceMean).Item()
		xs, ys, ws := []float64{0.5, -1, 2, 0}, []float64{1, 0, 0, 1}, []float64{1, 2, 1, 2}
		var want float64
		for i := range xs {
			p := 1 / (1 + math.Exp(-xs[i]))
			want += -ws[i] * (ys[i]*math.Log(p) + (1-ys[i])*math.Log(1-p))
		}
		want /= 4
		if math.Abs(got-want) > 1e-6 {
			t.Fatalf("bce %v, want %v", got, want)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.imt")
	m := map[string]*torch.Tensor{
		"a.weight": torch.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"b.idx":    torch.FromInt64([]int64{7, -1}, 2),
		"c.half":   torch.FromFloat32([]float32{0.5, 1.5}, 2).To(torch.BFloat16),
		"d.scalar": torch.FromFloat32([]float32{3}),
	}
	if err := torch.Save(path, m); err != nil {
		t.Fatal(err)
	}
	got, err := torch.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		g := got[k]
		if g == nil || g.DType() != v.DType() || fmt.Sprint(g.Shape()) != fmt.Sprint(v.Shape()) ||
			fmt.Sprint(g.Float32s()) != fmt.Sprint(v.Float32s()) {
			t.Fatalf("%s: got %v want %v", k, g, v)
		}
	}
}

// The steady-state memory test: thousands of forward/backward steps inside
// scopes must neither leak handles nor grow the process.
func TestScopesKeepMemoryFlat(t *testing.T) {
	// One intra-op thread: the tensors are tiny, and on a loaded machine
	// OpenMP's spinning barriers would make each op cost milliseconds.
	defer torch.LockThread(1)()
	w := torch.Randn(torch.Float32, torch.CPU, 16, 3, 3, 3).SetRequiresGrad(true)
	fc := torch.Randn(torch.Float32, torch.CPU, 5, 16).SetRequiresGrad(true)
	x := torch.Randn(torch.Float32, torch.CPU, 4, 3, 16, 16)
	y := torch.Rand(torch.Float32, torch.CPU, 4, 5)
	base := torch.LiveTensors()
	step := func() {
		s := torch.NewScope()
		defer s.Close()
		h := torch.Conv2d(x, w, nil, torch.ConvOpts{Padding: [2]int{1, 1}}).Relu()
		h = torch.AdaptiveAvgPool2d(h, 1, 1).Flatten(1, -1)
		loss := torch.BCEWithLogits(torch.Linear(h, fc, nil), y, nil, nil, torch.ReduceMean)
		loss.Backward()
		torch.NoGrad(func() {
			for _, p := range []*torch.Tensor{w, fc} {
				g := p.Grad()
				p.CopyFrom(p.Sub(g.MulScalar(0.01)))
				p.ZeroGrad()
			}
		})
	}
	for i := 0; i < 300; i++ {
		step()
	}
	rss0 := rssKB(t)
	const n = 3000
	for i := 0; i < n; i++ {
		step()
		if d := torch.LiveTensors() - base; d > 0 { // earlier tests' garbage may still be finalised
			t.Fatalf("step %d: %d tensors leaked", i, d)
		}
	}
	rss1 := rssKB(t)
	t.Logf("RSS after warm-up %d KB, after %d more steps %d KB", rss0, n, rss1)
	if rss1 > rss0+8*1024 {
		t.Fatalf("RSS grew from %d KB to %d KB over %d steps", rss0, rss1, n)
	}
}
