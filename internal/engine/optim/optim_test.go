package optim_test

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"imet/internal/engine/nn"
	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
)

// Golden test against torch.optim (testdata/gen_golden.py): the same
// problem, six steps, two parameter groups with their own lr and weight
// decay; halfway through the state is exported, reloaded into a fresh
// optimiser, and training continues from it.

type golden struct {
	Steps  int              `json:"steps"`
	Shapes map[string][]int `json:"shapes"`
	Groups []struct {
		Params      []string `json:"params"`
		LR          float64  `json:"lr"`
		WeightDecay float64  `json:"weight_decay"`
	} `json:"groups"`
	Cases []struct {
		Name      string    `json:"name"`
		Kind      string    `json:"kind"`
		Betas     []float64 `json:"betas"`
		Eps       float64   `json:"eps"`
		Momentum  float64   `json:"momentum"`
		Dampening float64   `json:"dampening"`
		Nesterov  bool      `json:"nesterov"`
	} `json:"cases"`
	Results map[string]map[string][]float64 `json:"results"`
}

func wave(seed float64, n int) []float32 {
	o := make([]float32, n)
	for i := range o {
		o[i] = float32(math.Sin(seed + 1.618034*float64(i)))
	}
	return o
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func TestMatchesTorchOptim(t *testing.T) {
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c"}
	for _, c := range g.Cases {
		c := c
		t.Run(c.Name, func(t *testing.T) {
			s := nn.NewStore()
			vars := map[string]*nn.Var{}
			for i, n := range names {
				sh := g.Shapes[n]
				vars[n] = s.Root().Param(n, torch.FromFloat32(wave(0.1*float64(i+1), prod(sh)), sh...))
			}
			var groups []*optim.Group
			for _, gr := range g.Groups {
				og := &optim.Group{LR: gr.LR, WeightDecay: gr.WeightDecay}
				for _, n := range gr.Params {
					og.Params = append(og.Params, vars[n])
				}
				groups = append(groups, og)
			}
			mk := func() optim.Optimizer {
				if c.Kind == "adamw" {
					o := optim.AdamWOptions{Eps: c.Eps}
					if len(c.Betas) == 2 {
						o.Beta1, o.Beta2 = c.Betas[0], c.Betas[1]
					}
					return optim.NewAdamW(groups, o)
				}
				return optim.NewSGD(groups, optim.SGDOptions{Momentum: c.Momentum, Dampening: c.Dampening, Nesterov: c.Nesterov})
			}
			opt := mk()
			for step := 0; step < g.Steps; step++ {
				if step == g.Steps/2 {
					st := opt.State()
					opt = mk()
					if err := opt.LoadState(st); err != nil {
						t.Fatal(err)
					}
				}
				err := torch.Run(func() {
					opt.ZeroGrad()
					var loss *torch.Tensor
					for k, n := range names {
						p := vars[n].T
						sh := p.Shape()
						cc := torch.FromFloat32(wave(0.3*float64(step)+float64(k), prod(sh)), sh...).MulScalar(0.5).AddScalar(1)
						dd := torch.FromFloat32(wave(1.7*float64(step)+2*float64(k)+0.5, prod(sh)), sh...).MulScalar(0.2)
						l := cc.MulScalar(0.5).Mul(p).Mul(p).Add(dd.Mul(p)).Sum()
						if loss == nil {
							loss = l
						} else {
							loss = loss.Add(l)
						}
					}
					loss.Backward()
					if err := opt.Step(); err != nil {
						t.Fatal(err)
					}
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range names {
				got := vars[n].T.Float32s()
				want := g.Results[c.Name][n]
				for i := range want {
					if math.Abs(float64(got[i])-want[i]) > 1e-6*math.Max(1, math.Abs(want[i])) {
						t.Fatalf("%s[%d] = %v, torch.optim %v", n, i, got[i], want[i])
					}
				}
			}
		})
	}
}

func TestByGroup(t *testing.T) {
	s := nn.NewStore()
	s.Root().InGroup("stem").Param("w", torch.Zeros(torch.Float32, torch.CPU, 2))
	s.Root().InGroup("head").Param("fc", torch.Zeros(torch.Float32, torch.CPU, 2))
	gs, err := optim.ByGroup(s, map[string]float64{"*": 1e-4, "head": 1e-3}, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || gs[0].LR != 1e-4 || gs[1].LR != 1e-3 || gs[1].Params[0].Name != "fc" {
		t.Fatalf("groups %+v %+v", gs[0], gs[1])
	}
	if err := s.Freeze("stem", true); err != nil {
		t.Fatal(err)
	}
	if gs, _ := optim.ByGroup(s, map[string]float64{"*": 1}, 0); len(gs) != 1 {
		t.Fatalf("frozen group kept: %d groups", len(gs))
	}
	if _, err := optim.ByGroup(s, map[string]float64{"stage9": 1, "*": 1}, 0); err == nil {
		t.Fatal("unknown group accepted")
	}
	if _, err := optim.ByGroup(s, map[string]float64{"stem": 1}, 0); err == nil {
		t.Fatal("missing learning rate accepted")
	}
}

// TestEveryOptimizerSteps builds each optimizer of the table from the
// default configuration and checks that one step moves a parameter against
// its gradient, so that no name can be listed without a working optimizer.
func TestEveryOptimizerSteps(t *testing.T) {
	if len(optim.Names()) == 0 {
		t.Fatal("no optimizers")
	}
	for _, name := range optim.Names() {
		t.Run(name, func(t *testing.T) {
			if optim.Doc(name) == "" {
				t.Error("no doc line")
			}
			err := torch.Run(func() {
				s := nn.NewStore()
				w := s.Root().InGroup("head").Param("w", torch.FromFloat32([]float32{1, -2, 3}, 3))
				gs, err := optim.ByGroup(s, map[string]float64{"*": 0.1}, 0)
				if err != nil {
					t.Fatal(err)
				}
				c := optim.DefaultConfig()
				c.Name = name
				o, err := optim.New(c, gs)
				if err != nil {
					t.Fatal(err)
				}
				before := w.T.Float32s()
				// loss = sum(w²): the gradient 2w points away from zero.
				w.T.Mul(w.T).Sum().Backward()
				if err := o.Step(); err != nil {
					t.Fatal(err)
				}
				for i, v := range w.T.Float32s() {
					if math.IsNaN(float64(v)) || math.Abs(float64(v)) >= math.Abs(float64(before[i])) {
						t.Errorf("w[%d]: %v -> %v, want a step toward 0", i, before[i], v)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := optim.New(optim.Config{Name: "lamb"}, nil); err == nil || !strings.Contains(err.Error(), `unknown optimizer "lamb" (known: `+strings.Join(optim.Names(), ", ")+")") {
		t.Fatalf("unknown optimizer: %v", err)
	}
}
