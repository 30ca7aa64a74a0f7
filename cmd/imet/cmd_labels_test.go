package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/data/dataset"
	"imet/internal/postprocess/probs"
)

// The winners' second round, end to end on tiny data: a cross-validation,
// labels cleaned from its OOF, then a round that trains on the cleaned
// labels with soft targets from the OOF and pseudo-labelled test images,
// recorded with the first round as its parent.
func TestLabelsCleanAndSecondRound(t *testing.T) {
	cfg := tinyRun(t)
	dir := filepath.Dir(cfg)
	data := filepath.Join(dir, "data")
	reg := filepath.Join(dir, "registry.db")
	first := filepath.Join(dir, "round1")
	if code, _, errs := runCLI(t, "cv", "--config", cfg, "--out", first, "--registry", reg); code != 0 {
		t.Fatalf("round 1: %s", errs)
	}
	oof := filepath.Join(first, "oof.npy")
	clean := filepath.Join(dir, "clean.csv")
	code, out, errs := runCLI(t, "labels", "clean", "--data", data, "--oof", oof, "--share", "0.1", "--out", clean)
	if code != 0 || !strings.Contains(out, "dropped 5 of 48 rows") {
		t.Fatalf("clean: %d %s %s", code, out, errs)
	}
	report, _ := os.ReadFile(filepath.Join(dir, "clean.report.csv"))
	lines := strings.Split(strings.TrimSpace(string(report)), "\n")
	if len(lines) != 6 {
		t.Fatalf("report:\n%s", report)
	}
	labels, _ := dataset.ReadLabels(filepath.Join(data, "labels.csv"))
	kept, err := dataset.ReadTrain(clean, labels, dataset.ReadOptions{AllowEmpty: true})
	if err != nil || len(kept) != 43 {
		t.Fatalf("clean.csv: %d rows, %v", len(kept), err)
	}
	for _, l := range lines[1:] {
		id := strings.Split(l, ",")[0]
		for _, r := range kept {
			if r.ID == id {
				t.Fatalf("%s is in the report and still in clean.csv", id)
			}
		}
	}

	body, _ := os.ReadFile(cfg)
	round2 := filepath.Join(dir, "round2.yaml")
	os.WriteFile(round2, append(body, []byte(`targets:
  train_csv: `+clean+`
  soft: {file: `+oof+`, rule: max, alpha: 0.7}
  pseudo: {file: `+filepath.Join(first, "test.npy")+`, share: 0.5}
`)...), 0o644)
	if code, out, errs := runCLI(t, "config", "check", round2); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check: %s %s", out, errs)
	}
	run := filepath.Join(dir, "round2-fold0")
	code, out, errs = runCLI(t, "train", "--config", round2, "--fold", "0", "--run-dir", run, "--registry", reg)
	if code != 0 {
		t.Fatalf("round 2: %s", errs)
	}
	log, _ := os.ReadFile(filepath.Join(run, "train.log"))
	all := out + errs + string(log)
	for _, want := range []string{"training rows left out (not in targets.train_csv)", "training rows with soft targets", "4 pseudo-labelled test images joined training", "recorded as parents"} {
		if !strings.Contains(all, want) {
			t.Fatalf("no %q in the output:\n%s", want, all)
		}
	}
	if code, out, _ := runCLI(t, "runs", "show", "2", "--registry", reg); code != 0 || !strings.Contains(out, "parents") {
		t.Fatalf("runs show 2:\n%s", out)
	}
	// A target file that is not there is refused before training, naming its key.
	os.WriteFile(round2, append(body, []byte("targets: {soft: {file: "+filepath.Join(dir, "none.npy")+"}}\n")...), 0o644)
	if code, _, errs := runCLI(t, "config", "check", round2); code == 0 || !strings.Contains(errs, "targets.soft.file") {
		t.Fatalf("missing teacher: %d %s", code, errs)
	}
}

// A tag specialist's cross-validation writes probabilities of the tags
// only and no submission; imet merge puts them over the full model's and
// thresholds work on the merged file.
func TestSpecialistMerge(t *testing.T) {
	cfg := tinyRun(t)
	dir := filepath.Dir(cfg)
	data := filepath.Join(dir, "data")
	full := filepath.Join(dir, "full")
	if code, _, errs := runCLI(t, "cv", "--config", cfg, "--out", full, "--folds", "0,1", "--no-registry"); code != 0 {
		t.Fatalf("full: %s", errs)
	}
	body, _ := os.ReadFile(cfg)
	spec := filepath.Join(dir, "tags.yaml")
	os.WriteFile(spec, []byte(strings.Replace(string(body), "  workers: 2\n", "  workers: 2\n  labels: [tag]\n", 1)), 0o644)
	tags := filepath.Join(dir, "tags")
	code, _, errs := runCLI(t, "cv", "--config", spec, "--out", tags, "--folds", "0,1", "--no-registry")
	if code != 0 {
		t.Fatalf("specialist: %s", errs)
	}
	if _, err := os.Stat(filepath.Join(tags, "submission.csv")); err == nil || !strings.Contains(errs, "specialist on 6 of the labels") {
		t.Fatalf("a specialist wrote a submission, or did not say why not: %s", errs)
	}
	f, err := probs.Load(filepath.Join(tags, "oof.npy"))
	if err != nil || f.Cols != 6 {
		t.Fatalf("specialist oof: %v", err)
	}
	merged := filepath.Join(dir, "merged.npy")
	code, out, errs := runCLI(t, "merge", "--labels", filepath.Join(data, "labels.csv"), "--base", filepath.Join(full, "oof.npy"), "--out", merged, filepath.Join(tags, "oof.npy"))
	if code != 0 || !strings.Contains(out, "x 9 labels") {
		t.Fatalf("merge: %s %s", out, errs)
	}
	m, _ := probs.Load(merged)
	base, _ := probs.Load(filepath.Join(full, "oof.npy"))
	if m.Cols != 9 || len(m.Labels) != 9 || m.Rows != base.Rows {
		t.Fatalf("merged %dx%d", m.Rows, m.Cols)
	}
	// Culture columns are the base's, tag columns the specialist's.
	at := map[string]int{}
	for i, id := range f.IDs {
		at[id] = i
	}
	for i, id := range m.IDs {
		if m.Row(i)[0] != base.Row(i)[0] || m.Row(i)[8] != f.Row(at[id])[5] {
			t.Fatalf("row %s: merged %v, base %v, specialist %v", id, m.Row(i), base.Row(i), f.Row(at[id]))
		}
	}
	if code, _, errs := runCLI(t, "thresholds", "--oof", merged, "--truth", filepath.Join(data, "train.csv"), "--labels", filepath.Join(data, "labels.csv"), "--out", filepath.Join(dir, "t.json")); code != 0 {
		t.Fatalf("thresholds on the merged file: %s", errs)
	}
	// Without the base the tags alone do not cover the cultures.
	if code, _, errs := runCLI(t, "merge", "--labels", filepath.Join(data, "labels.csv"), "--out", merged, filepath.Join(tags, "oof.npy")); code == 0 || !strings.Contains(errs, "no file predicts attribute") {
		t.Fatalf("uncovered labels: %d %s", code, errs)
	}
	// A specialist is not exported as a model of every label.
	if code, _, errs := runCLI(t, "export", filepath.Join(tags, "fold0"), "--out", filepath.Join(dir, "bundle")); code == 0 || !strings.Contains(errs, "specialist") {
		t.Fatalf("export of a specialist: %d %s", code, errs)
	}
}
