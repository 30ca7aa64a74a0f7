package augment

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"imet/internal/vision/imageio"
)

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

// dotImage is black with one white pixel at (x, y).
func dotImage(w, h, x, y int) *imageio.Image {
	m := imageio.New(w, h)
	o := 3 * (y*w + x)
	m.Pix[o], m.Pix[o+1], m.Pix[o+2] = 255, 255, 255
	return m
}

// centroid is the brightness-weighted mean position in channel 0, in
// pixel-index coordinates.
func centroid(buf []float32, w, h int) (float64, float64) {
	var sx, sy, s float64
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := float64(buf[y*w+x])
			sx += v * float64(x)
			sy += v * float64(y)
			s += v
		}
	}
	return sx / s, sy / s
}

func TestGeometryKnownPoints(t *testing.T) {
	const W, H = 100, 60
	black := []float64{0}
	tests := []struct {
		name   string
		ops    []Op
		dx, dy int     // the dot in the source
		wantW  int     // output size
		wantH  int     //
		wantX  float64 // expected centroid
		wantY  float64
	}{
		{"hflip", []Op{&HorizontalFlip{P: 1}}, 20, 10, W, H, 79, 10},
		{"vflip", []Op{&VerticalFlip{P: 1}}, 20, 10, W, H, 20, 49},
		{"center crop", []Op{&CenterCrop{CropSize{Height: 40, Width: 50, P: 1}}}, 40, 20, 50, 40, 15, 10},
		// Resize by 2: pixel 40 covers [40, 41) -> [80, 82): centroid 80.5.
		{"resize x2", []Op{&Resize{Height: 120, Width: 200, P: 1}}, 40, 20, 200, 120, 80.5, 40.5},
		{"pad", []Op{&PadIfNeeded{MinHeight: 80, MinWidth: 120, BorderMode: "constant", Value: black, P: 1}}, 40, 20, 120, 80, 50, 30},
		// OpenCV's rotation by +90 degrees about (50, 30): (x, y) ->
		// (y + cx - cy, -x + cx + cy) = (20 + 20, -40 + 80).
		{"rotate 90", []Op{&ShiftScaleRotate{RotateLimit: Range{90, 90}, BorderMode: "constant", Value: black, P: 1}}, 40, 20, W, H, 40, 40},
		// Shift by +0.1 of the size: (40, 20) -> (50, 26).
		{"shift", []Op{&ShiftScaleRotate{ShiftLimit: Range{0.1, 0.1}, BorderMode: "constant", Value: black, P: 1}}, 40, 20, W, H, 50, 26},
		// Scale 2 about the centre (50, 30): (40, 20) -> (30, 10).
		{"scale", []Op{&ShiftScaleRotate{ScaleLimit: Range{1, 1}, BorderMode: "constant", Value: black, P: 1}}, 40, 20, W, H, 30, 10},
		// Composition: crop to 50x40 at (25, 10) -> (15, 10); flip -> (34, 10);
		// resize to 100x80 (x2) -> (68.5, 20.5).
		{"crop+flip+resize", []Op{
			&CenterCrop{CropSize{Height: 40, Width: 50, P: 1}},
			&HorizontalFlip{P: 1},
			&Resize{Height: 80, Width: 100, P: 1},
		}, 40, 20, 100, 80, 68.5, 20.5},
		// A long image is cropped to 2:1 around its centre (Center), then
		// resized x2: 200x50 -> window x in [50, 150) -> the dot at x=100
		// lands at 2*(100.5-50) - 0.5.
		{"crop if needed", []Op{
			&RandomCropIfNeeded{MaxRatio: 2, Center: true, P: 1},
			&Resize{Height: 100, Width: 200, P: 1},
		}, 100, 25, 200, 100, 100.5, 50.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sw, sh := W, H
			if tc.name == "crop if needed" {
				sw, sh = 200, 50
			}
			c, err := NewChain(tc.ops...)
			if err != nil {
				t.Fatal(err)
			}
			buf, w, h, err := c.Apply(dotImage(sw, sh, tc.dx, tc.dy), rng(1), nil)
			if err != nil {
				t.Fatal(err)
			}
			if w != tc.wantW || h != tc.wantH {
				t.Fatalf("output %dx%d, want %dx%d", w, h, tc.wantW, tc.wantH)
			}
			x, y := centroid(buf, w, h)
			if math.Abs(x-tc.wantX) > 0.02 || math.Abs(y-tc.wantY) > 0.02 {
				t.Errorf("dot landed at (%.3f, %.3f), want (%.3f, %.3f)", x, y, tc.wantX, tc.wantY)
			}
		})
	}
}

