package torch

/*
#include "loader.h"
*/
import "C"

import "fmt"

func unary(op C.int, name string, t *Tensor) *Tensor {
	var out C.tt
	check(name, C.tt_unary(op, t.h(name), &out))
	return wrap(out)
}

// Relu is max(x, 0).
func (t *Tensor) Relu() *Tensor { return unary(C.TT_UNARY_RELU, "relu", t) }

// Relu_ is Relu in place; it returns an alias of t.
func (t *Tensor) Relu_() *Tensor { return unary(C.TT_UNARY_RELU_INPLACE, "relu_", t) }

// Relu6 is min(max(x, 0), 6), MobileNet's activation.
func (t *Tensor) Relu6() *Tensor { return unary(C.TT_UNARY_RELU6, "relu6", t) }

// Sigmoid is 1/(1+exp(-x)).
func (t *Tensor) Sigmoid() *Tensor { return unary(C.TT_UNARY_SIGMOID, "sigmoid", t) }

// Silu is x*sigmoid(x).
func (t *Tensor) Silu() *Tensor { return unary(C.TT_UNARY_SILU, "silu", t) }

// Tanh is the hyperbolic tangent.
func (t *Tensor) Tanh() *Tensor { return unary(C.TT_UNARY_TANH, "tanh", t) }

// Neg is -x.
func (t *Tensor) Neg() *Tensor { return unary(C.TT_UNARY_NEG, "neg", t) }

// Exp is e^x.
func (t *Tensor) Exp() *Tensor { return unary(C.TT_UNARY_EXP, "exp", t) }

// Log is the natural logarithm.
func (t *Tensor) Log() *Tensor { return unary(C.TT_UNARY_LOG, "log", t) }

// Sqrt is the square root.
func (t *Tensor) Sqrt() *Tensor { return unary(C.TT_UNARY_SQRT, "sqrt", t) }

// Abs is |x|.
func (t *Tensor) Abs() *Tensor { return unary(C.TT_UNARY_ABS, "abs", t) }

// LogSigmoid is log(sigmoid(x)), computed stably.
func (t *Tensor) LogSigmoid() *Tensor { return unary(C.TT_UNARY_LOG_SIGMOID, "log_sigmoid", t) }

func binop(op C.int, name string, a, b *Tensor) *Tensor {
	var out C.tt
	check(name, C.tt_binary(op, a.h(name), b.h(name), &out))
	return wrap(out)
}

// Add is t+o with broadcasting.
func (t *Tensor) Add(o *Tensor) *Tensor { return binop(C.TT_BINARY_ADD, "add", t, o) }

// Add_ adds o to t in place and returns an alias of t, as Python's
// t += o: no new buffer, so one pass over memory instead of a read of
// both and a write of a third. t keeps its shape and dtype, so o must
// broadcast to t and its dtype must cast to t's.
func (t *Tensor) Add_(o *Tensor) *Tensor { return binop(C.TT_BINARY_ADD_INPLACE, "add_", t, o) }

// Sub is t-o with broadcasting.
func (t *Tensor) Sub(o *Tensor) *Tensor { return binop(C.TT_BINARY_SUB, "sub", t, o) }

// Mul is t*o elementwise with broadcasting.
func (t *Tensor) Mul(o *Tensor) *Tensor { return binop(C.TT_BINARY_MUL, "mul", t, o) }

// Div is t/o elementwise with broadcasting.
func (t *Tensor) Div(o *Tensor) *Tensor { return binop(C.TT_BINARY_DIV, "div", t, o) }

// Matmul is the matrix product (batched, broadcast).
func (t *Tensor) Matmul(o *Tensor) *Tensor { return binop(C.TT_BINARY_MATMUL, "matmul", t, o) }

// Maximum is the elementwise maximum.
func (t *Tensor) Maximum(o *Tensor) *Tensor { return binop(C.TT_BINARY_MAXIMUM, "maximum", t, o) }

// Minimum is the elementwise minimum.
func (t *Tensor) Minimum(o *Tensor) *Tensor { return binop(C.TT_BINARY_MINIMUM, "minimum", t, o) }

