package train

import (
	"context"
	"fmt"

	"imet/internal/vision/loader"
	"imet/internal/vision/pipeline"
	"imet/internal/engine/torch"
)

// PredictOptions steer Predict.
type PredictOptions struct {
	// Views is how many of the source's TTA views are averaged (at least 1).
	Views int
	// BatchSize is images per forward pass (default 32).
	BatchSize int
	// BF16 runs the forward pass under bfloat16 autocast.
	BF16 bool
	// OnBatch, when set, is called after each batch with the images done
	// so far over all views and the total (Len × Views), for progress.
	OnBatch func(done, total int)
}

// Predict returns the sigmoid probabilities of every sample of src (row
// major, src.Len() × src.Classes()), averaged over o.Views TTA views, and
// the mean BCE against the source's targets (view 0; meaningless for
// unlabelled sources). The model must already be in evaluation mode.
// Training's validation, OOF and test predictions and imet predict all go
// through here, so the same weights on the same images give bit-identical
// probabilities in both (on CPU, with the same thread count and batch size).
func Predict(ctx context.Context, m Model, src Source, o PredictOptions) ([]float32, float64, error) {
	n, cols := src.Len(), src.Classes()
	out := make([]float32, n*cols)
	var lossSum float64
	bs := o.BatchSize
	if bs < 1 {
		bs = 32
	}
	views := max(o.Views, 1)
	done, seen := 0, 0
	for view := 0; view < views; view++ {
		row := 0
		for b, err := range src.Eval(ctx, bs, view) {
			if err != nil {
				return nil, 0, err
			}
			// Samples left out as broken keep zero rows (no label).
			row += b.Dropped
			done += b.Dropped
			if b.N == 0 {
				if b.Release != nil {
					b.Release()
				}
				continue
			}
			if view == 0 {
				seen += b.N
			}
			err = torch.Run(func() {
				torch.InferenceMode(func() {
					x := torch.FromFloat32(b.Images, b.N, b.C, b.H, b.W)
					var logits *torch.Tensor
					if o.BF16 {
						torch.Autocast(func() { logits = m.Forward(x) })
					} else {
						logits = m.Forward(x)
					}
					logits = logits.To(torch.Float32)
					p := logits.Sigmoid().Float32s()
					for i, idx := range b.Indices {
						dst := out[idx*cols : (idx+1)*cols]
						for j := range dst {
							dst[j] += p[i*cols+j] / float32(views)
						}
					}
					if view == 0 && len(b.Targets) == b.N*cols {
						y := torch.FromFloat32(b.Targets, b.N, cols)
						lossSum += torch.BCEWithLogits(logits, y, nil, nil, torch.ReduceSum).Item()
					}
				})
			})
			row += b.N
			done += b.N
			if b.Release != nil {
				b.Release()
			}
			if err != nil {
				return nil, 0, err
			}
			if o.OnBatch != nil {
				o.OnBatch(done, n*views)
			}
		}
		if row != n {
			return nil, 0, fmt.Errorf("prediction saw %d of %d samples", row, n)
		}
	}
	return out, lossSum / float64(max(seen, 1)*cols), nil
}

// NewImageSource is a Source over image files for prediction: Eval yields
// them through p's TTA views, loaded with opt (BatchSize is set per call).
// Items may carry empty targets.
func NewImageSource(items []loader.Item, p *pipeline.Pipeline, opt loader.Options, classes int) *ImageSource {
	return &ImageSource{items: items, pipe: p, opt: opt, classes: classes}
}
