package thresholds

import (
	"fmt"
	"sync"

	"imet/internal/postprocess/fbeta"
)

// Evaluate applies rule to every row of pr and returns the mean score and
// the mean number of labels predicted per image. It is the exact reference
// the fast sweeps are tested against, and what Search reports.
func Evaluate(pr *Problem, rule *Rule, score fbeta.Options, workers int) (mean, meanLabels float64, err error) {
	if err := pr.check(); err != nil {
		return 0, 0, err
	}
	if len(rule.Thresholds) != pr.Cols {
		return 0, 0, fmt.Errorf("thresholds: rule has %d thresholds for %d columns", len(rule.Thresholds), pr.Cols)
	}
	if rule.Bounds != nil && len(rule.Bounds) != len(pr.Groups) {
		return 0, 0, fmt.Errorf("thresholds: rule has %d group bounds for %d groups", len(rule.Bounds), len(pr.Groups))
	}
	s := &searcher{pr: pr, workers: workers}
	if s.workers <= 0 {
		s.workers = 2
	}
	chunks := s.split(pr.Rows)
	type part struct{ S, C, N float64 }
	parts := make([]part, len(chunks))
	var wg sync.WaitGroup
	for c, ch := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pd := NewPredictor(rule, pr.GroupOf, len(pr.Groups))
			mark := make([]bool, pr.Cols)
			var buf []int
			var pt part
			for i := ch[0]; i < ch[1]; i++ {
				buf = pd.Predict(pr.Probs[i*pr.Cols:(i+1)*pr.Cols], buf[:0])
				for _, j := range pr.Truth[i] {
					mark[j] = true
				}
				tp := 0
				for _, j := range buf {
					if mark[j] {
						tp++
					}
				}
				for _, j := range pr.Truth[i] {
					mark[j] = false
				}
				if f, ok := score.Row(tp, len(buf), len(pr.Truth[i])); ok {
					pt.S += f
					pt.C++
				}
				pt.N += float64(len(buf))
			}
			parts[c] = pt
		}()
	}
	wg.Wait()
	var t part
	for _, p := range parts {
		t.S += p.S
		t.C += p.C
		t.N += p.N
	}
	if t.C > 0 {
		mean = t.S / t.C
	}
	return mean, t.N / float64(max(pr.Rows, 1)), nil
}

// evalSparse is Evaluate for rules without bounds whose thresholds are
// all at or above the lowest grid value, computed from the sparse entries
// (nothing below the grid can pass). Search uses it to score rules cheaply;
// tests hold it to Evaluate.
func (s *searcher) evalSparse(th []float64, rel float64) (mean, meanLabels float64) {
	thr := make([]float32, len(th))
	for j, t := range th {
		thr[j] = float32(t)
	}
	r32 := float32(rel)
	chunks := s.split(s.pr.Rows)
	sums := make([][3]float64, len(chunks))
	var wg sync.WaitGroup
	for c, ch := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var S, C, N float64
			for i := ch[0]; i < ch[1]; i++ {
				bar := r32 * s.rowMax[i]
				tp, np := 0, 0
				for _, e := range s.ents[s.rowOff[i]:s.rowOff[i+1]] {
					if e.p >= thr[e.col] && (r32 <= 0 || e.p >= bar) {
						np++
						if e.tru {
							tp++
						}
					}
				}
				f, cc, n := s.score(i, tp, np)
				S += f
				C += cc
				N += float64(n)
			}
			sums[c] = [3]float64{S, C, N}
		}()
	}
	wg.Wait()
	var S, C, N float64
	for _, v := range sums {
		S += v[0]
		C += v[1]
		N += v[2]
	}
	if C > 0.5 {
		mean = S / C
	}
	return mean, N / float64(max(s.pr.Rows, 1))
}
