package losses

import "imet/internal/engine/torch"

func init() {
	register(1, "focal", "sigmoid focal loss", func(c Config) Loss {
		return Focal{Gamma: c.Gamma, Alpha: c.Alpha, LabelSmoothing: c.LabelSmoothing}
	})
}

// Focal is torchvision.ops.sigmoid_focal_loss (Lin et al. 2017), mean over
// elements: BCE scaled by (1-p_t)^gamma, and by alpha for positives and
// 1-alpha for negatives when Alpha > 0.
type Focal struct {
	Gamma, Alpha, LabelSmoothing float64
}

// Forward implements Loss.
func (l Focal) Forward(x, y *torch.Tensor) *torch.Tensor {
	y = smooth(y, l.LabelSmoothing)
	p := x.Sigmoid()
	ce := torch.BCEWithLogits(x, y, nil, nil, torch.ReduceNone)
	// p_t = p*y + (1-p)*(1-y); 1 - p_t = p + y - 2py.
	oneMinusPt := p.Add(y).Sub(p.Mul(y).MulScalar(2))
	loss := ce.Mul(oneMinusPt.Pow(l.Gamma))
	if l.Alpha > 0 {
		// alpha*y + (1-alpha)*(1-y) = (1-alpha) + (2alpha-1)*y
		loss = loss.Mul(y.MulScalar(2*l.Alpha - 1).AddScalar(1 - l.Alpha))
	}
	return loss.Mean()
}
