package thresholds

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// The curves are what plots draw as "F2 against the threshold"; each point
// must be the score Evaluate gives that rule, and the searched rules' own
// scores must lie on them.
func TestCurvesMatchEvaluateAndSearch(t *testing.T) {
	pr := smallProblem(300, 5)
	pr.Truth[4] = nil
	for _, v := range variants {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			o := smallOptions(v.atLeastOne, v.empty)
			res, err := Search(pr, []string{Global, Group}, o)
			if err != nil {
				t.Fatal(err)
			}
			global, group := res[0], res[1]
			c, err := NewCurves(pr, o)
			if err != nil {
				t.Fatal(err)
			}
			curve := c.Global()
			for k, g := range o.Grid {
				th := make([]float64, pr.Cols)
				for j := range th {
					th[j] = g
				}
				if want := eval(t, pr, Rule{Thresholds: th}, o); math.Abs(curve[k]-want) > 1e-12 {
					t.Errorf("global curve at %g: %.15f, Evaluate %.15f", g, curve[k], want)
				}
			}
			k := slices.Index(o.Grid, global.Rule.Thresholds[0])
			if k < 0 || math.Abs(slices.Max(curve)-global.Score) > 1e-12 || math.Abs(curve[k]-global.Score) > 1e-12 {
				t.Errorf("global rule %.15f at %g is not the curve's top %.15f", global.Score, global.Rule.Thresholds[0], slices.Max(curve))
			}
			for gi := range pr.Groups {
				curve, err := c.Group(group.Rule.Thresholds, gi)
				if err != nil {
					t.Fatal(err)
				}
				var chosen float64
				for kk, g := range o.Grid {
					th := slices.Clone(group.Rule.Thresholds)
					for j := range th {
						if pr.GroupOf[j] == gi {
							chosen = group.Rule.Thresholds[j]
							th[j] = g
						}
					}
					if want := eval(t, pr, Rule{Thresholds: th}, o); math.Abs(curve[kk]-want) > 1e-12 {
						t.Errorf("group %d curve at %g: %.15f, Evaluate %.15f", gi, g, curve[kk], want)
					}
				}
				if kk := slices.Index(o.Grid, chosen); kk < 0 || math.Abs(curve[kk]-group.Score) > 1e-12 {
					t.Errorf("group %d: the group rule's score %.15f is not on its curve at %g", gi, group.Score, chosen)
				}
			}
		})
	}
}

func TestGroupCurveErrors(t *testing.T) {
	pr := smallProblem(50, 2)
	c, err := NewCurves(pr, smallOptions(true, 0))
	if err != nil {
		t.Fatal(err)
	}
	th := make([]float64, pr.Cols)
	for j := range th {
		th[j] = 0.5
	}
	if _, err := c.Group(th[:3], 0); err == nil {
		t.Error("short thresholds accepted")
	}
	if _, err := c.Group(th, 3); err == nil {
		t.Error("group out of range accepted")
	}
	th[9] = 0.01 // column 9 is in group 2, below the grid's 0.05
	if _, err := c.Group(th, 0); err == nil {
		t.Error("threshold below the grid accepted")
	}
	if _, err := c.Group(th, 2); err != nil {
		t.Errorf("the swept group's own thresholds do not matter: %v", err)
	}
}
