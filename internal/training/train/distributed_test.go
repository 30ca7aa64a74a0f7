package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"imet/internal/engine/torch"
	"imet/internal/training/checkpoint"
	"imet/internal/training/schedule"
	"imet/internal/training/trainconfig"
)

// ddpRecipe is what the data-parallel tests train: the tiny ResNet on the
// in-memory set with frozen BatchNorm (so that one process and two compute
// the same thing), two stages (the first with frozen groups), accumulation,
// SGD with momentum then AdamW, a cosine schedule, EMA, hard mining,
// validation mid-epoch and at epoch ends, a checkpoint every step. No
// dropout and no Mixup: both draw over the whole batch, which a rank only
// holds part of.
func ddpRecipe() trainconfig.Run {
	r := trainconfig.Default()
	r.Name, r.Seed = "ddp", 5
	r.Model = trainconfig.Model{Arch: "tiny", Pool: "avg", FreezeBN: true}
	s1 := trainconfig.DefaultStage()
	s1.Name, s1.Epochs, s1.BatchSize = "head", 1, 8
	s1.Frozen = []string{"stem", "stage1"}
	s1.LR = []float64{1e-2, 3e-2}
	s1.Optimizer.Name, s1.Optimizer.Momentum = "sgd", 0.9
	s2 := trainconfig.DefaultStage()
	s2.Name, s2.Epochs, s2.BatchSize, s2.Accumulate = "all", 2, 4, 2
	s2.LR = []float64{1e-3, 3e-3}
	s2.Schedule.Name, s2.Schedule.WarmupSteps = schedule.Cosine, 2
	r.Stages = []trainconfig.Stage{s1, s2}
	r.Validation = trainconfig.Validation{EveryEpochs: 1, EverySteps: 4, BatchSize: 5}
	r.Checkpoint = trainconfig.Checkpoint{EverySteps: 1, Keep: 2}
	r.EMA = trainconfig.EMA{Enabled: true, Decay: 0.8}
	r.HardMining.Fraction = 0.25
	r.Engine.Threads = 1
	return r
}

// stepLosses records every step's loss and the start event.
type stepLosses struct {
	Observers
	mu    sync.Mutex
	loss  map[int64]float64
	start StartEvent
}

func (l *stepLosses) OnStart(e StartEvent) { l.start = e }
func (l *stepLosses) OnStep(e StepEvent) {
	l.mu.Lock()
	l.loss[e.GlobalStep] = e.Loss
	l.mu.Unlock()
}

// ddpSession runs (or resumes) ddpRecipe in dir as one process or, with
// g, as one rank.
func ddpSession(ctx context.Context, t testing.TB, dir string, resume bool, obs Observer, o func(*Options)) (Result, error) {
	r := ddpRecipe()
	tr, val := newMemSource(11, 40, 5, 16), newMemSource(12, 23, 5, 16)
	opts := Options{
		Config: r, Fold: 0, RunDir: dir, Resume: resume, Observer: obs,
		Model: tinyModel(t, r, 5), Train: tr, Val: val, ValTruth: val.truth(), Test: val,
		Outputs: func(oof, test []float32, cols int) ([]string, error) {
			p := filepath.Join(dir, "oof.bin")
			return []string{p}, os.WriteFile(p, checkpoint.Float32(nil, oof).Data, 0o644)
		},
	}
	if o != nil {
		o(&opts)
	}
	return Run(ctx, opts)
}

// The in-memory source shards like the image source.
func (s *memSource) Shard(lo, hi int) Source {
	c := *s
	c.n, c.images, c.targets = hi-lo, s.images[lo:hi], s.targets[lo:hi]
	return &c
}

