package imageio

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// decodeStd decodes JPEG or PNG with the standard library and flattens the
// result to RGB. Alpha is dropped, not composited, as PIL's convert("RGB")
// and OpenCV's imread do, so that images match what Python users trained on.
func decodeStd(data []byte) (*Image, error) {
	var (
		m   image.Image
		err error
	)
	isJPEG := len(data) > 1 && data[0] == 0xFF
	var cfg image.Config
	if isJPEG {
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	} else {
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		return nil, err
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("implausible image size %dx%d", cfg.Width, cfg.Height)
	}
	if isJPEG {
		m, err = jpeg.Decode(bytes.NewReader(data))
	} else {
		m, err = png.Decode(bytes.NewReader(data))
	}
	if err != nil {
		return nil, err
	}
	return FromImage(m), nil
}

// FromImage converts any image.Image to packed RGB.
func FromImage(m image.Image) *Image {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := New(w, h)
	p := out.Pix
	switch s := m.(type) {
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := s.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := s.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(s.Y[yi], s.Cb[ci], s.Cr[ci])
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = r, g, bb
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+w]
			for x, v := range row {
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+2*w]
			for x := 0; x < w; x++ {
				v := row[2*x] // high byte of big-endian sample
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = v, v, v
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+4*w]
			for x := 0; x < w; x++ {
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+8*w]
			for x := 0; x < w; x++ {
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = row[8*x], row[8*x+2], row[8*x+4]
			}
		}
	case *image.RGBA:
		// The standard PNG decoder uses RGBA only for opaque images, where
		// premultiplied and straight colour coincide.
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+4*w]
			for x := 0; x < w; x++ {
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA64:
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+8*w]
			for x := 0; x < w; x++ {
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = row[8*x], row[8*x+2], row[8*x+4]
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+4*w]
			for x := 0; x < w; x++ {
				r, g, bb := color.CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = r, g, bb
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(m.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = c.R, c.G, c.B
			}
		}
	}
	return out
}

// ToRGBA converts to an image.Image for encoding (e.g. preview grids).
func (m *Image) ToRGBA() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i := 0; i < m.W*m.H; i++ {
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = m.Pix[3*i], m.Pix[3*i+1], m.Pix[3*i+2], 255
	}
	return out
}