// Eq is elementwise t == o, as bool.
func (t *Tensor) Eq(o *Tensor) *Tensor { return binop(C.TT_BINARY_EQ, "eq", t, o) }

// Gt is elementwise t > o, as bool.
func (t *Tensor) Gt(o *Tensor) *Tensor { return binop(C.TT_BINARY_GT, "gt", t, o) }

// Lt is elementwise t < o, as bool.
func (t *Tensor) Lt(o *Tensor) *Tensor { return binop(C.TT_BINARY_LT, "lt", t, o) }

func scalar(op C.int, name string, t *Tensor, s float64) *Tensor {
	var out C.tt
	check(name, C.tt_scalar(op, t.h(name), C.double(s), &out))
	return wrap(out)
}

// AddScalar is t+s.
func (t *Tensor) AddScalar(s float64) *Tensor { return scalar(C.TT_SCALAR_ADD, "add_scalar", t, s) }

// MulScalar is t*s.
func (t *Tensor) MulScalar(s float64) *Tensor { return scalar(C.TT_SCALAR_MUL, "mul_scalar", t, s) }

// Pow is t^s.
func (t *Tensor) Pow(s float64) *Tensor { return scalar(C.TT_SCALAR_POW, "pow", t, s) }

// DivScalar is t/s.
func (t *Tensor) DivScalar(s float64) *Tensor { return scalar(C.TT_SCALAR_DIV, "div_scalar", t, s) }

// RSub is s-t.
func (t *Tensor) RSub(s float64) *Tensor { return scalar(C.TT_SCALAR_RSUB, "rsub", t, s) }

// GtScalar is t > s, as bool.
func (t *Tensor) GtScalar(s float64) *Tensor { return scalar(C.TT_SCALAR_GT, "gt_scalar", t, s) }

// LtScalar is t < s, as bool.
func (t *Tensor) LtScalar(s float64) *Tensor { return scalar(C.TT_SCALAR_LT, "lt_scalar", t, s) }

func reduce(op C.int, name string, t *Tensor, keep bool, dims []int) *Tensor {
	d := toI64(dims)
	k := 0
	if keep {
		k = 1
	}
	var out C.tt
	check(name, C.tt_reduce(op, t.h(name), i64p(d), C.int(len(d)), C.int(k), &out))
	return wrap(out)
}

// Sum adds over dims (all of them when none are given).
func (t *Tensor) Sum(dims ...int) *Tensor { return reduce(C.TT_REDUCE_SUM, "sum", t, false, dims) }

// Mean averages over dims (all of them when none are given).
func (t *Tensor) Mean(dims ...int) *Tensor { return reduce(C.TT_REDUCE_MEAN, "mean", t, false, dims) }

// MeanKeep averages over dims keeping them as size 1.
func (t *Tensor) MeanKeep(dims ...int) *Tensor {
	return reduce(C.TT_REDUCE_MEAN, "mean", t, true, dims)
}

// Max is the maximum over dims (all of them when none are given).
func (t *Tensor) Max(dims ...int) *Tensor { return reduce(C.TT_REDUCE_MAX, "max", t, false, dims) }

// Min is the minimum over dims (all of them when none are given).
func (t *Tensor) Min(dims ...int) *Tensor { return reduce(C.TT_REDUCE_MIN, "min", t, false, dims) }

// ConvOpts are conv2d's geometry. Zero Stride and Dilation mean 1, zero
// Groups means 1.
type ConvOpts struct {
	Stride, Padding, Dilation [2]int
	Groups                    int
}

func pair(p [2]int, def int) []int64 {
	o := []int64{int64(p[0]), int64(p[1])}
	for i := range o {
		if o[i] == 0 {
			o[i] = int64(def)
		}
	}
	return o
}

// Conv2d convolves NCHW x with weight w (out, in/groups, kh, kw) and
// optional bias b.
func Conv2d(x, w, b *Tensor, o ConvOpts) *Tensor {
	s, p, d := pair(o.Stride, 1), pair(o.Padding, 0), pair(o.Dilation, 1)
	g := o.Groups
	if g == 0 {
		g = 1
	}
	var out C.tt
	check("conv2d", C.tt_conv2d(x.h("conv2d"), w.h("conv2d"), b.opt("conv2d"), i64p(s), i64p(p), i64p(d),
		C.int64_t(g), &out))
	return wrap(out)
}

