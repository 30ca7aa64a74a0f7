package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"imet/internal/training/lrfind"
	"imet/internal/training/train"
	"imet/internal/training/trainconfig"
)

type lrFindCmd struct {
	Config string  `help:"Run configuration (YAML) whose stage is swept." required:"" type:"existingfile"`
	Fold   int     `help:"Fold whose training rows are used." default:"0"`
	Stage  int     `help:"Stage (index) whose optimizer, loss, freezing and batch size are used." default:"0"`
	Start  float64 `help:"First learning rate." default:"1e-7"`
	End    float64 `help:"Last learning rate." default:"10"`
	Steps  int     `help:"Optimizer steps of the sweep (fewer if the loss diverges first)." default:"100"`
	Out    string  `help:"Directory for lr-find.png, lr-find.svg and lr-find.json (default runs/lr-find/<name>)." type:"path"`
}

func init() {
	register("lr-find", "Learning-rate range test: sweep the rate exponentially on a throwaway model and suggest one; writes only its plot and points.", "Training", &lrFindCmd{})
}

func (c *lrFindCmd) Run(g *Globals) error {
	ctx, stop := train.SignalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := trainconfig.LoadChecked(c.Config)
	if err != nil {
		return err
	}
	o := lrfind.Defaults()
	o.Start, o.End, o.Steps = c.Start, c.End, c.Steps
	var log = g.Stderr
	if g.Quiet {
		log = nil
	}
	res, err := lrfind.Run(ctx, cfg, c.Fold, c.Stage, o, log)
	if err != nil {
		return err
	}
	out := c.Out
	if out == "" {
		out = filepath.Join("runs", "lr-find", cfg.Name)
	}
	title := fmt.Sprintf("%s, stage %s, fold %d", cfg.Name, res.Stage, res.Fold)
	paths, err := res.Write(out, title)
	if err != nil {
		return err
	}
	end := "reached the last rate"
	if res.Diverged {
		end = fmt.Sprintf("stopped at %.3g: the loss diverged", res.Points[len(res.Points)-1].LR)
	}
	fmt.Fprintf(g.Stdout, "suggested learning rate %.3g (%s; the lowest loss's rate / 10: %.3g); %d steps, %s\n",
		res.Suggested, lrfind.Suggestion, res.MinOver10, len(res.Points), end)
	for _, p := range paths {
		fmt.Fprintf(g.Stdout, "  %s\n", p)
	}
	return nil
}
