// Package torch drives libtorch (PyTorch's C++ core) from Go through the
// extern "C" shim in package shim. It offers tensors with autograd, the
// operations convolutional networks and their losses need, and the
// per-thread switches (grad mode, autocast, thread count) a training loop
// sets.
//
// # Errors
//
// Operations panic with a *Error carrying libtorch's message (a shape
// mismatch, a dtype clash) instead of returning one, so model code reads
// like the maths. Catch, or Run which also opens a Scope, turns such a
// panic back into an ordinary error at the boundary of a step; other panics
// pass through untouched. The process never dies of a C++ exception.
//
// # Memory
//
// Tensors created while a Scope is open belong to it and are freed, all at
// once, when it closes; a training step opens one and closes it right after
// the optimiser update, so memory stays flat over any number of steps.
// Tensors created outside every scope (parameters, optimiser state) live
// until Free or, as a safety net only, until the garbage collector finds
// them. Scope.Keep moves a result out of a scope.
//
// # Threads
//
// libtorch keeps grad mode, autocast and its intra-op thread count per OS
// thread. A training loop therefore calls LockThread first and runs every
// step on that goroutine; NoGrad, Autocast and InferenceMode lock the thread
// for the duration of their function themselves.
package torch

/*
#cgo CFLAGS: -I${SRCDIR}/shim
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "loader.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Error is what a failed operation panics with: the operation's name and
// libtorch's own message.
type Error struct {
	Op  string
	Msg string
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// Catch runs f and returns the *Error it panicked with, if any. Panics of
// any other kind are re-raised: they are bugs, not tensor errors.
func Catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if te, ok := r.(*Error); ok {
				err = te
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

// Run opens a Scope, runs f inside it, closes the scope and returns any
// *Error f panicked with: the usual shape of one training or inference step.
func Run(f func()) error {
	s := NewScope()
	defer s.Close()
	return Catch(f)
}

func check(op string, e C.terr) {
	if e != nil {
		msg := C.GoString(e)
		C.tt_free_err(e)
		panic(&Error{Op: op, Msg: msg})
	}
}

// DType is a tensor element type.
type DType int

// The element types imet uses; their codes are shim.h's tt_dtype.
const (
	Float32  DType = C.TT_DTYPE_FLOAT32
	BFloat16 DType = C.TT_DTYPE_BFLOAT16
	Int64    DType = C.TT_DTYPE_INT64
	Float64  DType = C.TT_DTYPE_FLOAT64
	Uint8    DType = C.TT_DTYPE_UINT8
	Bool     DType = C.TT_DTYPE_BOOL
	Float16  DType = C.TT_DTYPE_FLOAT16
)

var dtypeNames = map[DType]string{Float32: "float32", BFloat16: "bfloat16", Int64: "int64",
	Float64: "float64", Uint8: "uint8", Bool: "bool", Float16: "float16"}

var dtypeSizes = map[DType]int{Float32: 4, BFloat16: 2, Int64: 8, Float64: 8, Uint8: 1, Bool: 1, Float16: 2}

func (d DType) String() string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size is the number of bytes one element takes.
func (d DType) Size() int { return dtypeSizes[d] }

// Version is the libtorch version compiled against, e.g. "1.13.1".
func Version() string { return C.GoString(C.tt_version()) }

// Tensor is a handle on a libtorch tensor. Its zero value is not usable;
// tensors come from constructors and operations.
type Tensor struct {
	p     C.tt
	scope *Scope
}

var live atomic.Int64

// LiveTensors is the number of tensor handles not yet freed; tests use it to
// prove that steps release everything they create.
func LiveTensors() int64 { return live.Load() }

func wrap(p C.tt) *Tensor {
	if p == nil {
		return nil
	}
	live.Add(1)
	t := &Tensor{p: p}
	scopeMu.Lock()
	s := current
	if s != nil {
		t.scope = s
		s.ts = append(s.ts, t)
	}
	scopeMu.Unlock()
	if s == nil {
		runtime.SetFinalizer(t, (*Tensor).Free)
	}
	return t
}

// Free releases the tensor now. Using it afterwards panics with *Error.
// Freeing twice is harmless.
func (t *Tensor) Free() {
	if t == nil || t.p == nil {
		return
	}
	C.tt_free(t.p)
	t.p = nil
	live.Add(-1)
}

func (t *Tensor) h(op string) C.tt {
	if t == nil || t.p == nil {
		panic(&Error{Op: op, Msg: "use of a nil or freed tensor"})
	}
	return t.p
}

// opt is h for optional arguments: nil passes as an undefined tensor.
func (t *Tensor) opt(op string) C.tt {
	if t == nil {
		return nil
	}
	return t.h(op)
}

// Scope owns the tensors created while it is the innermost open scope and
// frees them all on Close. Scopes nest; they are process-wide, so open them
// on the goroutine that runs the model and create tensors on other
// goroutines only as Go slices.
type Scope struct {
	ts     []*Tensor
	parent *Scope
	closed bool
}

var (
	scopeMu sync.Mutex
	current *Scope
)

// NewScope opens a scope nested in the current one.
func NewScope() *Scope {
	scopeMu.Lock()
	defer scopeMu.Unlock()
	s := &Scope{parent: current, ts: make([]*Tensor, 0, 256)}
	current = s
	return s
}

// Close frees every tensor the scope still owns and makes its parent
// current again. Closing twice is harmless.
func (s *Scope) Close() {
	scopeMu.Lock()
	if s.closed {
		scopeMu.Unlock()
		return
	}
	s.closed = true
	if current == s {
		current = s.parent
	} else {
		// An inner scope left open: unlink s from the chain so later
		// tensors never land in a closed scope.
		for c := current; c != nil; c = c.parent {
			if c.parent == s {
				c.parent = s.parent
			}
		}
	}
	ts := s.ts
	s.ts = nil
	scopeMu.Unlock()
	for _, t := range ts {
		if t.scope == s {
			t.Free()
		}
	}
}

// Len is the number of tensors the scope owns.
func (s *Scope) Len() int {
	scopeMu.Lock()
	defer scopeMu.Unlock()
	return len(s.ts)
}

// Keep moves t out of its scope to the scope's parent, or, at the top,
// leaves it unowned (freed by Free or the garbage collector). It returns t.
func Keep(t *Tensor) *Tensor {
	if t == nil {
		return nil
	}
	scopeMu.Lock()
	s := t.scope
	if s == nil {
		scopeMu.Unlock()
		return t
	}
	p := s.parent
	for p != nil && p.closed {
		p = p.parent
	}
	t.scope = p
	if p != nil {
		p.ts = append(p.ts, t)
	}
	scopeMu.Unlock()
	if p == nil {
		runtime.SetFinalizer(t, (*Tensor).Free)
	}
	return t
}

// ---- thread-local state ----

// LockThread pins the calling goroutine to its OS thread and sets
// libtorch's intra-op thread count there; n <= 0 means one per core, since
// Debian's libtorch otherwise runs a new OS thread with a single thread.
// The returned function unpins. Call it at the top of a training loop.
func LockThread(n int) (unlock func()) {
	runtime.LockOSThread()
	if n <= 0 {
		n = runtime.NumCPU()
	}
	SetNumThreads(n)
	return runtime.UnlockOSThread
}

// SetNumThreads sets libtorch's intra-op parallelism for the calling OS
// thread; lock the thread first (LockThread) or it may not stick.
func SetNumThreads(n int) { check("set_num_threads", C.tt_set_num_threads(C.int(n))) }

// NumThreads is libtorch's intra-op thread count on the calling thread.
func NumThreads() int { return int(C.tt_get_num_threads()) }

// ManualSeed seeds libtorch's CPU generator (dropout, Randn, Rand, init).
func ManualSeed(seed uint64) { check("manual_seed", C.tt_manual_seed(C.uint64_t(seed))) }

// GradEnabled reports whether autograd records operations on this thread.
func GradEnabled() bool { return C.tt_grad_enabled() != 0 }

// NoGrad runs f with autograd off on a locked thread: no graph is recorded,
// and in-place updates of parameters are allowed.
func NoGrad(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.tt_grad_enabled()
	C.tt_set_grad_enabled(0)
	defer C.tt_set_grad_enabled(prev)
	f()
}

// Autocast runs f with CPU (and CUDA) autocast to bfloat16: convolutions and
// matmuls run in bfloat16, reductions and losses stay float32. Wrap forward
// and loss only; backward and the optimiser run outside.
// Nested calls on one thread are fine: only the outermost switches.
func Autocast(f func()) {
	nestAutocast(func() { check("autocast", C.tt_autocast(1)) }, func() { check("autocast", C.tt_autocast(0)) }, f)
}

// AutocastOn runs f with autocast of dev's device type to dt, as
// torch.autocast(device_type, dtype) does: bfloat16 on the CPU (libtorch's
// CPU autocast knows no other type), float16 or bfloat16 on a GPU. Wrap
// forward and loss only. Nested Autocast and AutocastOn calls on one thread
// leave the outermost one in charge.
func AutocastOn(dev Device, dt DType, f func()) {
	if !dev.IsCUDA() && dt != BFloat16 {
		panic(&Error{Op: "autocast", Msg: fmt.Sprintf("CPU autocast runs bfloat16 only, not %v", dt)})
	}
	code := dev.code()
	nestAutocast(func() { check("autocast", C.tt_autocast_on(1, code, C.int(dt))) },
		func() { check("autocast", C.tt_autocast_on(0, code, C.int(dt))) }, f)
}

// nestAutocast runs f on a locked thread between enter and exit, which
// only the outermost call on the thread runs: libtorch keeps one switch
// per thread.
func nestAutocast(enter, exit func(), f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := syscall.Gettid()
	autocastMu.Lock()
	outer := autocastDepth[tid] == 0
	autocastDepth[tid]++
	autocastMu.Unlock()
	defer func() {
		autocastMu.Lock()
		autocastDepth[tid]--
		if autocastDepth[tid] == 0 {
			delete(autocastDepth, tid)
		}
		autocastMu.Unlock()
	}()
	if outer {
		enter()
		defer exit()
	}
	f()
}

// autocastDepth counts Autocast nesting per OS thread, where libtorch keeps
// the switch.
var (
	autocastMu    sync.Mutex
	autocastDepth = map[int]int{}
)

// InferenceMode runs f in libtorch's inference mode, cheaper than NoGrad;
// tensors it creates can never take part in autograd.
func InferenceMode(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var g unsafe.Pointer
	check("inference_mode", C.tt_inference_mode(1, &g))
	defer func() { check("inference_mode", C.tt_inference_mode(0, &g)) }()
	f()
}
