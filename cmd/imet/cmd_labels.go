package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"imet/internal/data/cleaning"
	"imet/internal/data/dataset"
	"imet/internal/postprocess/probs"
)

type labelsCmd struct {
	Clean labelsCleanCmd `cmd:"" help:"Rank training rows by how much their out-of-fold predictions disagree with their labels; write a train.csv without (or relabelling) the worst share, and a report of what changed."`
}

type labelsCleanCmd struct {
	Data      string  `help:"Data set directory (its labels.csv and train.csv)." required:"" type:"existingdir"`
	Train     string  `help:"train.csv to clean instead of the data set's (a previous round's)." type:"existingfile"`
	OOF       string  `help:"Out-of-fold probabilities of every training image (a cv's oof.npy with sidecars)." required:"" name:"oof" type:"existingfile"`
	By        string  `help:"Ranking: bce (mean binary cross-entropy of the row) or contradictions (labels present with p <= 1 - confident, or absent with p >= confident)." enum:"bce,contradictions" default:"bce"`
	Share     float64 `help:"Share of the rows to touch, the worst first." default:"0.05"`
	Action    string  `help:"drop the rows, or relabel them (flip the confidently contradicted labels)." enum:"drop,relabel" default:"drop"`
	Confident float64 `help:"Probability that contradicts a label (and 1 minus it, one that is present)." default:"0.9"`
	Out       string  `help:"The next round's train.csv (targets.train_csv)." required:""`
	Report    string  `help:"CSV of the touched rows: id, train.csv line, score, action, attribute ids added and removed (default: OUT with .report.csv)."`
}

func init() {
	register("labels", "Clean noisy labels from a round's out-of-fold predictions.", "Data", &labelsCmd{})
}

func (c *labelsCleanCmd) Run(g *Globals) error {
	labels, err := dataset.ReadLabels(filepath.Join(c.Data, dataset.LabelsFile))
	if err != nil {
		return err
	}
	train := c.Train
	if train == "" {
		train = filepath.Join(c.Data, dataset.TrainFile)
	}
	rows, err := dataset.ReadTrain(train, labels, dataset.ReadOptions{AllowEmpty: true})
	if err != nil {
		return err
	}
	oof, err := probs.Load(c.OOF)
	if err != nil {
		return err
	}
	res, err := cleaning.Clean(rows, labels, oof, c.OOF, cleaning.Options{By: c.By, Share: c.Share, Action: c.Action, Confident: c.Confident})
	if err != nil {
		return err
	}
	report := c.Report
	if report == "" {
		report = strings.TrimSuffix(c.Out, filepath.Ext(c.Out)) + ".report.csv"
	}
	// The report first: a train.csv without its account of what changed
	// would be a silent relabelling.
	if err := cleaning.WriteReport(report, res); err != nil {
		return err
	}
	if err := dataset.WriteTrain(c.Out, labels, res.Rows); err != nil {
		return err
	}
	if !g.Quiet {
		verb := "dropped"
		if c.Action == cleaning.Relabel {
			verb = "relabelled"
		}
		span := ""
		if n := len(res.Touched); n > 0 {
			span = fmt.Sprintf(" (%s %.4g to %.4g)", c.By, res.Touched[0].Score, res.Touched[n-1].Score)
		}
		fmt.Fprintf(g.Stdout, "%s %d of %d rows%s: %s (report %s); train on it with targets.train_csv: %s\n",
			verb, len(res.Touched), len(rows), span, c.Out, report, c.Out)
	}
	return nil
}
