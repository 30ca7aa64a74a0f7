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
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
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

// Figure is one or more plots stacked vertically, ready to render, each
// with its legend to the right of the data, never over it.
type Figure struct {
	Panels        []*plot.Plot
	Width, Height vg.Length
	// legends holds each panel's legend (nil for none); legendW is the
	// strip they are drawn in, included in Width.
	legends []*legend
	legendW vg.Length
}

// legend is a plot.Legend that knows how many entries it has.
type legend struct {
	plot.Legend
	n int
}

func (l *legend) add(name string, thumbs ...plot.Thumbnailer) {
	l.Legend.Add(name, thumbs...)
	l.n++
}

// DPI is the resolution of PNG output; a Figure of 6x4 inches is 576x384 px.
const DPI = 96

// Palette is the colour cycle of every figure: matplotlib's "tab10", ten
// colours told apart on white and by most colour-blind readers in pairs.
var Palette = []color.Color{
	rgb(0x1f, 0x77, 0xb4), rgb(0xff, 0x7f, 0x0e), rgb(0x2c, 0xa0, 0x2c), rgb(0xd6, 0x27, 0x28), rgb(0x94, 0x67, 0xbd),
	rgb(0x8c, 0x56, 0x4b), rgb(0xe3, 0x77, 0xc2), rgb(0x7f, 0x7f, 0x7f), rgb(0xbc, 0xbd, 0x22), rgb(0x17, 0xbe, 0xcf),
}

// Dashes are the line patterns combined with Palette when colours alone
// would repeat: solid, dashed, dotted, dash-dot.
var Dashes = [][]vg.Length{
	nil,
	{vg.Points(6), vg.Points(3)},
	{vg.Points(1.5), vg.Points(2.5)},
	{vg.Points(7), vg.Points(2.5), vg.Points(1.5), vg.Points(2.5)},
}

func init() {
	// Sans-serif, like the dashboard around the figures; gonum embeds it.
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
}

func rgb(r, g, b uint8) color.Color { return color.RGBA{R: r, G: g, B: b, A: 255} }

// colour is Palette's i-th colour, cycling.
func colour(i int) color.Color { return Palette[i%len(Palette)] }

// Save writes the figure to path, as PNG or SVG according to its extension,
// atomically so that a dashboard never serves half a file.
func (f *Figure) Save(path string) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if format != "png" && format != "svg" {
		return fmt.Errorf("plots: %s: unsupported format %q (want .png or .svg)", path, format)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return f.Render(w, format) })
}

// legendGap separates the data area from the legend strip.
const legendGap = 10

// Render writes the figure in format "png" or "svg".
func (f *Figure) Render(w io.Writer, format string) error {
	if len(f.Panels) == 0 {
		return errors.New("plots: empty figure")
	}
	switch format {
	case "png":
		return f.RenderPNG(w, DPI)
	case "svg":
		svg := vgsvg.New(f.Width, f.Height)
		return f.draw(w, draw.New(svg), svg)
	}
	return fmt.Errorf("plots: unsupported format %q", format)
}

// RenderPNG writes the figure as PNG at dpi dots per inch: a page can show
// a 2×DPI image at the size of a DPI one, sharp on high-density screens.
func (f *Figure) RenderPNG(w io.Writer, dpi float64) error {
	if len(f.Panels) == 0 {
		return errors.New("plots: empty figure")
	}
	img := vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(int(dpi)), vgimg.UseBackgroundColor(color.White))
	return f.draw(w, draw.New(img), vgimg.PngCanvas{Canvas: img})
}

