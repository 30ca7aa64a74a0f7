package loader_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"

	"imet/internal/vision/loader"
	"imet/internal/vision/pipeline"
)

// writeJPEGs makes n small test images and returns them as items with
// 3-label targets.
func writeJPEGs(dir string, n int) []loader.Item {
	var items []loader.Item
	for i := range n {
		m := image.NewRGBA(image.Rect(0, 0, 120+10*i, 90))
		for y := 0; y < 90; y++ {
			for x := 0; x < m.Bounds().Dx(); x++ {
				m.Set(x, y, color.RGBA{uint8(20 * i), uint8(x), uint8(y), 255})
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("img%d.jpg", i))
		f, _ := os.Create(path)
		jpeg.Encode(f, m, nil)
		f.Close()
		target := []float32{0, 0, 0}
		target[i%3] = 1
		items = append(items, loader.Item{Path: path, Target: target})
	}
	return items
}

func Example() {
	dir, _ := os.MkdirTemp("", "loader-example")
	defer os.RemoveAll(dir)
	items := writeJPEGs(dir, 10)

	p, err := pipeline.Get("resize320", nil)
	if err != nil {
		panic(err)
	}
	l, err := loader.New(items, p.Train, loader.Options{BatchSize: 4, Workers: 2, Seed: 42, Shuffle: true})
	if err != nil {
		panic(err)
	}
	// Training: resume at batch 1 of epoch 3, as after an interruption.
	for b, err := range l.Epoch(context.Background(), 3, 1) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("batch %d: %d images %dx%dx%d, targets %d x %d\n", b.Number, b.N, b.C, b.H, b.W, len(b.Targets)/b.L, b.L)
		b.Release()
	}

	// Evaluation with TTA: one loader per variant; batch k of each holds
	// the same samples, so predictions average batch by batch.
	ttas, _ := loader.NewTTA(items, p, loader.Options{BatchSize: 5, Seed: 42})
	for i, tl := range ttas {
		for b, err := range tl.Epoch(context.Background(), 0, 0) {
			if err != nil {
				panic(err)
			}
			fmt.Printf("variant %s batch %d: samples %v\n", p.TTA[i].Name, b.Number, b.Indices)
			b.Release()
		}
	}
	// Output:
	// batch 1: 4 images 3x320x320, targets 4 x 3
	// batch 2: 2 images 3x320x320, targets 2 x 3
	// variant eval batch 0: samples [0 1 2 3 4]
	// variant eval batch 1: samples [5 6 7 8 9]
	// variant hflip batch 0: samples [0 1 2 3 4]
	// variant hflip batch 1: samples [5 6 7 8 9]
}
