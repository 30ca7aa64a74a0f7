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

	"imet/internal/base/names"
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

// builder makes a loss of one kind from its term's configuration.
type builder func(c Config) Loss

// kinds is the one table of losses: configuration checks, error messages
// and the generated reference all read their names from it. Each loss adds
// itself from its own file's init (register), so adding one touches only
// that file and its golden case (testdata/gen_golden.py).
var kinds = &names.Table[builder]{What: "loss"}

// register adds a loss; order places it in Names (and so in the docs).
func register(order int, name, doc string, build func(c Config) Loss) {
	kinds.Add(order, name, doc, build)
}

// Names lists every loss a Config may name, in table order.
func Names() []string { return kinds.Names() }

// Doc is a one-line description of the named loss ("" if unknown), for
// generated documentation.
func Doc(name string) string { return kinds.Doc(name) }

// Check reports whether name is a known loss, with the known ones in the
// error.
func Check(name string) error { return kinds.Check(name) }

// New builds the loss a stage's configuration describes.
func New(terms []Config) (Loss, error) {
	if len(terms) == 0 {
		return nil, fmt.Errorf("losses: no terms")
	}
	var s Sum
	for i, c := range terms {
		k, err := kinds.Lookup(c.Name)
		if err != nil {
			return nil, fmt.Errorf("losses: term %d: %w", i, err)
		}
		s = append(s, Term{Weight: c.Weight, Loss: k.Value(c)})
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
