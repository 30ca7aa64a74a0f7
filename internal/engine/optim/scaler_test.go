package optim_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"imet/internal/engine/nn"
	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
)

const referencePython = "/usr/bin/python3"

// scaled is a one-parameter problem, loss = sum(w*x) + sum(w*w), trained
// by AdamW through a GradScaler.
type scaled struct {
	w   *nn.Var
	opt optim.Optimizer
	sc  *optim.GradScaler
}

func newScaled(t *testing.T, w []float32, o optim.GradScalerOptions) *scaled {
	s := nn.NewStore()
	v := s.Root().InGroup("head").Param("w", torch.FromFloat32(w, len(w)))
	groups, err := optim.ByGroup(s, map[string]float64{"*": 0.1}, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	return &scaled{w: v, opt: optim.NewAdamW(groups, optim.AdamWOptions{}), sc: optim.NewGradScaler(o)}
}

// step runs one iteration as PyTorch's AMP recipe writes it; maxNorm > 0
// clips the unscaled gradients.
func (p *scaled) step(t *testing.T, x []float32, maxNorm float64) (stepped bool) {
	t.Helper()
	err := torch.Run(func() {
		p.opt.ZeroGrad()
		loss := p.w.T.Mul(torch.FromFloat32(x, len(x))).Sum().Add(p.w.T.Mul(p.w.T).Sum())
		p.sc.ScaleLoss(loss).Backward()
		if maxNorm > 0 {
			if err := p.sc.Unscale(p.opt); err != nil {
				t.Fatal(err)
			}
			if _, err := optim.ClipGradNorm(p.opt, maxNorm); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if stepped, err = p.sc.Step(p.opt); err != nil {
			t.Fatal(err)
		}
		if err := p.sc.Update(); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return stepped
}

// state is the weights and the optimizer moments, as bytes.
func (p *scaled) state() map[string][]byte {
	m := map[string][]byte{"w": p.w.T.Bytes()}
	for n, t := range p.opt.State() {
		m[n] = t.Bytes()
		t.Free()
	}
	return m
}

func TestGradScalerDefaultsArePyTorchs(t *testing.T) {
	sc := optim.NewGradScaler(optim.GradScalerOptions{})
	if o := sc.Options(); o.InitScale != 65536 || o.GrowthFactor != 2 || o.BackoffFactor != 0.5 || o.GrowthInterval != 2000 {
		t.Fatalf("defaults %+v", o)
	}
	if sc.Scale() != 65536 || sc.State().GrowthTracker != 0 {
		t.Fatalf("initial state %+v", sc.State())
	}
}

// TestGradScalerSkipsNonFiniteSteps injects an inf, then a NaN, into the
// gradient: the step is skipped, the weights and AdamW's moments keep
// every bit, and the scale halves each time.
func TestGradScalerSkipsNonFiniteSteps(t *testing.T) {
	p := newScaled(t, []float32{0.5, -0.25, 1}, optim.GradScalerOptions{})
	if !p.step(t, []float32{1, 2, 3}, 0) {
		t.Fatal("a finite step was skipped")
	}
	before := p.state()
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for i, x := range [][]float32{{1, inf, 0}, {nan, 1, 1}} {
		if p.step(t, x, 0) {
			t.Fatalf("step with %v in the gradient was taken", x)
		}
		if want := 65536 / math.Pow(2, float64(i+1)); p.sc.Scale() != want || p.sc.State().GrowthTracker != 0 {
			t.Fatalf("after skip %d: %+v, want scale %v and no clean steps", i+1, p.sc.State(), want)
		}
		after := p.state()
		if len(after) != len(before) {
			t.Fatalf("state has %d tensors, had %d", len(after), len(before))
		}
		for n, b := range before {
			if !bytes.Equal(after[n], b) {
				t.Errorf("skipped step changed %s", n)
			}
		}
	}
	if !p.step(t, []float32{1, 1, 1}, 0) || p.sc.State().GrowthTracker != 1 {
		t.Fatalf("no recovery after the skips: %+v", p.sc.State())
	}
}

// TestGradScalerGrowsAfter2000CleanSteps runs the default interval out.
func TestGradScalerGrowsAfter2000CleanSteps(t *testing.T) {
	p := newScaled(t, []float32{0.5}, optim.GradScalerOptions{})
	x := []float32{1e-3}
	for i := 1; i < 2000; i++ {
		p.step(t, x, 0)
	}
	if st := p.sc.State(); st.Scale != 65536 || st.GrowthTracker != 1999 {
		t.Fatalf("after 1999 clean steps: %+v", st)
	}
	p.step(t, x, 0)
	if st := p.sc.State(); st.Scale != 131072 || st.GrowthTracker != 0 {
		t.Fatalf("after 2000 clean steps: %+v, want scale 131072", st)
	}
}

func TestGradScalerStateAndMisuse(t *testing.T) {
	p := newScaled(t, []float32{0.5, 2}, optim.GradScalerOptions{GrowthInterval: 5})
	for i := 0; i < 3; i++ {
		p.step(t, []float32{1, 1}, 0)
	}
	st := p.sc.State()
	q := optim.NewGradScaler(optim.GradScalerOptions{GrowthInterval: 5})
	if err := q.LoadState(st); err != nil || q.State() != st {
		t.Fatalf("round trip: %+v -> %+v (%v)", st, q.State(), err)
	}
	for _, bad := range []optim.GradScalerState{{Scale: 0}, {Scale: math.Inf(1)}, {Scale: 0.1}, {Scale: 8, GrowthTracker: 5}, {Scale: 8, GrowthTracker: -1}} {
		if err := q.LoadState(bad); err == nil {
			t.Errorf("LoadState(%+v) accepted", bad)
		}
	}
	err := torch.Run(func() {
		if q.Update() == nil {
			t.Error("Update before any step accepted")
		}
		p.opt.ZeroGrad()
		p.sc.ScaleLoss(p.w.T.Sum()).Backward()
		if err := p.sc.Unscale(p.opt); err != nil {
			t.Fatal(err)
		}
		if p.sc.Unscale(p.opt) == nil {
			t.Error("second Unscale accepted")
		}
		if _, err := p.sc.Step(p.opt); err != nil {
			t.Fatal(err)
		}
		if _, err := p.sc.Step(p.opt); err == nil {
			t.Error("second Step accepted")
		}
		if p.sc.Unscale(p.opt) == nil {
			t.Error("Unscale after Step accepted")
		}
		if err := p.sc.Update(); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGradScalerMatchesPyTorch runs a sequence with infs, NaNs, clipping
// of the unscaled gradients and a growth interval of 3 through PyTorch's
// GradScaler class live (testdata/grad_scaler_ref.py says how it runs
// without CUDA) and through GradScaler, step by step.
func TestGradScalerMatchesPyTorch(t *testing.T) {
	if err := exec.Command(referencePython, "-c", "import torch").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs %s with torch (scripts/deps.sh): %v", referencePython, err)
		}
		t.Skipf("reference %s with torch not available: %v", referencePython, err)
	}
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	w := []float32{0.5, -0.25, 1}
	xs := [][]float32{{1, 2, 3}, {1, inf, 0}, {0.5, 0.5, 0.5}, {1, 1, 1}, {2, 1, 0}, {3, 3, 3},
		{nan, 1, 1}, {-inf, 0, 0}, {0.1, 0.2, 0.3}, {4, -4, 4}, {1, 0, 1}, {0, 0, 0}, {1, 2, 1}}
	const interval, maxNorm = 3, 0.5
	sx := make([][]string, len(xs))
	for i, x := range xs {
		for _, v := range x {
			sx[i] = append(sx[i], strconv.FormatFloat(float64(v), 'g', -1, 32))
		}
	}
	in, _ := json.Marshal(map[string]any{"w": w, "xs": sx, "growth_interval": interval, "max_norm": maxNorm})
	cmd := exec.Command(referencePython, "-O", "testdata/grad_scaler_ref.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("grad_scaler_ref.py: %v\n%s", err, stderr.String())
	}
	var want []struct {
		Stepped       bool      `json:"stepped"`
		Scale         float64   `json:"scale"`
		GrowthTracker int       `json:"growth_tracker"`
		W             []float64 `json:"w"`
	}
	if err := json.Unmarshal(out, &want); err != nil || len(want) != len(xs) {
		t.Fatalf("reference output (%d steps): %v", len(want), err)
	}
	unlock := torch.LockThread(1)
	defer unlock()
	p := newScaled(t, w, optim.GradScalerOptions{GrowthInterval: interval})
	skips := 0
	for i, x := range xs {
		stepped := p.step(t, x, maxNorm)
		st := p.sc.State()
		r := want[i]
		if stepped != r.Stepped || st.Scale != r.Scale || st.GrowthTracker != r.GrowthTracker {
			t.Fatalf("step %d (%v): stepped %v, %+v; PyTorch stepped %v, scale %v, tracker %d", i, x, stepped, st, r.Stepped, r.Scale, r.GrowthTracker)
		}
		if !stepped {
			skips++
		}
		for j, v := range p.w.T.Float32s() {
			// 1e-6 relative: AdamW's float32 arithmetic agrees to a few
			// ulps between vector units; skipped steps are exact.
			if d := math.Abs(float64(v) - r.W[j]); d > 1e-6*math.Max(1, math.Abs(r.W[j])) {
				t.Fatalf("step %d: w[%d] = %v, PyTorch %v", i, j, v, r.W[j])
			}
		}
	}
	t.Logf("%d steps, %d skipped, final scale %v", len(xs), skips, p.sc.Scale())
}
