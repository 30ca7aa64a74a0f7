package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"imet/internal/base/atomicfile"
)

// Dir manages a run's checkpoints: it keeps the last Keep of them plus the
// one with the best validation F2, and records which is which in
// index.json, written atomically after each new checkpoint is whole, so a
// crash at any point leaves an index that names only complete files.
type Dir struct {
	Path string
	Keep int // most recent checkpoints kept (at least 1)
}

// Index lists a directory's checkpoints.
type Index struct {
	Latest string   `json:"latest"`         // file name of the newest checkpoint
	Best   string   `json:"best,omitempty"` // file name of the best by F2
	BestF2 float64  `json:"best_f2"`        // its F2
	Recent []string `json:"recent"`         // newest last
}

const indexName = "index.json"

// ReadIndex returns the directory's index (empty when none was written).
func (d *Dir) ReadIndex() (Index, error) {
	var ix Index
	data, err := os.ReadFile(filepath.Join(d.Path, indexName))
	if os.IsNotExist(err) {
		return ix, nil
	}
	if err != nil {
		return ix, fmt.Errorf("checkpoint index: %w", err)
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		return ix, fmt.Errorf("checkpoint index %s: %w", filepath.Join(d.Path, indexName), err)
	}
	return ix, nil
}

// Save writes c as step-<global step>.ckpt, updates the index, and removes
// checkpoints that are neither among the last Keep nor the best. f2 is the
// validation F2 of the weights in c, or NaN when not validated.
func (d *Dir) Save(c *Checkpoint, f2 float64) (string, error) {
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	ix, err := d.ReadIndex()
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("step-%09d.ckpt", c.State.GlobalStep)
	path := filepath.Join(d.Path, name)
	if err := Write(path, c); err != nil {
		return "", err
	}
	ix.Latest = name
	ix.Recent = append(without(ix.Recent, name), name)
	if !math.IsNaN(f2) && (ix.Best == "" || f2 > ix.BestF2) {
		ix.Best, ix.BestF2 = name, f2
	}
	keep := d.Keep
	if keep < 1 {
		keep = 1
	}
	var drop []string
	if len(ix.Recent) > keep {
		drop = ix.Recent[:len(ix.Recent)-keep]
		ix.Recent = append([]string(nil), ix.Recent[len(ix.Recent)-keep:]...)
	}
	data, _ := json.MarshalIndent(ix, "", "  ")
	if err := atomicfile.WriteBytes(filepath.Join(d.Path, indexName), data, 0o644); err != nil {
		return "", err
	}
	// Only once the index no longer names them are old files removed.
	for _, n := range drop {
		if n != ix.Best && n != name {
			os.Remove(filepath.Join(d.Path, n))
		}
	}
	// A best that fell out of Recent and was then superseded.
	entries, _ := filepath.Glob(filepath.Join(d.Path, "step-*.ckpt"))
	live := map[string]bool{ix.Best: true}
	for _, n := range ix.Recent {
		live[n] = true
	}
	for _, e := range entries {
		if !live[filepath.Base(e)] {
			os.Remove(e)
		}
	}
	return path, nil
}

// Latest returns the path of the newest complete checkpoint, or "" when
// there is none. It trusts the index, and falls back to the newest
// step-*.ckpt that reads back whole if the index is missing.
func (d *Dir) Latest() (string, error) {
	ix, err := d.ReadIndex()
	if err != nil {
		return "", err
	}
	if ix.Latest != "" {
		return filepath.Join(d.Path, ix.Latest), nil
	}
	entries, _ := filepath.Glob(filepath.Join(d.Path, "step-*.ckpt"))
	sort.Sort(sort.Reverse(sort.StringSlice(entries)))
	for _, e := range entries {
		if _, err := Read(e); err == nil {
			return e, nil
		}
	}
	return "", nil
}

// Skipped is a checkpoint a resume passed over, and why.
type Skipped struct {
	Path   string
	Reason string // e.g. "checksum mismatch: the file is truncated or corrupted"
}

func (s Skipped) String() string { return s.Path + ": " + s.Reason }

