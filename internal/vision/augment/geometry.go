package augment

import (
	"fmt"
	"math"
	"math/rand/v2"

	"imet/internal/vision/imageio"
)

// affine maps a point (x, y) to (A*x + B*y + C, D*x + E*y + F). Coordinates
// are continuous with pixel i covering [i, i+1), so its centre is i+0.5;
// with that convention a resize is a pure scale, as in OpenCV's resize.
type affine struct{ A, B, C, D, E, F float64 }

var identity = affine{A: 1, E: 1}

// Apply maps a point.
func (m affine) apply(x, y float64) (float64, float64) {
	return m.A*x + m.B*y + m.C, m.D*x + m.E*y + m.F
}

// compose returns m∘t: first t, then m.
func (m affine) compose(t affine) affine {
	return affine{
		A: m.A*t.A + m.B*t.D, B: m.A*t.B + m.B*t.E, C: m.A*t.C + m.B*t.F + m.C,
		D: m.D*t.A + m.E*t.D, E: m.D*t.B + m.E*t.E, F: m.D*t.C + m.E*t.F + m.F,
	}
}

func (m affine) invert() affine {
	det := m.A*m.E - m.B*m.D
	a, b, d, e := m.E/det, -m.B/det, -m.D/det, m.A/det
	return affine{A: a, B: b, C: -(a*m.C + b*m.F), D: d, E: e, F: -(d*m.C + e*m.F)}
}

// Border says how pixels outside the source are filled, as OpenCV's
// border modes (albumentations' border_mode).
type Border int

// Border modes.
const (
	BorderReflect101 Border = iota // gfedcb|abcdefgh|gfedcba (OpenCV default)
	BorderConstant                 // filled with the op's value
	BorderReplicate                // aaaaaa|abcdefgh|hhhhhhh
	BorderReflect                  // fedcba|abcdefgh|hgfedcb
)

var borderNames = map[string]Border{
	"reflect101": BorderReflect101, "reflect_101": BorderReflect101,
	"constant": BorderConstant, "replicate": BorderReplicate, "reflect": BorderReflect,
}

func parseBorder(s string) (Border, error) {
	if s == "" {
		return BorderReflect101, nil
	}
	b, ok := borderNames[s]
	if !ok {
		return 0, fmt.Errorf("border_mode %q: want reflect101, constant, replicate or reflect", s)
	}
	return b, nil
}

// geomState is the geometry accumulated so far: the current image size and
// the map from current coordinates to source coordinates. Since there is
// one resampling, one border policy applies to all ops: the last op that
// sets one (PadIfNeeded, ShiftScaleRotate) wins.
type geomState struct {
	w, h   int
	m      affine
	border Border
	fill   [3]float32
}

// then appends a step whose map t takes new coordinates to the previous
// ones, and sets the new size.
func (g *geomState) then(t affine, w, h int) {
	g.m = g.m.compose(t)
	g.w, g.h = w, h
}

// Map returns where the centre of output pixel (x, y) samples the source,
// in pixel-index coordinates (pixel i's centre at i). Exposed for tests.
func (g *geomState) sourceOf(x, y int) (float64, float64) {
	sx, sy := g.m.apply(float64(x)+0.5, float64(y)+0.5)
	return sx - 0.5, sy - 0.5
}

func borderIndex(i, n int, b Border) int {
	if i >= 0 && i < n {
		return i
	}
	switch b {
	case BorderReplicate:
		if i < 0 {
			return 0
		}
		return n - 1
	case BorderReflect:
		if n == 1 {
			return 0
		}
		p := 2 * n
		i = ((i % p) + p) % p
		if i >= n {
			i = p - 1 - i
		}
		return i
	case BorderReflect101:
		if n == 1 {
			return 0
		}
		p := 2 * (n - 1)
		i = ((i % p) + p) % p
		if i >= n {
			i = p - i
		}
		return i
	}
	return -1 // constant
}

