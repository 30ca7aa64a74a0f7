package models

import (
	"regexp"
	"strings"
	"testing"

	"imet/internal/engine/torch"
	"imet/internal/zoo/weights"
)

// exportSet copies a model's tensors into a host Set, as a weight file
// holding exactly that model would read.
func exportSet(t *testing.T, m Model, prefix string) weights.Set {
	t.Helper()
	set := weights.Set{}
	err := torch.Catch(func() {
		for _, v := range m.Store().Vars() {
			sh := []int64{}
			for _, d := range v.T.Shape() {
				sh = append(sh, int64(d))
			}
			set[prefix+v.Name] = &weights.Tensor{Shape: sh, DType: weights.Float32, Data: v.T.To(torch.Float32).Float32s()}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestLoadWeights(t *testing.T) {
	src, err := New("mobilenet_v2", Options{NumClasses: 7})
	if err != nil {
		t.Fatal(err)
	}
	file := exportSet(t, src, "module.")
	t.Run("other class count: head re-initialised, backbone loaded", func(t *testing.T) {
		dst, err := New("mobilenet_v2", Options{NumClasses: 5})
		if err != nil {
			t.Fatal(err)
		}
		headBefore := dst.Store().Var("classifier.1.bias").T.Float32s()
		set, err := PrepareKeys("mobilenet_v2", file, "")
		if err != nil {
			t.Fatal(err)
		}
		r, err := LoadWeights(dst, set, weights.LoadOptions{})
		if err != nil {
			t.Fatalf("%v", err)
		}
		if len(r.Reinitialised) != 2 || !strings.Contains(r.String(), "classifier.1.weight: model [5, 1280], file [7, 1280]") {
			t.Errorf("report:\n%s", r)
		}
		if got, want := dst.Store().Var("features.3.conv.1.0.weight").T.Float32s(), file["module.features.3.conv.1.0.weight"].Data; !equal(got, want) {
			t.Error("backbone weight not copied")
		}
		if !equal(dst.Store().Var("classifier.1.bias").T.Float32s(), headBefore) {
			t.Error("re-initialised head was overwritten")
		}
	})
	t.Run("mis-shaped backbone: error, nothing copied", func(t *testing.T) {
		dst, err := New("mobilenet_v2", Options{NumClasses: 7})
		if err != nil {
			t.Fatal(err)
		}
		set, _ := PrepareKeys("mobilenet_v2", file, "")
		bad := *set["features.0.0.weight"]
		bad.Shape = []int64{32, 3, 1, 9}
		set["features.0.0.weight"] = &bad
		before := dst.Store().Var("features.5.conv.0.0.weight").T.Float32s()
		r, err := LoadWeights(dst, set, weights.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "features.0.0.weight: model [32, 3, 3, 3], file [32, 3, 1, 9]") {
			t.Fatalf("err = %v", err)
		}
		if len(r.Mismatched) != 1 {
			t.Errorf("report:\n%s", r)
		}
		if !equal(dst.Store().Var("features.5.conv.0.0.weight").T.Float32s(), before) {
			t.Error("a failed load changed the model")
		}
	})
	t.Run("prefix kept without PrepareKeys: every key reported", func(t *testing.T) {
		dst, _ := New("mobilenet_v2", Options{NumClasses: 7})
		_, err := LoadWeights(dst, file, weights.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "StripPrefix") {
			t.Fatalf("err = %v", err)
		}
	})
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

// Key maps: timm's SE-ResNeXt names, torchvision's legacy DenseNet names
// and inception's auxiliary head must all land on the zoo's names.
func TestPrepareKeys(t *testing.T) {
	names := func(arch string) []string {
		m, err := New(arch, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return m.Store().Names()
	}
	toTimm := []struct {
		re   *regexp.Regexp
		repl string
	}{
		{regexp.MustCompile(`^layer0\.`), ""},
		{regexp.MustCompile(`\.se_module\.`), ".se."},
		{regexp.MustCompile(`^last_linear\.`), "fc."},
	}
	toLegacyDenseNet := regexp.MustCompile(`(denselayer\d+\.(?:norm|conv))([12])\.`)
	cases := []struct {
		arch, from string
		rename     func(string) string
		extra      []string
	}{
		{"se_resnext50_32x4d", "timm", func(k string) string {
			for _, r := range toTimm {
				k = r.re.ReplaceAllString(k, r.repl)
			}
			return k
		}, nil},
		// torchvision's published DenseNet files predate num_batches_tracked.
		{"densenet121", "", func(k string) string {
			if strings.HasSuffix(k, "num_batches_tracked") {
				return ""
			}
			return toLegacyDenseNet.ReplaceAllString(k, "$1.$2.")
		}, nil},
		{"inception_v3", "", func(k string) string { return k }, []string{"AuxLogits.fc.weight", "AuxLogits.conv0.conv.weight"}},
	}
	for _, c := range cases {
		t.Run(c.arch, func(t *testing.T) {
			var want []string
			set := weights.Set{}
			for _, n := range names(c.arch) {
				if r := c.rename(n); r != "" {
					set["module."+r] = &weights.Tensor{}
					want = append(want, n)
				}
			}
			for _, n := range c.extra {
				set[n] = &weights.Tensor{}
			}
			if c.arch == "se_resnext50_32x4d" && set["module.layer1.0.se.fc1.weight"] == nil {
				t.Fatalf("test renaming produced no timm names: %v", set.Names()[:5])
			}
			if c.extra != nil {
				// A prefix on only some keys is not DataParallel's.
				for _, n := range want {
					set[n], set["module."+n] = set["module."+n], nil
					delete(set, "module."+n)
				}
			}
			got, err := PrepareKeys(c.arch, set, c.from)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Names(), ",") != strings.Join(want, ",") {
				t.Errorf("keys differ: got %d, want %d; first got %v", len(got), len(want), got.Names()[:3])
			}
		})
	}
	if _, err := PrepareKeys("resnet18", weights.Set{}, "keras"); err == nil {
		t.Error("unknown source accepted")
	}
}
