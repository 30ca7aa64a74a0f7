package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"imet/internal/engine/dist"
	"imet/internal/engine/torch"
	"imet/internal/training/checkpoint"
	"imet/internal/training/trainconfig"
)

// Data-parallel training (Options.Group): every rank runs the same session
// on its share of each global batch, and they stay in lockstep through
// c10d collectives issued at the same points of the same control flow.
//
//   - A stage's batch_size is the global batch: each of W ranks takes
//     batch_size/W samples of it. The epoch's order is the one a single
//     process draws; rank r takes every W-th sample from position r on
//     (DistributedSampler over that order), so global batch k is
//     positions k*B..(k+1)*B-1 of the order, as in one process, and each
//     sample is augmented as it would be there (draws keyed by position).
//   - Rank 0 alone reads and writes the run directory. At the start it
//     says whether it resumes and, if so, sends the checkpoint's bytes;
//     otherwise every rank takes its initial weights and buffers.
//   - Gradients are averaged after the last micro-batch of each step
//     (DistributedDataParallel's arithmetic, bucketed), with the step's
//     loss and image count riding along; BatchNorm buffers then follow
//     rank 0's, as DDP's broadcast_buffers does.
//   - Predictions (validation, OOF, test) are split into contiguous runs
//     of whole batches, one per rank, and summed into the full matrix,
//     so every rank holds what one process would have predicted.
//   - Decisions any rank may take alone (stop on a signal or the time
//     budget, a cut prediction) are agreed on with a maximum, so all
//     ranks stop at the same step.

// rank is this process's rank (0 without a group).
func (t *trainer) rank() int {
	if t.Group == nil {
		return 0
	}
	return t.Group.Rank
}

// world is the number of ranks (1 without a group).
func (t *trainer) world() int {
	if t.Group == nil {
		return 1
	}
	return t.Group.World
}

// lead is whether this process owns the run directory.
func (t *trainer) lead() bool { return t.rank() == 0 }

// checkWorld refuses a recipe whose batches do not split over the ranks.
func (t *trainer) checkWorld() error {
	w := t.world()
	if w == 1 {
		return nil
	}
	for _, s := range t.cfg.Stages {
		if s.BatchSize%w != 0 {
			return fmt.Errorf("stage %s: batch_size %d (the global batch) does not split evenly over %d processes; make it a multiple of %d", s.Name, s.BatchSize, w, w)
		}
	}
	return nil
}

// ShardOrder is a rank's share of an epoch's order: every world-th sample
// from position rank on, as torch.utils.data.DistributedSampler takes it
// (without its own shuffling or padding).
func ShardOrder(order []int, rank, world int) []int {
	out := make([]int, 0, (len(order)+world-1)/world)
	for i := rank; i < len(order); i += world {
		out = append(out, order[i])
	}
	return out
}

// EvalShard is the rows [lo, hi) a rank predicts of n rows in batches of
// bs: a contiguous run of whole batches, so each batch is the one a
// single process would run.
func EvalShard(n, bs, rank, world int) (lo, hi int) {
	nb := (n + bs - 1) / bs
	b0, b1 := nb*rank/world, nb*(rank+1)/world
	return min(b0*bs, n), min(b1*bs, n)
}

// startInfo is what rank 0 tells the others at the start.
type startInfo struct {
	Err       string   `json:"err,omitempty"`
	Resumed   bool     `json:"resumed"`
	From      string   `json:"from,omitempty"`
	Skipped   []string `json:"skipped,omitempty"`
	WorldWas  int      `json:"world_was,omitempty"`
	Completed bool     `json:"completed,omitempty"`
}

// errPeerStopped is what a rank's prediction returns when another rank's
// was cut short by a signal: the session then stops as the other does.
var errPeerStopped = errors.New("another rank was stopped")

// errPeerFailed is what a rank returns when another rank failed at a
// point they had to pass together.
var errPeerFailed = errors.New("another rank of the data-parallel run failed (its log says why)")