// BatchNorm normalises x over its batch and spatial dims. In training it
// uses batch statistics and updates runningMean/runningVar in place with
// momentum; otherwise it uses them. Any of w, b, running stats may be nil.
func BatchNorm(x, w, b, runningMean, runningVar *Tensor, training bool, momentum, eps float64) *Tensor {
	tr := 0
	if training {
		tr = 1
	}
	var out C.tt
	check("batch_norm", C.tt_batch_norm(x.h("batch_norm"), w.opt("batch_norm"), b.opt("batch_norm"),
		runningMean.opt("batch_norm"), runningVar.opt("batch_norm"), C.int(tr), C.double(momentum),
		C.double(eps), &out))
	return wrap(out)
}

// PoolOpts are pooling geometry; zero Stride means the kernel size.
type PoolOpts struct {
	Kernel, Stride, Padding [2]int
	CeilMode                bool
	// CountIncludePad (average pooling) counts padding in the divisor, as
	// PyTorch does by default; ExcludePad turns that off.
	ExcludePad bool
}

func (o PoolOpts) geom() (k, s, p []int64) {
	k = pair(o.Kernel, 1)
	s = pair(o.Stride, 0)
	if s[0] == 0 {
		s[0] = k[0]
	}
	if s[1] == 0 {
		s[1] = k[1]
	}
	return k, s, pair(o.Padding, 0)
}

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// MaxPool2d is 2-d max pooling.
func MaxPool2d(x *Tensor, o PoolOpts) *Tensor {
	k, s, p := o.geom()
	var out C.tt
	check("max_pool2d", C.tt_max_pool2d(x.h("max_pool2d"), i64p(k), i64p(s), i64p(p), b2i(o.CeilMode), &out))
	return wrap(out)
}

// AvgPool2d is 2-d average pooling.
func AvgPool2d(x *Tensor, o PoolOpts) *Tensor {
	k, s, p := o.geom()
	var out C.tt
	check("avg_pool2d", C.tt_avg_pool2d(x.h("avg_pool2d"), i64p(k), i64p(s), i64p(p), b2i(o.CeilMode),
		b2i(!o.ExcludePad), &out))
	return wrap(out)
}

// AdaptiveAvgPool2d averages x down to h×w.
func AdaptiveAvgPool2d(x *Tensor, h, w int) *Tensor {
	var out C.tt
	check("adaptive_avg_pool2d", C.tt_adaptive_pool2d(x.h("adaptive_avg_pool2d"), 0, C.int64_t(h), C.int64_t(w), &out))
	return wrap(out)
}

// AdaptiveMaxPool2d max-pools x down to h×w.
func AdaptiveMaxPool2d(x *Tensor, h, w int) *Tensor {
	var out C.tt
	check("adaptive_max_pool2d", C.tt_adaptive_pool2d(x.h("adaptive_max_pool2d"), 1, C.int64_t(h), C.int64_t(w), &out))
	return wrap(out)
}

// Linear is x·wᵀ + b (b may be nil).
func Linear(x, w, b *Tensor) *Tensor {
	var out C.tt
	check("linear", C.tt_linear(x.h("linear"), w.h("linear"), b.opt("linear"), &out))
	return wrap(out)
}

// Cat concatenates tensors along dim.
func Cat(dim int, ts ...*Tensor) *Tensor {
	if len(ts) == 0 {
		panic(&Error{Op: "cat", Msg: "no tensors"})
	}
	hs := make([]C.tt, len(ts))
	for i, t := range ts {
		hs[i] = t.h("cat")
	}
	var out C.tt
	check("cat", C.tt_cat(&hs[0], C.int(len(hs)), C.int64_t(dim), &out))
	return wrap(out)
}

// Flatten merges dims start..end (inclusive; negative counts from the end).
func (t *Tensor) Flatten(start, end int) *Tensor {
	var out C.tt
	check("flatten", C.tt_flatten(t.h("flatten"), C.int64_t(start), C.int64_t(end), &out))
	return wrap(out)
}

