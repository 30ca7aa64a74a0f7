package loader

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"imet/internal/vision/augment"
	"imet/internal/vision/mixup"
	"imet/internal/vision/pipeline"
)

func items(t *testing.T, n int) []Item {
	t.Helper()
	return writeTestImages(t.TempDir(), n)
}

type snap struct {
	n       int
	images  []float32
	targets []float32
	indices []int
}

func collect(t *testing.T, l *Loader, epoch, start int) []snap {
	t.Helper()
	var out []snap
	for b, err := range l.Epoch(context.Background(), epoch, start) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, snap{b.N, slices.Clone(b.Images), slices.Clone(b.Targets), slices.Clone(b.Indices)})
		b.Release()
	}
	return out
}

func trainChain(t *testing.T) *augment.Chain {
	p, err := pipeline.Get("aggressive256", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := augment.NewChain(
		&augment.RandomResizedCrop{Height: 32, Width: 24, Scale: augment.Range{Lo: 0.3, Hi: 1}, Ratio: augment.Range{Lo: 0.75, Hi: 1.33}, P: 1},
		&augment.ShiftScaleRotate{ShiftLimit: augment.Sym(0.1), ScaleLimit: augment.Sym(0.1), RotateLimit: augment.Sym(20), P: 0.5},
		&augment.HorizontalFlip{P: 0.5},
		&augment.GaussNoise{VarLimit: augment.Range{Lo: 10, Hi: 50}, PerChannel: true, P: 0.5},
		p.Train.Ops()[len(p.Train.Ops())-1], // Normalize
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func equal(t *testing.T, a, b []snap, what string) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d batches", what, len(a), len(b))
	}
	for i := range a {
		if a[i].n != b[i].n || !slices.Equal(a[i].indices, b[i].indices) ||
			!slices.Equal(a[i].images, b[i].images) || !slices.Equal(a[i].targets, b[i].targets) {
			t.Fatalf("%s: batch %d differs", what, i)
		}
	}
}

func TestDeterministicAcrossWorkers(t *testing.T) {
	its := items(t, 11)
	c := trainChain(t)
	mix := mixup.Config{Mode: "mixup", Alpha: 0.4, P: 0.7}
	var ref []snap
	for _, workers := range []int{1, 3, 8} {
		l, err := New(its, c, Options{BatchSize: 4, Workers: workers, Prefetch: 1 + workers%3, Seed: 5, Shuffle: true, Mix: mix})
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, l, 2, 0)
		if ref == nil {
			ref = got
			continue
		}
		equal(t, ref, got, "workers")
	}
	if len(ref) != 3 || ref[2].n != 3 {
		t.Fatalf("11 items in batches of 4: got %d batches, last of %d", len(ref), ref[len(ref)-1].n)
	}
}

func TestResumeMidEpoch(t *testing.T) {
	its := items(t, 10)
	l, _ := New(its, trainChain(t), Options{BatchSize: 3, Workers: 2, Seed: 9, Shuffle: true, DropLast: true,
		Mix: mixup.Config{Mode: "cutmix", Alpha: 1, P: 1}})
	full := collect(t, l, 4, 0)
	if len(full) != 3 {
		t.Fatalf("DropLast: %d batches, want 3", len(full))
	}
	equal(t, full[2:], collect(t, l, 4, 2), "resumed at batch 2")
	// Another epoch: another order, another draw.
	other := collect(t, l, 5, 0)
	if slices.Equal(full[0].indices, other[0].indices) && slices.Equal(full[1].indices, other[1].indices) {
		t.Error("epochs 4 and 5 have the same order")
	}
	// A different seed changes the augmentation.
	l2, _ := New(its, trainChain(t), Options{BatchSize: 3, Seed: 10, DropLast: true})
	l1, _ := New(its, trainChain(t), Options{BatchSize: 3, Seed: 9, DropLast: true})
	if slices.Equal(collect(t, l1, 0, 0)[0].images, collect(t, l2, 0, 0)[0].images) {
		t.Error("seeds 9 and 10 gave identical images")
	}
}

func TestCacheChangesNothing(t *testing.T) {
	its := items(t, 6)
	c := trainChain(t)
	plain, _ := New(its, c, Options{BatchSize: 4, Seed: 1, Shuffle: true})
	cached, _ := New(its, c, Options{BatchSize: 4, Seed: 1, Shuffle: true, CacheBytes: 1 << 20})
	want := collect(t, plain, 0, 0)
	equal(t, want, collect(t, cached, 0, 0), "cache cold")
	equal(t, want, collect(t, cached, 0, 0), "cache warm")
	if cached.cache.used == 0 {
		t.Error("cache stayed empty")
	}
	tiny, _ := New(its, c, Options{BatchSize: 4, Seed: 1, Shuffle: true, CacheBytes: 20000})
	collect(t, tiny, 0, 0)
	if tiny.cache.used > 20000 {
		t.Errorf("cache holds %d bytes, limit 20000", tiny.cache.used)
	}
}

