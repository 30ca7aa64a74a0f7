package torch

/*
#include <stdlib.h>
#include "loader.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"
)

//go:generate go run ./genloader

// ShimName is the file name of the shim library, scripts/build-shim.sh's
// output.
const ShimName = "libimettorch.so"

// EnvTorch names the environment variable that points imet at a shim built
// against another libtorch: a directory holding ShimName, or the file.
const EnvTorch = "IMET_TORCH"

// Candidates lists, in the order they are tried, the files the shim is
// loaded from: $IMET_TORCH alone when it is set (an explicit choice never
// falls back silently), else lib/ beside the executable (a bundle, or
// bin/imet next to bin/lib), else the default build of this source tree
// (bin/lib at the repository root, where `make` puts it; this is how test
// binaries, built in temporary folders, find it).
func Candidates() []string {
	if v := os.Getenv(EnvTorch); v != "" {
		if st, err := os.Stat(v); err == nil && st.IsDir() {
			v = filepath.Join(v, ShimName)
		}
		return []string{v}
	}
	var c []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		c = append(c, filepath.Join(filepath.Dir(exe), "lib", ShimName))
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		c = append(c, filepath.Join(root, "bin", "lib", ShimName))
	}
	return c
}

func init() {
	cs := C.CString(strings.Join(Candidates(), "\n"))
	C.imet_shim_search(cs)
	C.free(unsafe.Pointer(cs))
}

// Available opens the shim now, if no operation has yet, and says why it could
// not: commands call it first so that a missing or stale libimettorch.so is
// one clear line before any work, not a panic in the middle of it.
func Available() error {
	if C.imet_shim_ensure() != 0 {
		return nil
	}
	return errors.New(C.GoString(C.imet_shim_error_copy()) +
		"\n  build it with scripts/build-shim.sh (`make shim`), or set " + EnvTorch + " to a directory holding one")
}

// ShimPath is the file the shim was loaded from ("" before the first operation or Available).
func ShimPath() string { return C.GoString(C.imet_shim_path()) }

// Runtime describes the libtorch the loaded shim runs on.
type Runtime struct {
	Torch       string   `json:"torch"`        // libtorch version, e.g. "1.13.1"
	CUDA        bool     `json:"cuda"`         // whether a CUDA device is usable
	CUDADevices int      `json:"cuda_devices"` // how many
	DeviceNames []string `json:"device_names"` // their names, where the shim was built with CUDA headers
	CuDNN       int      `json:"cudnn"`        // cuDNN version in use, 0 without
	CXX11ABI    int      `json:"cxx11_abi"`    // the libstdc++ string ABI the shim was built with
	Shim        string   `json:"shim"`         // the file loaded
	// Distributed lists the c10d backends the shim was built with (gloo,
	// nccl), for data-parallel training.
	Distributed []string `json:"distributed"`
}

// RuntimeInfo loads the shim and asks it about its libtorch.
func RuntimeInfo() (Runtime, error) {
	if err := Available(); err != nil {
		return Runtime{}, err
	}
	var out *C.char
	if e := C.tt_runtime_info(&out); e != nil {
		msg := C.GoString(e)
		C.tt_free_err(e)
		return Runtime{}, errors.New("torch: runtime_info: " + msg)
	}
	s := C.GoString(out)
	C.free(unsafe.Pointer(out))
	var r Runtime
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Runtime{}, err
	}
	r.Shim = ShimPath()
	r.Distributed = []string{}
	for _, b := range []Backend{Gloo, NCCL} {
		if BackendAvailable(b) {
			r.Distributed = append(r.Distributed, b.String())
		}
	}
	return r, nil
}

// SelfCheck runs a small convolution forward and backward on fixed data
// and returns the sum of its input gradient: a number to compare between
// two shims (two libtorch builds) on one machine, and proof that the loaded
// one computes at all.
func SelfCheck() (float64, error) {
	if err := Available(); err != nil {
		return 0, err
	}
	var sum float64
	err := Run(func() {
		xs := make([]float32, 2*3*8*8)
		for i := range xs {
			xs[i] = float32((i*37)%17)/17 - 0.5
		}
		ws := make([]float32, 4*3*3*3)
		for i := range ws {
			ws[i] = float32((i*11)%7)/7 - 0.5
		}
		x := FromFloat32(xs, 2, 3, 8, 8)
		x.SetRequiresGrad(true)
		y := Conv2d(x, FromFloat32(ws, 4, 3, 3, 3), nil, ConvOpts{Stride: [2]int{1, 1}, Padding: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1})
		y.Relu().Mul(y).Sum().Backward()
		sum = x.Grad().Sum().Item()
	})
	return sum, err
}
