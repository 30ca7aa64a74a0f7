package augment

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// GaussianBlur blurs with an odd square kernel whose size is drawn from
// BlurLimit and sigma from SigmaLimit (0 = derived from the size as OpenCV
// does: 0.3*((k-1)/2 - 1) + 0.8). Borders reflect (OpenCV's default).
type GaussianBlur struct {
	BlurLimit  Range   `yaml:"blur_limit" doc:"Kernel size range [lo, hi]; sizes are odd, even draws are rounded up."`
	SigmaLimit Range   `yaml:"sigma_limit" doc:"Sigma range [lo, hi]; 0 derives sigma from the kernel size."`
	P          float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *GaussianBlur) Name() string { return "GaussianBlur" }

// Prob implements Op.
func (o *GaussianBlur) Prob() float64 { return o.P }
func (o *GaussianBlur) defaults()     { o.BlurLimit, o.P = Range{3, 7}, 0.5 }
func (o *GaussianBlur) validate() error {
	if !o.BlurLimit.valid() || o.BlurLimit.Lo < 0 || o.BlurLimit.Hi > 99 {
		return fmt.Errorf("blur_limit %v: want 0 <= lo <= hi <= 99", o.BlurLimit)
	}
	if !o.SigmaLimit.valid() || o.SigmaLimit.Lo < 0 {
		return fmt.Errorf("sigma_limit %v: want 0 <= lo <= hi", o.SigmaLimit)
	}
	return checkP(o.P)
}

func (o *GaussianBlur) plane(r *rand.Rand, buf []float32, w, h int) {
	lo, hi := int(o.BlurLimit.Lo), int(o.BlurLimit.Hi)
	var ks []int
	for k := lo; k <= hi; k++ {
		if k%2 == 1 {
			ks = append(ks, k)
		}
	}
	k := 3
	if len(ks) > 0 {
		k = ks[r.IntN(len(ks))]
	}
	sigma := o.SigmaLimit.draw(r)
	if sigma <= 0 {
		sigma = 0.3*(float64(k-1)*0.5-1) + 0.8
	}
	blur(buf, w, h, gaussKernel(k, sigma))
}

func gaussKernel(k int, sigma float64) []float32 {
	ker := make([]float32, k)
	var sum float64
	c := k / 2
	for i := range ker {
		d := float64(i - c)
		v := math.Exp(-d * d / (2 * sigma * sigma))
		ker[i] = float32(v)
		sum += v
	}
	for i := range ker {
		ker[i] /= float32(sum)
	}
	return ker
}

// blur convolves each plane separably with ker, reflect-101 borders.
func blur(buf []float32, w, h int, ker []float32) {
	c := len(ker) / 2
	n := w * h
	tmp := make([]float32, n)
	for p := 0; p < 3; p++ {
		pl := buf[p*n : (p+1)*n]
		for y := 0; y < h; y++ {
			row := pl[y*w : (y+1)*w]
			out := tmp[y*w : (y+1)*w]
			for x := 0; x < w; x++ {
				var acc float32
				for i, kv := range ker {
					acc += kv * row[borderIndex(x+i-c, w, BorderReflect101)]
				}
				out[x] = acc
			}
		}
		for x := 0; x < w; x++ {
			for y := 0; y < h; y++ {
				var acc float32
				for i, kv := range ker {
					acc += kv * tmp[borderIndex(y+i-c, h, BorderReflect101)*w+x]
				}
				pl[y*w+x] = acc
			}
		}
	}
}

// CoarseDropout (cutout, random erasing) fills between MinHoles and
// MaxHoles rectangles of random size with FillValue.
type CoarseDropout struct {
	MaxHoles  int       `yaml:"max_holes" doc:"Largest number of holes."`
	MaxHeight int       `yaml:"max_height" doc:"Largest hole height in pixels."`
	MaxWidth  int       `yaml:"max_width" doc:"Largest hole width in pixels."`
	MinHoles  int       `yaml:"min_holes" doc:"Smallest number of holes (0 = max_holes)."`
	MinHeight int       `yaml:"min_height" doc:"Smallest hole height (0 = max_height)."`
	MinWidth  int       `yaml:"min_width" doc:"Smallest hole width (0 = max_width)."`
	FillValue []float64 `yaml:"fill_value" doc:"Fill colour in the buffer's current scale (0..255 before Normalize): one value or three."`
	P         float64   `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *CoarseDropout) Name() string { return "CoarseDropout" }

// Prob implements Op.
func (o *CoarseDropout) Prob() float64 { return o.P }
func (o *CoarseDropout) defaults()     { o.MaxHoles, o.MaxHeight, o.MaxWidth, o.P = 8, 8, 8, 0.5 }
func (o *CoarseDropout) bounds() (h0, h1, y0, y1, x0, x1 int) {
	h0, y0, x0 = o.MinHoles, o.MinHeight, o.MinWidth
	if h0 == 0 {
		h0 = o.MaxHoles
	}
	if y0 == 0 {
		y0 = o.MaxHeight
	}
	if x0 == 0 {
		x0 = o.MaxWidth
	}
	return h0, o.MaxHoles, y0, o.MaxHeight, x0, o.MaxWidth
}
func (o *CoarseDropout) validate() error {
	h0, h1, y0, y1, x0, x1 := o.bounds()
	if h1 <= 0 || y1 <= 0 || x1 <= 0 || h0 > h1 || y0 > y1 || x0 > x1 || h0 < 0 || y0 < 0 || x0 < 0 {
		return fmt.Errorf("want 0 < min <= max for holes, height and width")
	}
	if _, err := fillColour(o.FillValue); err != nil {
		return err
	}
	return checkP(o.P)
}

func (o *CoarseDropout) plane(r *rand.Rand, buf []float32, w, h int) {
	h0, h1, y0, y1, x0, x1 := o.bounds()
	fill, _ := fillColour(o.FillValue)
	n := h0 + r.IntN(h1-h0+1)
	for range n {
		hh := min(h, y0+r.IntN(y1-y0+1))
		ww := min(w, x0+r.IntN(x1-x0+1))
		top := r.IntN(h - hh + 1)
		left := r.IntN(w - ww + 1)
		for p := 0; p < 3; p++ {
			pl := buf[p*w*h : (p+1)*w*h]
			for y := top; y < top+hh; y++ {
				row := pl[y*w+left : y*w+left+ww]
				for i := range row {
					row[i] = fill[p]
				}
			}
		}
	}
}
