package lrfind

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestRateIsExponential(t *testing.T) {
	o := Defaults()
	if o.Rate(0) != o.Start || math.Abs(o.Rate(o.Steps-1)/o.End-1) > 1e-12 {
		t.Errorf("rates run %g..%g, want %g..%g", o.Rate(0), o.Rate(o.Steps-1), o.Start, o.End)
	}
	want := math.Pow(o.End/o.Start, 1/float64(o.Steps-1))
	for i := 0; i+1 < o.Steps; i++ {
		if r := o.Rate(i+1) / o.Rate(i); math.Abs(r/want-1) > 1e-12 {
			t.Fatalf("step %d: factor %.15g, want %.15g", i, r, want)
		}
	}
}

// smoothed is the bias-corrected exponential average of the first n
// losses in closed form: Σ (1-β)·β^(n-k)·loss_k / (1-β^n).
func smoothed(losses []float64, n int, beta float64) float64 {
	var s float64
	for k := 1; k <= n; k++ {
		s += (1 - beta) * math.Pow(beta, float64(n-k)) * losses[k-1]
	}
	return s / (1 - math.Pow(beta, float64(n)))
}

func TestSmoothingIsBiasCorrected(t *testing.T) {
	o := Defaults()
	r := NewRecorder(o)
	for i := 0; i < 20; i++ {
		r.Add(o.Rate(i), 0.7)
	}
	for i, p := range r.Points {
		// Without the correction the first point would be 0.02·0.7.
		if math.Abs(p.Smoothed-0.7) > 1e-12 {
			t.Fatalf("constant loss 0.7 smoothed to %g at step %d", p.Smoothed, i)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var losses []float64
	r = NewRecorder(o)
	for i := 0; i < 60; i++ {
		losses = append(losses, 0.5+0.2*rng.Float64())
		r.Add(o.Rate(i), losses[i])
	}
	for i, p := range r.Points {
		if want := smoothed(losses, i+1, o.Beta); math.Abs(p.Smoothed-want) > 1e-12 {
			t.Errorf("step %d: smoothed %.15g, closed form %.15g", i, p.Smoothed, want)
		}
	}
}

// The sweep stops at the first step whose smoothed loss exceeds 4x the
// best so far, and on a loss that is not finite.
func TestStopsOnDivergence(t *testing.T) {
	o := Defaults()
	var losses []float64
	for i := 0; i < o.Steps; i++ {
		// Falls from 1 to 0.2, then grows tenfold a step past step 50.
		v := 0.2 + 0.8*math.Exp(-float64(i)/10)
		if i > 50 {
			v *= math.Pow(10, float64(i-50))
		}
		losses = append(losses, v)
	}
	stop := -1
	best := math.Inf(1)
	for n := 1; n <= len(losses); n++ {
		s := smoothed(losses, n, o.Beta)
		best = math.Min(best, s)
		if s > 4*best {
			stop = n - 1
			break
		}
	}
	r := NewRecorder(o)
	i := 0
	for ; i < len(losses) && r.Add(o.Rate(i), losses[i]); i++ {
	}
	if !r.Diverged || i != stop || len(r.Points) != stop+1 {
		t.Errorf("stopped at step %d (%d points, diverged %v), want %d", i, len(r.Points), r.Diverged, stop)
	}
	r = NewRecorder(o)
	r.Add(o.Start, 1)
	if r.Add(o.Rate(1), math.NaN()) || !r.Diverged || len(r.Points) != 1 {
		t.Error("a NaN loss did not end the sweep")
	}
}

// Without smoothing the suggestion is where the loss falls fastest
// against log(rate): a logistic drop centred on 1e-3 in log space.
func TestSuggestionIsSteepestDescent(t *testing.T) {
	o := Defaults()
	o.Beta = 0
	o.Steps = 161 // 0.05 decades a step: 1e-3 is step 80
	r := NewRecorder(o)
	for i := 0; i < o.Steps; i++ {
		lr := o.Rate(i)
		r.Add(lr, 1-0.5/(1+math.Exp(-3*(math.Log10(lr)+3))))
	}
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	// The steepest secant starts half a step before the centre.
	if res.SuggestedIndex != 79 && res.SuggestedIndex != 80 {
		t.Errorf("suggested %g (step %d), want 1e-3 (step 79 or 80)", res.Suggested, res.SuggestedIndex)
	}
	if res.Suggested < o.Start || res.Suggested > o.End {
		t.Errorf("suggestion %g outside the sweep", res.Suggested)
	}
	// The lowest loss is at the end of the sweep: min/10 is a tenth of it.
	if math.Abs(res.MinOver10/(o.End/10)-1) > 1e-9 {
		t.Errorf("min/10 = %g", res.MinOver10)
	}
}

// fastai's trims: the first tenth of the sweep and its last five points
// are never suggested, however steep; the suggestion is the steepest
// smoothed descent between the trimmed start and the lowest point.
func TestSuggestionSkipsTheEnds(t *testing.T) {
	o := Defaults()
	r := NewRecorder(o)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < o.Steps; i++ {
		v := 1.0 - 0.004*float64(i) + 0.05*rng.Float64()
		switch {
		case i < 5:
			v = 10 - float64(i) // a steep start
		case i >= 95:
			v = 0.01 // a steep drop at the very end
		}
		r.Add(o.Rate(i), v)
	}
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.SuggestedIndex < 10 || res.SuggestedIndex >= 95 {
		t.Fatalf("suggested step %d, inside a trimmed end", res.SuggestedIndex)
	}
	bottom := 10
	for i := 10; i < 95; i++ {
		if r.Points[i].Smoothed < r.Points[bottom].Smoothed {
			bottom = i
		}
	}
	best := 10
	for i := 10; i < bottom; i++ {
		if r.Points[i+1].Smoothed-r.Points[i].Smoothed < r.Points[best+1].Smoothed-r.Points[best].Smoothed {
			best = i
		}
	}
	if res.SuggestedIndex != best {
		t.Errorf("suggested step %d, steepest smoothed descent to the bottom (%d) at %d", res.SuggestedIndex, bottom, best)
	}
}

// What a tiny data set gave: the loss eases down to a minimum near 1e-3,
// rises, then dips steeply before blowing up. The dip is past the
// minimum: the suggestion stays on the way down.
func TestSuggestionIgnoresDipAfterMinimum(t *testing.T) {
	o := Defaults()
	o.Beta = 0
	r := NewRecorder(o)
	for i := 0; i < o.Steps; i++ {
		x := math.Log10(o.Rate(i))             // -7 .. 1
		v := 0.75 - 0.1/(1+math.Exp(-4*(x+4))) // eases down around 1e-4
		if x > -3 {
			v += 0.3 * (x + 3) // rises past 1e-3
		}
		if x > -0.8 && x < -0.5 {
			v -= 0.6 // a steep dip at 0.2
		}
		r.Add(o.Rate(i), v)
		if i > 90 {
			break
		}
	}
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Suggested < 2e-5 || res.Suggested > 5e-4 {
		t.Errorf("suggested %g, not on the descent around 1e-4", res.Suggested)
	}
}

func TestOptionsCheck(t *testing.T) {
	for _, o := range []Options{
		{Start: 0, End: 1, Steps: 10, Beta: 0.98, Diverge: 4},
		{Start: 1, End: 1, Steps: 10, Beta: 0.98, Diverge: 4},
		{Start: 1e-7, End: 10, Steps: 1, Beta: 0.98, Diverge: 4},
		{Start: 1e-7, End: 10, Steps: 10, Beta: 1, Diverge: 4},
		{Start: 1e-7, End: 10, Steps: 10, Beta: 0.98, Diverge: 1},
	} {
		if o.Check() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if err := Defaults().Check(); err != nil {
		t.Error(err)
	}
	r := NewRecorder(Defaults())
	r.Add(1e-7, 1)
	if _, err := r.Result(); err == nil {
		t.Error("a one-point sweep gave a suggestion")
	}
}