// resample fills dst (3 planes) by bilinear interpolation of src through g,
// calling rowDone (if not nil) on each output row as soon as it is written,
// while it is still in cache: that is where the colour pass runs.
func resample(src *imageio.Image, g *geomState, dst []float32, rowDone func(y int)) {
	w, h := g.w, g.h
	plane := w * h
	sw, sh := src.W, src.H
	pix := src.Pix
	if g.m.B == 0 && g.m.D == 0 {
		resampleSeparable(src, g, dst, rowDone)
		return
	}
	for y := 0; y < h; y++ {
		if rowDone != nil && y > 0 {
			rowDone(y - 1)
		}
		sx0, sy0 := g.sourceOf(0, y)
		for x := 0; x < w; x++ {
			sx := sx0 + g.m.A*float64(x)
			sy := sy0 + g.m.D*float64(x)
			fx, fy := math.Floor(sx), math.Floor(sy)
			x0, y0 := int(fx), int(fy)
			ax, ay := float32(sx-fx), float32(sy-fy)
			o := y*w + x
			if x0 >= 0 && y0 >= 0 && x0+1 < sw && y0+1 < sh {
				i00 := 3 * (y0*sw + x0)
				i01 := i00 + 3
				i10 := i00 + 3*sw
				i11 := i10 + 3
				for c := 0; c < 3; c++ {
					top := float32(pix[i00+c]) + ax*(float32(pix[i01+c])-float32(pix[i00+c]))
					bot := float32(pix[i10+c]) + ax*(float32(pix[i11+c])-float32(pix[i10+c]))
					dst[c*plane+o] = top + ay*(bot-top)
				}
				continue
			}
			var acc [3]float32
			for k := 0; k < 4; k++ {
				xi, yi := x0+(k&1), y0+(k>>1)
				wt := (1 - ax)
				if k&1 == 1 {
					wt = ax
				}
				if k>>1 == 1 {
					wt *= ay
				} else {
					wt *= 1 - ay
				}
				bx, by := borderIndex(xi, sw, g.border), borderIndex(yi, sh, g.border)
				for c := 0; c < 3; c++ {
					v := g.fill[c]
					if bx >= 0 && by >= 0 {
						v = float32(pix[3*(by*sw+bx)+c])
					}
					acc[c] += wt * v
				}
			}
			for c := 0; c < 3; c++ {
				dst[c*plane+o] = acc[c]
			}
		}
	}
	if rowDone != nil && h > 0 {
		rowDone(h - 1)
	}
}

