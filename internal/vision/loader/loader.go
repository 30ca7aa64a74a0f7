// Package loader turns a list of (image file, target vector) items into
// batches of normalised float32 images in NCHW layout, the layout the
// engine takes, decoding and augmenting on a pool of goroutines.
//
// What a batch holds is a pure function of (seed, epoch, batch number):
// the epoch's order is a permutation drawn from (seed, epoch), and every
// sample's augmentation is drawn from its own generator seeded by (seed,
// stream, epoch, sample index). Worker count, scheduling, prefetch depth and
// caching change nothing, and a run resumed at batch b of an epoch sees
// exactly the batches an uninterrupted run would have.
//
// Memory is bounded: at most Prefetch batches wait ahead of the consumer,
// batch buffers are recycled through Batch.Release, and the decoded-image
// cache holds at most CacheBytes.
package loader

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"imet/internal/vision/augment"
	"imet/internal/vision/imageio"
	"imet/internal/vision/mixup"
	"imet/internal/vision/packed"
	"imet/internal/vision/pipeline"
)

// Item is one sample: an image file and its target vector (multi-hot or
// soft; may be empty for unlabelled prediction data).
type Item struct {
	Path   string
	Target []float32
}

// Options configure a Loader. The zero value of every field but BatchSize
// is usable. The yaml tags let a run configuration embed them.
type Options struct {
	BatchSize int    `yaml:"batch_size" doc:"Samples per batch."`
	Workers   int    `yaml:"workers" doc:"Decoding goroutines; 0 uses every core."`
	Prefetch  int    `yaml:"prefetch" doc:"Batches prepared ahead of the consumer; 0 means 2. Memory grows with it."`
	Seed      uint64 `yaml:"seed" doc:"Seed of the order, the augmentation draws and the batch mixing."`
	Shuffle   bool   `yaml:"shuffle" doc:"A new random order each epoch (training)."`
	DropLast  bool   `yaml:"drop_last" doc:"Drop the final short batch of an epoch."`
	// Stream separates independent random streams over the same items,
	// e.g. the draws of stochastic TTA; NewTTA sets it.
	Stream uint64 `yaml:"-"`
	// KeyOffset and KeyStride say where each item's augmentation draws are
	// keyed: item i draws what item KeyOffset+KeyStride*i of a longer list
	// would (KeyStride 0 means 1). A loader over one rank's share of a
	// data-parallel epoch (every world-th item from the rank's) or over a
	// contiguous part of a split thus augments each image as a loader over
	// the whole list does.
	KeyOffset int `yaml:"-"`
	KeyStride int `yaml:"-"`
	// CacheBytes bounds an in-memory cache of decoded images (0 = none).
	// It fills until full and then stays fixed, which beats LRU on a
	// dataset larger than the cache read in random order.
	CacheBytes int64 `yaml:"cache_bytes" doc:"Memory for a cache of decoded images, in bytes; 0 turns it off."`
	// CacheSide, when positive, downsizes cached images so their short side
	// is at most CacheSide, to fit more of them. Below what the pipeline
	// needs it costs detail, and it changes the samples (not the
	// determinism), so use the same value when comparing runs.
	CacheSide int `yaml:"cache_side" doc:"Cached images are shrunk so their short side is at most this (0 keeps the decoded size)."`
	// SkipBroken drops samples whose image cannot be decoded from their
	// batch (which gets shorter) instead of failing the epoch; each is
	// reported to OnSkip, if set, and listed by Skipped.
	SkipBroken bool                         `yaml:"skip_broken" doc:"Leave broken images out of their batch (and report them) instead of stopping."`
	OnSkip     func(path string, err error) `yaml:"-"`
	// Mix mixes samples within each batch (Mixup/CutMix), targets too.
	Mix mixup.Config `yaml:"mix" doc:"Batch-level Mixup or CutMix."`
	// FullDecode turns off reduced-scale JPEG decoding (see
	// augment.Chain.DecodeHint): slower, bit-for-bit what a full-size
	// decode gives.
	FullDecode bool `yaml:"full_decode" doc:"Decode JPEGs at full size even when the pipeline resizes them much smaller."`
	// Packed, when set, serves the items it holds from a pack of decoded
	// images (see package packed) instead of decoding their files; items
	// it lacks are decoded as usual. Packed images skip reduced-scale JPEG
	// decoding and the cache: a pack stored at full size gives exactly the
	// batches of FullDecode.
	Packed *packed.Reader `yaml:"-"`
}

