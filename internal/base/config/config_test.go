package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type stage struct {
	Name   string    `yaml:"name"`
	Epochs int       `yaml:"epochs"`
	LR     []float64 `yaml:"lr"`
}

type runConfig struct {
	Name   string  `yaml:"name"`
	Seed   int64   `yaml:"seed"`
	Stages []stage `yaml:"stages"`
}

func TestDecodeKeepsDefaults(t *testing.T) {
	c := runConfig{Name: "default", Seed: 42}
	if err := Decode("run.yaml", []byte("seed: 7\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "default" || c.Seed != 7 {
		t.Fatalf("got %+v", c)
	}
}

func TestDecodeErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, doc string
		line      int
		mention   string
	}{
		{"unknown top-level key", "name: a\nsed: 3\n", 2, "sed"},
		{"unknown nested key", "stages:\n  - name: s1\n    epoch: 3\n", 3, "epoch"},
		{"wrong type", "name: a\nseed: many\n", 2, "seed"},
		{"duplicate key", "name: a\nname: b\n", 2, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c runConfig
			err := Decode("run.yaml", []byte(tc.doc), &c)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *config.Error", err)
			}
			if ce.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", ce.Line, tc.line, err)
			}
			prefix := fmt.Sprintf("run.yaml:%d:", tc.line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(strings.ToLower(err.Error()), tc.mention) {
				t.Errorf("message %q should start with %q and mention %q", err, prefix, tc.mention)
			}
		})
	}
}

func TestEmptyDocumentLeavesDefaults(t *testing.T) {
	c := runConfig{Seed: 5}
	if err := Decode("e.yaml", []byte("  \n"), &c); err != nil || c.Seed != 5 {
		t.Fatalf("err %v, config %+v", err, c)
	}
}

func ExampleDecode() {
	type train struct {
		Epochs int     `yaml:"epochs"`
		LR     float64 `yaml:"lr"`
	}
	cfg := train{Epochs: 10, LR: 1e-3}
	err := Decode("run.yaml", []byte("epochs: 3\nlr_max: 0.1\n"), &cfg)
	fmt.Println(err)
	// Output: run.yaml:2: unknown field "lr_max" (misspelt, or not valid in this section)
}

func TestKeyLine(t *testing.T) {
	doc := []byte("name: a\nengine:\n  threads: 2\n  device: cuda\nstages:\n  - epochs: 1\n  - epochs: 2\n    lr: [1]\n")
	for key, want := range map[string]int{"name": 1, "engine.device": 4, "engine.threads": 3, "stages[1].lr": 8, "engine.bf16": 0, "nope.x": 0} {
		if got := KeyLine(doc, key); got != want {
			t.Errorf("KeyLine(%q) = %d, want %d", key, got, want)
		}
	}
}