// Resumable returns the checkpoint a resume continues from, read and
// verified, with its path. With explicit == "" it is the newest
// step-*.ckpt (by step, whether index.json lists it or not) whose checksum
// verifies; the newer ones that do not, and those index.json lists but
// that are gone, are returned in skipped, newest first. explicit names a
// checkpoint file of this directory to resume from instead: it must
// verify, and the checkpoints after it leave the index (the run branches
// off there; the next save removes them).
//
// When the index names anything other than what a resume from the result
// would have written, it is repaired: Latest becomes the result, Recent
// keeps what remains up to it, and a Best that was skipped or lies after
// it is dropped (the next validation sets a new one). A corrupt file stays
// on disk until the next save removes it with the other unlisted ones.
func (d *Dir) Resumable(explicit string) (c *Checkpoint, path string, skipped []Skipped, err error) {
	ix, err := d.ReadIndex()
	if err != nil {
		return nil, "", nil, err
	}
	var name string
	if explicit != "" {
		abs, _ := filepath.Abs(explicit)
		dirAbs, _ := filepath.Abs(d.Path)
		if filepath.Dir(abs) != dirAbs {
			return nil, "", nil, fmt.Errorf("checkpoint %s is not in %s: a resume continues the run the checkpoint belongs to", explicit, d.Path)
		}
		if c, err = Read(explicit); err != nil {
			return nil, "", nil, err
		}
		name = filepath.Base(explicit)
	} else {
		listed := map[string]bool{}
		for _, n := range append([]string{ix.Latest, ix.Best}, ix.Recent...) {
			if n != "" {
				listed[n] = true
			}
		}
		seen := map[string]bool{}
		var names []string
		files, _ := filepath.Glob(filepath.Join(d.Path, "step-*.ckpt"))
		for _, f := range files {
			seen[filepath.Base(f)] = true
			names = append(names, filepath.Base(f))
		}
		for n := range listed {
			if !seen[n] {
				names = append(names, n)
			}
		}
		// Zero-padded step numbers: the names sort as the steps do.
		sort.Sort(sort.Reverse(sort.StringSlice(names)))
		for _, n := range names {
			p := filepath.Join(d.Path, n)
			if !seen[n] {
				skipped = append(skipped, Skipped{p, "listed in " + indexName + " but missing"})
				continue
			}
			got, err := Read(p)
			if err != nil {
				skipped = append(skipped, Skipped{p, strings.TrimPrefix(err.Error(), "checkpoint "+p+": ")})
				continue
			}
			c, name = got, n
			break
		}
		if c == nil {
			if len(skipped) == 0 {
				return nil, "", nil, nil
			}
			var b strings.Builder
			fmt.Fprintf(&b, "%s: no checkpoint reads back whole:", d.Path)
			for _, s := range skipped {
				b.WriteString("\n  " + s.String())
			}
			return nil, "", skipped, errors.New(b.String())
		}
	}
	if err := d.repairIndex(ix, name, skipped); err != nil {
		return nil, "", nil, err
	}
	return c, filepath.Join(d.Path, name), skipped, nil
}

// repairIndex makes the index describe a run whose newest checkpoint is
// name, without the skipped files.
func (d *Dir) repairIndex(ix Index, name string, skipped []Skipped) error {
	bad := map[string]bool{}
	for _, s := range skipped {
		bad[filepath.Base(s.Path)] = true
	}
	fixed := Index{Latest: name, Best: ix.Best, BestF2: ix.BestF2}
	for _, n := range ix.Recent {
		if n != name && n < name && !bad[n] {
			fixed.Recent = append(fixed.Recent, n)
		}
	}
	fixed.Recent = append(fixed.Recent, name)
	if bad[ix.Best] || ix.Best > name {
		fixed.Best, fixed.BestF2 = "", 0
	}
	if fixed.Latest == ix.Latest && fixed.Best == ix.Best && slices.Equal(fixed.Recent, ix.Recent) {
		return nil
	}
	data, _ := json.MarshalIndent(fixed, "", "  ")
	return atomicfile.WriteBytes(filepath.Join(d.Path, indexName), data, 0o644)
}

// HasCheckpoints reports whether the directory holds an index or any
// checkpoint file, without reading them: a fresh run must not start there.
func (d *Dir) HasCheckpoints() bool {
	if _, err := os.Stat(filepath.Join(d.Path, indexName)); err == nil {
		return true
	}
	files, _ := filepath.Glob(filepath.Join(d.Path, "step-*.ckpt"))
	return len(files) > 0
}

func without(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
