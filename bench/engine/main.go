// Command engine benchmarks imet's libtorch engine against Python PyTorch
// on the same machine: training and inference images/s and peak memory for
// resnet18 and se_resnext50_32x4d at 128 px, batch 32, in float32, bfloat16
// autocast and channels-last. Every measurement runs in a fresh process
// (so peak RSS is that configuration's own) and Go and Python alternate,
// configuration by configuration, so machine noise hits both alike.
//
//	go run ./bench/engine                  # all configurations, one round
//	go run ./bench/engine -models resnet18 -modes train -variants fp32 -rounds 3
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"imet/internal/base/cpuinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"imet/internal/base/procenv"
	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
	"imet/internal/zoo/models"
)

const classes = 1103

// The shape of a measurement: flags of the driver, passed to both workers.
var (
	batch  = 32
	size   = 128
	device = torch.CPU
)

type result struct {
	ImagesPerS float64 `json:"images_per_s"`
	// ImagesPerCPUS is images per second of process CPU time (user+sys,
	// all threads): far less sensitive than wall time to other processes
	// competing for the cores.
	ImagesPerCPUS float64 `json:"images_per_cpu_s"`
	PeakRSSKB     int     `json:"peak_rss_kb"`
	Threads       int     `json:"threads"`
	// MinorFaults counts page faults during the timed steps.
	MinorFaults int64 `json:"minor_faults"`
	// MainThread says the model ran on the process's main thread (where
	// glibc's main arena and the Makefile's malloc settings apply).
	MainThread bool `json:"main_thread"`
	// Steps is how many steps were timed (a paired run's window decides).
	Steps int `json:"steps"`
}

// windowEnv set in a worker's environment makes it a paired worker.
const windowEnv = "IMET_BENCH_WINDOW"

// Pinning the main goroutine to the main thread from init keeps libtorch's
// work on the thread whose allocations come from glibc's main arena, the one
// the MALLOC_* settings tune.
func init() { runtime.LockOSThread() }

