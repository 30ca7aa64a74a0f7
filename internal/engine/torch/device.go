package torch

/*
#include "shim.h"
*/
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Device is where a tensor's memory lives: the host, or one GPU. Its zero
// value is CPU, so a Device field left unset means the host.
type Device int

// CPU is the host.
const CPU Device = 0

// CUDA returns the device for GPU i (cuda:i), usable where a CUDA build of
// libtorch is linked and the GPU is present (CheckDevice).
func CUDA(i int) Device { return Device(i + 1) }

// IsCUDA reports whether d is a GPU.
func (d Device) IsCUDA() bool { return d > 0 }

// Index is the GPU number of a CUDA device, -1 for the CPU.
func (d Device) Index() int { return int(d) - 1 }

// code is shim.h's device code: TT_DEVICE_CPU, or the GPU's index.
func (d Device) code() C.int {
	if !d.IsCUDA() {
		return C.TT_DEVICE_CPU
	}
	return C.int(d.Index())
}

func deviceOf(code C.int) Device {
	if code == C.TT_DEVICE_CPU {
		return CPU
	}
	return CUDA(int(code))
}

func (d Device) String() string {
	if !d.IsCUDA() {
		return "cpu"
	}
	return fmt.Sprintf("cuda:%d", d.Index())
}

// DeviceSyntax is the spelling ParseDevice accepts, for messages and the
// generated configuration reference.
const DeviceSyntax = "cpu, cuda or cuda:N"

// ParseDevice reads a device name as PyTorch spells it: "cpu", "cuda"
// (GPU 0) or "cuda:N". It checks the spelling only: whether the GPU exists
// is CheckDevice's question.
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n := s[len("cuda:"):]
		// Atoi alone would take "+1"; a device index is plain digits.
		if i, err := strconv.Atoi(n); err == nil && n != "" && n[0] >= '0' && n[0] <= '9' {
			return CUDA(i), nil
		}
	}
	return CPU, fmt.Errorf("device %q: want %s", s, DeviceSyntax)
}

// CheckDevice reports, in one line, why this process cannot use d: a
// CPU-only libtorch (naming the library and how to point imet at a CUDA
// one), a CUDA build that sees no GPU, or a GPU number past the last.
func CheckDevice(d Device) error {
	if !d.IsCUDA() {
		return nil
	}
	n := CUDADeviceCount()
	if d.Index() < n {
		return nil
	}
	lib, cuda := loadedLibtorch()
	return deviceError(d, n, Version(), lib, cuda)
}

// deviceError words CheckDevice's refusal; n is the number of GPUs
// libtorch sees, lib the libtorch file in use and cuda whether it is a
// CUDA build.
func deviceError(d Device, n int, version, lib string, cuda bool) error {
	in := "libtorch " + version
	if lib != "" {
		in += " (" + lib + ")"
	}
	switch {
	case n == 1:
		return fmt.Errorf("device %s: %s sees 1 GPU, cuda:0", d, in)
	case n > 1:
		return fmt.Errorf("device %s: %s sees %d GPUs, cuda:0 to cuda:%d", d, in, n, n-1)
	case cuda:
		return fmt.Errorf("device %s: %s is a CUDA build but sees no GPU; check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES", d, in)
	}
	return fmt.Errorf("device %s: this imet runs %s, a CPU-only build; for a GPU, set IMET_TORCH to a directory holding a libimettorch.so built by scripts/build-shim.sh against a CUDA libtorch", d, in)
}

// loadedLibtorch finds the libtorch this process has mapped (the
// libtorch_cpu library, whichever way it was linked or loaded) and whether
// libtorch's CUDA half is mapped beside it.
func loadedLibtorch() (path string, cuda bool) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		p := fields[len(fields)-1]
		base := filepath.Base(p)
		switch {
		case strings.HasPrefix(base, "libtorch_cpu.so"):
			path = p
		case path == "" && strings.HasPrefix(base, "libtorch.so"):
			path = p
		case strings.HasPrefix(base, "libtorch_cuda") || strings.HasPrefix(base, "libc10_cuda.so"):
			cuda = true
		}
	}
	return path, cuda
}

// CUDADeviceCount is the number of usable GPUs; 0 with a CPU-only libtorch.
func CUDADeviceCount() int { return int(C.tt_cuda_device_count()) }

// SetCudnnBenchmark turns cuDNN's autotuner on or off for the process
// (torch.backends.cudnn.benchmark): convolutions time their algorithms on
// the first batch of each shape and keep the fastest, which may change
// float rounding between runs. Without CUDA it has no effect.
func SetCudnnBenchmark(on bool) { check("set_cudnn_benchmark", C.tt_set_cudnn_benchmark(b2i(on))) }

// CudnnBenchmark reports the autotuner switch.
func CudnnBenchmark() bool { return C.tt_get_cudnn_benchmark() != 0 }
