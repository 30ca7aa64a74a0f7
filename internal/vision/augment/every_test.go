package augment

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"imet/internal/vision/imageio"
)

// TestEveryOp runs each op of the table behind OpNames, written as a user
// would write it in YAML with p: 1 (plus a size for the ops that cannot
// have a default one), on a small image: it builds, its output has the
// size OutputSize promises and finite values, and the same seed gives the
// same output.
func TestEveryOp(t *testing.T) {
	src := imageio.New(50, 40)
	for i := range src.Pix {
		src.Pix[i] = uint8(i*13 + i/5)
	}
	for _, name := range OpNames() {
		t.Run(name, func(t *testing.T) {
			text := "op: " + name + "\np: 1\n"
			op, _ := NewOp(name)
			if _, err := NewChain(op); err != nil {
				if !strings.Contains(err.Error(), "height and width") {
					t.Fatalf("defaults: %v", err)
				}
				text += "height: 24\nwidth: 20\n"
			}
			var s Spec
			if err := yaml.Unmarshal([]byte(text), &s); err != nil {
				t.Fatalf("%q: %v", text, err)
			}
			c, err := ChainOf([]Spec{s})
			if err != nil {
				t.Fatal(err)
			}
			a, w, h, err := c.Apply(src, rng(5), nil)
			if err != nil {
				t.Fatal(err)
			}
			if ow, oh := c.OutputSize(50, 40); ow != w || oh != h {
				t.Fatalf("output %dx%d, OutputSize says %dx%d", w, h, ow, oh)
			}
			if len(a) != 3*w*h {
				t.Fatalf("%d values for %dx%d", len(a), w, h)
			}
			for i, v := range a {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("value %d is %v", i, v)
				}
			}
			b, _, _, _ := c.Apply(src, rng(5), nil)
			if !slices.Equal(a, b) {
				t.Fatal("same seed, different output")
			}
		})
	}
}