// syncStart makes every rank start where rank 0 does. On rank 0, err is
// what its own start met (nil: it restored or initialised t), info says
// whether it resumed and from where, and path is the checkpoint restored.
// The other ranks restore the bytes rank 0 sends, or take its weights.
func (t *trainer) syncStart(info startInfo, path string, err error) (startInfo, error) {
	g := t.Group
	if t.lead() {
		if err != nil {
			info = startInfo{Err: err.Error()}
		}
		b, _ := json.Marshal(info)
		g.BroadcastBytes(b)
		if err != nil {
			return info, err
		}
	} else {
		var got startInfo
		if e := json.Unmarshal(g.BroadcastBytes(nil), &got); e != nil {
			return got, fmt.Errorf("rank %d: start message from rank 0: %w", t.rank(), e)
		}
		if got.Err != "" {
			return got, fmt.Errorf("rank 0 could not start: %s", got.Err)
		}
		info = got
	}
	var local error
	if info.Resumed {
		var data []byte
		if t.lead() {
			if data, local = os.ReadFile(path); local != nil {
				data = nil
			}
		}
		data = g.BroadcastBytes(data)
		if !t.lead() && len(data) == 0 {
			local = fmt.Errorf("rank %d: rank 0 sent no checkpoint", t.rank())
		}
		if !t.lead() && local == nil {
			c, e := checkpoint.Decode(info.From, data)
			if e == nil {
				e = t.restore(c, info.From)
			}
			local = e
		}
	} else {
		local = torch.Catch(func() { g.BroadcastTensors(t.storeTensors()) })
	}
	return info, t.agree(local)
}

// agree returns err when this rank failed, errPeerFailed when another did,
// nil when none did: every rank passes it together.
func (t *trainer) agree(err error) error {
	code := 0
	if err != nil {
		code = 1
	}
	if t.Group.Max(code) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	return errPeerFailed
}

// reduceStep averages the step's gradients over the ranks and returns the
// global batch's mean loss and its image count (this rank's mean loss and
// count in, the sums out).
func (t *trainer) reduceStep(loss float64, images int) (float64, int, error) {
	if t.Group == nil {
		return loss, images, nil
	}
	start := time.Now()
	var params []*torch.Tensor
	for _, v := range t.store.Trainable() {
		params = append(params, v.T)
	}
	extra := []float64{loss, float64(images)}
	err := torch.Catch(func() { t.Group.AverageGradients(params, extra) })
	t.comm += time.Since(start)
	return extra[0] / float64(t.world()), int(math.Round(extra[1])), err
}

// syncBuffers gives every rank rank 0's BatchNorm statistics, as
// DistributedDataParallel's broadcast_buffers does before each forward:
// they are the ones checkpoints keep and evaluation uses.
func (t *trainer) syncBuffers() error {
	if t.Group == nil || t.store.BatchNormFrozen() {
		return nil
	}
	var ts []*torch.Tensor
	for _, v := range t.store.Buffers() {
		if !t.store.Frozen(v.Group) {
			ts = append(ts, v.T)
		}
	}
	start := time.Now()
	err := torch.Catch(func() { t.Group.BroadcastTensors(ts) })
	t.comm += time.Since(start)
	return err
}

// stopCode orders the reasons a session stops, so the ranks agree on the
// strongest: a signal over the budget.
var stopCodes = map[string]int{"": 0, "budget": 1, "signal": 2}

// agreeStop makes every rank stop when any would, for the same reason.
func (t *trainer) agreeStop(reason string) string {
	if t.Group == nil {
		return reason
	}
	switch t.Group.Max(stopCodes[reason]) {
	case 2:
		return "signal"
	case 1:
		return "budget"
	}
	return ""
}

// mergeMining gives every rank the per-sample losses all ranks recorded
// since the last merge: for each sample, the one recorded at the latest
// position of the epoch, which is what a single process keeps (it
// overwrites in order). Positions differ between ranks, so exactly one
// rank contributes each recorded value and the sum is exact.
func (t *trainer) mergeMining() error {
	if t.Group == nil || t.minePos == nil {
		return nil
	}
	maxPos := append([]float32(nil), t.minePos...)
	return torch.Catch(func() {
		t.Group.MaxFloat32s(maxPos)
		vals := make([]float32, len(t.mining))
		for i, p := range t.minePos {
			if p >= 0 && p == maxPos[i] {
				vals[i] = t.mining[i]
			}
		}
		t.Group.SumFloat32s(vals)
		for i, p := range maxPos {
			if p >= 0 {
				t.mining[i] = vals[i]
			}
			t.minePos[i] = -1
		}
	})
}

