package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
)

func TestThresholds(t *testing.T) {
	d := ppSetup(t, "", 600, 10)
	out := d.path("t.json")
	stdout := mustRun(t, "thresholds", "--oof", d.oof, "--truth", d.train, "--labels", d.labels, "--out", out, "--step", "0.01")
	for _, want := range []string{"global", "group", "label", "topk", "relative", "target", "<- use", "per group", "culture", "tag"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("output lacks %q:\n%s", want, stdout)
		}
	}
	f, err := thresholds.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rules) != 6 || f.Rows != 600 || len(f.Labels) != 40 || f.Labels[0] != "100" || f.Groups[0] != "culture" {
		t.Fatalf("threshold file: %d rules, %d rows, labels %v, groups %v", len(f.Rules), f.Rows, f.Labels[:2], f.Groups)
	}
	best := thresholds.Best(f.Rules)
	if f.Use != best.Name {
		t.Fatalf("use %s, best is %s", f.Use, best.Name)
	}
	score := map[string]float64{}
	for _, r := range f.Rules {
		score[r.Name] = r.Score
	}
	if score["group"] < score["global"] || score["global"] < 0.3 {
		t.Fatalf("implausible scores %v", score)
	}

	// A subset of rules, and one chosen to use.
	mustRun(t, "thresholds", "--oof", d.oof, "--truth", d.train, "--labels", d.labels, "--out", out, "--rules", "global,relative", "--use", "global", "-q")
	f, _ = thresholds.ReadFile(out)
	if len(f.Rules) != 2 || f.Use != "global" {
		t.Fatalf("rules %v use %s", f.Rules, f.Use)
	}

	// Fixed bounds are used as given.
	stdout = mustRun(t, "thresholds", "--oof", d.oof, "--truth", d.train, "--labels", d.labels, "--out", out, "--rules", "group,topk", "--bounds", "culture=..1,tag=2..5")
	f, _ = thresholds.ReadFile(out)
	r, _ := f.Rule("topk")
	if r.Bounds[0] != (thresholds.Bounds{Min: 0, Max: 1}) || r.Bounds[1] != (thresholds.Bounds{Min: 2, Max: 5}) || !strings.Contains(stdout, "[2..5]") {
		t.Fatalf("bounds %v\n%s", r.Bounds, stdout)
	}
}

func TestThresholdsFoldsAndPerLabel(t *testing.T) {
	d := ppSetup(t, "", 400, 5)
	var fb strings.Builder
	fb.WriteString("id,fold\n")
	for i := range 400 {
		fmt.Fprintf(&fb, "img%05d,%d\n", i, i%4)
	}
	foldsPath := d.path("folds.csv")
	os.WriteFile(foldsPath, []byte(fb.String()), 0o644)
	out, per := d.path("t.json"), d.path("per_label.csv")
	stdout := mustRun(t, "thresholds", "--oof", d.oof, "--truth", d.train, "--labels", d.labels, "--out", out,
		"--step", "0.02", "--rules", "global,group,label", "--folds", foldsPath, "--per-label", per)
	t.Log(stdout)
	if !strings.Contains(stdout, "held-out F2 (mean ± sd over 4 folds)") || !strings.Contains(stdout, "<- use") {
		t.Fatalf("output:\n%s", stdout)
	}
	f, err := thresholds.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.HeldOut) != 3 || f.HeldOut[2].Name != "label" || len(f.HeldOut[2].PerFold) != 4 || f.Use != f.HeldOut[thresholds.Choose(f.Rules, f.HeldOut)].Name {
		t.Fatalf("threshold file: use %s, held out %+v", f.Use, f.HeldOut)
	}
	data, err := os.ReadFile(per)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 41 || lines[0] != "attribute_id,attribute_name,group,positives,predicted,threshold,fbeta" || !strings.HasPrefix(lines[1], "100,culture::v0,culture,") {
		t.Fatalf("per-label file: %d lines, starting %q / %q", len(lines), lines[0], lines[1])
	}
	os.WriteFile(foldsPath, []byte("id,fold\nimg00000,0\nimg00001,1\n"), 0o644)
	code, _, errs := runCLI(t, "thresholds", "--oof", d.oof, "--truth", d.train, "--labels", d.labels, "--out", out, "--folds", foldsPath)
	if code == 0 || !strings.Contains(errs, `image "img00002"`) {
		t.Fatalf("image missing from folds: exit %d: %s", code, errs)
	}
}

