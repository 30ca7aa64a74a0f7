package augment

import (
	"fmt"
	"math"
	"math/rand/v2"
)

type stepKind uint8

const (
	stepLinear stepKind = iota // x*a + b per channel, clipped to 0..255
	stepHSV
	stepGamma
	stepNoise
	stepNormalize
)

// pixelStep is one drawn colour/noise op, ready to run per pixel. Steps are
// plain data, not closures, so the fused loop can switch over them without
// an indirect call per pixel.
type pixelStep struct {
	kind  stepKind
	a, b  [3]float32 // linear: scale and offset; normalize: 1/std and -mean/std
	hsv   [3]float32 // hue shift (degrees), saturation and value shifts (0..255)
	lut   []float32  // gamma: 0..255 sampled at lutStep
	sigma float32
	rng   *rand.Rand
	clip  bool
	perCh bool
}

const lutN = 1024

func clip255(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return v
}

// chunk is how many pixels the fused pass processes at a time: small
// enough that the three planes' slices stay in L1 while every step runs
// over them as a tight loop, so the buffer is read and written once.
const chunk = 512

// runPixelSteps applies steps to every pixel of the planar buffer in one
// pass (chunk by chunk).
func runPixelSteps(steps []pixelStep, buf []float32, n int) {
	runPixelRange(steps, buf, n, 0, n)
}

// runPixelRange applies steps to pixels [from, to) of a planar buffer of n
// pixels per plane.
func runPixelRange(steps []pixelStep, buf []float32, n, from, to int) {
	for i0 := from; i0 < to; i0 += chunk {
		i1 := min(i0+chunk, to)
		pl := [3][]float32{buf[i0:i1], buf[n+i0 : n+i1], buf[2*n+i0 : 2*n+i1]}
		for k := range steps {
			s := &steps[k]
			switch s.kind {
			case stepLinear, stepNormalize:
				for c := 0; c < 3; c++ {
					a, b, p := s.a[c], s.b[c], pl[c]
					if s.clip {
						for i, v := range p {
							p[i] = clip255(v*a + b)
						}
					} else {
						for i, v := range p {
							p[i] = v*a + b
						}
					}
				}
			case stepGamma:
				lut := s.lut[:lutN]
				for c := 0; c < 3; c++ {
					p := pl[c]
					for i, v := range p {
						x := clip255(v) * (lutN - 1) / 255
						k0 := int(x)
						if k0 >= lutN-1 {
							p[i] = lut[lutN-1]
							continue
						}
						f := x - float32(k0)
						p[i] = lut[k0] + f*(lut[k0+1]-lut[k0])
					}
				}
			case stepHSV:
				r, g, b := pl[0], pl[1][:len(pl[0])], pl[2][:len(pl[0])]
				for i := range r {
					c := shiftHSV([3]float32{r[i], g[i], b[i]}, s.hsv)
					r[i], g[i], b[i] = c[0], c[1], c[2]
				}
			case stepNoise:
				if s.perCh {
					for c := 0; c < 3; c++ {
						p, m := pl[c], s.b[c]
						for i, v := range p {
							p[i] = clip255(v + m + s.sigma*float32(s.rng.NormFloat64()))
						}
					}
				} else {
					r, g, b := pl[0], pl[1][:len(pl[0])], pl[2][:len(pl[0])]
					for i := range r {
						z := s.b[0] + s.sigma*float32(s.rng.NormFloat64())
						r[i], g[i], b[i] = clip255(r[i]+z), clip255(g[i]+z), clip255(b[i]+z)
					}
				}
			}
		}
	}
}

// shiftHSV works in OpenCV's 8-bit HSV convention, the one albumentations
// uses for uint8 images: hue in [0, 180) (so a hue shift of 1 is 2
// degrees), saturation and value in 0..255; hue wraps, the others clip.
func shiftHSV(c [3]float32, d [3]float32) [3]float32 {
	r, g, b := c[0], c[1], c[2]
	mx := max(r, g, b)
	mn := min(r, g, b)
	v := mx
	var s, h float32
	if mx > 0 {
		s = (mx - mn) / mx * 255
	}
	if mx > mn {
		delta := mx - mn
		switch mx {
		case r:
			h = 60 * (g - b) / delta
		case g:
			h = 120 + 60*(b-r)/delta
		default:
			h = 240 + 60*(r-g)/delta
		}
	}
	h += 2 * d[0]
	for h < 0 {
		h += 360
	}
	for h >= 360 {
		h -= 360
	}
	s = clip255(s + d[1])
	v = clip255(v + d[2])
	// Back to RGB.
	cc := v * s / 255
	hp := h / 60
	sector := int(hp)
	f := hp - float32(sector)
	if sector&1 == 1 {
		f = 1 - f
	}
	x := cc * f
	m := v - cc
	var rr, gg, bb float32
	switch sector {
	case 0:
		rr, gg, bb = cc, x, 0
	case 1:
		rr, gg, bb = x, cc, 0
	case 2:
		rr, gg, bb = 0, cc, x
	case 3:
		rr, gg, bb = 0, x, cc
	case 4:
		rr, gg, bb = x, 0, cc
	default:
		rr, gg, bb = cc, 0, x
	}
	return [3]float32{rr + m, gg + m, bb + m}
}

