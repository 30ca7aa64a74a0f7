package packed

import (
	"bytes"
	"testing"

	"imet/internal/vision/imageio"
)

// FuzzParse feeds arbitrary bytes to the reader: it must refuse them or
// serve images within the file, never panic or read out of bounds.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, 0)
	img := imageio.New(3, 2)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	w.Add("train/a.png", img, 3, 2)
	w.Add("train/b.jpg", imageio.New(1, 1), 4, 4)
	w.Close()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:len(buf.Bytes())-3])
	f.Add([]byte("IMETPACK"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := newReader("fuzz.pack", ".", data)
		if err != nil {
			return
		}
		for i := range r.Len() {
			if img, err := r.Image(i); err == nil && len(img.Pix) != 3*img.W*img.H {
				t.Fatalf("image %d: %dx%d with %d bytes", i, img.W, img.H, len(img.Pix))
			}
		}
	})
}
