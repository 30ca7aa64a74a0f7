// Package procenv gives the process the environment libtorch runs well in,
// before any library reads it.
//
// Two settings matter and both are read by C libraries when the process
// starts, before Go's main runs, so they cannot be set from Go afterwards:
//
//   - OMP_WAIT_POLICY=PASSIVE: libgomp's worker threads otherwise spin while
//     waiting. imet's image loader shares the cores with them, and on this
//     project's 2-core machines a busy core made ResNet-18 training 8x
//     slower (7.8 against 61.7 images/s, docs/benchmarks.md).
//   - glibc malloc tuning (MALLOC_MMAP_MAX_=0, trim threshold, top pad):
//     libtorch frees and reallocates the same large activations every step,
//     and without these every one is a fresh mmap, 3-10x more page faults.
//     The trim threshold is out of reach (1 TiB) because a heap that gives
//     its top back is faulted in again by the next step: at 256 MB,
//     SE-ResNeXt-50 training shrank the heap by ~250 MB after each backward
//     and regrew it in the next forward, 33-95 thousand page faults a step
//     depending on the address layout (docs/benchmarks.md). The peak is the
//     same either way; what changes is that the process keeps it until exit.
//
// Ensure re-executes the binary once with these set, unless the user has
// set them already (their values win).
package procenv

import (
	"os"
	"syscall"
)

// Defaults are the variables Ensure sets when absent.
var Defaults = map[string]string{
	"OMP_WAIT_POLICY":        "PASSIVE",
	"MALLOC_MMAP_MAX_":       "0",
	"MALLOC_TRIM_THRESHOLD_": "1099511627776",
	"MALLOC_TOP_PAD_":        "268435456",
}

// marker is set in the re-executed process so that it does not loop.
const marker = "IMET_PROCENV"

// Missing lists the default variables not set in env (os.Environ form).
func Missing(env []string) []string {
	have := map[string]bool{}
	for _, kv := range env {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				have[kv[:i]] = true
				break
			}
		}
	}
	var out []string
	for k, v := range Defaults {
		if !have[k] {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Ensure re-executes the running binary with the defaults added when any is
// missing. It returns only when nothing needed doing or the re-exec failed
// (then the process simply goes on with the environment it has).
func Ensure() {
	if os.Getenv(marker) != "" {
		return
	}
	env := os.Environ()
	add := Missing(env)
	if len(add) == 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env = append(append(env, add...), marker+"=1")
	syscall.Exec(exe, os.Args, env)
}
