// Package plots draws the figures used to judge runs: learning curves, F2
// against the decision threshold per label group, per-label F2 against label
// frequency, and cross-validation against leaderboard scores across runs.
//
// Inputs are plain slices, so the package knows nothing of where numbers come
// from (the registry, a probability file, a threshold search). A Figure is
// written as PNG or SVG, chosen by the file extension.
package plots

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"imet/internal/base/atomicfile"
)

// Series is one named curve.
type Series struct {
	Name string
	X, Y []float64
}

// Figure is one or more plots stacked vertically, ready to render.
type Figure struct {
	Panels        []*plot.Plot
	Width, Height vg.Length
}

// DPI is the resolution of PNG output; a Figure of 6x4 inches is 576x384 px.
const DPI = 96

// Save writes the figure to path, as PNG or SVG according to its extension,
// atomically so that a dashboard never serves half a file.
func (f *Figure) Save(path string) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if format != "png" && format != "svg" {
		return fmt.Errorf("plots: %s: unsupported format %q (want .png or .svg)", path, format)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return f.Render(w, format) })
}

// Render writes the figure in format "png" or "svg".
func (f *Figure) Render(w io.Writer, format string) error {
	if len(f.Panels) == 0 {
		return errors.New("plots: empty figure")
	}
	var (
		c  draw.Canvas
		wt io.WriterTo
	)
	switch format {
	case "png":
		img := vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))
		c, wt = draw.New(img), vgimg.PngCanvas{Canvas: img}
	case "svg":
		svg := vgsvg.New(f.Width, f.Height)
		c, wt = draw.New(svg), svg
	default:
		return fmt.Errorf("plots: unsupported format %q", format)
	}
	rows := make([][]*plot.Plot, len(f.Panels))
	for i, p := range f.Panels {
		rows[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadX: vg.Points(4), PadY: vg.Points(8)}
	canvases := plot.Align(rows, tiles, c)
	for i, p := range f.Panels {
		p.Draw(canvases[i][0])
	}
	_, err := wt.WriteTo(w)
	return err
}

