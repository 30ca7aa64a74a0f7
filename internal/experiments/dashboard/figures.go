package dashboard

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"imet/internal/experiments/figures"
	"imet/internal/experiments/plots"
	"imet/internal/experiments/registry"
)

// cvFigures are the figures a cv run's page shows, in order, each served
// at /runs/{id}/figures/{name}.png (or .svg) and drawn on request. The
// page shows the PNG, drawn at twice plots.DPI for high-density screens:
// gonum measures text with its embedded fonts, which an SVG cannot count
// on in the browser, so an SVG's legend may not fit its strip there.
var cvFigures = []struct{ name, title string }{
	{"thresholds", "F2 against the threshold: one for all labels, and each group's with the others at the group rule"},
	{"folds", "Out-of-fold F2 of each fold"},
	{"labels", "F2 of each label against the images that carry it"},
}

type figureLink struct {
	Title, SVG, PNG string
	W, H            int // CSS pixels
}

// cvCache keeps each cv run's figure data, computed once from its files:
// the out-of-fold matrix of a real run is hundreds of megabytes, too much
// to read for every image of every page view. An entry is recomputed when
// the run's recorded files change.
type cvCache struct {
	mu      sync.Mutex
	entries map[int64]cvEntry
}

type cvEntry struct {
	key string
	cv  *figures.CV
	err error
}

// cvOf returns a run's figure data; figures.ErrNoCV for a run without cv
// outputs.
func (s *Server) cvOf(rec *registry.Record, arts []registry.Artifact) (*figures.CV, error) {
	src, err := figures.SourcesOf(rec, arts, "")
	if err != nil {
		return nil, err
	}
	var key strings.Builder
	for _, a := range arts {
		fmt.Fprintf(&key, "%s %s %s\n", a.Kind, a.Path, a.SHA256)
	}
	s.cv.mu.Lock()
	defer s.cv.mu.Unlock()
	if e, ok := s.cv.entries[rec.ID]; ok && e.key == key.String() {
		return e.cv, e.err
	}
	cv, err := figures.Compute(src)
	if s.cv.entries == nil {
		s.cv.entries = map[int64]cvEntry{}
	}
	s.cv.entries[rec.ID] = cvEntry{key: key.String(), cv: cv, err: err}
	return cv, err
}

// cvSection fills a run page's cross-validation figures, or the reason
// there are none for a cv run.
func (s *Server) cvSection(p *page, rec *registry.Record, arts []registry.Artifact) {
	cv, err := s.cvOf(rec, arts)
	switch {
	case errors.Is(err, figures.ErrNoCV):
	case err != nil:
		p.CVError = err.Error()
	default:
		for _, f := range cvFigures {
			fig, err := drawer(cv, f.name)("")
			if err != nil {
				p.CVError += fmt.Sprintf("%s: %v\n", f.name, err)
				continue
			}
			base := fmt.Sprintf("/runs/%d/figures/%s", rec.ID, f.name)
			p.CVFigures = append(p.CVFigures, figureLink{Title: f.title, SVG: base + ".svg", PNG: base + ".png",
				W: int(math.Round(fig.Width.Dots(plots.DPI))), H: int(math.Round(fig.Height.Dots(plots.DPI)))})
		}
	}
}

// drawer returns the function drawing the named figure of cv; nil for an
// unknown name.
func drawer(cv *figures.CV, name string) func(string) (*plots.Figure, error) {
	switch name {
	case "thresholds":
		return cv.ThresholdFigure
	case "folds":
		return cv.FoldFigure
	case "labels":
		return cv.LabelFigure
	}
	return nil
}

// figure serves one of a cv run's figures.
func (s *Server) figure(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	name, format, _ := strings.Cut(r.PathValue("file"), ".")
	if format != "svg" && format != "png" {
		http.NotFound(w, r)
		return
	}
	rec, err := s.db.Get(id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	arts, err := s.db.Artifacts(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	cv, err := s.cvOf(rec, arts)
	if errors.Is(err, figures.ErrNoCV) {
		http.Error(w, fmt.Sprintf("run %d has no cross-validation outputs", id), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	draw := drawer(cv, name)
	if draw == nil {
		http.NotFound(w, r)
		return
	}
	f, err := draw("")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	if format == "png" {
		err = f.RenderPNG(&b, 2*plots.DPI)
	} else {
		err = f.Render(&b, format)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", map[string]string{"svg": "image/svg+xml", "png": "image/png"}[format])
	w.Write(b.Bytes())
}
