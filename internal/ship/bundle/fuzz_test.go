package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify: whatever manifest.json holds, Verify accepts the bundle
// only when every listed file is inside it with its recorded size and
// hash, and never panics or reads outside the bundle.
func FuzzVerify(f *testing.F) {
	root := f.TempDir()
	dir := filepath.Join(root, "bundle")
	bin := []byte("#!/bin/sh\necho imet\n")
	for _, p := range []string{"imet", "lib/libc10.so.1"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(full, bin, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "outside"), bin, 0o644); err != nil {
		f.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	file := func(p, kind string) ManifestFile {
		return ManifestFile{Path: p, Kind: kind, Size: int64(len(bin)), SHA256: hex.EncodeToString(sum[:])}
	}
	good, _ := json.Marshal(Manifest{Format: Format, Binary: "imet", Files: []ManifestFile{file("imet", "binary"), file("lib/libc10.so.1", "library")}})
	f.Add(good)
	escape, _ := json.Marshal(Manifest{Format: Format, Binary: "imet", Files: []ManifestFile{file("imet", "binary"), file("lib/libc10.so.1", "library"), file("../outside", "extra")}})
	f.Add(escape)
	f.Add([]byte(`{"format": "imet-bundle/0"}`))
	f.Add([]byte(`{"format": "imet-bundle/1", "files": [{"path": "/etc/passwd", "size": -1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, ManifestName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if Verify(dir) != nil {
			return
		}
		m, err := ReadManifest(dir)
		if err != nil {
			t.Fatalf("Verify accepted a manifest ReadManifest refuses: %v", err)
		}
		for _, mf := range m.Files {
			if !filepath.IsLocal(filepath.FromSlash(mf.Path)) {
				t.Fatalf("accepted path %q outside the bundle", mf.Path)
			}
		}
	})
}
