package losses

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"imet/internal/base/config"
	"imet/internal/engine/torch"
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
			var terms []Config
			for _, raw := range c.Terms {
				term := DefaultConfig()
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
	_, err := New([]Config{{Name: "dice", Weight: 1}})
	if err == nil || !strings.Contains(err.Error(), `unknown loss "dice" (known: `+strings.Join(Names(), ", ")+")") {
		t.Fatalf("unknown loss: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Fatal("empty loss accepted")
	}
}

// TestEveryLossBuilds builds each loss of the table from its default
// parameters and checks that it gives a finite value and finite gradients
// on a small batch, so that no name can be listed without a working loss.
func TestEveryLossBuilds(t *testing.T) {
	if len(Names()) == 0 {
		t.Fatal("no losses")
	}
	logits := []float32{2, -1, 0.5, -3, 0, 1.5, -0.2, 4}
	targets := []float32{1, 0, 1, 0, 0.3, 1, 0, 0.9}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			if Doc(name) == "" {
				t.Error("no doc line")
			}
			c := DefaultConfig()
			c.Name = name
			loss, err := New([]Config{c})
			if err != nil {
				t.Fatal(err)
			}
			err = torch.Run(func() {
				x := torch.FromFloat32(logits, 2, 4).SetRequiresGrad(true)
				v := loss.Forward(x, torch.FromFloat32(targets, 2, 4))
				if got := v.Item(); math.IsNaN(got) || math.IsInf(got, 0) || got < 0 {
					t.Errorf("loss %v", got)
				}
				v.Backward()
				nonzero := false
				for i, g := range x.Grad().Float32s() {
					if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
						t.Fatalf("grad[%d] %v", i, g)
					}
					nonzero = nonzero || g != 0
				}
				if !nonzero {
					t.Error("zero gradient")
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