// Batch is one batch of samples, NCHW.
type Batch struct {
	Images     []float32 // N*C*H*W, normalised as the pipeline says
	N, C, H, W int
	Targets    []float32 // N*L, mixed when Mixup/CutMix applied
	L          int
	Indices    []int // dataset index of each sample (its own content, before mixing)
	Epoch      int
	Number     int // batch number within the epoch
	// Lambda and Partner describe batch mixing: sample i is Lambda parts
	// itself and 1-Lambda parts sample Partner[i]. Lambda is 1 and Partner
	// nil when the batch was not mixed.
	Lambda  float64
	Partner []int

	pool     *pool
	released atomic.Bool
}

// Release hands the batch's buffers back for reuse. The batch must not be
// used afterwards. Calling it is optional (an unreleased batch is garbage
// collected) but saves allocating ~N*C*H*W*4 bytes per batch.
func (b *Batch) Release() {
	if b == nil || b.pool == nil || b.released.Swap(true) {
		return
	}
	b.pool.put(b)
}

// Skip records a sample left out because its image was broken.
type Skip struct {
	Index int
	Path  string
	Err   error
}

// Loader produces batches of a fixed list of items through one chain.
type Loader struct {
	items      []Item
	chain      *augment.Chain
	opt        Options
	w, h, l    int
	hint       imageio.Hint
	pool       *pool
	cache      *cache
	mu         sync.Mutex
	skipped    []Skip
	skippedSet map[int]bool
	// inPack is each item's image in opt.Packed, -1 for one it lacks.
	inPack []int
}

