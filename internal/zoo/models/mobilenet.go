package models

import (
	"fmt"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
)

// torchvision's mobilenet_v2 (width 1.0), named as its state_dict:
// features.0.{0,1} (stem conv and BN), features.1..17 inverted residual
// blocks (features.N.conv.M...), features.18.{0,1} (the 1x1 conv to 1280
// channels) and classifier.1 (the linear layer after Dropout).

func init() {
	Register("mobilenet_v2", Spec{
		Build: func(o Options) (Model, error) {
			var c MobileNetV2Config
			if o.Variant == VariantKeras {
				c = MobileNetV2Config{KerasPadding: true, BNEps: 1e-3}
			}
			return NewMobileNetV2(c, o)
		},
		Source:    "torchvision",
		Variants:  map[string]string{VariantKeras: "stride-2 convolutions pad 0 before and 1 after, batch-norm eps 1e-3"},
		InputSize: 224,
		Loads:     "torchvision `.pth`; a Keras MobileNetV2 as tfjs (nsfwjs' `mobilenet_v2` directory) with `from: keras`, `variant: keras`",
	})
}

// VariantKeras is the variant (Options.Variant) that Keras weights need:
// the network as Keras applications builds it.
const VariantKeras = "keras"

// MobileNetV2Config selects the variants weights from other frameworks
// need; the zero value is torchvision's network.
type MobileNetV2Config struct {
	// KerasPadding pads stride-2 convolutions by 0 before and 1 after each
	// spatial axis, as Keras' MobileNetV2 (ZeroPadding2D + "valid") does,
	// instead of torchvision's 1 on both sides. Needed for Keras/tfjs
	// weights to give their trained outputs.
	KerasPadding bool
	// BNEps is the batch-norm epsilon (0 means torchvision's 1e-5; Keras
	// uses 1e-3).
	BNEps float64
	// Hidden inserts fully connected ReLU layers of these widths between
	// the pooled features and the classifier, named mlp.0, mlp.1, ... (the
	// nsfwjs head is 256, 128). Dropout of the head options follows each.
	Hidden []int
}

