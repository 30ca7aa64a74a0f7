// Command images measures the image pipeline's throughput (decode +
// augment + normalise into float32 NCHW batches) against the Python stack
// users have (PIL + torchvision transforms under a torch DataLoader), side
// by side in one run, on one core and on all cores.
//
//	go run ./bench/images -n 200
//
// It writes its test images (600x800 JPEGs and ~300px PNGs, photo-like
// content) to -dir once, then runs both implementations over the same files
// with the same operations (the resize320 training pipeline: resize to
// 320x320, random horizontal flip, random brightness/contrast, normalise).
//
// With -pack it also packs each set (as imet datasets pack does) and adds
// rows where Go reads the pack while Python still decodes the files (what
// a PyTorch user runs every epoch), then prints the pack's one-off time
// and size, extrapolated to iMet's 109k images.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"imet/internal/base/cpuinfo"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"imet/internal/vision/loader"
	"imet/internal/vision/packed"
	"imet/internal/vision/pipeline"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "imet-bench-images"), "where the test images are written")
	n := flag.Int("n", 200, "images of each kind (JPEG, PNG)")
	python := flag.String("python", "/usr/bin/python3", "Python with torch, torchvision and PIL; empty to skip")
	pipe := flag.String("pipeline", "resize320", "pipeline whose training chain is measured")
	rounds := flag.Int("rounds", 2, "passes over the images per measurement (best kept)")
	pack := flag.Bool("pack", false, "also measure the Go loader reading a pack of the images (imet datasets pack) against Python decoding the files, and the pack's cost")
	packSide := flag.Int("pack-side", 0, "with -pack: cap the packed images' longest side (0: full size)")
	flag.Parse()
	if err := run(*dir, *n, *python, *pipe, *rounds, *pack, *packSide); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(dir string, n int, python, pipe string, rounds int, pack bool, packSide int) error {
	jpgs, pngs, err := ensureImages(dir, n)
	if err != nil {
		return err
	}
	p, err := pipeline.Get(pipe, nil)
	if err != nil {
		return err
	}
	cores := runtime.NumCPU()
	fmt.Println(cpuinfo.Read())
	fmt.Printf("pipeline %s (train), %d cores, %d JPEGs 600x800 + %d PNGs ~300px\n\n", pipe, cores, len(jpgs), len(pngs))
	fmt.Println("wall: images/s; cpu: images per CPU-second of the whole process, the per-core")
	fmt.Println("figure that survives a busy machine (Python's on 1 core only: its workers are other")
	fmt.Println("processes). Go's cpu on all cores below its 1-core figure: each image costs more")
	fmt.Println("(contention); cpu steady but wall not scaling: the cores were busy or SMT siblings.")
	fmt.Printf("%-9s %-5s %10s %10s %7s %10s %10s %7s\n", "images", "cores", "Go wall", "Py wall", "ratio", "Go cpu", "Py cpu", "ratio")
	type set struct {
		name  string
		files []string
		pack  *packed.Reader
	}
	sets := []set{{"jpeg", jpgs, nil}, {"png", pngs, nil}}
	var costs []string
	if pack {
		for _, s := range sets[:2] {
			r, cost, err := packFiles(dir, s.name, s.files, packSide)
			if err != nil {
				return err
			}
			defer r.Close()
			sets = append(sets, set{s.name + "-pack", s.files, r})
			costs = append(costs, cost)
		}
	}
	for _, set := range sets {
		for _, c := range []int{1, cores} {
			goRate, goCPU, err := goThroughput(set.files, p, c, rounds, set.pack)
			if err != nil {
				return err
			}
			pyRate, pyCPU := math.NaN(), math.NaN()
			if python != "" {
				pyRate, pyCPU, err = pyThroughput(python, set.files, pipe, c, rounds)
				if err != nil {
					return err
				}
			}
			if c > 1 {
				pyCPU = math.NaN()
			}
			fmt.Printf("%-9s %-5d %10.1f %10.1f %6.2fx %10.1f %10.1f %6.2fx\n", set.name, c, goRate, pyRate, goRate/pyRate, goCPU, pyCPU, goCPU/pyCPU)
		}
	}
	if pack {
		fmt.Println("\n-pack rows: Go reads the pack, Python decodes the original files.")
		for _, c := range costs {
			fmt.Println(c)
		}
	}
	return nil
}

// imetImages is the iMet 2019 training + test set size the pack cost is
// extrapolated to.
const imetImages = 109237

// packFiles packs files (all in dir) as imet datasets pack does and
// reports its one-off cost, per image and extrapolated to iMet's size.
func packFiles(dir, name string, files []string, maxSide int) (*packed.Reader, string, error) {
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = filepath.Base(f)
	}
	out := filepath.Join(dir, name+".pack")
	start, c0 := time.Now(), processCPU()
	st, err := packed.Build(out, dir, keys, packed.Options{MaxSide: maxSide})
	if err != nil {
		return nil, "", err
	}
	wall, cpu := time.Since(start).Seconds(), (processCPU() - c0).Seconds()
	r, err := packed.Open(out, dir)
	if err != nil {
		return nil, "", err
	}
	k := float64(imetImages) / float64(st.Images)
	cost := fmt.Sprintf("pack %-4s (max side %d): %d images in %.2fs wall, %.2f CPU-s on %d cores; %.1f MB (%.0f KB/image) from %.1f MB of files; at iMet scale (%d images): %.0f CPU-s (%.0f s on %d cores), %.1f GB",
		name, maxSide, st.Images, wall, cpu, runtime.GOMAXPROCS(0), float64(st.Bytes)/1e6, float64(st.Bytes)/1e3/float64(st.Images),
		float64(st.SourceBytes)/1e6, imetImages, cpu*k, wall*k, runtime.GOMAXPROCS(0), float64(st.Bytes)*k/1e9)
	return r, cost, nil
}

