package thresholds

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"imet/internal/postprocess/fbeta"
)

// Problem is what a search runs on: out-of-fold probabilities and the truth.
type Problem struct {
	// Rows × Cols probabilities, row-major.
	Rows, Cols int
	Probs      []float32
	// Truth lists each image's true label columns.
	Truth [][]int32
	// GroupOf maps each column to its group, an index into Groups.
	GroupOf []int
	Groups  []string
}

func (p *Problem) check() error {
	if p.Rows*p.Cols != len(p.Probs) {
		return fmt.Errorf("thresholds: %d probabilities for %d x %d", len(p.Probs), p.Rows, p.Cols)
	}
	if len(p.Truth) != p.Rows {
		return fmt.Errorf("thresholds: %d truth rows for %d probability rows", len(p.Truth), p.Rows)
	}
	if len(p.GroupOf) != p.Cols {
		return fmt.Errorf("thresholds: %d group entries for %d columns", len(p.GroupOf), p.Cols)
	}
	if len(p.Groups) > 255 {
		return fmt.Errorf("thresholds: %d groups; at most 255 supported", len(p.Groups))
	}
	for j, g := range p.GroupOf {
		if g < 0 || g >= len(p.Groups) {
			return fmt.Errorf("thresholds: column %d has group %d, outside 0..%d", j, g, len(p.Groups)-1)
		}
	}
	for i, t := range p.Truth {
		for _, j := range t {
			if j < 0 || int(j) >= p.Cols {
				return fmt.Errorf("thresholds: truth row %d has column %d, outside 0..%d", i, j, p.Cols-1)
			}
		}
	}
	return nil
}

// Options steer a search.
type Options struct {
	// Grid lists the candidate thresholds, ascending, in (0, 1]. Use
	// LinearGrid to build one.
	Grid []float64 `yaml:"grid" doc:"Candidate thresholds, ascending, in (0, 1]."`
	// Score is the metric being maximised.
	Score fbeta.Options `yaml:"score" doc:"The metric maximised: beta and the empty-row rule."`
	// AtLeastOne evaluates every rule as submit applies it: an image with
	// nothing predicted gets its best label.
	AtLeastOne bool `yaml:"at_least_one" doc:"Score rules with the best label added to rows left empty, as submit does."`
	// Shrink pulls a label's threshold toward its group's:
	// t = (n·t_label + Shrink·t_group) / (n + Shrink), n the label's
	// positives. 0 disables it.
	Shrink float64 `yaml:"shrink" doc:"Pull of the group threshold on a label's, in pseudo-positives; 0 disables it."`
	// Rounds is the number of coordinate-ascent passes for the group, label
	// and top-k searches.
	Rounds int `yaml:"rounds" doc:"Coordinate-ascent passes of the group, label and top-k searches."`
	// MaxK and MinK cap the top-k bounds tried per group.
	MaxK int `yaml:"max_k" doc:"Largest per-group maximum the top-k search tries."`
	MinK int `yaml:"min_k" doc:"Largest per-group minimum the top-k search tries."`
	// Bounds, when set (one per group), fixes the top-k rule's bounds
	// instead of searching them.
	Bounds []Bounds `yaml:"bounds" doc:"Fixed per-group bounds for the top-k rule, one per group; empty means search them."`
	// TargetMean is the mean number of labels per image the "target" rule
	// aims at; 0 means the mean of the truth.
	TargetMean float64 `yaml:"target_mean" doc:"Mean labels per image of the target rule; 0 means the truth's mean."`
	// Workers is the number of goroutines; 0 means GOMAXPROCS.
	Workers int `yaml:"workers" doc:"Goroutines used; 0 means GOMAXPROCS."`
}

// LinearGrid returns the candidates step, 2·step, ... up to at most hi.
func LinearGrid(step, hi float64) []float64 {
	var g []float64
	for k := 1; ; k++ {
		v := round6(float64(k) * step)
		if v > hi+1e-12 {
			return g
		}
		g = append(g, v)
	}
}

