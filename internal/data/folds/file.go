package folds

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"imet/internal/base/atomicfile"
	"imet/internal/base/snippet"
	"imet/internal/data/dataset"
)

// Header is the header of folds.csv.
var Header = []string{"id", "fold"}

// Assignment is a split read from or written to folds.csv.
type Assignment struct {
	IDs  []string
	Fold []int
	K    int // number of folds: the largest fold index + 1

	name  string      // file name, for errors found after reading
	first map[int]int // line of each fold's first row
	sizes map[int]int // rows of each fold
}

// Write writes folds.csv atomically, one "id,fold" row per image.
func Write(path string, ids []string, fold []int) error {
	if len(ids) != len(fold) {
		return fmt.Errorf("folds: %d ids but %d folds", len(ids), len(fold))
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(Header)
		for i, id := range ids {
			cw.Write([]string{id, strconv.Itoa(fold[i])})
		}
		cw.Flush()
		return cw.Error()
	})
}

// Read reads folds.csv. Errors name the file, line and value: a bad header,
// a fold that is not a non-negative integer, a duplicate id, or a fold
// number beyond a fold left empty (folds 0, 1, 2 and one row of fold 7:
// the 7 is named with its line, as a stray number, not taken for folds
// 3..7).
func Read(path string) (*Assignment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("folds: %w", err)
	}
	name := filepath.Base(path)
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	a := &Assignment{name: name, first: map[int]int{}, sizes: map[int]int{}}
	seen := map[string]int{}
	sizes := a.sizes
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: malformed CSV: %w", name, err)
		}
		line, _ := r.FieldPos(0)
		if first {
			if len(rec) != 2 || rec[0] != Header[0] || rec[1] != Header[1] {
				return nil, fmt.Errorf("%s:%d: header is not \"id,fold\": %s", name, line, snippet.Quote(strings.Join(rec, ",")))
			}
			continue
		}
		if len(rec) != 2 {
			return nil, fmt.Errorf("%s:%d: want 2 fields, got %d: %s", name, line, len(rec), snippet.Quote(strings.Join(rec, ",")))
		}
		id := strings.TrimSpace(rec[0])
		f, err := strconv.Atoi(strings.TrimSpace(rec[1]))
		if err != nil || f < 0 {
			return nil, fmt.Errorf("%s:%d: fold is not a non-negative integer: %s", name, line, snippet.Quote(rec[1]))
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate id (first on line %d): %s", name, line, prev, snippet.Quote(id))
		}
		seen[id] = line
		a.IDs = append(a.IDs, id)
		a.Fold = append(a.Fold, f)
		if sizes[f] == 0 {
			a.first[f] = line
		}
		sizes[f]++
		a.K = max(a.K, f+1)
	}
	if len(a.IDs) == 0 {
		return nil, fmt.Errorf("%s: no rows", name)
	}
	for f := 0; f < a.K; f++ {
		if sizes[f] > 0 {
			continue
		}
		// Folds 0..f-1 are a split; anything above the gap is stray.
		if f == 0 {
			return nil, fmt.Errorf("%s: fold 0 has no rows (folds are numbered from 0)", name)
		}
		stray, at := -1, 0
		for g, l := range a.first {
			if g > f && (at == 0 || l < at) {
				stray, at = g, l
			}
		}
		return nil, fmt.Errorf("%s:%d: fold %d is outside 0..%d: no row has fold %d (a stray fold number?)", name, at, stray, f-1, f)
	}
	return a, nil
}

// CheckSizes refuses a fold with fewer than min rows (normally the
// smallest training batch), naming the line of its first row: such a fold
// is most often a stray number in an otherwise even split, and it would
// make a validation set of a handful of images.
func (a *Assignment) CheckSizes(min int) error {
	for f := 0; f < a.K; f++ {
		if n := a.sizes[f]; n < min {
			lo, hi := -1, -1
			for g := 0; g < a.K; g++ {
				if g != f {
					if lo < 0 || a.sizes[g] < lo {
						lo = a.sizes[g]
					}
					hi = max(hi, a.sizes[g])
				}
			}
			others := ""
			if lo >= 0 {
				others = fmt.Sprintf("; the other folds have %d..%d rows", lo, hi)
			}
			return fmt.Errorf("%s:%d: fold %d has %d row(s), fewer than a batch of %d (a stray fold number?%s)", a.name, a.first[f], f, n, min, others)
		}
	}
	return nil
}

// For returns the fold of each of ids (normally train.csv's ids in file
// order). Every id must be in the assignment and every assigned id among
// ids: a split made for another version of train.csv is refused, naming
// an id that differs, rather than silently dropping or defaulting rows.
func (a *Assignment) For(ids []string) ([]int, error) {
	pos := make(map[string]int, len(a.IDs))
	for i, id := range a.IDs {
		pos[id] = i
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		j, ok := pos[id]
		if !ok {
			return nil, fmt.Errorf("folds: id %q (row %d of the data) has no fold in folds.csv", id, i+1)
		}
		out[i] = a.Fold[j]
	}
	if len(ids) != len(a.IDs) {
		want := make(map[string]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
		for _, id := range a.IDs {
			if !want[id] {
				return nil, fmt.Errorf("folds: folds.csv assigns id %q, which is not in the data", id)
			}
		}
	}
	return out, nil
}

// GroupsHeader is the header of a groups file: rows with the same group
// value are kept in one fold.
var GroupsHeader = []string{"id", "group"}

// ReadGroups reads a groups file (id,group) and returns the group of each
// of ids, in order. Every id must have a group.
func ReadGroups(path string, ids []string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("folds: %w", err)
	}
	name := filepath.Base(path)
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})))
	r.FieldsPerRecord = 2
	group := map[string]string{}
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: malformed CSV: %w", name, err)
		}
		line, _ := r.FieldPos(0)
		if first {
			if rec[0] != GroupsHeader[0] || rec[1] != GroupsHeader[1] {
				return nil, fmt.Errorf("%s:%d: header is not \"id,group\": %q", name, line, strings.Join(rec, ","))
			}
			continue
		}
		if _, dup := group[rec[0]]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate id: %q", name, line, rec[0])
		}
		group[rec[0]] = rec[1]
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		g, ok := group[id]
		if !ok {
			return nil, fmt.Errorf("%s: id %q has no group", name, id)
		}
		out[i] = g
	}
	return out, nil
}

// WriteGroups writes a groups file atomically.
func WriteGroups(path string, ids, groups []string) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(GroupsHeader)
		for i, id := range ids {
			cw.Write([]string{id, groups[i]})
		}
		cw.Flush()
		return cw.Error()
	})
}

// Of returns the fold of each of ids, which may be any subset of the
// assignment (one model's out-of-fold rows); the first id without a fold is
// a *dataset.MissingIDError.
func (a *Assignment) Of(ids []string) ([]int, error) {
	pos := make(map[string]int, len(a.IDs))
	for i, id := range a.IDs {
		pos[id] = a.Fold[i]
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		f, ok := pos[id]
		if !ok {
			return nil, &dataset.MissingIDError{Index: i, ID: id}
		}
		out[i] = f
	}
	return out, nil
}
