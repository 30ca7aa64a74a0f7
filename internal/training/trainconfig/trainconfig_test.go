package trainconfig

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"imet/internal/base/config"
)

func TestExampleConfigParses(t *testing.T) {
	r, err := Load("../../../configs/imet-resnet50.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Stages) != 3 || r.Stages[2].Accumulate != 2 || r.Stages[2].Loss[1].Beta != 2 {
		t.Fatalf("parsed %+v", r.Stages)
	}
	// Defaults fill what a stage leaves out.
	if r.Stages[0].Optimizer.Name != "adamw" || r.Stages[0].Schedule.Name != "constant" || r.Stages[0].Loss[0].Name != "bce" {
		t.Fatalf("stage defaults missing: %+v", r.Stages[0])
	}
	if r.Stages[1].Schedule.PctStart != 0.3 {
		t.Fatalf("schedule defaults lost under a partial schedule: %+v", r.Stages[1].Schedule)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"misspelt key", "stages:\n  - epochs: 1\n    learning_rate: [1]\n", "x.yaml:3"},
		{"epochs and steps", "stages:\n  - epochs: 1\n    steps: 3\n", "exactly one of epochs and steps"},
		{"neither", "stages:\n  - lr: [1]\n", "exactly one of epochs and steps"},
		{"bad loss", "stages:\n  - epochs: 1\n    loss: [{name: dice}]\n", "loss[0]: unknown loss \"dice\" (known: "},
		{"bad device", "engine: {device: tpu}\n", "engine.device: device \"tpu\""},
		{"bad arch", "model: {arch: vgg16}\n", "model.arch: unknown architecture \"vgg16\""},
		{"bad pipeline", "data: {pipeline: big}\n", "data.pipeline: unknown pipeline \"big\""},
		{"bad optimizer", "stages:\n  - epochs: 1\n    optimizer: {name: lamb}\n", "optimizer \"lamb\""},
		{"bad schedule", "stages:\n  - epochs: 1\n    schedule: {name: poly}\n", "unknown schedule \"poly\""},
		{"lr_groups count", "stages:\n  - epochs: 1\n    lr: [1, 2]\n    lr_groups: [[head]]\n", "2 rates for 1 lr_groups"},
		{"ema decay", "ema: {enabled: true, decay: 1.5}\n", "ema.decay"},
	}
	for _, c := range cases {
		_, err := Parse("x.yaml", []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestGroupRates(t *testing.T) {
	groups := []string{"stem", "stage1", "stage2", "stage3", "stage4", "head"}
	cases := []struct {
		name  string
		stage Stage
		want  map[string]float64
	}{
		{"one rate", Stage{LR: []float64{1}},
			map[string]float64{"stem": 1, "stage1": 1, "stage2": 1, "stage3": 1, "stage4": 1, "head": 1}},
		{"three rates default split", Stage{LR: []float64{1, 2, 3}},
			map[string]float64{"stem": 1, "stage1": 1, "stage2": 1, "stage3": 2, "stage4": 2, "head": 3}},
		{"frozen body", Stage{LR: []float64{1, 2}, Frozen: []string{"stem", "stage1", "stage2"}},
			map[string]float64{"stage3": 1, "stage4": 1, "head": 2}},
		{"explicit", Stage{LR: []float64{1, 2}, LRGroups: [][]string{{"stem", "stage1", "stage2", "stage3"}, {"stage4", "head"}}},
			map[string]float64{"stem": 1, "stage1": 1, "stage2": 1, "stage3": 1, "stage4": 2, "head": 2}},
	}
	for _, c := range cases {
		got, err := c.stage.GroupRates(groups)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	bad := []Stage{
		{LR: []float64{1}, Frozen: []string{"layer9"}},
		{LR: []float64{1, 2}, LRGroups: [][]string{{"stem"}, {"head"}}}, // stage1.. have no rate
		{LR: []float64{1, 2, 3, 4, 5, 6, 7}},
	}
	for i, s := range bad {
		if _, err := s.GroupRates(groups); err == nil {
			t.Errorf("bad[%d] accepted", i)
		}
	}
}

func TestDiffNamesWhatChanged(t *testing.T) {
	a := Default()
	b := Default()
	b.Stages[2].LR[1] = 1e-4
	b.Model.Arch = "resnet34"
	b.Checkpoint.EverySteps = 7 // free: must not count
	b.Engine.Threads = 3        // free
	d := Diff(a.Fingerprint(), b.Fingerprint())
	want := []string{"model.arch: was resnet50, now resnet34", "stages[2].lr[1]: was 8e-05, now 0.0001"}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("diff %q, want %q", d, want)
	}
	if Hash(a.Fingerprint()) == Hash(b.Fingerprint()) {
		t.Fatal("hashes of different configs agree")
	}
	c := Default()
	c.Stages = c.Stages[:2]
	if d := Diff(a.Fingerprint(), c.Fingerprint()); len(d) == 0 || !strings.Contains(d[0], "stages[2]") || !strings.Contains(d[0], "not in this config") {
		t.Fatalf("removed stage diff: %q", d)
	}
}

func TestEngineSettings(t *testing.T) {
	ok := []struct {
		doc, precision, device string
	}{
		{"name: x\n", "fp32", "cpu"},
		{"engine: {bf16: true}\n", "bf16", "cpu"},
		{"engine: {bf16: false}\n", "fp32", "cpu"},
		{"engine: {bf16: true, precision: bf16}\n", "bf16", "cpu"},
		{"engine: {precision: fp16, device: cuda}\n", "fp16", "cuda"},
		{"engine: {precision: fp16, device: 'cuda:1', cudnn_benchmark: true, channels_last: true}\n", "fp16", "cuda:1"},
	}
	for _, c := range ok {
		r, err := Parse("x.yaml", []byte(c.doc))
		if err != nil {
			t.Errorf("%q: %v", c.doc, err)
			continue
		}
		if r.Engine.Precision != c.precision || r.Engine.Device != c.device || r.Engine.BF16 != nil {
			t.Errorf("%q: engine %+v, want precision %s on %s with bf16 cleared", c.doc, r.Engine, c.precision, c.device)
		}
		y, err := config.Marshal(r)
		if err != nil || strings.Contains(string(y), "bf16:") || !strings.Contains(string(y), "precision: "+c.precision) {
			t.Errorf("%q: the recorded config says\n%s", c.doc, y)
		}
	}
	bad := []struct{ doc, want string }{
		{"name: x\nengine:\n  precision: fp32\n  bf16: true\n", "x.yaml:4: engine.bf16: true (deprecated) means precision bf16, but engine.precision is fp32"},
		{"engine:\n  device: cuda\n  bf16: false\n  precision: fp16\n", "x.yaml:3: engine.bf16"},
		{"engine:\n  threads: 1\n  precision: fp16\n", "x.yaml:3: engine.precision: fp16 needs a CUDA device"},
		{"engine:\n  device: gpu\n", `x.yaml:2: engine.device: device "gpu": want cpu, cuda or cuda:N`},
		{"engine:\n  device: 'cuda:-1'\n", "x.yaml:2: engine.device"},
		{"engine: {precision: fp8}\n", `engine.precision: "fp8": want fp32, bf16 or fp16`},
		{"stages:\n  - epochs: 1\n    optimizer: {clip_grad_norm: -1}\n", "optimizer.clip_grad_norm -1"},
	}
	for _, c := range bad {
		_, err := Parse("x.yaml", []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.doc, err, c.want)
		}
	}
}

// TestDiffReadsFingerprintsFromBeforeAKeyExisted: a checkpoint written
// before engine.precision, engine.channels_last and clip_grad_norm existed
// (with engine.bf16 instead) resumes under a configuration that computes
// the same, and is refused under one that does not.
func TestDiffReadsFingerprintsFromBeforeAKeyExisted(t *testing.T) {
	old := func(bf16 bool) []string {
		r := Default()
		var out []string
		for _, l := range r.Fingerprint() {
			if strings.HasPrefix(l, "engine.precision") || strings.HasPrefix(l, "engine.channels_last") || strings.Contains(l, "clip_grad_norm") {
				continue
			}
			out = append(out, l)
		}
		return append(out, fmt.Sprintf("engine.bf16 = %v", bf16))
	}
	bf := Default()
	bf.Engine.Precision = PrecisionBF16
	if d := Diff(old(true), bf.Fingerprint()); len(d) != 0 {
		t.Errorf("bf16 checkpoint, precision bf16: %q", d)
	}
	fp := Default()
	if d := Diff(old(false), fp.Fingerprint()); len(d) != 0 {
		t.Errorf("fp32 checkpoint, precision fp32: %q", d)
	}
	if d := Diff(old(false), bf.Fingerprint()); !reflect.DeepEqual(d, []string{"engine.precision: was fp32, now bf16"}) {
		t.Errorf("fp32 checkpoint, precision bf16: %q", d)
	}
	cl := Default()
	cl.Engine.ChannelsLast = true
	cl.Stages[1].Optimizer.ClipGradNorm = 1
	want := []string{"engine.channels_last: not in the checkpoint's config, now true", "stages[1].optimizer.clip_grad_norm: not in the checkpoint's config, now 1"}
	if d := Diff(old(false), cl.Fingerprint()); !reflect.DeepEqual(d, want) {
		t.Errorf("new settings switched on: %q, want %q", d, want)
	}
}

// Each of these passed `imet config check` and failed only in training
// (or trained on something else than asked): now each is an error naming
// the key's line.
func TestCheckRefusesWhatTrainingWouldFailOn(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown frozen group", "stages:\n  - name: a\n    epochs: 1\n    frozen: [stage9]\n", `x.yaml:4: stages[0].frozen: stage 0 (a): frozen group "stage9" is not one of stem, stage1, stage2, stage3, stage4, head`},
		{"7 rates for 3 groups", "stages:\n  - name: a\n    epochs: 1\n    frozen: [stem, stage1, stage2]\n    lr: [1, 2, 3, 4, 5, 6, 7]\n", "x.yaml:5: stages[0].lr: stage a: 7 rates for 2 trainable body groups and the head"},
		{"every group frozen", "stages:\n  - name: a\n    epochs: 1\n    frozen: [stem, stage1, stage2, stage3, stage4, head]\n", "x.yaml:4: stages[0].frozen: stage 0 (a): every layer group is frozen"},
		{"lr_groups names an unknown group", "stages:\n  - name: a\n    epochs: 1\n    lr: [1, 2]\n    lr_groups: [[stem], [layer5]]\n", `x.yaml:5: stages[0].lr_groups: stage a: lr_groups names "layer5"`},
		{"unknown architecture", "model:\n  arch: resnet9999\n", `x.yaml:2: model.arch: unknown architecture "resnet9999"`},
		{"fractional batch", "stages:\n  - name: a\n    epochs: 1\n    batch_size: 8.5\n", "x.yaml:4: 8.5 is not an integer"},
		{"negative limit", "data:\n  limit: -5\n", "x.yaml:2: data.limit: -5: must be at least 0"},
		{"negative threads", "engine:\n  threads: -3\n", "x.yaml:2: engine.threads: -3: must be at least 0"},
		{"negative workers", "data: {workers: -1}\n", "x.yaml:1: data.workers: -1"},
		{"zero validation batch", "validation:\n  batch_size: 0\n", "x.yaml:2: validation.batch_size: 0: must be at least 1"},
		{"zero keep", "checkpoint:\n  keep: 0\n", "x.yaml:2: checkpoint.keep: 0"},
		{"negative epochs", "stages:\n  - name: a\n    epochs: -1\n    steps: 5\n", "x.yaml:3: stages[0].epochs: stage 0 (a): epochs -1 is negative"},
		{"stage without a length", "stages:\n  - name: a\n    lr: [1]\n", "x.yaml:2: stages[0].epochs: stage 0 (a): set exactly one of epochs and steps"},
	} {
		_, err := Parse("x.yaml", []byte(tc.doc))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to start with %q", tc.name, err, tc.want)
		}
	}
}

