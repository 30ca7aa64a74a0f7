// Package submission turns probabilities and a threshold rule into the
// competition's submission.csv:
//
//	id,attribute_ids
//	10023b2cc4ed5f68,223 343 344
//
// one row per image, attribute ids space-separated. Kaggle scores an empty
// row 0, so by default every row gets at least its most probable label.
package submission

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"imet/internal/base/atomicfile"
	"imet/internal/base/snippet"
	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
)

// Options steer Make.
type Options struct {
	// AllowEmpty lets a row stay empty when nothing passes the rule;
	// otherwise the image's best label is written.
	AllowEmpty bool
}

// Predict applies rule to every row of m and returns each image's
// predicted columns in increasing order.
func Predict(m *probs.Matrix, rule *thresholds.Rule, groupOf []int, nGroups int, o Options) ([][]int, error) {
	if len(rule.Thresholds) != m.Cols || len(groupOf) != m.Cols {
		return nil, fmt.Errorf("submission: rule for %d labels, group map for %d, probabilities have %d", len(rule.Thresholds), len(groupOf), m.Cols)
	}
	r := *rule
	r.AtLeastOne = !o.AllowEmpty
	out := make([][]int, m.Rows)
	var wg sync.WaitGroup
	const workers = 2
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := thresholds.NewPredictor(&r, groupOf, nGroups)
			for i := w * m.Rows / workers; i < (w+1)*m.Rows/workers; i++ {
				out[i] = p.Predict(m.Row(i), nil)
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// Write writes a submission atomically: ids[i] gets the attribute ids
// attrIDs[c] of the columns pred[i].
func Write(path string, ids, attrIDs []string, pred [][]int) error {
	if len(ids) != len(pred) {
		return fmt.Errorf("write %s: %d ids for %d predicted rows", path, len(ids), len(pred))
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		var b strings.Builder
		b.WriteString("id,attribute_ids\n")
		for i, id := range ids {
			if strings.ContainsAny(id, ",\"\n\r") {
				return fmt.Errorf("image id %s cannot be written unquoted", snippet.Quote(id))
			}
			b.WriteString(id)
			b.WriteByte(',')
			for x, c := range pred[i] {
				if x > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(attrIDs[c])
			}
			b.WriteByte('\n')
			if b.Len() > 1<<20 {
				if _, err := io.WriteString(w, b.String()); err != nil {
					return err
				}
				b.Reset()
			}
		}
		_, err := io.WriteString(w, b.String())
		return err
	})
}

// Stats summarise a submission for the command's report.
type Stats struct {
	Rows, Empty int
	MeanLabels  float64
	// PerGroup is the mean number of labels per image in each group.
	PerGroup []float64
}

// Summarise counts labels per image and group.
func Summarise(pred [][]int, groupOf []int, nGroups int) Stats {
	s := Stats{Rows: len(pred), PerGroup: make([]float64, nGroups)}
	var total int
	for _, p := range pred {
		if len(p) == 0 {
			s.Empty++
		}
		total += len(p)
		for _, c := range p {
			s.PerGroup[groupOf[c]]++
		}
	}
	if len(pred) > 0 {
		s.MeanLabels = float64(total) / float64(len(pred))
		for g := range s.PerGroup {
			s.PerGroup[g] /= float64(len(pred))
		}
	}
	return s
}

// Itoa is strconv.Itoa, for callers turning integer attribute ids into
// the strings Write takes.
func Itoa(ids []int) []string {
	out := make([]string, len(ids))
	for i, v := range ids {
		out[i] = strconv.Itoa(v)
	}
	return out
}