// resampleSeparable handles maps without rotation or shear (every pipeline
// without ShiftScaleRotate): x taps are computed once per column, each
// source row is interpolated horizontally once (into planar rows) however
// many output rows use it, and output rows blend two such rows.
func resampleSeparable(src *imageio.Image, g *geomState, dst []float32, rowDone func(y int)) {
	w, h := g.w, g.h
	plane := w * h
	sw, sh := src.W, src.H
	pix := src.Pix
	type tap struct {
		i0, i1 int // byte offsets of the two source columns; -1 = fill
		a      float32
	}
	xt := make([]tap, w)
	anyFill := false
	for x := range xt {
		sx := g.m.A*(float64(x)+0.5) + g.m.C - 0.5
		f := math.Floor(sx)
		x0 := int(f)
		b0, b1 := borderIndex(x0, sw, g.border), borderIndex(x0+1, sw, g.border)
		t := tap{i0: -1, i1: -1, a: float32(sx - f)}
		if b0 >= 0 {
			t.i0 = 3 * b0
		}
		if b1 >= 0 {
			t.i1 = 3 * b1
		}
		anyFill = anyFill || b0 < 0 || b1 < 0
		xt[x] = t
	}
	// Two planar row buffers (R, G, B rows of w values each).
	rows := make([]float32, 6*w)
	row0, row1 := rows[:3*w], rows[3*w:]
	hrow := func(row []float32, by int) {
		rr, rg, rb := row[:w], row[w:2*w], row[2*w:3*w]
		if by < 0 {
			for x := range rr {
				rr[x], rg[x], rb[x] = g.fill[0], g.fill[1], g.fill[2]
			}
			return
		}
		line := pix[3*by*sw : 3*(by+1)*sw]
		if !anyFill {
			rg, rb = rg[:len(rr)], rb[:len(rr)]
			xs := xt[:len(rr)]
			for x := range xs {
				i0, i1, a := xs[x].i0, xs[x].i1, xs[x].a
				p0 := line[i0 : i0+3 : i0+3]
				p1 := line[i1 : i1+3 : i1+3]
				r0, g0, b0 := float32(p0[0]), float32(p0[1]), float32(p0[2])
				rr[x] = r0 + a*(float32(p1[0])-r0)
				rg[x] = g0 + a*(float32(p1[1])-g0)
				rb[x] = b0 + a*(float32(p1[2])-b0)
			}
			return
		}
		for x, t := range xt {
			var p0, p1 [3]float32
			if t.i0 >= 0 {
				p0 = [3]float32{float32(line[t.i0]), float32(line[t.i0+1]), float32(line[t.i0+2])}
			} else {
				p0 = g.fill
			}
			if t.i1 >= 0 {
				p1 = [3]float32{float32(line[t.i1]), float32(line[t.i1+1]), float32(line[t.i1+2])}
			} else {
				p1 = g.fill
			}
			rr[x] = p0[0] + t.a*(p1[0]-p0[0])
			rg[x] = p0[1] + t.a*(p1[1]-p0[1])
			rb[x] = p0[2] + t.a*(p1[2]-p0[2])
		}
	}
	last0, last1 := math.MinInt, math.MinInt
	for y := 0; y < h; y++ {
		sy := g.m.E*(float64(y)+0.5) + g.m.F - 0.5
		f := math.Floor(sy)
		y0 := int(f)
		a := float32(sy - f)
		b0, b1 := borderIndex(y0, sh, g.border), borderIndex(y0+1, sh, g.border)
		// Consecutive output rows mostly share source rows: reuse them.
		switch {
		case b0 == last0 && b1 == last1:
		case b0 == last1:
			row0, row1 = row1, row0
			hrow(row1, b1)
		default:
			hrow(row0, b0)
			hrow(row1, b1)
		}
		last0, last1 = b0, b1
		o := y * w
		for c := 0; c < 3; c++ {
			d := dst[c*plane+o : c*plane+o+w]
			u := row0[c*w : c*w+len(d)]
			v := row1[c*w : c*w+len(d)]
			if a == 0 {
				copy(d, u)
				continue
			}
			for x := range d {
				d[x] = u[x] + a*(v[x]-u[x])
			}
		}
		if rowDone != nil {
			rowDone(y)
		}
	}
}

// Resize scales the image to Height x Width (aspect ratio not kept).
type Resize struct {
	Height int     `yaml:"height" doc:"Output height in pixels."`
	Width  int     `yaml:"width" doc:"Output width in pixels."`
	P      float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *Resize) Name() string { return "Resize" }

// Prob implements Op.
func (o *Resize) Prob() float64            { return o.P }
func (o *Resize) defaults()                { o.P = 1 }
func (o *Resize) size(int, int) (int, int) { return o.Width, o.Height }
func (o *Resize) fixed() (int, int, bool)  { return o.Width, o.Height, true }
func (o *Resize) hint() (imageio.Hint, bool) {
	return imageio.Hint{MinW: o.Width, MinH: o.Height}, o.P >= 1
}
func (o *Resize) validate() error {
	if o.Height <= 0 || o.Width <= 0 {
		return fmt.Errorf("height and width must be positive, got %dx%d", o.Width, o.Height)
	}
	return checkP(o.P)
}
func (o *Resize) geom(g *geomState, _ *rand.Rand) error {
	g.then(affine{A: float64(g.w) / float64(o.Width), E: float64(g.h) / float64(o.Height)}, o.Width, o.Height)
	return nil
}

func roundEven(x float64) int { return int(math.RoundToEven(x)) }

// SizeLimit holds the parameters of LongestMaxSize and SmallestMaxSize.
type SizeLimit struct {
	MaxSize int     `yaml:"max_size" doc:"Target length of the longest (LongestMaxSize) or shortest (SmallestMaxSize) side."`
	P       float64 `yaml:"p" doc:"Probability of applying the op."`
}

func (o *SizeLimit) validate() error {
	if o.MaxSize <= 0 {
		return fmt.Errorf("max_size must be positive, got %d", o.MaxSize)
	}
	return checkP(o.P)
}

func (o *SizeLimit) scaled(w, h int, longest bool) (int, int) {
	side := min(w, h)
	if longest {
		side = max(w, h)
	}
	s := float64(o.MaxSize) / float64(side)
	return max(1, roundEven(float64(w)*s)), max(1, roundEven(float64(h)*s))
}

