// Package synth generates a small data set in the exact iMet Collection
// layout, procedurally and deterministically, so that the whole pipeline
// (folds, training, thresholds, submission) can be run and checked in
// minutes with nothing downloaded.
//
// Each image is an "artwork": its single-valued culture:: label is a style
// (palette, background texture, frame) and its multi-valued tag:: labels are
// the motifs drawn on it (1-5 shapes: discs, stars, houses, fish, stripes,
// ...). Image sizes and aspect ratios vary, some extremely (about 3:1), so
// that a centre crop can cut motifs off. The train labels carry iMet-like
// annotator noise (missed tags, a few spurious ones, some wrong styles);
// the clean truth is written beside them (train_clean.csv,
// test_labels.csv), so a demo can report the true F2.
package synth

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"

	"imet/internal/base/atomicfile"
	"imet/internal/base/config"
	"imet/internal/data/dataset"
)

// Config sets what is generated. The zero value is not useful; start from
// Default.
type Config struct {
	Seed     uint64  `yaml:"seed" doc:"Seed of everything generated; the same seed gives byte-identical files."`
	Train    int     `yaml:"train" doc:"Number of training images."`
	Test     int     `yaml:"test" doc:"Number of test images."`
	Cultures int     `yaml:"cultures" doc:"Number of culture:: styles (single-valued group), 2 to 12."`
	Tags     int     `yaml:"tags" doc:"Number of tag:: motifs (multi-valued group), 2 to 32."`
	MinSize  int     `yaml:"min_size" doc:"Smallest short side of an image, in pixels."`
	MaxSize  int     `yaml:"max_size" doc:"Largest short side of an ordinary image, in pixels."`
	Extreme  float64 `yaml:"extreme" doc:"Fraction of images with an extreme aspect ratio (about 3:1 or 1:3)."`
	// Noise on the train labels only.
	MissRate       float64 `yaml:"miss_rate" doc:"Probability that a true tag is missing from a train label list."`
	SpuriousRate   float64 `yaml:"spurious_rate" doc:"Probability that a train image gets one tag whose motif is not in it."`
	WrongStyleRate float64 `yaml:"wrong_style_rate" doc:"Probability that a train image's culture is replaced by another."`
	Workers        int     `yaml:"workers" doc:"Images rendered in parallel; 0 uses every core."`
}

// Default is the configuration of the embedded demo sample: small enough
// to generate in seconds and train on 2 cores in minutes.
func Default() Config {
	return Config{
		Seed: 1, Train: 1200, Test: 300, Cultures: 10, Tags: 24,
		MinSize: 80, MaxSize: 160, Extreme: 0.1,
		MissRate: 0.2, SpuriousRate: 0.1, WrongStyleRate: 0.05,
	}
}

func (c Config) check() error {
	switch {
	case c.Train < 1 || c.Test < 0:
		return fmt.Errorf("synth: need at least 1 train image and no negative test count (train %d, test %d)", c.Train, c.Test)
	case c.Cultures < 2 || c.Cultures > MaxCultures:
		return fmt.Errorf("synth: cultures %d outside 2..%d", c.Cultures, MaxCultures)
	case c.Tags < 2 || c.Tags > MaxTags:
		return fmt.Errorf("synth: tags %d outside 2..%d", c.Tags, MaxTags)
	case c.MinSize < 32 || c.MaxSize < c.MinSize:
		return fmt.Errorf("synth: sizes %d..%d: want 32 <= min_size <= max_size", c.MinSize, c.MaxSize)
	}
	for _, r := range []float64{c.Extreme, c.MissRate, c.SpuriousRate, c.WrongStyleRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("synth: rate %g outside [0, 1]", r)
		}
	}
	return nil
}

// Placed is one motif drawn on an image.
type Placed struct {
	Tag      int     // tag index (0-based within the tag group)
	X, Y, R  float64 // centre and half-size, pixels
	Rotation float64 // radians
	Ink      int     // which of the style's three inks
}

// Image is the plan of one generated image: its truth, its noisy train
// labels, and how to draw it.
type Image struct {
	ID      string
	Test    bool
	W, H    int
	Culture int // true style index
	Motifs  []Placed
	Tags    []int // true tags, ascending, distinct
	// Noisy labels as written to train.csv (equal to the truth for test
	// images, which have no noisy file).
	NoisyCulture int
	NoisyTags    []int
	seed         uint64
}

// Plan is everything about a data set except the pixels: computing it is
// cheap, so tests of label statistics need not render images.
type Plan struct {
	Config Config
	Labels *dataset.Labels
	Images []Image // train images then test images, each sorted by id
}

