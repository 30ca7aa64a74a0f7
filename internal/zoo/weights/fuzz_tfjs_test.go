package weights

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadTFJS: whatever model.json holds (shard paths included), the
// reader returns tensors whose data matches their shapes, or an error;
// never a panic, and never a file outside the model folder.
func FuzzReadTFJS(f *testing.F) {
	for _, s := range []string{
		`{"modelTopology": {}, "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": [{"name": "w", "shape": [2, 2], "dtype": "float32"}]}]}`,
		`{"weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": [{"name": "q", "shape": [4], "dtype": "float32", "quantization": {"dtype": "uint8", "min": -1, "scale": 0.5}}]}]}`,
		`{"weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": [{"name": "h", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}}]}]}`,
		`{"weightsManifest": [{"paths": ["../secret.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]}]}`,
		`{"weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": [{"name": "w", "shape": [1000000000, 1000000000], "dtype": "float32"}]}]}`,
		`!function(){module.exports={"weightsManifest":[{"paths":["group1-shard1of1"],"weights":[]}]}}()`,
	} {
		f.Add([]byte(s))
	}
	root := f.TempDir()
	dir := filepath.Join(root, "model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	shard := make([]byte, 64)
	for i := range shard {
		shard[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(dir, "group1-shard1of1.bin"), shard, 0o644); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "secret.bin"), shard, 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "model.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ReadTFJS(p)
		if err != nil {
			return
		}
		for name, ts := range m.Tensors {
			if int64(len(ts.Data)) != ts.Numel() {
				t.Fatalf("%s: %d values for shape %v", name, len(ts.Data), ts.Shape)
			}
		}
	})
}