// LongestMaxSize scales the image, keeping its aspect ratio, so that its
// longest side is MaxSize.
type LongestMaxSize struct {
	SizeLimit `yaml:",inline"`
}

// Name implements Op.
func (o *LongestMaxSize) Name() string { return "LongestMaxSize" }

// Prob implements Op.
func (o *LongestMaxSize) Prob() float64            { return o.P }
func (o *LongestMaxSize) defaults()                { o.MaxSize, o.P = 1024, 1 }
func (o *LongestMaxSize) size(w, h int) (int, int) { return o.scaled(w, h, true) }
func (o *LongestMaxSize) geom(g *geomState, _ *rand.Rand) error {
	nw, nh := o.size(g.w, g.h)
	g.then(affine{A: float64(g.w) / float64(nw), E: float64(g.h) / float64(nh)}, nw, nh)
	return nil
}

// SmallestMaxSize scales the image, keeping its aspect ratio, so that its
// shortest side is MaxSize.
type SmallestMaxSize struct {
	SizeLimit `yaml:",inline"`
}

// Name implements Op.
func (o *SmallestMaxSize) Name() string { return "SmallestMaxSize" }

// Prob implements Op.
func (o *SmallestMaxSize) Prob() float64            { return o.P }
func (o *SmallestMaxSize) defaults()                { o.MaxSize, o.P = 1024, 1 }
func (o *SmallestMaxSize) size(w, h int) (int, int) { return o.scaled(w, h, false) }
func (o *SmallestMaxSize) hint() (imageio.Hint, bool) {
	return imageio.Hint{MinShort: o.MaxSize}, o.P >= 1
}
func (o *SmallestMaxSize) geom(g *geomState, _ *rand.Rand) error {
	nw, nh := o.size(g.w, g.h)
	g.then(affine{A: float64(g.w) / float64(nw), E: float64(g.h) / float64(nh)}, nw, nh)
	return nil
}

