package weights

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type expectedTensor struct {
	Shape []int64   `json:"shape"`
	DType string    `json:"dtype"`
	Data  []float64 `json:"data"`
}

// The fixtures and expected.json come from scripts/golden/torch_weights.py
// (Debian's torch 1.13); each file must read back exactly what torch.load
// returns, element for element.
func TestReadersMatchTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]map[string]expectedTensor
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file   string
		format Format
	}{
		{"plain_zip.pth", FormatTorchZip},
		{"plain_legacy.pth", FormatTorchLegacy},
		{"ckpt_zip.pth", FormatTorchZip},
		{"ckpt_legacy.pth", FormatTorchLegacy},
		{"misc_zip.pth", FormatTorchZip},
		{"misc_legacy.pth", FormatTorchLegacy},
		{"tiny.safetensors", FormatSafetensors},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", c.file)
			f, err := Detect(path)
			if err != nil || f != c.format {
				t.Fatalf("Detect = %q, %v; want %q", f, err, c.format)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			exp := want[c.file]
			if len(exp) == 0 {
				t.Fatalf("no expectations for %s", c.file)
			}
			if len(got) != len(exp) {
				t.Errorf("got %d tensors %v, want %d", len(got), got.Names(), len(exp))
			}
			for name, e := range exp {
				g, ok := got[name]
				if !ok {
					t.Errorf("%s missing", name)
					continue
				}
				if ShapeString(g.Shape) != ShapeString(e.Shape) {
					t.Errorf("%s: shape %v, want %v", name, g.Shape, e.Shape)
					continue
				}
				if string(g.DType) != e.DType {
					t.Errorf("%s: dtype %s, want %s", name, g.DType, e.DType)
				}
				if len(g.Data) != len(e.Data) {
					t.Errorf("%s: %d values, want %d", name, len(g.Data), len(e.Data))
					continue
				}
				for i := range e.Data {
					if g.Data[i] != float32(e.Data[i]) {
						t.Errorf("%s[%d] = %v, want %v", name, i, g.Data[i], e.Data[i])
						break
					}
				}
			}
		})
	}
}

func TestHalfToFloat(t *testing.T) {
	cases := []struct {
		bits uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, float32(math.Ldexp(1, -24))},
		{0x0400, float32(math.Ldexp(1, -14))}, {0x8000, float32(math.Copysign(0, -1))}, {0x3555, 0.33325195},
	}
	for _, c := range cases {
		if got := halfToFloat(c.bits); got != c.want || math.Signbit(float64(got)) != math.Signbit(float64(c.want)) {
			t.Errorf("halfToFloat(%#04x) = %v, want %v", c.bits, got, c.want)
		}
	}
	if !math.IsInf(float64(halfToFloat(0x7c00)), 1) || !math.IsNaN(float64(halfToFloat(0x7e00))) {
		t.Error("inf/nan not preserved")
	}
}

// Broken files must fail with an error naming the file, never panic.
func TestBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/plain_legacy.pth")
	if err != nil {
		t.Fatal(err)
	}
	zipGood, err := os.ReadFile("testdata/plain_zip.pth")
	if err != nil {
		t.Fatal(err)
	}
	safe, err := os.ReadFile("testdata/tiny.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated_legacy.pth": good[:len(good)-40],
		"cut_pickle.pth":       good[:60],
		"truncated_zip.pth":    zipGood[:len(zipGood)/2],
		"short.safetensors":    safe[:len(safe)-4],
		"text.pth":             []byte("hello, world"),
		"empty.pth":            {},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestJSLiteral(t *testing.T) {
	src := []byte(`!function(e){}({1:[function(e,a,n){a.exports={k:"v",'q':'it\'s',n:-1.5e-3,t:!0,f:!1,z:null,u:void 0,l:[1,2,{x:.5}],"s":"\u00e9"}},{}]},{},[1])(1)});`)
	v, err := jsExportsLiteral(src)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(v)
	want := `{"f":false,"k":"v","l":[1,2,{"x":0.5}],"n":-0.0015,"q":"it's","s":"é","t":true,"u":null,"z":null}`
	if string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

// Pickles as Python 2 wrote them (Cadene-era checkpoints): protocol 2,
// SHORT_BINSTRING keys, an OrderedDict reduced from a list of [k, v] lists.
func TestPython2OrderedDict(t *testing.T) {
	p := []byte("\x80\x02ccollections\nOrderedDict\nq\x00]q\x01(]q\x02(U\x01aK\x01e]q\x03(U\x01bK\x02ee\x85Rq\x04.")
	v, err := newUnpickler(strings.NewReader(string(p)), int64(len(p))).load()
	if err != nil {
		t.Fatal(err)
	}
	d, ok := v.(*pyDict)
	if !ok || len(d.Keys) != 2 || d.Values["a"] != int64(1) || d.Values["b"] != int64(2) {
		t.Fatalf("got %#v", v)
	}
}

// WriteSafetensors writes what ReadSafetensors reads back, counters as
// int64.
func TestWriteSafetensorsRoundTrip(t *testing.T) {
	s := Set{
		"a.weight":              {Shape: []int64{2, 3}, DType: Float32, Data: []float32{1, -2.5, 3, 0, 1e-30, 7}},
		"a.num_batches_tracked": {Shape: []int64{}, DType: Int64, Data: []float32{12}},
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteSafetensors(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a.num_batches_tracked"].DType != Int64 || got["a.num_batches_tracked"].Data[0] != 12 {
		t.Fatalf("read back %v", got)
	}
	for i, v := range s["a.weight"].Data {
		if got["a.weight"].Data[i] != v || ShapeString(got["a.weight"].Shape) != "[2, 3]" {
			t.Fatalf("a.weight read back as %v %v", got["a.weight"].Shape, got["a.weight"].Data)
		}
	}
}
