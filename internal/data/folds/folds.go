// Package folds splits a multi-label data set into K cross-validation folds
// by iterative stratification (Sechidis, Tsoumakas and Vlahavas, "On the
// Stratification of Multi-Label Data", ECML PKDD 2011), and reads and
// writes the split as folds.csv (id,fold).
//
// The split is deterministic for a seed and never drops a row: rows of rare
// labels, and rows with no label at all, are assigned like the others. This
// matters on iMet, where half the 1103 labels have fewer than 50 images and a
// random K-fold leaves many of them out of some validation fold entirely,
// which makes per-label thresholds tuned on out-of-fold predictions
// meaningless for them.
//
// Rows may be tied into groups (all skin-tone variants of one emoji, all
// crops of one artwork) that must land in the same fold; the stratification
// then works on groups, weighted by their label counts.
package folds

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Stratify assigns each of the rows to one of k folds. labels[i] holds the
// label columns of row i (each in [0, nLabels)); repeated columns count
// once. The result is a fold index in [0, k) for every row.
func Stratify(labels [][]int, nLabels, k int, seed uint64) ([]int, error) {
	return StratifyGroups(labels, nil, nLabels, k, seed)
}

// StratifyGroups is Stratify with rows tied together: rows with the same
// group value always get the same fold. A nil groups slice puts every row
// in its own group.
func StratifyGroups(labels [][]int, groups []string, nLabels, k int, seed uint64) ([]int, error) {
	if k < 2 {
		return nil, fmt.Errorf("folds: k is %d, want at least 2", k)
	}
	if groups != nil && len(groups) != len(labels) {
		return nil, fmt.Errorf("folds: %d rows but %d group values", len(labels), len(groups))
	}
	items, rowItem, err := buildItems(labels, groups, nLabels)
	if err != nil {
		return nil, err
	}
	if len(items) < k {
		return nil, fmt.Errorf("folds: %d folds need at least %d rows (or groups), have %d", k, k, len(items))
	}
	itemFold := stratifyItems(items, nLabels, k, seed)
	fold := make([]int, len(labels))
	for r, it := range rowItem {
		fold[r] = itemFold[it]
	}
	return fold, nil
}

// item is the unit of assignment: one row, or one group of rows.
type item struct {
	size   int
	labels []int // distinct label columns, ascending
	counts []int // rows of the item holding each label
}

func buildItems(labels [][]int, groups []string, nLabels int) ([]item, []int, error) {
	rowItem := make([]int, len(labels))
	var items []item
	byGroup := map[string]int{}
	for r, ls := range labels {
		it := r
		if groups != nil {
			g, ok := byGroup[groups[r]]
			if !ok {
				g = len(items)
				byGroup[groups[r]] = g
				items = append(items, item{})
			}
			it = g
		} else {
			items = append(items, item{})
		}
		rowItem[r] = it
		items[it].size++
		row := slices.Clone(ls)
		slices.Sort(row)
		row = slices.Compact(row)
		for _, l := range row {
			if l < 0 || l >= nLabels {
				return nil, nil, fmt.Errorf("folds: row %d has label column %d outside [0, %d)", r, l, nLabels)
			}
			p := &items[it]
			if j, found := slices.BinarySearch(p.labels, l); found {
				p.counts[j]++
			} else {
				p.labels = slices.Insert(p.labels, j, l)
				p.counts = slices.Insert(p.counts, j, 1)
			}
		}
	}
	return items, rowItem, nil
}

// stratifyItems is Algorithm 1 of Sechidis et al.: repeatedly take the
// label with the fewest examples still unassigned, and give each of its
// unassigned items to the fold that most wants that label (ties: the fold
// that most wants examples overall, then a seeded random choice).
func stratifyItems(items []item, nLabels, k int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0x1e7f01d5))
	total := 0
	remaining := make([]int, nLabels)
	byLabel := make([][]int, nLabels)
	// Items are visited in a seeded random order, so that which fold gets
	// which row does not depend on the file's (often sorted) order.
	order := rng.Perm(len(items))
	for _, i := range order {
		it := &items[i]
		total += it.size
		for j, l := range it.labels {
			remaining[l] += it.counts[j]
			byLabel[l] = append(byLabel[l], i)
		}
	}
	want := make([]float64, k)              // rows each fold still wants
	wantLabel := make([]float64, nLabels*k) // label l, fold f at l*k+f
	for f := range want {
		want[f] = float64(total) / float64(k)
	}
	for l, n := range remaining {
		for f := 0; f < k; f++ {
			wantLabel[l*k+f] = float64(n) / float64(k)
		}
	}
	fold := make([]int, len(items))
	for i := range fold {
		fold[i] = -1
	}
	ties := make([]int, 0, k)
	assign := func(i, f int) {
		it := &items[i]
		fold[i] = f
		want[f] -= float64(it.size)
		for j, l := range it.labels {
			wantLabel[l*k+f] -= float64(it.counts[j])
			remaining[l] -= it.counts[j]
		}
	}
	for {
		// The label with the fewest unassigned examples goes first: rare
		// labels have the least room for error.
		best := -1
		for l, n := range remaining {
			if n > 0 && (best < 0 || n < remaining[best]) {
				best = l
			}
		}
		if best < 0 {
			break
		}
		wl := wantLabel[best*k : best*k+k]
		for _, i := range byLabel[best] {
			if fold[i] >= 0 {
				continue
			}
			ties = ties[:0]
			for f := 0; f < k; f++ {
				switch {
				case len(ties) == 0 || wl[f] > wl[ties[0]]:
					ties = append(ties[:0], f)
				case wl[f] == wl[ties[0]]:
					ties = append(ties, f)
				}
			}
			assign(i, pickMostWanted(ties, want, rng))
		}
		byLabel[best] = nil
	}
	// Items without labels fill the folds that are still short of rows.
	all := make([]int, 0, k)
	for f := 0; f < k; f++ {
		all = append(all, f)
	}
	for _, i := range order {
		if fold[i] < 0 {
			assign(i, pickMostWanted(all, want, rng))
		}
	}
	return fold
}

// pickMostWanted chooses among candidate folds the one wanting the most
// rows, breaking remaining ties at random.
func pickMostWanted(cands []int, want []float64, rng *rand.Rand) int {
	if len(cands) == 1 {
		return cands[0]
	}
	best := cands[0]
	n := 1
	for _, f := range cands[1:] {
		switch {
		case want[f] > want[best]:
			best, n = f, 1
		case want[f] == want[best]:
			// Reservoir sampling over the tied folds.
			n++
			if rng.IntN(n) == 0 {
				best = f
			}
		}
	}
	return best
}

// Random assigns n rows to k folds of near-equal size in a seeded random
// order, ignoring labels: the baseline stratification is measured against.
func Random(n, k int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0x1e7f01d5))
	fold := make([]int, n)
	for pos, r := range rng.Perm(n) {
		fold[r] = pos % k
	}
	return fold
}

// ErrFoldRange reports a fold index outside [0, k).
var ErrFoldRange = errors.New("fold index out of range")
