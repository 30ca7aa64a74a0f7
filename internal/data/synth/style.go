package synth

import (
	"image/color"
	"math"
)

// A style is what the single-valued culture:: group encodes: a palette, a
// background texture and a frame. Images of one style vary in hue, texture
// scale and phase, so telling styles apart takes more than one pixel.
type style struct {
	name    string
	hue     float64 // degrees
	texture int     // index into the texture kinds below
	frame   int     // 0 none, 1 thin, 2 thick, 3 double
}

const (
	texSolidGrain = iota
	texHStripes
	texVStripes
	texChecker
	texDiagonal
	texPolka
	texGradient
	texRadial
	texWaves
	texGrid
	texCrosshatch
	texSpeckle
)

// styles is the fixed list of culture styles, most frequent first.
var styles = []style{
	{"aurelian", 45, texGradient, 2},
	{"boreal", 200, texHStripes, 1},
	{"coralline", 10, texPolka, 0},
	{"delftware", 220, texChecker, 3},
	{"emberline", 25, texSpeckle, 1},
	{"fjordic", 185, texWaves, 2},
	{"gilded", 55, texDiagonal, 3},
	{"hennaic", 330, texCrosshatch, 0},
	{"indigene", 255, texVStripes, 2},
	{"jadeite", 140, texGrid, 1},
	{"kilnic", 15, texSolidGrain, 3},
	{"lunaric", 280, texRadial, 0},
}

// MaxCultures is the most culture styles a data set can have.
var MaxCultures = len(styles)

// hsv converts hue (degrees), saturation and value in [0, 1] to RGB.
func hsv(h, s, v float64) color.NRGBA {
	h = math.Mod(h+360, 360) / 60
	c := v * s
	x := c * (1 - math.Abs(math.Mod(h, 2)-1))
	var r, g, b float64
	switch int(h) {
	case 0:
		r, g, b = c, x, 0
	case 1:
		r, g, b = x, c, 0
	case 2:
		r, g, b = 0, c, x
	case 3:
		r, g, b = 0, x, c
	case 4:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	m := v - c
	to8 := func(f float64) uint8 { return uint8(math.Round(255 * math.Min(1, math.Max(0, f+m)))) }
	return color.NRGBA{to8(r), to8(g), to8(b), 255}
}

// palette is a style's colours for one image: two light background tones,
// a frame colour and three dark, saturated inks for motifs, so motifs
// always stand out from the background.
type palette struct {
	bg1, bg2, frame color.NRGBA
	ink             [3]color.NRGBA
}

func (s style) palette(jitter float64) palette {
	h := s.hue + jitter
	return palette{
		bg1:   hsv(h, 0.18, 0.95),
		bg2:   hsv(h+12, 0.38, 0.82),
		frame: hsv(h+180, 0.55, 0.45),
		ink:   [3]color.NRGBA{hsv(h+150, 0.8, 0.55), hsv(h+210, 0.75, 0.4), hsv(h, 0.6, 0.22)},
	}
}

// texture returns the background blend in [0, 1] (0 = bg1, 1 = bg2) at
// pixel (x, y) of a w x h image; period and phase vary per image.
func texture(kind int, x, y, w, h int, period, phase float64, grain uint32) float64 {
	fx, fy := float64(x)+phase, float64(y)+phase*0.7
	band := func(v float64) float64 {
		if math.Mod(v/period+100, 1) < 0.5 {
			return 1
		}
		return 0
	}
	switch kind {
	case texHStripes:
		return band(fy)
	case texVStripes:
		return band(fx)
	case texChecker:
		if (int(math.Floor(fx/period))+int(math.Floor(fy/period)))&1 == 0 {
			return 1
		}
		return 0
	case texDiagonal:
		return band((fx + fy) * 0.7)
	case texPolka:
		gx, gy := math.Mod(fx/period+100, 1)-0.5, math.Mod(fy/period+100, 1)-0.5
		if gx*gx+gy*gy < 0.09 {
			return 1
		}
		return 0
	case texGradient:
		return float64(y) / float64(max(h-1, 1))
	case texRadial:
		dx, dy := float64(x)-float64(w)/2, float64(y)-float64(h)/2
		return math.Min(1, math.Hypot(dx, dy)/(0.6*math.Hypot(float64(w), float64(h))/2))
	case texWaves:
		return 0.5 + 0.5*math.Sin(fy/period*2*math.Pi+2*math.Sin(fx/period))
	case texGrid:
		if math.Mod(fx/period+100, 1) < 0.15 || math.Mod(fy/period+100, 1) < 0.15 {
			return 1
		}
		return 0
	case texCrosshatch:
		if math.Mod((fx+fy)/period+100, 1) < 0.2 || math.Mod((fx-fy)/period+100, 1) < 0.2 {
			return 1
		}
		return 0
	case texSpeckle:
		if grain%7 < 3 {
			return 1
		}
		return 0
	default: // solid with a fine grain
		return float64(grain%5) * 0.06
	}
}
