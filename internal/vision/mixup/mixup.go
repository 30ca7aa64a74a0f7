// Package mixup mixes samples within a batch, images and targets alike:
// Mixup (a convex blend of two images) and CutMix (a rectangle of one
// pasted into the other, targets weighted by area). On noisy multi-label
// data both act as label smoothing that follows the image content.
package mixup

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Config selects the batch-level mixing.
type Config struct {
	Mode  string  `yaml:"mode" doc:"none, mixup or cutmix."`
	Alpha float64 `yaml:"alpha" doc:"Beta(alpha, alpha) parameter of the mixing weight; 0.2-0.4 for mixup, 1 for cutmix are usual."`
	P     float64 `yaml:"p" doc:"Probability that a batch is mixed."`
}

// Enabled reports whether c mixes anything.
func (c Config) Enabled() bool { return c.Mode != "" && c.Mode != "none" && c.P > 0 }

// Validate checks the parameters.
func (c Config) Validate() error {
	switch c.Mode {
	case "", "none":
		return nil
	case "mixup", "cutmix":
	default:
		return fmt.Errorf("mixup mode %q: want none, mixup or cutmix", c.Mode)
	}
	if !(c.Alpha > 0) {
		return fmt.Errorf("mixup alpha must be positive, got %v", c.Alpha)
	}
	if !(c.P >= 0 && c.P <= 1) {
		return fmt.Errorf("mixup p = %v, want [0, 1]", c.P)
	}
	return nil
}

// Batch is the view of a batch the mixers need: NCHW images, N*L targets.
type Batch struct {
	Images     []float32
	Targets    []float32
	N, C, H, W int
	L          int
}

// Apply mixes b in place with randomness from r and returns the weight of
// each sample's own content (1 when the batch was left alone) and the
// partner permutation (nil when left alone). scratch, if long enough, is
// used instead of allocating a copy of the batch.
func (c Config) Apply(r *rand.Rand, b Batch, scratch []float32) (lambda float64, perm []int, _ []float32) {
	if !c.Enabled() || b.N < 2 || r.Float64() >= c.P {
		return 1, nil, scratch
	}
	lam := Beta(r, c.Alpha, c.Alpha)
	perm = r.Perm(b.N)
	n := len(b.Images)
	if cap(scratch) < n {
		scratch = make([]float32, n)
	}
	scratch = scratch[:n]
	copy(scratch, b.Images)
	chw := b.C * b.H * b.W
	switch c.Mode {
	case "mixup":
		l, m := float32(lam), float32(1-lam)
		for i := 0; i < b.N; i++ {
			dst := b.Images[i*chw : (i+1)*chw]
			a := scratch[i*chw : (i+1)*chw]
			o := scratch[perm[i]*chw : (perm[i]+1)*chw]
			for k := range dst {
				dst[k] = l*a[k] + m*o[k]
			}
		}
	case "cutmix":
		x0, y0, x1, y1 := cutBox(r, b.W, b.H, lam)
		for i := 0; i < b.N; i++ {
			for ch := 0; ch < b.C; ch++ {
				base := i*chw + ch*b.H*b.W
				obase := perm[i]*chw + ch*b.H*b.W
				for y := y0; y < y1; y++ {
					copy(b.Images[base+y*b.W+x0:base+y*b.W+x1], scratch[obase+y*b.W+x0:obase+y*b.W+x1])
				}
			}
		}
		// The weight is the area actually kept, after clipping the box.
		lam = 1 - float64((x1-x0)*(y1-y0))/float64(b.W*b.H)
	}
	if b.L > 0 {
		t := make([]float32, len(b.Targets))
		copy(t, b.Targets)
		l, m := float32(lam), float32(1-lam)
		for i := 0; i < b.N; i++ {
			for k := 0; k < b.L; k++ {
				b.Targets[i*b.L+k] = l*t[i*b.L+k] + m*t[perm[i]*b.L+k]
			}
		}
	}
	return lam, perm, scratch
}

// cutBox draws the CutMix rectangle: area fraction 1-lam, uniform centre,
// clipped to the image (Yun et al. 2019).
func cutBox(r *rand.Rand, w, h int, lam float64) (x0, y0, x1, y1 int) {
	rat := math.Sqrt(1 - lam)
	cw, ch := int(float64(w)*rat), int(float64(h)*rat)
	cx, cy := r.IntN(w), r.IntN(h)
	x0, x1 = max(cx-cw/2, 0), min(cx+cw/2, w)
	y0, y1 = max(cy-ch/2, 0), min(cy+ch/2, h)
	return
}

// Beta draws from the Beta(a, b) distribution.
func Beta(r *rand.Rand, a, b float64) float64 {
	x := gamma(r, a)
	y := gamma(r, b)
	if x+y == 0 { // both underflowed (tiny alpha): either extreme is fair
		return 0.5
	}
	return x / (x + y)
}

// gamma draws from Gamma(k, 1) by Marsaglia and Tsang's method.
func gamma(r *rand.Rand, k float64) float64 {
	if k < 1 {
		// Boost: Gamma(k) = Gamma(k+1) * U^(1/k).
		return gamma(r, k+1) * math.Pow(r.Float64(), 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