// TestRandomCropIsAWindow checks that RandomCrop output is an exact window
// of the source, at offsets covering the whole valid range over draws.
func TestRandomCropIsAWindow(t *testing.T) {
	src := imageio.New(9, 7)
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	c := MustChain(&RandomCrop{CropSize{Height: 5, Width: 4, P: 1}})
	seen := map[[2]int]bool{}
	for s := range uint64(300) {
		buf, w, h, err := c.Apply(src, rng(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for y0 := 0; y0+h <= src.H && !found; y0++ {
			for x0 := 0; x0+w <= src.W && !found; x0++ {
				ok := true
				for y := 0; y < h && ok; y++ {
					for x := 0; x < w && ok; x++ {
						for ch := 0; ch < 3; ch++ {
							if buf[ch*w*h+y*w+x] != float32(src.Pix[3*((y0+y)*src.W+x0+x)+ch]) {
								ok = false
							}
						}
					}
				}
				if ok {
					found = true
					seen[[2]int{x0, y0}] = true
				}
			}
		}
		if !found {
			t.Fatalf("seed %d: output is not a window of the source", s)
		}
	}
	if len(seen) != (9-4+1)*(7-5+1) {
		t.Errorf("saw %d distinct offsets, want all %d", len(seen), (9-4+1)*(7-5+1))
	}
}

func TestRandomResizedCropWindow(t *testing.T) {
	o := &RandomResizedCrop{Height: 32, Width: 32}
	o.defaults()
	o.Scale = Range{0.25, 0.5}
	r := rng(3)
	for range 500 {
		x0, y0, cw, ch := o.window(r, 400, 300)
		if x0 < 0 || y0 < 0 || x0+cw > 400 || y0+ch > 300 {
			t.Fatalf("window (%d,%d,%d,%d) outside the image", x0, y0, cw, ch)
		}
		frac := float64(cw*ch) / (400 * 300)
		ratio := float64(cw) / float64(ch)
		// Rounding to whole pixels moves area and ratio slightly.
		if frac < 0.24 || frac > 0.51 || ratio < 0.74 || ratio > 1.35 {
			t.Fatalf("window %dx%d: area fraction %.3f, ratio %.3f outside the ranges", cw, ch, frac, ratio)
		}
	}
}

type golden struct {
	Resize []struct {
		W, H, Ow, Oh int
		Pix          []int
		Want         []float64
	}
	Blur []struct {
		W, H, K   int
		Sigma     float64
		Chw, Want []float64
	}
	HSV []struct {
		RGB   []float64
		Shift []float64
		Want  []float64
	}
	Normalize []struct{ Chw, Want []float64 }
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestResizeMatchesTorch(t *testing.T) {
	for _, tc := range loadGolden(t).Resize {
		src := imageio.New(tc.W, tc.H)
		for i, v := range tc.Pix {
			src.Pix[i] = uint8(v)
		}
		buf, _, _, err := MustChain(&Resize{Height: tc.Oh, Width: tc.Ow, P: 1}).Apply(src, rng(0), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range tc.Want {
			if math.Abs(float64(buf[i])-want) > 1e-3 {
				t.Fatalf("%dx%d -> %dx%d: value %d = %v, torch %v", tc.W, tc.H, tc.Ow, tc.Oh, i, buf[i], want)
			}
		}
	}
}

func TestBlurMatchesTorchvision(t *testing.T) {
	for _, tc := range loadGolden(t).Blur {
		buf := make([]float32, len(tc.Chw))
		for i, v := range tc.Chw {
			buf[i] = float32(v)
		}
		blur(buf, tc.W, tc.H, gaussKernel(tc.K, tc.Sigma))
		for i, want := range tc.Want {
			if math.Abs(float64(buf[i])-want) > 1e-3 {
				t.Fatalf("k=%d sigma=%v: value %d = %v, torchvision %v", tc.K, tc.Sigma, i, buf[i], want)
			}
		}
	}
}

func TestHSVMatchesColorsys(t *testing.T) {
	for _, tc := range loadGolden(t).HSV {
		got := shiftHSV([3]float32{float32(tc.RGB[0]), float32(tc.RGB[1]), float32(tc.RGB[2])},
			[3]float32{float32(tc.Shift[0]), float32(tc.Shift[1]), float32(tc.Shift[2])})
		for c := range 3 {
			if math.Abs(float64(got[c])-tc.Want[c]) > 0.05 {
				t.Fatalf("rgb %v shift %v: got %v, colorsys %v", tc.RGB, tc.Shift, got, tc.Want)
			}
		}
	}
}

func TestNormalizeMatchesTorchvision(t *testing.T) {
	for _, tc := range loadGolden(t).Normalize {
		buf := make([]float32, len(tc.Chw))
		for i, v := range tc.Chw {
			buf[i] = float32(v)
		}
		op, _ := NewOp("Normalize")
		runPixelSteps([]pixelStep{op.(pixelOp).step(nil, 0, 0)}, buf, len(buf)/3)
		for i, want := range tc.Want {
			if math.Abs(float64(buf[i])-want) > 1e-5 {
				t.Fatalf("value %d = %v, torchvision %v", i, buf[i], want)
			}
		}
	}
}

// grey is a uniform image of level v.
func grey(w, h int, v uint8) *imageio.Image {
	m := imageio.New(w, h)
	for i := range m.Pix {
		m.Pix[i] = v
	}
	return m
}

func TestBrightnessContrastStatistics(t *testing.T) {
	// On a uniform image of level 100, the output is 100*alpha + 255*beta
	// with alpha in [0.8, 1.2] and beta in [-0.2, 0.2]: [29, 171].
	op, _ := NewOp("RandomBrightnessContrast")
	op.(*RandomBrightnessContrast).P = 1
	c := MustChain(op)
	src := grey(4, 4, 100)
	lo, hi := 255.0, 0.0
	var sum, sum2 float64
	const n = 4000
	for s := range uint64(n) {
		buf, _, _, err := c.Apply(src, rng(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		v := float64(buf[0])
		lo, hi = min(lo, v), max(hi, v)
		sum += v
		sum2 += v * v
	}
	mean := sum / n
	sd := math.Sqrt(sum2/n - mean*mean)
	if lo < 100*0.8-0.2*255-1e-3 || hi > 100*1.2+0.2*255+1e-3 {
		t.Errorf("range [%.1f, %.1f] outside [29, 171]", lo, hi)
	}
	// Both extremes are reached nearly: the range is used.
	if lo > 40 || hi < 160 {
		t.Errorf("range [%.1f, %.1f] does not cover [29, 171]", lo, hi)
	}
	// E = 100; Var = 100^2 Var(alpha) + 255^2 Var(beta) = (0.4^2/12)(100^2+255^2).
	wantSD := math.Sqrt(0.16 / 12 * (100*100 + 255*255))
	if math.Abs(mean-100) > 1.5 || math.Abs(sd-wantSD) > 1.5 {
		t.Errorf("mean %.2f sd %.2f, want 100 and %.2f", mean, sd, wantSD)
	}
}

func TestProbability(t *testing.T) {
	c := MustChain(&HorizontalFlip{P: 0.3})
	src := dotImage(10, 1, 0, 0)
	flipped := 0
	const n = 5000
	for s := range uint64(n) {
		buf, _, _, _ := c.Apply(src, rng(s), nil)
		if buf[9] > 0 {
			flipped++
		}
	}
	if f := float64(flipped) / n; math.Abs(f-0.3) > 0.03 {
		t.Errorf("applied %.3f of the time, want 0.3", f)
	}
}

func TestGammaAndNoise(t *testing.T) {
	g := MustChain(&RandomGamma{GammaLimit: Range{150, 150}, P: 1})
	buf, _, _, _ := g.Apply(grey(2, 2, 64), rng(0), nil)
	if want := 255 * math.Pow(64.0/255, 1.5); math.Abs(float64(buf[0])-want) > 0.05 {
		t.Errorf("gamma 1.5 of 64 = %v, want %v", buf[0], want)
	}
	nz := MustChain(&GaussNoise{VarLimit: Range{100, 100}, PerChannel: true, P: 1})
	buf, _, _, _ = nz.Apply(grey(100, 100, 128), rng(0), nil)
	var sum, sum2 float64
	for _, v := range buf {
		sum += float64(v)
		sum2 += float64(v) * float64(v)
	}
	n := float64(len(buf))
	mean, sd := sum/n, math.Sqrt(sum2/n-(sum/n)*(sum/n))
	if math.Abs(mean-128) > 0.3 || math.Abs(sd-10) > 0.3 {
		t.Errorf("noise var 100: mean %.2f sd %.2f, want 128 and 10", mean, sd)
	}
}

func TestCoarseDropout(t *testing.T) {
	c := MustChain(&CoarseDropout{MaxHoles: 3, MaxHeight: 4, MaxWidth: 5, FillValue: []float64{7}, P: 1})
	buf, w, h, _ := c.Apply(grey(20, 20, 200), rng(5), nil)
	filled := 0
	for _, v := range buf[:w*h] {
		if v == 7 {
			filled++
		}
	}
	// 3 holes of 4x5, possibly overlapping.
	if filled == 0 || filled > 3*20 {
		t.Errorf("%d pixels dropped, want (0, 60]", filled)
	}
}

func TestDeterminism(t *testing.T) {
	ops := []Op{
		&RandomResizedCrop{Height: 24, Width: 24, Scale: Range{0.3, 1}, Ratio: Range{0.75, 1.33}, P: 1},
		&ShiftScaleRotate{ShiftLimit: Sym(0.1), ScaleLimit: Sym(0.1), RotateLimit: Sym(30), P: 0.7},
		&HorizontalFlip{P: 0.5},
		&RandomBrightnessContrast{BrightnessLimit: Sym(0.2), ContrastLimit: Sym(0.2), BrightnessByMax: true, P: 0.5},
		&HueSaturationValue{HueShiftLimit: Sym(20), SatShiftLimit: Sym(30), ValShiftLimit: Sym(20), P: 0.5},
		&GaussNoise{VarLimit: Range{10, 50}, PerChannel: true, P: 0.5},
		&GaussianBlur{BlurLimit: Range{3, 5}, P: 0.5},
		&CoarseDropout{MaxHoles: 4, MaxHeight: 4, MaxWidth: 4, P: 0.5},
	}
	c := MustChain(append(ops, func() Op { o, _ := NewOp("Normalize"); return o }())...)
	src := imageio.New(50, 40)
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 13)
	}
	a, _, _, _ := c.Apply(src, rng(11), nil)
	b, _, _, _ := c.Apply(src, rng(11), nil)
	d, _, _, _ := c.Apply(src, rng(12), nil)
	same := true
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, value %d differs: %v vs %v", i, a[i], b[i])
		}
		if a[i] != d[i] {
			same = false
		}
	}
	if same {
		t.Error("different seeds gave identical output")
	}
}

func TestFixedSizeAndHint(t *testing.T) {
	c := MustChain(&RandomCropIfNeeded{MaxRatio: 2, P: 1}, &Resize{Height: 320, Width: 320, P: 1}, &HorizontalFlip{P: 0.5})
	if w, h, ok := c.FixedSize(); !ok || w != 320 || h != 320 {
		t.Errorf("FixedSize = %d, %d, %v", w, h, ok)
	}
	if h := c.DecodeHint(); h.MinShort != 320 {
		t.Errorf("DecodeHint = %+v, want MinShort 320", h)
	}
	if _, _, ok := MustChain(&SmallestMaxSize{SizeLimit{MaxSize: 10, P: 1}}).FixedSize(); ok {
		t.Error("SmallestMaxSize has no fixed size")
	}
	if h := MustChain(&Resize{Height: 10, Width: 20, P: 1}).DecodeHint(); h.MinW != 20 || h.MinH != 10 {
		t.Errorf("Resize hint %+v", h)
	}
}

func TestValidation(t *testing.T) {
	bad := []Op{
		&Resize{Height: 0, Width: 5, P: 1},
		&HorizontalFlip{P: 1.5},
		&PadIfNeeded{MinHeight: 5, MinWidth: 5, BorderMode: "wrap", P: 1},
		&RandomResizedCrop{Height: 5, Width: 5, Scale: Range{0, 1}, Ratio: Range{1, 1}, P: 1},
		&Normalize{Mean: []float64{0}, Std: []float64{1, 1, 1}, MaxPixelValue: 255, P: 1},
	}
	for _, op := range bad {
		if _, err := NewChain(op); err == nil {
			t.Errorf("%s %+v accepted", op.Name(), op)
		}
	}
}

func TestMaxSizeAndPad(t *testing.T) {
	src := imageio.New(300, 200)
	for i := range src.Pix {
		src.Pix[i] = uint8(i)
	}
	for _, tc := range []struct {
		op   Op
		w, h int
	}{
		{&LongestMaxSize{SizeLimit{MaxSize: 150, P: 1}}, 150, 100},
		{&LongestMaxSize{SizeLimit{MaxSize: 450, P: 1}}, 450, 300},
		{&SmallestMaxSize{SizeLimit{MaxSize: 100, P: 1}}, 150, 100},
		{&SmallestMaxSize{SizeLimit{MaxSize: 333, P: 1}}, 500, 333}, // 300*1.665 = 499.5 rounds half to even, as Python
		{&PadIfNeeded{MinHeight: 256, MinWidth: 256, P: 1}, 300, 256},
	} {
		_, w, h, err := MustChain(tc.op).Apply(src, rng(0), nil)
		if err != nil {
			t.Fatal(err)
		}
		if w != tc.w || h != tc.h {
			t.Errorf("%s: %dx%d, want %dx%d", tc.op.Name(), w, h, tc.w, tc.h)
		}
	}
}

func TestPadBorderModes(t *testing.T) {
	// A 4x1 row 10,20,30,40 padded to width 10: 3 on the left, 3 right.
	src := imageio.New(4, 1)
	for i := 0; i < 4; i++ {
		src.Pix[3*i] = uint8(10 * (i + 1))
	}
	want := map[string][]float32{
		"reflect101": {40, 30, 20, 10, 20, 30, 40, 30, 20, 10},
		"reflect":    {30, 20, 10, 10, 20, 30, 40, 40, 30, 20},
		"replicate":  {10, 10, 10, 10, 20, 30, 40, 40, 40, 40},
		"constant":   {7, 7, 7, 10, 20, 30, 40, 7, 7, 7},
	}
	for mode, w := range want {
		c := MustChain(&PadIfNeeded{MinHeight: 1, MinWidth: 10, BorderMode: mode, Value: []float64{7}, P: 1})
		buf, _, _, err := c.Apply(src, rng(0), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range w {
			if buf[i] != w[i] {
				t.Errorf("%s: got %v, want %v", mode, buf[:10], w)
				break
			}
		}
	}
}

func TestHueSaturationValueStatistics(t *testing.T) {
	// Value shift only: a grey pixel of 100 moves by the drawn shift, which
	// is uniform in [-20, 20].
	c := MustChain(&HueSaturationValue{HueShiftLimit: Sym(0), SatShiftLimit: Sym(0), ValShiftLimit: Sym(20), P: 1})
	lo, hi, sum := 255.0, 0.0, 0.0
	const n = 3000
	for s := range uint64(n) {
		buf, _, _, _ := c.Apply(grey(2, 2, 100), rng(s), nil)
		v := float64(buf[0])
		lo, hi, sum = min(lo, v), max(hi, v), sum+v
	}
	if lo < 80-1e-3 || hi > 120+1e-3 || lo > 81 || hi < 119 || math.Abs(sum/n-100) > 0.7 {
		t.Errorf("value range [%.2f, %.2f], mean %.2f; want [80, 120], 100", lo, hi, sum/n)
	}
}
