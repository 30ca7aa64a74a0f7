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
	got := Reference("run.yaml", run{Seed: 42, Budget: time.Hour, Optim: optim{Name: "adamw"}})
	for _, want := range []string{
		"### run.yaml",
		"| `seed` | integer | `42` | global seed |",
		"| `time_budget` | duration | `1h0m0s` | stop cleanly after this \\| long |",
		"| `optimizer` | section | | the optimizer |",
		"### `optimizer`",
		"| `optimizer.name` | string | `adamw` | adamw or sgd |",
		"| `optimizer.lr` | list of number |  | one rate per layer group |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reference lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Error("unexported field listed")
	}
}

func TestReferenceDocumentsListEntries(t *testing.T) {
	type stage struct {
		Epochs int `yaml:"epochs" doc:"length"`
	}
	type run struct {
		Stages []stage `yaml:"stages" doc:"in order"`
	}
	got := Reference("run.yaml", run{Stages: []stage{{Epochs: 3}}})
	for _, want := range []string{"| `stages` | list of sections |  | in order |", "### `stages[]`", "| `stages[].epochs` | integer | `3` | length |"} {
		if !strings.Contains(got, want) {
			t.Errorf("reference lacks %q:\n%s", want, got)
		}
	}
}
