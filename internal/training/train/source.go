package train

import (
	"context"
	"iter"
)

// Batch is one batch of network inputs: NCHW float32 images and N×L
// float32 targets (multi-hot, or soft after Mixup/CutMix).
type Batch struct {
	Images     []float32
	N, C, H, W int
	Targets    []float32
	L          int
	Indices    []int  // sample index of each row
	Release    func() // hands buffers back to the source; may be nil
	// SkippedBatches (Train) is how many whole batches before this one the
	// source left out because every image in them was broken
	// (data.skip_broken), so that the trainer's position in the epoch
	// stays the loader's and a resume starts where it should.
	SkippedBatches int
	// Dropped (Eval) is how many samples since the previous batch, this
	// one's included, were left out as broken; their prediction rows stay
	// zero. A final batch may carry only Dropped, with N 0.
	Dropped int
}

// EpochKey identifies an epoch's randomness: augmentation and mixing draws
// depend only on it and the position in the epoch, so a resumed session
// reproduces the batches it was cut in.
type EpochKey struct {
	Seed   int64
	Stage  int
	Epoch  int // within the stage
	Global int // epochs since the run began; unique over the run
}

// MixConfig is the batch mixing a stage asks for.
type MixConfig struct {
	MixupAlpha, MixupProb   float64
	CutMixAlpha, CutMixProb float64
}

// Source yields a split's batches. The image loader adapter and the
// in-memory sources of tests implement it.
type Source interface {
	// Len is the number of samples.
	Len() int
	// Classes is the number of target columns.
	Classes() int
	// Train yields the batches of one training epoch: samples in order,
	// batchSize at a time (dropping a final short batch), from batch number
	// start on, augmented and mixed with randomness fixed by key.
	Train(ctx context.Context, key EpochKey, order []int, batchSize, start int, mix MixConfig) iter.Seq2[*Batch, error]
	// Eval yields every sample once, in index order, prepared for
	// prediction; variant selects a TTA view (0: plain; the source decides
	// what the others are, up to Views()-1).
	Eval(ctx context.Context, batchSize, variant int) iter.Seq2[*Batch, error]
	// Views is the number of TTA views Eval offers.
	Views() int
}
