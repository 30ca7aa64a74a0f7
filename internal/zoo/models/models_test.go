package models_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"imet/internal/engine/torch"
	"imet/internal/zoo/models"
)

func TestHeadOptionsShapeTheOutput(t *testing.T) {
	cases := []struct {
		arch string
		o    models.Options
		fcIn int
	}{
		{"resnet18", models.Options{NumClasses: 7}, 512},
		{"resnet18", models.Options{NumClasses: 7, Pool: "concat"}, 1024},
		{"resnet18", models.Options{NumClasses: 7, Features: "last2"}, 768},
		{"resnet18", models.Options{NumClasses: 3, Pool: "max", Features: "last2", Dropout: 0.5}, 768},
		{"se_resnext50_32x4d", models.Options{NumClasses: 5, Pool: "concat", Features: "last2"}, 6144},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%+v", c.arch, c.o), func(t *testing.T) {
			m, err := models.New(c.arch, c.o)
			if err != nil {
				t.Fatal(err)
			}
			head := "fc.weight"
			if strings.HasPrefix(c.arch, "se_") {
				head = "last_linear.weight"
			}
			if got := m.Store().Var(head).T.Shape(); got[1] != c.fcIn || got[0] != c.o.NumClasses {
				t.Fatalf("%s shape %v, want [%d %d]", head, got, c.o.NumClasses, c.fcIn)
			}
			if err := torch.Run(func() {
				y := m.Forward(torch.Randn(torch.Float32, torch.CPU, 2, 3, 64, 64))
				if s := y.Shape(); s[0] != 2 || s[1] != c.o.NumClasses {
					t.Errorf("logits shape %v", s)
				}
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGroupsAndFreeze(t *testing.T) {
	m, err := models.New("resnet18", models.Options{NumClasses: 4})
	if err != nil {
		t.Fatal(err)
	}
	s := m.Store()
	if got := fmt.Sprint(s.Groups()); got != "[stem stage1 stage2 stage3 stage4 head]" {
		t.Fatalf("groups %s", got)
	}
	if err := s.Freeze("stem", true); err != nil {
		t.Fatal(err)
	}
	if s.Var("conv1.weight").T.RequiresGrad() || !s.Var("fc.weight").T.RequiresGrad() {
		t.Fatal("freeze did not switch requires_grad")
	}
	rm := s.Var("bn1.running_mean").T.Float32s()
	nb := s.Var("layer1.0.bn1.num_batches_tracked").T.Item()
	if err := torch.Run(func() { m.Forward(torch.Randn(torch.Float32, torch.CPU, 2, 3, 32, 32)) }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rm) != fmt.Sprint(s.Var("bn1.running_mean").T.Float32s()) {
		t.Fatal("frozen BatchNorm updated its running mean")
	}
	if s.Var("bn1.num_batches_tracked").T.Item() != 0 {
		t.Fatal("frozen BatchNorm counted a batch")
	}
	if got := s.Var("layer1.0.bn1.num_batches_tracked").T.Item(); got != nb+1 {
		t.Fatalf("trainable BatchNorm counted %v batches, want %v", got, nb+1)
	}
	if err := s.Freeze("nope", true); err == nil {
		t.Fatal("freezing an unknown group succeeded")
	}
}

func TestUnknownNamesAndOptions(t *testing.T) {
	for _, c := range []struct {
		arch string
		o    models.Options
	}{
		{"resnet9000", models.Options{}},
		{"resnet18", models.Options{Pool: "median"}},
		{"resnet18", models.Options{Features: "all"}},
		{"resnet18", models.Options{Dropout: 1}},
	} {
		if _, err := models.New(c.arch, c.o); err == nil {
			t.Errorf("%s %+v: no error", c.arch, c.o)
		}
	}
}

func TestTimmKeyMap(t *testing.T) {
	spec, _ := models.Lookup("se_resnext50_32x4d")
	f := spec.KeyMaps["timm"]
	for in, want := range map[string]string{
		"conv1.weight":                 "layer0.conv1.weight",
		"bn1.running_var":              "layer0.bn1.running_var",
		"layer1.0.se.fc1.weight":       "layer1.0.se_module.fc1.weight",
		"layer3.5.se.fc2.bias":         "layer3.5.se_module.fc2.bias",
		"layer2.0.downsample.1.weight": "layer2.0.downsample.1.weight",
		"fc.bias":                      "last_linear.bias",
	} {
		if got, ok := f(in); !ok || got != want {
			t.Errorf("%s -> %q %v, want %q", in, got, ok, want)
		}
	}
	if _, ok := f("head.something"); ok {
		t.Error("unknown key mapped")
	}
}

// TestEveryArchitectureBuilds builds each registered architecture and runs
// one small image through it, so that no name can be listed (and accepted
// by a configuration check) without a model behind it.
func TestEveryArchitectureBuilds(t *testing.T) {
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			m, err := models.New(name, models.Options{NumClasses: 3})
			if err != nil {
				t.Fatal(err)
			}
			m.Store().Train(false)
			err = torch.Run(func() {
				torch.NoGrad(func() {
					// 75: the smallest side inception_v3 accepts.
					out := m.Forward(torch.Rand(torch.Float32, torch.CPU, 1, 3, 75, 75))
					if sh := out.Shape(); len(sh) != 2 || sh[0] != 1 || sh[1] != 3 {
						t.Fatalf("output shape %v", sh)
					}
					for _, v := range out.Float32s() {
						if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
							t.Fatalf("logit %v", v)
						}
					}
				})
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
