package losses

import "imet/internal/engine/torch"

func init() {
	register(2, "fbeta", "soft, differentiable F-beta", func(c Config) Loss { return SoftFBeta{Beta: c.Beta} })
}

// SoftFBeta is 1 minus the batch mean of a per-image F-beta computed on
// probabilities instead of 0/1 predictions, so it can be minimised
// directly; with beta=2 it targets the iMet metric.
type SoftFBeta struct {
	Beta float64
}

// softEps keeps an image with no targets and tiny probabilities finite.
const softEps = 1e-7

// Forward implements Loss.
func (l SoftFBeta) Forward(x, y *torch.Tensor) *torch.Tensor {
	p := x.Sigmoid()
	b2 := l.Beta * l.Beta
	tp := p.Mul(y).Sum(1)
	// (1+b²)tp + b²fn + fp = b²·Σy + Σp
	den := y.Sum(1).MulScalar(b2).Add(p.Sum(1)).AddScalar(softEps)
	f := tp.MulScalar(1 + b2).Div(den)
	return f.Mean().RSub(1)
}
