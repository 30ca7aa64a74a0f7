package train

import (
	"context"
	"fmt"

	"imet/internal/engine/torch"
	"imet/internal/training/trainconfig"
	"imet/internal/vision/loader"
	"imet/internal/vision/pipeline"
)

// PredictOptions steer Predict.
type PredictOptions struct {
	// Views is how many of the source's TTA views are averaged (at least 1).
	Views int
	// BatchSize is images per forward pass (default 32).
	BatchSize int
	// Device is where the model's tensors are (the zero value: the CPU);
	// batches are uploaded there and probabilities copied back.
	Device torch.Device
	// Precision is the engine precision: bf16 and fp16 run the forward
	// pass under autocast to that type (fp16 on a GPU only); "" is fp32.
	Precision string
	// ChannelsLast lays each batch out NHWC, for a channels-last model.
	ChannelsLast bool
	// OnBatch, when set, is called after each batch with the images done
	// so far over all views and the total (Len × Views), for progress.
	OnBatch func(done, total int)
	// Embed, when set, stands in for the model's forward pass and Predict
	// returns its outputs as they are (Len × EmbedDim, averaged over the
	// views, no sigmoid, no loss): penultimate-layer embeddings, through
	// the same batching and views as the probabilities.
	Embed    func(x *torch.Tensor) *torch.Tensor
	EmbedDim int
}

// Predict returns the sigmoid probabilities of every sample of src (row
// major, src.Len() × src.Classes()), averaged over o.Views TTA views, and
// the mean BCE against the source's targets (view 0; meaningless for
// unlabelled sources). The model must already be in evaluation mode.
// Training's validation, OOF and test predictions and imet predict all go
// through here, so the same weights on the same images give bit-identical
// probabilities in both (on CPU, with the same thread count and batch size).
func Predict(ctx context.Context, m Model, src Source, o PredictOptions) ([]float32, float64, error) {
	out, lossSum, seen, err := predictSums(ctx, m, src, o)
	if err != nil {
		return nil, 0, err
	}
	return out, lossSum / float64(max(seen, 1)*src.Classes()), nil
}

// predictSums is Predict returning the BCE summed over the labelled
// elements and the number of samples it covers, which the ranks of a
// data-parallel run add up before dividing.
func predictSums(ctx context.Context, m Model, src Source, o PredictOptions) (out []float32, lossSum float64, seen int, err error) {
	n, cols := src.Len(), src.Classes()
	classes := cols
	if o.Embed != nil {
		cols = o.EmbedDim
	}
	out = make([]float32, n*cols)
	bs := o.BatchSize
	if bs < 1 {
		bs = 32
	}
	// A batch beyond the rows would only size buffers for rows that do
	// not exist (validation.batch_size: 1e8 allocated 1e8 images' worth).
	if n > 0 && bs > n {
		bs = n
	}
	views := max(o.Views, 1)
	done := 0
	for view := 0; view < views; view++ {
		row := 0
		for b, err := range src.Eval(ctx, bs, view) {
			if err != nil {
				return nil, 0, 0, err
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
					rows := append([]int(nil), b.Indices...) // the source may reuse b once released
					labelled := o.Embed == nil && view == 0 && len(b.Targets) == b.N*classes
					x, y := upload(b, o.Device, o.ChannelsLast, labelled)
					var logits *torch.Tensor
					forward := m.Forward
					if o.Embed != nil {
						forward = o.Embed
					}
					autocast(o.Precision, o.Device, func() { logits = forward(x) })
					logits = logits.To(torch.Float32)
					var p []float32
					if o.Embed != nil {
						p = logits.Float32s()
					} else {
						p = logits.Sigmoid().Float32s()
					}
					for i, idx := range rows {
						dst := out[idx*cols : (idx+1)*cols]
						for j := range dst {
							dst[j] += p[i*cols+j] / float32(views)
						}
					}
					if labelled {
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
				return nil, 0, 0, err
			}
			if o.OnBatch != nil {
				o.OnBatch(done, n*views)
			}
		}
		if row != n {
			return nil, 0, 0, fmt.Errorf("prediction saw %d of %d samples", row, n)
		}
	}
	return out, lossSum, seen, nil
}

// upload copies a batch's images (and, with targets, its targets) to dev
// and hands the batch's buffers back to its source at once, so that the
// loader's workers refill them while the network runs; b.Release is then
// nil. channelsLast lays the images out NHWC.
func upload(b *Batch, dev torch.Device, channelsLast, targets bool) (x, y *torch.Tensor) {
	if release := b.Release; release != nil {
		b.Release = nil
		defer release()
	}
	x = torch.Upload(b.Images, dev, b.N, b.C, b.H, b.W)
	if channelsLast {
		x = x.ChannelsLast()
	}
	if targets {
		y = torch.Upload(b.Targets, dev, b.N, b.L)
	}
	return x, y
}

// autocast runs f under the autocast an engine precision asks for on dev:
// none for fp32 (or ""), bfloat16 for bf16, float16 for fp16.
func autocast(precision string, dev torch.Device, f func()) {
	switch precision {
	case trainconfig.PrecisionBF16:
		torch.AutocastOn(dev, torch.BFloat16, f)
	case trainconfig.PrecisionFP16:
		torch.AutocastOn(dev, torch.Float16, f)
	default:
		f()
	}
}

// NewImageSource is a Source over image files for prediction: Eval yields
// them through p's TTA views, loaded with opt (BatchSize is set per call).
// Items may carry empty targets.
func NewImageSource(items []loader.Item, p *pipeline.Pipeline, opt loader.Options, classes int) *ImageSource {
	return &ImageSource{items: items, pipe: p, opt: opt, classes: classes}
}
