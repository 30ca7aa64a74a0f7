package checkpoint

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"imet/internal/training/schedule"
)

func sample(step int64) *Checkpoint {
	return &Checkpoint{
		State: State{
			Fingerprint: []string{"a = 1"}, Stage: 1, StageStep: 7, Epoch: 2, Batch: 3, GlobalStep: step,
			Schedule: schedule.State{Best: 0.5, Seen: true, BadEvals: 2, Scale: 0.25},
			RNG:      map[string][]byte{"data": {1, 2, 3}, "torch": {9}},
			BestF2:   0.61, LastF2: 0.6,
		},
		Tensors: map[string]Tensor{
			"model/fc.weight": Float32([]int64{2, 2}, []float32{1, -2, 3.5, float32(math.Inf(1))}),
			"optim/step":      {DType: "int64", Shape: []int64{1}, Data: []byte{5, 0, 0, 0, 0, 0, 0, 0}},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.ckpt")
	want := sample(10)
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.State, want.State) {
		t.Fatalf("state\n got %+v\nwant %+v", got.State, want.State)
	}
	for n, w := range want.Tensors {
		g := got.Tensors[n]
		if g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) || string(g.Data) != string(w.Data) {
			t.Fatalf("tensor %s: %+v, want %+v", n, g, w)
		}
	}
	v, err := got.Tensors["model/fc.weight"].Floats32()
	if err != nil || v[2] != 3.5 || !math.IsInf(float64(v[3]), 1) {
		t.Fatalf("floats %v %v", v, err)
	}
}

func TestDamagedFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.ckpt")
	if err := Write(path, sample(1)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	cases := map[string][]byte{
		"truncated":  data[:len(data)-40],
		"bit flip":   append(append([]byte{}, data[:60]...), append([]byte{data[60] ^ 1}, data[61:]...)...),
		"not a ckpt": []byte("hello"),
	}
	for name, d := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, d, 0o644)
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

func TestDirKeepsLastKAndBest(t *testing.T) {
	d := &Dir{Path: t.TempDir(), Keep: 2}
	f2 := []float64{0.3, 0.7, math.NaN(), 0.5, 0.6, math.NaN()}
	for i, f := range f2 {
		if _, err := d.Save(sample(int64(i+1)*10), f); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(d.Path, "step-*.ckpt"))
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Base(e))
	}
	sort.Strings(names)
	want := []string{"step-000000020.ckpt", "step-000000050.ckpt", "step-000000060.ckpt"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("kept %v, want %v (last two plus best F2 0.7)", names, want)
	}
	ix, _ := d.ReadIndex()
	if ix.Best != "step-000000020.ckpt" || ix.BestF2 != 0.7 {
		t.Fatalf("index %+v", ix)
	}
	latest, _ := d.Latest()
	if filepath.Base(latest) != "step-000000060.ckpt" {
		t.Fatalf("latest %s", latest)
	}
	// Without an index, Latest falls back to the newest whole file.
	os.Remove(filepath.Join(d.Path, "index.json"))
	os.WriteFile(filepath.Join(d.Path, "step-000000070.ckpt"), []byte("torn"), 0o644)
	latest, _ = d.Latest()
	if filepath.Base(latest) != "step-000000060.ckpt" {
		t.Fatalf("fallback latest %s", latest)
	}
}

func TestCompatibleListsDifferences(t *testing.T) {
	st := &State{Fingerprint: []string{"a = 1", "b = 2"}}
	diff := func(was, now []string) []string {
		if reflect.DeepEqual(was, now) {
			return nil
		}
		return []string{"b: was 2, now 3"}
	}
	if err := Compatible("x.ckpt", st, []string{"a = 1", "b = 2"}, diff); err != nil {
		t.Fatal(err)
	}
	err := Compatible("x.ckpt", st, []string{"a = 1", "b = 3"}, diff)
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "b: was 2, now 3") || !strings.Contains(err.Error(), "x.ckpt") {
		t.Fatalf("error %v", err)
	}
}
