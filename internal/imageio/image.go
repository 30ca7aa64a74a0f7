// Package imageio decodes JPEG and PNG files into packed 8-bit RGB images,
// the one layout the augmentation code reads.
//
// JPEG goes through libjpeg-turbo (cgo) unless the binary is built with the
// `noturbo` tag or without cgo; then, and for PNG always, the standard
// library decodes. Whatever the source holds (grayscale, CMYK, 16-bit
// samples, an alpha channel, a palette), the result is 3 bytes per pixel:
// the decoder's job is to hide that variety from everything downstream.
// EXIF orientation is applied, so the pixels are the way a viewer shows them.
//
// A broken or truncated file is an error naming the file: a training run
// over 100k images needs to know which one to delete.
package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// Image is a decoded picture: W*H pixels, row-major, 3 bytes (R, G, B) each.
type Image struct {
	W, H int
	Pix  []uint8
}

// New allocates a black w x h image.
func New(w, h int) *Image { return &Image{W: w, H: h, Pix: make([]uint8, 3*w*h)} }

// Hint tells the decoder the smallest size the caller will need, so that a
// JPEG much larger than that can be decoded at a reduced DCT scale (1/2,
// 1/4, 1/8 ...), which skips most of the decoding work. The decoded image
// then has W >= MinW, H >= MinH and min(W,H) >= MinShort, or is full size.
// The zero Hint asks for full size. The sizes are in display orientation
// (after EXIF rotation).
type Hint struct {
	MinW, MinH, MinShort int
}

func (h Hint) zero() bool { return h.MinW <= 0 && h.MinH <= 0 && h.MinShort <= 0 }

// accepts reports whether a w x h decode (display orientation) satisfies h.
func (h Hint) accepts(w, hh int) bool {
	return w >= h.MinW && hh >= h.MinH && min(w, hh) >= h.MinShort
}

// swapped is the hint in the file's stored orientation when EXIF rotates by
// 90 or 270 degrees.
func (h Hint) swapped() Hint { return Hint{MinW: h.MinH, MinH: h.MinW, MinShort: h.MinShort} }

// maxPixels refuses decompression bombs: a forged header must not make a
// worker allocate gigabytes.
const maxPixels = 1 << 28

// ErrFormat reports a file that is neither JPEG nor PNG.
var ErrFormat = errors.New("not a JPEG or PNG file")

// Decode reads and decodes the image file at path.
func Decode(path string, hint Hint) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	return DecodeBytes(path, data, hint)
}

// DecodeBytes decodes an image held in memory; name is used in errors.
func DecodeBytes(name string, data []byte, hint Hint) (*Image, error) {
	var (
		img *Image
		err error
	)
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		orient := jpegOrientation(data)
		h := hint
		if orient >= 5 {
			h = hint.swapped()
		}
		img, err = decodeJPEG(data, h)
		if err == nil {
			img = Orient(img, orient)
		}
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		img, err = decodeStd(data)
	default:
		err = ErrFormat
	}
	if err != nil {
		return nil, fmt.Errorf("decode image %s: %w", name, err)
	}
	return img, nil
}

// Turbo reports whether JPEG decoding goes through libjpeg-turbo in this
// build.
func Turbo() bool { return turboEnabled }
