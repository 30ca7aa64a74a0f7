package schedule

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"imet/internal/base/config"
)

type golden struct {
	Base  float64 `json:"base"`
	Cases []struct {
		Name    string          `json:"name"`
		Config  json.RawMessage `json:"config"`
		Total   int             `json:"total"`
		Metrics []float64       `json:"metrics"`
		LRs     []float64       `json:"lrs"`
	} `json:"cases"`
}

// TestMatchesPyTorch compares every kind of schedule with the rates
// torch.optim.lr_scheduler produced (testdata/gen_golden.py).
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
			cfg := Default()
			if err := config.Decode(c.Name, c.Config, &cfg); err != nil {
				t.Fatal(err)
			}
			s, err := New(cfg, c.Total, 10)
			if err != nil {
				t.Fatal(err)
			}
			var st State
			for i, want := range c.LRs {
				got := g.Base * s.Factor(i, &st)
				if math.Abs(got-want) > 1e-12+1e-9*math.Abs(want) {
					t.Fatalf("step %d: lr %.15g, PyTorch %.15g", i, got, want)
				}
				if c.Metrics != nil {
					s.Observe(&st, c.Metrics[i])
				}
			}
		})
	}
}

// TestResumeIsPure shows why resume is exact: a schedule rebuilt from the
// config, with the plateau state copied through JSON, continues identically.
func TestResumeIsPure(t *testing.T) {
	cfg := Default()
	cfg.Name, cfg.Patience, cfg.Factor, cfg.WarmupSteps = Plateau, 1, 0.5, 3
	metrics := []float64{0.1, 0.2, 0.2, 0.2, 0.2, 0.25, 0.25, 0.25, 0.25, 0.3}
	a, _ := New(cfg, 100, 10)
	var straight []float64
	var st State
	for i, m := range metrics {
		straight = append(straight, a.Factor(i, &st))
		a.Observe(&st, m)
	}
	var st2 State
	b, _ := New(cfg, 100, 10)
	for i := 0; i < 5; i++ {
		b.Observe(&st2, metrics[i])
	}
	saved, _ := json.Marshal(st2)
	var restored State
	json.Unmarshal(saved, &restored)
	c, _ := New(cfg, 100, 10)
	for i := 5; i < len(metrics); i++ {
		if got := c.Factor(i, &restored); got != straight[i] {
			t.Fatalf("step %d after resume: %g, straight run %g", i, got, straight[i])
		}
		c.Observe(&restored, metrics[i])
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
	}{
		{"unknown", func(c *Config) { c.Name = "cosnie" }},
		{"step without size", func(c *Config) { c.Name = Step }},
		{"pct_start", func(c *Config) { c.Name, c.PctStart = OneCycle, 1.5 }},
		{"plateau factor", func(c *Config) { c.Name, c.Factor = Plateau, 1 }},
		{"negative warm-up", func(c *Config) { c.WarmupSteps = -1 }},
	}
	for _, tc := range cases {
		c := Default()
		tc.mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted %+v", tc.name, c)
		}
	}
	c := Default()
	c.Name, c.WarmupSteps = Cosine, 10
	if _, err := New(c, 10, 5); err == nil {
		t.Error("a warm-up as long as the stage was accepted")
	}
}

func TestWarmupEpochsAndStepEpochs(t *testing.T) {
	c := Default()
	c.Name, c.WarmupEpochs, c.StepEpochs, c.Gamma = Step, 0.5, 2, 0.5
	s, err := New(c, 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Factor(5, nil); f != 1 {
		t.Fatalf("first step after a 5-step warm-up: %g", f)
	}
	if f := s.Factor(5+20, nil); f != 0.5 {
		t.Fatalf("two epochs after warm-up: %g, want 0.5", f)
	}
}

func ExampleSchedule_Factor() {
	cfg := Default()
	cfg.Name, cfg.WarmupSteps, cfg.WarmupStartFactor = Cosine, 2, 0.5
	s, _ := New(cfg, 6, 3)
	head := 5e-4 // the head's rate; other groups scale by the same factor
	for step := 0; step < 6; step++ {
		fmt.Printf("%d %.6f\n", step, head*s.Factor(step, nil))
	}
	// Output:
	// 0 0.000250
	// 1 0.000375
	// 2 0.000500
	// 3 0.000427
	// 4 0.000250
	// 5 0.000073
}

// TestEverySchedule resolves each schedule of the table over a short stage
// (with a warm-up) and checks every step's factor is a finite positive
// rate, so that no name can be listed without a working schedule.
func TestEverySchedule(t *testing.T) {
	if len(Names()) == 0 {
		t.Fatal("no schedules")
	}
	for _, name := range Names() {
		if Doc(name) == "" {
			t.Errorf("%s: no doc line", name)
		}
		c := Default()
		c.Name, c.WarmupSteps, c.StepSize = name, 2, 3 // step_size: what step needs
		s, err := New(c, 20, 5)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var st State
		for step := range 20 {
			f := s.Factor(step, &st)
			if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 1 {
				t.Errorf("%s: factor %v at step %d", name, f, step)
			}
			s.Observe(&st, 0.5) // a stalled metric: plateau reduces
		}
	}
	c := Default()
	c.Name = "poly"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `unknown schedule "poly" (known: `+strings.Join(Names(), ", ")+")") {
		t.Fatalf("unknown schedule: %v", err)
	}
}
