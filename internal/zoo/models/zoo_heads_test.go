package models

import (
	"fmt"
	"testing"

	"imet/internal/engine/torch"
)

// Every head option must fit the channel counts each backbone reports, and
// every architecture must expose the same layer groups for freezing and
// per-group learning rates.
func TestTorchvisionZooHeadsAndGroups(t *testing.T) {
	cases := []struct {
		arch string
		size int
		fcIn int // with Pool concat, Features last2
	}{
		{"mobilenet_v2", 64, 2 * (96 + 1280)},
		{"densenet121", 64, 2 * (1024 + 1024)},
		{"densenet161", 64, 2 * (2112 + 2208)},
		{"inception_v3", 75, 2 * (768 + 2048)},
	}
	for _, c := range cases {
		t.Run(c.arch, func(t *testing.T) {
			m, err := New(c.arch, Options{NumClasses: 3, Pool: "concat", Features: "last2", Dropout: 0.25})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(m.Store().Groups()); got != "[stem stage1 stage2 stage3 stage4 head]" {
				t.Errorf("groups %s", got)
			}
			head := map[string]string{"mobilenet_v2": "classifier.1", "inception_v3": "fc"}[c.arch]
			if head == "" {
				head = "classifier"
			}
			if sh := m.Store().Var(head + ".weight").T.Shape(); sh[0] != 3 || sh[1] != c.fcIn {
				t.Fatalf("%s.weight %v, want [3 %d]", head, sh, c.fcIn)
			}
			if err := m.Store().Freeze("stage1", true); err != nil {
				t.Fatal(err)
			}
			err = torch.Run(func() {
				y := m.Forward(torch.Randn(torch.Float32, torch.CPU, 2, 3, c.size, c.size))
				if s := y.Shape(); s[0] != 2 || s[1] != 3 {
					t.Errorf("logits %v", s)
				}
				y.Sum().Backward()
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range m.Store().Params() {
				frozen := v.Group == "stage1"
				if (v.T.Grad() == nil) != frozen {
					t.Errorf("%s (group %s): gradient present %v", v.Name, v.Group, v.T.Grad() != nil)
					break
				}
			}
		})
	}
}