// processCPU is the CPU time used by the whole process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func goThroughput(files []string, p *pipeline.Pipeline, cores, rounds int, pack *packed.Reader) (wall, cpu float64, _ error) {
	prev := runtime.GOMAXPROCS(cores)
	defer runtime.GOMAXPROCS(prev)
	items := make([]loader.Item, len(files))
	for i, f := range files {
		items[i] = loader.Item{Path: f, Target: []float32{1}}
	}
	l, err := loader.New(items, p.Train, loader.Options{BatchSize: 32, Workers: cores, Seed: 1, Shuffle: true, Packed: pack})
	if err != nil {
		return 0, 0, err
	}
	for r := range rounds {
		runtime.GC()
		start, c0 := time.Now(), processCPU()
		count := 0
		for b, err := range l.Epoch(context.Background(), r, 0) {
			if err != nil {
				return 0, 0, err
			}
			count += b.N
			b.Release()
		}
		wall = max(wall, float64(count)/time.Since(start).Seconds())
		cpu = max(cpu, float64(count)/(processCPU()-c0).Seconds())
	}
	return wall, cpu, nil
}

func pyThroughput(python string, files []string, pipe string, cores, rounds int) (wall, cpu float64, _ error) {
	list := filepath.Join(os.TempDir(), fmt.Sprintf("imet-bench-%d.txt", os.Getpid()))
	if err := os.WriteFile(list, []byte(strings.Join(files, "\n")), 0o644); err != nil {
		return 0, 0, err
	}
	defer os.Remove(list)
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "reference.py")
	out, err := exec.Command(python, script, "--list", list, "--workers", fmt.Sprint(cores),
		"--pipeline", pipe, "--rounds", fmt.Sprint(rounds)).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return 0, 0, fmt.Errorf("reference.py: %v: %s", err, ee.Stderr)
		}
		return 0, 0, err
	}
	var res struct{ Rate, CPURate float64 }
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, 0, fmt.Errorf("reference.py output %q: %w", out, err)
	}
	return res.Rate, res.CPURate, nil
}

// ensureImages writes photo-like test images: smooth shapes, gradients and
// fine texture with sensor-like noise, so that JPEG sizes and decoding costs
// resemble photographs' (a flat or pure-noise image would flatter or
// penalise the decoders).
func ensureImages(dir string, n int) (jpgs, pngs []string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	r := rand.New(rand.NewPCG(42, 1))
	for i := range n {
		j := filepath.Join(dir, fmt.Sprintf("photo%03d.jpg", i))
		if _, err := os.Stat(j); err != nil {
			m := synth(r, 600, 800)
			if err := save(j, func(f *os.File) error { return jpeg.Encode(f, m, &jpeg.Options{Quality: 90}) }); err != nil {
				return nil, nil, err
			}
		}
		jpgs = append(jpgs, j)
		p := filepath.Join(dir, fmt.Sprintf("small%03d.png", i))
		if _, err := os.Stat(p); err != nil {
			m := synth(r, 260+r.IntN(80), 260+r.IntN(80))
			if err := save(p, func(f *os.File) error { return png.Encode(f, m) }); err != nil {
				return nil, nil, err
			}
		}
		pngs = append(pngs, p)
	}
	return jpgs, pngs, nil
}

func save(path string, enc func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := enc(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func synth(r *rand.Rand, w, h int) image.Image {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	type blob struct{ x, y, rad, cr, cg, cb float64 }
	blobs := make([]blob, 12)
	for i := range blobs {
		blobs[i] = blob{r.Float64() * float64(w), r.Float64() * float64(h), 30 + r.Float64()*150, r.Float64() * 255, r.Float64() * 255, r.Float64() * 255}
	}
	fx, fy := 0.05+r.Float64()*0.2, 0.05+r.Float64()*0.2
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			cr := 90 + 60*float64(x)/float64(w)
			cg := 80 + 70*float64(y)/float64(h)
			cb := 110.0
			for _, b := range blobs {
				dx, dy := float64(x)-b.x, float64(y)-b.y
				if dx*dx+dy*dy < b.rad*b.rad {
					cr, cg, cb = (cr+b.cr)/2, (cg+b.cg)/2, (cb+b.cb)/2
				}
			}
			tex := 12 * math.Sin(float64(x)*fx) * math.Cos(float64(y)*fy)
			noise := r.NormFloat64() * 4
			m.SetRGBA(x, y, color.RGBA{c8(cr + tex + noise), c8(cg + tex + noise), c8(cb - tex + noise), 255})
		}
	}
	return m
}

func c8(v float64) uint8 { return uint8(max(0, min(255, v))) }
