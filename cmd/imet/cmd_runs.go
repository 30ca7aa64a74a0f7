package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"imet/internal/experiments/registry"
)

// registryFlag is shared by every command that reads or writes the run
// registry.
type registryFlag struct {
	Registry string `help:"Run registry (SQLite file, created on first use)." default:"runs/registry.db" env:"IMET_REGISTRY" type:"path"`
}

func (f registryFlag) open() (*registry.DB, error) { return registry.Open(f.Registry) }

// openRun opens the registry and resolves ref (an id or a run name); the
// caller closes the registry.
func (f registryFlag) openRun(ref string) (*registry.DB, int64, error) {
	db, err := f.open()
	if err != nil {
		return nil, 0, err
	}
	id, err := db.Resolve(ref)
	if err != nil {
		db.Close()
		return nil, 0, err
	}
	return db, id, nil
}

type runsCmd struct {
	List    runsListCmd    `cmd:"" default:"withargs" help:"List runs, newest first."`
	Show    runsShowCmd    `cmd:"" help:"Show one run: provenance, scores, metrics, artifacts, errors."`
	Compare runsCompareCmd `cmd:"" help:"Put runs side by side: scores and only the config keys that differ."`
	Tag     runsTagCmd     `cmd:"" help:"Add (or with --remove, remove) tags on a run."`
	Lb      runsLbCmd      `cmd:"" name:"lb" help:"Record a run's public leaderboard score, e.g. 'imet runs lb 12 0.622'."`
}

func init() {
	register("runs", "Inspect the run registry: list, show, compare, tag, record leaderboard scores.", "Experiments", &runsCmd{})
}

type runsListCmd struct {
	registryFlag
	Kind   string `help:"Only runs of this kind (train, cv, plan, predict, thresholds)." enum:",train,cv,plan,predict,thresholds" default:""`
	Status string `help:"Only runs with this status (running, finished, failed, interrupted)." enum:",running,finished,failed,interrupted" default:""`
	Tag    string `help:"Only runs with this tag."`
	Limit  int    `help:"Show at most this many runs (0 for all)." default:"30"`
}

func f4(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", *v)
}

func shortRev(r *registry.Record) string {
	s := r.CodeVersion
	if len(s) > 10 && !strings.Contains(s, " ") {
		s = s[:10]
	}
	if r.CodeDirty {
		s += "+dirty"
	}
	return s
}

func (c *runsListCmd) Run(g *Globals) error {
	db, err := c.open()
	if err != nil {
		return err
	}
	defer db.Close()
	runs, err := db.List(registry.Filter{Kind: registry.Kind(c.Kind), Status: registry.Status(c.Status), Tag: c.Tag, Limit: c.Limit})
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintf(g.Stdout, "no runs in %s\n", db.Path())
		return nil
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tKIND\tSTATUS\tSTARTED\tDURATION\tCV F2\tLB\tCODE\tTAGS")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Kind, r.Status,
			r.StartedAt.Local().Format("2006-01-02 15:04"), r.Duration(), f4(r.CVF2), f4(r.LB), shortRev(r), strings.Join(r.Tags, ","))
	}
	return tw.Flush()
}

type runsShowCmd struct {
	registryFlag
	Ref    string `arg:"" name:"run" help:"Run id, or name (the newest run of that name)."`
	Config bool   `help:"Also print the resolved configuration."`
}

func (c *runsShowCmd) Run(g *Globals) error {
	db, id, err := c.openRun(c.Ref)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := db.Get(id)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("run", fmt.Sprintf("%d %s", r.ID, r.Name))
	row("kind", string(r.Kind))
	row("status", string(r.Status))
	row("started", r.StartedAt.Local().Format("2006-01-02 15:04:05"))
	if !r.EndedAt.IsZero() {
		row("ended", r.EndedAt.Local().Format("2006-01-02 15:04:05"))
	}
	row("duration", r.Duration().String())
	row("cv f2", f4(r.CVF2))
	if r.HeldOutF2 != nil {
		row("held-out f2", f4(r.HeldOutF2))
	}
	groups := make([]string, 0, len(r.GroupF2))
	for k := range r.GroupF2 {
		groups = append(groups, k)
	}
	sort.Strings(groups)
	for _, k := range groups {
		row("  "+k, fmt.Sprintf("%.4f", r.GroupF2[k]))
	}
	row("leaderboard", f4(r.LB))
	row("code", shortRev(r))
	row("data", r.DataFingerprint)
	row("machine", fmt.Sprintf("%s, pid %d", r.Machine, r.PID))
	row("command", strings.Join(r.Args, " "))
	if len(r.Parents) > 0 {
		ps := make([]string, len(r.Parents))
		for i, id := range r.Parents {
			ps[i] = strconv.FormatInt(id, 10)
		}
		row("parents", strings.Join(ps, ", "))
	}
	if r.ResumedFrom != 0 {
		row("resumed from", strconv.FormatInt(r.ResumedFrom, 10))
	}
	if len(r.Tags) > 0 {
		row("tags", strings.Join(r.Tags, ", "))
	}
	if r.Error != "" {
		row("error", r.Error)
	}
	tw.Flush()
	if r.LogTail != "" {
		fmt.Fprintf(g.Stdout, "\nlast log lines:\n%s\n", r.LogTail)
	}
	ms, err := db.Metrics(id)
	if err != nil {
		return err
	}
	if len(ms) > 0 {
		fmt.Fprintln(g.Stdout, "\nmetrics:")
		tw = tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPOINTS\tLAST STEP\tLAST")
		for _, n := range registry.MetricNames(ms) {
			m := ms[n]
			last := m[len(m)-1]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.6g\n", n, len(m), last.Step, last.Value)
		}
		tw.Flush()
	}
	arts, err := db.Artifacts(id)
	if err != nil {
		return err
	}
	if len(arts) > 0 {
		fmt.Fprintln(g.Stdout, "\nartifacts:")
		tw = tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
		for _, a := range arts {
			fmt.Fprintf(tw, "%s\t%s\t%d bytes\tsha256:%s\n", a.Kind, a.Path, a.Size, a.SHA256)
		}
		tw.Flush()
	}
	if c.Config && r.Config != "" {
		fmt.Fprintf(g.Stdout, "\nconfig:\n%s", r.Config)
	}
	return nil
}

