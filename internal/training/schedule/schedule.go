// Package schedule computes learning rates as a pure function of the
// optimizer step, so that a run cut anywhere resumes on exactly the rate it
// would have used: nothing but the step number (and, for reduce-on-plateau,
// a small serialisable State) is needed to recover the schedule's position.
//
// A schedule yields a factor that multiplies each parameter group's base
// learning rate, so discriminative rates (e.g. [1e-5, 8e-5, 5e-4]) keep
// their ratios throughout. The formulas are PyTorch's (LinearLR,
// CosineAnnealingLR, OneCycleLR, StepLR, ReduceLROnPlateau) and are checked
// against it by a golden test, so recipes ported from PyTorch behave the same.
package schedule

import (
	"fmt"
	"math"
	"strings"
)

// Kinds of schedule accepted in Config.Name; kinds describes each.
const (
	Constant = "constant"
	Cosine   = "cosine"
	OneCycle = "onecycle"
	Step     = "step"
	Plateau  = "plateau"
)

// kind is one entry of the table of schedules. curve is the factor at
// step t of the n steps after the warm-up (step counts from the start of
// the stage, for curves with their own warm-up).
type kind struct {
	name, doc string
	curve     func(s *Schedule, t, n, step int, state *State) float64
}

// kinds is the one table of schedules: configuration checks, error
// messages and the generated reference all read their names from it.
var kinds = []kind{
	{Constant, "the base rate throughout", func(*Schedule, int, int, int, *State) float64 { return 1 }},
	{Cosine, "cosine annealing to min_factor", func(s *Schedule, t, n, _ int, _ *State) float64 {
		t = min(t, n)
		return s.cfg.MinFactor + (1-s.cfg.MinFactor)*(1+math.Cos(math.Pi*float64(t)/float64(n)))/2
	}},
	{OneCycle, "PyTorch OneCycleLR", func(s *Schedule, _, _, step int, _ *State) float64 { return s.oneCycle(step) }},
	{Step, "multiply by gamma every step_size steps", func(s *Schedule, t, _, _ int, _ *State) float64 {
		return math.Pow(s.cfg.Gamma, float64(t/s.stepSize))
	}},
	{Plateau, "multiply by factor when validation F2 stalls", func(_ *Schedule, _, _, _ int, state *State) float64 {
		if state != nil {
			return state.scale()
		}
		return 1
	}},
}

// Names lists every schedule a Config may name, in table order.
func Names() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.name
	}
	return out
}

// Doc is a one-line description of the named schedule ("" if unknown),
// for generated documentation.
func Doc(name string) string {
	k, _ := lookup(name)
	return k.doc
}

