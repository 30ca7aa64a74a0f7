package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/experiments/registry"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
	"imet/internal/training/plan"
)

// TestCVPlanEnsemblesResumesAndExports is the ensemble plan's end-to-end
// test: two parts of different architectures (ResNet-18 and MobileNet-V2)
// trained as cross-validations, combined with weights searched on their
// out-of-fold probabilities; a second run trains nothing; the plan and its
// parts are in the registry, the parts as the plan's parents; and the
// bundle exported from the plan's folder predicts the plan's test
// probabilities bit for bit and its submission line for line.
func TestCVPlanEnsemblesResumesAndExports(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: trains four tiny folds and writes a bundle")
	}
	cfg := tinyRunOf(t, tinySpec{train: 36, test: 6, folds: 2, cultures: 3, tags: 5, headEpochs: 1, headLR: 1e-3})
	dir := t.TempDir()
	planPath := filepath.Join(dir, "mix.yaml")
	writeFile(t, planPath, `name: mix
ensemble: weighted
weight_step: 0.25
parts:
  - {name: r18, config: `+cfg+`}
  - {name: mnet, config: `+cfg+`, arch: mobilenet_v2}
`)
	out := filepath.Join(dir, "out")
	reg := filepath.Join(dir, "registry.db")
	code, stdout, errs := runCLI(t, "cv", "--plan", planPath, "--out", out, "--registry", reg)
	if code != 0 {
		t.Fatalf("cv --plan exited %d: %s", code, errs)
	}
	m, err := plan.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Parts) != 2 || m.Parts[0].Arch != "resnet18" || m.Parts[1].Arch != "mobilenet_v2" || len(m.Weights) != 2 {
		t.Fatalf("manifest: %+v", m)
	}
	if s := m.Weights[0] + m.Weights[1]; math.Abs(s-1) > 1e-12 || math.Mod(m.Weights[0]/0.25, 1) != 0 {
		t.Fatalf("weights %v: not on the 0.25 grid of the simplex", m.Weights)
	}
	// The plan's OOF is the weighted mean of the parts' OOFs.
	oof := loadProbs(t, filepath.Join(out, "oof.npy"))
	a, b := loadProbs(t, filepath.Join(out, "parts", "r18", "oof.npy")), loadProbs(t, filepath.Join(out, "parts", "mnet", "oof.npy"))
	checkWeighted(t, oof, []*probs.File{a, b}, m.Weights)
	// (1, 0) and (0, 1) are on the grid: the searched weights score at
	// least as well as either part alone under the global rule.
	mixed := globalScore(t, filepath.Join(out, "thresholds.json"))
	for _, part := range []string{"r18", "mnet"} {
		if alone := globalScore(t, filepath.Join(out, "parts", part, "thresholds.json")); mixed < alone {
			t.Fatalf("weighted ensemble's global F2 %.5f is below part %s's %.5f", mixed, part, alone)
		}
	}
	sub := readFile(t, filepath.Join(out, "submission.csv"))
	if lines := strings.Split(strings.TrimSpace(sub), "\n"); lines[0] != "id,attribute_ids" || len(lines) != 7 {
		t.Fatalf("submission:\n%s", sub)
	}
	if !strings.Contains(stdout, "plan.json") {
		t.Fatalf("output does not name the manifest:\n%s", stdout)
	}

	// A second run finds every fold of every part done.
	ckpt := filepath.Join(out, "parts", "mnet", "fold1", "checkpoints", "index.json")
	before, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "cv", "--plan", planPath, "--out", out, "--registry", reg)
	if code != 0 {
		t.Fatalf("rerun exited %d: %s", code, errs)
	}
	if n := strings.Count(errs, "status=done dir="); n != 4 || strings.Contains(errs, "event=step") {
		t.Fatalf("rerun retrained (%d folds found done):\n%s", n, errs)
	}
	if after, _ := os.ReadFile(ckpt); string(after) != string(before) {
		t.Fatal("rerun rewrote a finished fold's checkpoints")
	}
	if got := readFile(t, filepath.Join(out, "submission.csv")); got != sub {
		t.Fatalf("rerun changed the submission:\n%s\n%s", sub, got)
	}

	db, err := registry.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	plans, err := db.List(registry.Filter{Kind: registry.KindPlan})
	if err != nil || len(plans) != 2 {
		t.Fatalf("plan runs: %v %v", plans, err)
	}
	for _, r := range plans {
		if r.Status != registry.StatusFinished || len(r.Parents) != 2 {
			t.Fatalf("plan run %d: status %s, parents %v", r.ID, r.Status, r.Parents)
		}
		for _, id := range r.Parents {
			p, err := db.Get(id)
			if err != nil || p.Kind != registry.KindCV || p.Status != registry.StatusFinished {
				t.Fatalf("parent %d of plan run %d: %+v %v", id, r.ID, p, err)
			}
		}
	}

	checkPlanBundle(t, out, filepath.Dir(cfg))
}