func (f *Figure) draw(w io.Writer, c draw.Canvas, wt io.WriterTo) error {
	rows := make([][]*plot.Plot, len(f.Panels))
	for i, p := range f.Panels {
		rows[i] = []*plot.Plot{p}
	}
	area := c
	if f.legendW > 0 {
		area = draw.Crop(c, 0, -f.legendW, 0, 0)
	}
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadX: vg.Points(4), PadY: vg.Points(8)}
	canvases := plot.Align(rows, tiles, area)
	for i, p := range f.Panels {
		pc := canvases[i][0]
		p.Draw(pc)
		if i < len(f.legends) && f.legends[i] != nil {
			lc := pc
			lc.Min.X, lc.Max.X = area.Max.X+vg.Points(legendGap), c.Max.X-vg.Points(4)
			// Below the panel's title, level with the top of the data.
			lc.Max.Y -= p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
			f.legends[i].Draw(lc)
		}
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

// newFigure lays out panels of dataW × panelH each with their legends
// (nil or empty: none) in a strip to the right, as wide as the widest
// legend, each panel at least as tall as its legend.
func newFigure(dataW, panelH vg.Length, panels []*plot.Plot, legends []*legend) *Figure {
	f := &Figure{Panels: panels}
	for _, l := range legends {
		if l == nil || l.n == 0 {
			f.legends = append(f.legends, nil)
			continue
		}
		f.legends = append(f.legends, l)
		// A browser showing the SVG without the Liberation fonts gonum
		// measures with substitutes wider ones (DejaVu: up to a fifth).
		r := l.Rectangle(draw.Canvas{})
		f.legendW = max(f.legendW, (r.Max.X-r.Min.X)*1.2+vg.Points(legendGap+8))
		panelH = max(panelH, r.Max.Y-r.Min.Y+vg.Points(60))
	}
	f.Width = dataW + f.legendW
	f.Height = vg.Length(len(panels)) * panelH
	return f
}

func newLegend() *legend {
	l := &legend{Legend: plot.NewLegend()}
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = vg.Points(10)
	l.ThumbnailWidth = vg.Points(24)
	l.Padding = vg.Points(2)
	return l
}

// decades marks a log axis at every power of ten, labelled as people write
// rates and counts ("0.001", "1e-07", "100"), with unlabelled ticks at 2..9
// times each; plot.LogTicks prints float noise such as 9.99999e-06. An
// axis spanning less than two powers of ten also labels the 2s and 5s, and
// one with fewer than three of those every tick, so that it is never left
// with a single number.
type decades struct{}

// Ticks implements plot.Ticker.
func (decades) Ticks(lo, hi float64) []plot.Tick {
	type mark struct {
		v    float64
		m, k int
	}
	var marks []mark
	for k := int(math.Floor(math.Log10(lo))); k <= int(math.Ceil(math.Log10(hi))); k++ {
		for m := 1; m < 10; m++ {
			v := float64(m) * math.Pow(10, float64(k))
			if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
				marks = append(marks, mark{v, m, k})
			}
		}
	}
	labelled := func(ms ...int) int {
		n := 0
		for _, x := range marks {
			if slices.Contains(ms, x.m) {
				n++
			}
		}
		return n
	}
	show := []int{1}
	switch {
	case labelled(1) >= 2:
	case labelled(1, 2, 5) >= 3:
		show = []int{1, 2, 5}
	default:
		show = []int{1, 2, 3, 4, 5, 6, 7, 8, 9}
	}
	ticks := make([]plot.Tick, len(marks))
	for i, x := range marks {
		ticks[i].Value = x.v
		if slices.Contains(show, x.m) {
			ticks[i].Label = decadeLabel(x.m, x.k)
		}
	}
	return ticks
}