func main() {
	worker := flag.Bool("worker", false, "internal: run one configuration and print JSON")
	model := flag.String("model", "resnet18", "internal: worker's model")
	mode := flag.String("mode", "train", "internal: worker's mode")
	variant := flag.String("variant", "fp32", "internal: worker's variant")
	modelsF := flag.String("models", "resnet18,se_resnext50_32x4d", "models to run")
	modesF := flag.String("modes", "train,infer", "train and/or infer")
	variantsF := flag.String("variants", "fp32,bf16,cl", "fp32, bf16 (autocast), fp16 (CUDA autocast, loss scaling), cl (channels-last fp32), bf16cl, fp16cl")
	steps := flag.Int("steps", 0, "timed steps per measurement (0: 5 for resnet18, 3 otherwise; inference x2)")
	threads := flag.Int("threads", runtime.NumCPU(), "libtorch intra-op threads, both sides")
	rounds := flag.Int("rounds", 1, "repetitions of the whole interleaved sweep")
	paired := flag.Duration("paired", 0, "run Go and Python at once, each pinned to half the cores with half the threads, "+
		"and time this window in which both run (e.g. 40s): host load then hits both sides alike")
	python := flag.String("python", "/usr/bin/python3", "Python with torch and torchvision")
	dev := flag.String("device", "cpu", "cpu, cuda or cuda:N, both sides")
	flag.IntVar(&batch, "batch", batch, "images per step")
	flag.IntVar(&size, "size", size, "image side in pixels")
	parity := flag.String("parity", "", "compare -model on -device with bench/engine/parity.py's output in this directory, print JSON")
	flag.Parse()
	d, err := torch.ParseDevice(*dev)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	device = d
	if *parity != "" {
		r, err := runParity(*model, *parity)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: parity:", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		if !r.OK {
			os.Exit(1)
		}
		return
	}
	if *worker {
		r, err := runWorker(*model, *mode, *variant, *steps, *threads)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	if err := drive(strings.Split(*modelsF, ","), strings.Split(*modesF, ","), strings.Split(*variantsF, ","),
		*steps, *threads, *rounds, *python, *paired); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func stepsFor(model, mode string, steps int) int {
	if steps > 0 {
		return steps
	}
	n := 3
	if model == "resnet18" {
		n = 5
	}
	if mode == "infer" {
		n *= 2
	}
	return n
}

func drive(ms, modes, variants []string, steps, threads, rounds int, python string, paired time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	script := filepath.Join(repoRoot(), "bench", "engine", "bench.py")
	env := os.Environ()
	// The settings imet gives itself (glibc malloc, OpenMP), for both sides alike.
	for k, v := range procenv.Defaults {
		if os.Getenv(k) == "" {
			env = append(env, k+"="+v)
		}
	}
	type key struct{ model, mode, variant string }
	goRes, pyRes := map[key][]result{}, map[key][]result{}
	var order []key
	fmt.Println(cpuinfo.Read())
	var halves [2]string
	if paired > 0 {
		n := runtime.NumCPU()
		if n < 2 {
			return fmt.Errorf("-paired needs at least 2 CPUs, have %d", n)
		}
		threads = n / 2
		halves = [2]string{cpuRange(0, n/2), cpuRange(n/2, n/2)}
		fmt.Printf("paired: Go and Python at once, CPUs %s and %s (swapped each round), %v windows\n", halves[0], halves[1], paired)
	}
	fmt.Printf("libtorch %s, %s, %d threads, batch %d, %dpx, %d classes, %d round(s)\n", torch.Version(), device, threads, batch,
		size, classes, rounds)
	for r := 0; r < rounds; r++ {
		for _, m := range ms {
			for _, mo := range modes {
				for _, v := range variants {
					k := key{m, mo, v}
					if r == 0 {
						order = append(order, k)
					}
					n := stepsFor(m, mo, steps)
					// Alternate who goes first, round by round, so a drift in
					// machine load favours neither side.
					var g, p result
					goRun := func() (err error) {
						g, err = run(env, self, "-worker", "-model", m, "-mode", mo, "-variant", v, "-steps",
							strconv.Itoa(n), "-threads", strconv.Itoa(threads), "-device", device.String(),
							"-batch", strconv.Itoa(batch), "-size", strconv.Itoa(size))
						if err != nil {
							err = fmt.Errorf("go %v: %w", k, err)
						}
						return err
					}
					pyRun := func() (err error) {
						p, err = run(env, python, script, m, mo, v, strconv.Itoa(n), strconv.Itoa(threads), device.String(),
							strconv.Itoa(batch), strconv.Itoa(size))
						if err != nil {
							err = fmt.Errorf("python %v: %w", k, err)
						}
						return err
					}
					if paired > 0 {
						a, b := halves[r%2], halves[1-r%2]
						goArgs := []string{"taskset", "-c", a, self, "-worker", "-model", m, "-mode", mo, "-variant", v,
							"-threads", strconv.Itoa(threads), "-device", device.String(), "-batch", strconv.Itoa(batch),
							"-size", strconv.Itoa(size)}
						pyArgs := []string{"taskset", "-c", b, python, script, m, mo, v, "0", strconv.Itoa(threads),
							device.String(), strconv.Itoa(batch), strconv.Itoa(size)}
						if g, p, err = runPaired(append(env, windowEnv+"=1"), goArgs, pyArgs, paired); err != nil {
							return fmt.Errorf("%v: %w", k, err)
						}
					} else {
						first, second := goRun, pyRun
						if r%2 == 1 {
							first, second = pyRun, goRun
						}
						if err := first(); err != nil {
							return err
						}
						if err := second(); err != nil {
							return err
						}
					}
					goRes[k], pyRes[k] = append(goRes[k], g), append(pyRes[k], p)
					fmt.Fprintf(os.Stderr, "round %d %-20s %-5s %-6s go %6.1f img/s %5.1f img/cpu-s %5d MB | py %6.1f img/s %5.1f img/cpu-s %5d MB\n",
						r+1, m, mo, v, g.ImagesPerS, g.ImagesPerCPUS, g.PeakRSSKB/1024, p.ImagesPerS, p.ImagesPerCPUS,
						p.PeakRSSKB/1024)
				}
			}
		}
	}
	fmt.Println()
	fmt.Println("| model | mode | variant | Go img/s | Python img/s | Go/Python speed (per-round ratios) | Go/Python per CPU-second (per round) | Go peak RSS MB | Python peak RSS MB | RSS ratio |")
	fmt.Println("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, k := range order {
		g, p := median(goRes[k]), median(pyRes[k])
		// The ratio is taken within each round, where the two sides ran
		// back to back, then the median over rounds: load shifts between
		// rounds cancel instead of compounding.
		rs := make([]float64, len(goRes[k]))
		txt := make([]string, len(rs))
		for i := range rs {
			rs[i] = goRes[k][i].ImagesPerS / pyRes[k][i].ImagesPerS
			txt[i] = fmt.Sprintf("%.2f", rs[i])
		}
		cs := make([]float64, len(rs))
		ctxt := make([]string, len(rs))
		for i := range cs {
			cs[i] = goRes[k][i].ImagesPerCPUS / pyRes[k][i].ImagesPerCPUS
			ctxt[i] = fmt.Sprintf("%.2f", cs[i])
		}
		fmt.Printf("| %s | %s | %s | %.1f | %.1f | %.2fx (%s) | %.2fx (%s) | %d | %d | %.2fx |\n", k.model, k.mode,
			k.variant, g.ImagesPerS, p.ImagesPerS, med(rs), strings.Join(txt, ", "), med(cs), strings.Join(ctxt, ", "),
			g.PeakRSSKB/1024, p.PeakRSSKB/1024, float64(g.PeakRSSKB)/float64(p.PeakRSSKB))
	}
	return nil
}

// med is the median; with an even count, the mean of the middle two (the
// upper one alone would favour whichever side won the better round).
func med(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// median takes the median speed and the largest peak memory over rounds.
func median(rs []result) result {
	s := make([]float64, len(rs))
	o := result{}
	for i, r := range rs {
		s[i] = r.ImagesPerS
		if r.PeakRSSKB > o.PeakRSSKB {
			o.PeakRSSKB = r.PeakRSSKB
		}
	}
	o.ImagesPerS = med(s)
	return o
}

func run(env []string, name string, args ...string) (result, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%v: %s", err, errb.String())
	}
	var r result
	if err := lastResult(out.String(), &r); err != nil {
		return result{}, err
	}
	return r, nil
}

// lastResult parses a worker's last output line, its JSON result.
func lastResult(out string, r *result) error {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), r); err != nil {
		return fmt.Errorf("bad output %q: %w", out, err)
	}
	return nil
}