// TestDistChild is one rank of a data-parallel session that the tests
// below start as a separate process (IMET_DIST_CHILD says how); alone it
// does nothing.
func TestDistChild(t *testing.T) {
	mode := os.Getenv("IMET_DIST_CHILD")
	if mode == "" {
		t.Skip("only runs as a rank started by the data-parallel tests")
	}
	dir := os.Getenv("IMET_DIST_DIR")
	g, env, err := JoinFromEnv(&trainconfig.Engine{}, torch.CPU, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if g == nil {
		t.Fatal("no process group: WORLD_SIZE is not set above 1")
	}
	defer g.Close()
	losses := &stepLosses{loss: map[int64]float64{}}
	var obs Observer = losses
	if mode == "slow" && env.Rank == 0 {
		obs = Observers{losses, slow{}}
	}
	ctx, stop := SignalContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var model Model
	session := ddpSession
	if mode == "pyref" {
		session = pyrefSession
	}
	res, err := session(ctx, t, dir, os.Getenv("IMET_DIST_RESUME") == "1", obs, func(o *Options) { o.Group, model = g, o.Model })
	if err != nil {
		t.Fatal(err)
	}
	// What the parent compares: this rank's final weights and buffers,
	// its step losses and how the session ended.
	var w bytes.Buffer
	for _, v := range model.Store().Vars() {
		w.Write(v.T.Bytes())
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("rank%d.weights", env.Rank)), w.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rankResult{Rank: env.Rank, Completed: res.Completed, Stopped: res.Stopped, Step: res.GlobalStep,
		Losses: losses.loss, WorldWas: losses.start.WorldWas})
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("rank%d.json", env.Rank)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rankResult is what a child rank reports.
type rankResult struct {
	Rank      int
	Completed bool
	Stopped   string
	Step      int64
	Losses    map[int64]float64
	WorldWas  int
}

// freePort is a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ranks is a launched data-parallel session: one child process per rank,
// with torchrun's variables set, on loopback.
type ranks struct {
	cmds []*exec.Cmd
	outs []*bytes.Buffer
}

func launch(t *testing.T, world int, dir, mode string, resume bool) *ranks {
	t.Helper()
	port := freePort(t)
	rs := &ranks{}
	for r := range world {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDistChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "IMET_DIST_CHILD="+mode, "IMET_DIST_DIR="+dir, "RANK="+strconv.Itoa(r),
			"LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world), "LOCAL_WORLD_SIZE="+strconv.Itoa(world),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "GLOO_SOCKET_IFNAME=lo", "IMET_DIST_TIMEOUT=60s",
			"OMP_NUM_THREADS=1")
		if resume {
			cmd.Env = append(cmd.Env, "IMET_DIST_RESUME=1")
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rs.cmds, rs.outs = append(rs.cmds, cmd), append(rs.outs, &out)
	}
	return rs
}

// wait waits for every rank (killing all after timeout) and returns each
// one's exit error.
func (rs *ranks) wait(timeout time.Duration) []error {
	errs := make([]error, len(rs.cmds))
	var wg sync.WaitGroup
	for i, c := range rs.cmds {
		wg.Go(func() { errs[i] = c.Wait() })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		for _, c := range rs.cmds {
			c.Process.Kill()
		}
		<-done
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("still running after %v", timeout)
			} else {
				errs[i] = fmt.Errorf("still running after %v (killed: %v)", timeout, errs[i])
			}
		}
	}
	return errs
}

func (rs *ranks) logs() string {
	var b strings.Builder
	for i, o := range rs.outs {
		fmt.Fprintf(&b, "--- rank %d ---\n%s\n", i, tail(o.String(), 3000))
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// runRanks launches a session and requires every rank to exit cleanly.
func runRanks(t *testing.T, world int, dir, mode string, resume bool) []rankResult {
	t.Helper()
	rs := launch(t, world, dir, mode, resume)
	for r, err := range rs.wait(3 * time.Minute) {
		if err != nil {
			t.Fatalf("rank %d: %v\n%s", r, err, rs.logs())
		}
	}
	return readRanks(t, dir, world)
}

func readRanks(t *testing.T, dir string, world int) []rankResult {
	t.Helper()
	out := make([]rankResult, world)
	for r := range world {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("rank%d.json", r)))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &out[r]); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, fmt.Sprintf("rank%d.json", r)))
	}
	return out
}

// maxDiff is the largest absolute difference between two float32 byte
// arrays (Inf when their lengths differ).
func maxDiff(a, b []byte) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	x, _ := checkpoint.Tensor{DType: "float32", Data: a}.Floats32()
	y, _ := checkpoint.Tensor{DType: "float32", Data: b}.Floats32()
	d := 0.0
	for i := range x {
		a, b := float64(x[i]), float64(y[i])
		switch {
		case math.IsNaN(a) && math.IsNaN(b): // unscored samples of hard mining
		case math.IsNaN(a) || math.IsNaN(b):
			return math.Inf(1)
		default:
			d = max(d, math.Abs(a-b))
		}
	}
	return d
}