// decadeLabel writes m·10^k.
func decadeLabel(m, k int) string {
	if k >= -3 && k <= 4 {
		return strconv.FormatFloat(float64(m)*math.Pow(10, float64(k)), 'f', max(-k, 0), 64)
	}
	return fmt.Sprintf("%de%d", m, k)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
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

// splitName cuts a series name into the run or fold it belongs to and the
// metric: "fold0/val_f2" and "3 val_f2" (the dashboard's comparison) name
// the metric val_f2 of fold0 and of run 3.
func splitName(n string) (owner, metric string) {
	if i := strings.LastIndex(n, "/"); i >= 0 {
		return n[:i], n[i+1:]
	}
	if i := strings.Index(n, " "); i >= 0 {
		return n[:i], n[i+1:]
	}
	return "", n
}

// styleIndex gives each series of one panel a (Palette, Dashes) index pair,
// distinct across the panel for up to len(Palette)·len(Dashes) series.
// When the series belong to several owners (folds, runs), colour follows
// the owner and the dash the metric, so that one fold's curves share a
// colour; otherwise every series gets its own colour first.
func styleIndex(names []string) [][2]int {
	var owners, metrics []string
	for _, n := range names {
		o, m := splitName(n)
		if !slices.Contains(owners, o) {
			owners = append(owners, o)
		}
		if !slices.Contains(metrics, m) {
			metrics = append(metrics, m)
		}
	}
	out := make([][2]int, len(names))
	byOwner := len(owners) > 1 && len(owners) <= len(Palette) && len(metrics) <= len(Dashes)
	for i, n := range names {
		if byOwner {
			o, m := splitName(n)
			out[i] = [2]int{slices.Index(owners, o), slices.Index(metrics, m)}
		} else {
			out[i] = [2]int{i % len(Palette), (i / len(Palette)) % len(Dashes)}
		}
	}
	return out
}

// addLines draws the series in distinct styles, adding them to the legend
// in order. Series with few points (per-epoch metrics) get markers, so
// that a single validation shows; beside them, series with many (per-step
// losses) are drawn thin, in a tint of their colour and under the others,
// so that their noise does not hide the epoch curves of the same fold.
func addLines(p *plot.Plot, lg *legend, series []Series) error {
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = s.Name
	}
	styles := styleIndex(names)
	all := make([]plotter.XYs, len(series))
	mixed := [2]bool{} // some series with few points, some with many
	for i, s := range series {
		pts, err := xys(s.X, s.Y)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		all[i] = pts
		if len(pts) > 0 {
			mixed[min(len(pts)/61, 1)] = true
		}
	}
	var dense, sparse []plot.Plotter
	for i, s := range series {
		pts := all[i]
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plots: %s: %w", s.Name, err)
		}
		l.Color = colour(styles[i][0])
		l.Dashes = Dashes[styles[i][1]]
		l.Width = vg.Points(1.6)
		thumbs := []plot.Thumbnailer{l}
		if len(pts) <= 60 {
			m, _ := plotter.NewScatter(pts)
			m.Color = l.Color
			m.Shape = draw.CircleGlyph{}
			m.Radius = vg.Points(2)
			sparse = append(sparse, l, m)
			thumbs = append(thumbs, m)
		} else if mixed[0] {
			l.Color = tint(l.Color, 0.45)
			l.Width = vg.Points(1)
			dense = append(dense, l)
		} else {
			dense = append(dense, l)
		}
		lg.add(s.Name, thumbs...)
	}
	p.Add(dense...)
	p.Add(sparse...)
	return nil
}

