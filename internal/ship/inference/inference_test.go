package inference

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/data/dataset"
)

func TestListImages(t *testing.T) {
	cases := []struct {
		name    string
		files   []string
		ids     []string
		wantErr string
	}{
		{"sorted, images only", []string{"b.png", "a.JPG", "notes.txt", "c.jpeg"}, []string{"a", "b", "c"}, ""},
		{"same id twice", []string{"a.png", "a.jpg"}, nil, "same id a"},
		{"no images", []string{"readme.md"}, nil, "no image files"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range c.files {
				os.WriteFile(filepath.Join(dir, f), nil, 0o644)
			}
			os.Mkdir(filepath.Join(dir, "sub.png"), 0o755) // a folder is never an image
			paths, ids, err := ListImages(dir)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("error %v, want one naming %s with %q", err, dir, c.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(ids, c.ids) || len(paths) != len(ids) || filepath.Dir(paths[0]) != dir {
				t.Fatalf("ListImages: %v %v %v", paths, ids, err)
			}
		})
	}
}

func TestOpenRefusesWhatIsNoModel(t *testing.T) {
	empty := t.TempDir()
	binOnly := t.TempDir()
	os.WriteFile(filepath.Join(binOnly, "manifest.json"), []byte("{}"), 0o644)
	stray := filepath.Join(t.TempDir(), "x.ckpt")
	os.WriteFile(stray, []byte("x"), 0o644)
	cases := []struct{ path, want string }{
		{filepath.Join(empty, "missing"), "missing"},
		{empty, "not a bundle"},
		{binOnly, "inference.json"},
		{stray, "config.yaml"},
	}
	for _, c := range cases {
		if _, err := Open(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s): %v, want an error mentioning %q", c.path, err, c.want)
		}
	}
}

func TestGlobalRuleAveragesFoldThresholds(t *testing.T) {
	l, err := dataset.NewLabels([]int{3, 7, 9}, []string{"culture::a", "tag::b", "tag::c"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := globalRule(l, []float64{0.2, 0.3}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Rule("")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Thresholds, []float64{0.25, 0.25, 0.25}) || !slices.Equal(f.Labels, []string{"3", "7", "9"}) || !r.AtLeastOne {
		t.Fatalf("rule %+v, labels %v", r, f.Labels)
	}
	if _, err := globalRule(l, []float64{0}, 0); err == nil {
		t.Fatal("a zero threshold (no validation) was accepted")
	}
}

// ExampleListImages shows how image files become row ids: the file name
// without its extension, as in the iMet test folder.
func ExampleListImages() {
	dir, _ := os.MkdirTemp("", "images")
	defer os.RemoveAll(dir)
	for _, f := range []string{"10023b2cc4ed5f68.png", "0a1b2c.jpg", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	_, ids, _ := ListImages(dir)
	fmt.Println(ids)
	// Output: [0a1b2c 10023b2cc4ed5f68]
}
