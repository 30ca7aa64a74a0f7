package probs

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/base/pyref"
)

func randomMatrix(rows, cols int, seed uint64) *Matrix {
	r := rand.New(rand.NewPCG(seed, 1))
	m := NewMatrix(rows, cols)
	for i := range m.Data {
		m.Data[i] = r.Float32()
	}
	return m
}

func TestRoundTripGo(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range [][2]int{{7, 5}, {1, 1}, {0, 3}, {300, 17}} {
		m := randomMatrix(shape[0], shape[1], 3)
		p := filepath.Join(dir, fmt.Sprintf("m%dx%d.npy", shape[0], shape[1]))
		if err := WriteNPY(p, m); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(p)
		if hl := len(raw) - 4*len(m.Data); hl%64 != 0 {
			t.Errorf("%v: data starts at byte %d, not 64-aligned", shape, hl)
		}
		got, err := ReadNPY(p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows != m.Rows || got.Cols != m.Cols || !equal(got.Data, m.Data) {
			t.Fatalf("%v: round trip changed the matrix", shape)
		}
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestSidecars(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "oof.npy")
	f := &File{Matrix: randomMatrix(3, 2, 1), IDs: []string{"a", "b", "c"}, Labels: []string{"10", "11"}}
	if err := Save(p, f); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{"oof.ids.csv", "oof.labels.csv"} {
		if _, err := os.Stat(filepath.Join(dir, side)); err != nil {
			t.Fatalf("sidecar %s not written: %v", side, err)
		}
	}
	g, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(g.IDs, ",") != "a,b,c" || strings.Join(g.Labels, ",") != "10,11" || !equal(g.Data, f.Data) {
		t.Fatalf("Load gave %v %v", g.IDs, g.Labels)
	}

	cases := []struct {
		name, ids, want string
	}{
		{"too few ids", "id\na\nb\n", "has 2 ids but"},
		{"duplicate id", "id\na\nb\na\n", ":4: id \"a\" repeats line 2"},
		{"wrong header", "image\na\nb\nc\n", "header is \"image\""},
		{"empty id", "id\na\n\"\"\nc\n", ":3: empty id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(IDsPath(p), []byte(c.ids), 0o644)
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
	os.Remove(IDsPath(p))
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "no ids sidecar") {
		t.Fatalf("missing sidecar: %v", err)
	}
}

func TestRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.npy")
	if err := WriteNPY(good, randomMatrix(4, 4, 2)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"not npy", []byte("id,attribute_ids\n1,2\n"), "bad magic"},
		{"short", raw[:5], "too short"},
		{"truncated data", raw[:len(raw)-3], "data truncated"},
		{"int dtype", bytes.Replace(raw, []byte("'<f4'"), []byte("'<i4'"), 1), "dtype \"<i4\" is not supported"},
		{"fortran", bytes.Replace(raw, []byte("False"), []byte("True "), 1), "Fortran order"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.npy")
			os.WriteFile(p, c.data, 0o644)
			_, err := ReadNPY(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v, want error naming %s and containing %q", err, p, c.want)
			}
		})
	}
}

func TestHalf(t *testing.T) {
	cases := map[uint16]float32{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x3555: 0.333251953125,
		0x0001: 5.960464477539063e-08, 0x7bff: 65504,
	}
	for h, want := range cases {
		if got := halfToFloat32(h); got != want {
			t.Errorf("half %#04x = %v, want %v", h, got, want)
		}
	}
	if !math.IsInf(float64(halfToFloat32(0x7c00)), 1) || !math.IsNaN(float64(halfToFloat32(0x7e00))) {
		t.Error("inf/nan not preserved")
	}
}

// TestNumPyRoundTrip has NumPy read what imet writes and write back every
// layout imet reads or must refuse.
func TestNumPyRoundTrip(t *testing.T) {
	py := pyref.Require(t, "numpy")
	dir := t.TempDir()
	m := randomMatrix(37, 11, 9)
	if err := WriteNPY(filepath.Join(dir, "go.npy"), m); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "../../../scripts/golden/npy_roundtrip.py", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy side failed: %v\n%s", err, out)
	}
	var sum float64
	for _, v := range m.Data {
		sum += float64(v)
	}
	if !strings.HasPrefix(string(out), "37 11 ") {
		t.Fatalf("numpy saw a different shape: %s", out)
	}
	for _, name := range []string{"f4", "f8", "be"} {
		got, err := ReadNPY(filepath.Join(dir, name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows != 37 || got.Cols != 11 || !equal(got.Data, m.Data) {
			t.Errorf("%s: values differ from what imet wrote", name)
		}
	}
	h, err := ReadNPY(filepath.Join(dir, "f2.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ReadNPY(filepath.Join(dir, "f2_expected.npy"))
	if !equal(h.Data, want.Data) {
		t.Error("float16 widening differs from numpy's")
	}
	for name, msg := range map[string]string{"fortran": "Fortran order", "int": "not supported", "rank3": "want 2 dimensions"} {
		if _, err := ReadNPY(filepath.Join(dir, name+".npy")); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: got %v, want error containing %q", name, err, msg)
		}
	}
}
