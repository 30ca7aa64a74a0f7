package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDatasetsValidate(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"labels.csv":            "attribute_id,attribute_name\n0,culture::a\n1,tag::b\n",
		"train.csv":             "id,attribute_ids\nx,0 1\ny,1\n",
		"sample_submission.csv": "id,attribute_ids\nz,0\n",
		"train/x.png":           "",
		"train/y.png":           "",
		"test/z.png":            "",
	})
	code, out, errs := runCLI(t, "datasets", "validate", dir)
	if code != 0 || !strings.Contains(out, "ok: ") || !strings.Contains(out, "2 train images, 1 test images, 2 labels in 2 groups") {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errs)
	}
	writeFiles(t, dir, map[string]string{"train.csv": "id,attribute_ids\nx,0 1\nx,1\nw,7\n"})
	code, out, errs = runCLI(t, "datasets", "validate", dir)
	if code != 1 {
		t.Fatalf("exit %d on a broken set", code)
	}
	for _, want := range []string{`train.csv:3: duplicate id (first on line 2): "x"`, `train.csv:4: unknown attribute id (not in labels.csv): "7"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "2 errors") {
		t.Fatalf("stderr %q", errs)
	}
}

func TestDatasetsSynth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sample")
	code, out, errs := runCLI(t, "datasets", "synth", "--out", dir, "--train", "30", "--test", "8", "--seed", "3")
	if code != 0 || !strings.Contains(out, "30 train + 8 test images") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "datasets", "validate", dir)
	if code != 0 {
		t.Fatalf("generated set does not validate: %s %s", out, errs)
	}
	code, _, errs = runCLI(t, "datasets", "synth", "--out", dir, "--train", "30")
	if code != 1 || !strings.Contains(errs, "already holds a data set") {
		t.Fatalf("overwrote without --overwrite: exit %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "datasets", "synth", "--out", dir, "--train", "30", "--overwrite")
	if code != 0 {
		t.Fatalf("--overwrite: exit %d %s", code, errs)
	}
}

func TestDatasetsEmojiMissingAssets(t *testing.T) {
	code, _, errs := runCLI(t, "datasets", "emoji", "--out", t.TempDir(), "--assets", t.TempDir())
	if code != 1 || !strings.Contains(errs, "emoji assets not found") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
