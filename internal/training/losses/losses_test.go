package losses

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"imet/internal/base/config"
	"imet/internal/engine/torch"
	"imet/internal/training/trainconfig"
)

type golden struct {
	Rows, Cols int
	Logits     []float32
	Hard, Soft []float32
	Cases      []struct {
		Name    string
		Terms   []json.RawMessage
		Targets string
		Loss    float64
		Grad    []float64
	}
}

// TestMatchesPyTorch checks each loss's value and its gradient with respect
// to the logits, for hard and soft targets, against testdata/golden.json.
func TestMatchesPyTorch(t *testing.T) {
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var terms []trainconfig.LossTerm
			for _, raw := range c.Terms {
				term := trainconfig.DefaultLossTerm()
				if err := config.Decode(c.Name, raw, &term); err != nil {
					t.Fatal(err)
				}
				terms = append(terms, term)
			}
			loss, err := New(terms)
			if err != nil {
				t.Fatal(err)
			}
			y := g.Hard
			if c.Targets == "soft" {
				y = g.Soft
			}
			err = torch.Run(func() {
				x := torch.FromFloat32(g.Logits, g.Rows, g.Cols).SetRequiresGrad(true)
				v := loss.Forward(x, torch.FromFloat32(y, g.Rows, g.Cols))
				got := v.Item()
				if math.Abs(got-c.Loss) > 1e-5*math.Max(1, math.Abs(c.Loss)) {
					t.Errorf("loss %.8g, PyTorch %.8g", got, c.Loss)
				}
				v.Backward()
				grad := x.Grad().Float32s()
				for i, w := range c.Grad {
					if math.Abs(float64(grad[i])-w) > 1e-6+1e-4*math.Abs(w) {
						t.Fatalf("grad[%d] %.8g, PyTorch %.8g", i, grad[i], w)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewRejectsUnknown(t *testing.T) {
	if _, err := New([]trainconfig.LossTerm{{Name: "dice", Weight: 1}}); err == nil {
		t.Fatal("unknown loss accepted")
	}
	if _, err := New(nil); err == nil {
		t.Fatal("empty loss accepted")
	}
}
