package models

import (
	"strings"

	"imet/internal/engine/nn"
	"imet/internal/engine/torch"
)

// torchvision's inception_v3, named as its state_dict: Conv2d_1a_3x3 ...
// Conv2d_4a_3x3, Mixed_5b ... Mixed_7c (each BasicConv2d is X.conv and
// X.bn, batch-norm eps 1e-3), fc. The auxiliary classifier (AuxLogits) is
// left out: it only serves as an extra training loss in the original
// recipe, and at 299px only; the "torchvision" key map drops its keys from
// pretrained files.
//
// Input: torchvision's pretrained inception_v3 was trained on inputs in
// [-1, 1] (Google's preprocessing), yet is documented, like every other
// torchvision model, to take ImageNet-normalised inputs. It bridges the two
// with transform_input=True, which this model always applies, as
// torchvision does whenever pretrained weights are asked for: each channel
// c of the normalised input becomes x*std[c]/0.5 + (mean[c]-0.5)/0.5. So
// feed it the same normalised images as every other model in the zoo.

func init() {
	Register("inception_v3", Spec{
		Build: func(o Options) (Model, error) {
			if o.Variant == VariantKeras {
				return NewInceptionV3(InceptionV3Config{PoolExcludePad: true}, o)
			}
			return NewInceptionV3(InceptionV3Config{TransformInput: true}, o)
		},
		Source:   "torchvision",
		Variants: map[string]string{VariantKeras: "no input transform (inputs in [0, 1]), pool branches average over in-image pixels (TensorFlow's same padding)"},
		KeyMaps: map[string]func(string) (string, bool){"torchvision": func(k string) (string, bool) {
			return k, !strings.HasPrefix(k, "AuxLogits.")
		}},
		InputSize:  299,
		Loads:      "torchvision `.pth`; a Keras InceptionV3 as tfjs (nsfwjs' `inception_v3` directory) with `from: keras`, `variant: keras`",
		KeyMapNote: "`AuxLogits.*` dropped (the zoo's inception has no auxiliary head)",
	})
}

// basicConv is torchvision's BasicConv2d: conv (no bias), BN (eps 1e-3),
// ReLU, with a possibly non-square kernel.
type basicConv struct {
	w    *nn.Var
	opts torch.ConvOpts
	bn   *nn.BatchNorm2dLayer
}

func (c *basicConv) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Then(nn.ReLU, nn.Then(c.bn, torch.Conv2d(x, c.w.T, nil, c.opts)))
}

// chain applies layers in order, freeing each intermediate but not x.
func chain(x *torch.Tensor, layers ...nn.Layer) *torch.Tensor {
	return nn.Sequential(layers).Forward(x)
}

// catFree concatenates along channels and frees the parts.
func catFree(parts ...*torch.Tensor) *torch.Tensor {
	out := torch.Cat(1, parts...)
	for _, p := range parts {
		p.Free()
	}
	return out
}

// pooled runs l on a 3x3 average pool of x, freeing the pooled map.
func pooled(l nn.Layer, x *torch.Tensor, excludePad bool) *torch.Tensor {
	return nn.Then(l, avgPool3(x, excludePad))
}

// newBasicConv registers name.conv.weight (out, in, kh, kw) and name.bn.*.
func newBasicConv(b *nn.Builder, name string, in, out, kh, kw, stride, ph, pw int) *basicConv {
	sb := b.Sub(name)
	w := torch.Zeros(torch.Float32, torch.CPU, out, in, kh, kw)
	torch.NoGrad(func() {
		// torchvision draws from a truncated normal of std 0.1; a plain
		// normal of the same scale trains alike.
		w.Normal_(0, 0.1)
	})
	c := &basicConv{
		w:    sb.Sub("conv").Param("weight", w),
		opts: torch.ConvOpts{Stride: [2]int{stride, stride}, Padding: [2]int{ph, pw}},
	}
	c.bn = nn.BatchNorm2d(sb.Sub("bn"), out).Eps(0.001).Done()
	return c
}

// avgPool3 is the pool branch's 3x3 average; excludePad divides by the
// in-image count at borders, as TensorFlow's "same" pooling does
// (PyTorch's default counts the zero padding).
func avgPool3(x *torch.Tensor, excludePad bool) *torch.Tensor {
	return torch.AvgPool2d(x, torch.PoolOpts{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}, Padding: [2]int{1, 1}, ExcludePad: excludePad})
}

func maxPool3s2(x *torch.Tensor) *torch.Tensor {
	return torch.MaxPool2d(x, torch.PoolOpts{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}})
}

type inceptionA struct {
	b1, b5a, b5b, d1, d2, d3, pool *basicConv
	excl                           bool
}

