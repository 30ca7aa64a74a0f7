// Package cleaning finds the training rows whose labels an earlier round's
// out-of-fold predictions disagree with most, and drops or relabels the
// worst share for the next round: the 1st place of iMet 2019 retrained
// without the images whose OOF predictions contradicted their labels.
// Out-of-fold matters: a model that trained on a row agrees with its noise.
package cleaning

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"imet/internal/base/atomicfile"
	"imet/internal/data/dataset"
	"imet/internal/postprocess/probs"
)

// How rows are ranked.
const (
	// BCE is the row's mean binary cross-entropy between labels and
	// predictions over the labels the OOF file has.
	BCE = "bce"
	// Contradictions counts the confident contradictions: a label present
	// with p <= 1 - confident, or absent with p >= confident.
	Contradictions = "contradictions"
)

// What happens to the worst rows.
const (
	Drop    = "drop"    // left out of the next round's train.csv
	Relabel = "relabel" // confidently contradicted labels flipped
)

// Options say how to rank and what to do.
type Options struct {
	By        string  // BCE or Contradictions
	Share     float64 // of the rows, the worst first, in (0, 1)
	Action    string  // Drop or Relabel
	Confident float64 // in (0.5, 1): the probability that contradicts a label
}

// DefaultOptions drop the 5 % of rows of largest BCE.
func DefaultOptions() Options {
	return Options{By: BCE, Share: 0.05, Action: Drop, Confident: 0.9}
}

// Touched is one row the cleaning dropped or relabelled.
type Touched struct {
	ID    string
	Line  int // in train.csv
	Score float64
	// Added and Removed are the attribute ids a relabelling switched on
	// and off (empty for a drop).
	Added, Removed []int
}

// Result is the next round's rows and what changed.
type Result struct {
	Rows    []dataset.Row
	Touched []Touched // the worst first
	Action  string
}

// Clean ranks rows (train.csv, in file order) by how much oof (each row's
// out-of-fold probabilities, by image id and attribute id) disagrees with
// their labels and applies the action to the worst share.
func Clean(rows []dataset.Row, labels *dataset.Labels, oof *probs.File, oofPath string, o Options) (*Result, error) {
	switch {
	case o.By != BCE && o.By != Contradictions:
		return nil, fmt.Errorf("rank by %q: want %s or %s", o.By, BCE, Contradictions)
	case o.Action != Drop && o.Action != Relabel:
		return nil, fmt.Errorf("action %q: want %s or %s", o.Action, Drop, Relabel)
	case !(o.Share > 0 && o.Share < 1):
		return nil, fmt.Errorf("share %g outside (0, 1)", o.Share)
	case !(o.Confident > 0.5 && o.Confident < 1):
		return nil, fmt.Errorf("confident %g outside (0.5, 1)", o.Confident)
	}
	// col[c] is the data set's column of the OOF file's column c.
	col := make([]int, oof.Cols)
	if oof.Labels == nil {
		if oof.Cols != labels.Len() {
			return nil, fmt.Errorf("%s: %d columns and no labels sidecar, but labels.csv has %d labels", oofPath, oof.Cols, labels.Len())
		}
		for c := range col {
			col[c] = c
		}
	} else {
		for c, s := range oof.Labels {
			id, err := strconv.Atoi(s)
			j, ok := labels.Index(id)
			if err != nil || !ok {
				return nil, fmt.Errorf("%s:%d: attribute id %q is not in labels.csv", probs.LabelsPath(oofPath), c+2, s)
			}
			col[c] = j
		}
	}
	at := make(map[string]int, len(oof.IDs))
	for i, id := range oof.IDs {
		at[id] = i
	}
	type scored struct {
		row   int
		score float64
	}
	ranked := make([]scored, len(rows))
	has := make([]bool, labels.Len())
	for x, r := range rows {
		i, ok := at[r.ID]
		if !ok {
			return nil, fmt.Errorf("train.csv:%d: image %s has no row in %s: the OOF file of every fold is needed", x+2, r.ID, oofPath)
		}
		for _, j := range r.Labels {
			has[j] = true
		}
		p := oof.Row(i)
		s := 0.0
		for c, v := range p {
			pv := math.Min(math.Max(float64(v), 1e-7), 1-1e-7)
			y := has[col[c]]
			switch o.By {
			case BCE:
				if y {
					s -= math.Log(pv)
				} else {
					s -= math.Log(1 - pv)
				}
			default:
				if (y && pv <= 1-o.Confident) || (!y && pv >= o.Confident) {
					s++
				}
			}
		}
		if o.By == BCE {
			s /= float64(len(p))
		}
		for _, j := range r.Labels {
			has[j] = false
		}
		ranked[x] = scored{x, s}
	}
	sort.SliceStable(ranked, func(a, b int) bool { return ranked[a].score > ranked[b].score })
	n := int(math.Round(o.Share * float64(len(rows))))
	res := &Result{Action: o.Action}
	worst := make(map[int]int, n)
	for _, s := range ranked[:n] {
		worst[s.row] = len(res.Touched)
		res.Touched = append(res.Touched, Touched{ID: rows[s.row].ID, Line: s.row + 2, Score: s.score})
	}
	for x, r := range rows {
		k, bad := worst[x]
		if !bad {
			res.Rows = append(res.Rows, r)
			continue
		}
		if o.Action == Drop {
			continue
		}
		on := make([]bool, labels.Len())
		for _, j := range r.Labels {
			on[j] = true
		}
		t := &res.Touched[k]
		for c, v := range oof.Row(at[r.ID]) {
			j := col[c]
			switch {
			case on[j] && float64(v) <= 1-o.Confident:
				on[j] = false
				t.Removed = append(t.Removed, labels.IDs[j])
			case !on[j] && float64(v) >= o.Confident:
				on[j] = true
				t.Added = append(t.Added, labels.IDs[j])
			}
		}
		sort.Ints(t.Added)
		sort.Ints(t.Removed)
		nr := dataset.Row{ID: r.ID}
		for j, ok := range on {
			if ok {
				nr.Labels = append(nr.Labels, j)
			}
		}
		res.Rows = append(res.Rows, nr)
	}
	return res, nil
}

// WriteReport writes the touched rows as CSV: id, train.csv line, score,
// action, and the attribute ids added and removed.
func WriteReport(path string, r *Result) error {
	ids := func(v []int) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, " ")
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "line", "score", "action", "added", "removed"})
		for _, t := range r.Touched {
			cw.Write([]string{t.ID, strconv.Itoa(t.Line), strconv.FormatFloat(t.Score, 'g', 6, 64), r.Action, ids(t.Added), ids(t.Removed)})
		}
		cw.Flush()
		return cw.Error()
	})
}