// TestCVPlanArchitecturePerFold: one configuration, one architecture per
// fold, rank-averaged; the out-of-fold file stacks the folds, and the
// bundle reproduces the rank ensemble's test probabilities (mapped through
// the quantile reference it carries).
func TestCVPlanArchitecturePerFold(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: trains two tiny folds and writes a bundle")
	}
	cfg := tinyRunOf(t, tinySpec{train: 36, test: 6, folds: 2, cultures: 3, tags: 5, headEpochs: 1, headLR: 1e-3})
	dir := t.TempDir()
	planPath := filepath.Join(dir, "perfold.yaml")
	writeFile(t, planPath, "ensemble: rank\nconfig: "+cfg+"\nfold_archs: [mobilenet_v2, resnet18]\n")
	out := filepath.Join(dir, "out")
	if code, _, errs := runCLI(t, "cv", "--plan", planPath, "--out", out, "--no-registry"); code != 0 {
		t.Fatalf("cv --plan exited %d: %s", code, errs)
	}
	m, err := plan.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if !m.PerFold || len(m.Parts) != 2 || !slices.Equal(m.Parts[0].Folds, []int{0}) || m.Parts[0].Arch != "mobilenet_v2" || m.Reference == "" {
		t.Fatalf("manifest: %+v", m)
	}
	oof := loadProbs(t, filepath.Join(out, "oof.npy"))
	f0 := loadProbs(t, filepath.Join(out, "parts", "mobilenet_v2", "fold0", "oof_fold0.npy"))
	f1 := loadProbs(t, filepath.Join(out, "parts", "resnet18", "fold1", "oof_fold1.npy"))
	if oof.Rows != f0.Rows+f1.Rows || !slices.Equal(oof.Data, append(slices.Clone(f0.Data), f1.Data...)) {
		t.Fatal("the per-fold plan's OOF is not its folds' rows stacked")
	}
	checkPlanBundle(t, out, filepath.Dir(cfg))
}

// checkPlanBundle exports the plan in out, predicts the data set's test
// images with the bundle, and compares with the plan's test.npy (per
// image, bit for bit) and submission.csv (per image).
func checkPlanBundle(t *testing.T, out, dataParent string) {
	t.Helper()
	tmp := t.TempDir()
	bdir := filepath.Join(tmp, "bundle")
	if code, stdout, errs := runCLI(t, "export", out, "--out", bdir); code != 0 {
		t.Fatalf("export exited %d: %s", code, errs)
	} else {
		t.Log(strings.TrimSpace(stdout))
	}
	got := filepath.Join(tmp, "got.npy")
	sub := filepath.Join(tmp, "got.csv")
	images := filepath.Join(dataParent, "data", "test")
	if code, _, errs := runCLI(t, "predict", "--from", bdir, "--images", images, "--out", sub, "--probs", got); code != 0 {
		t.Fatalf("predict from the bundle exited %d: %s", code, errs)
	}
	want := loadProbs(t, filepath.Join(out, "test.npy"))
	have := loadProbs(t, got)
	if !slices.Equal(want.Labels, have.Labels) || want.Rows != have.Rows {
		t.Fatalf("bundle predicted %d rows of %v, the plan %d of %v", have.Rows, have.Labels, want.Rows, want.Labels)
	}
	row := map[string]int{}
	for i, id := range have.IDs {
		row[id] = i
	}
	for i, id := range want.IDs {
		j, ok := row[id]
		if !ok {
			t.Fatalf("bundle did not predict %s", id)
		}
		for c, v := range want.Row(i) {
			if w := have.Row(j)[c]; math.Float32bits(v) != math.Float32bits(w) {
				t.Fatalf("image %s label %s: plan %v, bundle %v", id, want.Labels[c], v, w)
			}
		}
	}
	sortedLines := func(path string) []string {
		l := strings.Split(strings.TrimSpace(readFile(t, path)), "\n")
		slices.Sort(l)
		return l
	}
	if a, b := sortedLines(filepath.Join(out, "submission.csv")), sortedLines(sub); !slices.Equal(a, b) {
		t.Fatalf("submissions differ:\n%v\n%v", a, b)
	}
}

// checkWeighted checks that got is the weighted mean of parts, image by
// image (the parts aligned by id), to float32 rounding of a two-term sum.
func checkWeighted(t *testing.T, got *probs.File, parts []*probs.File, w []float64) {
	t.Helper()
	for k, p := range parts {
		if p.Rows != got.Rows {
			t.Fatalf("part %d has %d rows, the ensemble %d", k, p.Rows, got.Rows)
		}
	}
	pos := make([]map[string]int, len(parts))
	for k, p := range parts {
		pos[k] = map[string]int{}
		for i, id := range p.IDs {
			pos[k][id] = i
		}
	}
	for i, id := range got.IDs {
		for c, v := range got.Row(i) {
			var want float64
			for k, p := range parts {
				want += w[k] * float64(p.Row(pos[k][id])[c])
			}
			if math.Abs(float64(v)-want) > 1e-6 {
				t.Fatalf("image %s column %d: %v, want %v", id, c, v, want)
			}
		}
	}
}

// globalScore is the in-sample F2 of the global rule in a thresholds file.
func globalScore(t *testing.T, path string) float64 {
	t.Helper()
	f, err := thresholds.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Rules {
		if r.Name == thresholds.Global {
			return r.Score
		}
	}
	t.Fatalf("%s: no global rule", path)
	return 0
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadProbs(t *testing.T, path string) *probs.File {
	t.Helper()
	f, err := probs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
