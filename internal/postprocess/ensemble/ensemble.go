// Package ensemble combines probability files — the fold models' test
// predictions, several architectures, test-time-augmentation passes — into
// one, after checking that they describe the same images and labels.
//
// Methods:
//
//   - mean: the arithmetic mean of the probabilities;
//   - rank: each file's column replaced by the rank of each image within it
//     (ties share their average rank), divided by the number of images, then
//     averaged. Models with different calibration then count equally; this
//     is what the 2019 top solutions used. The result is a score in (0, 1],
//     not a probability, so thresholds must be searched on out-of-fold
//     predictions combined the same way;
//   - geomean: the geometric mean, exp(mean(log p)), with p clamped to
//     [1e-7, 1] so a single zero does not veto a label;
//   - weighted: the mean with the given weights (any method accepts
//     weights; they are normalised to sum to 1).
//
// Concat is the other way to combine: stacking the out-of-fold parts of K
// folds, which share no image, into one out-of-fold file.
package ensemble

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"imet/internal/base/snippet"
	"imet/internal/postprocess/probs"
)

// Method names a way of combining.
type Method string

// The methods; see the package comment.
const (
	Mean     Method = "mean"
	Rank     Method = "rank"
	GeoMean  Method = "geomean"
	Weighted Method = "weighted"
)

// Methods lists the known methods.
var Methods = []Method{Mean, Rank, GeoMean, Weighted}

// Input is one file to combine, with the name errors should use.
type Input struct {
	Name string
	File *probs.File
}

// align reorders in's rows (and columns, when both sides name them) to
// match ref, or says precisely why it cannot.
func align(ref, in Input) (*probs.Matrix, error) {
	r, f := ref.File, in.File
	if f.Cols != r.Cols {
		return nil, fmt.Errorf("%s has %d label columns, %s has %d", in.Name, f.Cols, ref.Name, r.Cols)
	}
	if f.Rows != r.Rows {
		return nil, fmt.Errorf("%s has %d images, %s has %d", in.Name, f.Rows, ref.Name, r.Rows)
	}
	rowMap, err := permutation(ref.Name, in.Name, "image", r.IDs, f.IDs)
	if err != nil {
		return nil, err
	}
	var colMap []int
	if r.Labels != nil && f.Labels != nil {
		if colMap, err = permutation(ref.Name, in.Name, "attribute", r.Labels, f.Labels); err != nil {
			return nil, err
		}
	}
	if rowMap == nil && colMap == nil {
		return f.Matrix, nil
	}
	out := probs.NewMatrix(r.Rows, r.Cols)
	for i := range r.Rows {
		src := i
		if rowMap != nil {
			src = rowMap[i]
		}
		srow, drow := f.Row(src), out.Row(i)
		if colMap == nil {
			copy(drow, srow)
			continue
		}
		for j := range drow {
			drow[j] = srow[colMap[j]]
		}
	}
	return out, nil
}

// permutation returns, for each of want's entries, its position in have;
// nil when the order is already the same.
func permutation(refName, name, what string, want, have []string) ([]int, error) {
	if slices.Equal(want, have) {
		return nil, nil
	}
	pos := make(map[string]int, len(have))
	for i, v := range have {
		pos[v] = i
	}
	out := make([]int, len(want))
	for i, v := range want {
		p, ok := pos[v]
		if !ok {
			return nil, fmt.Errorf("%s has no %s %s, which %s has (row %d of its sidecar)", name, what, snippet.Quote(v), refName, i+1)
		}
		out[i] = p
	}
	return out, nil
}