// PadIfNeeded pads the image to at least MinHeight x MinWidth, centred.
type PadIfNeeded struct {
	MinHeight  int       `yaml:"min_height" doc:"Minimum output height."`
	MinWidth   int       `yaml:"min_width" doc:"Minimum output width."`
	BorderMode string    `yaml:"border_mode" doc:"How the padding is filled: reflect101 (default), constant, replicate, reflect."`
	Value      []float64 `yaml:"value" doc:"Fill colour for border_mode constant, on the 0..255 scale: one value or three (R, G, B)."`
	P          float64   `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *PadIfNeeded) Name() string { return "PadIfNeeded" }

// Prob implements Op.
func (o *PadIfNeeded) Prob() float64            { return o.P }
func (o *PadIfNeeded) defaults()                { o.MinHeight, o.MinWidth, o.P = 1024, 1024, 1 }
func (o *PadIfNeeded) size(w, h int) (int, int) { return max(w, o.MinWidth), max(h, o.MinHeight) }
func (o *PadIfNeeded) validate() error {
	if _, err := parseBorder(o.BorderMode); err != nil {
		return err
	}
	if _, err := fillColour(o.Value); err != nil {
		return err
	}
	return checkP(o.P)
}
func (o *PadIfNeeded) geom(g *geomState, _ *rand.Rand) error {
	nw, nh := o.size(g.w, g.h)
	left, top := (nw-g.w)/2, (nh-g.h)/2
	g.then(affine{A: 1, C: -float64(left), E: 1, F: -float64(top)}, nw, nh)
	g.border, _ = parseBorder(o.BorderMode)
	g.fill, _ = fillColour(o.Value)
	return nil
}

func fillColour(v []float64) ([3]float32, error) {
	switch len(v) {
	case 0:
		return [3]float32{}, nil
	case 1:
		return [3]float32{float32(v[0]), float32(v[0]), float32(v[0])}, nil
	case 3:
		return [3]float32{float32(v[0]), float32(v[1]), float32(v[2])}, nil
	}
	return [3]float32{}, fmt.Errorf("value needs 1 or 3 numbers, got %d", len(v))
}

func crop(g *geomState, x0, y0, cw, ch int) {
	g.then(affine{A: 1, C: float64(x0), E: 1, F: float64(y0)}, cw, ch)
}

// CropSize holds the parameters of RandomCrop and CenterCrop.
type CropSize struct {
	Height int     `yaml:"height" doc:"Crop height in pixels."`
	Width  int     `yaml:"width" doc:"Crop width in pixels."`
	P      float64 `yaml:"p" doc:"Probability of applying the op."`
}

func (o *CropSize) validate() error {
	if o.Height <= 0 || o.Width <= 0 {
		return fmt.Errorf("height and width must be positive, got %dx%d", o.Width, o.Height)
	}
	return checkP(o.P)
}
func (o *CropSize) size(int, int) (int, int) { return o.Width, o.Height }
func (o *CropSize) fixed() (int, int, bool)  { return o.Width, o.Height, true }
func (o *CropSize) fits(g *geomState) error {
	if o.Width > g.w || o.Height > g.h {
		return fmt.Errorf("crop %dx%d is larger than the image (add PadIfNeeded before it)", o.Width, o.Height)
	}
	return nil
}

// RandomCrop cuts a Height x Width window at a uniformly random position.
type RandomCrop struct {
	CropSize `yaml:",inline"`
}

// Name implements Op.
func (o *RandomCrop) Name() string { return "RandomCrop" }

// Prob implements Op.
func (o *RandomCrop) Prob() float64 { return o.P }
func (o *RandomCrop) defaults()     { o.P = 1 }
func (o *RandomCrop) geom(g *geomState, r *rand.Rand) error {
	if err := o.fits(g); err != nil {
		return err
	}
	hs, ws := r.Float64(), r.Float64()
	crop(g, int(float64(g.w-o.Width+1)*ws), int(float64(g.h-o.Height+1)*hs), o.Width, o.Height)
	return nil
}

// CenterCrop cuts the central Height x Width window.
type CenterCrop struct {
	CropSize `yaml:",inline"`
}

// Name implements Op.
func (o *CenterCrop) Name() string { return "CenterCrop" }

// Prob implements Op.
func (o *CenterCrop) Prob() float64 { return o.P }
func (o *CenterCrop) defaults()     { o.P = 1 }
func (o *CenterCrop) geom(g *geomState, _ *rand.Rand) error {
	if err := o.fits(g); err != nil {
		return err
	}
	crop(g, (g.w-o.Width)/2, (g.h-o.Height)/2, o.Width, o.Height)
	return nil
}

// RandomResizedCrop cuts a window of random area (Scale, a fraction of the
// image) and aspect ratio (Ratio, width/height, drawn log-uniformly) and
// resizes it to Height x Width: torchvision's and albumentations' algorithm,
// ten tries then a central fallback.
type RandomResizedCrop struct {
	Height int     `yaml:"height" doc:"Output height in pixels."`
	Width  int     `yaml:"width" doc:"Output width in pixels."`
	Scale  Range   `yaml:"scale" doc:"Range of the crop's area as a fraction of the image's, [lo, hi]."`
	Ratio  Range   `yaml:"ratio" doc:"Range of the crop's aspect ratio (width/height), [lo, hi]."`
	P      float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *RandomResizedCrop) Name() string { return "RandomResizedCrop" }

// Prob implements Op.
func (o *RandomResizedCrop) Prob() float64 { return o.P }
func (o *RandomResizedCrop) defaults() {
	o.Scale, o.Ratio, o.P = Range{0.08, 1}, Range{3.0 / 4, 4.0 / 3}, 1
}
func (o *RandomResizedCrop) size(int, int) (int, int) { return o.Width, o.Height }
func (o *RandomResizedCrop) fixed() (int, int, bool)  { return o.Width, o.Height, true }
func (o *RandomResizedCrop) validate() error {
	if o.Height <= 0 || o.Width <= 0 {
		return fmt.Errorf("height and width must be positive, got %dx%d", o.Width, o.Height)
	}
	if !o.Scale.valid() || o.Scale.Lo <= 0 || o.Scale.Hi > 1 {
		return fmt.Errorf("scale %v: want 0 < lo <= hi <= 1", o.Scale)
	}
	if !o.Ratio.valid() || o.Ratio.Lo <= 0 {
		return fmt.Errorf("ratio %v: want 0 < lo <= hi", o.Ratio)
	}
	return checkP(o.P)
}

// window draws the crop (x0, y0, cw, ch) for a w x h image.
func (o *RandomResizedCrop) window(r *rand.Rand, w, h int) (int, int, int, int) {
	area := float64(w * h)
	lr := Range{math.Log(o.Ratio.Lo), math.Log(o.Ratio.Hi)}
	for range 10 {
		target := area * o.Scale.draw(r)
		aspect := math.Exp(lr.draw(r))
		cw := roundEven(math.Sqrt(target * aspect))
		ch := roundEven(math.Sqrt(target / aspect))
		if cw > 0 && ch > 0 && cw <= w && ch <= h {
			y0 := r.IntN(h - ch + 1)
			x0 := r.IntN(w - cw + 1)
			return x0, y0, cw, ch
		}
	}
	in := float64(w) / float64(h)
	cw, ch := w, h
	if in < o.Ratio.Lo {
		ch = roundEven(float64(cw) / o.Ratio.Lo)
	} else if in > o.Ratio.Hi {
		cw = roundEven(float64(ch) * o.Ratio.Hi)
	}
	return (w - cw) / 2, (h - ch) / 2, cw, ch
}

func (o *RandomResizedCrop) geom(g *geomState, r *rand.Rand) error {
	x0, y0, cw, ch := o.window(r, g.w, g.h)
	crop(g, x0, y0, cw, ch)
	g.then(affine{A: float64(cw) / float64(o.Width), E: float64(ch) / float64(o.Height)}, o.Width, o.Height)
	return nil
}

// RandomCropIfNeeded crops only images whose aspect ratio (long side over
// short side) exceeds MaxRatio, cutting the long side down to
// MaxRatio * short side at a random position (or the centre, with Center).
// Images closer to square are left whole. This is the iMet 2019 1st-place
// preprocessing: squashing a very long scroll to a square destroys it,
// while a mild squash of an ordinary photo keeps everything in view.
type RandomCropIfNeeded struct {
	MaxRatio float64 `yaml:"max_ratio" doc:"Largest long/short side ratio kept whole; longer images are cropped to it."`
	Center   bool    `yaml:"center" doc:"Crop the centre instead of a random position (for evaluation)."`
	P        float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *RandomCropIfNeeded) Name() string { return "RandomCropIfNeeded" }

// Prob implements Op.
func (o *RandomCropIfNeeded) Prob() float64 { return o.P }
func (o *RandomCropIfNeeded) defaults()     { o.MaxRatio, o.P = 2, 1 }
func (o *RandomCropIfNeeded) size(w, h int) (int, int) {
	x := o.box(nil, w, h)
	return x[2], x[3]
}
func (o *RandomCropIfNeeded) validate() error {
	if !(o.MaxRatio >= 1) {
		return fmt.Errorf("max_ratio %v: want >= 1", o.MaxRatio)
	}
	return checkP(o.P)
}

// hint: the crop keeps the short side, so a following Resize needs it at
// least as large as the larger output side; the chain's hint logic asks
// the next op, so this op passes.
func (o *RandomCropIfNeeded) box(r *rand.Rand, w, h int) [4]int {
	if w >= h {
		lim := int(math.Floor(float64(h) * o.MaxRatio))
		if w <= lim {
			return [4]int{0, 0, w, h}
		}
		x0 := (w - lim) / 2
		if r != nil && !o.Center {
			x0 = r.IntN(w - lim + 1)
		}
		return [4]int{x0, 0, lim, h}
	}
	lim := int(math.Floor(float64(w) * o.MaxRatio))
	if h <= lim {
		return [4]int{0, 0, w, h}
	}
	y0 := (h - lim) / 2
	if r != nil && !o.Center {
		y0 = r.IntN(h - lim + 1)
	}
	return [4]int{0, y0, w, lim}
}

func (o *RandomCropIfNeeded) geom(g *geomState, r *rand.Rand) error {
	b := o.box(r, g.w, g.h)
	crop(g, b[0], b[1], b[2], b[3])
	return nil
}

// HorizontalFlip mirrors the image left-right.
type HorizontalFlip struct {
	P float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *HorizontalFlip) Name() string { return "HorizontalFlip" }

// Prob implements Op.
func (o *HorizontalFlip) Prob() float64   { return o.P }
func (o *HorizontalFlip) defaults()       { o.P = 0.5 }
func (o *HorizontalFlip) validate() error { return checkP(o.P) }
func (o *HorizontalFlip) geom(g *geomState, _ *rand.Rand) error {
	g.then(affine{A: -1, C: float64(g.w), E: 1}, g.w, g.h)
	return nil
}

// VerticalFlip mirrors the image top-bottom.
type VerticalFlip struct {
	P float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *VerticalFlip) Name() string { return "VerticalFlip" }

// Prob implements Op.
func (o *VerticalFlip) Prob() float64   { return o.P }
func (o *VerticalFlip) defaults()       { o.P = 0.5 }
func (o *VerticalFlip) validate() error { return checkP(o.P) }
func (o *VerticalFlip) geom(g *geomState, _ *rand.Rand) error {
	g.then(affine{A: 1, E: -1, F: float64(g.h)}, g.w, g.h)
	return nil
}

// ShiftScaleRotate shifts (by a fraction of the size), scales and rotates
// (degrees, counter-clockwise as displayed) about the image centre, as
// OpenCV's getRotationMatrix2D plus a shift; the size is kept.
type ShiftScaleRotate struct {
	ShiftLimit  Range     `yaml:"shift_limit" doc:"Shift as a fraction of width/height; x means [-x, x]."`
	ScaleLimit  Range     `yaml:"scale_limit" doc:"Scale change; x means [-x, x], the scale factor is 1 + the draw."`
	RotateLimit Range     `yaml:"rotate_limit" doc:"Rotation in degrees; x means [-x, x]."`
	BorderMode  string    `yaml:"border_mode" doc:"How uncovered areas are filled: reflect101 (default), constant, replicate, reflect."`
	Value       []float64 `yaml:"value" doc:"Fill colour for border_mode constant, 0..255 scale: one value or three."`
	P           float64   `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *ShiftScaleRotate) Name() string { return "ShiftScaleRotate" }

