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
	"strings"

	"imet/internal/engine/torch"
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

// Config is one term of a stage's loss sum, as a run configuration writes
// it. Name picks the loss from the table behind Names; the other fields are
// the parameters of every kind, each used by the kinds its doc names.
type Config struct {
	Name           string  `yaml:"name" doc:"Loss, required in every term: ${losses}."`
	Weight         float64 `yaml:"weight" doc:"Weight of this term in the sum."`
	LabelSmoothing float64 `yaml:"label_smoothing" doc:"bce/focal: targets become t*(1-s) + s/2."`
	PosWeight      float64 `yaml:"pos_weight" doc:"bce: weight of positive targets (0 or 1: unweighted)."`
	Gamma          float64 `yaml:"gamma" doc:"focal: focusing parameter."`
	Alpha          float64 `yaml:"alpha" doc:"focal: weight of positives, negatives get 1-alpha (0: unweighted)."`
	Beta           float64 `yaml:"beta" doc:"fbeta: beta (2 for the iMet metric)."`
	GammaPos       float64 `yaml:"gamma_pos" doc:"asl: focusing parameter for positives."`
	GammaNeg       float64 `yaml:"gamma_neg" doc:"asl: focusing parameter for negatives."`
	Clip           float64 `yaml:"clip" doc:"asl: probability margin shifted off negatives."`
}

// DefaultConfig is a term with the usual parameters of every kind: weight
// 1, focal gamma 2, F-beta beta 2, ASL gamma_neg 4 and clip 0.05. It names
// no loss: a term in a file must say which.
func DefaultConfig() Config {
	return Config{Weight: 1, Gamma: 2, Beta: 2, GammaNeg: 4, Clip: 0.05}
}

// UnmarshalYAML starts every term in a file from DefaultConfig, so that a
// term naming only its loss is complete.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Config // without this method, to avoid recursion
	d := plain(DefaultConfig())
	if err := unmarshal(&d); err != nil {
		return err
	}
	*c = Config(d)
	return nil
}

// DefaultName is the loss of a stage that names none.
const DefaultName = "bce"

// kind is one entry of the table of losses.
type kind struct {
	name, doc string
	build     func(c Config) Loss
}

// kinds is the one table of losses: configuration checks, error messages
// and the generated reference all read their names from it.
var kinds = []kind{
	{DefaultName, "binary cross-entropy", func(c Config) Loss { return BCE{LabelSmoothing: c.LabelSmoothing, PosWeight: c.PosWeight} }},
	{"focal", "sigmoid focal loss", func(c Config) Loss { return Focal{Gamma: c.Gamma, Alpha: c.Alpha, LabelSmoothing: c.LabelSmoothing} }},
	{"fbeta", "soft, differentiable F-beta", func(c Config) Loss { return SoftFBeta{Beta: c.Beta} }},
	{"asl", "asymmetric loss", func(c Config) Loss { return ASL{GammaPos: c.GammaPos, GammaNeg: c.GammaNeg, Clip: c.Clip} }},
}

// Names lists every loss a Config may name, in table order.
func Names() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.name
	}
	return out
}

// Doc is a one-line description of the named loss ("" if unknown), for
// generated documentation.
func Doc(name string) string {
	k, _ := lookup(name)
	return k.doc
}

// Check reports whether name is a known loss, with the known ones in the
// error.
func Check(name string) error {
	_, err := lookup(name)
	return err
}

func lookup(name string) (kind, error) {
	for _, k := range kinds {
		if k.name == name {
			return k, nil
		}
	}
	return kind{}, fmt.Errorf("unknown loss %q (known: %s)", name, strings.Join(Names(), ", "))
}

// New builds the loss a stage's configuration describes.
func New(terms []Config) (Loss, error) {
	if len(terms) == 0 {
		return nil, fmt.Errorf("losses: no terms")
	}
	var s Sum
	for i, c := range terms {
		k, err := lookup(c.Name)
		if err != nil {
			return nil, fmt.Errorf("losses: term %d: %w", i, err)
		}
		s = append(s, Term{Weight: c.Weight, Loss: k.build(c)})
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