// DefaultOptions are the settings the imet thresholds command starts from.
func DefaultOptions() Options {
	return Options{
		Grid:       LinearGrid(0.005, 0.995),
		Score:      fbeta.Default(),
		AtLeastOne: true,
		Shrink:     10,
		Rounds:     2,
		MaxK:       10,
		MinK:       2,
	}
}

// Rule names, in the order Search runs them.
const (
	Global   = "global"
	Group    = "group"
	Label    = "label"
	TopK     = "topk"
	Relative = "relative"
	Target   = "target"
)

// Result is one searched rule and the score it reaches on the problem.
type Result struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
	// MeanLabels is the mean number of labels predicted per image.
	MeanLabels float64 `json:"mean_labels"`
	Rule       Rule    `json:"rule"`
}

// entry is one probability at or above the lowest candidate threshold;
// the others can never be predicted by a grid threshold.
type entry struct {
	col int32
	p   float32
	bin uint16 // number of grid values <= p: predicted at grid[k] iff bin > k
	grp uint8
	tru bool
}

type colEntry struct {
	row int32
	p   float32
	bin uint16
	tru bool
}

// searcher holds the sparse views of a problem shared by all sweeps.
type searcher struct {
	pr      *Problem
	o       Options
	grid32  []float32
	G       int
	rowOff  []int // entries of row i: ents[rowOff[i]:rowOff[i+1]], bin descending
	ents    []entry
	colOff  []int
	cols    []colEntry
	nTrue   []int32
	argTrue []bool
	nPos    []int
	rowMax  []float32
	lut     []uint16 // lut[b]: bins of b/lutSize, a lower bound for values in bucket b
	workers int
}

func newSearcher(pr *Problem, o Options) (*searcher, error) {
	if err := pr.check(); err != nil {
		return nil, err
	}
	if len(o.Grid) == 0 || len(o.Grid) > 65000 {
		return nil, fmt.Errorf("thresholds: grid of %d candidates; want 1..65000", len(o.Grid))
	}
	for k, v := range o.Grid {
		if v <= 0 || v > 1 || (k > 0 && v <= o.Grid[k-1]) {
			return nil, errors.New("thresholds: grid must be ascending values in (0, 1]")
		}
	}
	if o.Bounds != nil {
		if len(o.Bounds) != len(pr.Groups) {
			return nil, fmt.Errorf("thresholds: %d fixed bounds for %d groups", len(o.Bounds), len(pr.Groups))
		}
		for g, b := range o.Bounds {
			if b.Min < 0 || b.Max < 0 || (b.Max > 0 && b.Min > b.Max) {
				return nil, fmt.Errorf("thresholds: bounds of group %s are min %d, max %d", pr.Groups[g], b.Min, b.Max)
			}
		}
	}
	if o.Score.Beta <= 0 {
		return nil, fmt.Errorf("thresholds: beta %v must be positive", o.Score.Beta)
	}
	s := &searcher{pr: pr, o: o, G: len(o.Grid), workers: o.Workers}
	if s.workers <= 0 {
		s.workers = runtime.GOMAXPROCS(0)
	}
	s.grid32 = make([]float32, s.G)
	for k, v := range o.Grid {
		s.grid32[k] = float32(v)
	}
	s.nTrue = make([]int32, pr.Rows)
	s.argTrue = make([]bool, pr.Rows)
	s.rowMax = make([]float32, pr.Rows)
	s.nPos = make([]int, pr.Cols)
	for i, t := range pr.Truth {
		s.nTrue[i] = int32(len(t))
		for _, j := range t {
			s.nPos[j]++
		}
	}
	// Build the row-sparse view in two parallel passes: count each row's
	// entries, then fill them in place. Sizing the array exactly avoids
	// growing it by copies, and the garbage collector work that caused.
	lo := s.grid32[0]
	chunks := s.split(pr.Rows)
	s.rowOff = make([]int, pr.Rows+1)
	var wg sync.WaitGroup
	for _, ch := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := ch[0]; i < ch[1]; i++ {
				n := 0
				for _, v := range pr.Probs[i*pr.Cols : (i+1)*pr.Cols] {
					if v >= lo {
						n++
					}
				}
				s.rowOff[i+1] = n
			}
		}()
	}
	wg.Wait()
	for i := range pr.Rows {
		s.rowOff[i+1] += s.rowOff[i]
	}
	s.ents = make([]entry, s.rowOff[pr.Rows])
	s.lut = make([]uint16, lutSize+1)
	for b := range s.lut {
		s.lut[b] = uint16(s.binSearch(float32(b) / lutSize))
	}
	for _, ch := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mark := make([]bool, pr.Cols)
			var keys []uint64
			for i := ch[0]; i < ch[1]; i++ {
				for _, j := range pr.Truth[i] {
					mark[j] = true
				}
				row := pr.Probs[i*pr.Cols : (i+1)*pr.Cols]
				best, mx := 0, float32(math.Inf(-1))
				keys = keys[:0]
				for j, v := range row {
					if v > mx {
						best, mx = j, v
					}
					if v >= lo {
						// Bins descending, then columns ascending, as one
						// integer key: sorting it is several times faster than
						// sorting structs with a comparison function.
						keys = append(keys, uint64(s.G-s.bin(v))<<32|uint64(j))
					}
				}
				if len(row) > 0 {
					s.argTrue[i] = mark[best]
					s.rowMax[i] = mx
				}
				slices.Sort(keys)
				out := s.ents[s.rowOff[i]:s.rowOff[i+1]]
				for x, k := range keys {
					j := int(uint32(k))
					out[x] = entry{col: int32(j), p: row[j], bin: uint16(s.G - int(k>>32)), grp: uint8(pr.GroupOf[j]), tru: mark[j]}
				}
				for _, j := range pr.Truth[i] {
					mark[j] = false
				}
			}
		}()
	}
	wg.Wait()
	// Column view for the per-label sweep, by counting sort.
	s.colOff = make([]int, pr.Cols+1)
	for _, e := range s.ents {
		s.colOff[e.col+1]++
	}
	for j := range pr.Cols {
		s.colOff[j+1] += s.colOff[j]
	}
	s.cols = make([]colEntry, len(s.ents))
	fill := slices.Clone(s.colOff[:pr.Cols])
	for i := range pr.Rows {
		for _, e := range s.ents[s.rowOff[i]:s.rowOff[i+1]] {
			s.cols[fill[e.col]] = colEntry{row: int32(i), p: e.p, bin: e.bin, tru: e.tru}
			fill[e.col]++
		}
	}
	return s, nil
}

