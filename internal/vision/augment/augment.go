// Package augment implements image augmentations with the names, parameters
// and defaults albumentations (1.x) users know, applied the way a fast CPU
// loader needs them:
//
//   - every geometric op (resize, crop, pad, flip, shift-scale-rotate)
//     contributes to ONE affine map from output to source pixels, so the
//     source is resampled once (bilinear), straight into the float32 planar
//     (CHW) output, however many geometric ops there are;
//   - colour and noise ops (brightness/contrast, HSV, gamma, Gaussian noise,
//     Normalize) run fused, on each output row as soon as the resampling has
//     written it; ops that need neighbours (GaussianBlur) or regions
//     (CoarseDropout) get their own pass where they appear in the list, and
//     colour ops after them one more fused pass.
//
// Geometric ops therefore take effect before all others whatever their place
// in the list; among themselves, and among the others, list order holds.
// Each op has a probability P of being applied, drawn first, as in
// albumentations. All randomness comes from the *rand.Rand passed to Apply,
// so a sample's draw is fixed by how the caller seeds it.
//
// Pixel values are on the 0..255 scale until Normalize, which maps them as
// albumentations does: (x - mean*255) / (std*255).
package augment

import (
	"fmt"
	"math"
	"math/rand/v2"

	"imet/internal/vision/imageio"
)

// Op is one augmentation. The concrete types in this package are the only
// implementations; build them directly or from YAML with ParseSpecs.
type Op interface {
	// Name is the albumentations class name, e.g. "HorizontalFlip".
	Name() string
	// Prob is the probability of the op being applied to a sample.
	Prob() float64
	validate() error
}

// geomOp contributes to the affine map.
type geomOp interface {
	Op
	geom(g *geomState, r *rand.Rand) error
}

// pixelOp is a per-pixel colour/noise transform, fused into one pass.
type pixelOp interface {
	Op
	step(r *rand.Rand, w, h int) pixelStep
}

// planeOp needs the whole image (neighbourhoods, regions).
type planeOp interface {
	Op
	plane(r *rand.Rand, buf []float32, w, h int)
}

// Chain is a compiled, validated list of ops: an augmentation pipeline.
// It is safe for concurrent use; all per-sample state lives in Apply.
type Chain struct {
	ops []Op
}

// NewChain validates ops and returns the chain applying them.
func NewChain(ops ...Op) (*Chain, error) {
	for i, op := range ops {
		if op == nil {
			// A YAML list entry written as `~` or left empty decodes to no op at all.
			return nil, fmt.Errorf("augment: op %d is empty (write `{op: Name, ...}`)", i+1)
		}
		if err := op.validate(); err != nil {
			return nil, fmt.Errorf("augment: op %d (%s): %w", i+1, op.Name(), err)
		}
		switch op.(type) {
		case geomOp, pixelOp, planeOp:
		default:
			return nil, fmt.Errorf("augment: op %d (%s) is not supported", i+1, op.Name())
		}
	}
	return &Chain{ops: append([]Op(nil), ops...)}, nil
}

// MustChain is NewChain for op lists known to be valid (built-in pipelines).
func MustChain(ops ...Op) *Chain {
	c, err := NewChain(ops...)
	if err != nil {
		panic(err)
	}
	return c
}

// Ops returns the chain's ops, in order.
func (c *Chain) Ops() []Op { return append([]Op(nil), c.ops...) }

// With returns a new chain with extra ops appended (e.g. a forced flip for
// a TTA variant).
func (c *Chain) With(ops ...Op) (*Chain, error) {
	return NewChain(append(c.Ops(), ops...)...)
}

// OutputSize is the size of the chain's output for a w x h input, ignoring
// the ops' probabilities (the size a sample gets when every op applies).
// Loaders use FixedSize instead.
func (c *Chain) OutputSize(w, h int) (int, int) {
	g := geomState{w: w, h: h, m: identity}
	for _, op := range c.ops {
		if gop, ok := op.(geomOp); ok {
			if s, ok := gop.(sizer); ok {
				g.w, g.h = s.size(g.w, g.h)
			}
		}
	}
	return g.w, g.h
}

// sizer is implemented by geometric ops that change the image size.
type sizer interface{ size(w, h int) (int, int) }

// FixedSize reports the output size when it does not depend on the input:
// the last size-changing op sets an absolute size and is always applied.
// Batching needs this.
func (c *Chain) FixedSize() (w, h int, ok bool) {
	for i := len(c.ops) - 1; i >= 0; i-- {
		s, isSizer := c.ops[i].(sizer)
		if !isSizer {
			continue
		}
		if f, abs := c.ops[i].(interface{ fixed() (int, int, bool) }); abs {
			fw, fh, ok := f.fixed()
			if ok && c.ops[i].Prob() >= 1 {
				return fw, fh, true
			}
		}
		_ = s
		return 0, 0, false
	}
	return 0, 0, false
}

// DecodeSlack is the Slack of the hints Chain.DecodeHint gives: a JPEG may
// be decoded at a reduced DCT scale up to 10% smaller than the resize
// target (see imageio.Hint).
const DecodeSlack = 0.1

// DecodeHint tells the decoder how small a JPEG may be decoded without
// losing detail the chain keeps: when the first geometric op resizes to a
// known size, decoding at a reduced DCT scale close to that size skips
// much of the decoding and resampling work.
func (c *Chain) DecodeHint() imageio.Hint {
	h := c.decodeHint()
	if !h.Zero() {
		h.Slack = DecodeSlack
	}
	return h
}

