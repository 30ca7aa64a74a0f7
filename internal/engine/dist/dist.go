// Package dist joins the processes of one data-parallel training run
// through libtorch's c10d, the machinery torch.distributed runs on: the
// launch environment torchrun (or a cluster scheduler) sets, a TCPStore
// rendezvous, a Gloo process group on CPUs or NCCL between GPUs, and the
// few collectives a trainer needs on top (gradient averaging, broadcasts
// from rank 0, sums and maxima of host values, agreement on a decision).
//
// Nothing here is a protocol of its own: every byte travels through c10d
// collectives, so an imet rank could sit in a group with torch.distributed
// peers.
package dist

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"imet/internal/engine/torch"
)

// The launch environment's variable names, as torchrun sets them.
const (
	EnvRank       = "RANK"
	EnvWorld      = "WORLD_SIZE"
	EnvLocalRank  = "LOCAL_RANK"
	EnvLocalWorld = "LOCAL_WORLD_SIZE"
	EnvAddr       = "MASTER_ADDR"
	EnvPort       = "MASTER_PORT"
	// EnvAgentStore is "True" when torchrun's agent serves the store
	// itself (PyTorch 2.x): every rank is then a client.
	EnvAgentStore = "TORCHELASTIC_USE_AGENT_STORE"
	// EnvRestart counts torchrun's restarts of the worker group.
	EnvRestart = "TORCHELASTIC_RESTART_COUNT"
	// EnvIfname is the interface Gloo binds, as torch.distributed reads it.
	EnvIfname = "GLOO_SOCKET_IFNAME"
	// EnvTimeout bounds the rendezvous and each collective (a Go duration;
	// default 30m, torch.distributed's).
	EnvTimeout = "IMET_DIST_TIMEOUT"
)

// Env is a process's place in a launch.
type Env struct {
	Rank, World           int
	LocalRank, LocalWorld int
	Addr                  string
	Port                  int
	AgentStore            bool
	Restart               int
	Interface             string
	Timeout               time.Duration
}

// FromEnv reads the launch environment through getenv (os.Getenv). It
// reports false when WORLD_SIZE is unset: a plain single-process run.
// A variable that is set but malformed, or missing beside WORLD_SIZE, is an
// error naming it.
func FromEnv(getenv func(string) string) (Env, bool, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	ws := getenv(EnvWorld)
	if ws == "" {
		return Env{}, false, nil
	}
	e := Env{Addr: getenv(EnvAddr), Interface: getenv(EnvIfname), AgentStore: strings.EqualFold(getenv(EnvAgentStore), "true")}
	num := func(name string, dst *int, need bool, min int) error {
		v := getenv(name)
		if v == "" {
			if need {
				return fmt.Errorf("%s is set but %s is not: launch with torchrun (or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)", EnvWorld, name)
			}
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return fmt.Errorf("%s=%q: want an integer of at least %d", name, v, min)
		}
		*dst = n
		return nil
	}
	e.LocalWorld = -1
	for _, c := range []struct {
		name string
		dst  *int
		need bool
		min  int
	}{{EnvWorld, &e.World, true, 1}, {EnvRank, &e.Rank, true, 0}, {EnvLocalRank, &e.LocalRank, false, 0},
		{EnvLocalWorld, &e.LocalWorld, false, 1}, {EnvRestart, &e.Restart, false, 0}} {
		if err := num(c.name, c.dst, c.need, c.min); err != nil {
			return Env{}, true, err
		}
	}
	if e.Rank >= e.World {
		return Env{}, true, fmt.Errorf("%s=%d is not below %s=%d", EnvRank, e.Rank, EnvWorld, e.World)
	}
	if e.LocalWorld < 0 {
		e.LocalWorld = e.World // one machine unless told otherwise
	}
	if e.World > 1 {
		if e.Addr == "" {
			return Env{}, true, fmt.Errorf("%s=%d but %s is not set: launch with torchrun (or set it to rank 0's address)", EnvWorld, e.World, EnvAddr)
		}
		if err := num(EnvPort, &e.Port, true, 1); err != nil {
			return Env{}, true, err
		}
		if e.Port > 65535 {
			return Env{}, true, fmt.Errorf("%s=%d: not a port", EnvPort, e.Port)
		}
	}
	if v := getenv(EnvTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Env{}, true, fmt.Errorf("%s=%q: want a positive duration such as 10m", EnvTimeout, v)
		}
		e.Timeout = d
	}
	return e, true, nil
}

// Threads is the intra-op thread count a rank should use when the recipe
// says 0 (one per core): the machine's cores shared among the ranks on it.
func (e Env) Threads() int { return max(1, runtime.NumCPU()/max(1, e.LocalWorld)) }

