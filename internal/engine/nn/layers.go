package nn

import (
	"math"

	"imet/internal/engine/torch"
)

// Layer is anything that maps a tensor to a tensor.
type Layer interface {
	Forward(x *torch.Tensor) *torch.Tensor
}

// Func adapts a function to Layer.
type Func func(x *torch.Tensor) *torch.Tensor

// Forward calls f.
func (f Func) Forward(x *torch.Tensor) *torch.Tensor { return f(x) }

// Sequential applies its layers in order, like torch.nn.Sequential (build
// children with Builder.SubIndex to get its names).
type Sequential []Layer

// Forward runs the chain. Intermediate results are freed as soon as the
// next layer has consumed them: autograd keeps its own references to what
// backward needs, so this only lowers peak memory (inference holds one
// activation at a time instead of all of them until the scope closes).
func (s Sequential) Forward(x *torch.Tensor) *torch.Tensor {
	in := x
	for _, l := range s {
		y := l.Forward(x)
		if x != in && y != x {
			x.Free()
		}
		x = y
	}
	return x
}

// Then applies l to x and frees x (unless l returned it): the building
// block for blocks that chain layers by hand.
func Then(l Layer, x *torch.Tensor) *torch.Tensor {
	y := l.Forward(x)
	if y != x {
		x.Free()
	}
	return y
}

// ReLU is the rectifier as a Layer. It works in place on its input, as
// torchvision's ReLU(inplace=True) does, which is safe after convolutions
// and BatchNorm.
var ReLU Layer = Func(func(x *torch.Tensor) *torch.Tensor { return x.Relu_() })

// ReLU6 is min(max(x,0),6) as a Layer.
var ReLU6 Layer = Func(func(x *torch.Tensor) *torch.Tensor { return x.Relu6() })

// Flatten flattens all dims after the batch as a Layer.
var Flatten Layer = Func(func(x *torch.Tensor) *torch.Tensor { return x.Flatten(1, -1) })

// MaxPool is a max-pooling Layer with square kernel k, stride s, padding p.
func MaxPool(k, s, p int, ceil bool) Layer {
	o := torch.PoolOpts{Kernel: [2]int{k, k}, Stride: [2]int{s, s}, Padding: [2]int{p, p}, CeilMode: ceil}
	return Func(func(x *torch.Tensor) *torch.Tensor { return torch.MaxPool2d(x, o) })
}

// AvgPool is an average-pooling Layer (padding counted, as PyTorch's default).
func AvgPool(k, s, p int) Layer {
	o := torch.PoolOpts{Kernel: [2]int{k, k}, Stride: [2]int{s, s}, Padding: [2]int{p, p}}
	return Func(func(x *torch.Tensor) *torch.Tensor { return torch.AvgPool2d(x, o) })
}

// Dropout drops with probability p while the builder's store trains that
// group, and passes through otherwise.
func Dropout(b *Builder, p float64) Layer {
	s, g := b.s, b.group
	return Func(func(x *torch.Tensor) *torch.Tensor {
		if p == 0 || !s.trainingGroup(g) {
			return x
		}
		return torch.Dropout(x, p, true)
	})
}

// Conv2dBuilder configures a convolution before Done creates its weights.
type Conv2dBuilder struct {
	b                        *Builder
	in, out, k               int
	stride, pad, dil, groups int
	bias                     bool
	uniform                  bool
}

// Conv2d starts a 2-d convolution from in to out channels with a 3×3
// kernel, stride 1, no padding, no bias; chain setters, then Done. Weights
// are initialised as torchvision's CNNs do (Kaiming normal, fan-out).
func Conv2d(b *Builder, in, out int) *Conv2dBuilder {
	return &Conv2dBuilder{b: b, in: in, out: out, k: 3, stride: 1, dil: 1, groups: 1}
}

// Kernel sets the square kernel size.
func (c *Conv2dBuilder) Kernel(k int) *Conv2dBuilder { c.k = k; return c }

// Stride sets the stride.
func (c *Conv2dBuilder) Stride(s int) *Conv2dBuilder { c.stride = s; return c }

// Padding sets the zero padding on each side.
func (c *Conv2dBuilder) Padding(p int) *Conv2dBuilder { c.pad = p; return c }

// Dilation sets the dilation.
func (c *Conv2dBuilder) Dilation(d int) *Conv2dBuilder { c.dil = d; return c }

// Groups splits channels into g groups (ResNeXt's cardinality; g = in is
// depthwise).
func (c *Conv2dBuilder) Groups(g int) *Conv2dBuilder { c.groups = g; return c }

// Bias adds a bias term.
func (c *Conv2dBuilder) Bias(on bool) *Conv2dBuilder { c.bias = on; return c }

// DefaultInit uses PyTorch's default nn.Conv2d initialisation, uniform in
// ±1/sqrt(fan_in), instead of Kaiming normal.
func (c *Conv2dBuilder) DefaultInit() *Conv2dBuilder { c.uniform = true; return c }

// Done creates the weights ("weight", and "bias" if asked) and returns the
// layer.
func (c *Conv2dBuilder) Done() *Conv2dLayer {
	l := &Conv2dLayer{opts: torch.ConvOpts{Stride: [2]int{c.stride, c.stride}, Padding: [2]int{c.pad, c.pad},
		Dilation: [2]int{c.dil, c.dil}, Groups: c.groups}}
	fanIn := float64(c.in / c.groups * c.k * c.k)
	w := torch.Zeros(torch.Float32, torch.CPU, c.out, c.in/c.groups, c.k, c.k)
	torch.NoGrad(func() {
		if c.uniform {
			bd := 1 / math.Sqrt(fanIn)
			w.Uniform_(-bd, bd)
		} else {
			w.Normal_(0, math.Sqrt(2/float64(c.out*c.k*c.k)))
		}
	})
	l.W = c.b.Param("weight", w)
	if c.bias {
		bt := torch.Zeros(torch.Float32, torch.CPU, c.out)
		bd := 1 / math.Sqrt(fanIn)
		torch.NoGrad(func() { bt.Uniform_(-bd, bd) })
		l.B = c.b.Param("bias", bt)
	}
	return l
}