// SVG renders the figure as SVG text, e.g. to inline it in a web page.
func (f *Figure) SVG() ([]byte, error) {
	var b bytes.Buffer
	err := f.Render(&b, "svg")
	return b.Bytes(), err
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

func xys(x, y []float64) (plotter.XYs, error) {
	if len(x) != len(y) {
		return nil, fmt.Errorf("plots: %d x values for %d y values", len(x), len(y))
	}
	pts := make(plotter.XYs, 0, len(x))
	for i := range x {
		if math.IsNaN(y[i]) || math.IsInf(y[i], 0) || math.IsNaN(x[i]) || math.IsInf(x[i], 0) {
			continue // a diverged loss must not stop the other curves being drawn
		}
		pts = append(pts, plotter.XY{X: x[i], Y: y[i]})
	}
	return pts, nil
}

func addLines(p *plot.Plot, series []Series) error {
	for i, s := range series {
		pts, err := xys(s.X, s.Y)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plots: %s: %w", s.Name, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.Name, l)
	}
	return nil
}

// Panel classifies a metric name into the learning-curve panel it belongs
// to: "loss", "f2" or "lr", or "" for none. A prefix up to the last "/"
// (imet cv's fold<k>/) does not count.
func Panel(name string) string {
	n := strings.ToLower(name)
	n = n[strings.LastIndex(n, "/")+1:]
	switch {
	case strings.Contains(n, "loss"):
		return "loss"
	case strings.Contains(n, "f2"):
		return "f2"
	case n == "lr" || strings.HasSuffix(n, "_lr") || strings.HasSuffix(n, " lr") || strings.HasPrefix(n, "lr_") || strings.Contains(n, "learning_rate"):
		return "lr"
	}
	return ""
}

// LearningCurves stacks up to three panels (loss, F2, learning rate) of
// curves against the step, placing each series by its name (see Panel).
// Series that fit no panel are left out.
func LearningCurves(title string, series []Series) (*Figure, error) {
	groups := map[string][]Series{}
	for _, s := range series {
		if k := Panel(s.Name); k != "" {
			groups[k] = append(groups[k], s)
		}
	}
	f := &Figure{Width: 7 * vg.Inch}
	for _, k := range []struct{ key, label string }{{"loss", "loss"}, {"f2", "F2"}, {"lr", "learning rate"}} {
		ss := groups[k.key]
		if len(ss) == 0 {
			continue
		}
		sort.Slice(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
		p := newPlot("", "step", k.label)
		if len(f.Panels) == 0 {
			p.Title.Text = title
		}
		if err := addLines(p, ss); err != nil {
			return nil, err
		}
		f.Panels = append(f.Panels, p)
	}
	if len(f.Panels) == 0 {
		return nil, errors.New("plots: no loss, F2 or learning-rate series to draw")
	}
	f.Height = vg.Length(len(f.Panels)) * 2.6 * vg.Inch
	return f, nil
}

// ThresholdCurve is F2 measured at several decision thresholds for one
// label group.
type ThresholdCurve struct {
	Group      string
	Thresholds []float64
	F2         []float64
}

// SampleThreshold evaluates f2At at n evenly spaced thresholds in [lo, hi],
// for callers that have a scoring function rather than a precomputed curve.
func SampleThreshold(group string, lo, hi float64, n int, f2At func(threshold float64) float64) ThresholdCurve {
	c := ThresholdCurve{Group: group}
	for i := 0; i < n; i++ {
		t := lo
		if n > 1 {
			t = lo + (hi-lo)*float64(i)/float64(n-1)
		}
		c.Thresholds = append(c.Thresholds, t)
		c.F2 = append(c.F2, f2At(t))
	}
	return c
}

// ThresholdCurves draws F2 against threshold, one curve per label group,
// marking each curve's best threshold.
func ThresholdCurves(title string, curves []ThresholdCurve) (*Figure, error) {
	if len(curves) == 0 {
		return nil, errors.New("plots: no threshold curves")
	}
	p := newPlot(title, "threshold", "F2")
	p.Legend.Top = false // the curves peak at the top, where the legend would hide them
	for i, c := range curves {
		pts, err := xys(c.Thresholds, c.F2)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Group, err)
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		best := 0
		for j := range pts {
			if pts[j].Y > pts[best].Y {
				best = j
			}
		}
		mark, _ := plotter.NewScatter(plotter.XYs{pts[best]})
		mark.Color = l.Color
		mark.Shape = draw.CircleGlyph{}
		mark.Radius = vg.Points(4)
		p.Add(l, mark)
		p.Legend.Add(fmt.Sprintf("%s (best %.3f at %.2f)", c.Group, pts[best].Y, pts[best].X), l)
	}
	return &Figure{Panels: []*plot.Plot{p}, Width: 6 * vg.Inch, Height: 4 * vg.Inch}, nil
}

// LabelF2VsFrequency scatters each label's F2 against how many training
// images carry it (log scale), one colour per group; groups may be nil.
func LabelF2VsFrequency(title string, freq, f2 []float64, groups []string) (*Figure, error) {
	if len(freq) != len(f2) || (groups != nil && len(groups) != len(freq)) {
		return nil, fmt.Errorf("plots: %d frequencies, %d F2 values, %d groups", len(freq), len(f2), len(groups))
	}
	by := map[string]plotter.XYs{}
	for i := range freq {
		if freq[i] <= 0 || math.IsNaN(f2[i]) {
			continue // log scale: a label never seen has no place
		}
		g := "labels"
		if groups != nil {
			g = groups[i]
		}
		by[g] = append(by[g], plotter.XY{X: freq[i], Y: f2[i]})
	}
	if len(by) == 0 {
		return nil, errors.New("plots: no labels with positive frequency")
	}
	names := make([]string, 0, len(by))
	for g := range by {
		names = append(names, g)
	}
	sort.Strings(names)
	p := newPlot(title, "training images with the label", "F2")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Left = true // frequent labels score high: the top right is full
	for i, g := range names {
		s, err := plotter.NewScatter(by[g])
		if err != nil {
			return nil, err
		}
		s.Color = plotutil.Color(i)
		s.Shape = draw.CircleGlyph{}
		s.Radius = vg.Points(2)
		p.Add(s)
		p.Legend.Add(g, s)
	}
	return &Figure{Panels: []*plot.Plot{p}, Width: 6 * vg.Inch, Height: 4 * vg.Inch}, nil
}

// RunScore is one run's validation and leaderboard score.
type RunScore struct {
	Name   string
	CV, LB float64
}

// CVvsLB scatters leaderboard against cross-validation score across runs,
// labelled by run, with the y = x diagonal: points far from it show where
// validation stopped predicting the leaderboard.
func CVvsLB(title string, runs []RunScore) (*Figure, error) {
	if len(runs) == 0 {
		return nil, errors.New("plots: no runs with both a CV and a leaderboard score")
	}
	p := newPlot(title, "CV F2", "leaderboard")
	pts := make(plotter.XYs, len(runs))
	labels := make([]string, len(runs))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, r := range runs {
		pts[i] = plotter.XY{X: r.CV, Y: r.LB}
		labels[i] = r.Name
		lo = math.Min(lo, math.Min(r.CV, r.LB))
		hi = math.Max(hi, math.Max(r.CV, r.LB))
	}
	pad := math.Max((hi-lo)*0.1, 0.005)
	diag, _ := plotter.NewLine(plotter.XYs{{X: lo - pad, Y: lo - pad}, {X: hi + pad, Y: hi + pad}})
	diag.Color = color.Gray{Y: 150}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	s.Color = plotutil.Color(0)
	s.Shape = draw.CircleGlyph{}
	s.Radius = vg.Points(4)
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XLeft
		l.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
	}
	p.Add(diag, s, l)
	p.Legend.Add("CV = LB", diag)
	return &Figure{Panels: []*plot.Plot{p}, Width: 6 * vg.Inch, Height: 5 * vg.Inch}, nil
}