// CultureCol and TagCol map a style or motif index to its label column:
// cultures come first, as in iMet 2019's labels.csv.
func (p *Plan) CultureCol(c int) int { return c }

// TagCol is the label column of tag t.
func (p *Plan) TagCol(t int) int { return p.Config.Cultures + t }

// NewPlan draws the labels, sizes and motif layout of every image.
func NewPlan(cfg Config) (*Plan, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	var ids []int
	var names []string
	for i := 0; i < cfg.Cultures; i++ {
		ids = append(ids, len(ids))
		names = append(names, "culture::"+styles[i].name)
	}
	for i := 0; i < cfg.Tags; i++ {
		ids = append(ids, len(ids))
		names = append(names, "tag::"+motifs[i].name)
	}
	labels, err := dataset.NewLabels(ids, names)
	if err != nil {
		return nil, err
	}
	p := &Plan{Config: cfg, Labels: labels}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5e17))
	cultureW := cumulative(cfg.Cultures, 0.5)
	tagW := weights(cfg.Tags, 0.5)
	seen := map[string]bool{}
	for i := 0; i < cfg.Train+cfg.Test; i++ {
		im := Image{Test: i >= cfg.Train, seed: rng.Uint64()}
		for {
			im.ID = fmt.Sprintf("%016x", rng.Uint64())
			if !seen[im.ID] {
				seen[im.ID] = true
				break
			}
		}
		im.W, im.H = drawSize(rng, cfg)
		im.Culture = pick(rng, cultureW)
		n := drawCount(rng, cfg.Tags)
		im.Tags = drawTags(rng, tagW, n)
		im.Motifs = layout(rng, im.W, im.H, im.Tags)
		im.NoisyCulture, im.NoisyTags = im.Culture, slices.Clone(im.Tags)
		if !im.Test {
			addNoise(rng, cfg, &im)
		}
		p.Images = append(p.Images, im)
	}
	sort.SliceStable(p.Images, func(a, b int) bool {
		ia, ib := p.Images[a], p.Images[b]
		if ia.Test != ib.Test {
			return !ia.Test
		}
		return ia.ID < ib.ID
	})
	return p, nil
}

// drawSize picks an image size: most near square, some elongated, a
// fraction (cfg.Extreme) about 3:1 either way.
func drawSize(rng *rand.Rand, cfg Config) (w, h int) {
	short := float64(cfg.MinSize) + rng.Float64()*float64(cfg.MaxSize-cfg.MinSize)
	var aspect float64
	switch u := rng.Float64(); {
	case u < cfg.Extreme:
		short = float64(cfg.MinSize) * (0.8 + 0.3*rng.Float64())
		aspect = 2.7 + 0.6*rng.Float64()
	case u < cfg.Extreme+0.15:
		aspect = 1.4 + 0.6*rng.Float64()
	default:
		aspect = 1 + 0.35*rng.Float64()
	}
	long := short * aspect
	if rng.IntN(2) == 0 {
		return int(long), int(short)
	}
	return int(short), int(long)
}

// drawCount draws how many motifs an image holds: 1-5, mean about 2.5.
func drawCount(rng *rand.Rand, tags int) int {
	cum := []float64{0.25, 0.55, 0.77, 0.90, 1}
	u := rng.Float64()
	n := 1
	for n < 5 && u >= cum[n-1] {
		n++
	}
	return min(n, tags)
}

func weights(n int, s float64) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / math.Pow(float64(i+1), s)
	}
	return w
}

func cumulative(n int, s float64) []float64 {
	w := weights(n, s)
	for i := 1; i < n; i++ {
		w[i] += w[i-1]
	}
	return w
}

// pick draws an index from cumulative weights.
func pick(rng *rand.Rand, cum []float64) int {
	u := rng.Float64() * cum[len(cum)-1]
	i, _ := slices.BinarySearch(cum, u)
	return min(i, len(cum)-1)
}

// drawTags draws n distinct tags with long-tailed weights.
func drawTags(rng *rand.Rand, w []float64, n int) []int {
	var out []int
	for len(out) < n {
		total := 0.0
		for t, x := range w {
			if !slices.Contains(out, t) {
				total += x
			}
		}
		u := rng.Float64() * total
		for t, x := range w {
			if slices.Contains(out, t) {
				continue
			}
			if u < x {
				out = append(out, t)
				break
			}
			u -= x
		}
	}
	slices.Sort(out)
	return out
}

