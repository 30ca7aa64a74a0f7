package models_test

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
	"imet/internal/zoo/models"
)

// Parity with PyTorch: identical weights in the Go model and in the
// reference give the same logits, loss and gradients. The reference numbers
// come from testdata/gen_parity.py (torchvision 0.14 for ResNets, a PyTorch
// SENet with Cadene's module names for SE-ResNeXt). Neither side stores
// weights: both fill every tensor from detValues, a formula of its name.

type parityCase struct {
	Name     string `json:"name"`
	Arch     string `json:"arch"`
	Pool     string `json:"pool"`
	Features string `json:"features"`
	SENet    *struct {
		Blocks    [4]int `json:"blocks"`
		Groups    int    `json:"groups"`
		Reduction int    `json:"reduction"`
		Width     int    `json:"width"`
		BaseWidth int    `json:"base_width"`
	} `json:"senet"`
}

type parityResult struct {
	Case        parityCase           `json:"case"`
	EvalLogits  []float64            `json:"eval_logits"`
	TrainLogits []float64            `json:"train_logits"`
	Loss        float64              `json:"loss"`
	GradL1      map[string]float64   `json:"grad_l1"`
	GradFirst   map[string][]float64 `json:"grad_first"`
	BN1Sum      float64              `json:"bn1_running_mean_sum"`
	NumState    int                  `json:"num_state"`
}

func fnv1a(s string) uint32 {
	h := uint32(0x811C9DC5)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 0x01000193
	}
	return h
}

// detValues mirrors detvalues in gen_parity.py.
func detValues(name string, shape []int) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	phase := float64(fnv1a(name)) / (1 << 32) * 2 * math.Pi
	o := make([]float32, n)
	for i := range o {
		s := math.Sin(phase + 1.618034*float64(i))
		var v float64
		switch {
		case strings.HasSuffix(name, "running_var"):
			v = 1 + 0.25*(1+s)
		case strings.HasSuffix(name, "running_mean"):
			v = 0.1 * s
		case len(shape) > 1:
			v = s * 2 / math.Sqrt(float64(n/shape[0]))
		case strings.HasSuffix(name, "weight"):
			v = 1 + 0.1*s
		default:
			v = 0.1 * s
		}
		o[i] = float32(v)
	}
	return o
}

func detInit(t *testing.T, s *nn.Store) {
	err := torch.Run(func() {
		torch.NoGrad(func() {
			for _, v := range s.Vars() {
				if strings.HasSuffix(v.Name, "num_batches_tracked") {
					v.T.Fill_(0)
					continue
				}
				sh := v.T.Shape()
				v.T.CopyFrom(torch.FromFloat32(detValues(v.Name, sh), sh...))
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func detInput(shape ...int) *torch.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	o := make([]float32, n)
	for i := range o {
		o[i] = float32(math.Sin(0.1+0.31*float64(i)) * math.Cos(0.0007*float64(i)))
	}
	return torch.FromFloat32(o, shape...)
}

func detTarget(shape ...int) *torch.Tensor {
	n := shape[0] * shape[1]
	o := make([]float32, n)
	for i := range o {
		if (i*7)%3 == 0 {
			o[i] = 1
		}
	}
	return torch.FromFloat32(o, shape...)
}

// relErr is max|a-b| / max|b|: relative to the vector's scale, so a logit
// that happens to be near zero does not turn rounding into failure.
func relErr(a []float32, b []float64) float64 {
	var d, m float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i])-b[i]))
		m = math.Max(m, math.Abs(b[i]))
	}
	return d / m
}

func buildCase(c parityCase, classes int) (models.Model, error) {
	o := models.Options{NumClasses: classes, Pool: c.Pool, Features: c.Features}
	if c.SENet != nil && c.Arch == "se_resnext_small" {
		s := c.SENet
		return models.NewSEResNeXt(models.SEResNeXtConfig{Blocks: s.Blocks, Groups: s.Groups, BaseWidth: s.BaseWidth,
			Width: s.Width, Reduction: s.Reduction}, o)
	}
	return models.New(c.Arch, o)
}

func TestParityWithPyTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/parity.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		NumClasses int            `json:"num_classes"`
		Results    []parityResult `json:"results"`
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	unlock := torch.LockThread(1) // the generator used one thread too
	defer unlock()
	const tol = 1e-4
	for _, r := range fx.Results {
		r := r
		t.Run(r.Case.Name, func(t *testing.T) {
			if testing.Short() && strings.Contains(r.Case.Name, "101") {
				t.Skip("full-size 101-layer variants skipped in -short")
			}
			m, err := buildCase(r.Case, fx.NumClasses)
			if err != nil {
				t.Fatal(err)
			}
			s := m.Store()
			if got := len(s.Vars()); got != r.NumState {
				t.Fatalf("%d state_dict entries, PyTorch has %d", got, r.NumState)
			}
			for name := range r.GradL1 {
				if s.Var(name) == nil {
					t.Fatalf("PyTorch parameter %q missing", name)
				}
			}
			detInit(t, s)
			err = torch.Run(func() {
				x := detInput(2, 3, 64, 64)
				y := detTarget(2, fx.NumClasses)
				s.Train(false)
				torch.NoGrad(func() {
					if e := relErr(m.Forward(x).Float32s(), r.EvalLogits); e > tol {
						t.Errorf("eval logits: relative error %.2g", e)
					}
				})
				s.Train(true)
				logits := m.Forward(x)
				if e := relErr(logits.Float32s(), r.TrainLogits); e > tol {
					t.Errorf("train logits: relative error %.2g", e)
				}
				loss := torch.BCEWithLogits(logits, y, nil, nil, torch.ReduceMean)
				if l := loss.Item(); math.Abs(l-r.Loss) > tol*math.Abs(r.Loss) {
					t.Errorf("loss %v, PyTorch %v", l, r.Loss)
				}
				loss.Backward()
				worst, worstName := 0.0, ""
				for name, want := range r.GradL1 {
					g := s.Var(name).T.Grad()
					if g == nil {
						t.Errorf("%s: no gradient", name)
						continue
					}
					got := g.Abs().Sum().Item()
					if e := math.Abs(got-want) / math.Max(math.Abs(want), 1e-12); e > worst {
						worst, worstName = e, name
					}
					if first, ok := r.GradFirst[name]; ok {
						if e := relErr(g.Flatten(0, -1).Narrow(0, 0, len(first)).Float32s(), first); e > 1e-3 {
							t.Errorf("%s: first gradient elements off by %.2g relative", name, e)
						}
					}
				}
				if worst > 1e-3 {
					t.Errorf("gradient L1 norms: worst relative error %.2g at %s", worst, worstName)
				}
				bn := "bn1.running_mean"
				if s.Var(bn) == nil {
					bn = "layer0.bn1.running_mean"
				}
				if got := s.Var(bn).T.Sum().Item(); math.Abs(got-r.BN1Sum) > 1e-4*math.Max(1, math.Abs(r.BN1Sum)) {
					t.Errorf("%s sum after one training forward %v, PyTorch %v", bn, got, r.BN1Sum)
				}
				t.Logf("loss %.6f, worst gradient-norm error %.2g (%s)", loss.Item(), worst, worstName)
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
