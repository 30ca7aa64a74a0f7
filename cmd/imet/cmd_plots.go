package main

import (
	"fmt"
	"os"
	"path/filepath"

	"imet/internal/experiments/plots"
	"imet/internal/experiments/registry"
)

type plotsCmd struct {
	registryFlag
	Runs   []string `arg:"" optional:"" help:"Runs (ids or names) to draw learning curves for; default the newest run."`
	Out    string   `help:"Directory to write the figures to." default:"runs/plots" type:"path"`
	Format string   `help:"Image format." enum:"png,svg" default:"png"`
}

func init() {
	register("plots", "Draw learning curves of runs and the CV-vs-leaderboard scatter as PNG or SVG files.", "Experiments", &plotsCmd{})
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
		f, err := plots.LearningCurves(fmt.Sprintf("run %d %s (%s)", rec.ID, rec.Name, rec.Status), series)
		if err != nil {
			fmt.Fprintf(g.Stderr, "run %d: %v\n", id, err)
			continue
		}
		path := filepath.Join(c.Out, fmt.Sprintf("learning-%d.%s", id, c.Format))
		if err := f.Save(path); err != nil {
			return err
		}
		written = append(written, path)
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
		path := filepath.Join(c.Out, "cv-vs-lb."+c.Format)
		if err := f.Save(path); err != nil {
			return err
		}
		written = append(written, path)
	}
	if len(written) == 0 {
		return fmt.Errorf("nothing to draw: the runs have no loss, F2 or lr metrics and none has both CV and LB scores")
	}
	if !g.Quiet {
		for _, p := range written {
			fmt.Fprintln(g.Stdout, p)
		}
	}
	return nil
}