// Reshape gives t a new shape (one dim may be -1).
func (t *Tensor) Reshape(shape ...int) *Tensor {
	s := toI64(shape)
	var out C.tt
	check("reshape", C.tt_reshape(t.h("reshape"), i64p(s), C.int(len(s)), &out))
	return wrap(out)
}

// Permute reorders dims.
func (t *Tensor) Permute(dims ...int) *Tensor {
	s := toI64(dims)
	var out C.tt
	check("permute", C.tt_permute(t.h("permute"), i64p(s), C.int(len(s)), &out))
	return wrap(out)
}

// Narrow is the slice [start, start+n) along dim, sharing memory.
func (t *Tensor) Narrow(dim, start, n int) *Tensor {
	var out C.tt
	check("narrow", C.tt_narrow(t.h("narrow"), C.int64_t(dim), C.int64_t(start), C.int64_t(n), &out))
	return wrap(out)
}

// IndexSelect gathers the entries idx (int64) along dim.
func (t *Tensor) IndexSelect(dim int, idx *Tensor) *Tensor {
	var out C.tt
	check("index_select", C.tt_index_select(t.h("index_select"), C.int64_t(dim), idx.h("index_select"), &out))
	return wrap(out)
}

// Dropout zeroes elements with probability p and rescales the rest when
// train is true; otherwise it returns x unchanged.
func Dropout(x *Tensor, p float64, train bool) *Tensor {
	var out C.tt
	check("dropout", C.tt_dropout(x.h("dropout"), C.double(p), b2i(train), &out))
	return wrap(out)
}

// Softmax along dim.
func (t *Tensor) Softmax(dim int) *Tensor {
	var out C.tt
	check("softmax", C.tt_softmax(t.h("softmax"), C.int64_t(dim), 0, &out))
	return wrap(out)
}

// LogSoftmax along dim.
func (t *Tensor) LogSoftmax(dim int) *Tensor {
	var out C.tt
	check("log_softmax", C.tt_softmax(t.h("log_softmax"), C.int64_t(dim), 1, &out))
	return wrap(out)
}

// Clamp limits values to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor {
	var out C.tt
	check("clamp", C.tt_clamp(t.h("clamp"), C.double(lo), C.double(hi), &out))
	return wrap(out)
}

// Argmax is the index of the largest value along dim.
func (t *Tensor) Argmax(dim int) *Tensor {
	var out C.tt
	check("argmax", C.tt_argmax(t.h("argmax"), C.int64_t(dim), &out))
	return wrap(out)
}

// Reduction says how a loss combines its elements.
type Reduction int

// Reductions, with PyTorch's codes.
const (
	ReduceNone Reduction = C.TT_REDUCTION_NONE
	ReduceMean Reduction = C.TT_REDUCTION_MEAN
	ReduceSum  Reduction = C.TT_REDUCTION_SUM
)

// BCEWithLogits is binary cross-entropy on logits x against targets y in
// [0,1], with optional elementwise weight and per-class posWeight (nil for
// none), as torch.nn.functional.binary_cross_entropy_with_logits.
func BCEWithLogits(x, y, weight, posWeight *Tensor, r Reduction) *Tensor {
	if r < ReduceNone || r > ReduceSum {
		panic(&Error{Op: "bce_with_logits", Msg: fmt.Sprintf("unknown reduction %d", r)})
	}
	var out C.tt
	check("bce_with_logits", C.tt_bce_logits(x.h("bce"), y.h("bce"), weight.opt("bce"), posWeight.opt("bce"),
		C.int(r), &out))
	return wrap(out)
}

// TopK returns the k largest values along dim, sorted descending, and their
// int64 indices: the selection a nearest-neighbour search keeps of each block
// of similarities, so that only k columns per row leave the device.
func (t *Tensor) TopK(k, dim int) (values, indices *Tensor) {
	var v, i C.tt
	check("topk", C.tt_topk(t.h("topk"), C.int64_t(k), C.int64_t(dim), &v, &i))
	return wrap(v), wrap(i)
}