// Group is this process's membership of a data-parallel run.
type Group struct {
	pg          *torch.ProcessGroup
	Rank, World int
	// Device is where the collectives' buffers live: the CPU for Gloo, the
	// rank's GPU for NCCL.
	Device torch.Device
	// BucketBytes is the gradient bucket size (DistributedDataParallel's
	// bucket_cap_mb, 25 MiB).
	BucketBytes int64
}

// Join joins the group e describes over backend, with buffers on dev.
func Join(e Env, backend torch.Backend, dev torch.Device) (*Group, error) {
	prefix := ""
	if e.AgentStore {
		// The agent's store outlives the workers: keys of an earlier
		// attempt must not be met again (torch.distributed's own prefix).
		prefix = fmt.Sprintf("/worker/attempt_%d/", e.Restart)
	}
	pg, err := torch.NewProcessGroup(torch.GroupOptions{Backend: backend, Host: e.Addr, Port: e.Port, HostStore: e.Rank == 0 && !e.AgentStore,
		Prefix: prefix, Rank: e.Rank, World: e.World, Timeout: e.Timeout, Interface: e.Interface})
	if err != nil {
		return nil, err
	}
	return &Group{pg: pg, Rank: e.Rank, World: e.World, Device: dev, BucketBytes: 25 << 20}, nil
}

// Close leaves the group; peers' next collectives then fail.
func (g *Group) Close() {
	if g != nil && g.pg != nil {
		g.pg.Close()
	}
}

// AverageGradients makes every parameter's gradient the mean over the
// ranks (DistributedDataParallel's arithmetic), bucketed; extra values come
// back summed over the ranks.
func (g *Group) AverageGradients(params []*torch.Tensor, extra []float64) {
	g.pg.AverageGradients(params, g.BucketBytes, extra)
}

// BroadcastTensors overwrites ts with rank 0's, in one message per dtype.
func (g *Group) BroadcastTensors(ts []*torch.Tensor) {
	if len(ts) > 0 {
		g.pg.BroadcastFlat(0, ts...)
	}
}

// hostOp runs f on a float tensor holding v on the group's device and
// copies the result back into v.
func (g *Group) hostOp(v []float32, f func(*torch.Tensor)) {
	if len(v) == 0 {
		return
	}
	t := torch.Upload(v, g.Device, len(v))
	defer t.Free()
	f(t)
	copy(v, t.Float32s())
}

// SumFloat32s adds v over the ranks, in place. Every rank must pass the
// same length.
func (g *Group) SumFloat32s(v []float32) {
	g.hostOp(v, func(t *torch.Tensor) { g.pg.AllReduce(torch.DistSum, t) })
}

// MaxFloat32s takes the elementwise maximum of v over the ranks, in place.
func (g *Group) MaxFloat32s(v []float32) {
	g.hostOp(v, func(t *torch.Tensor) { g.pg.AllReduce(torch.DistMax, t) })
}

// SumFloat64s adds v over the ranks, in place, in float64 (sums of losses
// that must not lose digits).
func (g *Group) SumFloat64s(v []float64) {
	if len(v) == 0 {
		return
	}
	t := torch.FromBytes(f64bytes(v), torch.Float64, len(v)).ToDevice(torch.Float64, g.Device)
	defer t.Free()
	g.pg.AllReduce(torch.DistSum, t)
	out := t.Bytes()
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(out[8*i:]))
	}
}

// Max is the largest of the ranks' values of v: the way ranks agree on a
// decision (stop, cut, fail) that any one of them may take.
func (g *Group) Max(v int) int {
	x := []float32{float32(v)}
	g.MaxFloat32s(x)
	return int(x[0])
}

// BroadcastBytes returns rank 0's b on every rank (its length first, then
// the bytes): a checkpoint, a status message.
func (g *Group) BroadcastBytes(b []byte) []byte {
	n := []float64{0}
	if g.Rank == 0 {
		n[0] = float64(len(b))
	}
	nt := torch.FromBytes(f64bytes(n), torch.Float64, 1)
	defer nt.Free()
	g.pg.Broadcast(0, nt)
	size := int(math.Float64frombits(binary.LittleEndian.Uint64(nt.Bytes())))
	if size == 0 {
		return []byte{}
	}
	buf := b
	if g.Rank != 0 {
		buf = make([]byte, size)
	}
	t := torch.FromBytes(buf, torch.Uint8, size).ToDevice(torch.Uint8, g.Device)
	defer t.Free()
	g.pg.Broadcast(0, t)
	if g.Rank == 0 {
		return b
	}
	return t.Bytes()
}

func f64bytes(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}