// Combine merges inputs with method m. weights, when not nil, has one
// non-negative entry per input. The result takes the first input's row and
// column order; the others are aligned to it by image id and attribute id.
func Combine(inputs []Input, m Method, weights []float64) (*probs.File, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("ensemble: no input files")
	}
	if !slices.Contains(Methods, m) {
		return nil, fmt.Errorf("ensemble: unknown method %q (known: %v)", m, Methods)
	}
	if m == Weighted && weights == nil {
		return nil, fmt.Errorf("ensemble: method weighted needs one weight per file")
	}
	w := make([]float64, len(inputs))
	if weights == nil {
		for i := range w {
			w[i] = 1
		}
	} else {
		if len(weights) != len(inputs) {
			return nil, fmt.Errorf("ensemble: %d weights for %d files", len(weights), len(inputs))
		}
		copy(w, weights)
	}
	var sum float64
	for i, v := range w {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("ensemble: weight %v of %s must be a finite non-negative number", v, inputs[i].Name)
		}
		sum += v
	}
	if sum == 0 {
		return nil, fmt.Errorf("ensemble: weights sum to 0")
	}
	ref := inputs[0]
	labels := ref.File.Labels
	for _, in := range inputs[1:] {
		if labels == nil && in.File.Labels != nil {
			return nil, fmt.Errorf("ensemble: %s names its label columns but %s does not; give every file a labels sidecar or none", in.Name, ref.Name)
		}
	}
	rows, cols := ref.File.Rows, ref.File.Cols
	acc := make([]float64, rows*cols)
	// With equal weights the geometric mean is the n-th root of the
	// product: one root per value instead of a logarithm per value and
	// file. 40 factors of at least 1e-7 stay far from float64 underflow.
	product := m == GeoMean && len(inputs) <= 40 && !slices.ContainsFunc(w, func(v float64) bool { return v != w[0] })
	if product {
		parallel(len(acc), func(lo, hi int) {
			for x := range acc[lo:hi] {
				acc[lo+x] = 1
			}
		})
	}
	for k, in := range inputs {
		m2, err := align(ref, in)
		if err != nil {
			return nil, fmt.Errorf("ensemble: %w", err)
		}
		wk := w[k] / sum
		if x := firstNaN(m2.Data); x >= 0 {
			return nil, fmt.Errorf("ensemble: %s: NaN at image %s, column %d", in.Name, snippet.Quote(ref.File.IDs[x/cols]), x%cols)
		}
		switch m {
		case Mean, Weighted:
			parallel(len(acc), func(lo, hi int) {
				for x, v := range m2.Data[lo:hi] {
					acc[lo+x] += wk * float64(v)
				}
			})
		case GeoMean:
			if product {
				parallel(len(acc), func(lo, hi int) {
					for x, v := range m2.Data[lo:hi] {
						acc[lo+x] *= clamp(v)
					}
				})
				break
			}
			parallel(len(acc), func(lo, hi int) {
				for x, v := range m2.Data[lo:hi] {
					acc[lo+x] += wk * math.Log(clamp(v))
				}
			})
		case Rank:
			addRanks(acc, m2, wk)
		}
	}
	out := &probs.File{Matrix: probs.NewMatrix(rows, cols), IDs: slices.Clone(ref.File.IDs), Labels: slices.Clone(labels)}
	n := len(inputs)
	parallel(len(acc), func(lo, hi int) {
		for x, v := range acc[lo:hi] {
			switch {
			case product && n == 1:
			case product && n == 2:
				v = math.Sqrt(v)
			case product && n == 4:
				v = math.Sqrt(math.Sqrt(v))
			case product:
				v = math.Pow(v, 1/float64(n))
			case m == GeoMean:
				v = math.Exp(v)
			}
			out.Data[lo+x] = float32(v)
		}
	})
	return out, nil
}

// workers is how many goroutines the element-wise loops use.
const workers = 2

// parallel runs fn over [0, n) cut into one contiguous range per worker.
func parallel(n int, fn func(lo, hi int)) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(n*w/workers, n*(w+1)/workers)
		}()
	}
	wg.Wait()
}

// clamp limits a probability to [1e-7, 1] for the geometric mean (NaN
// was refused before).
func clamp(v float32) float64 {
	switch {
	case v < 1e-7:
		return 1e-7
	case v > 1:
		return 1
	}
	return float64(v)
}

// firstNaN returns the index of the first NaN in data, or -1.
func firstNaN(data []float32) int {
	for x, v := range data {
		if v != v {
			return x
		}
	}
	return -1
}

// addRanks adds w·rank/rows of each value within its column to acc.
func addRanks(acc []float64, m *probs.Matrix, w float64) {
	forColumnBlocks(m.Cols, func(j0, nb int, s *rankScratch) {
		s.rankBlock(m, j0, nb)
		for i := range m.Rows {
			dst := acc[i*m.Cols+j0 : i*m.Cols+j0+nb]
			for c := range dst {
				dst[c] += w * (s.ranks[c*m.Rows+i] / float64(m.Rows))
			}
		}
	})
}

