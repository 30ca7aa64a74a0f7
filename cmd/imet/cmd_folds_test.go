package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/data/folds"
)

func TestFolds(t *testing.T) {
	dir := t.TempDir()
	var train strings.Builder
	train.WriteString("id,attribute_ids\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&train, "r%02d,%d %d\n", i, i%3, 3+i%7)
	}
	train.WriteString("lonely,9\n")
	labels := "attribute_id,attribute_name\n"
	for i := 0; i < 10; i++ {
		g := "tag"
		if i < 3 {
			g = "culture"
		}
		labels += fmt.Sprintf("%d,%s::v%d\n", i, g, i)
	}
	writeFiles(t, dir, map[string]string{
		"labels.csv": labels, "train.csv": train.String(), "sample_submission.csv": "id,attribute_ids\n",
	})
	out := filepath.Join(dir, "folds.csv")
	code, stdout, stderr := runCLI(t, "folds", "--data", dir, "--k", "3", "--seed", "7", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"61 rows in 3 folds", "Sechidis LD", "random K-fold, same seed"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("report lacks %q:\n%s", want, stdout)
		}
	}
	a, err := folds.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.IDs) != 61 || a.K != 3 {
		t.Fatalf("folds.csv has %d rows, k %d", len(a.IDs), a.K)
	}
	first, _ := os.ReadFile(out)
	runCLI(t, "folds", "--data", dir, "--k", "3", "--seed", "7", "--out", out)
	second, _ := os.ReadFile(out)
	if string(first) != string(second) {
		t.Fatal("same seed wrote different folds")
	}

	// A groups file in the data directory is picked up: rows of one group
	// share a fold.
	var groups strings.Builder
	groups.WriteString("id,group\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&groups, "r%02d,g%d\n", i, i/4)
	}
	groups.WriteString("lonely,alone\n")
	writeFiles(t, dir, map[string]string{"groups.csv": groups.String()})
	code, stdout, stderr = runCLI(t, "folds", "--data", dir, "--k", "3", "--out", out)
	if code != 0 || !strings.Contains(stdout, "groups from") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	a, _ = folds.Read(out)
	for i := 0; i < 60; i++ {
		if a.Fold[i] != a.Fold[i-i%4] {
			t.Fatalf("row %s split from its group", a.IDs[i])
		}
	}

	code, _, stderr = runCLI(t, "folds", "--data", dir, "--k", "100", "--out", out)
	if code != 1 || !strings.Contains(stderr, "100 folds need at least 100") {
		t.Fatalf("k too large: exit %d, %s", code, stderr)
	}
}
