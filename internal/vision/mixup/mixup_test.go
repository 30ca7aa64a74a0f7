package mixup

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestBetaMoments(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, ab := range [][2]float64{{0.4, 0.4}, {1, 1}, {2, 5}} {
		a, b := ab[0], ab[1]
		const n = 40000
		var s, s2 float64
		for range n {
			x := Beta(r, a, b)
			if x < 0 || x > 1 {
				t.Fatalf("Beta(%v,%v) drew %v", a, b, x)
			}
			s += x
			s2 += x * x
		}
		mean, v := s/n, s2/n-(s/n)*(s/n)
		wm, wv := a/(a+b), a*b/((a+b)*(a+b)*(a+b+1))
		if math.Abs(mean-wm) > 0.01 || math.Abs(v-wv) > 0.01 {
			t.Errorf("Beta(%v,%v): mean %.4f var %.4f, want %.4f %.4f", a, b, mean, v, wm, wv)
		}
	}
}

func TestCutMixAreaMatchesLambda(t *testing.T) {
	const n, c, h, w, l = 4, 3, 16, 20, 2
	imgs := make([]float32, n*c*h*w)
	for i := range n {
		for k := 0; k < c*h*w; k++ {
			imgs[i*c*h*w+k] = float32(i)
		}
	}
	tg := make([]float32, n*l)
	for i := range n {
		tg[i*l] = float32(i)
	}
	r := rand.New(rand.NewPCG(3, 4))
	lam, perm, _ := Config{Mode: "cutmix", Alpha: 1, P: 1}.Apply(r, Batch{imgs, tg, n, c, h, w, l}, nil)
	for i := range n {
		if perm[i] == i {
			continue
		}
		own := 0
		for k := 0; k < h*w; k++ {
			if imgs[i*c*h*w+k] == float32(i) {
				own++
			}
		}
		if got := float64(own) / (h * w); math.Abs(got-lam) > 1e-9 {
			t.Errorf("sample %d keeps %.4f of its pixels, lambda %.4f", i, got, lam)
		}
		if want := float32(lam)*float32(i) + float32(1-lam)*float32(perm[i]); math.Abs(float64(tg[i*l]-want)) > 1e-5 {
			t.Errorf("sample %d target %v, want %v", i, tg[i*l], want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Mode: "mix"}, {Mode: "mixup", Alpha: 0, P: 1}, {Mode: "cutmix", Alpha: 1, P: 2}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if (Config{}).Validate() != nil || (Config{}).Enabled() {
		t.Error("zero Config should be valid and off")
	}
}
