package weights

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A tfjs-converter layout (model.json + binary shard) written by hand:
// weights are concatenated in manifest order across shards; uint8 and
// uint16 codes dequantise to min + scale*q; float32 is raw little-endian.
func TestReadTFJSModelJSON(t *testing.T) {
	dir := t.TempDir()
	manifest := `{"modelTopology": {"class_name": "Model"}, "weightsManifest": [{"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"], "weights": [
	 {"name": "dense/kernel", "shape": [2, 3], "dtype": "float32", "quantization": {"min": -1.5, "scale": 0.25, "dtype": "uint8"}},
	 {"name": "dense/bias", "shape": [3], "dtype": "float32"},
	 {"name": "conv/kernel", "shape": [2], "dtype": "float32", "quantization": {"min": 0.5, "scale": 0.001, "dtype": "uint16"}}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	var data []byte
	data = append(data, 0, 1, 2, 3, 4, 255)
	for _, v := range []float32{0.125, -2, 3.5} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	data = binary.LittleEndian.AppendUint16(data, 0)
	data = binary.LittleEndian.AppendUint16(data, 1000)
	// Split across two shards mid-weight, as the converter does.
	if err := os.WriteFile(filepath.Join(dir, "group1-shard1of2.bin"), data[:8], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "group1-shard2of2.bin"), data[8:], 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := Detect(dir); err != nil || f != FormatTFJS {
		t.Fatalf("Detect = %v, %v", f, err)
	}
	m, err := ReadTFJS(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{
		"dense/kernel": {-1.5, -1.25, -1, -0.75, -0.5, float32(-1.5 + 0.25*255)},
		"dense/bias":   {0.125, -2, 3.5},
		"conv/kernel":  {0.5, float32(0.5 + 0.001*1000)},
	}
	for name, w := range want {
		got := m.Tensors[name]
		if got == nil || len(got.Data) != len(w) {
			t.Fatalf("%s: %v", name, got)
		}
		for i := range w {
			if got.Data[i] != w[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, got.Data[i], w[i])
			}
		}
	}
	// A shard one byte short must be reported, not read past.
	if err := os.WriteFile(filepath.Join(dir, "group1-shard2of2.bin"), data[8:len(data)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTFJS(dir); err == nil {
		t.Error("short shard accepted")
	}
}

// A shard path that leaves the model folder is refused, naming it, and
// the file it points at is not read.
func TestTFJSShardPathStaysInModelFolder(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "model")
	os.MkdirAll(dir, 0o755)
	secret := binary.LittleEndian.AppendUint32(nil, math.Float32bits(42))
	os.WriteFile(filepath.Join(root, "secret.bin"), secret, 0o644)
	os.WriteFile(filepath.Join(dir, "ok.bin"), secret, 0o644)
	for _, p := range []string{"../../secret.bin", "/" + filepath.Join(root, "secret.bin"), "sub/../../ok.bin", "", "..\\..\\secret.bin"} {
		manifest := `{"modelTopology": {}, "weightsManifest": [{"paths": [` + strconv.Quote(p) + `], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]}]}`
		os.WriteFile(filepath.Join(dir, "model.json"), []byte(manifest), 0o644)
		m, err := ReadTFJS(dir)
		if err == nil {
			t.Errorf("shard path %q read: %v", p, m.Tensors["w"].Data)
			continue
		}
		if !strings.Contains(err.Error(), "leaves the model folder") || !strings.Contains(err.Error(), "model.json") {
			t.Errorf("shard path %q: %v", p, err)
		}
	}
	// A path inside the folder is fine.
	os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"modelTopology": {}, "weightsManifest": [{"paths": ["./ok.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]}]}`), 0o644)
	if m, err := ReadTFJS(dir); err != nil || m.Tensors["w"].Data[0] != 42 {
		t.Errorf("./ok.bin: %v", err)
	}
}

func TestTFJSDTypeNamesTheStoredCode(t *testing.T) {
	dir := t.TempDir()
	manifest := `{"weightsManifest": [{"paths": ["s.bin"], "weights": [
	 {"name": "a", "shape": [1], "dtype": "float32", "quantization": {"min": 0, "scale": 1, "dtype": "uint8"}},
	 {"name": "b", "shape": [1], "dtype": "float32"}]}]}`
	os.WriteFile(filepath.Join(dir, "model.json"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(dir, "s.bin"), []byte{7, 0, 0, 0x80, 0x3f}, 0o644)
	m, err := ReadTFJS(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Tensors["a"].DType != Uint8 || m.Tensors["b"].DType != Float32 || m.Tensors["a"].Data[0] != 7 || m.Tensors["b"].Data[0] != 1 {
		t.Errorf("a %+v, b %+v", m.Tensors["a"], m.Tensors["b"])
	}
}
