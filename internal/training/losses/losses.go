// Package losses holds the multi-label losses a training stage can combine:
// binary cross-entropy on logits (label smoothing, positive weights),
// sigmoid focal loss, a soft (differentiable) F-beta, the asymmetric loss
// (ASL) and a weighted sum of them.
//
// Every loss takes logits and targets of shape [batch, classes] and accepts
// soft targets in [0, 1] (Mixup, pseudo-labels, distillation), returning
// the mean over the batch as a scalar tensor that backpropagates. Values and
// gradients are checked against PyTorch (testdata/gen_golden.py).
package losses

import (
	"fmt"

	"imet/internal/engine/torch"
	"imet/internal/training/trainconfig"
)

// Loss maps logits and targets to a scalar tensor.
type Loss interface {
	Forward(logits, targets *torch.Tensor) *torch.Tensor
}

// smooth pulls targets toward 1/2: t*(1-s) + s/2.
func smooth(y *torch.Tensor, s float64) *torch.Tensor {
	if s == 0 {
		return y
	}
	return y.MulScalar(1 - s).AddScalar(s / 2)
}

// BCE is torch.nn.BCEWithLogitsLoss on smoothed targets.
type BCE struct {
	LabelSmoothing float64
	PosWeight      float64 // weight of positive targets; 0 or 1: none
}

// Forward implements Loss.
func (l BCE) Forward(x, y *torch.Tensor) *torch.Tensor {
	var pw *torch.Tensor
	if l.PosWeight != 0 && l.PosWeight != 1 {
		pw = torch.Full(l.PosWeight, x.DType(), x.Device(), x.Shape()[1])
	}
	return torch.BCEWithLogits(x, smooth(y, l.LabelSmoothing), nil, pw, torch.ReduceMean)
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

// Term is a loss with its weight in a Sum.
type Term struct {
	Weight float64
	Loss   Loss
}

// Sum is a weighted sum of losses.
type Sum []Term

// Forward implements Loss.
func (s Sum) Forward(x, y *torch.Tensor) *torch.Tensor {
	var total *torch.Tensor
	for _, t := range s {
		v := t.Loss.Forward(x, y)
		if t.Weight != 1 {
			v = v.MulScalar(t.Weight)
		}
		if total == nil {
			total = v
		} else {
			total = total.Add(v)
		}
	}
	return total
}

// New builds the loss a stage's configuration describes.
func New(terms []trainconfig.LossTerm) (Loss, error) {
	if len(terms) == 0 {
		return nil, fmt.Errorf("losses: no terms")
	}
	var s Sum
	for i, c := range terms {
		var l Loss
		switch c.Name {
		case "bce":
			l = BCE{LabelSmoothing: c.LabelSmoothing, PosWeight: c.PosWeight}
		case "focal":
			l = Focal{Gamma: c.Gamma, Alpha: c.Alpha, LabelSmoothing: c.LabelSmoothing}
		case "fbeta":
			l = SoftFBeta{Beta: c.Beta}
		case "asl":
			l = ASL{GammaPos: c.GammaPos, GammaNeg: c.GammaNeg, Clip: c.Clip}
		default:
			return nil, fmt.Errorf("losses: term %d: unknown loss %q (want bce, focal, fbeta or asl)", i, c.Name)
		}
		s = append(s, Term{Weight: c.Weight, Loss: l})
	}
	if len(s) == 1 && s[0].Weight == 1 {
		return s[0].Loss, nil
	}
	return s, nil
}

// PerSample is the BCE of each image (mean over classes), without a graph:
// the difficulty score hard-example mining ranks samples by.
func PerSample(x, y *torch.Tensor) []float32 {
	var out []float32
	torch.NoGrad(func() {
		out = torch.BCEWithLogits(x.Detach(), y, nil, nil, torch.ReduceNone).Mean(1).Float32s()
	})
	return out
}
