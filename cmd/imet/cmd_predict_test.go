package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/engine/torch"
	"imet/internal/postprocess/probs"
	"imet/internal/ship/bundle"
)

func tinyTrained(t *testing.T) (run, data string) {
	t.Helper()
	cfg := tinyRun(t)
	data = filepath.Join(filepath.Dir(cfg), "data")
	run = filepath.Join(t.TempDir(), "run")
	if code, _, errs := runCLI(t, "train", "--config", cfg, "--fold", "0", "--run-dir", run); code != 0 {
		t.Fatalf("train exited %d: %s", code, errs)
	}
	return run, data
}

// byID returns f's rows reordered to ids.
func byID(t *testing.T, f *probs.File, ids []string) []float32 {
	t.Helper()
	at := map[string]int{}
	for i, id := range f.IDs {
		at[id] = i
	}
	var out []float32
	for _, id := range ids {
		i, ok := at[id]
		if !ok {
			t.Fatalf("no row for %s", id)
		}
		out = append(out, f.Row(i)...)
	}
	return out
}

// staticBinary builds a tiny statically linked program: bundling it copies
// no libraries, so tests of the bundle's model files stay cheap.
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module static\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	bin := filepath.Join(dir, "static")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestPredictFromRunAndBundle checks that imet predict from a run
// directory reproduces, bit for bit, the test probabilities training wrote
// with the same weights, and that a bundle exported from the run predicts
// the same bits again; then that damaged bundles are refused naming the
// file.
func TestPredictFromRunAndBundle(t *testing.T) {
	run, data := tinyTrained(t)
	tmp := t.TempDir()
	sub, npy := filepath.Join(tmp, "sub.csv"), filepath.Join(tmp, "p.npy")
	code, out, errs := runCLI(t, "predict", "--from", run, "--images", filepath.Join(data, "test"), "--out", sub, "--probs", npy)
	if code != 0 {
		t.Fatalf("predict exited %d: %s", code, errs)
	}
	if !strings.Contains(errs, "event=predict done=16 total=16") || !strings.Contains(errs, "device=cpu precision=fp32") || !strings.Contains(out, sub) {
		t.Fatalf("progress or report missing:\nstdout %s\nstderr %s", out, errs)
	}
	got, err := probs.Load(npy)
	if err != nil {
		t.Fatal(err)
	}
	want, err := probs.Load(filepath.Join(run, "test_fold0.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != 8 || !slices.Equal(got.Labels, want.Labels) {
		t.Fatalf("got %d rows, labels %v; training's labels %v", got.Rows, got.Labels, want.Labels)
	}
	if !slices.Equal(byID(t, got, want.IDs), want.Data) {
		t.Fatalf("predict from the run differs from training's test probabilities")
	}
	lines := strings.Split(strings.TrimSpace(readFile(t, sub)), "\n")
	if lines[0] != "id,attribute_ids" || len(lines) != 9 {
		t.Fatalf("submission:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines[1:] {
		if id, attrs, _ := strings.Cut(l, ","); id == "" || attrs == "" {
			t.Fatalf("submission row %q", l)
		}
	}

	// The same through a bundle (binary: a static stand-in; the model
	// files are what is tested here).
	bdir := filepath.Join(tmp, "bundle")
	if code, out, errs := runCLI(t, "export", run, "--out", bdir, "--binary", staticBinary(t)); code != 0 {
		t.Fatalf("export exited %d: %s", code, errs)
	} else if !strings.Contains(out, "resnet18") {
		t.Fatalf("export report: %s", out)
	}
	npy2 := filepath.Join(tmp, "b.npy")
	if code, _, errs := runCLI(t, "predict", "--bundle", bdir, "--device", "cpu", "--images", filepath.Join(data, "test"), "--out", filepath.Join(tmp, "sub2.csv"), "--probs", npy2); code != 0 {
		t.Fatalf("predict --bundle exited %d: %s", code, errs)
	}
	if !bytes.Equal([]byte(readFile(t, npy)), []byte(readFile(t, npy2))) || readFile(t, sub) != readFile(t, filepath.Join(tmp, "sub2.csv")) {
		t.Fatalf("bundle predictions differ from the run's")
	}

	// A bundle exports again from itself.
	bdir2 := filepath.Join(tmp, "bundle2")
	if code, _, errs := runCLI(t, "export", bdir, "--out", bdir2, "--binary", staticBinary(t)); code != 0 {
		t.Fatalf("export from a bundle exited %d: %s", code, errs)
	}
	npy3 := filepath.Join(tmp, "b2.npy")
	if code, _, errs := runCLI(t, "predict", "--bundle", bdir2, "--images", filepath.Join(data, "test"), "--out", filepath.Join(tmp, "sub3.csv"), "--probs", npy3); code != 0 {
		t.Fatalf("predict from the re-exported bundle exited %d: %s", code, errs)
	}
	if readFile(t, npy3) != readFile(t, npy) || !strings.Contains(readFile(t, filepath.Join(bdir2, "inference.json")), run) {
		t.Fatalf("re-exported bundle predicts differently or lost its source")
	}

	predictErr := func(dir string) string {
		t.Helper()
		code, _, errs := runCLI(t, "predict", "--bundle", dir, "--images", filepath.Join(data, "test"), "--out", filepath.Join(tmp, "x.csv"))
		if code == 0 {
			t.Fatalf("predict from %s succeeded", dir)
		}
		return errs
	}
	copyDir := func(name string) string {
		d := filepath.Join(tmp, name)
		if out, err := exec.Command("cp", "-a", bdir, d).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		return d
	}
	weights := filepath.Join("weights", "fold0.tensors")
	cases := []struct {
		name   string
		damage func(d string)
		want   string
	}{
		{"flipped byte", func(d string) {
			p := filepath.Join(d, weights)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, weights + ": corrupt or modified"},
		{"truncated", func(d string) {
			p := filepath.Join(d, weights)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-100], 0o644)
		}, weights + ": corrupt or modified"},
		{"missing spec", func(d string) { os.Remove(filepath.Join(d, "inference.json")) }, "inference.json"},
		{"missing labels", func(d string) { os.Remove(filepath.Join(d, "labels.csv")) }, "labels.csv"},
		// Without a manifest nothing could be verified: refused.
		{"no manifest", func(d string) { os.Remove(filepath.Join(d, "manifest.json")) }, "manifest.json"},
		// The libraries are verified too, before the engine loads them.
		{"flipped byte in a library", func(d string) {
			libs, _ := filepath.Glob(filepath.Join(d, "lib", "libc10.so*"))
			if len(libs) != 1 {
				t.Fatalf("libc10 in the bundle: %v", libs)
			}
			b, _ := os.ReadFile(libs[0])
			b[len(b)/2] ^= 1
			os.WriteFile(libs[0], b, 0o644)
		}, "lib/libc10.so"},
		{"library added to lib/", func(d string) {
			os.WriteFile(filepath.Join(d, "lib", "libextra.so"), []byte("\x7fELF"), 0o644)
		}, "lib/libextra.so: not listed in"},
	}
	for i, c := range cases {
		d := copyDir("damaged" + string(rune('a'+i)))
		c.damage(d)
		errs := predictErr(d)
		t.Logf("%s: %s", c.name, strings.TrimSpace(errs))
		if !strings.Contains(errs, filepath.Join(d, c.want)) && !strings.Contains(errs, c.want) {
			t.Errorf("%s: error does not name the file (%s):\n%s", c.name, c.want, errs)
		}
		if c.name == "missing spec" {
			continue // a bundle of the binary only, which imet bundle verify accepts
		}
		if code, _, errs := runCLI(t, "bundle", "verify", d); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%s: imet bundle verify exited %d: %s", c.name, code, errs)
		}
	}
	if code, out, errs := runCLI(t, "bundle", "verify", bdir); code != 0 || !strings.Contains(out, "ok: "+bdir) {
		t.Errorf("imet bundle verify of the whole bundle: exit %d\n%s%s", code, out, errs)
	}
	// A bundle written before precision replaced bf16 still opens.
	spec := readFile(t, filepath.Join(bdir, "inference.json"))
	if !strings.Contains(spec, `"precision": "fp32"`) {
		t.Fatalf("inference.json does not record the precision:\n%s", spec)
	}
	old := copyDir("old-spec")
	writeSpec := func(text string) {
		os.WriteFile(filepath.Join(old, "inference.json"), []byte(text), 0o644)
		rehashManifest(t, old, "inference.json")
	}
	writeSpec(strings.Replace(spec, `"precision": "fp32"`, `"bf16": true`, 1))
	if code, _, errs := runCLI(t, "predict", "--bundle", old, "--images", filepath.Join(data, "test"), "--out", filepath.Join(tmp, "old.csv")); code != 0 || !strings.Contains(errs, "precision=bf16") {
		t.Errorf("bundle with bf16: true: exit %d\n%s", code, errs)
	}
	writeSpec(strings.Replace(spec, `"precision": "fp32"`, `"precision": "fp16", "bf16": true`, 1))
	if errs := predictErr(old); !strings.Contains(errs, "inference.json: bf16 (the old key) is true but precision is fp16") {
		t.Errorf("contradicting bf16 and precision: %s", errs)
	}
	if errs := predictErr(filepath.Join(tmp, "nowhere")); !strings.Contains(errs, "nowhere") {
		t.Errorf("missing bundle: %s", errs)
	}
	if errs := predictErr(filepath.Join(data)); !strings.Contains(errs, "not a bundle") {
		t.Errorf("a data folder as bundle: %s", errs)
	}
}

