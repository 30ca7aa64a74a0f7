package models

import (
	"fmt"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
)

// torchvision's ResNets (v1.5: stride on the 3×3 convolution), named as
// torchvision.models.resnet's state_dict: conv1, bn1, layer1..layer4
// ("layer1.0.conv1.weight", "layer2.0.downsample.0.weight"), fc.

func init() {
	for _, c := range []struct {
		name       string
		bottleneck bool
		blocks     [4]int
	}{
		{"resnet18", false, [4]int{2, 2, 2, 2}},
		{"resnet34", false, [4]int{3, 4, 6, 3}},
		{"resnet50", true, [4]int{3, 4, 6, 3}},
		{"resnet101", true, [4]int{3, 4, 23, 3}},
	} {
		c := c
		Register(c.name, Spec{
			Build: func(o Options) (Model, error) {
				return NewResNet(ResNetConfig{Bottleneck: c.bottleneck, Blocks: c.blocks, Width: 64}, o)
			},
			Source:    "torchvision",
			InputSize: 224,
			Loads:     "torchvision `.pth`",
		})
	}
}

// ResNetConfig describes a torchvision-style ResNet; reduced widths serve
// the parity tests.
type ResNetConfig struct {
	// Bottleneck selects 1×1-3×3-1×1 blocks (expansion 4) over basic blocks.
	Bottleneck bool
	// Blocks per stage.
	Blocks [4]int
	// Width of the stem and first stage (64 in torchvision).
	Width int
}

type resBlock struct {
	convs []*nn.Conv2dLayer
	bns   []*nn.BatchNorm2dLayer
	down  nn.Layer
}

func (r *resBlock) Forward(x *torch.Tensor) *torch.Tensor {
	out := r.convs[0].Forward(x)
	last := len(r.convs) - 1
	for i := range r.convs {
		if i > 0 {
			out = nn.Then(r.convs[i], out)
		}
		out = nn.Then(r.bns[i], out)
		if i < last {
			out = nn.Then(nn.ReLU, out)
		}
	}
	return addShortcut(out, x, r.down)
}

// addShortcut ends a residual block: relu(out + shortcut(x)), where the
// shortcut is x itself or its downsampling. The sum is taken in out's
// buffer, as torchvision's `out += identity`: out is a BatchNorm's or a
// product's result, which backward does not read, and writing over it
// saves an activation-sized buffer and a pass over memory per block. The
// downsampled tensor is freed as soon as the sum exists, so a block holds
// at most one activation beyond its input.
func addShortcut(out, x *torch.Tensor, down nn.Layer) *torch.Tensor {
	id := x
	if down != nil {
		id = down.Forward(x)
	}
	var sum *torch.Tensor
	if out.DType() == id.DType() {
		sum = out.Add_(id)
	} else {
		// Autocast can leave the two sides in different precisions; an
		// in-place sum would have to narrow the wider one.
		sum = out.Add(id)
	}
	out.Free() // the handle; an in-place sum's storage lives on in sum
	if id != x {
		id.Free()
	}
	return nn.Then(nn.ReLU, sum)
}

type resnet struct {
	stem   nn.Sequential
	stages [4]nn.Sequential
	ch     [4]int
}

// NewResNet builds a ResNet with the shared head (its linear layer is "fc").
func NewResNet(c ResNetConfig, o Options) (Model, error) {
	if c.Width <= 0 {
		return nil, fmt.Errorf("models: resnet width %d", c.Width)
	}
	s := nn.NewStore()
	root := s.Root()
	st := root.InGroup("stem")
	r := &resnet{}
	r.stem = nn.Sequential{
		nn.Conv2d(st.Sub("conv1"), 3, c.Width).Kernel(7).Stride(2).Padding(3).Done(),
		nn.BatchNorm2d(st.Sub("bn1"), c.Width).Done(),
		nn.ReLU,
		nn.MaxPool(3, 2, 1, false),
	}
	exp := 1
	if c.Bottleneck {
		exp = 4
	}
	in := c.Width
	for si := 0; si < 4; si++ {
		planes := c.Width << si
		stride := 1
		if si > 0 {
			stride = 2
		}
		lb := root.InGroup(fmt.Sprintf("stage%d", si+1)).Sub(fmt.Sprintf("layer%d", si+1))
		for bi := 0; bi < c.Blocks[si]; bi++ {
			b := lb.SubIndex(bi)
			s1 := 1
			if bi == 0 {
				s1 = stride
			}
			blk := &resBlock{}
			widths := [][2]int{{in, planes}, {planes, planes}}
			if c.Bottleneck {
				widths = [][2]int{{in, planes}, {planes, planes}, {planes, planes * exp}}
			}
			for i, w := range widths {
				cb := nn.Conv2d(b.Sub(fmt.Sprintf("conv%d", i+1)), w[0], w[1])
				switch {
				case c.Bottleneck && i != 1:
					cb.Kernel(1)
				case c.Bottleneck || i == 0:
					cb.Padding(1).Stride(s1)
				default:
					cb.Padding(1)
				}
				blk.convs = append(blk.convs, cb.Done())
				blk.bns = append(blk.bns, nn.BatchNorm2d(b.Sub(fmt.Sprintf("bn%d", i+1)), w[1]).Done())
			}
			if s1 != 1 || in != planes*exp {
				d := b.Sub("downsample")
				blk.down = nn.Sequential{
					nn.Conv2d(d.SubIndex(0), in, planes*exp).Kernel(1).Stride(s1).Done(),
					nn.BatchNorm2d(d.SubIndex(1), planes*exp).Done(),
				}
			}
			r.stages[si] = append(r.stages[si], blk)
			in = planes * exp
		}
		r.ch[si] = in
	}
	return Assemble(root, r, "fc", o)
}

func (r *resnet) Channels() (int, int) { return r.ch[2], r.ch[3] }

func (r *resnet) Features(x *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
	x = r.stem.Forward(x)
	x = r.stages[0].Forward(x)
	x = r.stages[1].Forward(x)
	f3 := r.stages[2].Forward(x)
	return f3, r.stages[3].Forward(f3)
}