// layout places the motifs, as large as the image allows and without much
// overlap, so each stays recognisable when the image is shrunk to 64 px.
func layout(rng *rand.Rand, w, h int, tags []int) []Placed {
	short := float64(min(w, h))
	area := float64(w * h)
	// Motifs share the image: radius shrinks with their number.
	r0 := math.Min(short*0.4, math.Sqrt(area/float64(len(tags))/math.Pi)*0.7)
	order := rng.Perm(len(tags))
	var out []Placed
	for _, k := range order {
		r := r0 * (0.8 + 0.25*rng.Float64())
		var best Placed
		bestGap := math.Inf(-1)
		for try := 0; try < 40; try++ {
			c := Placed{Tag: tags[k], R: r,
				X:        r + rng.Float64()*math.Max(float64(w)-2*r, 0.1),
				Y:        r + rng.Float64()*math.Max(float64(h)-2*r, 0.1),
				Rotation: (rng.Float64()*2 - 1) * 0.2,
				Ink:      rng.IntN(3)}
			gap := math.Inf(1)
			for _, o := range out {
				gap = math.Min(gap, math.Hypot(c.X-o.X, c.Y-o.Y)-c.R-o.R)
			}
			if gap > bestGap {
				best, bestGap = c, gap
			}
			if gap >= 0 {
				break
			}
		}
		out = append(out, best)
	}
	return out
}

// addNoise applies the configured annotator noise to a train image's
// labels: each true tag missed with MissRate, one spurious tag with
// SpuriousRate, a wrong style with WrongStyleRate.
func addNoise(rng *rand.Rand, cfg Config, im *Image) {
	var kept []int
	for _, t := range im.Tags {
		if rng.Float64() >= cfg.MissRate {
			kept = append(kept, t)
		}
	}
	if rng.Float64() < cfg.SpuriousRate && len(im.Tags) < cfg.Tags {
		for {
			t := rng.IntN(cfg.Tags)
			if !slices.Contains(im.Tags, t) {
				kept = append(kept, t)
				break
			}
		}
	}
	slices.Sort(kept)
	im.NoisyTags = kept
	if rng.Float64() < cfg.WrongStyleRate {
		c := rng.IntN(cfg.Cultures - 1)
		if c >= im.Culture {
			c++
		}
		im.NoisyCulture = c
	}
}

// Columns returns an image's label columns, clean or noisy.
func (p *Plan) Columns(im *Image, noisy bool) []int {
	c, tags := im.Culture, im.Tags
	if noisy {
		c, tags = im.NoisyCulture, im.NoisyTags
	}
	cols := []int{p.CultureCol(c)}
	for _, t := range tags {
		cols = append(cols, p.TagCol(t))
	}
	return cols
}

// Files written besides the iMet layout.
const (
	CleanTrainFile = "train_clean.csv"
	TestLabelsFile = "test_labels.csv"
	ConfigFile     = "synth.yaml"
)

