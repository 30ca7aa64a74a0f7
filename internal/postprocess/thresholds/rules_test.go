package thresholds

import (
	"math"
	"testing"

	"imet/internal/postprocess/fbeta"
)

// TestEveryRuleSearchesAndApplies runs each rule of AllRules alone on a
// small synthetic problem, then applies the rule it found: scoring it again
// gives the searched score, and the predictor labels every image. No name
// can be listed without a search behind it.
func TestEveryRuleSearchesAndApplies(t *testing.T) {
	pr := smallProblem(200, 11)
	o := smallOptions(true, fbeta.BothEmptyZero)
	for _, name := range AllRules {
		rs, err := Search(pr, []string{name}, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(rs) != 1 || rs[0].Name != name {
			t.Fatalf("%s: results %+v", name, rs)
		}
		r := rs[0]
		if len(r.Rule.Thresholds) != pr.Cols || !(r.Score > 0 && r.Score <= 1) {
			t.Fatalf("%s: %d thresholds, score %v", name, len(r.Rule.Thresholds), r.Score)
		}
		v, _, err := Evaluate(pr, &r.Rule, o.Score, 2)
		if err != nil || math.Abs(v-r.Score) > 1e-9 {
			t.Errorf("%s: applied, the rule scores %v (%v), searched %v", name, v, err, r.Score)
		}
		p := NewPredictor(&r.Rule, pr.GroupOf, len(pr.Groups))
		for i := range pr.Rows {
			if got := p.Predict(pr.Probs[i*pr.Cols:(i+1)*pr.Cols], nil); len(got) == 0 {
				t.Fatalf("%s: image %d gets no label despite at_least_one", name, i)
			}
		}
	}
}
