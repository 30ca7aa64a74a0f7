package submission

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/postprocess/probs"
	"imet/internal/postprocess/thresholds"
)

func TestPredictAndWrite(t *testing.T) {
	m := &probs.Matrix{Rows: 3, Cols: 4, Data: []float32{
		0.9, 0.1, 0.6, 0.2,
		0.1, 0.2, 0.3, 0.4, // nothing passes: best label (col 3) unless empty allowed
		0.5, 0.5, 0.5, 0.5,
	}}
	rule := &thresholds.Rule{Thresholds: []float64{0.5, 0.5, 0.5, 0.5}}
	groupOf := []int{0, 0, 1, 1}
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"at least one", Options{}, "id,attribute_ids\na,10 12\nb,13\nc,10 11 12 13\n"},
		{"allow empty", Options{AllowEmpty: true}, "id,attribute_ids\na,10 12\nb,\nc,10 11 12 13\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pred, err := Predict(m, rule, groupOf, 2, c.o)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "submission.csv")
			if err := Write(p, []string{"a", "b", "c"}, Itoa([]int{10, 11, 12, 13}), pred); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(p)
			if string(got) != c.want {
				t.Fatalf("got\n%s\nwant\n%s", got, c.want)
			}
			s := Summarise(pred, groupOf, 2)
			if s.Rows != 3 || (s.Empty == 1) != c.o.AllowEmpty {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestWriteKeepsOldFileOnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "submission.csv")
	os.WriteFile(p, []byte("old\n"), 0o644)
	err := Write(p, []string{"a,b"}, []string{"1"}, [][]int{{0}})
	if err == nil || !strings.Contains(err.Error(), "a,b") {
		t.Fatalf("id with a comma: %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old\n" {
		t.Fatalf("previous submission lost: %q", got)
	}
	if _, err := Predict(&probs.Matrix{Rows: 1, Cols: 2, Data: []float32{0, 0}}, &thresholds.Rule{Thresholds: []float64{1}}, []int{0, 0}, 1, Options{}); err == nil {
		t.Error("rule of the wrong width accepted")
	}
}