// colBlock is how many columns are handled at a time. Columns are copied
// out column-major a block at a time, because walking a row-major matrix
// down a column misses the cache on every value.
const colBlock = 32

// rankScratch is one worker's buffers for ranking a block of columns.
type rankScratch struct {
	keys, tmp []uint64
	vals      []uint32
	ranks     []float64 // 1-based, ties averaged, column-major
}

// forColumnBlocks calls fn for each block of colBlock columns (the last
// one shorter) from two workers, each with its own scratch.
func forColumnBlocks(cols int, fn func(j0, nb int, s *rankScratch)) {
	var wg sync.WaitGroup
	next := make(chan int, cols/colBlock+1)
	for j0 := 0; j0 < cols; j0 += colBlock {
		next <- j0
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &rankScratch{}
			for j0 := range next {
				fn(j0, min(colBlock, cols-j0), s)
			}
		}()
	}
	wg.Wait()
}

// rankBlock fills s.ranks with the rank of each value of columns
// j0..j0+nb of m within its column.
func (s *rankScratch) rankBlock(m *probs.Matrix, j0, nb int) {
	n := m.Rows
	if len(s.keys) < n {
		s.keys, s.tmp = make([]uint64, n), make([]uint64, n)
	}
	if len(s.vals) < colBlock*n {
		s.vals, s.ranks = make([]uint32, colBlock*n), make([]float64, colBlock*n)
	}
	for i := range n {
		for c, v := range m.Data[i*m.Cols+j0 : i*m.Cols+j0+nb] {
			s.vals[c*n+i] = orderedBits(v)
		}
	}
	for c := range nb {
		sorted := s.sortColumn(s.vals[c*n : (c+1)*n])
		rk := s.ranks[c*n : (c+1)*n]
		// Ties share the mean of the ranks they span (1-based), as
		// scipy.stats.rankdata does.
		for a := 0; a < len(sorted); {
			b := a + 1
			for b < len(sorted) && sorted[b]>>32 == sorted[a]>>32 {
				b++
			}
			r := (float64(a+1) + float64(b)) / 2
			for _, k := range sorted[a:b] {
				rk[uint32(k)] = r
			}
			a = b
		}
	}
}

// sortColumn returns the keys value<<32|row of col sorted by value.
func (s *rankScratch) sortColumn(col []uint32) []uint64 {
	keys, tmp := s.keys[:len(col)], s.tmp[:len(col)]
	for i, v := range col {
		keys[i] = uint64(v)<<32 | uint64(i)
	}
	return radixSortHigh(keys, tmp)
}

// MatchQuantiles maps each column of scores onto the distribution of the
// same column of ref (aligned by attribute id when both name their
// columns): a value whose rank within its column is r of n (1-based, ties
// averaged) becomes ref's quantile at (r-½)/n, interpolated linearly
// between ref's sorted values (Hazen's plotting position, under which
// scores equal to ref map onto themselves). Only the order of the values
// within each column of scores matters.
//
// This puts a rank ensemble back on the probability scale of ref, such as
// the out-of-fold probabilities thresholds were searched on: the mean of a
// column's ranks is not uniform (the less the models agree, the more it
// gathers in the middle), so the ranks are taken afresh.
func MatchQuantiles(scores, ref Input) (*probs.File, error) {
	s, r := scores.File, ref.File
	if s.Cols != r.Cols {
		return nil, fmt.Errorf("ensemble: %s has %d label columns, %s has %d", scores.Name, s.Cols, ref.Name, r.Cols)
	}
	if r.Rows == 0 {
		return nil, fmt.Errorf("ensemble: %s has no rows to take quantiles from", ref.Name)
	}
	var colMap []int // column of ref for each column of scores
	if s.Labels != nil && r.Labels != nil {
		var err error
		if colMap, err = permutation(scores.Name, ref.Name, "attribute", s.Labels, r.Labels); err != nil {
			return nil, fmt.Errorf("ensemble: %w", err)
		}
	}
	for _, in := range []Input{scores, ref} {
		if x := firstNaN(in.File.Data); x >= 0 {
			return nil, fmt.Errorf("ensemble: %s: NaN at image %s, column %d", in.Name, snippet.Quote(in.File.IDs[x/in.File.Cols]), x%in.File.Cols)
		}
	}
	n, m := s.Rows, r.Rows
	out := &probs.File{Matrix: probs.NewMatrix(n, s.Cols), IDs: slices.Clone(s.IDs), Labels: slices.Clone(s.Labels)}
	forColumnBlocks(s.Cols, func(j0, nb int, sc *rankScratch) {
		sc.rankBlock(s.Matrix, j0, nb)
		refKeys, refTmp := make([]uint64, m), make([]uint64, m)
		refCol := make([]float32, m)
		sorted := make([]float32, m)
		for c := range nb {
			j := j0 + c
			if colMap != nil {
				j = colMap[j]
			}
			for i := range m {
				v := r.Data[i*r.Cols+j]
				refCol[i] = v
				refKeys[i] = uint64(orderedBits(v))<<32 | uint64(i)
			}
			for x, k := range radixSortHigh(refKeys, refTmp) {
				sorted[x] = refCol[uint32(k)]
			}
			rk := sc.ranks[c*n : (c+1)*n]
			for i := range n {
				// 2r is a whole number, so for m = n the position is the
				// exact integer r-1 and the value is ref's own.
				num := (int64(2*rk[i])-1)*int64(m) - int64(n)
				pos := float64(num) / float64(2*n)
				pos = min(max(pos, 0), float64(m-1))
				lo := int(pos)
				v := float64(sorted[lo])
				if f := pos - float64(lo); f > 0 && lo+1 < m {
					v += f * (float64(sorted[lo+1]) - v)
				}
				out.Data[i*s.Cols+j0+c] = float32(v)
			}
		}
	})
	return out, nil
}

