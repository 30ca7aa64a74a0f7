package losses

import "imet/internal/engine/torch"

func init() {
	register(3, "asl", "asymmetric loss", func(c Config) Loss {
		return ASL{GammaPos: c.GammaPos, GammaNeg: c.GammaNeg, Clip: c.Clip}
	})
}

// ASL is the asymmetric loss of Ridnik et al. (2021): positives weighted
// by (1-p)^GammaPos, negatives by p_m^GammaNeg with the probability shifted
// down by Clip (p_m = max(p - clip, 0)), which discards easy negatives, the
// bulk of a 1103-label problem. Mean over elements (the reference sums).
type ASL struct {
	GammaPos, GammaNeg, Clip float64
}

const aslEps = 1e-8

// Forward implements Loss.
func (l ASL) Forward(x, y *torch.Tensor) *torch.Tensor {
	pos := x.Sigmoid()
	neg := pos.RSub(1)
	if l.Clip > 0 {
		neg = neg.AddScalar(l.Clip).Clamp(-1, 1) // upper bound only; neg >= 0
	}
	lp := y.Mul(pos.Clamp(aslEps, 1).Log())
	if l.GammaPos != 0 {
		lp = lp.Mul(pos.RSub(1).Pow(l.GammaPos))
	}
	ln := y.RSub(1).Mul(neg.Clamp(aslEps, 1).Log())
	if l.GammaNeg != 0 {
		ln = ln.Mul(neg.RSub(1).Pow(l.GammaNeg))
	}
	return lp.Add(ln).Mean().Neg()
}
