package imageio

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures (testdata/gen.py, written by PIL) are 32x16 with quadrants
// red, green / blue, white.
var quad = [4][3]int{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}}

func px(m *Image, x, y int) [3]int {
	o := 3 * (y*m.W + x)
	return [3]int{int(m.Pix[o]), int(m.Pix[o+1]), int(m.Pix[o+2])}
}

func near(a, b [3]int, tol int) bool {
	for i := range a {
		if d := a[i] - b[i]; d > tol || d < -tol {
			return false
		}
	}
	return true
}

func TestDecodeFixtures(t *testing.T) {
	gray := func(q [3]int) [3]int {
		// ITU-R 601 luma, as PIL's convert("L").
		l := (299*q[0] + 587*q[1] + 114*q[2] + 500) / 1000
		return [3]int{l, l, l}
	}
	ident := func(q [3]int) [3]int { return q }
	tests := []struct {
		file   string
		w, h   int
		colour func([3]int) [3]int
		tol    int
		// at maps a quadrant's centre (stored orientation) to display
		// coordinates.
		at func(x, y int) (int, int)
	}{
		{"quad.jpg", 32, 16, ident, 12, nil},
		{"gray.jpg", 32, 16, gray, 12, nil},
		{"cmyk.jpg", 32, 16, ident, 16, nil},
		{"alpha.png", 32, 16, ident, 0, nil},
		{"palette.png", 32, 16, ident, 0, nil},
		// Orientation 6: display(x, y) = stored(y, H-1-x), so stored (sx, sy)
		// shows at (H-1-sy, sx).
		{"exif6.jpg", 16, 32, ident, 12, func(x, y int) (int, int) { return 16 - 1 - y, x }},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := Decode(filepath.Join("testdata", tc.file), Hint{})
			if err != nil {
				t.Fatal(err)
			}
			if m.W != tc.w || m.H != tc.h || len(m.Pix) != 3*m.W*m.H {
				t.Fatalf("size %dx%d (%d bytes), want %dx%d", m.W, m.H, len(m.Pix), tc.w, tc.h)
			}
			for q, c := range quad {
				sx, sy := 4+16*(q%2), 4+8*(q/2)
				x, y := sx, sy
				if tc.at != nil {
					x, y = tc.at(sx, sy)
				}
				if got, want := px(m, x, y), tc.colour(c); !near(got, want, tc.tol) {
					t.Errorf("quadrant %d at (%d,%d): got %v, want %v", q, x, y, got, want)
				}
			}
		})
	}
}

func TestDecode16Bit(t *testing.T) {
	m, err := Decode("testdata/gray16.png", Hint{})
	if err != nil {
		t.Fatal(err)
	}
	if got := px(m, 3, 2); got != [3]int{128, 128, 128} {
		t.Errorf("0x8000 sample decoded as %v, want 128", got)
	}
	if got := px(m, 3, 12); got != [3]int{255, 255, 255} {
		t.Errorf("0xFFFF sample decoded as %v, want 255", got)
	}
	// 16-bit RGBA from Go's own encoder, with alpha.
	src := image.NewNRGBA64(image.Rect(0, 0, 4, 4))
	for i := 0; i < 16; i++ {
		src.SetNRGBA64(i%4, i/4, color.NRGBA64{R: 0x1234, G: 0xABCD, B: 0xFF00, A: 0x4000})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, src); err != nil {
		t.Fatal(err)
	}
	m, err = DecodeBytes("rgba16.png", buf.Bytes(), Hint{})
	if err != nil {
		t.Fatal(err)
	}
	if got := px(m, 1, 1); got != [3]int{0x12, 0xAB, 0xFF} {
		t.Errorf("16-bit RGBA decoded as %v, want [18 171 255] (high bytes, alpha dropped)", got)
	}
}

func writeJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBrokenFilesNameTheFile(t *testing.T) {
	data := writeJPEG(t, 64, 48)
	dir := t.TempDir()
	cases := map[string][]byte{
		"truncated.jpg": data[:len(data)/2],
		"garbage.jpg":   append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte{7}, 100)...),
		"notimage.jpg":  []byte("hello"),
		"empty.png":     nil,
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Decode(p, Hint{})
			if err == nil {
				t.Fatal("decoded a broken file without error")
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	// A truncated PNG too.
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 50, 50)))
	if _, err := DecodeBytes("t.png", buf.Bytes()[:buf.Len()-20], Hint{}); err == nil || !strings.Contains(err.Error(), "t.png") {
		t.Errorf("truncated PNG: err = %v", err)
	}
	if _, err := Decode(filepath.Join(dir, "missing.jpg"), Hint{}); err == nil || !strings.Contains(err.Error(), "missing.jpg") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestReducedScaleDecode(t *testing.T) {
	data := writeJPEG(t, 800, 600)
	full, err := DecodeBytes("a.jpg", data, Hint{})
	if err != nil {
		t.Fatal(err)
	}
	if full.W != 800 || full.H != 600 {
		t.Fatalf("full decode %dx%d", full.W, full.H)
	}
	for _, h := range []Hint{{MinW: 320, MinH: 320}, {MinShort: 100}, {MinW: 90, MinH: 70}, {MinW: 800, MinH: 600}} {
		m, err := DecodeBytes("a.jpg", data, h)
		if err != nil {
			t.Fatal(err)
		}
		if !h.accepts(m.W, m.H) {
			t.Errorf("hint %+v: decoded %dx%d, smaller than asked", h, m.W, m.H)
		}
		if Turbo() && h.MinShort == 100 && m.W > 400 {
			t.Errorf("hint %+v: decoded %dx%d, expected a reduced DCT scale", h, m.W, m.H)
		}
		// The content is the same picture: compare the centre pixel.
		c, f := px(m, m.W/2, m.H/2), px(full, 400, 300)
		if !near(c, f, 12) {
			t.Errorf("hint %+v: centre %v, full-size centre %v", h, c, f)
		}
	}
}