// lutSize is the number of buckets of [0, 1] in the bin lookup table.
const lutSize = 4096

// bin returns the number of grid values <= v, for v >= grid[0]: a table
// lookup gives a lower bound, a short scan the rest.
func (s *searcher) bin(v float32) int {
	b := int(v * lutSize)
	if b > lutSize {
		b = lutSize
	}
	k := int(s.lut[b])
	for k < s.G && s.grid32[k] <= v {
		k++
	}
	return k
}

// binSearch is bin by binary search, used to build the table.
func (s *searcher) binSearch(v float32) int {
	lo, hi := 0, s.G
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.grid32[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// split cuts n rows into one contiguous range per worker.
func (s *searcher) split(n int) [][2]int {
	w := min(s.workers, max(n, 1))
	out := make([][2]int, 0, w)
	for c := range w {
		out = append(out, [2]int{n * c / w, n * (c + 1) / w})
	}
	return out
}

// score is one image's contribution given its counts, with the at-least-one
// fallback applied.
func (s *searcher) score(i int, tp, np int) (f float64, counted float64, nPred int) {
	if np == 0 && s.o.AtLeastOne {
		np, tp = 1, 0
		if s.argTrue[i] {
			tp = 1
		}
	}
	v, ok := s.o.Score.Row(tp, np, int(s.nTrue[i]))
	if !ok {
		return 0, 0, np
	}
	return v, 1, np
}

// sweepAcc accumulates, per candidate k, the sum of scores, the number of
// rows counted and the number of labels predicted, as difference arrays.
type sweepAcc struct{ S, C, N []float64 }

func newAcc(G int) *sweepAcc {
	return &sweepAcc{make([]float64, G+1), make([]float64, G+1), make([]float64, G+1)}
}

func (a *sweepAcc) add(lo, hi int, f, c float64, n int) {
	if lo >= hi {
		return
	}
	a.S[lo] += f
	a.S[hi] -= f
	a.C[lo] += c
	a.C[hi] -= c
	a.N[lo] += float64(n)
	a.N[hi] -= float64(n)
}

// addRow adds one image: base counts fixed, and the swept entries with
// their bins in descending order. At candidate k the entries with bin > k
// are predicted, a prefix of the list.
func (s *searcher) addRow(a *sweepAcc, i, tpB, npB int, bins []uint16, tru []bool) {
	hi := s.G
	tp, np := tpB, npB
	for m := 0; m <= len(bins); m++ {
		lo := 0
		if m < len(bins) {
			lo = int(bins[m])
		}
		if lo < hi {
			f, c, n := s.score(i, tp, np)
			a.add(lo, hi, f, c, n)
			hi = lo
		}
		if m < len(bins) {
			np++
			if tru[m] {
				tp++
			}
		}
	}
}

// sweep runs addRow over all rows in parallel. rowFn fills, for row i, the
// base counts and the swept bins (descending) into the scratch slices.
func (s *searcher) sweep(rowFn func(i int, bins []uint16, tru []bool) (int, int, []uint16, []bool)) (score []float64, mean []float64) {
	chunks := s.split(s.pr.Rows)
	accs := make([]*sweepAcc, len(chunks))
	var wg sync.WaitGroup
	for c, ch := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := newAcc(s.G)
			var bins []uint16
			var tru []bool
			for i := ch[0]; i < ch[1]; i++ {
				var tpB, npB int
				tpB, npB, bins, tru = rowFn(i, bins[:0], tru[:0])
				s.addRow(a, i, tpB, npB, bins, tru)
			}
			accs[c] = a
		}()
	}
	wg.Wait()
	score = make([]float64, s.G)
	mean = make([]float64, s.G)
	var S, C, N float64
	for k := range s.G {
		for _, a := range accs {
			S += a.S[k]
			C += a.C[k]
			N += a.N[k]
		}
		if C > 0.5 {
			score[k] = S / C
		}
		mean[k] = N / float64(max(s.pr.Rows, 1))
	}
	return score, mean
}