// RandomBrightnessContrast scales pixels by 1+contrast and adds
// brightness*255 (BrightnessByMax) or brightness times the image mean.
type RandomBrightnessContrast struct {
	BrightnessLimit Range   `yaml:"brightness_limit" doc:"Brightness shift as a fraction of 255 (or of the mean); x means [-x, x]."`
	ContrastLimit   Range   `yaml:"contrast_limit" doc:"Contrast change; x means [-x, x], the gain is 1 + the draw."`
	BrightnessByMax bool    `yaml:"brightness_by_max" doc:"Shift by a fraction of 255 (true) or of the image's mean (false)."`
	P               float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *RandomBrightnessContrast) Name() string { return "RandomBrightnessContrast" }

// Prob implements Op.
func (o *RandomBrightnessContrast) Prob() float64 { return o.P }
func (o *RandomBrightnessContrast) defaults() {
	o.BrightnessLimit, o.ContrastLimit, o.BrightnessByMax, o.P = Sym(0.2), Sym(0.2), true, 0.5
}
func (o *RandomBrightnessContrast) validate() error {
	if !o.BrightnessLimit.valid() || !o.ContrastLimit.valid() {
		return fmt.Errorf("limits must have lo <= hi")
	}
	return checkP(o.P)
}
func (o *RandomBrightnessContrast) step(r *rand.Rand, w, h int) pixelStep {
	alpha := float32(1 + o.ContrastLimit.draw(r))
	beta := float32(o.BrightnessLimit.draw(r))
	return pixelStep{kind: stepLinear, a: [3]float32{alpha, alpha, alpha}, b: [3]float32{beta * 255, beta * 255, beta * 255}, clip: true}
}

// plane serves BrightnessByMax = false, where the shift depends on the
// image's mean and so cannot be fused into the per-pixel pass.
func (o *RandomBrightnessContrast) plane(r *rand.Rand, buf []float32, w, h int) {
	s := o.step(r, w, h)
	var sum float64
	for _, v := range buf {
		sum += float64(v)
	}
	mean := float32(sum / float64(len(buf)))
	beta := s.b[0] / 255 * mean
	s.b = [3]float32{beta, beta, beta}
	runPixelSteps([]pixelStep{s}, buf, w*h)
}

// HueSaturationValue shifts hue, saturation and value (OpenCV 8-bit HSV
// units: hue 0..180, the others 0..255).
type HueSaturationValue struct {
	HueShiftLimit Range   `yaml:"hue_shift_limit" doc:"Hue shift in OpenCV units (1 = 2 degrees); x means [-x, x]."`
	SatShiftLimit Range   `yaml:"sat_shift_limit" doc:"Saturation shift on 0..255; x means [-x, x]."`
	ValShiftLimit Range   `yaml:"val_shift_limit" doc:"Value shift on 0..255; x means [-x, x]."`
	P             float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *HueSaturationValue) Name() string { return "HueSaturationValue" }

// Prob implements Op.
func (o *HueSaturationValue) Prob() float64 { return o.P }
func (o *HueSaturationValue) defaults() {
	o.HueShiftLimit, o.SatShiftLimit, o.ValShiftLimit, o.P = Sym(20), Sym(30), Sym(20), 0.5
}
func (o *HueSaturationValue) validate() error {
	if !o.HueShiftLimit.valid() || !o.SatShiftLimit.valid() || !o.ValShiftLimit.valid() {
		return fmt.Errorf("limits must have lo <= hi")
	}
	return checkP(o.P)
}
func (o *HueSaturationValue) step(r *rand.Rand, _, _ int) pixelStep {
	return pixelStep{kind: stepHSV, hsv: [3]float32{
		float32(o.HueShiftLimit.draw(r)), float32(o.SatShiftLimit.draw(r)), float32(o.ValShiftLimit.draw(r))}}
}