func TestHintSlack(t *testing.T) {
	if !Turbo() {
		t.Skip("reduced-scale decoding needs libjpeg-turbo")
	}
	data := writeJPEG(t, 800, 600)
	// 1/2 gives 400x300: 6% short of 320, inside a 10% slack, outside 5%.
	for _, tc := range []struct {
		slack float64
		w     int
	}{{0, 800}, {0.05, 800}, {0.1, 400}} {
		m, err := DecodeBytes("a.jpg", data, Hint{MinShort: 320, Slack: tc.slack})
		if err != nil {
			t.Fatal(err)
		}
		if m.W != tc.w {
			t.Errorf("slack %v: decoded %dx%d, want width %d", tc.slack, m.W, m.H, tc.w)
		}
	}
}

// TestTurboMatchesStd checks the two JPEG decoders against each other.
func TestTurboMatchesStd(t *testing.T) {
	if !Turbo() {
		t.Skip("built without libjpeg-turbo (noturbo tag or no cgo)")
	}
	data := writeJPEG(t, 97, 61)
	a, err := decodeJPEG(data, Hint{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeStd(data)
	if err != nil {
		t.Fatal(err)
	}
	// They differ in chroma upsampling (libjpeg's is smoother), so allow
	// small local differences but no systematic one.
	var maxd, sum int
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		maxd = max(maxd, d, -d)
		sum += max(d, -d)
	}
	mean := float64(sum) / float64(len(a.Pix))
	if maxd > 8 || mean > 1.5 {
		t.Errorf("libjpeg-turbo and image/jpeg differ by up to %d levels, %.2f on average", maxd, mean)
	}
}

func TestOrientAll(t *testing.T) {
	// A 3x2 image with distinct pixels; each orientation must be a
	// permutation matching the EXIF definition of where row 0 / column 0 go.
	m := New(3, 2)
	for i := 0; i < 6; i++ {
		m.Pix[3*i] = uint8(i + 1)
	}
	// Expected display grids (value at each display pixel), from the EXIF
	// spec's pictures of "F".
	want := map[int][][]int{
		1: {{1, 2, 3}, {4, 5, 6}},
		2: {{3, 2, 1}, {6, 5, 4}},
		3: {{6, 5, 4}, {3, 2, 1}},
		4: {{4, 5, 6}, {1, 2, 3}},
		5: {{1, 4}, {2, 5}, {3, 6}},
		6: {{4, 1}, {5, 2}, {6, 3}},
		7: {{6, 3}, {5, 2}, {4, 1}},
		8: {{3, 6}, {2, 5}, {1, 4}},
	}
	for o, grid := range want {
		d := Orient(m, o)
		if d.H != len(grid) || d.W != len(grid[0]) {
			t.Errorf("orientation %d: size %dx%d", o, d.W, d.H)
			continue
		}
		for y, row := range grid {
			for x, v := range row {
				if got := int(d.Pix[3*(y*d.W+x)]); got != v {
					t.Errorf("orientation %d: (%d,%d) = %d, want %d", o, x, y, got, v)
				}
			}
		}
	}
}

// TestPNGDecodersAgree checks libpng against image/png on every 8-bit
// colour type, transparency included: the two builds must see the same
// pixels.
func TestPNGDecodersAgree(t *testing.T) {
	const w, h = 37, 23
	rgb := image.NewRGBA(image.Rect(0, 0, w, h))
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{
		color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 200, 50, 0}, color.NRGBA{10, 20, 30, 128}})
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			rgb.Set(x, y, color.RGBA{uint8(7 * x), uint8(11 * y), uint8(x * y), 255})
			nrgba.SetNRGBA(x, y, color.NRGBA{uint8(7 * x), uint8(11 * y), uint8(x * y), uint8(x * 6)})
			gray.SetGray(x, y, color.Gray{uint8(x * y)})
			pal.SetColorIndex(x, y, uint8((x+y)%3))
		}
	}
	for name, m := range map[string]image.Image{"rgb": rgb, "nrgba": nrgba, "gray": gray, "palette": pal} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		a, err := DecodeBytes(name, buf.Bytes(), Hint{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := decodeStd(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Pix, b.Pix) {
			t.Errorf("%s: decoders differ", name)
		}
	}
}

func TestDecoderReuse(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, size := range [][2]int{{64, 48}, {16, 16}, {97, 61}} {
		p := filepath.Join(dir, fmt.Sprintf("%d.jpg", i))
		os.WriteFile(p, writeJPEG(t, size[0], size[1]), 0o644)
		paths = append(paths, p)
	}
	paths = append(paths, "testdata/alpha.png", "testdata/exif6.jpg", "testdata/gray16.png")
	var d Decoder
	for _, p := range paths {
		got, err := d.Decode(p, Hint{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := Decode(p, Hint{})
		if err != nil {
			t.Fatal(err)
		}
		if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%s: reusing decoder differs (%dx%d vs %dx%d)", p, got.W, got.H, want.W, want.H)
		}
	}
	empty := filepath.Join(dir, "empty.jpg")
	os.WriteFile(empty, nil, 0o644)
	if _, err := d.Decode(empty, Hint{}); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty file: %v", err)
	}
}