// tieTol is how close two mean scores must be to count as a tie, which is
// then broken toward the lower candidate. Far below any real difference
// (one image changing its score moves the mean by ~1e-9 at iMet scale),
// far above the rounding of the sums.
const tieTol = 1e-12

func argBest(score []float64) int {
	best := 0
	for k, v := range score {
		if v > score[best] {
			best = k
		}
	}
	for k, v := range score {
		if v >= score[best]-tieTol {
			return k
		}
	}
	return best
}

func (s *searcher) uniform(t float64) []float64 {
	th := make([]float64, s.pr.Cols)
	for j := range th {
		th[j] = t
	}
	return th
}

// globalSweep scores every grid value as a single threshold.
func (s *searcher) globalSweep() (score, mean []float64) {
	return s.sweep(func(i int, bins []uint16, tru []bool) (int, int, []uint16, []bool) {
		for _, e := range s.ents[s.rowOff[i]:s.rowOff[i+1]] {
			bins = append(bins, e.bin)
			tru = append(tru, e.tru)
		}
		return 0, 0, bins, tru
	})
}

// groupAscent sets one threshold per group, starting from th, sweeping
// each group with the others fixed.
func (s *searcher) groupAscent(th []float64) []float64 {
	th = slices.Clone(th)
	for r := 0; r < max(s.o.Rounds, 1); r++ {
		for g := range s.pr.Groups {
			t := s.o.Grid[argBest(s.groupSweep(th, g))]
			for j := range th {
				if s.pr.GroupOf[j] == g {
					th[j] = t
				}
			}
		}
	}
	return th
}

