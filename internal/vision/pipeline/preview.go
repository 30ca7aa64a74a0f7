package pipeline

import (
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"

	"imet/internal/vision/augment"
	"imet/internal/vision/imageio"
)

// PreviewOptions shape a preview grid.
type PreviewOptions struct {
	Draws int    // training augmentation draws per image
	Cell  int    // cell side in pixels
	Seed  uint64 // the draws' seed
}

// Preview renders what a model sees: one row per image holding the
// original (fitted into the cell), Draws draws of the training
// augmentation, then each TTA variant (at most Draws of them for
// stochastic TTA). Normalize is left out so colours stay viewable; every
// other op applies exactly as in training. Columns are separated by thin
// lines, the groups (original | train | TTA) by thicker ones.
func Preview(p *Pipeline, imgs []*imageio.Image, o PreviewOptions) (*image.RGBA, error) {
	if o.Cell <= 0 {
		o.Cell = 160
	}
	train, err := viewable(p.Train)
	if err != nil {
		return nil, err
	}
	var tta []*augment.Chain
	for i, v := range p.TTA {
		if i >= max(o.Draws, 2) {
			break
		}
		c, err := viewable(v.Chain)
		if err != nil {
			return nil, err
		}
		tta = append(tta, c)
	}
	const gap, groupGap = 2, 8
	cols := 1 + o.Draws + len(tta)
	width := cols*o.Cell + (cols-1)*gap + 2*(groupGap-gap)
	height := len(imgs)*o.Cell + max(0, len(imgs)-1)*gap
	grid := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(grid, grid.Bounds(), &image.Uniform{color.RGBA{40, 40, 40, 255}}, image.Point{}, draw.Src)
	fit := augment.MustChain(&augment.LongestMaxSize{SizeLimit: augment.SizeLimit{MaxSize: o.Cell, P: 1}})
	for row, img := range imgs {
		y := row * (o.Cell + gap)
		x := 0
		put := func(c *augment.Chain, r *rand.Rand) error {
			buf, w, h, err := c.Apply(img, r, nil)
			if err != nil {
				return err
			}
			tile := toImage(buf, w, h)
			// Outputs larger than the cell are shown scaled down to fit.
			if w > o.Cell || h > o.Cell {
				b2, w2, h2, _ := fit.Apply(tile, r, nil)
				tile, w, h = toImage(b2, w2, h2), w2, h2
			}
			off := image.Pt(x+(o.Cell-w)/2, y+(o.Cell-h)/2)
			draw.Draw(grid, image.Rectangle{off, off.Add(image.Pt(w, h))}, tile.ToRGBA(), image.Point{}, draw.Src)
			return nil
		}
		if err := put(fit, rand.New(rand.NewPCG(0, 0))); err != nil {
			return nil, err
		}
		x += o.Cell + groupGap
		for d := range o.Draws {
			if err := put(train, rand.New(rand.NewPCG(o.Seed, uint64(row)<<32|uint64(d)))); err != nil {
				return nil, err
			}
			x += o.Cell + gap
		}
		x += groupGap - gap
		for i, c := range tta {
			if err := put(c, rand.New(rand.NewPCG(o.Seed+p.TTA[i].Stream, uint64(row)<<32|uint64(1000+i)))); err != nil {
				return nil, err
			}
			x += o.Cell + gap
		}
	}
	return grid, nil
}

// viewable drops Normalize so that the output is on the 0..255 scale.
func viewable(c *augment.Chain) (*augment.Chain, error) {
	var ops []augment.Op
	for _, op := range c.Ops() {
		if op.Name() != "Normalize" {
			ops = append(ops, op)
		}
	}
	return augment.NewChain(ops...)
}

func toImage(buf []float32, w, h int) *imageio.Image {
	m := imageio.New(w, h)
	n := w * h
	for i := 0; i < n; i++ {
		for c := 0; c < 3; c++ {
			v := buf[c*n+i]
			m.Pix[3*i+c] = uint8(max(0, min(255, v+0.5)))
		}
	}
	return m
}