// New checks the items and options and returns a loader. The chain must
// produce a fixed output size (see augment.Chain.FixedSize).
func New(items []Item, chain *augment.Chain, opt Options) (*Loader, error) {
	if opt.BatchSize <= 0 {
		return nil, errors.New("loader: BatchSize must be positive")
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Prefetch <= 0 {
		opt.Prefetch = 2
	}
	if err := opt.Mix.Validate(); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	w, h, ok := chain.FixedSize()
	if !ok {
		return nil, errors.New("loader: the pipeline's output size depends on the input; end it with a fixed-size op")
	}
	l := 0
	if len(items) > 0 {
		l = len(items[0].Target)
	}
	for i, it := range items {
		if len(it.Target) != l {
			return nil, fmt.Errorf("loader: item %d (%s) has %d targets, item 0 has %d", i, it.Path, len(it.Target), l)
		}
	}
	ld := &Loader{items: items, chain: chain, opt: opt, w: w, h: h, l: l, hint: chain.DecodeHint(), skippedSet: map[int]bool{}}
	if opt.FullDecode {
		ld.hint = imageio.Hint{}
	}
	ld.pool = &pool{free: make(chan *Batch, opt.Prefetch+4), n: opt.BatchSize, c: 3, h: h, w: w, l: l}
	if opt.CacheBytes > 0 {
		ld.cache = &cache{limit: opt.CacheBytes, m: map[int]*imageio.Image{}}
	}
	if opt.Packed != nil {
		ld.inPack = make([]int, len(items))
		for i, it := range items {
			if k, ok := opt.Packed.Lookup(it.Path); ok {
				ld.inPack[i] = k
			} else {
				ld.inPack[i] = -1
			}
		}
	}
	return ld, nil
}

// NewTTA returns one loader per TTA variant of p, in p.TTA's order, for
// evaluation: no shuffling, no mixing, each variant on its own random
// stream. Average the model's outputs over the loaders batch by batch:
// batch k of every loader holds the same samples.
func NewTTA(items []Item, p *pipeline.Pipeline, opt Options) ([]*Loader, error) {
	opt.Shuffle = false
	opt.Mix = mixup.Config{}
	var out []*Loader
	for _, v := range p.TTA {
		o := opt
		o.Stream = v.Stream
		l, err := New(items, v.Chain, o)
		if err != nil {
			return nil, fmt.Errorf("TTA variant %s: %w", v.Name, err)
		}
		out = append(out, l)
	}
	if opt.CacheBytes > 0 && len(out) > 1 {
		// Variants decode the same files: share one cache, between
		// variants that decode alike (the same hint).
		for _, l := range out[1:] {
			if l.hint == out[0].hint {
				l.cache = out[0].cache
			}
		}
	}
	return out, nil
}

// Size is the output image size (width, height) of every sample.
func (l *Loader) Size() (w, h int) { return l.w, l.h }

// Len is the number of items.
func (l *Loader) Len() int { return len(l.items) }

// NumBatches is the number of batches in an epoch.
func (l *Loader) NumBatches() int {
	n, b := len(l.items), l.opt.BatchSize
	if l.opt.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// PackedItems is the number of items served from Options.Packed.
func (l *Loader) PackedItems() int {
	n := 0
	for _, k := range l.inPack {
		if k >= 0 {
			n++
		}
	}
	return n
}

// Skipped lists the samples skipped so far as broken, each once.
func (l *Loader) Skipped() []Skip {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Skip(nil), l.skipped...)
}

// mix64 is SplitMix64's finaliser: it spreads structured inputs (small
// epoch and index numbers) over the whole 64-bit space.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Purposes keep the generators of permutations, samples and batch mixing
// apart even when their numeric keys coincide.
const (
	purposeOrder uint64 = iota + 1
	purposeSample
	purposeMix
)

func (l *Loader) rng(purpose uint64, epoch, k int) *rand.Rand {
	a := mix64(mix64(l.opt.Seed) ^ mix64(l.opt.Stream+purpose<<56))
	b := mix64(mix64(uint64(epoch)+1) ^ uint64(k)*0x9e3779b97f4a7c15)
	return rand.New(rand.NewPCG(a, b))
}

// SampleRand returns the generator that draws sample index's augmentation
// in epoch (index counted in the whole list: KeyOffset and KeyStride
// applied): what the loader uses, exposed so that a single sample can be
// reproduced outside a batch (previews, debugging).
func (l *Loader) SampleRand(epoch, index int) *rand.Rand { return l.rng(purposeSample, epoch, index) }

// Order returns the dataset indices of an epoch in batch order.
func (l *Loader) Order(epoch int) []int {
	n := len(l.items)
	if !l.opt.Shuffle {
		o := make([]int, n)
		for i := range o {
			o[i] = i
		}
		return o
	}
	return l.rng(purposeOrder, epoch, 0).Perm(n)
}

type pending struct {
	b         *Batch
	errs      []error
	err       error // from settle
	remaining atomic.Int32
	done      chan struct{}
}

// Epoch returns the batches of an epoch from batch number startBatch on,
// in order. Stop early by breaking out of the loop. An error (a broken
// image without SkipBroken, or ctx cancelled) is yielded once, and ends the
// epoch. With SkipBroken a batch may be short, and one whose samples were
// all broken is not yielded at all (Batch.Number tells which batch is
// which).
//
//	for b, err := range l.Epoch(ctx, epoch, 0) {
//		if err != nil { return err }
//		use(b)
//		b.Release()
//	}
func (l *Loader) Epoch(ctx context.Context, epoch, startBatch int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		nb := l.NumBatches()
		if startBatch >= nb {
			return
		}
		if startBatch < 0 {
			startBatch = 0
		}
		ctx, cancel := context.WithCancel(ctx)
		order := l.Order(epoch)
		queue := make(chan *pending, l.opt.Prefetch)
		type job struct {
			p    *pending
			slot int
		}
		jobs := make(chan job, 2*l.opt.Workers)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()
		for range l.opt.Workers {
			wg.Go(func() {
				var dec imageio.Decoder // this worker's reusable buffers
				for j := range jobs {
					if ctx.Err() != nil {
						j.p.errs[j.slot] = ctx.Err()
						l.finishSlot(j.p)
						continue
					}
					j.p.errs[j.slot] = l.fill(j.p.b, j.slot, epoch, &dec)
					l.finishSlot(j.p)
				}
			})
		}
		wg.Go(func() {
			defer close(jobs)
			defer close(queue)
			bs := l.opt.BatchSize
			for bn := startBatch; bn < nb; bn++ {
				idx := order[bn*bs : min((bn+1)*bs, len(order))]
				b := l.pool.get(len(idx))
				b.Epoch, b.Number = epoch, bn
				copy(b.Indices, idx)
				p := &pending{b: b, errs: make([]error, len(idx)), done: make(chan struct{})}
				p.remaining.Store(int32(len(idx)))
				select {
				case queue <- p:
				case <-ctx.Done():
					return
				}
				for k := range idx {
					select {
					case jobs <- job{p, k}:
					case <-ctx.Done():
						return
					}
				}
			}
		})
		for p := range queue {
			select {
			case <-p.done:
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
			if p.err != nil {
				p.b.Release()
				yield(nil, p.err)
				return
			}
			if p.b.N == 0 { // every sample broken and skipped
				p.b.Release()
				continue
			}
			if !yield(p.b, nil) {
				return
			}
		}
	}
}

// finishSlot counts a slot done; the worker finishing the last slot
// compacts and mixes the batch, off the consumer's goroutine.
func (l *Loader) finishSlot(p *pending) {
	if p.remaining.Add(-1) == 0 {
		p.err = l.settle(p)
		close(p.done)
	}
}

// settle handles broken samples (error or compaction) and batch mixing.
func (l *Loader) settle(p *pending) error {
	b := p.b
	chw := b.C * b.H * b.W
	keep := 0
	for k, err := range p.errs {
		if err != nil {
			if !l.opt.SkipBroken || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			l.reportSkip(b.Indices[k], err)
			continue
		}
		if keep != k {
			copy(b.Images[keep*chw:(keep+1)*chw], b.Images[k*chw:(k+1)*chw])
			copy(b.Targets[keep*b.L:(keep+1)*b.L], b.Targets[k*b.L:(k+1)*b.L])
			b.Indices[keep] = b.Indices[k]
		}
		keep++
	}
	b.N = keep
	b.Images, b.Targets, b.Indices = b.Images[:keep*chw], b.Targets[:keep*b.L], b.Indices[:keep]
	b.Lambda, b.Partner = 1, nil
	if l.opt.Mix.Enabled() {
		r := l.rng(purposeMix, b.Epoch, b.Number)
		var scratch []float32
		b.Lambda, b.Partner, scratch = l.opt.Mix.Apply(r, mixup.Batch{
			Images: b.Images, Targets: b.Targets, N: b.N, C: b.C, H: b.H, W: b.W, L: b.L,
		}, b.pool.scratch())
		b.pool.putScratch(scratch)
	}
	return nil
}

func (l *Loader) reportSkip(idx int, err error) {
	l.mu.Lock()
	first := !l.skippedSet[idx]
	if first {
		l.skippedSet[idx] = true
		l.skipped = append(l.skipped, Skip{Index: idx, Path: l.items[idx].Path, Err: err})
	}
	l.mu.Unlock()
	if first && l.opt.OnSkip != nil {
		l.opt.OnSkip(l.items[idx].Path, err)
	}
}

// fill decodes and augments one sample into its slot.
func (l *Loader) fill(b *Batch, slot, epoch int, dec *imageio.Decoder) error {
	idx := b.Indices[slot]
	it := l.items[idx]
	img, err := l.image(idx, dec)
	if err != nil {
		return err
	}
	chw := 3 * l.w * l.h
	dst := b.Images[slot*chw : (slot+1)*chw]
	stride := l.opt.KeyStride
	if stride == 0 {
		stride = 1
	}
	_, w, h, err := l.chain.Apply(img, l.SampleRand(epoch, l.opt.KeyOffset+stride*idx), dst)
	if err != nil {
		return fmt.Errorf("%s: %w", it.Path, err)
	}
	if w != l.w || h != l.h {
		return fmt.Errorf("%s: pipeline produced %dx%d, want %dx%d", it.Path, w, h, l.w, l.h)
	}
	copy(b.Targets[slot*l.l:(slot+1)*l.l], it.Target)
	return nil
}

// image returns the decoded image of item idx, through the cache. Without
// a cache it decodes into dec's reused buffers.
func (l *Loader) image(idx int, dec *imageio.Decoder) (*imageio.Image, error) {
	if l.inPack != nil && l.inPack[idx] >= 0 {
		return l.opt.Packed.Image(l.inPack[idx])
	}
	if l.cache == nil {
		return dec.Decode(l.items[idx].Path, l.hint)
	}
	if img := l.cache.get(idx); img != nil {
		return img, nil
	}
	img, err := imageio.Decode(l.items[idx].Path, l.hint)
	if err != nil {
		return nil, err
	}
	if l.cache != nil {
		if l.opt.CacheSide > 0 && min(img.W, img.H) > l.opt.CacheSide {
			img = shrink(img, l.opt.CacheSide)
		}
		l.cache.add(idx, img)
	}
	return img, nil
}

// shrink downsizes img so its short side is side.
func shrink(img *imageio.Image, side int) *imageio.Image {
	c := augment.MustChain(&augment.SmallestMaxSize{SizeLimit: augment.SizeLimit{MaxSize: side, P: 1}})
	buf, w, h, err := c.Apply(img, rand.New(rand.NewPCG(0, 0)), nil)
	if err != nil {
		return img
	}
	out := imageio.New(w, h)
	n := w * h
	for i := 0; i < n; i++ {
		for ch := 0; ch < 3; ch++ {
			out.Pix[3*i+ch] = uint8(buf[ch*n+i] + 0.5)
		}
	}
	return out
}

type cache struct {
	mu    sync.RWMutex
	limit int64
	used  int64
	m     map[int]*imageio.Image
}

func (c *cache) get(idx int) *imageio.Image {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[idx]
}

func (c *cache) add(idx int, img *imageio.Image) {
	size := int64(len(img.Pix))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[idx]; ok || c.used+size > c.limit {
		return
	}
	c.m[idx] = img
	c.used += size
}

// pool recycles batch buffers and mixing scratch space.
type pool struct {
	free       chan *Batch
	scratchBuf chan []float32
	n, c, h, w int
	l          int
	once       sync.Once
}

func (p *pool) get(n int) *Batch {
	var b *Batch
	select {
	case b = <-p.free:
	default:
		chw := p.c * p.h * p.w
		b = &Batch{
			Images:  make([]float32, p.n*chw),
			Targets: make([]float32, p.n*p.l),
			Indices: make([]int, p.n),
			pool:    p,
		}
	}
	chw := p.c * p.h * p.w
	b.released.Store(false)
	b.N, b.C, b.H, b.W, b.L = n, p.c, p.h, p.w, p.l
	b.Images = b.Images[:n*chw]
	b.Targets = b.Targets[:n*p.l]
	b.Indices = b.Indices[:n]
	b.Lambda, b.Partner = 1, nil
	return b
}

func (p *pool) put(b *Batch) {
	b.Images, b.Targets, b.Indices = b.Images[:cap(b.Images)], b.Targets[:cap(b.Targets)], b.Indices[:cap(b.Indices)]
	select {
	case p.free <- b:
	default:
	}
}

func (p *pool) init() { p.once.Do(func() { p.scratchBuf = make(chan []float32, 1) }) }

func (p *pool) scratch() []float32 {
	p.init()
	select {
	case s := <-p.scratchBuf:
		return s
	default:
		return nil
	}
}

func (p *pool) putScratch(s []float32) {
	p.init()
	select {
	case p.scratchBuf <- s:
	default:
	}
}