func cpuRange(first, n int) string {
	if n == 1 {
		return strconv.Itoa(first)
	}
	return fmt.Sprintf("%d-%d", first, first+n-1)
}

// runPaired starts both workers, waits until both are warm, starts their
// timed loops together, lets them run for window and stops them together.
func runPaired(env []string, goArgs, pyArgs []string, window time.Duration) (g, p result, err error) {
	type worker struct {
		name      string
		cmd       *exec.Cmd
		in        io.WriteCloser
		out       *bufio.Reader
		errb      bytes.Buffer
		res       *result
		remainder bytes.Buffer
	}
	ws := []*worker{{name: "go", res: &g}, {name: "python", res: &p}}
	for i, args := range [][]string{goArgs, pyArgs} {
		w := ws[i]
		w.cmd = exec.Command(args[0], args[1:]...)
		w.cmd.Env = env
		w.cmd.Stderr = &w.errb
		if w.in, err = w.cmd.StdinPipe(); err != nil {
			return g, p, err
		}
		o, err := w.cmd.StdoutPipe()
		if err != nil {
			return g, p, err
		}
		w.out = bufio.NewReader(o)
		if err := w.cmd.Start(); err != nil {
			return g, p, err
		}
		defer w.cmd.Process.Kill()
	}
	for _, w := range ws {
		// Anything before "ready" (a library's banner) is skipped.
		for {
			l, err := w.out.ReadString('\n')
			if err != nil {
				w.cmd.Wait()
				return g, p, fmt.Errorf("%s worker ended before it was ready: %s", w.name, w.errb.String())
			}
			if strings.TrimSpace(l) == "ready" {
				break
			}
		}
	}
	for _, w := range ws {
		fmt.Fprintln(w.in, "go")
	}
	time.Sleep(window)
	for _, w := range ws {
		fmt.Fprintln(w.in, "stop")
	}
	for _, w := range ws {
		io.Copy(&w.remainder, w.out)
		if err := w.cmd.Wait(); err != nil {
			return g, p, fmt.Errorf("%s worker: %v: %s", w.name, err, w.errb.String())
		}
		if err := lastResult(w.remainder.String(), w.res); err != nil {
			return g, p, fmt.Errorf("%s worker: %w", w.name, err)
		}
	}
	return g, p, nil
}

