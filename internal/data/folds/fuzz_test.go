package folds

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead: whatever folds.csv holds, Read returns an assignment whose
// folds run 0..K-1, each with at least one row, or an error; never a
// panic.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"id,fold\na,0\nb,1\nc,2\n", "id,fold\na,0\nb,2\n", "id,fold\na,0\nb,1\nc,7\n", "id,fold\na,-1\n",
		"\ufeffid,fold\r\na,0\r\n", "id,fold\na,0\na,1\n", "id,fold\n\"a,0\n", "id,fold\na,99999999999999999999\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "folds.csv")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := Read(p)
		if err != nil {
			return
		}
		rows := make([]int, a.K)
		for _, f := range a.Fold {
			if f < 0 || f >= a.K {
				t.Fatalf("fold %d outside 0..%d", f, a.K-1)
			}
			rows[f]++
		}
		for f, n := range rows {
			if n == 0 {
				t.Fatalf("fold %d has no rows", f)
			}
		}
		if err := a.CheckSizes(1); err != nil {
			t.Fatal(err)
		}
	})
}
