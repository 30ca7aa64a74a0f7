package simprobs

import (
	"math"
	"slices"
	"testing"
)

func TestGenerate(t *testing.T) {
	groupOf, names := IMetGroups()
	if len(groupOf) != 1103 || len(names) != 2 || groupOf[397] != 0 || groupOf[398] != 1 {
		t.Fatalf("iMet layout wrong: %d labels, groups %v", len(groupOf), names)
	}
	p := Generate(3000, groupOf, 4.4, 1)
	q := Generate(3000, groupOf, 4.4, 1)
	if !slices.Equal(p.Probs, q.Probs) {
		t.Fatal("same seed gave different probabilities")
	}
	var n int
	var posSum, negSum float64
	var negN int
	for i, tr := range p.Truth {
		if len(tr) == 0 || !slices.IsSorted(tr) {
			t.Fatalf("row %d truth %v: want at least one label, sorted", i, tr)
		}
		n += len(tr)
		row := p.Probs[i*p.Cols : (i+1)*p.Cols]
		for j, v := range row {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("probability %v outside [0, 1]", v)
			}
			if slices.Contains(tr, int32(j)) {
				posSum += float64(v)
			} else {
				negSum += float64(v)
				negN++
			}
		}
	}
	mean := float64(n) / 3000
	if math.Abs(mean-4.4) > 0.2 {
		t.Errorf("mean labels per image %.2f, want about 4.4", mean)
	}
	if pos, neg := posSum/float64(n), negSum/float64(negN); pos < 0.5 || neg > 0.02 {
		t.Errorf("mean probability of true labels %.3f, of false %.4f: not a useful model", pos, neg)
	}
}
