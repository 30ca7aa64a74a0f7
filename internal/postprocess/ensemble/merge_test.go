package ensemble_test

import (
	"slices"
	"strings"
	"testing"

	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/probs"
)

func file(ids, labels []string, data ...float32) *probs.File {
	return &probs.File{Matrix: &probs.Matrix{Rows: len(ids), Cols: len(data) / len(ids), Data: data}, IDs: ids, Labels: labels}
}

func TestMerge(t *testing.T) {
	labels := []string{"0", "1", "2", "3"}
	base := ensemble.Input{Name: "full.npy", File: file([]string{"a", "b"}, labels,
		0.1, 0.2, 0.3, 0.4,
		0.5, 0.6, 0.7, 0.8)}
	// A tag specialist over labels 3 and 2, its rows in another order.
	tags := ensemble.Input{Name: "tags.npy", File: file([]string{"b", "a"}, []string{"3", "2"},
		0.0, 1.0,
		0.9, 0.5)}
	// A culture specialist over label 0.
	cult := ensemble.Input{Name: "culture.npy", File: file([]string{"a", "b"}, []string{"0"}, 0.3, 0.1)}

	got, err := ensemble.Merge(base, []ensemble.Input{tags, cult}, labels, ensemble.MergeReplace)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0.3, 0.2, 0.5, 0.9, 0.1, 0.6, 1.0, 0.0}
	if !slices.Equal(got.Data, want) || !slices.Equal(got.Labels, labels) || !slices.Equal(got.IDs, []string{"a", "b"}) {
		t.Fatalf("replace: %v %v %v", got.Data, got.Labels, got.IDs)
	}
	got, err = ensemble.Merge(base, []ensemble.Input{tags}, labels, ensemble.MergeMean)
	if err != nil {
		t.Fatal(err)
	}
	want = []float32{0.1, 0.2, (0.3 + 0.5) / 2, (0.4 + 0.9) / 2, 0.5, 0.6, (0.7 + 1.0) / 2, (0.8 + 0.0) / 2}
	for i := range want {
		if d := got.Data[i] - want[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("mean: %v, want %v", got.Data, want)
		}
	}

	// Without a base, the specialists must cover every label.
	if _, err := ensemble.Merge(ensemble.Input{}, []ensemble.Input{tags, cult}, labels, ensemble.MergeReplace); err == nil || !strings.Contains(err.Error(), "attribute 1") {
		t.Fatalf("label 1 uncovered: %v", err)
	}
	rest := ensemble.Input{Name: "rest.npy", File: file([]string{"a", "b"}, []string{"1"}, 0.7, 0.7)}
	got, err = ensemble.Merge(ensemble.Input{}, []ensemble.Input{tags, cult, rest}, labels, ensemble.MergeReplace)
	if err != nil {
		t.Fatal(err)
	}
	// The first specialist's row order: b, a.
	want = []float32{0.1, 0.7, 1.0, 0.0, 0.3, 0.7, 0.5, 0.9}
	if !slices.Equal(got.Data, want) || !slices.Equal(got.IDs, []string{"b", "a"}) {
		t.Fatalf("no base: %v %v", got.Data, got.IDs)
	}

	for _, c := range []struct {
		name string
		in   ensemble.Input
		msg  string
	}{
		{"unknown label", ensemble.Input{Name: "x.npy", File: file([]string{"a", "b"}, []string{"9"}, 1, 1)}, "x.labels.csv:2: attribute id 9"},
		{"other images", ensemble.Input{Name: "x.npy", File: file([]string{"a", "c"}, []string{"0"}, 1, 1)}, "no image"},
		{"no sidecar", ensemble.Input{Name: "x.npy", File: file([]string{"a", "b"}, nil, 1, 1)}, "no labels sidecar"},
	} {
		if _, err := ensemble.Merge(base, []ensemble.Input{c.in}, labels, ensemble.MergeReplace); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
