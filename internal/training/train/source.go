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
	// Offset and Stride place the order a source is given in the epoch's
	// whole order: its sample i sits at position Offset+Stride*i (Stride 0
	// means 1). A data-parallel rank gets every world-th sample from its
	// rank on, and a source that keys its draws by position (as the image
	// loader does) then augments each image as a single process would.
	Offset, Stride int
}

// Position is where sample i of the order a source was given sits in the
// epoch's whole order.
func (k EpochKey) Position(i int) int {
	if k.Stride == 0 {
		return k.Offset + i
	}
	return k.Offset + k.Stride*i
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

// Sharder is a Source that can hand out a contiguous part of itself:
// Shard(lo, hi) holds samples lo..hi-1, numbered from 0, prepared exactly
// as they are in the whole source. A data-parallel run predicts a split
// with each rank on its part; a source that cannot shard is predicted
// whole by every rank.
type Sharder interface {
	Shard(lo, hi int) Source
}
