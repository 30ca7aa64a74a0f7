package plan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writePlan writes a run configuration and a plan using it, returning the
// plan's path.
func writePlan(t *testing.T, plan string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "run.yaml")
	root := filepath.Join(dir, "data")
	if err := os.WriteFile(cfg, []byte("name: base\ndata: {root: "+root+"}\nmodel: {arch: resnet18}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgW := filepath.Join(dir, "run-w.yaml")
	if err := os.WriteFile(cfgW, []byte("name: base\ndata: {root: "+root+"}\nmodel: {arch: resnet18, pretrained: w.pth}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(p, []byte(strings.NewReplacer("CFGW", cfgW, "CFG", cfg).Replace(plan)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadParts(t *testing.T) {
	p, err := Load(writePlan(t, "ensemble: weighted\nparts:\n  - {name: a, config: CFG}\n  - {name: b, config: CFG, arch: mobilenet_v2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "plan" || p.Method != "weighted" || p.WeightStep != DefaultWeightStep || len(p.Parts) != 2 || p.PerFold {
		t.Fatalf("plan %+v", p)
	}
	if p.Parts[0].Config.Model.Arch != "resnet18" || p.Parts[1].Config.Model.Arch != "mobilenet_v2" || p.Parts[1].Config.Name != "base-b" {
		t.Fatalf("parts %+v", p.Parts)
	}
	if got := p.Parts[1].Dir("out"); got != filepath.Join("out", "parts", "b") {
		t.Fatalf("part folder %s", got)
	}
}

// Starting weights follow the architecture: kept for the configuration's
// own, replaced (or dropped with none) for another.
func TestLoadPretrained(t *testing.T) {
	p, err := Load(writePlan(t, "config: CFGW\nfold_archs: [resnet18, mobilenet_v2, densenet121]\npretrained: {mobilenet_v2: m.pth, densenet121: none}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range p.Parts {
		got = append(got, q.Config.Model.Pretrained)
	}
	if !slices.Equal(got, []string{"w.pth", "m.pth", ""}) {
		t.Fatalf("pretrained %q", got)
	}
}

func TestLoadFoldArchs(t *testing.T) {
	p, err := Load(writePlan(t, "ensemble: rank\nconfig: CFG\nfold_archs: [resnet18, mobilenet_v2, resnet18]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.PerFold || len(p.Parts) != 2 || !slices.Equal(p.Parts[0].Folds, []int{0, 2}) || !slices.Equal(p.Parts[1].Folds, []int{1}) ||
		p.Parts[1].Name != "mobilenet_v2" || p.Parts[1].Config.Model.Arch != "mobilenet_v2" {
		t.Fatalf("plan %+v", p)
	}
}

// Mistakes are refused at load, naming the file and the line.
func TestLoadRefuses(t *testing.T) {
	for _, c := range []struct{ plan, want string }{
		{"parts:\n  - {name: a, config: CFG}\n  - {name: b, config: CFG, arch: resnet19}\n", `plan.yaml:3: part b: unknown architecture "resnet19"`},
		{"parts:\n  - {name: a, config: CFG}\n  - {name: a, config: CFG}\n", "plan.yaml:3: part name \"a\" is used twice"},
		{"parts:\n  - {name: a, config: CFG}\n", "at least two parts"},
		{"ensemble: median\nparts:\n  - {name: a, config: CFG}\n  - {name: b, config: CFG}\n", "plan.yaml:1: ensemble \"median\""},
		{"weight_step: 0\nparts:\n  - {name: a, config: CFG}\n  - {name: b, config: CFG}\n", "plan.yaml:1: weight_step 0"},
		{"ensemble: weighted\nconfig: CFG\nfold_archs: [resnet18, mobilenet_v2]\n", "plan.yaml:1: ensemble weighted needs"},
		{"config: CFG\nfold_archs: [resnet18, resnet18]\n", "names one architecture"},
		{"parts:\n  - {name: a, config: CFG, achr: x}\n", "plan.yaml:2"},
		{"rules: [global, nope]\nparts:\n  - {name: a, config: CFG}\n  - {name: b, config: CFG}\n", "unknown rule \"nope\""},
		{"name: x\n", "lists parts"},
		{"config: CFGW\nfold_archs: [resnet18, mobilenet_v2]\n", "plan.yaml:2: arch mobilenet_v2 replaces resnet18, whose weights w.pth"},
		{"parts:\n  - {name: a, config: CFGW}\n  - {name: b, config: CFGW, arch: densenet121}\n", "plan.yaml:3: part b: arch densenet121 replaces"},
		{"config: CFG\nfold_archs: [resnet18, mobilenet_v2]\npretrained: {densenet121: d.pth}\n", "plan.yaml:3: pretrained names \"densenet121\""},
	} {
		_, err := Load(writePlan(t, c.plan))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.plan, err, c.want)
		}
	}
}

func TestDense(t *testing.T) {
	got, n := dense([]int{4, 1, 4, 2})
	if n != 3 || !slices.Equal(got, []int{2, 0, 2, 1}) {
		t.Fatalf("%v %d", got, n)
	}
}

// The example in configs/ stays a valid plan.
func TestExamplePlanLoads(t *testing.T) {
	wd, _ := os.Getwd()
	root := filepath.Join(wd, "..", "..", "..")
	t.Chdir(root)
	p, err := Load(filepath.Join("configs", "plan-resnet50-senet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Parts) != 2 || p.Parts[1].Config.Model.Arch != "se_resnext50_32x4d" {
		t.Fatalf("%+v", p.Parts)
	}
}