func TestBrokenFiles(t *testing.T) {
	its := items(t, 7)
	bad := filepath.Join(t.TempDir(), "broken.jpg")
	data, _ := os.ReadFile(its[3].Path)
	os.WriteFile(bad, data[:len(data)/3], 0o644)
	its[3].Path = bad
	c := trainChain(t)

	strict, _ := New(its, c, Options{BatchSize: 4, Seed: 1})
	var gotErr error
	for _, err := range strict.Epoch(context.Background(), 0, 0) {
		if err != nil {
			gotErr = err
		}
	}
	if gotErr == nil || !strings.Contains(gotErr.Error(), "broken.jpg") {
		t.Fatalf("error %v does not name broken.jpg", gotErr)
	}

	var reported []string
	lenient, _ := New(its, c, Options{BatchSize: 4, Seed: 1, SkipBroken: true, OnSkip: func(p string, err error) { reported = append(reported, p) }})
	got := collect(t, lenient, 0, 0)
	if got[0].n != 3 || slices.Contains(got[0].indices, 3) || got[1].n != 3 {
		t.Errorf("batches of %d and %d with indices %v, want the broken sample dropped", got[0].n, got[1].n, got[0].indices)
	}
	if len(reported) != 1 || reported[0] != bad || len(lenient.Skipped()) != 1 {
		t.Errorf("reported %v, Skipped %v", reported, lenient.Skipped())
	}
	// A batch whose samples are all broken is not yielded.
	allBad := slices.Clone(its)
	allBad[4].Path, allBad[5].Path, allBad[6].Path = bad, bad, bad
	l3, _ := New(allBad, c, Options{BatchSize: 4, Seed: 1, SkipBroken: true})
	var numbers []int
	for b, err := range l3.Epoch(context.Background(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		numbers = append(numbers, b.Number)
		b.Release()
	}
	if !slices.Equal(numbers, []int{0}) {
		t.Errorf("yielded batches %v, want only [0]", numbers)
	}
	// The surviving samples are exactly as without the broken one.
	ok := collect(t, strictFree(t, its, c), 0, 0)
	if !slices.Equal(ok[0].images[:len(got[0].images)], got[0].images) {
		t.Error("surviving samples changed")
	}
}

// strictFree is a loader whose item 3 is replaced by a copy of item 0, so
// that slots 0-2 of batch 0 hold the same samples as in the skipping run.
func strictFree(t *testing.T, its []Item, c *augment.Chain) *Loader {
	cp := slices.Clone(its)
	cp[3] = its[0]
	l, err := New(cp, c, Options{BatchSize: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMixedTargets(t *testing.T) {
	its := items(t, 8)
	for _, mode := range []string{"mixup", "cutmix"} {
		l, _ := New(its, trainChain(t), Options{BatchSize: 8, Seed: 3, Mix: mixup.Config{Mode: mode, Alpha: 1, P: 1}})
		for b, err := range l.Epoch(context.Background(), 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if b.Partner == nil || b.Lambda <= 0 || b.Lambda >= 1 {
				t.Fatalf("%s: lambda %v partner %v", mode, b.Lambda, b.Partner)
			}
			for i := 0; i < b.N; i++ {
				var sum float32
				for k := 0; k < b.L; k++ {
					want := float32(b.Lambda)*its[b.Indices[i]].Target[k] + float32(1-b.Lambda)*its[b.Indices[b.Partner[i]]].Target[k]
					if d := b.Targets[i*b.L+k] - want; d > 1e-6 || d < -1e-6 {
						t.Fatalf("%s: sample %d target %d = %v, want %v", mode, i, k, b.Targets[i*b.L+k], want)
					}
					sum += b.Targets[i*b.L+k]
				}
				if d := sum - 1; d > 1e-5 || d < -1e-5 {
					t.Errorf("%s: one-hot targets mixed to sum %v", mode, sum)
				}
			}
			b.Release()
		}
	}
}

func TestEarlyBreakAndCancel(t *testing.T) {
	its := items(t, 20)
	l, _ := New(its, trainChain(t), Options{BatchSize: 2, Workers: 4, Prefetch: 3, Seed: 1})
	before := runtime.NumGoroutine()
	for b := range l.Epoch(context.Background(), 0, 0) {
		b.Release()
		break
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var last error
	for b, err := range l.Epoch(ctx, 0, 0) {
		if err != nil {
			last = err
			break
		}
		n++
		b.Release()
		cancel()
	}
	if !errors.Is(last, context.Canceled) && n >= l.NumBatches() {
		t.Errorf("cancel: read %d batches, err %v", n, last)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines left running (had %d)", g, before)
	}
}

func TestBuffersAreReused(t *testing.T) {
	its := items(t, 12)
	l, _ := New(its, trainChain(t), Options{BatchSize: 2, Workers: 2, Prefetch: 1, Seed: 1})
	seen := map[*float32]bool{}
	for b, err := range l.Epoch(context.Background(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		seen[&b.Images[:1][0]] = true
		b.Release()
	}
	// Prefetch 1: at most a handful of distinct buffers for 6 batches.
	if len(seen) > 4 {
		t.Errorf("%d distinct batch buffers for 6 batches with prefetch 1", len(seen))
	}
}

func TestTTAVariants(t *testing.T) {
	its := items(t, 5)
	p, _ := pipeline.Get("resize320", nil)
	ls, err := NewTTA(its, p, Options{BatchSize: 5, Seed: 2})
	if err != nil || len(ls) != 2 {
		t.Fatalf("NewTTA: %d loaders, %v", len(ls), err)
	}
	a, b := collect(t, ls[0], 0, 0)[0], collect(t, ls[1], 0, 0)[0]
	// The hflip variant is the mirror of the identity one.
	const w = 320
	for y := 0; y < w; y += 37 {
		for x := 0; x < w; x += 41 {
			if d := a.images[y*w+x] - b.images[y*w+(w-1-x)]; d > 1e-4 || d < -1e-4 {
				t.Fatalf("hflip variant is not the mirror at (%d,%d): %v vs %v", x, y, a.images[y*w+x], b.images[y*w+(w-1-x)])
			}
		}
	}
}

func TestNewRejects(t *testing.T) {
	c := trainChain(t)
	if _, err := New(nil, c, Options{}); err == nil {
		t.Error("BatchSize 0 accepted")
	}
	if _, err := New([]Item{{"a", []float32{1}}, {"b", nil}}, c, Options{BatchSize: 1}); err == nil {
		t.Error("ragged targets accepted")
	}
	free := augment.MustChain(&augment.SmallestMaxSize{SizeLimit: augment.SizeLimit{MaxSize: 10, P: 1}})
	if _, err := New(nil, free, Options{BatchSize: 1}); err == nil {
		t.Error("variable-size chain accepted")
	}
}

// TestMemoryStaysBounded runs a long epoch (many samples, images reused)
// and checks that the heap after the first batches does not grow with the
// number of samples read.
func TestMemoryStaysBounded(t *testing.T) {
	base := items(t, 8)
	var its []Item
	for i := 0; i < 2400; i++ {
		its = append(its, base[i%len(base)])
	}
	c := augment.MustChain(&augment.Resize{Height: 16, Width: 16, P: 1}, &augment.HorizontalFlip{P: 0.5})
	l, _ := New(its, c, Options{BatchSize: 16, Workers: 2, Prefetch: 2, Seed: 1, Shuffle: true})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var early, late uint64
	for b, err := range l.Epoch(context.Background(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		num := b.Number
		b.Release() // b must not be touched after this
		switch num {
		case 10:
			early = heap()
		case l.NumBatches() - 1:
			late = heap()
		}
	}
	// 140 batches later the heap may differ by noise, not by what was read
	// (2400 decoded images of ~6 KB each would be 15 MB).
	if late > early+2<<20 {
		t.Errorf("heap grew from %d to %d bytes over the epoch", early, late)
	}
}

// A loader over every world-th item from rank (a data-parallel rank's
// share), keyed at KeyOffset rank and KeyStride world, augments each image
// as the loader over the whole list does; so does one over a contiguous
// part keyed at its start.
func TestKeyOffsetAndStrideReproduceTheWholeList(t *testing.T) {
	its := items(t, 9)
	c := trainChain(t)
	whole, _ := New(its, c, Options{BatchSize: 1, Workers: 2, Seed: 3})
	ref := collect(t, whole, 1, 0)
	for rank := range 2 {
		var share []Item
		for i := rank; i < len(its); i += 2 {
			share = append(share, its[i])
		}
		l, _ := New(share, c, Options{BatchSize: 1, Workers: 2, Seed: 3, KeyOffset: rank, KeyStride: 2})
		for j, b := range collect(t, l, 1, 0) {
			if !slices.Equal(b.images, ref[rank+2*j].images) {
				t.Fatalf("rank %d: item %d is not augmented as item %d of the whole list", rank, j, rank+2*j)
			}
		}
	}
	part, _ := New(its[4:], c, Options{BatchSize: 1, Workers: 1, Seed: 3, KeyOffset: 4})
	for j, b := range collect(t, part, 1, 0) {
		if !slices.Equal(b.images, ref[4+j].images) {
			t.Fatalf("part from 4: item %d differs from item %d of the whole list", j, 4+j)
		}
	}
	plain, _ := New(its[4:], c, Options{BatchSize: 1, Workers: 1, Seed: 3})
	if slices.Equal(collect(t, plain, 1, 0)[0].images, ref[4].images) {
		t.Error("without KeyOffset the part draws the same as the whole: the test cannot tell")
	}
}
