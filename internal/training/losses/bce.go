package losses

import "imet/internal/engine/torch"

func init() {
	register(0, DefaultName, "binary cross-entropy", func(c Config) Loss {
		return BCE{LabelSmoothing: c.LabelSmoothing, PosWeight: c.PosWeight}
	})
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
