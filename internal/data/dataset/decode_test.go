package dataset

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With Decode, each broken image is a problem at the CSV line that names
// it, saying why; a missing one is reported once, as missing. Without
// Decode, a broken file passes (only its existence is checked).
func TestValidateDecodeReportsBrokenImages(t *testing.T) {
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 20, 20)))
	good := b.Bytes()
	dir := t.TempDir()
	files := map[string][]byte{
		"labels.csv":            []byte("attribute_id,attribute_name\n0,culture::a\n1,tag::b\n"),
		"train.csv":             []byte("id,attribute_ids\nok,0\ncut,1\nnil,0 1\ngone,1\n"),
		"sample_submission.csv": []byte("id,attribute_ids\ntxt,0\n"),
		"train/ok.png":          good,
		"train/cut.png":         good[:len(good)/2],
		"train/nil.png":         {},
		"test/txt.png":          []byte("not a picture"),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, data, 0o644)
	}
	if _, probs := Validate(dir, Options{}); len(probs) != 1 || !strings.Contains(probs[0].Error(), "missing") {
		t.Fatalf("without Decode: %v", probs)
	}
	_, probs := Validate(dir, Options{Decode: true, DecodeWorkers: 2})
	want := []string{
		`train.csv:5: image file missing: "train/gone.png"`,
		`train.csv:3: broken image, truncated`,
		`train.csv:4: broken image, zero bytes: "train/nil.png"`,
		`sample_submission.csv:2: broken image, not an image (neither JPEG nor PNG): "test/txt.png"`,
	}
	if len(probs) != len(want) {
		t.Fatalf("problems:\n%v", probs)
	}
	for i, w := range want {
		if !strings.HasPrefix(probs[i].Error(), w) {
			t.Errorf("problem %d: %q, want %q…", i, probs[i].Error(), w)
		}
	}
	if !strings.HasSuffix(probs[1].Error(), `"train/cut.png"`) {
		t.Errorf("truncated problem does not name the file: %s", probs[1].Error())
	}
}
