package models

import (
	"slices"
	"testing"

	"imet/internal/engine/torch"
)

// TestEmbedIsTheClassifierInput checks that the embedding is exactly what
// the last linear layer reads: that layer applied to Embed gives Forward's
// logits, bit for bit, for the shared head (plain and last2/concat pooling)
// and the MLP head.
func TestEmbedIsTheClassifierInput(t *testing.T) {
	mlp, err := NewMobileNetV2(MobileNetV2Config{Hidden: []int{16}}, Options{NumClasses: 3})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New("resnet18", Options{NumClasses: 5, Dropout: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	both, err := New("resnet18", Options{NumClasses: 4, Pool: "concat", Features: "last2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		m    Model
		dim  int
	}{{"resnet18", plain, 512}, {"resnet18 concat last2", both, 1536}, {"mobilenet_v2 mlp", mlp, 16}} {
		e, ok := c.m.(Embedder)
		if !ok {
			t.Fatalf("%s is no Embedder", c.name)
		}
		if e.EmbedDim() != c.dim {
			t.Fatalf("%s: EmbedDim %d, want %d", c.name, e.EmbedDim(), c.dim)
		}
		c.m.Store().Train(false)
		var fc *torch.Tensor
		err := torch.Run(func() {
			torch.NoGrad(func() {
				x := torch.Rand(torch.Float32, torch.CPU, 2, 3, 64, 64)
				logits := c.m.Forward(x).Float32s()
				h := e.Embed(x)
				if s := h.Shape(); s[0] != 2 || s[1] != c.dim {
					t.Fatalf("%s: embedding shape %v", c.name, s)
				}
				switch m := c.m.(type) {
				case *classifier:
					fc = m.fc.Forward(h)
				case *mlpClassifier:
					fc = m.fc.Forward(h)
				}
				if got := fc.Float32s(); !slices.Equal(got, logits) {
					t.Fatalf("%s: last layer of the embedding %v, Forward %v", c.name, got, logits)
				}
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