// Generate writes the data set into dir (created if needed). It refuses a
// directory that already holds a train.csv unless overwrite is set. The
// images are written first and the CSV files last, each atomically, so an
// interrupted run leaves a directory that fails validation rather than one
// that looks complete.
func Generate(dir string, cfg Config, overwrite bool) (*Plan, error) {
	p, err := NewPlan(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, dataset.TrainFile)); err == nil && !overwrite {
		return nil, fmt.Errorf("synth: %s already holds a data set (use overwrite to replace it)", dir)
	}
	for _, sub := range []string{dataset.TrainDir, dataset.TestDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := p.renderAll(dir); err != nil {
		return nil, err
	}
	var train, clean, test []dataset.Row
	var testIDs []string
	for i := range p.Images {
		im := &p.Images[i]
		if im.Test {
			test = append(test, dataset.Row{ID: im.ID, Labels: p.Columns(im, false)})
			testIDs = append(testIDs, im.ID)
			continue
		}
		train = append(train, dataset.Row{ID: im.ID, Labels: p.Columns(im, true)})
		clean = append(clean, dataset.Row{ID: im.ID, Labels: p.Columns(im, false)})
	}
	// The record omits Workers: it changes nothing in the output, and the
	// files must not depend on the machine that made them.
	rec := cfg
	rec.Workers = 0
	cfgYAML, err := config.Marshal(rec)
	if err != nil {
		return nil, err
	}
	steps := []func() error{
		func() error { return dataset.WriteLabels(filepath.Join(dir, dataset.LabelsFile), p.Labels) },
		func() error { return dataset.WriteTrain(filepath.Join(dir, CleanTrainFile), p.Labels, clean) },
		func() error { return dataset.WriteTrain(filepath.Join(dir, TestLabelsFile), p.Labels, test) },
		func() error {
			return dataset.WriteSampleSubmission(filepath.Join(dir, dataset.SampleFile), testIDs, "0 1 2")
		},
		func() error { return atomicfile.WriteBytes(filepath.Join(dir, ConfigFile), cfgYAML, 0o644) },
		// train.csv last: its presence marks a complete data set.
		func() error { return dataset.WriteTrain(filepath.Join(dir, dataset.TrainFile), p.Labels, train) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// renderAll draws and encodes the images in parallel. Each image's pixels
// depend only on its own plan and seed, so the bytes do not depend on the
// number of workers or their scheduling.
func (p *Plan) renderAll(dir string) error {
	workers := p.Config.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			enc := png.Encoder{CompressionLevel: png.BestSpeed}
			for i := range jobs {
				im := &p.Images[i]
				buf.Reset()
				if err := enc.Encode(&buf, p.Render(im)); err != nil {
					errs <- err
					return
				}
				sub := dataset.TrainDir
				if im.Test {
					sub = dataset.TestDir
				}
				// Images are not fsynced one by one (thousands of syncs
				// cost more than generating); train.csv, written last
				// and atomically, marks the set complete.
				if err := os.WriteFile(filepath.Join(dir, sub, im.ID+".png"), buf.Bytes(), 0o644); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var firstErr error
feed:
	for i := range p.Images {
		select {
		case jobs <- i:
		case firstErr = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		select {
		case firstErr = <-errs:
		default:
		}
	}
	if firstErr != nil {
		return fmt.Errorf("synth: %w", firstErr)
	}
	return nil
}

// Render draws one image.
func (p *Plan) Render(im *Image) *image.NRGBA {
	rng := rand.New(rand.NewPCG(im.seed, 0xa27))
	st := styles[im.Culture]
	pal := st.palette((rng.Float64()*2 - 1) * 10)
	period := float64(min(im.W, im.H)) * (0.08 + 0.08*rng.Float64())
	phase := rng.Float64() * 50
	img := image.NewNRGBA(image.Rect(0, 0, im.W, im.H))
	grainState := uint32(rng.Uint64())
	for y := 0; y < im.H; y++ {
		for x := 0; x < im.W; x++ {
			grainState = grainState*1664525 + 1013904223
			t := texture(st.texture, x, y, im.W, im.H, period, phase, grainState>>24)
			o := img.PixOffset(x, y)
			img.Pix[o] = mix(pal.bg1.R, pal.bg2.R, t)
			img.Pix[o+1] = mix(pal.bg1.G, pal.bg2.G, t)
			img.Pix[o+2] = mix(pal.bg1.B, pal.bg2.B, t)
			img.Pix[o+3] = 255
		}
	}
	drawFrame(img, st.frame, pal)
	for _, m := range im.Motifs {
		drawMotif(img, m, pal)
	}
	return img
}

func mix(a, b uint8, t float64) uint8 {
	return uint8(math.Round(float64(a)*(1-t) + float64(b)*t))
}

func drawFrame(img *image.NRGBA, kind int, pal palette) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	short := min(w, h)
	var bands [][2]int // [from, to) distance from the edge
	switch kind {
	case 1:
		bands = [][2]int{{0, max(2, short/30)}}
	case 2:
		bands = [][2]int{{0, max(4, short/12)}}
	case 3:
		t := max(2, short/40)
		bands = [][2]int{{0, t}, {3 * t, 4 * t}}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := min(x, y, w-1-x, h-1-y)
			for _, b := range bands {
				if d >= b[0] && d < b[1] {
					img.SetNRGBA(x, y, pal.frame)
				}
			}
		}
	}
}

func drawMotif(img *image.NRGBA, m Placed, pal palette) {
	shape := motifs[m.Tag].inside
	ink := pal.ink[m.Ink]
	cos, sin := math.Cos(m.Rotation), math.Sin(m.Rotation)
	b := img.Rect
	x0, x1 := max(b.Min.X, int(m.X-m.R*1.5)), min(b.Max.X, int(m.X+m.R*1.5)+1)
	y0, y1 := max(b.Min.Y, int(m.Y-m.R*1.5)), min(b.Max.Y, int(m.Y+m.R*1.5)+1)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			dx, dy := (float64(x)+0.5-m.X)/m.R, (float64(y)+0.5-m.Y)/m.R
			u, v := dx*cos+dy*sin, -dx*sin+dy*cos
			if abs(u) <= 1 && abs(v) <= 1 && shape(u, v) {
				img.SetNRGBA(x, y, ink)
			}
		}
	}
}