// mobileNetV2Settings is torchvision's inverted-residual table: expansion
// t, output channels c, repeats n, first stride s.
var mobileNetV2Settings = [][4]int{
	{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
}

// mobileNetV2Group names the layer group of features.i: stem up to
// stride 2, then one stage per resolution (4, 8, 16, 32).
func mobileNetV2Group(i int) string {
	switch {
	case i <= 1:
		return "stem"
	case i <= 3:
		return "stage1"
	case i <= 6:
		return "stage2"
	case i <= 13:
		return "stage3"
	}
	return "stage4"
}

// convBNAct is torchvision's Conv2dNormActivation: conv (no bias), BN,
// optionally ReLU6, with Keras-style asymmetric padding when asked.
type convBNAct struct {
	conv     *nn.Conv2dLayer
	bn       *nn.BatchNorm2dLayer
	act      bool
	padAfter bool
}

func (c *convBNAct) Forward(x *torch.Tensor) *torch.Tensor {
	h := x
	if c.padAfter {
		h = padBottomRight(x)
	}
	if h != x {
		h = nn.Then(c.conv, h)
	} else {
		h = c.conv.Forward(h)
	}
	h = nn.Then(c.bn, h)
	if c.act {
		h = nn.Then(relu6, h)
	}
	return h
}

var relu6 = nn.Func(func(x *torch.Tensor) *torch.Tensor { return x.Relu6() })

// padBottomRight adds one row of zeros at the bottom and one column at the
// right of an NCHW tensor (Keras' ZeroPadding2D(((0, 1), (0, 1)))).
func padBottomRight(x *torch.Tensor) *torch.Tensor {
	s := x.Shape()
	x = torch.Cat(2, x, torch.Zeros(x.DType(), x.Device(), s[0], s[1], 1, s[3]))
	return torch.Cat(3, x, torch.Zeros(x.DType(), x.Device(), s[0], s[1], s[2]+1, 1))
}

func newConvBNAct(b *nn.Builder, in, out, k, stride, groups int, act bool, c MobileNetV2Config) *convBNAct {
	pad := (k - 1) / 2
	keras := c.KerasPadding && stride == 2
	if keras {
		pad = 0
	}
	l := &convBNAct{act: act, padAfter: keras}
	l.conv = nn.Conv2d(b.SubIndex(0), in, out).Kernel(k).Stride(stride).Padding(pad).Groups(groups).Done()
	l.bn = nn.BatchNorm2d(b.SubIndex(1), out).Eps(c.BNEps).Done()
	return l
}

type invertedResidual struct {
	layers   nn.Sequential
	residual bool
}

func (r *invertedResidual) Forward(x *torch.Tensor) *torch.Tensor {
	y := r.layers.Forward(x)
	if r.residual {
		return nn.Then(nn.Func(func(y *torch.Tensor) *torch.Tensor { return y.Add(x) }), y)
	}
	return y
}

type mobileNetV2 struct {
	features []nn.Layer
	ch3, ch4 int
}

// Features returns features.13's output (96 channels, stride 16) and the
// final 1280-channel map.
func (m *mobileNetV2) Features(x *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
	var f3 *torch.Tensor
	in := x
	for i, l := range m.features {
		y := l.Forward(x)
		if x != in && x != f3 && y != x {
			x.Free()
		}
		x = y
		if i == 13 {
			f3 = x
		}
	}
	return f3, x
}

func (m *mobileNetV2) Channels() (int, int) { return m.ch3, m.ch4 }

// NewMobileNetV2 builds mobilenet_v2 with the shared head (its linear
// layer is classifier.1), or, with c.Hidden, with an MLP head.
func NewMobileNetV2(c MobileNetV2Config, o Options) (Model, error) {
	if c.BNEps == 0 {
		c.BNEps = 1e-5
	}
	s := nn.NewStore()
	root := s.Root()
	fb := func(i int) *nn.Builder { return root.InGroup(mobileNetV2Group(i)).Sub("features").SubIndex(i) }
	m := &mobileNetV2{}
	m.features = append(m.features, newConvBNAct(fb(0), 3, 32, 3, 2, 1, true, c))
	in := 32
	for _, st := range mobileNetV2Settings {
		t, ch, n, stride := st[0], st[1], st[2], st[3]
		for i := 0; i < n; i++ {
			if i > 0 {
				stride = 1
			}
			idx := len(m.features)
			b := fb(idx).Sub("conv")
			hidden := in * t
			blk := &invertedResidual{residual: stride == 1 && in == ch}
			j := 0
			if t != 1 {
				blk.layers = append(blk.layers, newConvBNAct(b.SubIndex(j), in, hidden, 1, 1, 1, true, c))
				j++
			}
			blk.layers = append(blk.layers, newConvBNAct(b.SubIndex(j), hidden, hidden, 3, stride, hidden, true, c))
			j++
			blk.layers = append(blk.layers,
				nn.Conv2d(b.SubIndex(j), hidden, ch).Kernel(1).Done(),
				nn.BatchNorm2d(b.SubIndex(j+1), ch).Eps(c.BNEps).Done())
			m.features = append(m.features, blk)
			in = ch
			if idx == 13 {
				m.ch3 = ch
			}
		}
	}
	m.features = append(m.features, newConvBNAct(fb(len(m.features)), in, 1280, 1, 1, 1, true, c))
	m.ch4 = 1280
	if len(m.features) != 19 || m.ch3 != 96 {
		return nil, fmt.Errorf("models: mobilenet_v2 built %d feature blocks", len(m.features))
	}
	if len(c.Hidden) == 0 {
		return Assemble(root, m, "classifier.1", o)
	}
	return newMLPHead(root, m, c.Hidden, "classifier.1", o)
}

// mlpClassifier is global average pooling, hidden ReLU layers (each
// followed by dropout) and a final linear layer.
type mlpClassifier struct {
	store  *nn.Store
	bb     Backbone
	hidden []*nn.LinearLayer
	drops  []nn.Layer
	fc     *nn.LinearLayer
}

func newMLPHead(root *nn.Builder, bb Backbone, hidden []int, headName string, o Options) (Model, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Pool != "avg" || o.Features != "last" {
		return nil, fmt.Errorf("models: an MLP head supports pool avg and features last only")
	}
	hb := root.InGroup("head")
	m := &mlpClassifier{store: root.Store(), bb: bb}
	_, in := bb.Channels()
	for i, h := range hidden {
		m.hidden = append(m.hidden, nn.Linear(hb.Sub("mlp").SubIndex(i), in, h).Done())
		m.drops = append(m.drops, nn.Dropout(hb, o.Dropout))
		in = h
	}
	m.fc = nn.Linear(hb.Sub(headName), in, o.NumClasses).Done()
	return m, nil
}

func (m *mlpClassifier) Store() *nn.Store { return m.store }

func (m *mlpClassifier) Forward(x *torch.Tensor) *torch.Tensor {
	return m.fc.Forward(m.Embed(x))
}

// EmbedDim is the width of the last hidden layer.
func (m *mlpClassifier) EmbedDim() int { return m.fc.W.T.Shape()[1] }

// Embed is Forward without the final linear layer: the last hidden layer's
// activations (dropout is the identity in evaluation mode, where embeddings
// are taken).
func (m *mlpClassifier) Embed(x *torch.Tensor) *torch.Tensor {
	_, f := m.bb.Features(x)
	h := torch.AdaptiveAvgPool2d(f, 1, 1).Flatten(1, -1)
	for i, l := range m.hidden {
		h = m.drops[i].Forward(l.Forward(h).Relu())
	}
	return h
}
