// Command ddp measures data-parallel training on one machine: the same
// global batch trained by one process with T threads and by P processes
// of a Gloo group on loopback with T/P threads each, as imet's trainer
// does it (each rank's share of the batch, DistributedDataParallel-style
// bucketed gradient averaging, the optimizer step). It reports images/s
// of the whole group and the share of step time spent in the all-reduce.
// Configurations alternate round by round, so machine noise hits them
// alike; the driver says whether other processes were competing (load
// average above the cores the run uses).
//
//	go run ./bench/ddp                                  # resnet18, 128 px, batch 32, 1 vs 2 processes
//	go run ./bench/ddp -model resnet50 -size 224 -batch 16 -rounds 3
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"imet/internal/base/cpuinfo"
	"imet/internal/engine/dist"
	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
	"imet/internal/zoo/models"
)

const classes = 1103

func init() { runtime.LockOSThread() }

type result struct {
	ImagesPerS float64 `json:"images_per_s"`
	StepS      float64 `json:"step_s"`
	CommShare  float64 `json:"comm_share"`
	CommS      float64 `json:"comm_s"`
	GradMB     float64 `json:"grad_mb"`
}

func main() {
	model := flag.String("model", "resnet18", "architecture")
	size := flag.Int("size", 128, "image side")
	batch := flag.Int("batch", 32, "global batch")
	steps := flag.Int("steps", 8, "timed steps (after 2 warm-up steps)")
	threads := flag.Int("threads", runtime.NumCPU(), "cores the whole run uses")
	procs := flag.String("procs", "1,2", "process counts to compare")
	rounds := flag.Int("rounds", 2, "rounds (configurations alternate)")
	worker := flag.Bool("worker", false, "internal: run as one rank")
	flag.Parse()
	if *worker {
		res, err := work(*model, *size, *batch, *steps)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ddp worker:", err)
			os.Exit(1)
		}
		if os.Getenv("RANK") == "0" || os.Getenv("RANK") == "" {
			json.NewEncoder(os.Stdout).Encode(res)
		}
		return
	}
	var ps []int
	for _, p := range strings.Split(*procs, ",") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || *batch%n != 0 || *threads%n != 0 {
			fmt.Fprintf(os.Stderr, "ddp: %q processes: want a divisor of the batch %d and of the threads %d\n", p, *batch, *threads)
			os.Exit(2)
		}
		ps = append(ps, n)
	}
	fmt.Println(cpuinfo.Read())
	fmt.Printf("%d cores; libtorch %s\n", runtime.NumCPU(), torch.Version())
	fmt.Printf("%s, %d px, global batch %d, %d timed steps, %d threads in all; load average before: %s\n", *model, *size, *batch, *steps, *threads, loadAvg())
	all := map[int][]result{}
	for r := 0; r < *rounds; r++ {
		for _, p := range ps {
			res, err := launch(p, *threads/p, *model, *size, *batch, *steps)
			if err != nil {
				fmt.Fprintln(os.Stderr, "ddp:", err)
				os.Exit(1)
			}
			all[p] = append(all[p], res)
		}
	}
	fmt.Printf("load average after: %s\n", loadAvg())
	fmt.Println("| processes x threads | images/s (median) | step (s) | all-reduce share of step | gradient MB per step |")
	fmt.Println("|---|---|---|---|---|")
	for _, p := range ps {
		rs := all[p]
		sort.Slice(rs, func(i, j int) bool { return rs[i].ImagesPerS < rs[j].ImagesPerS })
		m := rs[len(rs)/2]
		share := "—"
		if p > 1 {
			share = fmt.Sprintf("%.1f%%", 100*m.CommShare)
		}
		fmt.Printf("| %d x %d | %.1f | %.3f | %s | %.1f |\n", p, *threads/p, m.ImagesPerS, m.StepS, share, m.GradMB)
	}
}

// launch runs p ranks of the measurement, t threads each, and returns
// rank 0's report.
func launch(p, t int, model string, size, batch, steps int) (result, error) {
	exe, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var cmds []*exec.Cmd
	var out0 bytes.Buffer
	for r := range p {
		cmd := exec.Command(exe, "-worker", "-model", model, "-size", strconv.Itoa(size), "-batch", strconv.Itoa(batch), "-steps", strconv.Itoa(steps))
		cmd.Env = append(os.Environ(), "THREADS="+strconv.Itoa(t))
		if p > 1 {
			cmd.Env = append(cmd.Env, "RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(p), "LOCAL_RANK="+strconv.Itoa(r),
				"LOCAL_WORLD_SIZE="+strconv.Itoa(p), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "GLOO_SOCKET_IFNAME=lo")
		}
		if r == 0 {
			cmd.Stdout = &out0
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return result{}, err
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			return result{}, fmt.Errorf("%d processes: %w", p, err)
		}
	}
	var res result
	if err := json.Unmarshal(out0.Bytes(), &res); err != nil {
		return result{}, fmt.Errorf("%d processes: rank 0 said %q: %w", p, out0.String(), err)
	}
	return res, nil
}

// work is one rank: forward and backward on its share of a synthetic
// global batch, gradients averaged over the group, an SGD step.
func work(model string, size, batch, steps int) (result, error) {
	th, _ := strconv.Atoi(os.Getenv("THREADS"))
	torch.SetNumThreads(max(th, 1))
	var g *dist.Group
	env, ok, err := dist.FromEnv(nil)
	if err != nil {
		return result{}, err
	}
	world := 1
	if ok && env.World > 1 {
		if g, err = dist.Join(env, torch.Gloo, torch.CPU); err != nil {
			return result{}, err
		}
		defer g.Close()
		world = env.World
	}
	local := batch / world
	torch.ManualSeed(1)
	m, err := models.New(model, models.Options{NumClasses: classes})
	if err != nil {
		return result{}, err
	}
	s := m.Store()
	s.Train(true)
	opt := optim.NewSGD([]*optim.Group{{Params: s.Params(), LR: 0.01}}, optim.SGDOptions{Momentum: 0.9})
	var params []*torch.Tensor
	gradBytes := 0
	for _, v := range s.Params() {
		params = append(params, v.T)
		gradBytes += 4 * v.T.Numel()
	}
	if g != nil {
		all := make([]*torch.Tensor, 0)
		for _, v := range s.Vars() {
			all = append(all, v.T)
		}
		g.BroadcastTensors(all)
	}
	x := torch.Randn(torch.Float32, torch.CPU, local, 3, size, size)
	y := torch.Rand(torch.Float32, torch.CPU, local, classes).LtScalar(0.01).To(torch.Float32)
	var comm time.Duration
	step := func() error {
		return torch.Run(func() {
			opt.ZeroGrad()
			loss := torch.BCEWithLogits(m.Forward(x), y, nil, nil, torch.ReduceMean)
			loss.Backward()
			if g != nil {
				t0 := time.Now()
				g.AverageGradients(params, []float64{loss.Item()})
				comm += time.Since(t0)
			}
			if err := opt.Step(); err != nil {
				panic(err)
			}
		})
	}
	for range 2 {
		if err := step(); err != nil {
			return result{}, err
		}
	}
	comm = 0
	start := time.Now()
	for range steps {
		if err := step(); err != nil {
			return result{}, err
		}
	}
	el := time.Since(start).Seconds()
	return result{ImagesPerS: float64(batch*steps) / el, StepS: el / float64(steps), CommS: comm.Seconds() / float64(steps),
		CommShare: comm.Seconds() / el, GradMB: float64(gradBytes) / (1 << 20)}, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
