package folds_test

import (
	"fmt"

	"imet/internal/data/folds"
)

// Rows carry label columns; the split keeps each label's examples spread
// evenly and still assigns the row with no label.
func ExampleStratify() {
	labels := [][]int{{0}, {0, 1}, {0}, {0, 1}, {2}, {2}, {}, {1}}
	fold, err := folds.Stratify(labels, 3, 2, 42)
	if err != nil {
		panic(err)
	}
	rep, _ := folds.Evaluate(labels, 3, fold, 2)
	fmt.Println("rows per fold:", rep.FoldSizes)
	fmt.Println("max deviation from n/k:", rep.MaxAbsDev)
	// Output:
	// rows per fold: [4 4]
	// max deviation from n/k: 0.5
}
