package targets_test

import (
	"fmt"
	"testing"

	"imet/internal/training/targets"
)

// The 9th place's distillation target: a label that is on stays on, a
// missing label the teacher is sure of becomes 0.7 x its probability.
func ExampleCombine() {
	fmt.Println(targets.Combine(targets.Max, 0.7, 1, 0.2))
	fmt.Println(targets.Combine(targets.Max, 0.7, 0, 0.9))
	fmt.Println(targets.Combine(targets.Mix, 0.5, 0, 0.9))
	// Output:
	// 1
	// 0.63
	// 0.45
}

func TestConfidence(t *testing.T) {
	for _, c := range []struct {
		p    []float32
		want float64
	}{
		{[]float32{0, 1, 1, 0}, 0.5},
		{[]float32{0.5, 0.5}, 0},
		{[]float32{0.9, 0.3}, 0.3},
		{nil, 0},
	} {
		if got := targets.Confidence(c.p); got < c.want-1e-6 || got > c.want+1e-6 {
			t.Errorf("Confidence(%v) = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestCheckRule(t *testing.T) {
	for _, r := range targets.Rules() {
		if err := targets.CheckRule(r); err != nil || targets.RuleDoc(r) == "" {
			t.Errorf("%s: %v", r, err)
		}
	}
	if err := targets.CheckRule("maximum"); err == nil {
		t.Error("maximum accepted")
	}
}
