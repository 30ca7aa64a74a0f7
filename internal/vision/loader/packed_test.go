package loader

import (
	"path/filepath"
	"slices"
	"testing"

	"imet/internal/vision/packed"
	"imet/internal/vision/pipeline"
)

// A pack stored at full size must change nothing in the batches: the same
// pixels reach the same augmentation draws. The last item is left out of
// the pack, so the fallback to decoding is covered too.
func TestPackedBatchesBitIdentical(t *testing.T) {
	dir := t.TempDir()
	its := writeTestImages(dir, 9)
	var keys []string
	for _, it := range its[:len(its)-1] {
		keys = append(keys, filepath.Base(it.Path))
	}
	pack := filepath.Join(dir, "images.pack")
	if _, err := packed.Build(pack, dir, keys, packed.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	r, err := packed.Open(pack, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := pipeline.Get("resize320", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, chain := range []string{"trainChain", "resize320"} {
		ch := trainChain(t)
		if chain == "resize320" {
			ch = p.Train
		}
		opt := Options{BatchSize: 4, Seed: 3, Shuffle: true, Workers: 2, FullDecode: true}
		decoding, err := New(its, ch, opt)
		if err != nil {
			t.Fatal(err)
		}
		opt.Packed = r
		fromPack, err := New(its, ch, opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := fromPack.PackedItems(); got != len(its)-1 {
			t.Fatalf("%d items found in the pack, want %d", got, len(its)-1)
		}
		want := collect(t, decoding, 1, 0)
		equal(t, want, collect(t, fromPack, 1, 0), chain+": packed vs decoded")
		if slices.Equal(want[0].images, collect(t, decoding, 2, 0)[0].images) {
			t.Fatal("epochs 1 and 2 gave the same first batch: the comparison would not see a change")
		}
	}
}