// engine.threads: 100000 died creating threads and validation.batch_size:
// 1e8 ran out of memory after three steps; both are refused by the check,
// against the machine given, with the bound or the estimate named.
func TestCheckResources(t *testing.T) {
	m := Machine{CPUs: 2, MemAvailable: 8 << 30}
	for _, tc := range []struct{ name, doc, want string }{
		{"threads", "engine:\n  threads: 100000\n", "x.yaml:2: engine.threads: 100000 threads on a machine with 2 CPUs: at most 8 (4 per CPU)"},
		{"workers", "data: {workers: 33}\n", "x.yaml:1: data.workers: 33 decoding workers on a machine with 2 CPUs: at most 32"},
		{"validation batch", "validation:\n  batch_size: 1e8\n", "x.yaml:2: validation.batch_size: 100000000 images of 256x256: one forward pass of resnet50 needs about "},
		{"training batch", "stages:\n  - name: a\n    epochs: 1\n    batch_size: 4096\n", "x.yaml:4: stages[0].batch_size: 4096 images of 256x256: one training step (forward and backward) of resnet50 needs about "},
	} {
		_, err := ParseChecked("x.yaml", []byte(tc.doc), m)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to start with %q", tc.name, err, tc.want)
		}
	}
	// The estimate names itself and the memory available.
	_, err := ParseChecked("x.yaml", []byte("validation:\n  batch_size: 1e8\n"), m)
	if err == nil || !strings.Contains(err.Error(), "more than the 8.0 GiB this machine has available") {
		t.Errorf("error %v", err)
	}
	// The defaults fit, a GPU's memory is not estimated, and an unknown
	// MemAvailable skips the estimate.
	for _, tc := range []struct {
		doc string
		m   Machine
	}{
		{"", m},
		{"validation: {batch_size: 100000000}\nengine: {device: cuda}\n", m},
		{"validation: {batch_size: 100000000}\n", Machine{CPUs: 2}},
		{"engine: {threads: 8}\n", m},
	} {
		if _, err := ParseChecked("x.yaml", []byte(tc.doc), tc.m); err != nil {
			t.Errorf("%q: %v", tc.doc, err)
		}
	}
}

// A pipelines file is held to the same bounds as the run configuration:
// its alias bomb passed `config check` and took train down.
func TestPipelinesFileBomb(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("x0: &x0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "x%d: &x%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*x%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("pipelines: {}\n")
	pf := dir + "/pipelines.yaml"
	if err := os.WriteFile(pf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := "data:\n  pipelines_file: " + pf + "\n"
	_, err := ParseChecked("x.yaml", []byte(doc), Machine{})
	if err == nil || !strings.Contains(err.Error(), "values once aliases are expanded") || !strings.HasPrefix(err.Error(), "x.yaml:2: data.pipelines_file: "+pf) {
		t.Fatalf("error %v", err)
	}
}
