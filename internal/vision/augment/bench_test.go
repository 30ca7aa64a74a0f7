package augment

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"imet/internal/vision/imageio"
)

// threadCPU is this thread's CPU time: on a shared machine, wall time
// measures the neighbours as much as the code.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchChain(b *testing.B, w, h int, ops ...Op) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	src := imageio.New(w, h)
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 31)
	}
	c := MustChain(ops...)
	dst := make([]float32, 3*320*320)
	r := rng(1)
	c0 := threadCPU()
	for b.Loop() {
		if _, _, _, err := c.Apply(src, r, dst); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((threadCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func norm() Op { o, _ := NewOp("Normalize"); return o }

// resize320 on a 600x800 JPEG decoded at 1/2 scale.
func BenchmarkResize320(b *testing.B) {
	benchChain(b, 300, 400, &RandomCropIfNeeded{MaxRatio: 2, P: 1}, &Resize{Height: 320, Width: 320, P: 1}, &HorizontalFlip{P: 0.5},
		&RandomBrightnessContrast{BrightnessLimit: Sym(0.1), ContrastLimit: Sym(0.1), BrightnessByMax: true, P: 0.5}, norm())
}

func BenchmarkResizeOnly(b *testing.B) {
	benchChain(b, 300, 400, &Resize{Height: 320, Width: 320, P: 1})
}

func BenchmarkRotate320(b *testing.B) {
	benchChain(b, 300, 400, &Resize{Height: 320, Width: 320, P: 1},
		&ShiftScaleRotate{ShiftLimit: Sym(0.1), ScaleLimit: Sym(0.1), RotateLimit: Sym(30), P: 1}, norm())
}

func BenchmarkHSV320(b *testing.B) {
	benchChain(b, 300, 400, &Resize{Height: 320, Width: 320, P: 1},
		&HueSaturationValue{HueShiftLimit: Sym(20), SatShiftLimit: Sym(30), ValShiftLimit: Sym(20), P: 1}, norm())
}