// RandomGamma applies 255*(x/255)^gamma with gamma = draw/100.
type RandomGamma struct {
	GammaLimit Range   `yaml:"gamma_limit" doc:"Gamma range times 100, [lo, hi] (e.g. [80, 120])."`
	P          float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *RandomGamma) Name() string { return "RandomGamma" }

// Prob implements Op.
func (o *RandomGamma) Prob() float64 { return o.P }
func (o *RandomGamma) defaults()     { o.GammaLimit, o.P = Range{80, 120}, 0.5 }
func (o *RandomGamma) validate() error {
	if !o.GammaLimit.valid() || o.GammaLimit.Lo <= 0 {
		return fmt.Errorf("gamma_limit %v: want 0 < lo <= hi", o.GammaLimit)
	}
	return checkP(o.P)
}
func (o *RandomGamma) step(r *rand.Rand, _, _ int) pixelStep {
	g := o.GammaLimit.draw(r) / 100
	lut := make([]float32, lutN)
	for i := range lut {
		lut[i] = float32(255 * math.Pow(float64(i)/(lutN-1), g))
	}
	return pixelStep{kind: stepGamma, lut: lut}
}

// GaussNoise adds zero-mean Gaussian noise whose variance is drawn from
// VarLimit (0..255 scale), independently per channel when PerChannel.
type GaussNoise struct {
	VarLimit   Range   `yaml:"var_limit" doc:"Noise variance range on the 0..255 scale, [lo, hi]."`
	Mean       float64 `yaml:"mean" doc:"Noise mean on the 0..255 scale."`
	PerChannel bool    `yaml:"per_channel" doc:"Independent noise per channel (true) or the same for all three."`
	P          float64 `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *GaussNoise) Name() string { return "GaussNoise" }

// Prob implements Op.
func (o *GaussNoise) Prob() float64 { return o.P }
func (o *GaussNoise) defaults()     { o.VarLimit, o.PerChannel, o.P = Range{10, 50}, true, 0.5 }
func (o *GaussNoise) validate() error {
	if !o.VarLimit.valid() || o.VarLimit.Lo < 0 {
		return fmt.Errorf("var_limit %v: want 0 <= lo <= hi", o.VarLimit)
	}
	return checkP(o.P)
}
func (o *GaussNoise) step(r *rand.Rand, _, _ int) pixelStep {
	sigma := float32(math.Sqrt(o.VarLimit.draw(r)))
	// The noise stream is its own generator seeded from the sample's, so
	// the noise is reproducible and independent of later draws.
	nr := rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
	m := float32(o.Mean)
	return pixelStep{kind: stepNoise, sigma: sigma, rng: nr, perCh: o.PerChannel, b: [3]float32{m, m, m}}
}

// Normalize maps x to (x - mean*MaxPixelValue) / (std*MaxPixelValue).
// Defaults are the ImageNet statistics pretrained backbones expect.
type Normalize struct {
	Mean          []float64 `yaml:"mean" doc:"Per-channel mean (R, G, B) on the 0..1 scale."`
	Std           []float64 `yaml:"std" doc:"Per-channel standard deviation (R, G, B) on the 0..1 scale."`
	MaxPixelValue float64   `yaml:"max_pixel_value" doc:"The value mean and std are scaled by (255 for 8-bit images)."`
	P             float64   `yaml:"p" doc:"Probability of applying the op."`
}

// Name implements Op.
func (o *Normalize) Name() string { return "Normalize" }

// Prob implements Op.
func (o *Normalize) Prob() float64 { return o.P }
func (o *Normalize) defaults() {
	o.Mean, o.Std, o.MaxPixelValue, o.P = []float64{0.485, 0.456, 0.406}, []float64{0.229, 0.224, 0.225}, 255, 1
}
func (o *Normalize) validate() error {
	if len(o.Mean) != 3 || len(o.Std) != 3 {
		return fmt.Errorf("mean and std need 3 values each (R, G, B)")
	}
	for _, s := range o.Std {
		if !(s > 0) {
			return fmt.Errorf("std values must be positive, got %v", o.Std)
		}
	}
	if !(o.MaxPixelValue > 0) {
		return fmt.Errorf("max_pixel_value must be positive")
	}
	return checkP(o.P)
}
func (o *Normalize) step(_ *rand.Rand, _, _ int) pixelStep {
	var s pixelStep
	s.kind = stepNormalize
	for c := 0; c < 3; c++ {
		inv := 1 / (o.Std[c] * o.MaxPixelValue)
		s.a[c] = float32(inv)
		s.b[c] = float32(-o.Mean[c] * o.MaxPixelValue * inv)
	}
	return s
}
