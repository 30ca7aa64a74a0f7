// Package emojiset builds a real multi-label data set in the iMet layout
// from two pinned npm packages: the 64x64 Google emoji images and metadata
// of emoji-datasource-google@16.0.0, and the English tags of
// emojibase-data@17.0.0. It is the quality benchmark of the training code:
// small enough to train on 2 cores, real enough (drawn artwork, noisy
// crowd-sourced tags, a long tail) that a good recipe visibly beats a bad
// one.
//
// Each image gets one culture:: label, its "category/subcategory" (e.g.
// "Animals & Nature/animal-mammal"), and tag:: labels, the emojibase tags
// of its base emoji that occur on at least MinTagCount base emoji. Skin-tone
// variants share their base emoji's labels and are kept on one side of
// every split: the test set and the folds are drawn by base emoji, so a
// model is never validated on a recoloured copy of a training image.
package emojiset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
)

// Pinned package versions the builder is written against.
const (
	DatasourcePackage = "emoji-datasource-google"
	DatasourceVersion = "16.0.0"
	TagsPackage       = "emojibase-data"
	TagsVersion       = "17.0.0"
)

// Files written besides the iMet layout.
const (
	TestLabelsFile = "test_labels.csv"
	FoldsFile      = "folds.csv"
	GroupsFile     = "groups.csv"
)

// Config sets how the data set is built.
type Config struct {
	Assets         string  `yaml:"assets" doc:"node_modules directory holding the two npm packages (default: $IMET_ASSETS, else <repo>/.cache/npm/node_modules)."`
	MinTagCount    int     `yaml:"min_tag_count" doc:"Keep a tag only if at least this many base emoji carry it."`
	MinSubcategory int     `yaml:"min_subcategory" doc:"Subcategories with fewer base emoji are merged into <category>/other."`
	TestFraction   float64 `yaml:"test_fraction" doc:"Fraction of base emoji (with all their variants) held out as the test set."`
	Folds          int     `yaml:"folds" doc:"Cross-validation folds written to folds.csv, split by base emoji."`
	Seed           uint64  `yaml:"seed" doc:"Seed of the test split and the folds."`
	MaxBase        int     `yaml:"max_base" doc:"Use only the first N base emoji in sort order (0: all); for quick tests."`
	Background     string  `yaml:"background" doc:"Colour the transparent emoji are flattened onto: white or black."`
}

// Default is the benchmark's configuration.
func Default() Config {
	return Config{MinTagCount: 10, MinSubcategory: 3, TestFraction: 0.15, Folds: 5, Seed: 42, Background: "white"}
}

// ErrNoAssets means the npm packages are not where the builder looked.
var ErrNoAssets = errors.New("emoji assets not found")

// DefaultAssets returns $IMET_ASSETS, or else the first
// .cache/npm/node_modules found in the working directory or above it.
func DefaultAssets() (string, error) {
	if a := os.Getenv("IMET_ASSETS"); a != "" {
		return a, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ".cache", "npm", "node_modules")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: IMET_ASSETS is unset and no .cache/npm/node_modules above the working directory (run scripts/assets.sh)", ErrNoAssets)
		}
		dir = parent
	}
}

// CheckAssets verifies that both pinned packages are in dir.
func CheckAssets(dir string) error {
	for _, p := range [][2]string{{DatasourcePackage, DatasourceVersion}, {TagsPackage, TagsVersion}} {
		data, err := os.ReadFile(filepath.Join(dir, p[0], "package.json"))
		if err != nil {
			return fmt.Errorf("%w: %s@%s not in %s (run scripts/assets.sh or set IMET_ASSETS)", ErrNoAssets, p[0], p[1], dir)
		}
		var pkg struct{ Version string }
		if err := json.Unmarshal(data, &pkg); err != nil || pkg.Version != p[1] {
			return fmt.Errorf("%w: %s in %s is version %q, want %s", ErrNoAssets, p[0], dir, pkg.Version, p[1])
		}
	}
	return nil
}

// source is one emoji of emoji-datasource's emoji.json.
type source struct {
	Unified      string `json:"unified"`
	NonQualified string `json:"non_qualified"`
	Image        string `json:"image"`
	Category     string `json:"category"`
	Subcategory  string `json:"subcategory"`
	SortOrder    int    `json:"sort_order"`
	HasImg       bool   `json:"has_img_google"`
	Skins        map[string]struct {
		Image  string `json:"image"`
		HasImg bool   `json:"has_img_google"`
	} `json:"skin_variations"`
}

// Item is one image of the built data set.
type Item struct {
	ID    string // image file name without .png
	Base  string // id of the base emoji (the group kept together)
	Path  string // source PNG
	Label []int  // label columns
	Test  bool
}