// Prob implements Op.
func (o *ShiftScaleRotate) Prob() float64 { return o.P }
func (o *ShiftScaleRotate) defaults() {
	o.ShiftLimit, o.ScaleLimit, o.RotateLimit, o.P = Sym(0.0625), Sym(0.1), Sym(45), 0.5
}
func (o *ShiftScaleRotate) validate() error {
	for _, rg := range []Range{o.ShiftLimit, o.ScaleLimit, o.RotateLimit} {
		if !rg.valid() {
			return fmt.Errorf("range %v: want lo <= hi", rg)
		}
	}
	if o.ScaleLimit.Lo <= -1 {
		return fmt.Errorf("scale_limit %v would scale by <= 0", o.ScaleLimit)
	}
	if _, err := parseBorder(o.BorderMode); err != nil {
		return err
	}
	if _, err := fillColour(o.Value); err != nil {
		return err
	}
	return checkP(o.P)
}

// forward is OpenCV's matrix in pixel-index coordinates, mapping input to
// output.
func ssrForward(w, h int, angle, scale, dx, dy float64) affine {
	rad := angle * math.Pi / 180
	a, b := scale*math.Cos(rad), scale*math.Sin(rad)
	cx, cy := float64(w)/2, float64(h)/2
	return affine{
		A: a, B: b, C: (1-a)*cx - b*cy + dx*float64(w),
		D: -b, E: a, F: b*cx + (1-a)*cy + dy*float64(h),
	}
}

func (o *ShiftScaleRotate) geom(g *geomState, r *rand.Rand) error {
	angle := o.RotateLimit.draw(r)
	scale := 1 + o.ScaleLimit.draw(r)
	dx, dy := o.ShiftLimit.draw(r), o.ShiftLimit.draw(r)
	fwd := ssrForward(g.w, g.h, angle, scale, dx, dy)
	// To continuous coordinates: p_c = p_i + 0.5 on both sides.
	half := affine{A: 1, C: 0.5, E: 1, F: 0.5}
	unhalf := affine{A: 1, C: -0.5, E: 1, F: -0.5}
	fwdC := half.compose(fwd).compose(unhalf)
	g.then(fwdC.invert(), g.w, g.h)
	g.border, _ = parseBorder(o.BorderMode)
	g.fill, _ = fillColour(o.Value)
	return nil
}
