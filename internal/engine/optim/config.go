package optim

import (
	"fmt"

	"imet/internal/base/names"
)

// Config is a stage's optimizer as a run configuration writes it. Name
// picks the optimizer from the table behind Names; each other field is
// used by the optimizers its doc names.
type Config struct {
	Name        string     `yaml:"name" doc:"Optimizer: ${optimizers}."`
	WeightDecay float64    `yaml:"weight_decay" doc:"Decoupled weight decay (AdamW) or L2 penalty (SGD)."`
	Betas       [2]float64 `yaml:"betas" doc:"AdamW betas."`
	Eps         float64    `yaml:"eps" doc:"AdamW epsilon."`
	Momentum    float64    `yaml:"momentum" doc:"SGD momentum."`
	Nesterov    bool       `yaml:"nesterov" doc:"SGD Nesterov momentum."`
	// ClipGradNorm is applied by the trainer, not the optimizer, but is
	// configured with it, per stage.
	ClipGradNorm float64 `yaml:"clip_grad_norm" doc:"Clip the 2-norm of all gradients together to this before each step, as torch.nn.utils.clip_grad_norm_ (0: off); with fp16 the gradients are unscaled first."`
}

// DefaultName is the optimizer of a stage that names none.
const DefaultName = "adamw"

// DefaultConfig is AdamW with weight decay 0.01 and PyTorch's betas and
// epsilon; momentum 0.9 applies when a stage switches the name to sgd.
func DefaultConfig() Config {
	return Config{Name: DefaultName, WeightDecay: 1e-2, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, Momentum: 0.9}
}

// builder makes an optimizer of one kind from its configuration.
type builder func(c Config, groups []*Group) Optimizer

// kinds is the one table of optimizers: configuration checks, error
// messages and the generated reference all read their names from it.
var kinds = func() *names.Table[builder] {
	t := &names.Table[builder]{What: "optimizer"}
	t.Add(0, DefaultName, "torch.optim.AdamW", func(c Config, gs []*Group) Optimizer {
		return NewAdamW(gs, AdamWOptions{Beta1: c.Betas[0], Beta2: c.Betas[1], Eps: c.Eps})
	})
	t.Add(1, "sgd", "torch.optim.SGD with momentum", func(c Config, gs []*Group) Optimizer {
		return NewSGD(gs, SGDOptions{Momentum: c.Momentum, Nesterov: c.Nesterov})
	})
	return t
}()

// Names lists every optimizer a Config may name, in table order.
func Names() []string { return kinds.Names() }

// Doc is a one-line description of the named optimizer ("" if unknown),
// for generated documentation.
func Doc(name string) string { return kinds.Doc(name) }

// Check reports whether name is a known optimizer, with the known ones in
// the error.
func Check(name string) error { return kinds.Check(name) }

// New builds the optimizer c names over groups (see ByGroup); the groups
// carry the learning rates and weight decay.
func New(c Config, groups []*Group) (Optimizer, error) {
	k, err := kinds.Lookup(c.Name)
	if err != nil {
		return nil, fmt.Errorf("optim: %w", err)
	}
	return k.Value(c, groups), nil
}
