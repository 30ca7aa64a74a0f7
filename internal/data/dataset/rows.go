package dataset

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"imet/internal/base/atomicfile"
	"imet/internal/base/snippet"
)

// TrainHeader is the header of train.csv and sample_submission.csv.
var TrainHeader = []string{"id", "attribute_ids"}

// Row is one labelled image: its id (the file name without extension) and
// its labels as column indices into Labels, ascending.
type Row struct {
	ID     string
	Labels []int
}

// ReadOptions tune what the readers accept.
type ReadOptions struct {
	// AllowEmpty accepts rows with no attribute ids. iMet's train.csv has
	// none, so by default an empty list is an error: it is far more often a
	// broken export than a real image without labels.
	AllowEmpty bool
	// MaxProblems is how many errors to collect before giving up; 0 or 1
	// stops at the first.
	MaxProblems int
}

// ReadTrain reads a train.csv-format file (id,attribute_ids with the ids
// space-separated) against a label set. Duplicate image ids, unknown or
// repeated attribute ids, non-integers and (unless allowed) empty lists are
// errors naming the file, line and value.
func ReadTrain(path string, labels *Labels, opt ReadOptions) ([]Row, error) {
	c := newCollector(opt.MaxProblems, false)
	rows, _, err := readTrain(c, path, labels, opt.AllowEmpty)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return rows, nil
}

// readTrain also returns the line of each row, for later checks (images)
// to name.
func readTrain(c *collector, path string, labels *Labels, allowEmpty bool) ([]Row, []int, error) {
	recs, err := readCSV(c, path, TrainHeader)
	if err != nil {
		return nil, nil, err
	}
	var lines []int
	name := baseName(path)
	rows := make([]Row, 0, len(recs))
	seen := make(map[string]int, len(recs))
	for _, r := range recs {
		if c.full() {
			break
		}
		id := strings.TrimSpace(r.fields[0])
		if !checkID(c, name, r.line, id, seen) {
			continue
		}
		fields := strings.Fields(r.fields[1])
		if len(fields) == 0 && !allowEmpty {
			c.errorf(name, r.line, id, "empty attribute_ids for id")
			continue
		}
		cols := make([]int, 0, len(fields))
		ok := true
		for _, f := range fields {
			a, err := strconv.Atoi(f)
			if err != nil {
				c.errorf(name, r.line, f, "attribute id is not an integer:")
				ok = false
				break
			}
			col, known := labels.Index(a)
			if !known {
				c.errorf(name, r.line, f, "unknown attribute id (not in labels.csv):")
				ok = false
				break
			}
			cols = append(cols, col)
		}
		if !ok {
			continue
		}
		slices.Sort(cols)
		if i := firstRepeat(cols); i >= 0 {
			c.errorf(name, r.line, strconv.Itoa(labels.IDs[cols[i]]), "attribute id repeated:")
			continue
		}
		rows = append(rows, Row{ID: id, Labels: cols})
		lines = append(lines, r.line)
	}
	return rows, lines, nil
}

// checkID records id as seen and reports whether it is usable: non-empty,
// free of path separators (it names a file) and not seen before.
func checkID(c *collector, file string, line int, id string, seen map[string]int) bool {
	switch {
	case id == "":
		c.errorf(file, line, "", "empty id")
		return false
	case strings.ContainsAny(id, `/\`) || id == "." || id == "..":
		c.errorf(file, line, id, "id is not a plain file name:")
		return false
	}
	if first, dup := seen[id]; dup {
		c.errorf(file, line, id, "duplicate id (first on line %d):", first)
		return false
	}
	seen[id] = line
	return true
}

func firstRepeat(sorted []int) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}

// ReadSampleSubmission reads sample_submission.csv and returns its image
// ids in file order; the attribute_ids column is a placeholder and is not
// checked.
func ReadSampleSubmission(path string) ([]string, error) {
	c := newCollector(1, false)
	ids, _, err := readSample(c, path)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return ids, nil
}

func readSample(c *collector, path string) ([]string, []int, error) {
	recs, err := readCSV(c, path, TrainHeader)
	if err != nil {
		return nil, nil, err
	}
	var lines []int
	name := baseName(path)
	ids := make([]string, 0, len(recs))
	seen := make(map[string]int, len(recs))
	for _, r := range recs {
		if c.full() {
			break
		}
		id := strings.TrimSpace(r.fields[0])
		if checkID(c, name, r.line, id, seen) {
			ids = append(ids, id)
			lines = append(lines, r.line)
		}
	}
	return ids, lines, nil
}

// WriteTrain writes rows in train.csv format atomically, attribute ids in
// ascending column order.
func WriteTrain(path string, labels *Labels, rows []Row) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return writeCSV(w, TrainHeader, len(rows), func(i int) []string {
			return []string{rows[i].ID, FormatIDs(labels, rows[i].Labels)}
		})
	})
}

// WriteSampleSubmission writes a sample_submission.csv for ids; like
// Kaggle's, every row carries the same placeholder prediction.
func WriteSampleSubmission(path string, ids []string, placeholder string) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return writeCSV(w, TrainHeader, len(ids), func(i int) []string {
			return []string{ids[i], placeholder}
		})
	})
}

// FormatIDs renders columns as the space-separated attribute ids of the
// competition format.
func FormatIDs(labels *Labels, cols []int) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(labels.IDs[c]))
	}
	return b.String()
}

func baseName(path string) string { return filepath.Base(path) }

// MissingIDError says that the image at Index of a list of ids has no
// row: callers add which file that list and the rows came from.
type MissingIDError struct {
	Index int
	ID    string
}

func (e *MissingIDError) Error() string {
	return fmt.Sprintf("image %s (entry %d) has no row", snippet.Quote(e.ID), e.Index+1)
}

// LabelsFor returns the labels of each of ids, in that order, from rows
// (train.csv): the join every out-of-fold file needs with its truth. The
// first id without a row is a *MissingIDError.
func LabelsFor(rows []Row, ids []string) ([][]int, error) {
	byID := make(map[string][]int, len(rows))
	for _, r := range rows {
		byID[r.ID] = r.Labels
	}
	out := make([][]int, len(ids))
	for i, id := range ids {
		ls, ok := byID[id]
		if !ok {
			return nil, &MissingIDError{Index: i, ID: id}
		}
		out[i] = ls
	}
	return out, nil
}
