package train

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"imet/internal/vision/loader"
	"imet/internal/vision/pipeline"
)

// brokenSource is an ImageSource over six 16x16 PNGs of which those at
// broken are truncated.
func brokenSource(t *testing.T, skip bool, broken ...int) (*ImageSource, []string) {
	t.Helper()
	dir := t.TempDir()
	pipes := filepath.Join(dir, "p.yaml")
	os.WriteFile(pipes, []byte("pipelines:\n  tiny:\n    train: [{op: Resize, height: 8, width: 8}, {op: Normalize}]\n    eval: [{op: Resize, height: 8, width: 8}, {op: Normalize}]\n"), 0o644)
	cfg, err := pipeline.LoadConfig(pipes)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Get("tiny", cfg)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var b bytes.Buffer
	png.Encode(&b, img)
	var items []loader.Item
	var paths []string
	for i := 0; i < 6; i++ {
		data := b.Bytes()
		for _, k := range broken {
			if k == i {
				data = data[:len(data)/2]
			}
		}
		path := filepath.Join(dir, string(rune('a'+i))+".png")
		os.WriteFile(path, data, 0o644)
		items = append(items, loader.Item{Path: path, Target: []float32{1}})
		paths = append(paths, path)
	}
	return &ImageSource{items: items, pipe: p, opt: loader.Options{Workers: 2, SkipBroken: skip}, classes: 1, brokenHint: "set data.skip_broken"}, paths
}

// A batch whose every image is broken is not yielded by the loader; the
// source says how many such batches it passed, so that the trainer's
// position in the epoch (and so a resume) stays the loader's, and how many
// samples prediction lost, so that every row is accounted for.
func TestImageSourceAccountsForSkippedBatches(t *testing.T) {
	src, _ := brokenSource(t, true, 2, 3, 5)
	var mu sync.Mutex
	reported := map[string]int{}
	b := &BrokenImages{OnReport: func(p string, err error) { mu.Lock(); reported[filepath.Base(p)]++; mu.Unlock() }}
	src.opt.OnSkip = b.Report
	type got struct{ n, skipped, dropped int }
	var train []got
	for epoch := 0; epoch < 2; epoch++ {
		train = train[:0]
		for bt, err := range src.Train(context.Background(), EpochKey{Epoch: epoch, Global: epoch}, []int{0, 1, 2, 3, 4, 5}, 2, 0, MixConfig{}) {
			if err != nil {
				t.Fatal(err)
			}
			train = append(train, got{bt.N, bt.SkippedBatches, bt.Dropped})
		}
	}
	if want := []got{{2, 0, 0}, {1, 1, 0}}; len(train) != 2 || train[0] != want[0] || train[1] != want[1] {
		t.Errorf("train batches %v, want %v", train, want)
	}
	var eval []got
	rows := 0
	for bt, err := range src.Eval(context.Background(), 2, 0) {
		if err != nil {
			t.Fatal(err)
		}
		eval = append(eval, got{bt.N, bt.SkippedBatches, bt.Dropped})
		rows += bt.N + bt.Dropped
	}
	if rows != 6 || len(eval) != 2 || eval[1] != (got{1, 0, 3}) {
		t.Errorf("eval batches %v (%d rows), want the 3 broken counted as dropped", eval, rows)
	}
	// Starting at batch 2 (a resume), nothing before it counts.
	for bt, err := range src.Train(context.Background(), EpochKey{}, []int{0, 1, 2, 3, 4, 5}, 2, 2, MixConfig{}) {
		if err != nil || bt.SkippedBatches != 0 {
			t.Errorf("resumed at batch 2: skipped %d, %v", bt.SkippedBatches, err)
		}
	}
	// Trailing broken batches are accounted for in a last, empty batch.
	src2, _ := brokenSource(t, true, 4, 5)
	var last *Batch
	rows = 0
	for bt, err := range src2.Eval(context.Background(), 2, 0) {
		if err != nil {
			t.Fatal(err)
		}
		last = bt
		rows += bt.N + bt.Dropped
	}
	if rows != 6 || last.N != 0 || last.Dropped != 2 {
		t.Errorf("trailing broken batch: %d rows, last batch %+v", rows, last)
	}
	if len(reported) != 3 || reported["c.png"] != 1 || reported["d.png"] != 1 || reported["f.png"] != 1 {
		t.Errorf("reports %v, want each broken image once over epochs and splits", reported)
	}
}

// Without skip_broken the first broken image stops the source, with the
// file and the option that skips it.
func TestBrokenImageErrorNamesTheOption(t *testing.T) {
	src, paths := brokenSource(t, false, 3)
	var err error
	for _, e := range src.Train(context.Background(), EpochKey{}, []int{0, 1, 2, 3, 4, 5}, 2, 0, MixConfig{}) {
		if e != nil {
			err = e
		}
	}
	if err == nil || !strings.Contains(err.Error(), paths[3]) || !strings.Contains(err.Error(), "set data.skip_broken") {
		t.Errorf("error %v", err)
	}
}
