package trainconfig

import (
	"strings"
	"testing"
)

func TestTargetsBounds(t *testing.T) {
	for _, c := range []struct{ yaml, key string }{
		{"targets: {soft: {rule: maximum}}", "targets.soft.rule"},
		{"targets: {soft: {alpha: 0}}", "targets.soft.alpha"},
		{"targets: {soft: {alpha: 1.5}}", "targets.soft.alpha"},
		{"targets: {pseudo: {share: 0}}", "targets.pseudo.share"},
		{"targets: {pseudo: {min_confidence: 0.6}}", "targets.pseudo.min_confidence"},
		{"targets: {pseudo: {threshold: 1}}", "targets.pseudo.threshold"},
		{"data: {labels: [tag, ' ']}", "data.labels[1]"},
	} {
		if _, err := Parse("r.yaml", []byte(c.yaml+"\n")); err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: %v, want an error naming %s", c.yaml, err, c.key)
		}
	}
	r, err := Parse("r.yaml", []byte("targets: {soft: {rule: mix, alpha: 0.3}, pseudo: {share: 1, threshold: 0.4}}\ndata: {labels: [tag, '13']}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := Default(); d.Targets.Soft.Rule != "max" || d.Targets.Soft.Alpha != 0.7 || r.Targets.Soft.Alpha != 0.3 {
		t.Fatalf("defaults %+v, parsed %+v", d.Targets, r.Targets)
	}
	// A file that is not there is CheckFiles' error, naming the key.
	r.Targets.TrainCSV = "/nonexistent/clean.csv"
	if err := r.CheckFiles(); err == nil || !strings.Contains(err.Error(), "targets.train_csv") {
		t.Fatalf("CheckFiles: %v", err)
	}
}

// A checkpoint written before the targets section existed resumes under a
// configuration holding its defaults, and not under one that uses it.
func TestTargetsAddedToOldFingerprints(t *testing.T) {
	r := Default()
	var old []string
	for _, l := range r.Fingerprint() {
		if !strings.HasPrefix(l, "targets.") && !strings.HasPrefix(l, "data.labels") {
			old = append(old, l)
		}
	}
	if d := Diff(old, r.Fingerprint()); len(d) != 0 {
		t.Fatalf("defaults differ from an old fingerprint: %v", d)
	}
	r.Targets.Soft.File = "oof.npy"
	if d := Diff(old, r.Fingerprint()); len(d) != 1 || !strings.Contains(d[0], "targets.soft.file") {
		t.Fatalf("a teacher file resumed an old run: %v", d)
	}
}