// predictAll is predict over the ranks: each predicts its run of whole
// batches (when the source shards), and the rows are summed into the
// full matrix every rank returns, with the mean BCE over all of them. A
// rank cut short by a signal makes every rank's prediction end with a
// stop, and a failed one every rank's with an error.
func (t *trainer) predictAll(ctx context.Context, src Source, views int) ([]float32, float64, error) {
	if t.Group == nil {
		return t.predict(ctx, src, views)
	}
	n, cols := src.Len(), src.Classes()
	bs := t.cfg.Validation.BatchSize
	if bs < 1 {
		bs = 32
	}
	lo, hi := 0, n
	part := src
	sh, sharded := src.(Sharder)
	if sharded {
		lo, hi = EvalShard(n, bs, t.rank(), t.world())
		part = sh.Shard(lo, hi)
	}
	t.store.Train(false)
	out, lossSum, seen, err := predictSums(ctx, t.Model, part, PredictOptions{Views: views, BatchSize: bs, Device: t.dev,
		Precision: t.cfg.Engine.Precision, ChannelsLast: t.cfg.Engine.ChannelsLast})
	t.store.Train(true)
	code := 0
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
		code = 1
	case err != nil:
		code = 2
	}
	switch t.Group.Max(code) {
	case 1:
		if err == nil {
			err = errPeerStopped
		}
		return nil, 0, err
	case 2:
		if err == nil {
			err = errPeerFailed
		}
		return nil, 0, err
	}
	if !sharded {
		return out, lossSum / float64(max(seen, 1)*cols), nil
	}
	full := make([]float32, n*cols)
	copy(full[lo*cols:hi*cols], out)
	sums := []float64{lossSum, float64(seen)}
	err = torch.Catch(func() {
		t.Group.SumFloat32s(full)
		t.Group.SumFloat64s(sums)
	})
	if err != nil {
		return nil, 0, err
	}
	return full, sums[0] / (max(sums[1], 1) * float64(cols)), nil
}

// JoinFromEnv joins the data-parallel run the launch environment
// describes, as engine.distributed asks: nil (and no error) for a
// single-process run. dev is the session's device; with auto, NCCL is
// chosen on a GPU when the shim has it, Gloo otherwise.
func JoinFromEnv(e *trainconfig.Engine, dev torch.Device, getenv func(string) string) (*dist.Group, dist.Env, error) {
	mode := e.Distributed
	if mode == "" {
		mode = trainconfig.DistributedAuto
	}
	if mode == trainconfig.DistributedOff {
		return nil, dist.Env{}, nil
	}
	env, present, err := dist.FromEnv(getenv)
	if err != nil {
		return nil, env, fmt.Errorf("engine.distributed %s: %w", mode, err)
	}
	if !present || env.World == 1 {
		if mode != trainconfig.DistributedAuto {
			return nil, env, fmt.Errorf("engine.distributed %s: no process group to join (WORLD_SIZE is unset or 1): launch the ranks with torchrun, e.g. torchrun --nproc-per-node 2 --no-python imet train ...", mode)
		}
		return nil, env, nil
	}
	backend := torch.Gloo
	switch mode {
	case trainconfig.DistributedNCCL:
		backend = torch.NCCL
	case trainconfig.DistributedAuto:
		if dev.IsCUDA() && torch.BackendAvailable(torch.NCCL) {
			backend = torch.NCCL
		}
	}
	bufDev := torch.CPU // Gloo's host values stay on the host
	if backend == torch.NCCL {
		bufDev = dev
	}
	g, err := dist.Join(env, backend, bufDev)
	if err != nil {
		return nil, env, err
	}
	return g, env, nil
}
