package main

import (
	"fmt"
	"os"
	"path/filepath"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
)

type foldsCmd struct {
	Data   string `help:"Data set directory in the iMet layout." required:"" type:"existingdir"`
	K      int    `help:"Number of folds." default:"5"`
	Seed   uint64 `help:"Seed of the split; the same seed gives the same folds." default:"42"`
	Out    string `help:"Where to write the split (id,fold)." default:"folds.csv"`
	Groups string `help:"Optional id,group CSV: rows with the same group stay in one fold (default: DIR/groups.csv when it exists)."`
	Random bool   `help:"Split at random instead of stratifying (a baseline)."`
}

func init() {
	register("folds", "Split train.csv into K folds by multi-label iterative stratification and report the deviation from the ideal split.", "Data", &foldsCmd{})
}

func (c *foldsCmd) Run(g *Globals) error {
	d, err := dataset.Open(c.Data, dataset.Options{SkipImages: true, ReadOptions: dataset.ReadOptions{AllowEmpty: true}})
	if err != nil {
		return err
	}
	ids := make([]string, len(d.Train))
	labels := make([][]int, len(d.Train))
	for i, r := range d.Train {
		ids[i], labels[i] = r.ID, r.Labels
	}
	groupsPath := c.Groups
	if groupsPath == "" {
		if p := filepath.Join(c.Data, "groups.csv"); statOK(p) {
			groupsPath = p
		}
	}
	var groups []string
	if groupsPath != "" {
		if groups, err = folds.ReadGroups(groupsPath, ids); err != nil {
			return err
		}
	}
	var fold []int
	if c.Random {
		fold = folds.Random(len(ids), c.K, c.Seed)
		if groups != nil {
			return fmt.Errorf("--random ignores groups; remove %s or drop --random", groupsPath)
		}
	} else if fold, err = folds.StratifyGroups(labels, groups, d.Labels.Len(), c.K, c.Seed); err != nil {
		return err
	}
	if err := folds.Write(c.Out, ids, fold); err != nil {
		return err
	}
	rep, err := folds.Evaluate(labels, d.Labels.Len(), fold, c.K)
	if err != nil {
		return err
	}
	if g.Quiet {
		return nil
	}
	how := "iterative stratification"
	if c.Random {
		how = "random split"
	}
	if groups != nil {
		how += ", groups from " + groupsPath
	}
	fmt.Fprintf(g.Stdout, "wrote %s (%s, seed %d)\n", c.Out, how, c.Seed)
	rep.Write(g.Stdout, d.Labels.Names)
	if !c.Random {
		base, _ := folds.Evaluate(labels, d.Labels.Len(), folds.Random(len(ids), c.K, c.Seed), c.K)
		fmt.Fprintf(g.Stdout, "random K-fold, same seed, for comparison: mean |count - n/k| %.3f, relative %.4f, LD %.3g, absent from a fold %d\n",
			base.MeanAbsDev, base.MeanRelDev, base.LD, base.MissingInFold)
	}
	return nil
}

// statOK is a helper local to this command (named so as not to collide with
// other commands' helpers in package main).
func statOK(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