// tint mixes c with white, f of the way.
func tint(c color.Color, f float64) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8(float64(v>>8) + (255-float64(v>>8))*f) }
	return color.RGBA{R: mix(r), G: mix(g), B: mix(b), A: 255}
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
// curves against the step, placing each series by its name (see Panel),
// each panel with its own legend beside it. Series that fit no panel are
// left out.
func LearningCurves(title string, series []Series) (*Figure, error) {
	groups := map[string][]Series{}
	for _, s := range series {
		if k := Panel(s.Name); k != "" {
			groups[k] = append(groups[k], s)
		}
	}
	var panels []*plot.Plot
	var legends []*legend
	for _, k := range []struct{ key, label string }{{"loss", "loss"}, {"f2", "F2"}, {"lr", "learning rate"}} {
		ss := groups[k.key]
		if len(ss) == 0 {
			continue
		}
		sort.Slice(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
		p := newPlot("", "step", k.label)
		if len(panels) == 0 {
			p.Title.Text = title
		}
		l := newLegend()
		if err := addLines(p, l, ss); err != nil {
			return nil, err
		}
		panels = append(panels, p)
		legends = append(legends, l)
	}
	if len(panels) == 0 {
		return nil, errors.New("plots: no loss, F2 or learning-rate series to draw")
	}
	return newFigure(6*vg.Inch, 2.6*vg.Inch, panels, legends), nil
}

// ThresholdCurve is F2 measured at several decision thresholds, for the
// global threshold or one label group's.
type ThresholdCurve struct {
	Group      string
	Thresholds []float64
	F2         []float64
	// Chosen, when set, is the threshold a search chose and the F2 its rule
	// scores, marked instead of the curve's own best point.
	Chosen *Point
}

// Point is a point in data coordinates.
type Point struct{ X, Y float64 }

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

// ThresholdCurves draws F2 against threshold, one curve per entry, marking
// each curve's chosen point (or its best, when none was chosen) with a
// dotted drop line to the threshold axis.
func ThresholdCurves(title string, curves []ThresholdCurve) (*Figure, error) {
	if len(curves) == 0 {
		return nil, errors.New("plots: no threshold curves")
	}
	p := newPlot(title, "threshold", "F2")
	lg := newLegend()
	// The axis starts at the lowest point drawn, not at 0, so that the
	// peaks, where the choice is made, get the height; drop lines mark the
	// chosen thresholds down to it.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		for _, v := range c.F2 {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		if c.Chosen != nil {
			lo = math.Min(lo, c.Chosen.Y)
		}
	}
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
		l.Color = colour(i)
		l.Width = vg.Points(1.6)
		at, text := pts[0], ""
		if c.Chosen != nil {
			at = plotter.XY{X: c.Chosen.X, Y: c.Chosen.Y}
			text = fmt.Sprintf("%s: chosen %.3f, F2 %.4f", c.Group, at.X, at.Y)
		} else {
			for _, q := range pts {
				if q.Y > at.Y {
					at = q
				}
			}
			text = fmt.Sprintf("%s (best %.3f at %.2f)", c.Group, at.Y, at.X)
		}
		drop, _ := plotter.NewLine(plotter.XYs{{X: at.X, Y: lo}, at})
		drop.Color = l.Color
		drop.Dashes = Dashes[2]
		drop.Width = vg.Points(1)
		mark, _ := plotter.NewScatter(plotter.XYs{at})
		mark.Color = l.Color
		mark.Shape = draw.CircleGlyph{}
		mark.Radius = vg.Points(4)
		p.Add(l, drop, mark)
		lg.add(text, l, mark)
		hi = math.Max(hi, at.Y)
	}
	// Thresholds are read in tenths; gonum's default picks 0.1, 0.4, 0.7.
	var ticks []plot.Tick
	for k := 0; k <= 20; k++ {
		t := plot.Tick{Value: float64(k) / 20}
		if k%2 == 0 {
			t.Label = strconv.FormatFloat(t.Value, 'f', 1, 64)
		}
		ticks = append(ticks, t)
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	// Room above the peaks for their marks.
	p.Y.Min, p.Y.Max = lo, hi+math.Max((hi-lo)*0.06, 0.005)
	return newFigure(5.5*vg.Inch, 4*vg.Inch, []*plot.Plot{p}, []*legend{lg}), nil
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
	p.X.Tick.Marker = decades{}
	p.Y.Min, p.Y.Max = 0, 1
	lg := newLegend()
	for i, g := range names {
		s, err := plotter.NewScatter(by[g])
		if err != nil {
			return nil, err
		}
		s.Color = colour(i)
		s.Shape = draw.CircleGlyph{}
		s.Radius = vg.Points(2.5)
		p.Add(s)
		lg.add(fmt.Sprintf("%s (%d labels)", g, len(by[g])), s)
	}
	return newFigure(5.5*vg.Inch, 4*vg.Inch, []*plot.Plot{p}, []*legend{lg}), nil
}

// Bars is one named value per category of a bar chart.
type Bars struct {
	Name   string
	Values []float64
}

// Reference is a horizontal line across a bar chart, such as the score of
// all folds together.
type Reference struct {
	Name string
	Y    float64
}

// BarChart draws one group of bars per category, one bar of each Bars in
// every group, each bar labelled with its value, over reference lines.
func BarChart(title, ylabel string, categories []string, bars []Bars, refs []Reference) (*Figure, error) {
	if len(categories) == 0 || len(bars) == 0 {
		return nil, errors.New("plots: a bar chart needs categories and bars")
	}
	top := 0.0
	for _, b := range bars {
		if len(b.Values) != len(categories) {
			return nil, fmt.Errorf("plots: %s has %d values for %d categories", b.Name, len(b.Values), len(categories))
		}
		for _, v := range b.Values {
			top = math.Max(top, v)
		}
	}
	p := newPlot(title, "", ylabel)
	p.NominalX(categories...)
	lg := newLegend()
	// References go under the bars, so that they never cross a value.
	var refLines []*plotter.Line
	for i, r := range refs {
		l, _ := plotter.NewLine(plotter.XYs{{X: -0.5, Y: r.Y}, {X: float64(len(categories)) - 0.5, Y: r.Y}})
		l.Color = color.Gray{Y: 60}
		l.Dashes = Dashes[1+i%(len(Dashes)-1)]
		l.Width = vg.Points(1.2)
		p.Add(l)
		refLines = append(refLines, l)
		top = math.Max(top, r.Y)
	}
	const groupW = 0.8 // of the distance between categories
	unit := (5.5*vg.Inch - vg.Points(60)) / vg.Length(len(categories))
	barW := unit * groupW / vg.Length(len(bars))
	for i, b := range bars {
		bc, err := plotter.NewBarChart(plotter.Values(b.Values), barW)
		if err != nil {
			return nil, fmt.Errorf("plots: %s: %w", b.Name, err)
		}
		bc.Color = colour(i)
		bc.LineStyle.Width = 0
		bc.Offset = barW * (vg.Length(i) - vg.Length(len(bars)-1)/2)
		p.Add(bc)
		lg.add(b.Name, bc)
		// The value goes inside the top of its bar, in white; a bar too
		// short to hold it has it above, in black.
		for k, v := range b.Values {
			lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: float64(k), Y: v}}, Labels: []string{fmt.Sprintf("%.3f", v)}})
			if err != nil {
				return nil, err
			}
			st := &lbl.TextStyle[0]
			st.XAlign = draw.XCenter
			st.Font.Size = vg.Points(8)
			lbl.Offset = vg.Point{X: bc.Offset, Y: vg.Points(2)}
			if v > top*0.15 {
				st.Color = color.White
				st.YAlign = draw.YTop
				lbl.Offset.Y = -vg.Points(3)
			}
			p.Add(lbl)
		}
	}
	for i, r := range refs {
		lg.add(fmt.Sprintf("%s %.4f", r.Name, r.Y), refLines[i])
	}
	p.Y.Min, p.Y.Max = 0, top*1.05
	return newFigure(5.5*vg.Inch, 4*vg.Inch, []*plot.Plot{p}, []*legend{lg}), nil
}