// groupSweep scores every grid value as the threshold of group g's labels,
// the other labels keeping their thresholds in th.
func (s *searcher) groupSweep(th []float64, g int) []float64 {
	thr := make([]float32, len(th))
	for j, t := range th {
		thr[j] = float32(t)
	}
	score, _ := s.sweep(func(i int, bins []uint16, tru []bool) (int, int, []uint16, []bool) {
		tp, np := 0, 0
		for _, e := range s.ents[s.rowOff[i]:s.rowOff[i+1]] {
			if int(e.grp) == g {
				bins = append(bins, e.bin)
				tru = append(tru, e.tru)
			} else if e.p >= thr[e.col] {
				np++
				if e.tru {
					tp++
				}
			}
		}
		return tp, np, bins, tru
	})
	return score
}

// labelAscent sets one threshold per label by coordinate ascent from start,
// shrinking toward start (the group value) for labels with few positives.
// Changing label j's threshold changes only images with an entry in column
// j, so each label costs O(its entries + grid): the per-image score change
// of switching j on is histogrammed by bin and summed from the top.
func (s *searcher) labelAscent(start []float64) []float64 {
	th := slices.Clone(start)
	thr := make([]float32, len(th))
	for j, t := range th {
		thr[j] = float32(t)
	}
	tp := make([]int32, s.pr.Rows)
	np := make([]int32, s.pr.Rows)
	var S, C float64
	for i := range s.pr.Rows {
		for _, e := range s.ents[s.rowOff[i]:s.rowOff[i+1]] {
			if e.p >= thr[e.col] {
				np[i]++
				if e.tru {
					tp[i]++
				}
			}
		}
		f, c, _ := s.score(i, int(tp[i]), int(np[i]))
		S += f
		C += c
	}
	hS := make([]float64, s.G+1)
	hC := make([]float64, s.G+1)
	scores := make([]float64, s.G)
	var gS, gC []float64
	var oldOn []bool
	for r := 0; r < max(s.o.Rounds, 1); r++ {
		for j := range s.pr.Cols {
			ce := s.cols[s.colOff[j]:s.colOff[j+1]]
			if len(ce) == 0 {
				continue
			}
			clear(hS)
			clear(hC)
			gS, gC, oldOn = gS[:0], gC[:0], oldOn[:0]
			var onS, onC float64
			for _, e := range ce {
				i := int(e.row)
				on := e.p >= thr[j]
				offTp, offNp := int(tp[i]), int(np[i])
				if on {
					offNp--
					if e.tru {
						offTp--
					}
				}
				fOff, cOff, _ := s.score(i, offTp, offNp)
				onTp := offTp
				if e.tru {
					onTp++
				}
				fOn, cOn, _ := s.score(i, onTp, offNp+1)
				dS, dC := fOn-fOff, cOn-cOff
				gS, gC, oldOn = append(gS, dS), append(gC, dC), append(oldOn, on)
				hS[e.bin] += dS
				hC[e.bin] += dC
				if on {
					onS += dS
					onC += dC
				}
			}
			offS, offC := S-onS, C-onC
			// Predicted at grid[k] iff bin > k: suffix sums from the top.
			var sufS, sufC float64
			for k := s.G - 1; k >= 0; k-- {
				sufS += hS[k+1]
				sufC += hC[k+1]
				scores[k] = 0
				if c := offC + sufC; c > 0.5 {
					scores[k] = (offS + sufS) / c
				}
			}
			t := s.o.Grid[argBest(scores)]
			if s.o.Shrink > 0 {
				n := float64(s.nPos[j])
				t = round6((n*t + s.o.Shrink*start[j]) / (n + s.o.Shrink))
			}
			th[j], thr[j] = t, float32(t)
			S, C = offS, offC
			for x, e := range ce {
				on := e.p >= thr[j]
				if on {
					S += gS[x]
					C += gC[x]
				}
				if on != oldOn[x] {
					d := int32(1)
					if !on {
						d = -1
					}
					np[e.row] += d
					if e.tru {
						tp[e.row] += d
					}
				}
			}
		}
	}
	return th
}

// TruthOf converts each image's true label columns to a Problem's Truth.
func TruthOf(labels [][]int) [][]int32 {
	out := make([][]int32, len(labels))
	for i, ls := range labels {
		out[i] = make([]int32, len(ls))
		for x, j := range ls {
			out[i][x] = int32(j)
		}
	}
	return out
}
