package probs_test

import (
	"fmt"
	"os"
	"path/filepath"

	"imet/internal/postprocess/probs"
)

func ExampleSave() {
	dir, _ := os.MkdirTemp("", "probs")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "oof.npy")
	f := &probs.File{
		Matrix: &probs.Matrix{Rows: 2, Cols: 3, Data: []float32{0.9, 0.1, 0.2, 0.3, 0.8, 0.05}},
		IDs:    []string{"1a2b", "3c4d"},
		Labels: []string{"0", "1", "2"},
	}
	if err := probs.Save(path, f); err != nil {
		fmt.Println(err)
	}
	g, _ := probs.Load(path) // reads oof.npy, oof.ids.csv and oof.labels.csv
	fmt.Println(g.Rows, g.Cols, g.IDs, g.Row(1))
	fmt.Println(filepath.Base(probs.IDsPath(path)), filepath.Base(probs.LabelsPath(path)))
	// Output:
	// 2 3 [1a2b 3c4d] [0.3 0.8 0.05]
	// oof.ids.csv oof.labels.csv
}