// Conv2dLayer is a built convolution.
type Conv2dLayer struct {
	// W is the weight (out, in/groups, k, k); B the bias or nil.
	W, B *Var
	opts torch.ConvOpts
}

// Forward convolves x.
func (l *Conv2dLayer) Forward(x *torch.Tensor) *torch.Tensor {
	var b *torch.Tensor
	if l.B != nil {
		b = l.B.T
	}
	return torch.Conv2d(x, l.W.T, b, l.opts)
}

// BatchNorm2dBuilder configures a BatchNorm2d.
type BatchNorm2dBuilder struct {
	b        *Builder
	c        int
	momentum float64
	eps      float64
	zeroInit bool
}

// BatchNorm2d starts a batch normalisation over c channels with PyTorch's
// defaults (momentum 0.1, eps 1e-5, weight 1, bias 0).
func BatchNorm2d(b *Builder, c int) *BatchNorm2dBuilder {
	return &BatchNorm2dBuilder{b: b, c: c, momentum: 0.1, eps: 1e-5}
}

// Momentum sets the running-statistics momentum.
func (n *BatchNorm2dBuilder) Momentum(m float64) *BatchNorm2dBuilder { n.momentum = m; return n }

// Eps sets the variance epsilon.
func (n *BatchNorm2dBuilder) Eps(e float64) *BatchNorm2dBuilder { n.eps = e; return n }

// ZeroInit starts the scale at 0 (the "zero-init last BN in a residual
// block" trick).
func (n *BatchNorm2dBuilder) ZeroInit() *BatchNorm2dBuilder { n.zeroInit = true; return n }

// Done creates weight, bias, running_mean, running_var and
// num_batches_tracked, as torch.nn.BatchNorm2d's state_dict has them.
func (n *BatchNorm2dBuilder) Done() *BatchNorm2dLayer {
	w0 := 1.0
	if n.zeroInit {
		w0 = 0
	}
	l := &BatchNorm2dLayer{s: n.b.s, group: n.b.group, momentum: n.momentum, eps: n.eps}
	l.W = n.b.Param("weight", torch.Full(w0, torch.Float32, torch.CPU, n.c))
	l.B = n.b.Param("bias", torch.Zeros(torch.Float32, torch.CPU, n.c))
	l.RunningMean = n.b.Buffer("running_mean", torch.Zeros(torch.Float32, torch.CPU, n.c))
	l.RunningVar = n.b.Buffer("running_var", torch.Ones(torch.Float32, torch.CPU, n.c))
	l.NumBatches = n.b.Buffer("num_batches_tracked", torch.Zeros(torch.Int64, torch.CPU))
	return l
}

// BatchNorm2dLayer is a built batch normalisation.
type BatchNorm2dLayer struct {
	// W, B are the affine scale and shift; RunningMean, RunningVar and
	// NumBatches the buffers.
	W, B, RunningMean, RunningVar, NumBatches *Var
	s                                         *Store
	group                                     string
	momentum, eps                             float64
}

// Forward normalises with batch statistics (updating the running ones) in
// training mode, with the running statistics in evaluation mode, when
// the layer's group is frozen, or when the store freezes BatchNorm.
func (l *BatchNorm2dLayer) Forward(x *torch.Tensor) *torch.Tensor {
	train := l.s.trainingGroup(l.group) && !l.s.bnFrozen
	if train {
		torch.NoGrad(func() {
			n := l.NumBatches.T
			n.CopyFrom(n.AddScalar(1))
		})
	}
	return torch.BatchNorm(x, l.W.T, l.B.T, l.RunningMean.T, l.RunningVar.T, train, l.momentum, l.eps)
}

// LinearBuilder configures a fully connected layer.
type LinearBuilder struct {
	b       *Builder
	in, out int
	bias    bool
}

// Linear starts a fully connected layer from in to out features, with bias,
// initialised as torch.nn.Linear.
func Linear(b *Builder, in, out int) *LinearBuilder {
	return &LinearBuilder{b: b, in: in, out: out, bias: true}
}

// Bias turns the bias on or off.
func (l *LinearBuilder) Bias(on bool) *LinearBuilder { l.bias = on; return l }

// Done creates "weight" (out, in) and "bias".
func (l *LinearBuilder) Done() *LinearLayer {
	bd := 1 / math.Sqrt(float64(l.in))
	w := torch.Zeros(torch.Float32, torch.CPU, l.out, l.in)
	torch.NoGrad(func() { w.Uniform_(-bd, bd) })
	o := &LinearLayer{W: l.b.Param("weight", w)}
	if l.bias {
		b := torch.Zeros(torch.Float32, torch.CPU, l.out)
		torch.NoGrad(func() { b.Uniform_(-bd, bd) })
		o.B = l.b.Param("bias", b)
	}
	return o
}

// LinearLayer is a built fully connected layer.
type LinearLayer struct {
	// W is (out, in); B the bias or nil.
	W, B *Var
}

// Forward is x·Wᵀ + B.
func (l *LinearLayer) Forward(x *torch.Tensor) *torch.Tensor {
	var b *torch.Tensor
	if l.B != nil {
		b = l.B.T
	}
	return torch.Linear(x, l.W.T, b)
}
