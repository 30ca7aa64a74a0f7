package plots

import (
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// outDir keeps the figures as CI artifacts when IMET_ARTIFACTS is set.
func outDir(t *testing.T) string {
	if d := os.Getenv("IMET_ARTIFACTS"); d != "" {
		d = filepath.Join(d, "plots")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func learning() []Series {
	var steps, loss, vloss, f2, lr []float64
	for i := 0; i <= 100; i++ {
		s := float64(i)
		steps = append(steps, s)
		loss = append(loss, 0.05+math.Exp(-s/20))
		vloss = append(vloss, 0.1+math.Exp(-s/25))
		f2 = append(f2, 0.6*(1-math.Exp(-s/30)))
		lr = append(lr, 1e-3*0.5*(1+math.Cos(math.Pi*s/100)))
	}
	return []Series{{"train_loss", steps, loss}, {"val_loss", steps, vloss}, {"val_f2", steps, f2}, {"lr", steps, lr}, {"gpu_mem", steps, lr}}
}

func figures(t *testing.T) map[string]*Figure {
	lc, err := LearningCurves("run 7", learning())
	if err != nil {
		t.Fatal(err)
	}
	if len(lc.Panels) != 3 {
		t.Errorf("learning curves have %d panels, want loss, F2, lr", len(lc.Panels))
	}
	th, err := ThresholdCurves("thresholds", []ThresholdCurve{
		SampleThreshold("culture", 0.05, 0.5, 46, func(x float64) float64 { return 0.5 - (x-0.2)*(x-0.2) }),
		SampleThreshold("tag", 0.05, 0.5, 46, func(x float64) float64 { return 0.65 - 2*(x-0.3)*(x-0.3) }),
	})
	if err != nil {
		t.Fatal(err)
	}
	var freq, f2 []float64
	var groups []string
	for i := 1; i <= 200; i++ {
		freq = append(freq, float64(i*i%997+1))
		f2 = append(f2, math.Log10(float64(i*i%997+1))/3)
		groups = append(groups, map[bool]string{true: "culture", false: "tag"}[i%3 == 0])
	}
	lf, err := LabelF2VsFrequency("per label", freq, f2, groups)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := CVvsLB("CV vs LB", []RunScore{{"r50", 0.60, 0.61}, {"r101", 0.62, 0.622}, {"se", 0.63, 0.615}})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := BarChart("folds", "F2", []string{"fold 0", "fold 1", "fold 2"},
		[]Bars{{"CV rule", []float64{0.61, 0.63, 0.6}}, {"own best", []float64{0.62, 0.635, 0.61}}}, []Reference{{"all folds", 0.615}})
	if err != nil {
		t.Fatal(err)
	}
	var lrs, loss, sm []float64
	for i := 0; i < 80; i++ {
		lr := 1e-7 * math.Pow(1e8, float64(i)/79)
		lrs = append(lrs, lr)
		v := 0.7 - 0.4/(1+math.Exp(-2*(math.Log10(lr)+3))) + math.Max(0, math.Log10(lr)+0.5)
		loss = append(loss, v+0.02*math.Sin(float64(i)))
		sm = append(sm, v)
	}
	lf2, err := LRFinder("lr range test", lrs, loss, sm, 1e-3, "steepest descent")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*Figure{"learning": lc, "threshold": th, "labelfreq": lf, "cvlb": cl, "folds": bc, "lrfind": lf2}
}

func TestPNG(t *testing.T) {
	dir := outDir(t)
	first := Palette[0]
	for name, f := range figures(t) {
		path := filepath.Join(dir, name+".png")
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantW, wantH := int(math.Ceil(f.Width.Dots(DPI))), int(math.Ceil(f.Height.Dots(DPI)))
		b := img.Bounds()
		if abs(b.Dx()-wantW) > 1 || abs(b.Dy()-wantH) > 1 {
			t.Errorf("%s: %dx%d px, want %dx%d", name, b.Dx(), b.Dy(), wantW, wantH)
		}
		ink, series := count(img, first)
		if frac := float64(ink) / float64(b.Dx()*b.Dy()); frac < 0.01 || frac > 0.5 {
			t.Errorf("%s: %.3f of pixels drawn, want a plot not a blank or a blot", name, frac)
		}
		if series < 20 {
			t.Errorf("%s: only %d pixels in the first series colour", name, series)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// count returns the non-white pixels and those close to colour c.
func count(img image.Image, c color.Color) (ink, near int) {
	cr, cg, cb, _ := c.RGBA()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
			if d(r, cr)+d(g, cg)+d(bl, cb) < 0x3000 {
				near++
			}
		}
	}
	return
}

func d(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

func TestSVG(t *testing.T) {
	dir := outDir(t)
	want := map[string][]string{
		"learning":  {"train_loss", "val_f2", "learning rate"},
		"threshold": {"culture (best 0.500 at 0.20)", "tag (best 0.650 at 0.30)"},
		"labelfreq": {"culture", "tag"},
		"cvlb":      {"r101", "CV = LB"},
		"folds":     {"fold 1", "CV rule", "own best", "all folds 0.6150", "0.635"},
		"lrfind":    {"suggested 0.001 (steepest descent)", "smoothed"},
	}
	for name, f := range figures(t) {
		path := filepath.Join(dir, name+".svg")
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		dec := xml.NewDecoder(strings.NewReader(string(data)))
		var root string
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: invalid SVG: %v", name, err)
			}
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		if root != "svg" {
			t.Errorf("%s: root element %q", name, root)
		}
		for _, s := range want[name] {
			if !strings.Contains(string(data), s) {
				t.Errorf("%s: SVG lacks %q", name, s)
			}
		}
		if strings.Contains(name, "learning") && strings.Contains(string(data), "gpu_mem") {
			t.Errorf("unclassified series drawn")
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := LearningCurves("x", []Series{{Name: "gpu_mem"}}); err == nil {
		t.Error("figure with no panel accepted")
	}
	if _, err := LearningCurves("x", []Series{{"loss", []float64{1, 2}, []float64{1}}}); err == nil {
		t.Error("mismatched series accepted")
	}
	if _, err := CVvsLB("x", nil); err == nil {
		t.Error("empty CV/LB accepted")
	}
	f, _ := CVvsLB("x", []RunScore{{"a", 0.5, 0.5}})
	if err := f.Save(filepath.Join(t.TempDir(), "x.jpg")); err == nil || !strings.Contains(err.Error(), "x.jpg") {
		t.Errorf("unsupported format: %v", err)
	}
}

func TestPanel(t *testing.T) {
	for name, want := range map[string]string{"train_loss": "loss", "val_f2": "f2", "lr": "lr", "head_lr": "lr", "gpu_mem": "", "learning_rate": "lr", "3 lr": "lr", "3 val_f2": "f2",
		// imet cv records each fold's metrics under fold<k>/.
		"fold0/lr": "lr", "fold2/val_f2": "f2", "fold1/images_per_sec": ""} {
		if got := Panel(name); got != want {
			t.Errorf("Panel(%q) = %q, want %q", name, got, want)
		}
	}
}

// cvSeries is what a three-fold imet cv run records, plus a second run's
// curves as the dashboard's comparison names them.
func cvSeries() []Series {
	var out []Series
	steps := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for f := 0; f < 3; f++ {
		for i, m := range []string{"loss", "train_loss", "val_loss"} {
			y := make([]float64, len(steps))
			for k := range y {
				y[k] = (1 + 0.1*float64(f) + 0.2*float64(i)) * math.Exp(-steps[k]/5)
			}
			out = append(out, Series{fmt.Sprintf("fold%d/%s", f, m), steps, y})
		}
	}
	return out
}

// Every series of a panel is drawn in its own colour and dash: the old
// figure cycled seven colours, so a three-fold run's nine loss curves
// shared them.
func TestLearningCurvesStylesAreDistinct(t *testing.T) {
	many := cvSeries()
	for i := 0; i < 12; i++ {
		many = append(many, Series{fmt.Sprintf("loss_%d", i), []float64{0, 1}, []float64{1, float64(i)}})
	}
	for name, ss := range map[string][]Series{"cv": cvSeries(), "many": many} {
		f, err := LearningCurves("x", ss)
		if err != nil {
			t.Fatal(err)
		}
		svg, err := f.SVG()
		if err != nil {
			t.Fatal(err)
		}
		styles := map[string]bool{}
		for _, m := range regexp.MustCompile(`stroke:(#[0-9A-F]{6});stroke-width:(?:1\.6|1)(;stroke-dasharray:[0-9.,]+)?"`).FindAllStringSubmatch(string(svg), -1) {
			styles[m[1]+m[2]] = true
		}
		if len(styles) != len(ss) {
			t.Errorf("%s: %d series drawn in %d distinct styles", name, len(ss), len(styles))
		}
	}
	// In a cv run a fold keeps one colour and a metric one dash, so the
	// legend reads as a table.
	var names []string
	for _, s := range cvSeries() {
		names = append(names, s.Name)
	}
	st := styleIndex(names)
	for i := range names {
		fi, mi := i/3, i%3
		if st[i] != [2]int{fi, mi} {
			t.Errorf("%s: style %v, want colour %d dash %d", names[i], st[i], fi, mi)
		}
	}
}

// The legend is drawn in a strip right of the data area, never over the
// curves: each series' colour shows up in the strip (its legend entry).
func TestLegendOutsideData(t *testing.T) {
	f, err := LearningCurves("cv", cvSeries())
	if err != nil {
		t.Fatal(err)
	}
	if f.legendW <= 0 {
		t.Fatal("no legend strip")
	}
	var b strings.Builder
	path := filepath.Join(outDir(t), "learning-cv.png")
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	fh, _ := os.Open(path)
	img, err := png.Decode(fh)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	x0 := int((f.Width - f.legendW).Dots(DPI))
	bd := img.Bounds()
	strip := image.Rect(x0, 0, bd.Max.X, bd.Max.Y)
	for i := 0; i < 3; i++ {
		_, near := count(img.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(strip), Palette[i])
		if near < 20 {
			fmt.Fprintf(&b, "fold %d colour: %d pixels in the legend strip; ", i, near)
		}
	}
	if b.Len() > 0 {
		t.Error(b.String())
	}
}

func TestDecadeTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var out []string
		for _, tk := range (decades{}).Ticks(lo, hi) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{
		{1e-7, 10, "1e-7 1e-6 1e-5 1e-4 0.001 0.01 0.1 1 10"},
		{30, 800, "50 100 200 500"},
		{2, 9, "2 3 4 5 6 7 8 9"},
		{1, 1000, "1 10 100 1000"},
	} {
		if got := strings.Join(labels(tc.lo, tc.hi), " "); got != tc.want {
			t.Errorf("ticks over %g..%g: %s, want %s", tc.lo, tc.hi, got, tc.want)
		}
	}
}
