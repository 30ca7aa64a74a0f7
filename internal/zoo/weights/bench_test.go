package weights

import (
	"os"
	"testing"
)

// BenchmarkReadTorch reads $IMET_BENCH_PTH (skipped when unset); see
// bench/weights for the side-by-side comparison with torch.load.
func BenchmarkReadTorch(b *testing.B) {
	path := os.Getenv("IMET_BENCH_PTH")
	if path == "" {
		b.Skip("set IMET_BENCH_PTH to a .pth file")
	}
	for i := 0; i < b.N; i++ {
		if _, err := ReadTorch(path); err != nil {
			b.Fatal(err)
		}
	}
}
