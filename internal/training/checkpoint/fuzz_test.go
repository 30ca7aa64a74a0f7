package checkpoint

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead: whatever a checkpoint holds, Read returns it or an error,
// never panics or slices out of range. The fuzzer's bytes are the body;
// the checksum is appended here, or nearly every input would stop at it.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.ckpt")
	c := &Checkpoint{State: State{Fingerprint: []string{"a = 1"}, Stage: 1}, Tensors: map[string]Tensor{
		"w": Float32([]int64{2, 2}, []float32{1, 2, 3, 4}),
		"b": Float32([]int64{1}, []float32{5}),
	}}
	if err := Write(seed, c); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:len(data)-sha256.Size])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := sha256.Sum256(body)
		p := filepath.Join(t.TempDir(), "f.ckpt")
		if err := os.WriteFile(p, append(body, sum[:]...), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Read(p)
		if err != nil {
			return
		}
		for name, ts := range c.Tensors {
			if ts.Data == nil && len(c.Tensors) > 0 && name == "" {
				t.Fatal("unnamed tensor without data")
			}
		}
	})
}
