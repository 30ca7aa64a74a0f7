package imageio

import (
	"os"
	"path/filepath"
	"testing"
)

// Benchmarks over the bench/images test files, when present
// (go run ./bench/images writes them).
func benchFile(b *testing.B, name string) []byte {
	p := filepath.Join(os.TempDir(), "imet-bench-images", name)
	data, err := os.ReadFile(p)
	if err != nil {
		b.Skip("run go run ./bench/images first to create", p)
	}
	return data
}

func BenchmarkDecodeJPEGFull(b *testing.B) {
	data := benchFile(b, "photo000.jpg")
	for b.Loop() {
		if _, err := DecodeBytes("x", data, Hint{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJPEGHint320(b *testing.B) {
	data := benchFile(b, "photo000.jpg")
	for b.Loop() {
		if _, err := DecodeBytes("x", data, Hint{MinShort: 320}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePNG(b *testing.B) {
	data := benchFile(b, "small000.png")
	for b.Loop() {
		if _, err := DecodeBytes("x", data, Hint{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJPEGHalf(b *testing.B) {
	data := benchFile(b, "photo000.jpg")
	for b.Loop() {
		if _, err := DecodeBytes("x", data, Hint{MinShort: 300}); err != nil {
			b.Fatal(err)
		}
	}
}
