package thresholds_test

import (
	"fmt"

	"imet/internal/postprocess/thresholds"
)

// A rule with per-label thresholds, at most one culture label, and the
// relative bar p >= 0.5·max p.
func ExamplePredictor() {
	groupOf := []int{0, 0, 1, 1, 1} // culture, culture, tag, tag, tag
	rule := &thresholds.Rule{
		Thresholds: []float64{0.3, 0.3, 0.2, 0.2, 0.2},
		Bounds:     []thresholds.Bounds{{Min: 0, Max: 1}, {Min: 0, Max: 0}},
		Relative:   0.5,
		AtLeastOne: true,
	}
	p := thresholds.NewPredictor(rule, groupOf, 2)
	fmt.Println(p.Predict([]float32{0.8, 0.6, 0.5, 0.3, 0.1}, nil))
	fmt.Println(p.Predict([]float32{0.1, 0.1, 0.15, 0.05, 0.01}, nil))
	// Output:
	// [0 2]
	// [2]
}

func ExampleSearch() {
	// Two images, three labels in one group.
	pr := &thresholds.Problem{
		Rows: 2, Cols: 3,
		Probs:   []float32{0.9, 0.4, 0.1, 0.2, 0.7, 0.35},
		Truth:   [][]int32{{0, 1}, {1, 2}},
		GroupOf: []int{0, 0, 0}, Groups: []string{"tag"},
	}
	o := thresholds.DefaultOptions()
	o.Grid = thresholds.LinearGrid(0.05, 0.95)
	// Every threshold in (0.2, 0.35] is perfect; ties go to the lowest.
	res, _ := thresholds.Search(pr, []string{thresholds.Global}, o)
	fmt.Printf("%s: threshold %.2f, F2 %.3f\n", res[0].Name, res[0].Rule.Thresholds[0], res[0].Score)
	// Output: global: threshold 0.25, F2 1.000
}
