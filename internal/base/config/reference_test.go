package config

import (
	"strings"
	"testing"
	"time"
)

func TestReferenceListsKeysDefaultsAndSections(t *testing.T) {
	type optim struct {
		Name string    `yaml:"name" doc:"adamw or sgd"`
		LR   []float64 `yaml:"lr" doc:"one rate per layer group"`
	}
	type run struct {
		Seed   int64         `yaml:"seed" doc:"global seed"`
		Budget time.Duration `yaml:"time_budget" doc:"stop cleanly after this | long"`
		Optim  optim         `yaml:"optimizer" doc:"the optimizer"`
		hidden int
	}
	got := Reference("run.yaml", run{Seed: 42, Budget: time.Hour, Optim: optim{Name: "adamw", LR: []float64{1e-3, 1e-8}}}, nil)
	for _, want := range []string{
		"### run.yaml",
		"| `seed` | integer | `42` | global seed |",
		"| `time_budget` | duration | `1h0m0s` | stop cleanly after this \\| long |",
		"| `optimizer` | section | | the optimizer |",
		"### `optimizer`",
		"| `optimizer.name` | string | `adamw` | adamw or sgd |",
		"| `optimizer.lr` | list of number | `[0.001, 1e-08]` | one rate per layer group |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reference lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Error("unexported field listed")
	}
}

// entry starts from Weight 1 when a file writes it, as a loss term does.
type entry struct {
	Name   string  `yaml:"name" doc:"one of ${kinds}"`
	Weight float64 `yaml:"weight" doc:"weight"`
	Epochs int     `yaml:"epochs" doc:"length"`
}

func (e *entry) UnmarshalYAML(unmarshal func(any) error) error {
	type plain entry
	d := plain{Weight: 1}
	if err := unmarshal(&d); err != nil {
		return err
	}
	*e = entry(d)
	return nil
}

// A list's entries are documented with what an entry in a file starts
// from, not with the values of the first default entry.
func TestReferenceDocumentsListEntries(t *testing.T) {
	type run struct {
		Stages []entry `yaml:"stages" doc:"in order"`
	}
	got := Reference("run.yaml", run{Stages: []entry{{Name: "head", Weight: 3, Epochs: 3}, {Name: "all"}}}, map[string]string{"kinds": "a, b"})
	for _, want := range []string{
		"| `stages` | list of sections | `[head, all]` | in order |",
		"### `stages[]`",
		"| `stages[].name` | string |  | one of a, b |",
		"| `stages[].weight` | number | `1` | weight |",
		"| `stages[].epochs` | integer |  | length |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reference lacks %q:\n%s", want, got)
		}
	}
}

func TestReferenceRefusesUnknownVar(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "${kinds}") {
			t.Fatalf("recovered %v", r)
		}
	}()
	Reference("run.yaml", entry{}, nil)
}

func TestChanges(t *testing.T) {
	type sched struct {
		Name   string  `yaml:"name"`
		Warmup float64 `yaml:"warmup"`
		Gamma  float64 `yaml:"gamma"`
	}
	type stage struct {
		Name     string    `yaml:"name"`
		LR       []float64 `yaml:"lr"`
		Schedule sched     `yaml:"schedule"`
		Batch    int       `yaml:"batch"`
	}
	base := stage{LR: []float64{1e-4}, Schedule: sched{Name: "constant", Gamma: 0.1}, Batch: 32}
	v := base
	v.Name, v.LR, v.Schedule.Name, v.Schedule.Warmup = "all", []float64{1e-5, 5e-4}, "cosine", 0.5
	want := "{name: all, lr: [1e-05, 0.0005], schedule: {name: cosine, warmup: 0.5}}"
	if got := Changes(v, base); got != want {
		t.Fatalf("Changes = %s, want %s", got, want)
	}
}
