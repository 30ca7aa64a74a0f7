package main

import (
	"math"
	"strings"
	"testing"

	"imet/internal/postprocess/probs"
)

func TestEnsemble(t *testing.T) {
	d := ppSetup(t, "", 20, 30)
	a, _ := probs.Load(d.test)
	// b: the same images in reverse order, probabilities squared.
	b := &probs.File{Matrix: probs.NewMatrix(a.Rows, a.Cols), Labels: a.Labels}
	for i := range a.Rows {
		src := a.Rows - 1 - i
		b.IDs = append(b.IDs, a.IDs[src])
		for j, v := range a.Row(src) {
			b.Row(i)[j] = v * v
		}
	}
	bp := d.path("b.npy")
	if err := probs.Save(bp, b); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"mean", "rank", "geomean"} {
		t.Run(method, func(t *testing.T) {
			out := d.path(method + ".npy")
			stdout := mustRun(t, "ensemble", "--method", method, "--out", out, d.test, bp)
			if !strings.Contains(stdout, "2 files: 30 images x 40 labels") {
				t.Fatalf("output: %s", stdout)
			}
			e, err := probs.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			if e.IDs[0] != a.IDs[0] || len(e.Labels) != 40 {
				t.Fatalf("ids/labels not carried over: %v %v", e.IDs[:2], e.Labels[:2])
			}
			p := float64(a.Row(3)[5])
			// geomean clamps at 1e-7 so that a near-zero does not veto a label.
			want := map[string]float64{"mean": (p + p*p) / 2, "geomean": math.Sqrt(max(p, 1e-7) * max(float64(float32(p*p)), 1e-7))}
			if w, ok := want[method]; ok && math.Abs(float64(e.Row(3)[5])-w) > 1e-5*w {
				t.Fatalf("[3,5] = %v, want %v (rows must be aligned by id)", e.Row(3)[5], w)
			}
			if method == "rank" {
				// Squaring keeps the order, so both files rank alike.
				for j := range 40 {
					lo, hi := 2.0, -1.0
					for i := range 30 {
						v := float64(e.Row(i)[j])
						lo, hi = min(lo, v), max(hi, v)
					}
					if math.Abs(hi-1) > 1e-6 || math.Abs(lo-1.0/30) > 1e-6 {
						t.Fatalf("column %d ranks span %v..%v", j, lo, hi)
					}
				}
			}
		})
	}
	mustRun(t, "ensemble", "--method", "weighted", "--weights", "3,1", "--out", d.path("w.npy"), d.test, bp)

	// A file with an image the first lacks is named in the error.
	c := &probs.File{Matrix: a.Matrix, IDs: append([]string{"stranger"}, a.IDs[1:]...), Labels: a.Labels}
	cp := d.path("c.npy")
	probs.Save(cp, c)
	code, _, errs := runCLI(t, "ensemble", "--out", d.path("x.npy"), d.test, cp)
	if code == 0 || !strings.Contains(errs, cp+` has no image "test0000"`) {
		t.Fatalf("exit %d: %s", code, errs)
	}

	// Concat: out-of-fold parts become one file.
	oof, _ := probs.Load(d.oof)
	half := oof.Rows / 2
	p1 := &probs.File{Matrix: &probs.Matrix{Rows: half, Cols: oof.Cols, Data: oof.Data[:half*oof.Cols]}, IDs: oof.IDs[:half], Labels: oof.Labels}
	p2 := &probs.File{Matrix: &probs.Matrix{Rows: oof.Rows - half, Cols: oof.Cols, Data: oof.Data[half*oof.Cols:]}, IDs: oof.IDs[half:], Labels: oof.Labels}
	probs.Save(d.path("f0.npy"), p1)
	probs.Save(d.path("f1.npy"), p2)
	mustRun(t, "ensemble", "--method", "concat", "--out", d.path("all.npy"), d.path("f0.npy"), d.path("f1.npy"))
	all, err := probs.Load(d.path("all.npy"))
	if err != nil || all.Rows != oof.Rows || all.IDs[half] != oof.IDs[half] {
		t.Fatalf("concat: %v", err)
	}
}