type runsCompareCmd struct {
	registryFlag
	Runs []string `arg:"" help:"Two or more run ids or names."`
}

func (c *runsCompareCmd) Run(g *Globals) error {
	if len(c.Runs) < 2 {
		return fmt.Errorf("compare needs at least two runs, got %d", len(c.Runs))
	}
	db, err := c.open()
	if err != nil {
		return err
	}
	defer db.Close()
	var recs []*registry.Record
	var cfgs []string
	for _, ref := range c.Runs {
		id, err := db.Resolve(ref)
		if err != nil {
			return err
		}
		r, err := db.Get(id)
		if err != nil {
			return err
		}
		recs = append(recs, r)
		cfgs = append(cfgs, r.Config)
	}
	diffs, err := registry.DiffConfigs(cfgs...)
	if err != nil {
		return err
	}
	return writeCompare(g.Stdout, recs, diffs)
}

func writeCompare(w io.Writer, recs []*registry.Record, diffs []registry.ConfigDiff) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k string, f func(r *registry.Record) string) {
		fmt.Fprint(tw, k)
		for _, r := range recs {
			fmt.Fprint(tw, "\t", f(r))
		}
		fmt.Fprintln(tw)
	}
	line("", func(r *registry.Record) string { return fmt.Sprintf("%d %s", r.ID, r.Name) })
	line("status", func(r *registry.Record) string { return string(r.Status) })
	line("cv f2", func(r *registry.Record) string { return f4(r.CVF2) })
	line("held-out f2", func(r *registry.Record) string { return f4(r.HeldOutF2) })
	line("leaderboard", func(r *registry.Record) string { return f4(r.LB) })
	line("code", shortRev)
	line("data", func(r *registry.Record) string {
		if len(r.DataFingerprint) > 10 {
			return r.DataFingerprint[:10]
		}
		return r.DataFingerprint
	})
	if len(diffs) == 0 {
		fmt.Fprintln(tw, "config\t(identical)")
	}
	for _, d := range diffs {
		fmt.Fprint(tw, d.Key)
		for _, v := range d.Values {
			if v == "" {
				v = "(absent)"
			}
			fmt.Fprint(tw, "\t", v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

type runsTagCmd struct {
	registryFlag
	Ref    string   `arg:"" name:"run" help:"Run id or name."`
	Tags   []string `arg:"" help:"Tags to add."`
	Remove bool     `help:"Remove the tags instead."`
}

func (c *runsTagCmd) Run(g *Globals) error {
	db, id, err := c.openRun(c.Ref)
	if err != nil {
		return err
	}
	defer db.Close()
	if c.Remove {
		err = db.Untag(id, c.Tags...)
	} else {
		err = db.Tag(id, c.Tags...)
	}
	if err != nil {
		return err
	}
	r, err := db.Get(id)
	if err != nil {
		return err
	}
	if !g.Quiet {
		fmt.Fprintf(g.Stdout, "run %d %s: tags %s\n", r.ID, r.Name, strings.Join(r.Tags, ", "))
	}
	return nil
}

type runsLbCmd struct {
	registryFlag
	Ref   string  `arg:"" name:"run" help:"Run id or name."`
	Score float64 `arg:"" help:"Public leaderboard score, e.g. 0.622."`
}

func (c *runsLbCmd) Run(g *Globals) error {
	if c.Score < 0 || c.Score > 1 {
		return fmt.Errorf("leaderboard score %v is outside [0, 1]", c.Score)
	}
	db, id, err := c.openRun(c.Ref)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SetLB(id, c.Score); err != nil {
		return err
	}
	if !g.Quiet {
		fmt.Fprintf(g.Stdout, "run %d: leaderboard %.4f\n", id, c.Score)
	}
	return nil
}
