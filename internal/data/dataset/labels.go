package dataset

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"imet/internal/base/atomicfile"
	"imet/internal/base/snippet"
)

// LabelsHeader is the header of labels.csv.
var LabelsHeader = []string{"attribute_id", "attribute_name"}

// Labels is the label set of a data set, read from labels.csv. Columns are
// numbered 0..Len()-1 in file order; every probability matrix, threshold
// vector and label list in imet is indexed by column, never by attribute
// id, because ids need not be contiguous (the 2020 set skips none, but a
// user's subset may).
type Labels struct {
	IDs     []int    // attribute_id of each column
	Names   []string // attribute_name of each column, e.g. "culture::french"
	Groups  []string // distinct group names (the part before "::") in first-seen order
	GroupOf []int    // index into Groups of each column

	index map[int]int
}

// NewLabels builds a label set from parallel id and name slices, checking
// that ids are distinct and non-negative and that every name has a
// "group::value" form.
func NewLabels(ids []int, names []string) (*Labels, error) {
	if len(ids) != len(names) {
		return nil, fmt.Errorf("labels: %d ids but %d names", len(ids), len(names))
	}
	l := &Labels{}
	for i := range ids {
		if err := l.add(ids[i], names[i]); err != nil {
			return nil, fmt.Errorf("labels: column %d: %w", i, err)
		}
	}
	return l, nil
}

func (l *Labels) add(id int, name string) error {
	if id < 0 {
		return fmt.Errorf("negative attribute id %d", id)
	}
	if l.index == nil {
		l.index = make(map[int]int)
	}
	if c, dup := l.index[id]; dup {
		return fmt.Errorf("attribute id %d repeated (first for %s)", id, snippet.Quote(l.Names[c]))
	}
	group, value, ok := strings.Cut(name, "::")
	if !ok || group == "" || value == "" {
		return fmt.Errorf("attribute name %s is not of the form group::value", snippet.Quote(name))
	}
	g := -1
	for i, have := range l.Groups {
		if have == group {
			g = i
			break
		}
	}
	if g < 0 {
		g = len(l.Groups)
		l.Groups = append(l.Groups, group)
	}
	l.index[id] = len(l.IDs)
	l.IDs = append(l.IDs, id)
	l.Names = append(l.Names, name)
	l.GroupOf = append(l.GroupOf, g)
	return nil
}

// Len is the number of labels (columns).
func (l *Labels) Len() int { return len(l.IDs) }

// Index returns the column of an attribute id.
func (l *Labels) Index(id int) (col int, ok bool) {
	col, ok = l.index[id]
	return col, ok
}

// Group returns the index of a group name, or -1.
func (l *Labels) Group(name string) int {
	for i, g := range l.Groups {
		if g == name {
			return i
		}
	}
	return -1
}

// Columns returns the columns of group g in column order.
func (l *Labels) Columns(g int) []int {
	var cols []int
	for c, gg := range l.GroupOf {
		if gg == g {
			cols = append(cols, c)
		}
	}
	return cols
}

// Value returns the part of a column's name after "group::".
func (l *Labels) Value(col int) string {
	_, v, _ := strings.Cut(l.Names[col], "::")
	return v
}

// ReadLabels reads labels.csv (attribute_id,attribute_name). Errors name
// the file, line and value.
func ReadLabels(path string) (*Labels, error) {
	c := newCollector(1, false)
	l, err := readLabels(c, path)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return l, nil
}

// ParseLabels is ReadLabels for content already in memory; name is used in
// error messages.
func ParseLabels(name string, data []byte) (*Labels, error) {
	c := newCollector(1, false)
	l := parseLabels(c, name, data)
	if err := c.err(); err != nil {
		return nil, err
	}
	return l, nil
}

func readLabels(c *collector, path string) (*Labels, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseLabels(c, baseName(path), data), nil
}

func parseLabels(c *collector, name string, data []byte) *Labels {
	l := &Labels{index: map[int]int{}}
	for _, r := range parseCSV(c, name, data, LabelsHeader) {
		if c.full() {
			break
		}
		id, err := strconv.Atoi(strings.TrimSpace(r.fields[0]))
		if err != nil {
			c.errorf(name, r.line, r.fields[0], "attribute_id is not an integer:")
			continue
		}
		if err := l.add(id, r.fields[1]); err != nil {
			c.errorf(name, r.line, "", "%v", err)
		}
	}
	if l.Len() == 0 && !c.full() {
		c.errorf(name, 0, "", "no labels")
	}
	return l
}

// WriteLabels writes labels.csv atomically.
func WriteLabels(path string, l *Labels) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return writeCSV(w, LabelsHeader, l.Len(), func(i int) []string {
			return []string{strconv.Itoa(l.IDs[i]), l.Names[i]}
		})
	})
}

// Select returns the columns that specs name, in column order: each spec
// is a group name (every label of the group) or an attribute id. An
// unknown name or id is an error naming it.
func (l *Labels) Select(specs []string) ([]int, error) {
	on := make([]bool, l.Len())
	for _, s := range specs {
		s = strings.TrimSpace(s)
		if g := l.Group(s); g >= 0 {
			for _, c := range l.Columns(g) {
				on[c] = true
			}
			continue
		}
		id, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s is neither a label group (%s) nor an attribute id", snippet.Quote(s), strings.Join(l.Groups, ", "))
		}
		c, ok := l.Index(id)
		if !ok {
			return nil, fmt.Errorf("attribute id %d is not in labels.csv", id)
		}
		on[c] = true
	}
	var cols []int
	for c, ok := range on {
		if ok {
			cols = append(cols, c)
		}
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no label selected")
	}
	return cols, nil
}

// Restrict returns a copy of the data set with only columns cols (in
// column order) as its labels, each row keeping the labels among them:
// the label space of a specialist model.
func (d *Dataset) Restrict(cols []int) (*Dataset, error) {
	ids := make([]int, len(cols))
	names := make([]string, len(cols))
	to := make(map[int]int, len(cols))
	for i, c := range cols {
		ids[i], names[i] = d.Labels.IDs[c], d.Labels.Names[c]
		to[c] = i
	}
	l, err := NewLabels(ids, names)
	if err != nil {
		return nil, err
	}
	out := *d
	out.Labels = l
	out.Train = make([]Row, len(d.Train))
	for i, r := range d.Train {
		var ls []int
		for _, c := range r.Labels {
			if n, ok := to[c]; ok {
				ls = append(ls, n)
			}
		}
		out.Train[i] = Row{ID: r.ID, Labels: ls}
	}
	return &out, nil
}
