package weights

import (
	"strings"
	"testing"
)

func tensorOf(shape ...int64) *Tensor {
	return &Tensor{Shape: shape, DType: Float32, Data: make([]float32, numel(shape))}
}

func TestPlan(t *testing.T) {
	model := map[string][]int64{
		"conv.weight": {8, 3, 3, 3}, "bn.weight": {8}, "bn.bias": {8}, "bn.num_batches_tracked": {},
		"fc.weight": {5, 8}, "fc.bias": {5},
	}
	cases := []struct {
		name     string
		file     Set
		opts     LoadOptions
		wantErr  bool
		loaded   int
		reinit   int
		contains []string
	}{
		{"exact fit", Set{"conv.weight": tensorOf(8, 3, 3, 3), "bn.weight": tensorOf(8), "bn.bias": tensorOf(8),
			"fc.weight": tensorOf(5, 8), "fc.bias": tensorOf(5)}, LoadOptions{}, false, 5, 0, nil},
		{"imagenet head re-initialised", Set{"conv.weight": tensorOf(8, 3, 3, 3), "bn.weight": tensorOf(8), "bn.bias": tensorOf(8),
			"fc.weight": tensorOf(1000, 8), "fc.bias": tensorOf(1000)}, LoadOptions{HeadPrefixes: []string{"fc."}}, false, 3, 2,
			[]string{"fc.weight: model [5, 8], file [1000, 8]", "head re-initialised"}},
		{"head mismatch without head option", Set{"conv.weight": tensorOf(8, 3, 3, 3), "bn.weight": tensorOf(8), "bn.bias": tensorOf(8),
			"fc.weight": tensorOf(1000, 8), "fc.bias": tensorOf(1000)}, LoadOptions{}, true, 3, 0, []string{"shape differs"}},
		{"data parallel prefix", Set{"module.conv.weight": tensorOf(8, 3, 3, 3)}, LoadOptions{}, true, 0, 0,
			[]string{"missing from the file", "module.conv.weight", "StripPrefix"}},
		{"old file without batch counters", Set{"conv.weight": tensorOf(8, 3, 3, 3), "bn.weight": tensorOf(8), "bn.bias": tensorOf(8),
			"fc.weight": tensorOf(5, 8), "fc.bias": tensorOf(5)}, LoadOptions{}, false, 5, 0, []string{"1 num_batches_tracked counters absent"}},
		{"backbone only", Set{"conv.weight": tensorOf(8, 3, 3, 3)}, LoadOptions{AllowMissing: true}, false, 1, 0, nil},
		{"unexpected extra", Set{"conv.weight": tensorOf(8, 3, 3, 3), "bn.weight": tensorOf(8), "bn.bias": tensorOf(8),
			"fc.weight": tensorOf(5, 8), "fc.bias": tensorOf(5), "aux.weight": tensorOf(2)}, LoadOptions{}, true, 5, 0,
			[]string{"in the file but not in the model:\n  aux.weight"}},
		{"mis-shaped backbone", Set{"conv.weight": tensorOf(8, 3, 5, 5), "bn.weight": tensorOf(8), "bn.bias": tensorOf(8),
			"fc.weight": tensorOf(5, 8), "fc.bias": tensorOf(5)}, LoadOptions{HeadPrefixes: []string{"fc."}}, true, 4, 0,
			[]string{"conv.weight: model [8, 3, 3, 3], file [8, 3, 5, 5]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Plan(model, c.file, c.opts)
			err := r.Err()
			if (err != nil) != c.wantErr {
				t.Fatalf("Err() = %v, want error %v\n%s", err, c.wantErr, r)
			}
			if len(r.Loaded) != c.loaded || len(r.Reinitialised) != c.reinit {
				t.Errorf("loaded %d reinit %d, want %d %d\n%s", len(r.Loaded), len(r.Reinitialised), c.loaded, c.reinit, r)
			}
			for _, s := range c.contains {
				if !strings.Contains(r.String(), s) {
					t.Errorf("report lacks %q:\n%s", s, r)
				}
			}
		})
	}
}

