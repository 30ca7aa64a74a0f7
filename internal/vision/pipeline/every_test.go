package pipeline

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"imet/internal/vision/augment"
	"imet/internal/vision/imageio"
)

// TestEveryBuiltin runs each pipeline of Builtin(), found through the table
// itself, on a wide and a tall image: every chain (train, eval, each TTA
// view) yields the size FixedSize promises, the same draws for the same
// seed, and TTA views on streams of their own.
func TestEveryBuiltin(t *testing.T) {
	var names []string
	for n := range Builtin() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p, err := Get(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			streams := map[uint64]bool{}
			for _, v := range p.TTA {
				if streams[v.Stream] {
					t.Fatalf("TTA view %s shares stream %d", v.Name, v.Stream)
				}
				streams[v.Stream] = true
			}
			for _, size := range [][2]int{{300, 180}, {90, 400}} {
				src := imageio.New(size[0], size[1])
				for i := range src.Pix {
					src.Pix[i] = uint8(i*31 + i/7)
				}
				chains := map[string]*augment.Chain{"train": p.Train, "eval": p.Eval}
				for _, v := range p.TTA {
					chains["tta "+v.Name] = v.Chain
				}
				for what, c := range chains {
					w, h, ok := c.FixedSize()
					a, aw, ah, err := c.Apply(src, rand.New(rand.NewPCG(3, 4)), nil)
					if err != nil {
						t.Fatalf("%s on %dx%d: %v", what, size[0], size[1], err)
					}
					if ok && (aw != w || ah != h) {
						t.Fatalf("%s: %dx%d out, FixedSize says %dx%d", what, aw, ah, w, h)
					}
					if len(a) != 3*aw*ah {
						t.Fatalf("%s: %d values for %dx%d", what, len(a), aw, ah)
					}
					b, _, _, _ := c.Apply(src, rand.New(rand.NewPCG(3, 4)), nil)
					if !slices.Equal(a, b) {
						t.Fatalf("%s: same seed, different output", what)
					}
				}
			}
		})
	}
}
