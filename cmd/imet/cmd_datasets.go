package main

import (
	"fmt"
	"time"

	"imet/internal/data/dataset"
	"imet/internal/data/emojiset"
	"imet/internal/data/synth"
)

// datasetsCmd groups the commands that check and make data sets.
type datasetsCmd struct {
	Validate datasetsValidateCmd `cmd:"" help:"Check a data set in the iMet layout and list every problem with its file and line."`
	Synth    datasetsSynthCmd    `cmd:"" help:"Generate a procedural sample data set in the iMet layout (nothing downloaded)."`
	Emoji    datasetsEmojiCmd    `cmd:"" help:"Build the emoji quality-benchmark data set from the pinned npm emoji packages."`
	Pack     datasetsPackCmd     `cmd:"" help:"Decode every image once into one memory-mapped pack file the loaders read instead (data.packed)."`
}

func init() {
	register("datasets", "Validate, generate and build data sets in the iMet layout.", "Data", &datasetsCmd{})
}

type datasetsValidateCmd struct {
	Dir         string `arg:"" help:"Data set directory (labels.csv, train.csv, sample_submission.csv, train/, test/)." type:"existingdir"`
	AllowEmpty  bool   `help:"Accept train rows with no attribute ids."`
	MaxProblems int    `help:"Stop after this many errors." default:"100"`
	SkipImages  bool   `help:"Do not check that every image file exists."`
	Decode      bool   `help:"Decode every image (in parallel) and list the broken ones: truncated, zero bytes, not an image, corrupt."`
	Workers     int    `help:"Decoding goroutines for --decode; 0 uses every core."`
}

func (c *datasetsValidateCmd) Run(g *Globals) error {
	d, probs := dataset.Validate(c.Dir, dataset.Options{
		ReadOptions: dataset.ReadOptions{AllowEmpty: c.AllowEmpty, MaxProblems: c.MaxProblems},
		SkipImages:  c.SkipImages,
		Decode:      c.Decode && !c.SkipImages, DecodeWorkers: c.Workers,
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
		decoded := ""
		if c.Decode && !c.SkipImages {
			decoded = "; every image decodes"
		}
		fmt.Fprintln(g.Stdout, "ok:", d.Summary()+decoded)
	}
	return nil
}

type datasetsSynthCmd struct {
	Out        string  `help:"Directory to write the data set into." required:""`
	Seed       uint64  `help:"Seed; the same seed gives byte-identical files." default:"1"`
	Train      int     `help:"Training images." default:"1200"`
	Test       int     `help:"Test images." default:"300"`
	Cultures   int     `help:"culture:: styles (2-12)." default:"10"`
	Tags       int     `help:"tag:: motifs (2-32)." default:"24"`
	Miss       float64 `help:"Probability that a true tag is missing from train.csv." default:"0.2"`
	Spurious   float64 `help:"Probability that a train image gets one spurious tag." default:"0.1"`
	WrongStyle float64 `help:"Probability that a train image's culture is wrong." default:"0.05"`
	Overwrite  bool    `help:"Replace a data set already in --out."`
}

func (c *datasetsSynthCmd) Run(g *Globals) error {
	cfg := synth.Default()
	cfg.Seed, cfg.Train, cfg.Test, cfg.Cultures, cfg.Tags = c.Seed, c.Train, c.Test, c.Cultures, c.Tags
	cfg.MissRate, cfg.SpuriousRate, cfg.WrongStyleRate = c.Miss, c.Spurious, c.WrongStyle
	start := time.Now()
	p, err := synth.Generate(c.Out, cfg, c.Overwrite)
	if err != nil {
		return err
	}
	if !g.Quiet {
		s := p.Stats()
		fmt.Fprintf(g.Stdout, "wrote %s in %.1fs: %d train + %d test images, %d cultures, %d tags, %.2f true tags per image\n",
			c.Out, time.Since(start).Seconds(), cfg.Train, cfg.Test, cfg.Cultures, cfg.Tags, s.TagsPerImage)
		fmt.Fprintf(g.Stdout, "train label noise: %.1f%% of true tags missed, %.1f%% of images with a spurious tag, %.1f%% with a wrong culture\n",
			100*s.MissedTags, 100*s.SpuriousImages, 100*s.WrongCulture)
		fmt.Fprintf(g.Stdout, "clean labels: %s (train), %s (test)\n", synth.CleanTrainFile, synth.TestLabelsFile)
	}
	return nil
}

type datasetsEmojiCmd struct {
	Out          string  `help:"Directory to write the data set into." required:""`
	Assets       string  `help:"node_modules holding emoji-datasource-google@16.0.0 and emojibase-data@17.0.0 (default: $IMET_ASSETS, else .cache/npm/node_modules above the working directory)."`
	MinTagCount  int     `help:"Keep tags carried by at least this many base emoji." default:"10"`
	TestFraction float64 `help:"Fraction of base emoji held out as the test set." default:"0.15"`
	Folds        int     `help:"Folds written to folds.csv (split by base emoji)." default:"5"`
	Seed         uint64  `help:"Seed of the test split and the folds." default:"42"`
	MaxBase      int     `help:"Use only the first N base emoji (0: all)."`
}

func (c *datasetsEmojiCmd) Run(g *Globals) error {
	cfg := emojiset.Default()
	cfg.Assets, cfg.MinTagCount, cfg.TestFraction, cfg.Folds, cfg.Seed, cfg.MaxBase = c.Assets, c.MinTagCount, c.TestFraction, c.Folds, c.Seed, c.MaxBase
	start := time.Now()
	s, err := emojiset.Build(c.Out, cfg)
	if err != nil {
		return err
	}
	if !g.Quiet {
		groups := make([]int, len(s.Labels.Groups))
		for _, gi := range s.Labels.GroupOf {
			groups[gi]++
		}
		fmt.Fprintf(g.Stdout, "wrote %s in %.1fs: %d train + %d test images from %d base emoji; %d culture (subcategory) labels, %d tag labels (%d rarer tags dropped), %.2f tags per image\n",
			c.Out, time.Since(start).Seconds(), s.Train, s.Test, s.BaseEmoji, groups[0], groups[1], s.DroppedTags, s.TagsPerImage)
		fmt.Fprintf(g.Stdout, "test truth: %s; folds by base emoji: %s (groups: %s)\n", emojiset.TestLabelsFile, emojiset.FoldsFile, emojiset.GroupsFile)
	}
	return nil
}
