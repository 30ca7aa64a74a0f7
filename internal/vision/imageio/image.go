// Package imageio decodes JPEG and PNG files into packed 8-bit RGB images,
// the one layout the augmentation code reads.
//
// JPEG goes through libjpeg-turbo and 8-bit PNG through libpng (cgo),
// unless the binary is built with the `noturbo` tag or without cgo; then
// (and for 16-bit PNG always) the standard library decodes. Whatever the source holds (grayscale, CMYK, 16-bit
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
	"io"
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
//
// Slack lets the decode fall short of the minimum by that fraction (0.1 =
// 10%). A DCT-scaled decode is properly low-pass filtered, so a 300-pixel
// decode upscaled by 7% keeps more true detail than a bilinear resize from
// 600 pixels, which aliases; and it costs a quarter of the resampling work.
type Hint struct {
	MinW, MinH, MinShort int
	Slack                float64
}

// Zero reports whether h asks for full size.
func (h Hint) Zero() bool { return h.MinW <= 0 && h.MinH <= 0 && h.MinShort <= 0 }

// accepts reports whether a w x h decode (display orientation) satisfies h.
func (h Hint) accepts(w, hh int) bool {
	k := 1 - max(0, min(h.Slack, 0.5))
	need := func(n int) float64 { return float64(n) * k }
	return float64(w) >= need(h.MinW) && float64(hh) >= need(h.MinH) && float64(min(w, hh)) >= need(h.MinShort)
}

// swapped is the hint in the file's stored orientation when EXIF rotates by
// 90 or 270 degrees.
func (h Hint) swapped() Hint {
	return Hint{MinW: h.MinH, MinH: h.MinW, MinShort: h.MinShort, Slack: h.Slack}
}

// maxPixels refuses decompression bombs: a forged header must not make a
// worker allocate gigabytes.
const maxPixels = 1 << 28

// ErrFormat reports a file that is neither JPEG nor PNG.
var ErrFormat = errors.New("not a JPEG or PNG file")

// ErrEmpty reports a file of zero bytes.
var ErrEmpty = errors.New("empty file (zero bytes)")

// DecodeError is every error Decode, DecodeBytes and Decoder.Decode return:
// the file could not be read or decoded. Callers tell a broken image from
// other failures with errors.As.
type DecodeError struct {
	Path string // the file, or the name given to DecodeBytes
	Err  error
}

func (e *DecodeError) Error() string {
	if e.Path == "" {
		return "decode image: " + e.Err.Error()
	}
	return "decode image " + e.Path + ": " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Decode reads and decodes the image file at path.
func Decode(path string, hint Hint) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &DecodeError{Err: err}
	}
	return DecodeBytes(path, data, hint)
}

// DecodeBytes decodes an image held in memory; name is used in errors.
func DecodeBytes(name string, data []byte, hint Hint) (*Image, error) {
	return decodeBytes(name, data, hint, nil)
}

// Decoder decodes one image after another reusing its file and pixel
// buffers, for a worker that is done with each image before decoding the
// next: fresh megabyte-sized buffers per image cost page faults that show
// in throughput. The zero value is ready to use; not safe for concurrent
// use.
type Decoder struct {
	file []byte
	img  Image
}

// Decode is Decode whose result is valid only until the next call.
func (d *Decoder) Decode(path string, hint Hint) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &DecodeError{Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &DecodeError{Err: err}
	}
	n := int(st.Size())
	if cap(d.file) < n+1 {
		d.file = make([]byte, n+n/4+1)
	}
	buf := d.file[:cap(d.file)]
	got := 0
	for {
		k, err := f.Read(buf[got:])
		got += k
		if err == io.EOF || k == 0 && err == nil {
			break
		}
		if err != nil {
			return nil, &DecodeError{Path: path, Err: err}
		}
		if got == len(buf) { // the file grew
			buf = append(buf, 0)[:cap(buf)]
			d.file = buf
		}
	}
	return decodeBytes(path, buf[:got], hint, &d.img)
}

// newImage returns a w x h image, reusing dst's pixel buffer when given.
func newImage(dst *Image, w, h int) *Image {
	if dst == nil {
		return New(w, h)
	}
	n := 3 * w * h
	if cap(dst.Pix) < n {
		dst.Pix = make([]uint8, n)
	}
	dst.W, dst.H, dst.Pix = w, h, dst.Pix[:n]
	return dst
}

func decodeBytes(name string, data []byte, hint Hint, dst *Image) (*Image, error) {
	var (
		img *Image
		err error
	)
	switch {
	case len(data) == 0:
		err = ErrEmpty
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		orient := jpegOrientation(data)
		h := hint
		if orient >= 5 {
			h = hint.swapped()
		}
		img, err = decodeJPEG(data, h, dst)
		if err == nil {
			img = Orient(img, orient)
		}
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		img, err = decodePNG(data, dst)
	default:
		err = ErrFormat
	}
	if err != nil {
		return nil, &DecodeError{Path: name, Err: err}
	}
	return img, nil
}

// Turbo reports whether JPEG decoding goes through libjpeg-turbo in this
// build.
func Turbo() bool { return turboEnabled }
