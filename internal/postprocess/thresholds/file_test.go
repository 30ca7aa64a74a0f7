package thresholds

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleFile() *File {
	return &File{
		Use: Label, Beta: 2, EmptyRows: "zero",
		Labels: []string{"10", "11", "12"}, Groups: []string{"culture", "tag"}, LabelGroups: []int{0, 1, 1}, Rows: 5,
		Rules: []Result{
			{Name: Global, Score: 0.5, MeanLabels: 2, Rule: Rule{Thresholds: []float64{0.2, 0.2, 0.2}, AtLeastOne: true}},
			{Name: Label, Score: 0.6, MeanLabels: 3, Rule: Rule{Thresholds: []float64{0.1, 0.2, 0.3}, Bounds: []Bounds{{0, 3}, {1, 8}}, AtLeastOne: true}},
		},
	}
}

func TestFileRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.json")
	f := sampleFile()
	if err := WriteFile(p, f); err != nil {
		t.Fatal(err)
	}
	g, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, g) {
		t.Fatalf("round trip changed the file:\n%+v\n%+v", f, g)
	}
	r, err := g.Rule("")
	if err != nil || r.Thresholds[2] != 0.3 {
		t.Fatalf("default rule: %v %v", r, err)
	}
	if _, err := g.Rule("relative"); err == nil || !strings.Contains(err.Error(), "global, label") {
		t.Fatalf("missing rule: %v", err)
	}
}

func TestFileCheck(t *testing.T) {
	f := sampleFile()
	cases := []struct {
		name    string
		labels  []string
		groups  []string
		groupOf []int
		want    string
	}{
		{"same", []string{"10", "11", "12"}, []string{"culture", "tag"}, []int{0, 1, 1}, ""},
		{"fewer labels", []string{"10", "11"}, []string{"culture", "tag"}, nil, "for 3 labels"},
		{"other order", []string{"10", "12", "11"}, []string{"culture", "tag"}, nil, "column 1 is attribute 12"},
		{"other groups", []string{"10", "11", "12"}, []string{"tag", "culture"}, nil, "label groups"},
		{"other group map", []string{"10", "11", "12"}, []string{"culture", "tag"}, []int{0, 0, 1}, "label-to-group"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := f.Check(c.labels, c.groups, c.groupOf)
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestReadFileRejects(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := WriteFile(good, sampleFile()); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	cases := []struct{ name, from, to, want string }{
		{"future version", `"version": 1`, `"version": 2`, "format version 2"},
		{"unknown field", `"rows": 5`, `"rows": 5, "colour": 1`, "unknown field"},
		{"short thresholds", `0.3`, ``, ""},
		{"bad bounds", `"min": 1,`, `"min": 9,`, "bounds of group tag"},
		{"missing use rule", `"use": "label"`, `"use": "topk"`, "no rule \"topk\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.json")
			os.WriteFile(p, []byte(strings.Replace(string(raw), c.from, c.to, 1)), 0o644)
			_, err := ReadFile(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v, want error naming %s containing %q", err, p, c.want)
			}
		})
	}
}

// TestFileLayout: arrays are written on one line, and flattening them
// leaves strings with spaces and brackets intact.
func TestFileLayout(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.json")
	f := sampleFile()
	f.Groups = []string{"two  spaced [words]", "tag"}
	if err := WriteFile(p, f); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	if !strings.Contains(string(raw), `"labels": ["10", "11", "12"],`) || !strings.Contains(string(raw), `"thresholds": [0.1, 0.2, 0.3],`) {
		t.Fatalf("arrays not on one line:\n%s", raw)
	}
	g, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, g) {
		t.Fatalf("layout changed the content: %q", g.Groups)
	}
}
