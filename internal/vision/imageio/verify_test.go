package imageio

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noise encodes a 64x64 image of varied pixels, so that its compressed
// data is long enough to be cut in the middle.
func noise(t *testing.T, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 37 % 251), uint8(y * 91 % 241), uint8((x ^ y) * 13), 255})
		}
	}
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Every way an image file can be broken is found and named: zero bytes,
// not an image at all, a JPEG or PNG cut in the middle of its pixel data
// or just before its end, damaged inside. Whole files pass.
func TestVerifyAllNamesBrokenImages(t *testing.T) {
	jpg := noise(t, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, &jpeg.Options{Quality: 90}) })
	pngb := noise(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	corrupt := append([]byte(nil), pngb...)
	copy(corrupt[len(corrupt)/2:], bytes.Repeat([]byte{0x55}, 64)) // the zlib stream and its CRC break
	dir := t.TempDir()
	files := []struct {
		name   string
		data   []byte
		reason string // "" for a whole file
	}{
		{"ok.jpg", jpg, ""},
		{"ok.png", pngb, ""},
		{"empty.jpg", nil, ReasonEmpty},
		{"text.png", []byte("<html>404 not found</html>"), ReasonNotImage},
		{"half.jpg", jpg[:len(jpg)/2], ReasonTruncated},
		{"end.jpg", jpg[:len(jpg)-2], ReasonTruncated},
		{"half.png", pngb[:len(pngb)/2], ReasonTruncated},
		{"noiend.png", pngb[:len(pngb)-12], ReasonTruncated},
		{"corrupt.png", corrupt, ReasonCorrupt},
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		os.WriteFile(p, f.data, 0o644)
		paths = append(paths, p)
	}
	paths = append(paths, filepath.Join(dir, "absent.jpg"))
	calls := 0
	broken := VerifyAll(paths, 3, func(done, total int) { calls++ })
	if calls != len(paths) {
		t.Errorf("progress called %d times for %d files", calls, len(paths))
	}
	got := map[string]*BrokenError{}
	for _, b := range broken {
		got[filepath.Base(b.Path)] = b
	}
	for _, f := range files {
		b := got[f.name]
		switch {
		case f.reason == "" && b != nil:
			t.Errorf("%s is whole, reported %v", f.name, b)
		case f.reason != "" && b == nil:
			t.Errorf("%s (%s) not reported", f.name, f.reason)
		case f.reason != "" && (b.Reason != f.reason || !strings.HasPrefix(b.Error(), filepath.Join(dir, f.name)+": "+f.reason)):
			t.Errorf("%s: %v, want reason %q", f.name, b, f.reason)
		}
	}
	if b := got["absent.jpg"]; b == nil || b.Reason != ReasonUnreadable {
		t.Errorf("absent file: %v", b)
	}
	for i := 1; i < len(broken); i++ {
		if indexOf(paths, broken[i-1].Path) > indexOf(paths, broken[i].Path) {
			t.Errorf("not in the order of paths: %s before %s", broken[i-1].Path, broken[i].Path)
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