func (c *Chain) decodeHint() imageio.Hint {
	pending := false
	for _, op := range c.ops {
		gop, ok := op.(geomOp)
		if !ok {
			continue
		}
		if cn, ok := gop.(*RandomCropIfNeeded); ok && cn.P >= 1 {
			// The crop keeps the short side, so a Resize after it needs the
			// short side at least as long as its larger output side.
			pending = true
			continue
		}
		if h, ok := gop.(interface{ hint() (imageio.Hint, bool) }); ok {
			if pending {
				if rs, ok := gop.(*Resize); ok && rs.P >= 1 {
					return imageio.Hint{MinShort: max(rs.Width, rs.Height)}
				}
				return imageio.Hint{}
			}
			if hint, ok := h.hint(); ok {
				return hint
			}
			continue
		}
		return imageio.Hint{}
	}
	return imageio.Hint{}
}

// Apply augments src into dst, planar float32 (3 planes of w*h values, the
// CHW layout of one sample in an NCHW batch), and returns the output size.
// dst must hold 3*w*h values for the size the chain produces; pass nil to
// have Apply allocate. r supplies all randomness.
func (c *Chain) Apply(src *imageio.Image, r *rand.Rand, dst []float32) ([]float32, int, int, error) {
	// Edges replicate unless an op sets a border mode: that is what OpenCV's
	// resize (and so albumentations' Resize and crops) does.
	g := geomState{w: src.W, h: src.H, m: identity, border: BorderReplicate}
	var rest []Op
	for _, op := range c.ops {
		gop, ok := op.(geomOp)
		if !ok {
			rest = append(rest, op)
			continue
		}
		if r.Float64() >= op.Prob() {
			continue
		}
		if err := gop.geom(&g, r); err != nil {
			return nil, 0, 0, fmt.Errorf("%s on %dx%d image: %w", op.Name(), g.w, g.h, err)
		}
	}
	w, h := g.w, g.h
	n := 3 * w * h
	if dst == nil {
		dst = make([]float32, n)
	}
	if len(dst) < n {
		return nil, 0, 0, fmt.Errorf("augment: output buffer holds %d values, need %d (%dx%d)", len(dst), n, w, h)
	}
	dst = dst[:n]

	// The leading run of per-pixel ops is drawn now and applied row by row
	// inside the resampling, while each row is in cache; the rest follow
	// in order. The draws happen in list order either way.
	var steps []pixelStep
	k := 0
	for ; k < len(rest); k++ {
		op := rest[k]
		pop, ok := op.(pixelOp)
		if bc, isBC := op.(*RandomBrightnessContrast); !ok || (isBC && !bc.BrightnessByMax) {
			break
		}
		if r.Float64() >= op.Prob() {
			continue
		}
		steps = append(steps, pop.step(r, w, h))
	}
	var rowDone func(int)
	if len(steps) > 0 {
		first := steps
		rowDone = func(y int) { runPixelRange(first, dst, w*h, y*w, (y+1)*w) }
	}
	resample(src, &g, dst, rowDone)

	steps = nil
	flush := func() {
		if len(steps) > 0 {
			runPixelSteps(steps, dst, w*h)
			steps = steps[:0]
		}
	}
	for _, op := range rest[k:] {
		if r.Float64() >= op.Prob() {
			continue
		}
		if bc, ok := op.(*RandomBrightnessContrast); ok && !bc.BrightnessByMax {
			flush()
			bc.plane(r, dst, w, h)
			continue
		}
		switch o := op.(type) {
		case pixelOp:
			steps = append(steps, o.step(r, w, h))
		case planeOp:
			flush()
			o.plane(r, dst, w, h)
		}
	}
	flush()
	return dst, w, h, nil
}

// Range is a closed interval [Lo, Hi] from which a parameter is drawn. In
// YAML it is written as a pair `[lo, hi]` or as one number x, which means
// [-x, x] for signed limits (albumentations' convention); see each field.
type Range struct{ Lo, Hi float64 }

// Sym is the symmetric range [-x, x].
func Sym(x float64) Range { return Range{-math.Abs(x), math.Abs(x)} }

func (rg Range) draw(r *rand.Rand) float64 { return rg.Lo + (rg.Hi-rg.Lo)*r.Float64() }

func (rg Range) valid() bool { return rg.Lo <= rg.Hi && !math.IsNaN(rg.Lo) && !math.IsNaN(rg.Hi) }

// UnmarshalYAML accepts `x` (meaning [-x, x]) or `[lo, hi]`.
func (rg *Range) UnmarshalYAML(unmarshal func(any) error) error {
	var pair []float64
	if err := unmarshal(&pair); err == nil {
		if len(pair) != 2 {
			return fmt.Errorf("a range needs 2 numbers [lo, hi], got %d", len(pair))
		}
		*rg = Range{pair[0], pair[1]}
		return nil
	}
	var x float64
	if err := unmarshal(&x); err != nil {
		return fmt.Errorf("a range is a number x (meaning [-x, x]) or a pair [lo, hi]")
	}
	*rg = Sym(x)
	return nil
}

// MarshalYAML writes the pair form.
func (rg Range) MarshalYAML() (any, error) { return []float64{rg.Lo, rg.Hi}, nil }

func checkP(p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("p = %v, want a probability in [0, 1]", p)
	}
	return nil
}