func repoRoot() string {
	d, _ := os.Getwd()
	for p := d; p != "/"; p = filepath.Dir(p) {
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
			return p
		}
	}
	return d
}

func runWorker(name, mode, variant string, steps, threads int) (result, error) {
	unlock := torch.LockThread(threads)
	defer unlock()
	torch.ManualSeed(0)
	m, err := models.New(name, models.Options{NumClasses: classes})
	if err != nil {
		return result{}, err
	}
	s := m.Store()
	if err := s.To(device); err != nil {
		return result{}, err
	}
	cl := strings.HasSuffix(variant, "cl")
	// half is the autocast dtype of the variant, 0 for fp32; fp16 also
	// scales the loss, as torch.cuda.amp.GradScaler on the Python side.
	var half torch.DType
	switch strings.TrimSuffix(variant, "cl") {
	case "bf16":
		half = torch.BFloat16
	case "fp16":
		half = torch.Float16
	}
	cast := func(f func()) {
		if half == 0 {
			f()
			return
		}
		torch.AutocastOn(device, half, f)
	}
	x := torch.Randn(torch.Float32, device, batch, 3, size, size)
	y := torch.Rand(torch.Float32, device, batch, classes).LtScalar(0.01).To(torch.Float32)
	if cl {
		if err := s.ChannelsLast(); err != nil {
			return result{}, err
		}
		x = x.ChannelsLast()
	}
	var step func()
	if mode == "train" {
		s.Train(true)
		opt := optim.NewSGD([]*optim.Group{{Params: s.Params(), LR: 0.01}}, optim.SGDOptions{Momentum: 0.9})
		var scaler *optim.GradScaler
		if half == torch.Float16 {
			scaler = optim.NewGradScaler(optim.GradScalerOptions{})
		}
		step = func() {
			opt.ZeroGrad()
			var loss *torch.Tensor
			cast(func() { loss = torch.BCEWithLogits(m.Forward(x), y, nil, nil, torch.ReduceMean) })
			if scaler != nil {
				scaler.ScaleLoss(loss).Backward()
				if _, err := scaler.Step(opt); err != nil {
					panic(err)
				}
				if err := scaler.Update(); err != nil {
					panic(err)
				}
			} else {
				loss.Backward()
				if err := opt.Step(); err != nil {
					panic(err)
				}
			}
			loss.Item() // waits for the device, as the Python side does
		}
	} else {
		s.Train(false)
		step = func() {
			torch.InferenceMode(func() {
				cast(func() { m.Forward(x).To(torch.Float32).Sum().Item() })
			})
		}
	}
	one := func() error { return torch.Run(step) }
	for i := 0; i < 2; i++ {
		if err := one(); err != nil {
			return result{}, err
		}
	}
	// In a paired run (-paired) the driver starts both sides at once and
	// times a window in which both run, so load on the host hits the two
	// alike: say ready, start on "go", stop after the step during which
	// "stop" arrives.
	var stop atomic.Bool
	window := os.Getenv(windowEnv) != ""
	if window {
		fmt.Println("ready")
		in := bufio.NewScanner(os.Stdin)
		if !in.Scan() || in.Text() != "go" {
			return result{}, fmt.Errorf("paired worker: expected go on stdin")
		}
		go func() {
			in.Scan()
			stop.Store(true)
		}()
	}
	f0 := minflt()
	t0, c0 := time.Now(), cpuSeconds()
	for i := 0; window || i < steps; i++ {
		if window && stop.Load() {
			steps = i
			break
		}
		if err := one(); err != nil {
			return result{}, err
		}
	}
	dt, dc := time.Since(t0).Seconds(), cpuSeconds()-c0
	return result{ImagesPerS: float64(batch*steps) / dt, ImagesPerCPUS: float64(batch*steps) / dc, Steps: steps,
		PeakRSSKB: peakRSS(), Threads: torch.NumThreads(), MinorFaults: minflt() - f0,
		MainThread: syscall.Gettid() == os.Getpid()}, nil
}

func minflt() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func peakRSS() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}
