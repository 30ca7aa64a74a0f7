package main

import (
	"fmt"

	"imet/internal/dataset"
)

// datasetsCmd groups the commands that check and make data sets.
type datasetsCmd struct {
	Validate datasetsValidateCmd `cmd:"" help:"Check a data set in the iMet layout and list every problem with its file and line."`
}

func init() {
	register("datasets", "Validate, generate and build data sets in the iMet layout.", "Data", &datasetsCmd{})
}

type datasetsValidateCmd struct {
	Dir         string `arg:"" help:"Data set directory (labels.csv, train.csv, sample_submission.csv, train/, test/)." type:"existingdir"`
	AllowEmpty  bool   `help:"Accept train rows with no attribute ids."`
	MaxProblems int    `help:"Stop after this many errors." default:"100"`
	SkipImages  bool   `help:"Do not check that every image file exists."`
}

func (c *datasetsValidateCmd) Run(g *Globals) error {
	d, probs := dataset.Validate(c.Dir, dataset.Options{
		ReadOptions: dataset.ReadOptions{AllowEmpty: c.AllowEmpty, MaxProblems: c.MaxProblems},
		SkipImages:  c.SkipImages,
	})
	errs := 0
	for _, p := range probs {
		if p.Severity == dataset.Error {
			errs++
		}
		fmt.Fprintln(g.Stdout, p.Error())
	}
	if errs > 0 {
		more := ""
		if errs >= c.MaxProblems {
			more = " (stopped at --max-problems; there may be more)"
		}
		return fmt.Errorf("%s: %d errors%s", c.Dir, errs, more)
	}
	if !g.Quiet {
		fmt.Fprintln(g.Stdout, "ok:", d.Summary())
	}
	return nil
}
