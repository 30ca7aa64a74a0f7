package models_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/engine/torch"
	"imet/internal/zoo/models"
)

// TestEveryArchitecture runs each registered architecture, found through
// models.Names() so that registering one is enough to test it, through what
// training needs: build, the shared layer groups, the head's shape,
// forward, backward to every trainable tensor, freezing all but the head,
// and a save/load of its named tensors into a fresh model that reproduces
// the same logits.
func TestEveryArchitecture(t *testing.T) {
	unlock := torch.LockThread(0)
	defer unlock()
	const classes = 3
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && (strings.Contains(name, "101") || strings.Contains(name, "161")) {
				t.Skip("-short: the largest variants")
			}
			torch.ManualSeed(1)
			m, err := models.New(name, models.Options{NumClasses: classes})
			if err != nil {
				t.Fatal(err)
			}
			s := m.Store()
			if got, want := strings.Join(s.Groups(), " "), strings.Join(models.Groups(), " "); got != want {
				t.Fatalf("groups %s, want models.Groups() %s", got, want)
			}
			for _, g := range s.Groups() {
				if len(s.Group(g)) == 0 {
					t.Fatalf("group %s holds no tensor", g)
				}
			}
			size := 64
			if spec, _ := models.Lookup(name); spec.InputSize > 224 {
				size = 80 // inception_v3 needs at least 75
			}
			x := torch.Keep(torch.Randn(torch.Float32, torch.CPU, 2, 3, size, size))
			defer x.Free()
			var want []float32
			err = torch.Run(func() {
				s.Train(true)
				y := m.Forward(x)
				if sh := y.Shape(); len(sh) != 2 || sh[0] != 2 || sh[1] != classes {
					t.Fatalf("logits %v, want [2 %d]", sh, classes)
				}
				y.Sum().Backward()
				for _, v := range s.Trainable() {
					if g := v.T.Grad(); g == nil {
						t.Fatalf("%s: no gradient", v.Name)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range s.Params() {
				v.T.ZeroGrad()
			}
			for _, g := range s.Groups() {
				if err := s.Freeze(g, g != "head"); err != nil {
					t.Fatal(err)
				}
			}
			for _, v := range s.Params() {
				if v.T.RequiresGrad() != (v.Group == "head") {
					t.Fatalf("%s: requires_grad %v with only the head trainable", v.Name, v.T.RequiresGrad())
				}
			}
			s.Train(false)
			path := filepath.Join(t.TempDir(), "w.tensors")
			err = torch.Run(func() {
				torch.NoGrad(func() { want = m.Forward(x).Float32s() })
				if err := torch.Save(path, s.StateDict()); err != nil {
					t.Fatal(err)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			torch.ManualSeed(2)
			fresh, err := models.New(name, models.Options{NumClasses: classes})
			if err != nil {
				t.Fatal(err)
			}
			fs := fresh.Store()
			fs.Train(false)
			err = torch.Run(func() {
				saved, err := torch.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				if len(saved) != len(fs.Vars()) {
					t.Fatalf("%d tensors saved, a fresh model has %d", len(saved), len(fs.Vars()))
				}
				torch.NoGrad(func() {
					for _, v := range fs.Vars() {
						src, ok := saved[v.Name]
						if !ok {
							t.Fatalf("%s: not in the saved state", v.Name)
						}
						v.T.CopyFrom(src)
					}
					got := fresh.Forward(x).Float32s()
					for i := range want {
						// Same weights, same inputs: only the kernels' summation
						// order may differ between the two models (inception_v3's
						// logits of ~1e4 moved by 4e-5 relative once).
						if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Max(1, math.Abs(float64(want[i]))) {
							t.Fatalf("logit %d: %v after reload, %v before", i, got[i], want[i])
						}
					}
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range []*models.Model{&m, &fresh} {
				for _, v := range (*st).Store().Vars() {
					v.T.Free()
				}
			}
		})
	}
}