// Summary describes what Build wrote.
type Summary struct {
	Labels       *dataset.Labels
	Items        []Item
	BaseEmoji    int
	Train, Test  int
	DroppedTags  int // distinct tags below MinTagCount
	TagsPerImage float64
}

// normHex drops the emoji variation selector FE0F and upper-cases, the
// form both packages agree on.
func normHex(h string) string {
	var parts []string
	for _, p := range strings.Split(strings.ToUpper(h), "-") {
		if p != "FE0F" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "-")
}

// load reads and joins the two packages into items (not yet split).
func load(cfg Config) (*dataset.Labels, []Item, int, error) {
	dsPath := filepath.Join(cfg.Assets, DatasourcePackage, "emoji.json")
	data, err := os.ReadFile(dsPath)
	if err != nil {
		return nil, nil, 0, err
	}
	var srcs []source
	if err := json.Unmarshal(data, &srcs); err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %w", dsPath, err)
	}
	tagPath := filepath.Join(cfg.Assets, TagsPackage, "en", "data.json")
	if data, err = os.ReadFile(tagPath); err != nil {
		return nil, nil, 0, err
	}
	var base []struct {
		Hexcode string   `json:"hexcode"`
		Tags    []string `json:"tags"`
	}
	if err := json.Unmarshal(data, &base); err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %w", tagPath, err)
	}
	tagsOf := make(map[string][]string, len(base))
	for _, b := range base {
		tagsOf[normHex(b.Hexcode)] = b.Tags
	}
	// Component emoji (skin-tone and hair swatches) are parts, not
	// pictures; they are left out.
	var keep []source
	for _, s := range srcs {
		if s.Category != "Component" && s.HasImg {
			keep = append(keep, s)
		}
	}
	sort.SliceStable(keep, func(i, j int) bool { return keep[i].SortOrder < keep[j].SortOrder })
	if cfg.MaxBase > 0 && len(keep) > cfg.MaxBase {
		keep = keep[:cfg.MaxBase]
	}
	subCount := map[string]int{}
	tagCount := map[string]int{}
	tags := make([][]string, len(keep))
	for i, s := range keep {
		subCount[s.Category+"/"+s.Subcategory]++
		t, ok := tagsOf[normHex(s.Unified)]
		if !ok && s.NonQualified != "" {
			t = tagsOf[normHex(s.NonQualified)]
		}
		tags[i] = t
		for _, x := range t {
			tagCount[x]++
		}
	}
	culture := func(s source) string {
		if sub := s.Category + "/" + s.Subcategory; subCount[sub] >= cfg.MinSubcategory {
			return sub
		}
		return s.Category + "/other"
	}
	// Label columns: cultures then tags, each in order of first appearance
	// in emoji sort order, as stable as the packages are.
	var ids []int
	var names []string
	col := map[string]int{}
	addLabel := func(name string) {
		if _, ok := col[name]; !ok {
			col[name] = len(ids)
			ids = append(ids, len(ids))
			names = append(names, name)
		}
	}
	for _, s := range keep {
		addLabel("culture::" + culture(s))
	}
	dropped := 0
	for _, t := range tags {
		for _, x := range t {
			if tagCount[x] >= cfg.MinTagCount {
				addLabel("tag::" + x)
			}
		}
	}
	for _, n := range tagCount {
		if n < cfg.MinTagCount {
			dropped++
		}
	}
	labels, err := dataset.NewLabels(ids, names)
	if err != nil {
		return nil, nil, 0, err
	}
	imgDir := filepath.Join(cfg.Assets, DatasourcePackage, "img", "google", "64")
	var items []Item
	for i, s := range keep {
		cols := []int{col["culture::"+culture(s)]}
		for _, x := range tags[i] {
			if c, ok := col["tag::"+x]; ok {
				cols = append(cols, c)
			}
		}
		sort.Ints(cols)
		baseID := strings.TrimSuffix(s.Image, ".png")
		items = append(items, Item{ID: baseID, Base: baseID, Path: filepath.Join(imgDir, s.Image), Label: cols})
		skins := make([]string, 0, len(s.Skins))
		for k := range s.Skins {
			skins = append(skins, k)
		}
		sort.Strings(skins)
		for _, k := range skins {
			v := s.Skins[k]
			if !v.HasImg {
				continue
			}
			items = append(items, Item{ID: strings.TrimSuffix(v.Image, ".png"), Base: baseID, Path: filepath.Join(imgDir, v.Image), Label: cols})
		}
	}
	return labels, items, dropped, nil
}

