package models

import (
	"fmt"
	"regexp"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
)

// SE-ResNeXt as Cadene's pretrainedmodels defines it (senet.py), named as
// its state_dict: layer0.conv1, layer0.bn1, layer1..layer4 of
// SEResNeXtBottleneck blocks (conv1/bn1, grouped conv2/bn2, conv3/bn3,
// se_module.fc1/fc2 as 1×1 convolutions with bias, downsample.0/1), and
// last_linear. The 7×7 average pool of the original is replaced by the
// shared adaptive head, which is identical at 224 px and works at any size.

func init() {
	for _, c := range []struct {
		name   string
		blocks [4]int
	}{
		{"se_resnext50_32x4d", [4]int{3, 4, 6, 3}},
		{"se_resnext101_32x4d", [4]int{3, 4, 23, 3}},
	} {
		c := c
		Register(c.name, Spec{
			Build: func(o Options) (Model, error) {
				return NewSEResNeXt(SEResNeXtConfig{Blocks: c.blocks, Groups: 32, BaseWidth: 4, Width: 64,
					Reduction: 16}, o)
			},
			Source:     "pretrainedmodels (Cadene)",
			KeyMaps:    map[string]func(string) (string, bool){"timm": TimmToCadeneSENet},
			InputSize:  224,
			Loads:      "Cadene `.pth` (legacy format); timm with `from: timm`",
			KeyMapNote: "timm → Cadene: `conv1`/`bn1` → `layer0.conv1`/`layer0.bn1`, `layerN.M.se.fc1` → `layerN.M.se_module.fc1`, `fc` → `last_linear`",
		})
	}
}

// SEResNeXtConfig describes an SE-ResNeXt; reduced sizes serve the parity
// tests.
type SEResNeXtConfig struct {
	// Blocks per stage.
	Blocks [4]int
	// Groups is the cardinality (32) and BaseWidth the width per group at
	// the first stage (4).
	Groups, BaseWidth int
	// Width is the stem's output channels and the first stage's planes (64).
	Width int
	// Reduction is the squeeze-excitation bottleneck ratio (16).
	Reduction int
}

type seBlock struct {
	convs    [3]*nn.Conv2dLayer
	bns      [3]*nn.BatchNorm2dLayer
	fc1, fc2 *nn.Conv2dLayer
	down     nn.Layer
}

func (r *seBlock) Forward(x *torch.Tensor) *torch.Tensor {
	out := nn.Then(r.bns[0], r.convs[0].Forward(x))
	out = nn.Then(nn.ReLU, out)
	out = nn.Then(r.convs[1], out)
	out = nn.Then(nn.ReLU, nn.Then(r.bns[1], out))
	out = nn.Then(r.bns[2], nn.Then(r.convs[2], out))
	se := torch.AdaptiveAvgPool2d(out, 1, 1)
	se = nn.Then(nn.ReLU, nn.Then(r.fc1, se))
	se = nn.Then(nn.Func((*torch.Tensor).Sigmoid), nn.Then(r.fc2, se))
	scaled := out.Mul(se)
	out.Free()
	se.Free()
	return addShortcut(scaled, x, r.down)
}

type senet struct {
	stem   nn.Sequential
	stages [4]nn.Sequential
	ch     [4]int
}

// NewSEResNeXt builds an SE-ResNeXt with the shared head ("last_linear").
func NewSEResNeXt(c SEResNeXtConfig, o Options) (Model, error) {
	if c.Width <= 0 || c.Groups <= 0 || c.BaseWidth <= 0 || c.Reduction <= 0 {
		return nil, fmt.Errorf("models: bad SE-ResNeXt config %+v", c)
	}
	s := nn.NewStore()
	root := s.Root()
	l0 := root.InGroup("stem").Sub("layer0")
	r := &senet{}
	r.stem = nn.Sequential{
		nn.Conv2d(l0.Sub("conv1"), 3, c.Width).Kernel(7).Stride(2).Padding(3).DefaultInit().Done(),
		nn.BatchNorm2d(l0.Sub("bn1"), c.Width).Done(),
		nn.ReLU,
		nn.MaxPool(3, 2, 0, true),
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
			width := planes * c.BaseWidth / 64 * c.Groups
			outC := planes * 4
			blk := &seBlock{}
			blk.convs[0] = nn.Conv2d(b.Sub("conv1"), in, width).Kernel(1).DefaultInit().Done()
			blk.bns[0] = nn.BatchNorm2d(b.Sub("bn1"), width).Done()
			blk.convs[1] = nn.Conv2d(b.Sub("conv2"), width, width).Stride(s1).Padding(1).Groups(c.Groups).DefaultInit().Done()
			blk.bns[1] = nn.BatchNorm2d(b.Sub("bn2"), width).Done()
			blk.convs[2] = nn.Conv2d(b.Sub("conv3"), width, outC).Kernel(1).DefaultInit().Done()
			blk.bns[2] = nn.BatchNorm2d(b.Sub("bn3"), outC).Done()
			se := b.Sub("se_module")
			blk.fc1 = nn.Conv2d(se.Sub("fc1"), outC, outC/c.Reduction).Kernel(1).Bias(true).DefaultInit().Done()
			blk.fc2 = nn.Conv2d(se.Sub("fc2"), outC/c.Reduction, outC).Kernel(1).Bias(true).DefaultInit().Done()
			if s1 != 1 || in != outC {
				d := b.Sub("downsample")
				blk.down = nn.Sequential{
					nn.Conv2d(d.SubIndex(0), in, outC).Kernel(1).Stride(s1).DefaultInit().Done(),
					nn.BatchNorm2d(d.SubIndex(1), outC).Done(),
				}
			}
			r.stages[si] = append(r.stages[si], blk)
			in = outC
		}
		r.ch[si] = in
	}
	return Assemble(root, r, "last_linear", o)
}

func (r *senet) Channels() (int, int) { return r.ch[2], r.ch[3] }

func (r *senet) Features(x *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
	x = r.stem.Forward(x)
	x = r.stages[0].Forward(x)
	x = r.stages[1].Forward(x)
	f3 := r.stages[2].Forward(x)
	return f3, r.stages[3].Forward(f3)
}

var timmSE = regexp.MustCompile(`^(layer\d+\.\d+\.)se\.(fc[12]\..*)$`)

// TimmToCadeneSENet maps a key of timm's seresnext50_32x4d /
// seresnext101_32x4d state_dict (timm's own ResNet with SE: conv1, bn1,
// layerN.M.se.fc1, fc) onto Cadene's names (layer0.conv1, layer0.bn1,
// layerN.M.se_module.fc1, last_linear). timm's legacy_seresnext* models
// already use Cadene's names and need no mapping.
func TimmToCadeneSENet(k string) (string, bool) {
	switch {
	case len(k) > 6 && k[:6] == "conv1.":
		return "layer0." + k, true
	case len(k) > 4 && k[:4] == "bn1.":
		return "layer0." + k, true
	case len(k) > 3 && k[:3] == "fc.":
		return "last_linear." + k[3:], true
	}
	if m := timmSE.FindStringSubmatch(k); m != nil {
		return m[1] + "se_module." + m[2], true
	}
	if len(k) > 5 && k[:5] == "layer" {
		return k, true
	}
	return "", false
}