// radixSortHigh sorts keys by their high 32 bits (a value's ordered bits;
// the low half holds its row), in three passes of 11 bits, skipping passes
// where every key has the same digit. It is linear in the rows, where a
// comparison sort was most of the rank method's time. The result is in
// keys or tmp.
func radixSortHigh(keys, tmp []uint64) []uint64 {
	for shift := 32; shift < 64; shift += 11 {
		var cnt [2048]int
		for _, k := range keys {
			cnt[(k>>shift)&2047]++
		}
		if cnt[(keys[0]>>shift)&2047] == len(keys) {
			continue
		}
		sum := 0
		for d, c := range cnt {
			cnt[d] = sum
			sum += c
		}
		for _, k := range keys {
			d := (k >> shift) & 2047
			tmp[cnt[d]] = k
			cnt[d]++
		}
		keys, tmp = tmp, keys
	}
	return keys
}

// orderedBits maps a float32 to a uint32 with the same order (negative
// values included, -0 equal to +0), so that scores such as logits rank
// correctly too.
func orderedBits(v float32) uint32 {
	if v == 0 {
		v = 0
	}
	b := math.Float32bits(v)
	if b&0x80000000 != 0 {
		return ^b
	}
	return b | 0x80000000
}

// Concat stacks files that hold disjoint images with the same columns,
// such as the out-of-fold parts of a K-fold run, into one file whose rows
// follow the inputs in order.
func Concat(inputs []Input) (*probs.File, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("ensemble: no input files")
	}
	ref := inputs[0]
	seen := map[string]string{}
	total := 0
	for _, in := range inputs {
		if in.File.Cols != ref.File.Cols {
			return nil, fmt.Errorf("ensemble: %s has %d label columns, %s has %d", in.Name, in.File.Cols, ref.Name, ref.File.Cols)
		}
		if (in.File.Labels == nil) != (ref.File.Labels == nil) || (in.File.Labels != nil && !slices.Equal(in.File.Labels, ref.File.Labels)) {
			return nil, fmt.Errorf("ensemble: %s and %s have different label columns", in.Name, ref.Name)
		}
		for _, id := range in.File.IDs {
			if prev, dup := seen[id]; dup {
				return nil, fmt.Errorf("ensemble: image %s is in both %s and %s; concat is for disjoint parts", snippet.Quote(id), prev, in.Name)
			}
			seen[id] = in.Name
		}
		total += in.File.Rows
	}
	out := &probs.File{Matrix: probs.NewMatrix(total, ref.File.Cols), Labels: slices.Clone(ref.File.Labels)}
	off := 0
	for _, in := range inputs {
		copy(out.Data[off:], in.File.Data)
		off += len(in.File.Data)
		out.IDs = append(out.IDs, in.File.IDs...)
	}
	return out, nil
}
