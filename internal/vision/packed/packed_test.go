package packed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/vision/imageio"
)

// writeImages writes n small images under dir/train, alternately JPEG and
// PNG, of varied sizes, and returns their keys.
func writeImages(t testing.TB, dir string, n int) []string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "train"), 0o755); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range n {
		w, h := 30+7*i, 50-3*i
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				m.Set(x, y, color.RGBA{uint8(31 * i), uint8(x * 255 / w), uint8((x ^ y) * 5), 255})
			}
		}
		var buf bytes.Buffer
		key := fmt.Sprintf("train/%02d.png", i)
		if i%2 == 0 {
			key = fmt.Sprintf("train/%02d.jpg", i)
			jpeg.Encode(&buf, m, &jpeg.Options{Quality: 85})
		} else {
			png.Encode(&buf, m)
		}
		if err := os.WriteFile(filepath.Join(dir, key), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

func build(t testing.TB, n int, opt Options) (dir, pack string, keys []string) {
	t.Helper()
	dir = t.TempDir()
	keys = writeImages(t, dir, n)
	pack = filepath.Join(dir, "images.pack")
	st, err := Build(pack, dir, keys, opt)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(pack)
	if err != nil {
		t.Fatal(err)
	}
	if st.Images != n || st.Bytes != fi.Size() {
		t.Fatalf("stats %+v, file of %d bytes", st, fi.Size())
	}
	return dir, pack, keys
}

func TestRoundTrip(t *testing.T) {
	dir, pack, keys := build(t, 6, Options{Workers: 3})
	r, err := Open(pack, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != len(keys) || r.MaxSide() != 0 {
		t.Fatalf("%d images, max side %d", r.Len(), r.MaxSide())
	}
	for i, k := range keys {
		want, err := imageio.Decode(filepath.Join(dir, k), imageio.Hint{})
		if err != nil {
			t.Fatal(err)
		}
		j, ok := r.Lookup(filepath.Join(dir, k))
		if !ok || j != i {
			t.Fatalf("Lookup(%s) = %d, %v; want %d", k, j, ok, i)
		}
		got, err := r.Image(j)
		if err != nil {
			t.Fatal(err)
		}
		e := r.Entry(j)
		if e.Key != k || !e.Full() || got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("%s: stored %+v differs from the decoded %dx%d", k, e, want.W, want.H)
		}
	}
	if _, ok := r.Lookup(filepath.Join(dir, "train", "missing.png")); ok {
		t.Error("Lookup found an image that was never packed")
	}
	// A sibling directory whose name extends the root's is not the root.
	if _, ok := r.Lookup(dir + "x/" + keys[0]); ok {
		t.Errorf("Lookup found %s under a sibling of the root", keys[0])
	}
	if j, ok := r.Lookup(dir + "/./train/../" + keys[0]); !ok || j != 0 {
		t.Errorf("an unclean path to %s: %d, %v", keys[0], j, ok)
	}
	// A relative path finds the same image as an absolute one.
	wd, _ := os.Getwd()
	if rel, err := filepath.Rel(wd, filepath.Join(dir, keys[1])); err == nil {
		if j, ok := r.Lookup(rel); !ok || j != 1 {
			t.Errorf("Lookup(%s) = %d, %v", rel, j, ok)
		}
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestMaxSideKeepsOriginalSize(t *testing.T) {
	dir, pack, keys := build(t, 5, Options{MaxSide: 50})
	r, err := Open(pack, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	capped := 0
	for i, k := range keys {
		full, err := imageio.Decode(filepath.Join(dir, k), imageio.Hint{})
		if err != nil {
			t.Fatal(err)
		}
		e := r.Entry(i)
		if e.OrigW != full.W || e.OrigH != full.H || max(e.W, e.H) > 50 {
			t.Fatalf("%s: entry %+v for a %dx%d image capped at 50", k, e, full.W, full.H)
		}
		want := full
		if max(full.W, full.H) > 50 {
			capped++
			if want, err = Shrink(full, 50); err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("%s: stored pixels are not the shrunk image", k)
		}
	}
	if capped == 0 || capped == len(keys) {
		t.Fatalf("%d of %d capped: the test images should straddle the cap", capped, len(keys))
	}
}

func TestCorruptPixelsNamed(t *testing.T) {
	dir, pack, keys := build(t, 4, Options{})
	data, _ := os.ReadFile(pack)
	r0, err := Open(pack, dir)
	if err != nil {
		t.Fatal(err)
	}
	off := r0.Entry(2).off
	r0.Close()
	data[off+5] ^= 0x40
	if err := os.WriteFile(pack, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(pack, dir)
	if err != nil {
		t.Fatalf("a flipped pixel should fail at read time, not Open: %v", err)
	}
	defer r.Close()
	for _, i := range []int{0, 1, 3} {
		if _, err := r.Image(i); err != nil {
			t.Errorf("intact image %d: %v", i, err)
		}
	}
	_, err = r.Image(2)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Index != 2 || !strings.Contains(err.Error(), pack) || !strings.Contains(err.Error(), keys[2]) {
		t.Fatalf("corrupt image 2: got %v", err)
	}
	if err := r.Verify(); !errors.As(err, &ce) {
		t.Fatalf("Verify: %v", err)
	}
}

func TestCorruptIndex(t *testing.T) {
	_, pack, _ := build(t, 3, Options{})
	data, _ := os.ReadFile(pack)
	ioff := binary.LittleEndian.Uint64(data[len(data)-trailerSize:])
	data[ioff+7] ^= 1
	_, _, err := parse(pack, data)
	if err == nil || !strings.Contains(err.Error(), "index checksum") || !strings.Contains(err.Error(), pack) {
		t.Fatalf("got %v", err)
	}
}

func TestVersionMismatchRefused(t *testing.T) {
	dir, pack, _ := build(t, 2, Options{})
	data, _ := os.ReadFile(pack)
	binary.LittleEndian.PutUint32(data[8:], Version+1)
	os.WriteFile(pack, data, 0o644)
	_, err := Open(pack, dir)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", Version+1)) || !strings.Contains(err.Error(), pack) {
		t.Fatalf("got %v", err)
	}
}

func TestTruncatedRefused(t *testing.T) {
	dir, pack, _ := build(t, 3, Options{})
	data, _ := os.ReadFile(pack)
	for _, n := range []int{0, 5, 40, headerSize + 10, len(data) / 2, len(data) - trailerSize, len(data) - 1} {
		os.WriteFile(pack, data[:n], 0o644)
		_, err := Open(pack, dir)
		if err == nil || !strings.Contains(err.Error(), pack) {
			t.Fatalf("cut to %d of %d bytes: got %v", n, len(data), err)
		}
		if n >= headerSize && !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut to %d bytes: %v does not say truncated", n, err)
		}
	}
}

func TestBrokenSourceKeepsPreviousPack(t *testing.T) {
	dir, pack, keys := build(t, 3, Options{})
	before, _ := os.ReadFile(pack)
	broken := filepath.Join(dir, keys[1])
	data, _ := os.ReadFile(broken)
	os.WriteFile(broken, data[:len(data)/2], 0o644)
	_, err := Build(pack, dir, keys, Options{})
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Fatalf("got %v, want an error naming %s", err, broken)
	}
	after, _ := os.ReadFile(pack)
	if !bytes.Equal(before, after) {
		t.Error("a failed build changed the previous pack")
	}
}

func TestWriterRejectsDuplicates(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, 0)
	img := imageio.New(2, 2)
	if err := w.Add("a.png", img, 2, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("a.png", img, 2, 2); err == nil {
		t.Fatal("duplicate key accepted")
	}
}

// BenchmarkLookup is what New pays per item when a loader is given a pack
// (relative paths, as a relative data.root gives).
func BenchmarkLookup(b *testing.B) {
	dir, pack, keys := build(b, 2, Options{})
	r, err := Open(pack, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	wd, _ := os.Getwd()
	rel, _ := filepath.Rel(wd, filepath.Join(dir, keys[1]))
	for b.Loop() {
		if _, ok := r.Lookup(rel); !ok {
			b.Fatal("not found")
		}
	}
}
