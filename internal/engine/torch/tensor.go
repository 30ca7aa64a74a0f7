package torch

/*
#include "loader.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

func i64p(s []int64) *C.int64_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0]))
}

func toI64(s []int) []int64 {
	o := make([]int64, len(s))
	for i, v := range s {
		o[i] = int64(v)
	}
	return o
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func fromData(op string, p unsafe.Pointer, n int, dt DType, shape []int) *Tensor {
	if numel(shape) != n {
		panic(&Error{Op: op, Msg: fmt.Sprintf("%d values do not fill shape %v", n, shape)})
	}
	var dummy [8]byte
	if n == 0 {
		p = unsafe.Pointer(&dummy[0])
	}
	s := toI64(shape)
	var out C.tt
	check(op, C.tt_from_data(p, i64p(s), C.int(len(s)), C.int(dt), &out))
	return wrap(out)
}

// FromFloat32 copies data into a new CPU float32 tensor of the given shape.
func FromFloat32(data []float32, shape ...int) *Tensor {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return fromData("from_float32", p, len(data), Float32, shape)
}

// FromInt64 copies data into a new CPU int64 tensor (indices, labels).
func FromInt64(data []int64, shape ...int) *Tensor {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return fromData("from_int64", p, len(data), Int64, shape)
}

// FromBytes builds a CPU tensor of dtype dt from raw little-endian element
// bytes, as weight files store them.
func FromBytes(data []byte, dt DType, shape ...int) *Tensor {
	if dt.Size() == 0 || len(data)%dt.Size() != 0 {
		panic(&Error{Op: "from_bytes", Msg: fmt.Sprintf("%d bytes are not whole %v elements", len(data), dt)})
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return fromData("from_bytes", p, len(data)/dt.Size(), dt, shape)
}

// Full is a new tensor of the given shape filled with v.
func Full(v float64, dt DType, dev Device, shape ...int) *Tensor {
	s := toI64(shape)
	var out C.tt
	check("full", C.tt_full(i64p(s), C.int(len(s)), C.double(v), C.int(dt), dev.code(), &out))
	return wrap(out)
}

// Zeros is Full(0, ...).
func Zeros(dt DType, dev Device, shape ...int) *Tensor { return Full(0, dt, dev, shape...) }

// Ones is Full(1, ...).
func Ones(dt DType, dev Device, shape ...int) *Tensor { return Full(1, dt, dev, shape...) }

// Randn draws standard normal values from libtorch's generator (ManualSeed).
func Randn(dt DType, dev Device, shape ...int) *Tensor {
	s := toI64(shape)
	var out C.tt
	check("randn", C.tt_randn(i64p(s), C.int(len(s)), C.int(dt), dev.code(), &out))
	return wrap(out)
}

// Rand draws uniform values in [0, 1).
func Rand(dt DType, dev Device, shape ...int) *Tensor {
	s := toI64(shape)
	var out C.tt
	check("rand", C.tt_rand(i64p(s), C.int(len(s)), C.int(dt), dev.code(), &out))
	return wrap(out)
}

// Arange is 0, 1, ..., n-1.
func Arange(n int, dt DType, dev Device) *Tensor {
	var out C.tt
	check("arange", C.tt_arange(C.int64_t(n), C.int(dt), dev.code(), &out))
	return wrap(out)
}

type info struct {
	shape        []int
	dtype        DType
	device       Device
	requiresGrad bool
}

func (t *Tensor) info() info {
	var nd, dt, dev, rg C.int
	var shape [16]C.int64_t
	check("info", C.tt_info(t.h("info"), &nd, &shape[0], &dt, &dev, &rg))
	s := make([]int, int(nd))
	for i := range s {
		s[i] = int(shape[i])
	}
	return info{s, DType(dt), deviceOf(dev), rg != 0}
}

// Shape is the tensor's size along each dimension.
func (t *Tensor) Shape() []int { return t.info().shape }

// Dim is the number of dimensions.
func (t *Tensor) Dim() int { return len(t.info().shape) }

// Numel is the number of elements.
func (t *Tensor) Numel() int { return numel(t.info().shape) }

// DType is the element type.
func (t *Tensor) DType() DType { return t.info().dtype }

// Device is where the tensor lives.
func (t *Tensor) Device() Device { return t.info().device }

// RequiresGrad reports whether autograd tracks the tensor.
func (t *Tensor) RequiresGrad() bool { return t.info().requiresGrad }

func (t *Tensor) String() string {
	if t == nil || t.p == nil {
		return "Tensor(freed)"
	}
	i := t.info()
	return fmt.Sprintf("Tensor(%v, %v, %v)", i.shape, i.dtype, i.device)
}

// Bytes copies the elements out in row-major order as raw bytes.
func (t *Tensor) Bytes() []byte {
	i := t.info()
	b := make([]byte, numel(i.shape)*i.dtype.Size())
	if len(b) == 0 {
		return b
	}
	check("bytes", C.tt_copy_out(t.h("bytes"), unsafe.Pointer(&b[0]), C.int64_t(len(b))))
	return b
}

// Float32s copies the elements out as float32, converting if needed.
func (t *Tensor) Float32s() []float32 {
	src := t
	if t.DType() != Float32 {
		src = t.To(Float32)
		defer src.Free()
	}
	o := make([]float32, src.Numel())
	if len(o) == 0 {
		return o
	}
	check("float32s", C.tt_copy_out(src.h("float32s"), unsafe.Pointer(&o[0]), C.int64_t(4*len(o))))
	return o
}

// Int64s copies the elements out as int64, converting if needed.
func (t *Tensor) Int64s() []int64 {
	src := t
	if t.DType() != Int64 {
		src = t.To(Int64)
		defer src.Free()
	}
	o := make([]int64, src.Numel())
	if len(o) == 0 {
		return o
	}
	check("int64s", C.tt_copy_out(src.h("int64s"), unsafe.Pointer(&o[0]), C.int64_t(8*len(o))))
	return o
}

// Item is the value of a one-element tensor.
func (t *Tensor) Item() float64 {
	var v C.double
	check("item", C.tt_item(t.h("item"), &v))
	return float64(v)
}

// ---- autograd ----

// SetRequiresGrad turns gradient tracking on or off for a leaf tensor and
// returns it.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	b := 0
	if on {
		b = 1
	}
	check("set_requires_grad", C.tt_set_requires_grad(t.h("set_requires_grad"), C.int(b)))
	return t
}

// Grad is the accumulated gradient of a leaf, or nil when none exists. The
// returned handle shares memory with the gradient.
func (t *Tensor) Grad() *Tensor {
	var out C.tt
	check("grad", C.tt_grad(t.h("grad"), &out))
	return wrap(out)
}

// Backward computes gradients of the scalar t with respect to every leaf
// that requires them, accumulating into their Grad.
func (t *Tensor) Backward() { check("backward", C.tt_backward(t.h("backward"))) }

// ZeroGrad drops the accumulated gradient (like set_to_none=True).
func (t *Tensor) ZeroGrad() { check("zero_grad", C.tt_zero_grad(t.h("zero_grad"))) }

// Detach is t cut from the autograd graph, sharing memory.
func (t *Tensor) Detach() *Tensor {
	var out C.tt
	check("detach", C.tt_detach(t.h("detach"), &out))
	return wrap(out)
}

// Clone is a copy with its own memory (recorded by autograd).
func (t *Tensor) Clone() *Tensor {
	var out C.tt
	check("clone", C.tt_clone(t.h("clone"), &out))
	return wrap(out)
}

// ---- conversion ----

// To converts the element type, keeping the device.
func (t *Tensor) To(dt DType) *Tensor { return t.ToDevice(dt, t.Device()) }

// ToDevice converts element type and device at once.
func (t *Tensor) ToDevice(dt DType, dev Device) *Tensor {
	var out C.tt
	check("to", C.tt_to(t.h("to"), C.int(dt), dev.code(), &out))
	return wrap(out)
}

// ToDeviceAsync is t on dev, element type kept, copied without waiting
// when t lies in pinned host memory and dev is a GPU (PyTorch's
// non_blocking=True): the GPU's later work on the result queues behind the
// copy, and libtorch keeps the pinned block alive until the copy is done,
// so t may be freed at once.
func (t *Tensor) ToDeviceAsync(dev Device) *Tensor {
	var out C.tt
	check("to_device", C.tt_to_device(t.h("to_device"), dev.code(), 1, &out))
	return wrap(out)
}

// PinnedFromFloat32 copies data into a new float32 host tensor in
// page-locked (pinned) memory, which a GPU copies from asynchronously.
// It needs a CUDA build of libtorch.
func PinnedFromFloat32(data []float32, shape ...int) *Tensor {
	if numel(shape) != len(data) {
		panic(&Error{Op: "pinned_from_float32", Msg: fmt.Sprintf("%d values do not fill shape %v", len(data), shape)})
	}
	var dummy [4]byte
	p := unsafe.Pointer(&dummy[0])
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	s := toI64(shape)
	var out C.tt
	check("pinned_from_float32", C.tt_from_data_pinned(p, i64p(s), C.int(len(s)), C.int(Float32), &out))
	return wrap(out)
}

// IsPinned reports whether t lies in pinned host memory.
func (t *Tensor) IsPinned() bool {
	var v C.int
	check("is_pinned", C.tt_is_pinned(t.h("is_pinned"), &v))
	return v != 0
}

// Upload copies a host batch (float32, row-major) to a new tensor on dev.
// For a GPU the data goes through pinned memory with an asynchronous copy,
// as a PyTorch DataLoader with pin_memory=True and .to(non_blocking=True)
// does: data may be reused as soon as Upload returns, while the copy and
// the work queued after it run on the GPU. On the CPU it is FromFloat32.
func Upload(data []float32, dev Device, shape ...int) *Tensor {
	if !dev.IsCUDA() {
		return FromFloat32(data, shape...)
	}
	staging := PinnedFromFloat32(data, shape...)
	defer staging.Free()
	return staging.ToDeviceAsync(dev)
}

// Contiguous is t laid out row-major (NCHW for images).
func (t *Tensor) Contiguous() *Tensor {
	var out C.tt
	check("contiguous", C.tt_contiguous(t.h("contiguous"), 0, &out))
	return wrap(out)
}

// ChannelsLast is a 4-d t laid out NHWC in memory (shape unchanged), the
// faster layout for convolutions on CPU with oneDNN.
func (t *Tensor) ChannelsLast() *Tensor {
	var out C.tt
	check("channels_last", C.tt_contiguous(t.h("channels_last"), 1, &out))
	return wrap(out)
}

// IsChannelsLast reports whether t is a 4-d NHWC-laid-out tensor.
func (t *Tensor) IsChannelsLast() bool {
	var v C.int
	check("is_channels_last", C.tt_is_channels_last(t.h("is_channels_last"), &v))
	return v != 0
}

// ---- in place (for initialisation and optimisers; use under NoGrad) ----

// CopyFrom overwrites t's elements with src's (broadcast, converted).
func (t *Tensor) CopyFrom(src *Tensor) {
	check("copy_", C.tt_copy_(t.h("copy_"), src.h("copy_")))
}

// Fill_ sets every element to v.
func (t *Tensor) Fill_(v float64) { check("fill_", C.tt_fill_(t.h("fill_"), C.double(v))) }

// Uniform_ refills t from U(lo, hi).
func (t *Tensor) Uniform_(lo, hi float64) {
	check("uniform_", C.tt_uniform_(t.h("uniform_"), C.double(lo), C.double(hi)))
}

// Normal_ refills t from N(mean, std²).
func (t *Tensor) Normal_(mean, std float64) {
	check("normal_", C.tt_normal_(t.h("normal_"), C.double(mean), C.double(std)))
}

// AdamWStep applies one torch.optim.AdamW update (amsgrad off) to parameter
// p with gradient g and moment buffers m, v; step counts from 1.
func AdamWStep(p, g, m, v *Tensor, lr, beta1, beta2, eps, weightDecay float64, step int) {
	check("adamw_step", C.tt_adamw_step(p.h("adamw"), g.h("adamw"), m.h("adamw"), v.h("adamw"),
		C.double(lr), C.double(beta1), C.double(beta2), C.double(eps), C.double(weightDecay), C.int64_t(step)))
}

func handles(op string, ts []*Tensor) (*C.tt, C.int) {
	if len(ts) == 0 {
		return nil, 0
	}
	hs := make([]C.tt, len(ts))
	for i, t := range ts {
		hs[i] = t.h(op)
	}
	return &hs[0], C.int(len(hs))
}

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ with the 2-norm: when the
// norm of all grads taken together exceeds maxNorm, each is scaled in place
// by maxNorm/(norm+1e-6). It returns that total norm (before clipping).
func ClipGradNorm(grads []*Tensor, maxNorm float64) float64 {
	p, n := handles("clip_grad_norm_", grads)
	var total C.double
	check("clip_grad_norm_", C.tt_clip_grad_norm_(p, n, C.double(maxNorm), &total))
	return float64(total)
}

// AmpUnscale is the unscaling half of PyTorch's GradScaler: every gradient
// is multiplied in place by invScale (rounded to float32), and the result
// says whether any held an inf or NaN before. All grads must be on one
// device; on a GPU this is at::_amp_foreach_non_finite_check_and_unscale_,
// with one host sync to read the flag.
func AmpUnscale(grads []*Tensor, invScale float64) (foundInf bool) {
	p, n := handles("amp_unscale_", grads)
	var found C.int
	check("amp_unscale_", C.tt_amp_unscale_(p, n, C.double(invScale), &found))
	return found != 0
}

// SGDStep applies one torch.optim.SGD update to p with gradient g; buf is the
// momentum buffer (ignored when momentum is 0) and first says it has never
// been filled.
func SGDStep(p, g, buf *Tensor, lr, momentum, dampening, weightDecay float64, nesterov, first bool) {
	n, f := 0, 0
	if nesterov {
		n = 1
	}
	if first {
		f = 1
	}
	check("sgd_step", C.tt_sgd_step(p.h("sgd"), g.h("sgd"), buf.opt("sgd"), C.double(lr), C.double(momentum),
		C.double(dampening), C.double(weightDecay), C.int(n), C.int(f)))
}
