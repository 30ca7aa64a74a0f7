package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"imet/internal/experiments/figures"
	"imet/internal/experiments/plots"
	"imet/internal/experiments/registry"
)

type plotsCmd struct {
	registryFlag
	Runs   []string `arg:"" optional:"" help:"Runs (ids or names) to draw; default the newest run."`
	Out    string   `help:"Directory to write the figures to." default:"runs/plots" type:"path"`
	Format string   `help:"Image format." enum:"png,svg" default:"png"`
	Data   string   `help:"Data set to read a cv run's truth from, when it has moved since the run (default: the run's data.root)." type:"existingdir"`
}

func init() {
	register("plots", "Draw learning curves of runs, a cv run's threshold curves, per-label and per-fold F2, and the CV-vs-leaderboard scatter, as PNG or SVG files.", "Experiments", &plotsCmd{})
}

func (c *plotsCmd) Run(g *Globals) error {
	db, err := c.open()
	if err != nil {
		return err
	}
	defer db.Close()
	all, err := db.List(registry.Filter{})
	if err != nil {
		return err
	}
	if len(all) == 0 {
		return fmt.Errorf("no runs in %s", db.Path())
	}
	refs := c.Runs
	if len(refs) == 0 {
		refs = []string{fmt.Sprint(all[0].ID)}
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	var written []string
	save := func(f *plots.Figure, name string) error {
		path := filepath.Join(c.Out, name+"."+c.Format)
		if err := f.Save(path); err != nil {
			return err
		}
		written = append(written, path)
		return nil
	}
	for _, ref := range refs {
		id, err := db.Resolve(ref)
		if err != nil {
			return err
		}
		rec, err := db.Get(id)
		if err != nil {
			return err
		}
		ms, err := db.Metrics(id)
		if err != nil {
			return err
		}
		var series []plots.Series
		for _, name := range registry.MetricNames(ms) {
			s := plots.Series{Name: name}
			for _, m := range ms[name] {
				s.X = append(s.X, float64(m.Step))
				s.Y = append(s.Y, m.Value)
			}
			series = append(series, s)
		}
		title := fmt.Sprintf("run %d %s (%s)", rec.ID, rec.Name, rec.Status)
		if f, err := plots.LearningCurves(title, series); err != nil {
			fmt.Fprintf(g.Stderr, "run %d: %v\n", id, err)
		} else if err := save(f, fmt.Sprintf("learning-%d", id)); err != nil {
			return err
		}
		arts, err := db.Artifacts(id)
		if err != nil {
			return err
		}
		src, err := figures.SourcesOf(rec, arts, c.Data)
		if errors.Is(err, figures.ErrNoCV) {
			continue
		}
		var cv *figures.CV
		if err == nil {
			cv, err = figures.Compute(src)
		}
		if err != nil {
			fmt.Fprintf(g.Stderr, "run %d: no cross-validation figures: %v\n", id, err)
			continue
		}
		short := fmt.Sprintf("run %d %s", rec.ID, rec.Name)
		for _, fig := range []struct {
			name  string
			draw  func(string) (*plots.Figure, error)
			title string
		}{
			{"thresholds", cv.ThresholdFigure, short + ": F2 against the threshold"},
			{"labels", cv.LabelFigure, short + ": F2 of each label, " + cv.Rule + " rule"},
			{"folds", cv.FoldFigure, short + ": out-of-fold F2 per fold"},
		} {
			f, err := fig.draw(fig.title)
			if err != nil {
				fmt.Fprintf(g.Stderr, "run %d: %s: %v\n", id, fig.name, err)
				continue
			}
			if err := save(f, fmt.Sprintf("%s-%d", fig.name, id)); err != nil {
				return err
			}
		}
	}
	var scores []plots.RunScore
	for _, r := range all {
		if r.CVF2 != nil && r.LB != nil {
			scores = append(scores, plots.RunScore{Name: fmt.Sprintf("%d %s", r.ID, r.Name), CV: *r.CVF2, LB: *r.LB})
		}
	}
	if len(scores) > 0 {
		f, err := plots.CVvsLB("CV vs leaderboard", scores)
		if err != nil {
			return err
		}
		if err := save(f, "cv-vs-lb"); err != nil {
			return err
		}
	}
	if len(written) == 0 {
		return fmt.Errorf("nothing to draw: the runs have no loss, F2 or lr metrics, no cv outputs, and none has both CV and LB scores")
	}
	if !g.Quiet {
		for _, p := range written {
			fmt.Fprintln(g.Stdout, p)
		}
	}
	return nil
}
