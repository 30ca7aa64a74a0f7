package weights

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: whatever the bytes, the readers return tensors or an error,
// never panic, hang or allocate without bound. Seeds are the fixtures; `go test -fuzz FuzzLoad` mutates.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"plain_zip.pth", "plain_legacy.pth", "ckpt_legacy.pth", "misc_legacy.pth", "tiny.safetensors"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f.pth")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// The readers directly, not Load: Load's recover would hide a panic.
		format, err := Detect(p)
		if err != nil {
			return
		}
		var set Set
		switch format {
		case FormatTorchZip, FormatTorchLegacy:
			set, err = ReadTorch(p)
		case FormatSafetensors:
			set, err = ReadSafetensors(p)
		default:
			return
		}
		if err != nil {
			return
		}
		for name, ts := range set {
			if int64(len(ts.Data)) != ts.Numel() {
				t.Fatalf("%s: %d values for shape %v", name, len(ts.Data), ts.Shape)
			}
		}
	})
}
