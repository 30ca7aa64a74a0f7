package thresholds

import (
	"slices"
	"sync"
)

// topkAscent searches per-group bounds on top of thresholds th by
// coordinate ascent over groups, each candidate scored exactly.
func (s *searcher) topkAscent(th []float64) []Bounds {
	pr := s.pr
	NG := len(pr.Groups)
	maxK, minK := max(s.o.MaxK, 1), max(s.o.MinK, 0)
	n := pr.Rows
	thr := make([]float32, len(th))
	for j, t := range th {
		thr[j] = float32(t)
	}
	// Per image and group: passing count and true count, true flags of the
	// first maxK passing labels by probability, and of the first minK
	// non-passing ones (taken from the dense row: they may lie below the
	// grid).
	passCnt := make([]int32, n*NG)
	passTp := make([]int32, n*NG)
	passTru := make([]bool, n*NG*maxK)
	npTru := make([]bool, n*NG*max(minK, 1))
	npCnt := make([]int8, n*NG)
	var wg sync.WaitGroup
	for _, ch := range s.split(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mark := make([]bool, pr.Cols)
			type cand struct {
				p   float32
				col int
			}
			pass := make([][]cand, NG)
			np := make([][]cand, NG)
			less := func(a, b cand) int {
				switch {
				case a.p > b.p:
					return -1
				case a.p < b.p:
					return 1
				}
				return a.col - b.col
			}
			for i := ch[0]; i < ch[1]; i++ {
				for _, j := range pr.Truth[i] {
					mark[j] = true
				}
				for g := range NG {
					pass[g], np[g] = pass[g][:0], np[g][:0]
				}
				row := pr.Probs[i*pr.Cols : (i+1)*pr.Cols]
				for j, v := range row {
					g := pr.GroupOf[j]
					if v >= thr[j] {
						pass[g] = append(pass[g], cand{v, j})
						continue
					}
					if minK == 0 {
						continue
					}
					// Keep the minK most probable non-passing labels.
					c := cand{v, j}
					l := np[g]
					if len(l) == minK && less(c, l[minK-1]) >= 0 {
						continue
					}
					if len(l) < minK {
						l = append(l, c)
					} else {
						l[minK-1] = c
					}
					for x := len(l) - 1; x > 0 && less(l[x], l[x-1]) < 0; x-- {
						l[x], l[x-1] = l[x-1], l[x]
					}
					np[g] = l
				}
				for g := range NG {
					slices.SortFunc(pass[g], less)
					k := i*NG + g
					passCnt[k] = int32(len(pass[g]))
					for x, c := range pass[g] {
						if mark[c.col] {
							passTp[k]++
							if x < maxK {
								passTru[k*maxK+x] = true
							}
						}
					}
					npCnt[k] = int8(len(np[g]))
					for x, c := range np[g] {
						npTru[k*max(minK, 1)+x] = mark[c.col]
					}
				}
				for _, j := range pr.Truth[i] {
					mark[j] = false
				}
			}
		}()
	}
	wg.Wait()
	groupCounts := func(k int, b Bounds) (tp, np int) {
		cnt := int(passCnt[k])
		if b.Max == 0 || b.Max >= cnt {
			tp, np = int(passTp[k]), cnt
		} else {
			np = b.Max
			for x := range np {
				if passTru[k*maxK+x] {
					tp++
				}
			}
		}
		for x := 0; np < b.Min && x < int(npCnt[k]); x++ {
			np++
			if npTru[k*max(minK, 1)+x] {
				tp++
			}
		}
		return tp, np
	}
	bounds := make([]Bounds, NG)
	curTp := make([]int32, n*NG)
	curNp := make([]int32, n*NG)
	for k := range curTp {
		tp, np := groupCounts(k, Bounds{})
		curTp[k], curNp[k] = int32(tp), int32(np)
	}
	var cands []Bounds
	for mx := 0; mx <= maxK; mx++ {
		for mn := 0; mn <= minK; mn++ {
			if mx == 0 || mn <= mx {
				cands = append(cands, Bounds{Min: mn, Max: mx})
			}
		}
	}
	scoreOf := func(g int, b Bounds) float64 {
		chunks := s.split(n)
		sums := make([][2]float64, len(chunks))
		var wg sync.WaitGroup
		for c, ch := range chunks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var S, C float64
				for i := ch[0]; i < ch[1]; i++ {
					tp, np := 0, 0
					for h := range NG {
						if h != g {
							tp += int(curTp[i*NG+h])
							np += int(curNp[i*NG+h])
						}
					}
					gt, gn := groupCounts(i*NG+g, b)
					f, cc, _ := s.score(i, tp+gt, np+gn)
					S += f
					C += cc
				}
				sums[c] = [2]float64{S, C}
			}()
		}
		wg.Wait()
		var S, C float64
		for _, v := range sums {
			S += v[0]
			C += v[1]
		}
		if C < 0.5 {
			return 0
		}
		return S / C
	}
	for r := 0; r < max(s.o.Rounds, 1); r++ {
		for g := range NG {
			best, bestB := scoreOf(g, bounds[g]), bounds[g]
			for _, b := range cands {
				if v := scoreOf(g, b); v > best+tieTol {
					best, bestB = v, b
				}
			}
			bounds[g] = bestB
			for i := range n {
				tp, np := groupCounts(i*NG+g, bestB)
				curTp[i*NG+g], curNp[i*NG+g] = int32(tp), int32(np)
			}
		}
	}
	return bounds
}
