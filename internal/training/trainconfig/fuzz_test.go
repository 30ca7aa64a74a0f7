package trainconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: whatever the run configuration, Parse returns a run that
// passes Validate and whose every stage resolves its rates onto the
// model's groups (what training does first), or an error naming the file.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "..", "configs", "imet-resnet50.yaml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"stages:\n  - name: a\n    epochs: 1\n    frozen: [stage9]\n",
		"stages:\n  - {name: a, epochs: 1, frozen: [stem, stage1, stage2], lr: [1, 2, 3]}\n",
		"stages:\n  - {name: a, steps: 5, lr: [1, 2], lr_groups: [[stem, stage1, stage2, stage3], [stage4, head]]}\n",
		"stages:\n  - {name: a, epochs: 1, batch_size: 8.5}\n", "data: {limit: -5}\nengine: {threads: -3}\n",
		"model: {arch: resnet9999}\n", "validation: {batch_size: 1e8}\n", "engine: {bf16: true}\n",
		"x: &x [1, 1]\nstages: *x\n",
		"targets: {soft: {rule: maximum, alpha: 2}, pseudo: {share: 0}}\n", "data: {labels: ['', tag]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		for i := range r.Stages {
			rates, err := r.Stages[i].GroupRates(groupsForTest)
			if err != nil || len(rates) == 0 {
				t.Fatalf("stage %d accepted, yet rates %v, %v", i, rates, err)
			}
		}
		if _, err := ParseChecked("f.yaml", data, Machine{CPUs: 2, MemAvailable: 8 << 30}); err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

var groupsForTest = []string{"stem", "stage1", "stage2", "stage3", "stage4", "head"}
