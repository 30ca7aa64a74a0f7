//go:build cgo && !noturbo

package imageio

import (
	"bytes"
	"testing"
)

// A decompressor handle that failed on a broken file must not decode the
// next image: with the pool holding only that handle, a good JPEG decoded
// right after a broken one still decodes.
func TestBrokenJPEGDoesNotSpoilTheNextDecode(t *testing.T) {
	good := writeJPEG(t, 64, 48)
	for _, bad := range [][]byte{
		append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte{7}, 100)...),
		good[:len(good)/2],
	} {
		for drained := false; !drained; {
			select {
			case h := <-handles:
				freeHandle(h)
			default:
				drained = true
			}
		}
		if _, err := DecodeBytes("bad.jpg", bad, Hint{}); err == nil {
			t.Fatal("broken JPEG decoded")
		}
		if _, err := DecodeBytes("good.jpg", good, Hint{}); err != nil {
			t.Errorf("good JPEG after a broken one: %v", err)
		}
	}
}