func lookup(name string) (kind, error) {
	for _, k := range kinds {
		if k.name == name {
			return k, nil
		}
	}
	return kind{}, fmt.Errorf("unknown schedule %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Config describes one stage's schedule. Step counts are optimizer steps
// (after gradient accumulation), counted from the start of the stage.
type Config struct {
	Name              string  `yaml:"name" doc:"Schedule: ${schedules}."`
	WarmupSteps       int     `yaml:"warmup_steps" doc:"Linear warm-up length in optimizer steps (0: none); not used by onecycle, which has its own."`
	WarmupEpochs      float64 `yaml:"warmup_epochs" doc:"Warm-up length in epochs; converted to steps, added to warmup_steps."`
	WarmupStartFactor float64 `yaml:"warmup_start_factor" doc:"Fraction of the base rate the warm-up starts from (PyTorch LinearLR start_factor)."`
	MinFactor         float64 `yaml:"min_factor" doc:"cosine: final rate as a fraction of the base rate (eta_min / base)."`
	StepSize          int     `yaml:"step_size" doc:"step: optimizer steps between decays."`
	StepEpochs        float64 `yaml:"step_epochs" doc:"step: epochs between decays; overrides step_size when set."`
	Gamma             float64 `yaml:"gamma" doc:"step: multiplier applied at each decay."`
	PctStart          float64 `yaml:"pct_start" doc:"onecycle: fraction of the stage spent increasing the rate."`
	DivFactor         float64 `yaml:"div_factor" doc:"onecycle: the rate starts at base / div_factor."`
	FinalDivFactor    float64 `yaml:"final_div_factor" doc:"onecycle: the rate ends at base / (div_factor * final_div_factor)."`
	Factor            float64 `yaml:"factor" doc:"plateau: multiplier applied when the metric stalls."`
	Patience          int     `yaml:"patience" doc:"plateau: validations without improvement tolerated before reducing."`
	Threshold         float64 `yaml:"threshold" doc:"plateau: relative improvement that counts as progress."`
	Cooldown          int     `yaml:"cooldown" doc:"plateau: validations to wait after a reduction before counting again."`
	MinScale          float64 `yaml:"min_scale" doc:"plateau: the reduction never takes the rate below base * min_scale."`
}

// Default returns a constant schedule with PyTorch's defaults for every
// other kind's parameters, so a config only names what it changes.
func Default() Config {
	return Config{
		Name: Constant, WarmupStartFactor: 0.1, Gamma: 0.1,
		PctStart: 0.3, DivFactor: 25, FinalDivFactor: 1e4,
		Factor: 0.1, Patience: 10, Threshold: 1e-4,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if _, err := lookup(c.Name); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	switch {
	case c.WarmupSteps < 0 || c.WarmupEpochs < 0:
		return fmt.Errorf("schedule: warm-up must not be negative")
	case c.WarmupStartFactor < 0 || c.WarmupStartFactor > 1:
		return fmt.Errorf("schedule: warmup_start_factor %g outside [0, 1]", c.WarmupStartFactor)
	case c.Name == Step && c.StepSize <= 0 && c.StepEpochs <= 0:
		return fmt.Errorf("schedule: step needs step_size or step_epochs > 0")
	case c.Name == OneCycle && (c.PctStart <= 0 || c.PctStart >= 1):
		return fmt.Errorf("schedule: pct_start %g outside (0, 1)", c.PctStart)
	case c.Name == OneCycle && (c.DivFactor <= 0 || c.FinalDivFactor <= 0):
		return fmt.Errorf("schedule: div_factor and final_div_factor must be positive")
	case c.Name == Plateau && (c.Factor <= 0 || c.Factor >= 1):
		return fmt.Errorf("schedule: plateau factor %g outside (0, 1)", c.Factor)
	}
	return nil
}

// Schedule is a Config resolved against a stage's length.
type Schedule struct {
	cfg      Config
	kind     kind
	total    int // optimizer steps in the stage
	warmup   int
	stepSize int
}

// New resolves cfg for a stage of totalSteps optimizer steps with
// stepsPerEpoch steps per epoch (used to convert *_epochs fields).
func New(cfg Config, totalSteps, stepsPerEpoch int) (*Schedule, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if totalSteps <= 0 {
		return nil, fmt.Errorf("schedule: stage has %d steps", totalSteps)
	}
	k, _ := lookup(cfg.Name) // Validate found it
	s := &Schedule{cfg: cfg, kind: k, total: totalSteps}
	s.warmup = cfg.WarmupSteps + int(math.Round(cfg.WarmupEpochs*float64(stepsPerEpoch)))
	if cfg.Name == OneCycle {
		s.warmup = 0
	}
	if s.warmup >= totalSteps && cfg.Name != Constant && cfg.Name != Plateau {
		return nil, fmt.Errorf("schedule: warm-up of %d steps leaves nothing of a %d-step stage", s.warmup, totalSteps)
	}
	s.stepSize = cfg.StepSize
	if cfg.StepEpochs > 0 {
		s.stepSize = int(math.Round(cfg.StepEpochs * float64(stepsPerEpoch)))
		if s.stepSize < 1 {
			s.stepSize = 1
		}
	}
	return s, nil
}

// Total is the number of optimizer steps the schedule was resolved for.
func (s *Schedule) Total() int { return s.total }

// Factor is the multiplier on the base learning rates at optimizer step
// (0-based, within the stage). state is the plateau state (nil for other
// kinds, or before any validation).
func (s *Schedule) Factor(step int, state *State) float64 {
	c := s.cfg
	if step < s.warmup {
		// PyTorch LinearLR: start + (1-start) * step / total_iters.
		w := c.WarmupStartFactor + (1-c.WarmupStartFactor)*float64(step)/float64(s.warmup)
		if c.Name == Plateau && state != nil {
			w *= state.scale()
		}
		return w
	}
	return s.kind.curve(s, step-s.warmup, s.total-s.warmup, step, state)
}

// oneCycle follows torch.optim.lr_scheduler.OneCycleLR (three_phase=False,
// anneal_strategy="cos"), returning the rate relative to max_lr.
func (s *Schedule) oneCycle(step int) float64 {
	c := s.cfg
	initial := 1 / c.DivFactor
	final := initial / c.FinalDivFactor
	end1 := c.PctStart*float64(s.total) - 1
	end2 := float64(s.total - 1)
	x := float64(step)
	anneal := func(start, end, pct float64) float64 {
		return end + (start-end)/2*(math.Cos(math.Pi*pct)+1)
	}
	if x <= end1 {
		return anneal(initial, 1, x/end1)
	}
	return anneal(1, final, (x-end1)/(end2-end1))
}

// State is reduce-on-plateau's memory. It is part of every checkpoint; the
// zero value means "no validation seen yet".
type State struct {
	Best       float64 `json:"best"`
	Seen       bool    `json:"seen"`
	BadEvals   int     `json:"bad_evals"`
	Cooldown   int     `json:"cooldown"`
	Reductions int     `json:"reductions"`
	Scale      float64 `json:"scale"` // current multiplier; 0 means 1
}

func (st *State) scale() float64 {
	if st.Scale == 0 {
		return 1
	}
	return st.Scale
}

// Observe feeds one validation metric (higher is better, e.g. F2) to the
// plateau state, following ReduceLROnPlateau(mode="max",
// threshold_mode="rel"). It reports whether the rate was reduced. For other
// schedule kinds it records the best value and never reduces.
func (s *Schedule) Observe(st *State, metric float64) bool {
	c := s.cfg
	if !st.Seen || metric > st.Best*(1+c.Threshold) {
		st.Best, st.Seen, st.BadEvals = metric, true, 0
	} else {
		st.BadEvals++
	}
	if c.Name != Plateau {
		return false
	}
	if st.Cooldown > 0 {
		st.Cooldown--
		st.BadEvals = 0
	}
	if st.BadEvals > c.Patience {
		next := st.scale() * c.Factor
		if next < c.MinScale {
			next = c.MinScale
		}
		reduced := st.scale()-next > 1e-8*st.scale()
		st.Scale = next
		st.Cooldown = c.Cooldown
		st.BadEvals = 0
		if reduced {
			st.Reductions++
		}
		return reduced
	}
	return false
}