// TestPredictDeviceIsCheckedFirst: a device name that is wrong, or a GPU
// this libtorch cannot reach, is refused in one line before any model is
// read.
func TestPredictDeviceIsCheckedFirst(t *testing.T) {
	images := t.TempDir()
	nowhere := filepath.Join(t.TempDir(), "no-model")
	args := func(dev string) []string {
		return []string{"predict", "--from", nowhere, "--images", images, "--out", filepath.Join(images, "x.csv"), "--device", dev}
	}
	code, _, errs := runCLI(t, args("gpu")...)
	if code == 0 || !strings.Contains(errs, `--device "gpu": want cpu, cuda or cuda:N`) {
		t.Errorf("--device gpu: exit %d: %s", code, errs)
	}
	gpu := torch.CUDA(torch.CUDADeviceCount()).String() // the first GPU this process lacks
	code, _, errs = runCLI(t, args(gpu)...)
	t.Log(strings.TrimSpace(errs))
	if code == 0 || !strings.Contains(errs, "--device "+gpu+": ") || !strings.Contains(errs, "libtorch "+torch.Version()) || strings.Contains(errs, "no-model") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		t.Errorf("--device %s: exit %d: %s", gpu, code, errs)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPredictFromCVAndCheckpoint: predicting from an imet cv folder
// averages the folds' models exactly as cv averaged their test
// probabilities, its export carries every fold, and a checkpoint file
// predicts like the run it belongs to.
func TestPredictFromCVAndCheckpoint(t *testing.T) {
	cfg := tinyRun(t)
	data := filepath.Join(filepath.Dir(cfg), "data")
	images := filepath.Join(data, "test")
	cv := filepath.Join(t.TempDir(), "cv")
	if code, _, errs := runCLI(t, "cv", "--config", cfg, "--out", cv, "--folds", "0,2"); code != 0 {
		t.Fatalf("cv exited %d: %s", code, errs)
	}
	tmp := t.TempDir()
	predict := func(name string, args ...string) *probs.File {
		t.Helper()
		npy := filepath.Join(tmp, name+".npy")
		args = append([]string{"predict", "--images", images, "--out", filepath.Join(tmp, name+".csv"), "--probs", npy}, args...)
		if code, _, errs := runCLI(t, args...); code != 0 {
			t.Fatalf("%v exited %d: %s", args, code, errs)
		}
		f, err := probs.Load(npy)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	got := predict("cv", "--from", cv)
	want, err := probs.Load(filepath.Join(cv, "test.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(byID(t, got, want.IDs), want.Data) {
		t.Fatalf("predict from the cv folder differs from cv's ensembled test.npy")
	}
	// cv's threshold file decides the labels, as in its submission.
	if a, b := sortedLines(readFile(t, filepath.Join(tmp, "cv.csv"))), sortedLines(readFile(t, filepath.Join(cv, "submission.csv"))); a != b {
		t.Fatalf("submission differs from cv's:\n%s\n%s", a, b)
	}

	bdir := filepath.Join(tmp, "bundle")
	if code, _, errs := runCLI(t, "export", cv, "--out", bdir, "--binary", staticBinary(t)); code != 0 {
		t.Fatalf("export exited %d: %s", code, errs)
	}
	if spec := readFile(t, filepath.Join(bdir, "inference.json")); !strings.Contains(spec, "weights/fold1.tensors") {
		t.Fatalf("bundle of two folds lists:\n%s", spec)
	}
	if b := predict("bundle", "--bundle", bdir); !slices.Equal(b.Data, got.Data) {
		t.Fatalf("bundle of the cv folder predicts differently")
	}

	// --tta none: the plain view only (the recipe's TTA adds the mirror).
	plain := predict("plain", "--from", cv, "--tta", "none")
	if slices.Equal(plain.Data, got.Data) {
		t.Fatalf("--tta none changed nothing")
	}
	if code, _, _ := runCLI(t, "predict", "--from", cv, "--images", images, "--out", filepath.Join(tmp, "x.csv"), "--tta", "many"); code == 0 {
		t.Fatalf("--tta many accepted")
	}

	fold0 := filepath.Join(cv, "fold0")
	idx := readFile(t, filepath.Join(fold0, "checkpoints", "index.json"))
	_, rest, _ := strings.Cut(idx, `"best": "`)
	best, _, _ := strings.Cut(rest, `"`)
	ck := predict("ckpt", "--from", filepath.Join(fold0, "checkpoints", best))
	run := predict("run", "--from", fold0)
	if best == "" || !slices.Equal(ck.Data, run.Data) {
		t.Fatalf("checkpoint %q predicts differently from its run", best)
	}
}

func sortedLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return strings.Join(l, "\n")
}

// rehashManifest records name's new content in dir's manifest, as an
// export of that content would have: tests of old bundle formats edit a
// file without making the bundle look tampered with.
func rehashManifest(t *testing.T, dir, name string) {
	t.Helper()
	m, err := bundle.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	for i := range m.Files {
		if m.Files[i].Path == name {
			m.Files[i].Size, m.Files[i].SHA256 = int64(len(b)), hex.EncodeToString(sum[:])
		}
	}
	data, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, bundle.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPredictEmbeddings checks that --embeddings writes the penultimate
// layer of every predicted image, named like the probabilities, and that
// it is no second copy of them: as wide as the head's input (resnet18
// with concat pooling: 2 x 512), without a labels sidecar.
func TestPredictEmbeddings(t *testing.T) {
	run, data := tinyTrained(t)
	tmp := t.TempDir()
	npy, emb := filepath.Join(tmp, "p.npy"), filepath.Join(tmp, "e.npy")
	out := mustRun(t, "predict", "--from", run, "--images", filepath.Join(data, "test"), "--out", filepath.Join(tmp, "s.csv"),
		"--probs", npy, "--embeddings", emb)
	if !strings.Contains(out, "e.npy (8 x 1024 embeddings)") {
		t.Fatalf("report: %s", out)
	}
	p, err := probs.Load(npy)
	if err != nil {
		t.Fatal(err)
	}
	e, err := probs.Load(emb)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.IDs, p.IDs) || e.Labels != nil || e.Cols != 1024 {
		t.Fatalf("embeddings: ids %v (probabilities %v), labels %v, %d columns", e.IDs, p.IDs, e.Labels, e.Cols)
	}
	// Pooled ReLU features: non-negative, and not the same for every image.
	for _, v := range e.Data {
		if v < 0 {
			t.Fatalf("negative pooled activation %g", v)
		}
	}
	if slices.Equal(e.Row(0), e.Row(1)) {
		t.Fatal("two images share one embedding")
	}
}
