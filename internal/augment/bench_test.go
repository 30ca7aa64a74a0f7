package augment

import (
	"testing"

	"imet/internal/imageio"
)

func benchChain(b *testing.B, w, h int, ops ...Op) {
	src := imageio.New(w, h)
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 31)
	}
	c := MustChain(ops...)
	dst := make([]float32, 3*320*320)
	r := rng(1)
	for b.Loop() {
		if _, _, _, err := c.Apply(src, r, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func norm() Op { o, _ := NewOp("Normalize"); return o }

func BenchmarkResize320(b *testing.B) {
	benchChain(b, 375, 500, &Resize{Height: 320, Width: 320, P: 1}, &HorizontalFlip{P: 0.5},
		&RandomBrightnessContrast{BrightnessLimit: Sym(0.1), ContrastLimit: Sym(0.1), BrightnessByMax: true, P: 0.5}, norm())
}

func BenchmarkRotate320(b *testing.B) {
	benchChain(b, 375, 500, &Resize{Height: 320, Width: 320, P: 1},
		&ShiftScaleRotate{ShiftLimit: Sym(0.1), ScaleLimit: Sym(0.1), RotateLimit: Sym(30), P: 1}, norm())
}

func BenchmarkHSV320(b *testing.B) {
	benchChain(b, 375, 500, &Resize{Height: 320, Width: 320, P: 1},
		&HueSaturationValue{HueShiftLimit: Sym(20), SatShiftLimit: Sym(30), ValShiftLimit: Sym(20), P: 1}, norm())
}
