package registry

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A run that reads a file another run wrote gets that run as its parent,
// found by contents: a copy elsewhere still counts, an edited file does
// not, and the reader's own input artifacts make no one a parent.
func TestInputRecordsProducersAsParents(t *testing.T) {
	db := openTemp(t)
	dir := t.TempDir()
	oof := filepath.Join(dir, "oof.npy")
	os.WriteFile(oof, []byte("round one"), 0o644)
	r1, err := db.Start(RunInfo{Name: "r1", Kind: KindCV})
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Artifact("probabilities", oof); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "copy.npy")
	os.WriteFile(cp, []byte("round one"), 0o644)
	r2, _ := db.Start(RunInfo{Name: "r2", Kind: KindCV})
	ids, err := r2.Input(cp)
	if err != nil || !slices.Equal(ids, []int64{r1.ID()}) {
		t.Fatalf("parents %v, %v", ids, err)
	}
	r3, _ := db.Start(RunInfo{Name: "r3", Kind: KindCV})
	if ids, err := r3.Input(cp); err != nil || !slices.Equal(ids, []int64{r1.ID()}) {
		t.Fatalf("r2's input artifact made it a parent: %v %v", ids, err)
	}
	os.WriteFile(cp, []byte("edited"), 0o644)
	r4, _ := db.Start(RunInfo{Name: "r4", Kind: KindCV})
	if ids, err := r4.Input(cp); err != nil || len(ids) != 0 {
		t.Fatalf("an edited file kept its parent: %v %v", ids, err)
	}
	rec, err := db.Get(r2.ID())
	if err != nil || !slices.Equal(rec.Parents, []int64{r1.ID()}) {
		t.Fatalf("record parents %v, %v", rec, err)
	}
}
