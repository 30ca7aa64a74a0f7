package pipeline

import (
	"testing"
)

// FuzzParseConfig: whatever a pipelines file holds, ParseConfig returns
// pipelines that build or an error; never a panic, and never an op that
// validated but cannot run.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"pipelines:\n  mine:\n    train:\n      - {op: RandomResizedCrop, height: 288, width: 288, scale: [0.3, 1]}\n      - {op: HorizontalFlip}\n      - {op: Normalize}\n    eval:\n      - {op: Resize, height: 288, width: 288}\n      - {op: Normalize}\n    tta: {mode: flip}\n",
		"pipelines:\n  s:\n    train: [{op: Resize, height: 8, width: 8}]\n    eval: [{op: Resize, height: 8, width: 8}]\n    tta: {mode: stochastic, n: 3}\n",
		"pipelines:\n  a: &a\n    train: [{op: CenterCrop, height: 4, width: 4}]\n    eval: [{op: CenterCrop, height: 4, width: 4}]\n  b: *a\n",
		"pipelines:\n  x:\n    train: [{op: Resize, height: 8.5, width: 8}]\n",
		"pipelines: {x: {train: [{op: Nope}]}}\n", "pipelines: [1, 2]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("p.yaml", data)
		if err != nil {
			return
		}
		for name, s := range c.Pipelines {
			if _, err := Build(name, s); err != nil {
				t.Fatalf("%s: accepted by ParseConfig, refused by Build: %v", name, err)
			}
		}
	})
}
