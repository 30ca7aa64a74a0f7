package synth

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/data/dataset"
)

func small() Config {
	c := Default()
	c.Train, c.Test = 40, 12
	return c
}

// readTree returns every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The same seed gives byte-identical files whatever the number of
// workers; another seed gives different ones.
func TestGenerateDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	cfg := small()
	cfg.Workers = 1
	if _, err := Generate(a, cfg, false); err != nil {
		t.Fatal(err)
	}
	cfg.Workers = 4
	if _, err := Generate(b, cfg, false); err != nil {
		t.Fatal(err)
	}
	cfg.Seed++
	if _, err := Generate(c, cfg, false); err != nil {
		t.Fatal(err)
	}
	fa, fb, fc := readTree(t, a), readTree(t, b), readTree(t, c)
	if len(fa) != 40+12+6 {
		t.Fatalf("%d files, want %d", len(fa), 40+12+6)
	}
	for name, data := range fa {
		if !bytes.Equal(data, fb[name]) {
			t.Fatalf("%s differs between two runs with the same seed", name)
		}
	}
	if bytes.Equal(fa["train.csv"], fc["train.csv"]) {
		t.Fatal("different seeds gave the same train.csv")
	}
}

// The output is a valid iMet data set by this repository's own validator,
// and the clean label files read against its labels.csv.
func TestGenerateValidates(t *testing.T) {
	dir := t.TempDir()
	p, err := Generate(dir, small(), false)
	if err != nil {
		t.Fatal(err)
	}
	d, probs := dataset.Validate(dir, dataset.Options{})
	if len(probs) > 0 {
		t.Fatalf("validator: %v", probs)
	}
	if len(d.Train) != 40 || len(d.TestIDs) != 12 || d.Ext != ".png" {
		t.Fatalf("train %d test %d ext %s", len(d.Train), len(d.TestIDs), d.Ext)
	}
	if strings.Join(d.Labels.Groups, ",") != "culture,tag" {
		t.Fatalf("groups %v", d.Labels.Groups)
	}
	for _, f := range []string{CleanTrainFile, TestLabelsFile} {
		rows, err := dataset.ReadTrain(filepath.Join(dir, f), d.Labels, dataset.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if d.Labels.GroupOf[r.Labels[0]] != 0 || (len(r.Labels) > 1 && d.Labels.GroupOf[r.Labels[1]] != 1) {
				t.Fatalf("%s: row %s does not hold one culture then tags", f, r.ID)
			}
		}
	}
	// Image sizes on disk match the plan.
	im := p.Images[0]
	data, _ := os.ReadFile(d.TrainImage(im.ID))
	if w, h := pngSize(data); w != im.W || h != im.H {
		t.Fatalf("image %s is %dx%d, plan %dx%d", im.ID, w, h, im.W, im.H)
	}
	if _, err := Generate(dir, small(), false); err == nil {
		t.Fatal("generated over an existing data set without overwrite")
	}
}

func pngSize(b []byte) (int, int) {
	if len(b) < 24 {
		return 0, 0
	}
	be := func(x []byte) int { return int(x[0])<<24 | int(x[1])<<16 | int(x[2])<<8 | int(x[3]) }
	return be(b[16:20]), be(b[20:24])
}

// Label statistics fall in the ranges the sample promises, and the noise
// reaching train.csv matches the configured rates.
func TestPlanStatistics(t *testing.T) {
	cfg := Default()
	cfg.Train, cfg.Test = 6000, 0
	p, err := NewPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.MinTags != 1 || s.MaxTags != 5 || s.TagsPerImage < 2 || s.TagsPerImage > 3 {
		t.Errorf("tags per image %.2f in [%d, %d], want mean 2-3 in [1, 5]", s.TagsPerImage, s.MinTags, s.MaxTags)
	}
	for c, n := range s.CultureCount {
		if n == 0 {
			t.Errorf("culture %d never drawn", c)
		}
	}
	// Long tail: the commonest tag is several times the rarest, and the
	// rarest still has enough examples to learn from.
	lo, hi := s.TagCount[0], s.TagCount[0]
	for _, n := range s.TagCount {
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi < 4*lo || lo < 50 {
		t.Errorf("tag counts from %d to %d: want a long tail with every tag present", lo, hi)
	}
	near := func(name string, got, want, tol float64) {
		if math.Abs(got-want) > tol {
			t.Errorf("%s %.4f, want %.2f ± %.2f", name, got, want, tol)
		}
	}
	near("missed tags", s.MissedTags, cfg.MissRate, 0.015)
	near("spurious images", s.SpuriousImages, cfg.SpuriousRate, 0.015)
	near("wrong culture", s.WrongCulture, cfg.WrongStyleRate, 0.01)
	near("extreme aspect", s.Extreme, cfg.Extreme, 0.015)

	cfg.MissRate, cfg.SpuriousRate, cfg.WrongStyleRate = 0, 0, 0
	p, _ = NewPlan(cfg)
	if s := p.Stats(); s.MissedTags != 0 || s.SpuriousImages != 0 || s.WrongCulture != 0 {
		t.Errorf("zero noise rates gave noise: %+v", s)
	}
}

func TestConfigChecked(t *testing.T) {
	cases := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Tags = 99 }, "tags 99 outside"},
		{func(c *Config) { c.Cultures = 1 }, "cultures 1 outside"},
		{func(c *Config) { c.Train = 0 }, "at least 1 train image"},
		{func(c *Config) { c.MissRate = 1.5 }, "rate 1.5 outside"},
		{func(c *Config) { c.MinSize = 8 }, "sizes 8..160"},
	}
	for _, tc := range cases {
		c := Default()
		tc.edit(&c)
		if _, err := NewPlan(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// BenchmarkGenerateDefault generates the default demo sample (1200 train +
// 300 test images).
func BenchmarkGenerateDefault(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Generate(b.TempDir(), Default(), false); err != nil {
			b.Fatal(err)
		}
	}
}
