package main

import (
	"math"
	"os"
	"strings"
	"testing"

	"imet/internal/postprocess/probs"
)

func TestSubmit(t *testing.T) {
	d := ppSetup(t, "", 300, 25)
	th := d.path("t.json")
	mustRun(t, "thresholds", "--oof", d.oof, "--truth", d.train, "--labels", d.labels, "--out", th, "--step", "0.02", "-q")
	sub := d.path("submission.csv")
	stdout := mustRun(t, "submit", "--probs", d.test, "--thresholds", th, "--labels", d.labels, "--out", sub, "--sample", d.sample)
	if !strings.Contains(stdout, "25 images") || !strings.Contains(stdout, "0 empty rows") {
		t.Fatalf("output: %s", stdout)
	}
	data, _ := os.ReadFile(sub)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 26 || lines[0] != "id,attribute_ids" {
		t.Fatalf("submission: %d lines, header %q", len(lines), lines[0])
	}
	// Rows follow the sample, which lists the images in reverse.
	if !strings.HasPrefix(lines[1], "test0024,") {
		t.Fatalf("first row %q, want test0024 (sample order)", lines[1])
	}
	for _, l := range lines[1:] {
		id, attrs, _ := strings.Cut(l, ",")
		if attrs == "" {
			t.Fatalf("row %s is empty", id)
		}
		for _, a := range strings.Fields(attrs) {
			if len(a) != 3 || a[0] != '1' {
				t.Fatalf("row %s has attribute %q, not one of labels.csv's", id, a)
			}
		}
	}

	// A very high threshold rule with --allow-empty leaves rows empty.
	mustRun(t, "thresholds", "--oof", d.oof, "--truth", d.train, "--labels", d.labels, "--out", th, "--rules", "global", "--step", "0.5", "-q")
	stdout = mustRun(t, "submit", "--probs", d.test, "--thresholds", th, "--labels", d.labels, "--out", sub, "--allow-empty", "--rule", "global")
	if strings.Contains(stdout, " 0 empty rows") {
		t.Logf("no empty rows at threshold 0.5: %s", stdout)
	}

	// Threshold file for other labels: refused, old submission kept.
	before, _ := os.ReadFile(sub)
	lb, _ := os.ReadFile(d.labels)
	other := d.path("other.csv")
	os.WriteFile(other, []byte(strings.Replace(string(lb), "139,tag::v39\n", "", 1)), 0o644)
	code, _, errs := runCLI(t, "submit", "--probs", d.test, "--thresholds", th, "--labels", other, "--out", sub)
	if code == 0 || !strings.Contains(errs, "does not fit") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if after, _ := os.ReadFile(sub); string(after) != string(before) {
		t.Fatal("failed submit changed the existing submission")
	}
	// A NaN probability is named, not silently never predicted.
	tf, _ := probs.Load(d.test)
	tf.Row(3)[7] = float32(math.NaN())
	nanPath := d.path("nan.npy")
	probs.Save(nanPath, tf)
	code, _, errs = runCLI(t, "submit", "--probs", nanPath, "--thresholds", th, "--labels", d.labels, "--out", sub)
	if code == 0 || !strings.Contains(errs, `image "test0003", column 7 (attribute 107) is NaN`) {
		t.Fatalf("NaN: exit %d: %s", code, errs)
	}
	code, _, errs = runCLI(t, "submit", "--probs", d.test, "--thresholds", th, "--labels", d.labels, "--rule", "label")
	if code == 0 || !strings.Contains(errs, `no rule "label"`) {
		t.Fatalf("missing rule: exit %d: %s", code, errs)
	}
}
