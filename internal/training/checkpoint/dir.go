package checkpoint

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

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

func without(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