// LRFinder draws a learning-rate range test: the loss of each step and its
// smoothed curve against the rate (log scale), with the suggested rate
// marked on the smoothed curve. what names the suggestion rule.
func LRFinder(title string, lr, loss, smoothed []float64, suggested float64, what string) (*Figure, error) {
	raw, err := xys(lr, loss)
	if err != nil {
		return nil, err
	}
	sm, err := xys(lr, smoothed)
	if err != nil {
		return nil, err
	}
	if len(sm) == 0 || !(suggested > 0) {
		return nil, errors.New("plots: no points or no positive suggested rate")
	}
	p := newPlot(title, "learning rate", "loss")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = decades{}
	lg := newLegend()
	// The axis spans the smoothed curve but its last five points, as
	// fastai's plot does: the divergence runs off the top instead of
	// flattening the descent, which is what the reader needs to see.
	body := sm
	if len(sm) > 10 {
		body = sm[:len(sm)-5]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, q := range body {
		lo, hi = math.Min(lo, q.Y), math.Max(hi, q.Y)
	}
	if len(raw) > 0 {
		l, err := plotter.NewLine(raw)
		if err != nil {
			return nil, err
		}
		l.Color = color.Gray{Y: 175}
		l.Width = vg.Points(1)
		p.Add(l)
		lg.add("loss per step", l)
	}
	l, err := plotter.NewLine(sm)
	if err != nil {
		return nil, err
	}
	l.Color = colour(0)
	l.Width = vg.Points(2)
	p.Add(l)
	lg.add("smoothed (β = 0.98)", l)
	// The suggestion sits on the smoothed curve at the nearest swept rate.
	at := sm[0]
	for _, q := range sm {
		if math.Abs(math.Log(q.X/suggested)) < math.Abs(math.Log(at.X/suggested)) {
			at = q
		}
	}
	pad := math.Max((hi-lo)*0.08, 1e-3)
	v, _ := plotter.NewLine(plotter.XYs{{X: suggested, Y: lo - pad}, {X: suggested, Y: hi + pad}})
	v.Color = colour(3)
	v.Dashes = Dashes[1]
	v.Width = vg.Points(1.2)
	mark, _ := plotter.NewScatter(plotter.XYs{{X: suggested, Y: at.Y}})
	mark.Color = colour(3)
	mark.Shape = draw.CircleGlyph{}
	mark.Radius = vg.Points(4.5)
	p.Add(v, mark)
	lg.add(fmt.Sprintf("suggested %.3g (%s)", suggested, what), v, mark)
	p.Y.Min, p.Y.Max = lo-pad, hi+pad
	return newFigure(6*vg.Inch, 4*vg.Inch, []*plot.Plot{p}, []*legend{lg}), nil
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
	diag.Dashes = Dashes[1]
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	s.Color = colour(0)
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
	lg := newLegend()
	lg.add("CV = LB", diag)
	lg.add("run", s)
	return newFigure(5.5*vg.Inch, 5*vg.Inch, []*plot.Plot{p}, []*legend{lg}), nil
}
