package main

import (
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

func TestAugmentPreview(t *testing.T) {
	dir := t.TempDir()
	for i, size := range [][2]int{{200, 150}, {90, 240}, {300, 80}} {
		m := image.NewRGBA(image.Rect(0, 0, size[0], size[1]))
		for y := 0; y < size[1]; y++ {
			for x := 0; x < size[0]; x++ {
				m.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(60 * i), 255})
			}
		}
		f, _ := os.Create(filepath.Join(dir, fmt.Sprintf("im%d.jpg", i)))
		jpeg.Encode(f, m, nil)
		f.Close()
	}
	out := filepath.Join(t.TempDir(), "grid.png")
	// resize320 has 2 TTA variants; aggressive256 has 8 stochastic ones, of
	// which as many as --draws are shown.
	for pipe, cols := range map[string]int{"resize320": 6, "aggressive256": 7} {
		code, stdout, stderr := runCLI(t, "augment", "preview", "--pipeline", pipe, "--images", dir, "--out", out, "--draws", "3", "--cell", "64")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", pipe, code, stderr)
		}
		if !strings.Contains(stdout, "TTA") {
			t.Errorf("%s: output %q", pipe, stdout)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		m, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		// 3 rows of 64 with 2-pixel gaps; columns with 2-pixel gaps inside
		// groups and 8 between the 3 groups.
		if b := m.Bounds(); b.Dy() != 3*64+2*2 || b.Dx() != cols*64+(cols-3)*2+2*8 {
			t.Errorf("%s: grid %dx%d", pipe, b.Dx(), b.Dy())
		}
	}
	code, _, stderr := runCLI(t, "augment", "preview", "--pipeline", "nope", "--images", dir, "--out", out)
	if code == 0 || !strings.Contains(stderr, "nope") {
		t.Errorf("unknown pipeline: exit %d, %q", code, stderr)
	}
	empty := t.TempDir()
	code, _, stderr = runCLI(t, "augment", "preview", "--images", empty, "--out", out)
	if code == 0 || !strings.Contains(stderr, empty) {
		t.Errorf("empty dir: exit %d, %q", code, stderr)
	}
}