// Build writes the data set into dir: the iMet layout (labels.csv,
// train.csv, sample_submission.csv, train/, test/), test_labels.csv with the
// test truth, folds.csv (id,fold) for the train images and groups.csv
// (id,group: the base emoji) so that `imet folds` keeps variants together
// too.
func Build(dir string, cfg Config) (*Summary, error) {
	if cfg.Assets == "" {
		a, err := DefaultAssets()
		if err != nil {
			return nil, err
		}
		cfg.Assets = a
	}
	if err := CheckAssets(cfg.Assets); err != nil {
		return nil, err
	}
	if cfg.TestFraction <= 0 || cfg.TestFraction >= 1 {
		return nil, fmt.Errorf("emojiset: test fraction %g outside (0, 1)", cfg.TestFraction)
	}
	var bg color.Color = color.White
	switch cfg.Background {
	case "white", "":
	case "black":
		bg = color.Black
	default:
		return nil, fmt.Errorf("emojiset: background %q: want white or black", cfg.Background)
	}
	labels, items, dropped, err := load(cfg)
	if err != nil {
		return nil, err
	}
	// Test split: stratify base emoji into round(1/fraction) parts and hold
	// out the first, so the test set has the label mix of the whole.
	lab := make([][]int, len(items))
	groups := make([]string, len(items))
	for i, it := range items {
		lab[i], groups[i] = it.Label, it.Base
	}
	parts := max(2, int(1/cfg.TestFraction+0.5))
	part, err := folds.StratifyGroups(lab, groups, labels.Len(), parts, cfg.Seed)
	if err != nil {
		return nil, err
	}
	var train, test []Item
	for i := range items {
		items[i].Test = part[i] == 0
		if items[i].Test {
			test = append(test, items[i])
		} else {
			train = append(train, items[i])
		}
	}
	for _, sub := range []string{dataset.TrainDir, dataset.TestDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := copyImages(dir, items, bg); err != nil {
		return nil, err
	}
	rows := func(its []Item) []dataset.Row {
		out := make([]dataset.Row, len(its))
		for i, it := range its {
			out[i] = dataset.Row{ID: it.ID, Labels: it.Label}
		}
		return out
	}
	trLab := make([][]int, len(train))
	trGroups := make([]string, len(train))
	trIDs := make([]string, len(train))
	for i, it := range train {
		trLab[i], trGroups[i], trIDs[i] = it.Label, it.Base, it.ID
	}
	fold, err := folds.StratifyGroups(trLab, trGroups, labels.Len(), cfg.Folds, cfg.Seed)
	if err != nil {
		return nil, err
	}
	testIDs := make([]string, len(test))
	for i, it := range test {
		testIDs[i] = it.ID
	}
	steps := []func() error{
		func() error { return dataset.WriteLabels(filepath.Join(dir, dataset.LabelsFile), labels) },
		func() error { return dataset.WriteTrain(filepath.Join(dir, TestLabelsFile), labels, rows(test)) },
		func() error {
			return dataset.WriteSampleSubmission(filepath.Join(dir, dataset.SampleFile), testIDs, "0")
		},
		func() error { return folds.Write(filepath.Join(dir, FoldsFile), trIDs, fold) },
		func() error { return folds.WriteGroups(filepath.Join(dir, GroupsFile), trIDs, trGroups) },
		func() error { return dataset.WriteTrain(filepath.Join(dir, dataset.TrainFile), labels, rows(train)) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	sum := &Summary{Labels: labels, Items: items, Train: len(train), Test: len(test), DroppedTags: dropped}
	n := 0
	for _, it := range items {
		if it.ID == it.Base {
			sum.BaseEmoji++
		}
		n += len(it.Label) - 1
	}
	sum.TagsPerImage = float64(n) / float64(len(items))
	return sum, nil
}

// copyImages flattens each emoji onto the background colour and writes it
// as an opaque RGB PNG: transparent pixels carry arbitrary colour under
// alpha 0, which loaders that drop alpha (PIL's convert("RGB"), many
// decoders) would show as black, so imet and a reference script would
// otherwise see different pictures.
func copyImages(dir string, items []Item, bg color.Color) error {
	var wg sync.WaitGroup
	jobs := make(chan int)
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for i := range jobs {
				it := items[i]
				err := func() error {
					f, err := os.Open(it.Path)
					if err != nil {
						return err
					}
					src, err := png.Decode(f)
					f.Close()
					if err != nil {
						return fmt.Errorf("%s: %w", it.Path, err)
					}
					out := image.NewRGBA(src.Bounds())
					draw.Draw(out, out.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
					draw.Draw(out, out.Bounds(), src, src.Bounds().Min, draw.Over)
					buf.Reset()
					if err := png.Encode(&buf, out); err != nil {
						return err
					}
					sub := dataset.TrainDir
					if it.Test {
						sub = dataset.TestDir
					}
					return os.WriteFile(filepath.Join(dir, sub, it.ID+".png"), buf.Bytes(), 0o644)
				}()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range items {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return firstErr
}