// closeCheckpoints compares two runs' final checkpoints tensor by tensor
// within tol (integer tensors exactly) and returns the largest difference.
func closeCheckpoints(t *testing.T, a, b *checkpoint.Checkpoint, tol float64) float64 {
	t.Helper()
	if len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("%d tensors against %d", len(a.Tensors), len(b.Tensors))
	}
	var names []string
	for n := range a.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	worst := 0.0
	for _, n := range names {
		x, y := a.Tensors[n], b.Tensors[n]
		if x.DType != "float32" || tol == 0 {
			if !bytes.Equal(x.Data, y.Data) {
				t.Errorf("%s (%s) differs", n, x.DType)
			}
			continue
		}
		d := maxDiff(x.Data, y.Data)
		worst = max(worst, d)
		if d > tol {
			t.Errorf("%s: largest difference %.3g, tolerance %.3g", n, d, tol)
		}
	}
	return worst
}

// TestDataParallel trains the same recipe as one process and as two
// processes of a Gloo group on loopback, and checks what distributing
// must not change:
//
//   - with frozen BatchNorm, two ranks at the same global batch compute
//     what one process computes, to rounding: every step's loss, every
//     weight, moment and EMA weight, the out-of-fold probabilities; the
//     two ranks end with bit-identical weights;
//   - a rank killed with SIGKILL mid-epoch, then the group relaunched from
//     the last checkpoint, ends bit-identical to an uninterrupted
//     distributed run;
//   - SIGTERM to one rank stops both at the same step with a checkpoint,
//     and that checkpoint resumes in one process (a world-size change:
//     the data position is in global batches), finishing as the single
//     run does, to rounding.
//
// The tolerance is rounding: the gradient of a batch of 8 is the mean of
// two means of 4 instead of one mean of 8.
func TestDataParallel(t *testing.T) {
	if !torch.BackendAvailable(torch.Gloo) {
		t.Fatal("the shim has no Gloo: install libgloo-dev and rebuild it (make shim)")
	}
	const tol = 1e-5 // measured: 1.2e-7 (weights), 6e-8 (losses)
	single := t.TempDir()
	sl := &stepLosses{loss: map[int64]float64{}}
	res, err := ddpSession(context.Background(), t, single, false, sl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Completed {
		t.Fatal("single-process run did not complete")
	}
	total := res.GlobalStep

	straight := t.TempDir()
	t.Run("matches one process", func(t *testing.T) {
		rr := runRanks(t, 2, straight, "run", false)
		for _, r := range rr {
			if !r.Completed || r.Step != total {
				t.Fatalf("rank %d: completed %v at step %d, want step %d", r.Rank, r.Completed, r.Step, total)
			}
		}
		worstLoss := 0.0
		for step, l := range sl.loss {
			d, ok := rr[0].Losses[step]
			if !ok {
				t.Fatalf("no loss for step %d from rank 0", step)
			}
			worstLoss = max(worstLoss, math.Abs(d-l))
			if math.Abs(d-l) > tol*max(1, math.Abs(l)) {
				t.Errorf("step %d: loss %.7f in two processes, %.7f in one", step, d, l)
			}
		}
		a, b := finalTensors(t, single), finalTensors(t, straight)
		worst := closeCheckpoints(t, a, b, tol)
		if a.State.Samples != b.State.Samples || a.State.GlobalStep != b.State.GlobalStep {
			t.Errorf("position: %d samples at step %d in one process, %d at %d in two", a.State.Samples, a.State.GlobalStep, b.State.Samples, b.State.GlobalStep)
		}
		oa, _ := os.ReadFile(filepath.Join(single, "oof.bin"))
		ob, _ := os.ReadFile(filepath.Join(straight, "oof.bin"))
		if d := maxDiff(oa, ob); len(oa) == 0 || d > tol {
			t.Errorf("out-of-fold probabilities: largest difference %.3g (%d bytes)", d, len(oa))
		}
		w0, _ := os.ReadFile(filepath.Join(straight, "rank0.weights"))
		w1, _ := os.ReadFile(filepath.Join(straight, "rank1.weights"))
		if len(w0) == 0 || !bytes.Equal(w0, w1) {
			t.Error("the two ranks end with different weights")
		}
		t.Logf("%d steps; largest difference from one process: %.3g in the checkpoint, %.3g in a loss", total, worst, worstLoss)
	})
	if t.Failed() {
		return
	}

	t.Run("kill a rank and resume", func(t *testing.T) {
		cut := t.TempDir()
		rs := launch(t, 2, cut, "slow", false)
		killedAt := waitStep(t, cut, total/2+5, func() { rs.cmds[1].Process.Signal(syscall.SIGKILL) }, rs)
		errs := rs.wait(time.Minute)
		if errs[0] == nil {
			t.Fatalf("rank 0 went on without its peer:\n%s", rs.logs())
		}
		if !strings.Contains(rs.outs[0].String(), "all-reduce") && !strings.Contains(rs.outs[0].String(), "allreduce") {
			t.Logf("rank 0's error:\n%s", tail(rs.outs[0].String(), 2000))
		}
		rr := runRanks(t, 2, cut, "run", true)
		if !rr[0].Completed || rr[0].Step != total {
			t.Fatalf("resumed group: %+v, want completed at step %d", rr[0], total)
		}
		a, b := finalTensors(t, straight), finalTensors(t, cut)
		closeCheckpoints(t, a, b, 0)
		if a.State.BestF2 != b.State.BestF2 || a.State.Samples != b.State.Samples {
			t.Errorf("state differs: %+v vs %+v", a.State, b.State)
		}
		oa, _ := os.ReadFile(filepath.Join(straight, "oof.bin"))
		ob, _ := os.ReadFile(filepath.Join(cut, "oof.bin"))
		if len(oa) == 0 || !bytes.Equal(oa, ob) {
			t.Error("out-of-fold probabilities differ")
		}
		t.Logf("rank 1 killed after step %d of %d; resumed bit-identical", killedAt, total)
	})

	t.Run("stop together, resume in one process", func(t *testing.T) {
		dir := t.TempDir()
		rs := launch(t, 2, dir, "slow", false)
		waitStep(t, dir, total/2, func() { rs.cmds[0].Process.Signal(syscall.SIGTERM) }, rs)
		for r, err := range rs.wait(time.Minute) {
			if err != nil {
				t.Fatalf("rank %d after SIGTERM to rank 0: %v\n%s", r, err, rs.logs())
			}
		}
		rr := readRanks(t, dir, 2)
		if rr[0].Stopped != "signal" || rr[1].Stopped != "signal" || rr[0].Step != rr[1].Step {
			t.Fatalf("ranks stopped as %+v and %+v: want both by the signal at one step", rr[0], rr[1])
		}
		got := &stepLosses{loss: map[int64]float64{}}
		res, err := ddpSession(context.Background(), t, dir, true, got, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Completed || res.GlobalStep != total || got.start.WorldWas != 2 {
			t.Fatalf("resumed in one process: %+v (world was %d), want completed at step %d from a checkpoint of 2", res, got.start.WorldWas, total)
		}
		worst := closeCheckpoints(t, finalTensors(t, single), finalTensors(t, dir), tol)
		t.Logf("stopped at step %d by SIGTERM to rank 0; finished in one process within %.3g of the single run", rr[0].Step, worst)
	})
}

// waitStep waits until dir's newest checkpoint is at step at least n, then
// calls act; it returns that step.
func waitStep(t *testing.T, dir string, n int64, act func(), rs *ranks) int64 {
	t.Helper()
	d := checkpoint.Dir{Path: filepath.Join(dir, "checkpoints")}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if ix, err := d.ReadIndex(); err == nil && ix.Latest != "" {
			var step int64
			fmt.Sscanf(ix.Latest, "step-%d.ckpt", &step)
			if step >= n {
				act()
				return step
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	rs.wait(time.Second)
	t.Fatalf("the group never reached step %d:\n%s", n, rs.logs())
	return 0
}
