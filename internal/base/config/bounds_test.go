package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type boundsStage struct {
	Name      string    `yaml:"name"`
	Epochs    int       `yaml:"epochs"`
	BatchSize int       `yaml:"batch_size"`
	Frozen    []string  `yaml:"frozen"`
	Betas     []float64 `yaml:"betas"`
	Shape     []int     `yaml:"shape"`
}

type boundsRun struct {
	Name   string                 `yaml:"name"`
	Limit  int                    `yaml:"limit"`
	Stages []boundsStage          `yaml:"stages"`
	ByName map[string]boundsStage `yaml:"by_name"`
	Extra  map[string]any         `yaml:"extra"`
}

// laughs is a billion-laughs document: n levels of anchors, each aliasing
// the previous one ten times, put where the stage's frozen list goes.
func laughs(n int) string {
	var b strings.Builder
	b.WriteString("extra:\n  l0: &l0 [stem, stem, stem, stem, stem, stem, stem, stem, stem, stem]\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "stages:\n  - name: s\n    frozen: *l%d\n", n-1)
	return b.String()
}

// The documents that took the parser down with "fatal error: out of
// memory" before the bounds: each is refused with an error naming the
// file, the line where one is known, and the bound.
func TestHostileDocumentsAreRefused(t *testing.T) {
	deepFlow := "stages:\n  - name: s\n    frozen: " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n"
	deepBlock := "stages:\n  - name: s\n    frozen:\n      " + strings.Repeat("- ", 50_000) + "x\n"
	for _, tc := range []struct {
		name, doc, want string
		line            int
	}{
		{"alias bomb in a list", laughs(9), "values once aliases are expanded", 0},
		{"alias bomb through a mapping", "a: &a {x: 1, y: 2, z: 3, w: 4}\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", "values once aliases are expanded", 0},
		{"100k-deep flow list", deepFlow, "nested more than 64 levels", 3},
		{"50k-deep block list", deepBlock, "nested more than 64 levels", 4},
		{"too large", "name: " + strings.Repeat("x", MaxBytes) + "\n", "at most 256 KiB", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r boundsRun
			err := Decode("run.yaml", []byte(tc.doc), &r)
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || ce.File != "run.yaml" {
				t.Fatalf("error %v, want a *config.Error saying %q", err, tc.want)
			}
			if tc.line > 0 && ce.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", ce.Line, tc.line, err)
			}
			if len(err.Error()) > 300 {
				t.Errorf("message of %d bytes", len(err.Error()))
			}
		})
	}
}

// Aliases within the bounds, and nesting as deep as real files go, still
// decode: anchors are how one section is shared between stages.
func TestBoundedDocumentsStillDecode(t *testing.T) {
	doc := "extra:\n  groups: &g [stem, stage1]\n  base: &base {epochs: 2, batch_size: 16}\n" +
		"stages:\n  - {<<: *base, name: a, frozen: *g}\n  - <<: *base\n    name: b\n    frozen: *g\n" +
		"by_name:\n  x:\n    shape: [1, 2]\n"
	var r boundsRun
	if err := Decode("run.yaml", []byte(doc), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Stages) != 2 || r.Stages[1].Epochs != 2 || r.Stages[1].BatchSize != 16 || len(r.Stages[0].Frozen) != 2 {
		t.Fatalf("got %+v", r)
	}
	// Exactly MaxDepth levels is accepted.
	deep := "extra:\n  x: " + strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2) + "\n"
	if err := Decode("run.yaml", []byte(deep), &r); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	// Just below MaxValues after expansion is accepted too.
	var b strings.Builder
	b.WriteString("extra:\n  a: &a [" + strings.TrimSuffix(strings.Repeat("1, ", 999), ", ") + "]\n  b: [")
	for i := range 90 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*a")
	}
	b.WriteString("]\n")
	if err := Decode("run.yaml", []byte(b.String()), &r); err != nil {
		t.Fatalf("91k values: %v", err)
	}
}

// `batch_size: 8.5` was decoded as 8 without a word.
func TestFractionalIntegersAreErrors(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		line int
	}{
		{"stages:\n  - name: s\n    batch_size: 8.5\n", 3},
		{"limit: 1.5e0\n", 1},
		{"stages:\n  - {name: s, shape: [1, 2.25]}\n", 2},
		{"by_name:\n  x:\n    epochs: 0.5\n", 3},
		{"extra:\n  n: &n 2.5\nstages:\n  - name: s\n    epochs: *n\n", 5},
	} {
		var r boundsRun
		err := Decode("run.yaml", []byte(tc.doc), &r)
		var ce *Error
		if !errors.As(err, &ce) || ce.Line != tc.line || !strings.Contains(err.Error(), "not an integer") {
			t.Errorf("%q: error %v, want one at line %d saying not an integer", tc.doc, err, tc.line)
		}
	}
	// Integral floats are integers, and float fields take fractions.
	var r boundsRun
	if err := Decode("run.yaml", []byte("limit: 1e3\nstages:\n  - {name: s, batch_size: 8.0, betas: [0.9, 0.999]}\n"), &r); err != nil {
		t.Fatal(err)
	}
	if r.Limit != 1000 || r.Stages[0].BatchSize != 8 || r.Stages[0].Betas[1] != 0.999 {
		t.Fatalf("got %+v", r)
	}
}
