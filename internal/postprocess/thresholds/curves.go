package thresholds

import "fmt"

// Curves sweeps one problem for F2-against-threshold curves, the curves the
// global and group searches maximise, with the sparse view of the problem
// built once for all of them.
type Curves struct {
	s *searcher
}

// NewCurves prepares pr for curves over o's grid, scored as o says.
func NewCurves(pr *Problem, o Options) (*Curves, error) {
	s, err := newSearcher(pr, o)
	if err != nil {
		return nil, err
	}
	return &Curves{s: s}, nil
}

// Global returns the score of every grid value used as the one threshold
// of every label: the curve whose highest point the global rule takes
// (ties to the lower threshold), computed by the same sweep.
func (c *Curves) Global() []float64 {
	score, _ := c.s.globalSweep()
	return score
}

// Group returns the score of every grid value used as the threshold of
// group g's labels while every other label keeps its threshold in th: the
// curve the group search maximises for g when it reaches it with the other
// groups at th. The thresholds in th must not lie below the grid's lowest
// value, which the sparse sweep cannot see under.
func (c *Curves) Group(th []float64, g int) ([]float64, error) {
	pr := c.s.pr
	if len(th) != pr.Cols {
		return nil, fmt.Errorf("thresholds: %d thresholds for %d columns", len(th), pr.Cols)
	}
	if g < 0 || g >= len(pr.Groups) {
		return nil, fmt.Errorf("thresholds: group %d outside 0..%d", g, len(pr.Groups)-1)
	}
	for j, t := range th {
		if pr.GroupOf[j] != g && float32(t) < c.s.grid32[0] {
			return nil, fmt.Errorf("thresholds: column %d's threshold %g is below the grid's lowest value %g", j, t, c.s.o.Grid[0])
		}
	}
	return c.s.groupSweep(th, g), nil
}
