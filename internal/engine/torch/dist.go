package torch

/*
#include <stdlib.h>
#include "loader.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Backend is a c10d communication backend.
type Backend int

// The backends; their codes are shim.h's tt_dist_backend.
const (
	// Gloo runs collectives over TCP on CPU tensors (and CUDA ones,
	// through host copies).
	Gloo Backend = C.TT_DIST_GLOO
	// NCCL runs collectives between GPUs; CUDA builds of the shim only.
	NCCL Backend = C.TT_DIST_NCCL
)

func (b Backend) String() string {
	switch b {
	case Gloo:
		return "gloo"
	case NCCL:
		return "nccl"
	}
	return fmt.Sprintf("backend(%d)", int(b))
}

// ReduceOp is how an all-reduce combines the ranks' values.
type ReduceOp int

// The reductions; their codes are shim.h's tt_dist_op.
const (
	DistSum ReduceOp = C.TT_DIST_SUM
	DistMax ReduceOp = C.TT_DIST_MAX
)

// BackendAvailable reports whether the loaded shim was built with b (Gloo
// needs Gloo's headers at build time, NCCL a CUDA libtorch and nccl.h).
func BackendAvailable(b Backend) bool { return C.tt_dist_available(C.int(b)) != 0 }

// GroupOptions say how to join a process group.
type GroupOptions struct {
	Backend Backend
	// Host and Port are the TCPStore every rank meets at (torchrun's
	// MASTER_ADDR and MASTER_PORT).
	Host string
	Port int
	// HostStore makes this process serve the store: rank 0 of a plain
	// launch. Under an agent that serves it already (torchrun's
	// TORCHELASTIC_USE_AGENT_STORE) every rank is a client.
	HostStore bool
	// Prefix is put before every key this group writes to the store, so
	// that groups of successive attempts sharing one store never meet.
	Prefix      string
	Rank, World int
	// Timeout bounds the rendezvous and each collective (0: 30 minutes, as
	// torch.distributed's default).
	Timeout time.Duration
	// Interface is the network interface Gloo binds (GLOO_SOCKET_IFNAME);
	// "": the address this machine's hostname resolves to, or loopback.
	Interface string
}

// ProcessGroup is a c10d process group: the ranks of one data-parallel
// run. Every rank must issue the same collectives in the same order; each
// call returns once its collective has completed here. A collective fails
// (panics with *Error, like every operation) when a peer has gone away or
// the timeout passes.
type ProcessGroup struct {
	p           C.tt_pg
	rank, world int
	mu          sync.Mutex
}

// NewProcessGroup joins a group; it blocks until every rank has arrived
// (or the timeout passes).
func NewProcessGroup(o GroupOptions) (*ProcessGroup, error) {
	if !BackendAvailable(o.Backend) {
		why := "this shim was built without Gloo's headers (Debian: apt-get install libgloo-dev, then make shim or scripts/build-shim.sh)"
		if o.Backend == NCCL {
			why = "NCCL needs a shim built against a CUDA libtorch with nccl.h (scripts/build-shim.sh, NCCL_HOME)"
		}
		return nil, fmt.Errorf("distributed backend %v: %s", o.Backend, why)
	}
	if o.World < 1 || o.Rank < 0 || o.Rank >= o.World {
		return nil, fmt.Errorf("distributed: rank %d of world size %d", o.Rank, o.World)
	}
	if o.Port <= 0 || o.Port > 65535 {
		return nil, fmt.Errorf("distributed: store port %d out of range", o.Port)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	host, prefix, iface := C.CString(o.Host), C.CString(o.Prefix), C.CString(o.Interface)
	defer C.free(unsafe.Pointer(host))
	defer C.free(unsafe.Pointer(prefix))
	defer C.free(unsafe.Pointer(iface))
	hs := C.int(0)
	if o.HostStore {
		hs = 1
	}
	var p C.tt_pg
	if e := C.tt_dist_init(C.int(o.Backend), host, C.int(o.Port), hs, prefix, C.int(o.Rank), C.int(o.World),
		C.int64_t(timeout.Milliseconds()), iface, &p); e != nil {
		msg := C.GoString(e)
		C.tt_free_err(e)
		return nil, fmt.Errorf("distributed: joining %s:%d as rank %d of %d: %s", o.Host, o.Port, o.Rank, o.World, msg)
	}
	g := &ProcessGroup{p: p, rank: o.Rank, world: o.World}
	runtime.SetFinalizer(g, (*ProcessGroup).Close)
	return g, nil
}

// Rank is this process's rank, 0..World-1.
func (g *ProcessGroup) Rank() int { return g.rank }

// World is the number of processes in the group.
func (g *ProcessGroup) World() int { return g.world }

// Close leaves the group. Closing twice is harmless.
func (g *ProcessGroup) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.p != nil {
		C.tt_dist_free(g.p)
		g.p = nil
	}
}

func (g *ProcessGroup) handle(op string) C.tt_pg {
	if g == nil || g.p == nil {
		panic(&Error{Op: op, Msg: "use of a closed process group"})
	}
	return g.p
}

// AllReduce combines each tensor over the group, in place, each in its
// own collective (all in flight at once).
func (g *ProcessGroup) AllReduce(op ReduceOp, ts ...*Tensor) { g.allReduce(op, false, ts) }

// AllReduceFlat is AllReduce with the tensors of each dtype flattened into
// one message: many small tensors cost one collective.
func (g *ProcessGroup) AllReduceFlat(op ReduceOp, ts ...*Tensor) { g.allReduce(op, true, ts) }

func (g *ProcessGroup) allReduce(op ReduceOp, flat bool, ts []*Tensor) {
	p, n := handles("allreduce", ts)
	check("allreduce", C.tt_dist_allreduce(g.handle("allreduce"), p, n, C.int(op), cbool(flat)))
	runtime.KeepAlive(ts)
}

// Broadcast overwrites each tensor with root's, in place, each in its own
// collective.
func (g *ProcessGroup) Broadcast(root int, ts ...*Tensor) { g.broadcast(root, false, ts) }

// BroadcastFlat is Broadcast with the tensors of each dtype flattened into
// one message (a model's weights and buffers: a few messages, not hundreds).
func (g *ProcessGroup) BroadcastFlat(root int, ts ...*Tensor) { g.broadcast(root, true, ts) }

func (g *ProcessGroup) broadcast(root int, flat bool, ts []*Tensor) {
	p, n := handles("broadcast", ts)
	check("broadcast", C.tt_dist_broadcast(g.handle("broadcast"), p, n, C.int(root), cbool(flat)))
	runtime.KeepAlive(ts)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Barrier returns once every rank has called it.
func (g *ProcessGroup) Barrier() { check("barrier", C.tt_dist_barrier(g.handle("barrier"))) }

// AverageGradients replaces the gradient of every parameter by its mean
// over the group, as DistributedDataParallel does (each rank's gradient
// times 1/World, summed), packing them into buckets of at most
// bucketBytes that travel while the next one is packed. extra values ride
// in the last bucket and come back summed over the ranks (not averaged):
// step statistics that cost no collective of their own. Every rank must
// pass parameters of the same shapes in the same order.
func (g *ProcessGroup) AverageGradients(params []*Tensor, bucketBytes int64, extra []float64) {
	p, n := handles("average_grads", params)
	var ex *C.double
	if len(extra) > 0 {
		ex = (*C.double)(unsafe.Pointer(&extra[0]))
	}
	check("average_grads", C.tt_dist_average_grads(g.handle("average_grads"), p, n, C.int64_t(bucketBytes), ex, C.int(len(extra))))
	runtime.KeepAlive(params)
}