func TestRemapHelpers(t *testing.T) {
	cases := []struct{ in, want string }{
		{"features.denseblock1.denselayer1.norm.1.weight", "features.denseblock1.denselayer1.norm1.weight"},
		{"features.denseblock4.denselayer16.conv.2.weight", "features.denseblock4.denselayer16.conv2.weight"},
		{"features.denseblock1.denselayer1.norm1.running_var", "features.denseblock1.denselayer1.norm1.running_var"},
		{"features.norm0.weight", "features.norm0.weight"},
	}
	for _, c := range cases {
		if got := TorchvisionDenseNetKey(c.in); got != c.want {
			t.Errorf("TorchvisionDenseNetKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	timm := Set{
		"conv1.weight": tensorOf(64, 3, 7, 7), "bn1.running_mean": tensorOf(64),
		"layer1.0.se.fc1.weight": tensorOf(16, 256), "layer1.0.se.fc2.bias": tensorOf(256),
		"layer1.0.downsample.0.weight": tensorOf(256, 64, 1, 1), "fc.weight": tensorOf(1000, 2048),
		"layer1.0.conv1.weight": tensorOf(128, 64, 1, 1),
	}
	got, err := TimmToCadeneSEResNeXt(timm)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"layer0.conv1.weight": "[64, 3, 7, 7]", "layer0.bn1.running_mean": "[64]",
		"layer1.0.se_module.fc1.weight": "[16, 256, 1, 1]", "layer1.0.se_module.fc2.bias": "[256]",
		"layer1.0.downsample.0.weight": "[256, 64, 1, 1]", "last_linear.weight": "[1000, 2048]",
		"layer1.0.conv1.weight": "[128, 64, 1, 1]",
	}
	if len(got) != len(want) {
		t.Errorf("got keys %v", got.Names())
	}
	for k, s := range want {
		if g, ok := got[k]; !ok || ShapeString(g.Shape) != s {
			t.Errorf("%s: got %v, want shape %s", k, g, s)
		}
	}
	if _, err := Rename(Set{"a": tensorOf(1), "b": tensorOf(1)}, func(string) string { return "x" }); err == nil {
		t.Error("Rename let two keys collide")
	}
	if s := StripPrefix(Set{"module.a": tensorOf(1), "b": tensorOf(1)}, "module."); s["a"] == nil || s["b"] == nil {
		t.Errorf("StripPrefix: %v", s.Names())
	}
}

// Keras kernels are HWIO (depthwise: H, W, C, multiplier); PyTorch wants
// OIHW. Check every element lands where the index algebra says.
func TestKerasTransposes(t *testing.T) {
	k := &Tensor{Shape: []int64{2, 3, 4, 5}, Data: make([]float32, 120)}
	for i := range k.Data {
		k.Data[i] = float32(i)
	}
	at := func(t *Tensor, idx ...int64) float32 {
		pos := int64(0)
		for d, i := range idx {
			pos = pos*t.Shape[d] + i
		}
		return t.Data[pos]
	}
	c := KerasConvToTorch(k)
	if ShapeString(c.Shape) != "[5, 4, 2, 3]" {
		t.Fatalf("conv shape %v", c.Shape)
	}
	d := KerasDepthwiseToTorch(k)
	if ShapeString(d.Shape) != "[20, 1, 2, 3]" {
		t.Fatalf("depthwise shape %v", d.Shape)
	}
	for h := int64(0); h < 2; h++ {
		for w := int64(0); w < 3; w++ {
			for i := int64(0); i < 4; i++ {
				for o := int64(0); o < 5; o++ {
					if at(c, o, i, h, w) != at(k, h, w, i, o) {
						t.Fatalf("conv [%d %d %d %d]", o, i, h, w)
					}
					if at(d, i*5+o, 0, h, w) != at(k, h, w, i, o) {
						t.Fatalf("depthwise [%d %d %d %d]", i, o, h, w)
					}
				}
			}
		}
	}
	dense := KerasDenseToTorch(&Tensor{Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}})
	if ShapeString(dense.Shape) != "[3, 2]" || dense.Data[1] != 4 || dense.Data[2] != 2 {
		t.Errorf("dense %v %v", dense.Shape, dense.Data)
	}
}