func TestThresholdsErrors(t *testing.T) {
	d := ppSetup(t, "", 50, 5)
	train, _ := os.ReadFile(d.train)
	short := d.path("short.csv")
	os.WriteFile(short, []byte(strings.Replace(string(train), "img00007,", "other,", 1)), 0o644)
	otherLabels := d.path("other_labels.csv")
	lb, _ := os.ReadFile(d.labels)
	os.WriteFile(otherLabels, []byte(strings.Replace(string(lb), "101,culture", "999,culture", 1)), 0o644)
	lf, _ := probs.Load(d.oof)
	lf.Row(2)[5] = -3
	logits := d.path("logits.npy")
	probs.Save(logits, lf)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"image without truth", []string{"--truth", short, "--labels", d.labels}, `image "img00007" (line 9 of ` + d.path("oof.ids.csv")},
		{"other labels", []string{"--truth", d.train, "--labels", otherLabels}, "column 1 of " + d.oof + " is attribute 101"},
		{"unknown rule", []string{"--truth", d.train, "--labels", d.labels, "--rules", "global,magic"}, `unknown rule "magic"`},
		{"unknown group", []string{"--truth", d.train, "--labels", d.labels, "--bounds", "medium=..3"}, `no label group "medium"`},
		{"inverted bounds", []string{"--truth", d.train, "--labels", d.labels, "--bounds", "tag=5..2"}, "minimum 5 above maximum 2"},
		{"logits", []string{"--truth", d.train, "--labels", d.labels, "--oof", logits}, `image "img00002", column 5 (attribute 105) is -3, outside [0, 1] (logits?`},
		{"malformed bounds", []string{"--truth", d.train, "--labels", d.labels, "--bounds", "tag<3"}, "not group=min..max"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"thresholds", "--out", d.path("t.json")}, c.args...)
			if !slices.Contains(c.args, "--oof") {
				args = append(args, "--oof", d.oof)
			}
			code, _, errs := runCLI(t, args...)
			if code == 0 || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errs, c.want)
			}
		})
	}
}

// TestThresholdsReal2020Labels runs the search and a submission on the real
// 2020 label set (3474 labels in 5 groups, quoted names).
func TestThresholdsReal2020Labels(t *testing.T) {
	const real = "/work/shared/data/imet2020_labels.csv"
	if _, err := os.Stat(real); err != nil {
		t.Skipf("real 2020 labels file not present: %v", err)
	}
	d := ppSetup(t, real, 300, 20)
	out := d.path("t.json")
	stdout := mustRun(t, "thresholds", "--oof", d.oof, "--truth", d.train, "--labels", d.labels, "--out", out, "--step", "0.02", "--rounds", "1")
	t.Log(stdout)
	for _, g := range []string{"country", "culture", "dimension", "medium", "tags"} {
		if !strings.Contains(stdout, g) {
			t.Fatalf("output lacks group %s:\n%s", g, stdout)
		}
	}
	f, err := thresholds.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Labels) != 3474 || len(f.Groups) != 5 {
		t.Fatalf("threshold file has %d labels, %d groups", len(f.Labels), len(f.Groups))
	}
	sub := d.path("submission.csv")
	mustRun(t, "submit", "--probs", d.test, "--thresholds", out, "--labels", d.labels, "--out", sub, "--sample", d.sample)
	data, _ := os.ReadFile(sub)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 21 || lines[0] != "id,attribute_ids" {
		t.Fatalf("submission has %d lines, header %q", len(lines), lines[0])
	}
}
