package models

import (
	"fmt"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
	"imet/internal/zoo/weights"
)

// torchvision's DenseNets, named as torchvision.models.densenet's
// state_dict: features.conv0/norm0, features.denseblockN.denselayerM.
// {norm1,conv1,norm2,conv2}, features.transitionN.{norm,conv},
// features.norm5, classifier. torchvision's published files use the
// pre-0.4 names ("denselayer1.norm.1.weight"); the registry's key map for
// "torchvision" rewrites them exactly as torchvision does on load.

func init() {
	for _, c := range []struct {
		name string
		cfg  DenseNetConfig
	}{
		{"densenet121", DenseNetConfig{Growth: 32, Blocks: [4]int{6, 12, 24, 16}, InitFeatures: 64}},
		{"densenet161", DenseNetConfig{Growth: 48, Blocks: [4]int{6, 12, 36, 24}, InitFeatures: 96}},
	} {
		c := c
		Register(c.name, Spec{
			Build:      func(o Options) (Model, error) { return NewDenseNet(c.cfg, o) },
			Source:     "torchvision",
			KeyMaps:    map[string]func(string) (string, bool){"torchvision": denseNetKey},
			InputSize:  224,
			Loads:      "torchvision `.pth`",
			KeyMapNote: "legacy `denselayerN.norm.1.weight` → `denselayerN.norm1.weight`, the rewrite torchvision itself does on load (always on)",
		})
	}
}

func denseNetKey(k string) (string, bool) { return weights.TorchvisionDenseNetKey(k), true }

// DenseNetConfig describes a torchvision DenseNet (bottleneck size 4).
type DenseNetConfig struct {
	// Growth is the growth rate (channels each dense layer adds).
	Growth int
	// Blocks is the number of dense layers per block.
	Blocks [4]int
	// InitFeatures is the stem's output channels.
	InitFeatures int
}

// bnReluConv is torchvision's norm -> relu -> conv sequence.
type bnReluConv struct {
	bn   *nn.BatchNorm2dLayer
	conv *nn.Conv2dLayer
}

// Forward frees its intermediates at once (Then): DenseNet's
// concatenations make memory, not arithmetic, its limit.
func (l *bnReluConv) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Then(l.conv, nn.Then(nn.ReLU, l.bn.Forward(x)))
}

type denseLayer struct{ a, b *bnReluConv }

// denseBlock keeps every layer's output and concatenates them, as
// torchvision's _DenseBlock does.
type denseBlock []denseLayer

func (d denseBlock) Forward(x *torch.Tensor) *torch.Tensor {
	feats := []*torch.Tensor{x}
	for _, l := range d {
		in := feats[0]
		if len(feats) > 1 {
			in = torch.Cat(1, feats...)
		}
		var h *torch.Tensor
		if in == x {
			h = l.a.Forward(in)
		} else {
			h = nn.Then(l.a, in)
		}
		feats = append(feats, nn.Then(l.b, h))
	}
	out := torch.Cat(1, feats...)
	for _, f := range feats[1:] {
		f.Free()
	}
	return out
}

type densenet struct {
	stem   nn.Sequential
	blocks [4]denseBlock
	trans  [3]nn.Sequential
	norm5  *nn.BatchNorm2dLayer
	ch3    int
	ch4    int
}

// Features returns the third dense block's output (stride 16, before its
// transition) and the final map after norm5 and ReLU (what torchvision
// pools).
func (d *densenet) Features(x *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
	x = d.stem.Forward(x)
	var f3 *torch.Tensor
	for i := 0; i < 4; i++ {
		x = nn.Then(d.blocks[i], x)
		if i == 2 {
			f3 = x
			x = d.trans[i].Forward(x)
		} else if i < 3 {
			x = nn.Then(d.trans[i], x)
		}
	}
	return f3, nn.Then(nn.ReLU, nn.Then(d.norm5, x))
}

func (d *densenet) Channels() (int, int) { return d.ch3, d.ch4 }

// NewDenseNet builds a DenseNet with the shared head (its linear layer is
// "classifier").
func NewDenseNet(c DenseNetConfig, o Options) (Model, error) {
	if c.Growth <= 0 || c.InitFeatures <= 0 {
		return nil, fmt.Errorf("models: bad DenseNet config %+v", c)
	}
	s := nn.NewStore()
	root := s.Root()
	f := root.Sub("features")
	stem := f.InGroup("stem")
	d := &densenet{}
	d.stem = nn.Sequential{
		nn.Conv2d(stem.Sub("conv0"), 3, c.InitFeatures).Kernel(7).Stride(2).Padding(3).Done(),
		nn.BatchNorm2d(stem.Sub("norm0"), c.InitFeatures).Done(),
		nn.ReLU,
		nn.MaxPool(3, 2, 1, false),
	}
	ch := c.InitFeatures
	const bnSize = 4
	for i := 0; i < 4; i++ {
		g := f.InGroup(fmt.Sprintf("stage%d", i+1))
		bb := g.Sub(fmt.Sprintf("denseblock%d", i+1))
		for j := 0; j < c.Blocks[i]; j++ {
			lb := bb.Sub(fmt.Sprintf("denselayer%d", j+1))
			in := ch + j*c.Growth
			d.blocks[i] = append(d.blocks[i], denseLayer{
				a: &bnReluConv{
					bn:   nn.BatchNorm2d(lb.Sub("norm1"), in).Done(),
					conv: nn.Conv2d(lb.Sub("conv1"), in, bnSize*c.Growth).Kernel(1).Done(),
				},
				b: &bnReluConv{
					bn:   nn.BatchNorm2d(lb.Sub("norm2"), bnSize*c.Growth).Done(),
					conv: nn.Conv2d(lb.Sub("conv2"), bnSize*c.Growth, c.Growth).Padding(1).Done(),
				},
			})
		}
		ch += c.Blocks[i] * c.Growth
		if i == 2 {
			d.ch3 = ch
		}
		if i < 3 {
			tb := g.Sub(fmt.Sprintf("transition%d", i+1))
			d.trans[i] = nn.Sequential{
				&bnReluConv{
					bn:   nn.BatchNorm2d(tb.Sub("norm"), ch).Done(),
					conv: nn.Conv2d(tb.Sub("conv"), ch, ch/2).Kernel(1).Done(),
				},
				nn.AvgPool(2, 2, 0),
			}
			ch /= 2
		} else {
			d.norm5 = nn.BatchNorm2d(g.Sub("norm5"), ch).Done()
		}
	}
	d.ch4 = ch
	return Assemble(root, d, "classifier", o)
}