func newInceptionA(b *nn.Builder, in, poolFeatures int, excl bool) *inceptionA {
	return &inceptionA{excl: excl,
		b1:   newBasicConv(b, "branch1x1", in, 64, 1, 1, 1, 0, 0),
		b5a:  newBasicConv(b, "branch5x5_1", in, 48, 1, 1, 1, 0, 0),
		b5b:  newBasicConv(b, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2),
		d1:   newBasicConv(b, "branch3x3dbl_1", in, 64, 1, 1, 1, 0, 0),
		d2:   newBasicConv(b, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1),
		d3:   newBasicConv(b, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1),
		pool: newBasicConv(b, "branch_pool", in, poolFeatures, 1, 1, 1, 0, 0),
	}
}

func (m *inceptionA) Forward(x *torch.Tensor) *torch.Tensor {
	return catFree(
		m.b1.Forward(x),
		chain(x, m.b5a, m.b5b),
		chain(x, m.d1, m.d2, m.d3),
		pooled(m.pool, x, m.excl))
}

type inceptionB struct{ b3, d1, d2, d3 *basicConv }

func newInceptionB(b *nn.Builder, in int) *inceptionB {
	return &inceptionB{
		b3: newBasicConv(b, "branch3x3", in, 384, 3, 3, 2, 0, 0),
		d1: newBasicConv(b, "branch3x3dbl_1", in, 64, 1, 1, 1, 0, 0),
		d2: newBasicConv(b, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1),
		d3: newBasicConv(b, "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0),
	}
}

func (m *inceptionB) Forward(x *torch.Tensor) *torch.Tensor {
	return catFree(
		m.b3.Forward(x),
		chain(x, m.d1, m.d2, m.d3),
		maxPool3s2(x))
}

type inceptionC struct {
	b1         *basicConv
	s1, s2, s3 *basicConv
	d          [5]*basicConv
	pool       *basicConv
	excl       bool
}

func newInceptionC(b *nn.Builder, in, c7 int, excl bool) *inceptionC {
	return &inceptionC{excl: excl,
		b1: newBasicConv(b, "branch1x1", in, 192, 1, 1, 1, 0, 0),
		s1: newBasicConv(b, "branch7x7_1", in, c7, 1, 1, 1, 0, 0),
		s2: newBasicConv(b, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3),
		s3: newBasicConv(b, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0),
		d: [5]*basicConv{
			newBasicConv(b, "branch7x7dbl_1", in, c7, 1, 1, 1, 0, 0),
			newBasicConv(b, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0),
			newBasicConv(b, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3),
			newBasicConv(b, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0),
			newBasicConv(b, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3),
		},
		pool: newBasicConv(b, "branch_pool", in, 192, 1, 1, 1, 0, 0),
	}
}

func (m *inceptionC) Forward(x *torch.Tensor) *torch.Tensor {
	return catFree(
		m.b1.Forward(x),
		chain(x, m.s1, m.s2, m.s3),
		chain(x, m.d[0], m.d[1], m.d[2], m.d[3], m.d[4]),
		pooled(m.pool, x, m.excl))
}

type inceptionD struct{ a1, a2, b1, b2, b3, b4 *basicConv }

func newInceptionD(b *nn.Builder, in int) *inceptionD {
	return &inceptionD{
		a1: newBasicConv(b, "branch3x3_1", in, 192, 1, 1, 1, 0, 0),
		a2: newBasicConv(b, "branch3x3_2", 192, 320, 3, 3, 2, 0, 0),
		b1: newBasicConv(b, "branch7x7x3_1", in, 192, 1, 1, 1, 0, 0),
		b2: newBasicConv(b, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3),
		b3: newBasicConv(b, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0),
		b4: newBasicConv(b, "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0),
	}
}

func (m *inceptionD) Forward(x *torch.Tensor) *torch.Tensor {
	return catFree(
		chain(x, m.a1, m.a2),
		chain(x, m.b1, m.b2, m.b3, m.b4),
		maxPool3s2(x))
}

type inceptionE struct {
	b1, a1, a2a, a2b, d1, d2, d3a, d3b, pool *basicConv
	excl                                     bool
}

func newInceptionE(b *nn.Builder, in int, excl bool) *inceptionE {
	return &inceptionE{excl: excl,
		b1:   newBasicConv(b, "branch1x1", in, 320, 1, 1, 1, 0, 0),
		a1:   newBasicConv(b, "branch3x3_1", in, 384, 1, 1, 1, 0, 0),
		a2a:  newBasicConv(b, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1),
		a2b:  newBasicConv(b, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0),
		d1:   newBasicConv(b, "branch3x3dbl_1", in, 448, 1, 1, 1, 0, 0),
		d2:   newBasicConv(b, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1),
		d3a:  newBasicConv(b, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1),
		d3b:  newBasicConv(b, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0),
		pool: newBasicConv(b, "branch_pool", in, 192, 1, 1, 1, 0, 0),
	}
}

func (m *inceptionE) Forward(x *torch.Tensor) *torch.Tensor {
	a := m.a1.Forward(x)
	d := chain(x, m.d1, m.d2)
	out := catFree(
		m.b1.Forward(x),
		m.a2a.Forward(a), m.a2b.Forward(a),
		m.d3a.Forward(d), m.d3b.Forward(d),
		pooled(m.pool, x, m.excl))
	a.Free()
	d.Free()
	return out
}

type inception struct {
	stem, stage1   nn.Sequential
	stage2, stage3 nn.Sequential
	stage4         nn.Sequential
	transform      bool
}

// transformInput is torchvision's transform_input: from ImageNet
// normalisation to the [-1, 1] scaling Google trained with.
func transformInput(x *torch.Tensor) *torch.Tensor {
	mean := [3]float64{0.485, 0.456, 0.406}
	std := [3]float64{0.229, 0.224, 0.225}
	ch := make([]*torch.Tensor, 3)
	for c := 0; c < 3; c++ {
		n := x.Narrow(1, c, 1)
		m := n.MulScalar(std[c] / 0.5)
		ch[c] = m.AddScalar((mean[c] - 0.5) / 0.5)
		n.Free()
		m.Free()
	}
	return catFree(ch...)
}

// Features returns Mixed_6e's output (768 channels, stride 16) and
// Mixed_7c's (2048 channels).
func (m *inception) Features(x *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
	if m.transform {
		x = transformInput(x)
		x = nn.Then(m.stage1, nn.Then(m.stem, x))
	} else {
		x = nn.Then(m.stage1, m.stem.Forward(x))
	}
	f3 := nn.Then(m.stage3, nn.Then(m.stage2, x))
	return f3, m.stage4.Forward(f3)
}

func (m *inception) Channels() (int, int) { return 768, 2048 }

// InceptionV3Config selects variants; the registry's inception_v3 is
// torchvision's, {TransformInput: true}.
type InceptionV3Config struct {
	// TransformInput converts ImageNet-normalised inputs to the [-1, 1]
	// scaling the pretrained weights were trained with (see above).
	TransformInput bool
	// PoolExcludePad averages the pool branches over in-image pixels only,
	// as Keras/TensorFlow's InceptionV3 does.
	PoolExcludePad bool
	// Hidden inserts fully connected ReLU layers (mlp.0, mlp.1, ...)
	// before fc, as nsfwjs' head (256, 128).
	Hidden []int
}

// NewInceptionV3 builds inception_v3 (without the auxiliary classifier)
// with the shared head (its linear layer is "fc"), or with c.Hidden an MLP
// head. It needs inputs of at least 75x75.
func NewInceptionV3(c InceptionV3Config, o Options) (Model, error) {
	ex := c.PoolExcludePad
	s := nn.NewStore()
	root := s.Root()
	stem := root.InGroup("stem")
	s1 := root.InGroup("stage1")
	s2 := root.InGroup("stage2")
	s3 := root.InGroup("stage3")
	s4 := root.InGroup("stage4")
	m := &inception{transform: c.TransformInput}
	m.stem = nn.Sequential{
		newBasicConv(stem, "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0),
		newBasicConv(stem, "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0),
		newBasicConv(stem, "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1),
		nn.Func(maxPool3s2),
	}
	m.stage1 = nn.Sequential{
		newBasicConv(s1, "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0),
		newBasicConv(s1, "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0),
		nn.Func(maxPool3s2),
	}
	m.stage2 = nn.Sequential{
		newInceptionA(s2.Sub("Mixed_5b"), 192, 32, ex),
		newInceptionA(s2.Sub("Mixed_5c"), 256, 64, ex),
		newInceptionA(s2.Sub("Mixed_5d"), 288, 64, ex),
	}
	m.stage3 = nn.Sequential{
		newInceptionB(s3.Sub("Mixed_6a"), 288),
		newInceptionC(s3.Sub("Mixed_6b"), 768, 128, ex),
		newInceptionC(s3.Sub("Mixed_6c"), 768, 160, ex),
		newInceptionC(s3.Sub("Mixed_6d"), 768, 160, ex),
		newInceptionC(s3.Sub("Mixed_6e"), 768, 192, ex),
	}
	m.stage4 = nn.Sequential{
		newInceptionD(s4.Sub("Mixed_7a"), 768),
		newInceptionE(s4.Sub("Mixed_7b"), 1280, ex),
		newInceptionE(s4.Sub("Mixed_7c"), 2048, ex),
	}
	if len(c.Hidden) > 0 {
		return newMLPHead(root, m, c.Hidden, "fc", o)
	}
	return Assemble(root, m, "fc", o)
}
