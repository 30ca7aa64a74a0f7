package emojiset

import (
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
)

// assets finds the npm packages or skips the test, saying why.
func assets(t *testing.T) string {
	t.Helper()
	dir, err := DefaultAssets()
	if err == nil {
		err = CheckAssets(dir)
	}
	if err != nil {
		t.Skipf("emoji assets unavailable (%v); run scripts/assets.sh", err)
	}
	return dir
}

func TestBuild(t *testing.T) {
	cfg := Default()
	cfg.Assets = assets(t)
	cfg.MaxBase = 400 // smileys and the first people, with skin tones
	cfg.MinTagCount = 5
	dir := t.TempDir()
	sum, err := Build(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, probs := dataset.Validate(dir, dataset.Options{})
	if len(probs) > 0 {
		t.Fatalf("validator: %v", probs)
	}
	if sum.BaseEmoji != 400 || len(d.Train) != sum.Train || len(d.TestIDs) != sum.Test || sum.Train+sum.Test <= 400 {
		t.Fatalf("summary %+v, %d train rows, %d test", sum, len(d.Train), len(d.TestIDs))
	}
	if strings.Join(d.Labels.Groups, ",") != "culture,tag" {
		t.Fatalf("groups %v", d.Labels.Groups)
	}

	// Variants of one base emoji never straddle train and test, nor two
	// folds, and folds.csv covers exactly the train rows.
	side := map[string]bool{}
	variants := 0
	for _, it := range sum.Items {
		if s, ok := side[it.Base]; ok && s != it.Test {
			t.Fatalf("base %s has images in both train and test", it.Base)
		}
		side[it.Base] = it.Test
		if it.ID != it.Base {
			variants++
		}
	}
	if variants == 0 {
		t.Fatal("no skin-tone variants in the sample; the grouping is untested")
	}
	a, err := folds.Read(filepath.Join(dir, FoldsFile))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(d.Train))
	for i, r := range d.Train {
		ids[i] = r.ID
	}
	fold, err := a.For(ids)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := folds.ReadGroups(filepath.Join(dir, GroupsFile), ids)
	if err != nil {
		t.Fatal(err)
	}
	foldOf := map[string]int{}
	for i, g := range groups {
		if f, ok := foldOf[g]; ok && f != fold[i] {
			t.Fatalf("base %s in folds %d and %d", g, f, fold[i])
		}
		foldOf[g] = fold[i]
	}

	// Every row has exactly one culture; every kept tag is carried by at
	// least MinTagCount base emoji.
	baseWith := map[int]map[string]bool{}
	for _, it := range sum.Items {
		cultures := 0
		for _, c := range it.Label {
			if d.Labels.GroupOf[c] == 0 {
				cultures++
			} else {
				if baseWith[c] == nil {
					baseWith[c] = map[string]bool{}
				}
				baseWith[c][it.Base] = true
			}
		}
		if cultures != 1 {
			t.Fatalf("%s has %d culture labels", it.ID, cultures)
		}
	}
	for _, c := range d.Labels.Columns(1) {
		if n := len(baseWith[c]); n < cfg.MinTagCount {
			t.Fatalf("tag %s on %d base emoji, below the minimum %d", d.Labels.Names[c], n, cfg.MinTagCount)
		}
	}

	// Images are opaque 64x64.
	f, err := os.Open(d.TrainImage(d.Train[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
		t.Fatalf("image %v", b)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0xffff {
		t.Fatalf("corner alpha %d: image not flattened", a)
	}
}

func TestMissingAssets(t *testing.T) {
	cfg := Default()
	cfg.Assets = t.TempDir()
	_, err := Build(t.TempDir(), cfg)
	if !errors.Is(err, ErrNoAssets) || !strings.Contains(err.Error(), "emoji-datasource-google@16.0.0") {
		t.Fatalf("error %v", err)
	}
}
