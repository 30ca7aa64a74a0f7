package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/base/config"
	"imet/internal/vision/augment"
)

func TestBuiltins(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		variants []string
	}{
		{"aggressive256", 256, []string{"draw1", "draw2", "draw3", "draw4", "draw5", "draw6", "draw7", "draw8"}},
		{"resize320", 320, []string{"eval", "hflip"}},
	}
	for _, tc := range tests {
		p, err := Get(tc.name, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*augment.Chain{p.Train, p.Eval} {
			if w, h, ok := c.FixedSize(); !ok || w != tc.size || h != tc.size {
				t.Errorf("%s: size %dx%d %v, want %d", tc.name, w, h, ok, tc.size)
			}
		}
		var names []string
		streams := map[uint64]bool{}
		for _, v := range p.TTA {
			names = append(names, v.Name)
			streams[v.Stream] = true
		}
		if strings.Join(names, ",") != strings.Join(tc.variants, ",") || len(streams) != len(names) {
			t.Errorf("%s: TTA %v (streams %v), want %v with distinct streams", tc.name, names, streams, tc.variants)
		}
	}
	if _, err := Get("nope", nil); err == nil || !strings.Contains(err.Error(), "resize320") {
		t.Errorf("unknown pipeline error %v should list the known ones", err)
	}
}

func TestUserPipelines(t *testing.T) {
	dir := t.TempDir()
	good := `pipelines:
  mine:
    train:
      - {op: RandomResizedCrop, height: 288, width: 288, scale: [0.3, 1]}
      - {op: HorizontalFlip}
      - op: ShiftScaleRotate
        rotate_limit: 15
        border_mode: constant
      - {op: CoarseDropout, max_holes: 4, max_height: 32, max_width: 32}
      - {op: Normalize}
    eval:
      - {op: Resize, height: 288, width: 288}
      - {op: Normalize}
    tta: {mode: stochastic, n: 3}
  resize320:
    train: [{op: Resize, height: 64, width: 64}]
    eval: [{op: Resize, height: 64, width: 64}]
`
	path := filepath.Join(dir, "p.yaml")
	os.WriteFile(path, []byte(good), 0o644)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Get("mine", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ops := p.Train.Ops()
	if len(ops) != 5 || len(p.TTA) != 3 {
		t.Fatalf("%d ops, %d TTA variants", len(ops), len(p.TTA))
	}
	ssr := ops[2].(*augment.ShiftScaleRotate)
	if ssr.RotateLimit != (augment.Range{Lo: -15, Hi: 15}) || ssr.ShiftLimit != augment.Sym(0.0625) || ssr.P != 0.5 {
		t.Errorf("ShiftScaleRotate %+v: given values and albumentations defaults expected", ssr)
	}
	if hf := ops[1].(*augment.HorizontalFlip); hf.P != 0.5 {
		t.Errorf("HorizontalFlip default p %v", hf.P)
	}
	// A user pipeline overrides a built-in of the same name.
	if p, _ := Get("resize320", cfg); p.Train.Ops()[0].(*augment.Resize).Height != 64 {
		t.Error("user resize320 did not override the built-in")
	}

	bad := map[string]string{
		"misspelt key":  "pipelines:\n  x:\n    train: [{op: Resize, heigth: 5, width: 5}]\n    eval: [{op: Resize, height: 5, width: 5}]\n",
		"unknown op":    "pipelines:\n  x:\n    train: [{op: Rezise, height: 5, width: 5}]\n    eval: [{op: Resize, height: 5, width: 5}]\n",
		"bad section":   "pipelines:\n  x:\n    trian: [{op: Resize, height: 5, width: 5}]\n",
		"variable size": "pipelines:\n  x:\n    train: [{op: SmallestMaxSize, max_size: 5}]\n    eval: [{op: Resize, height: 5, width: 5}]\n",
		"bad tta":       "pipelines:\n  x:\n    train: [{op: Resize, height: 5, width: 5}]\n    eval: [{op: Resize, height: 5, width: 5}]\n    tta: {mode: flipp}\n",
		"bad value":     "pipelines:\n  x:\n    train: [{op: HorizontalFlip, p: 2}, {op: Resize, height: 5, width: 5}]\n    eval: [{op: Resize, height: 5, width: 5}]\n",
	}
	for name, text := range bad {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		os.WriteFile(path, []byte(text), 0o644)
		if _, err := LoadConfig(path); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}

// TestSpecRoundTrip checks that a built-in pipeline written out as YAML
// (as a run records its configuration) reads back to the same ops.
func TestSpecRoundTrip(t *testing.T) {
	cfg := Config{Pipelines: map[string]Spec{"a": Builtin()["aggressive256"]}}
	data, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := config.Decode("roundtrip", data, &back); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	a, _ := Build("a", cfg.Pipelines["a"])
	b, err := Build("a", back.Pipelines["a"])
	if err != nil {
		t.Fatal(err)
	}
	ao, bo := a.Train.Ops(), b.Train.Ops()
	if len(ao) != len(bo) {
		t.Fatalf("%d ops back, want %d", len(bo), len(ao))
	}
	for i := range ao {
		x, _ := config.Marshal(augment.Specs(ao[i]))
		y, _ := config.Marshal(augment.Specs(bo[i]))
		if string(x) != string(y) {
			t.Errorf("op %d: %s became %s", i, x, y)
		}
	}
}
