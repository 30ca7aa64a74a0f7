package thresholds

import "fmt"

// GlobalCurve returns the score of every grid value of o used as the one
// threshold of every label: the curve whose highest point the global rule
// takes (ties to the lower threshold), computed by the same sweep.
func GlobalCurve(pr *Problem, o Options) ([]float64, error) {
	s, err := newSearcher(pr, o)
	if err != nil {
		return nil, err
	}
	score, _ := s.globalSweep()
	return score, nil
}

// GroupCurve returns the score of every grid value of o used as the
// threshold of group g's labels while every other label keeps its
// threshold in th: the curve the group search maximises for g when it
// reaches it with the other groups at th. The thresholds in th must not lie
// below the grid's lowest value, which the sparse sweep cannot see under.
func GroupCurve(pr *Problem, o Options, th []float64, g int) ([]float64, error) {
	s, err := newSearcher(pr, o)
	if err != nil {
		return nil, err
	}
	if len(th) != pr.Cols {
		return nil, fmt.Errorf("thresholds: %d thresholds for %d columns", len(th), pr.Cols)
	}
	if g < 0 || g >= len(pr.Groups) {
		return nil, fmt.Errorf("thresholds: group %d outside 0..%d", g, len(pr.Groups)-1)
	}
	for j, t := range th {
		if pr.GroupOf[j] != g && float32(t) < s.grid32[0] {
			return nil, fmt.Errorf("thresholds: column %d's threshold %g is below the grid's lowest value %g", j, t, o.Grid[0])
		}
	}
	return s.groupSweep(th, g), nil
}
