// Package cpuinfo names the processor a figure was measured on, so that
// benchmark tables from different machines are never mixed: the same code
// runs at different speed ratios on AVX-512 Intel and AVX2-only AMD parts.
package cpuinfo

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"strings"
)

// flagsOfInterest are the vector extensions libtorch's and libjpeg-turbo's
// kernels dispatch on; the rest of /proc/cpuinfo's flags do not move the
// figures.
var flagsOfInterest = []string{"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile"}

// Info is the processor model and the vector extensions it has.
type Info struct {
	Model string   // "AMD EPYC 7B13", or "unknown"
	Flags []string // subset of flagsOfInterest, in that order
	CPUs  int      // logical CPUs this process may use
	// ThreadsPerCore is 2 (or more) on an SMT machine, 1 without, 0 when
	// /proc/cpuinfo does not say. Two workers on the two hardware threads
	// of one core share its vector units: a figure that does not scale
	// from 1 to 2 CPUs means something else there than on 2 real cores.
	ThreadsPerCore int
}

// String is the one line benchmarks print before their tables.
func (i Info) String() string {
	s := "cpu: " + i.Model + " [" + strings.Join(i.Flags, " ") + "], " + itoa(i.CPUs) + " logical CPUs"
	if i.ThreadsPerCore > 1 {
		s += ", " + itoa(i.ThreadsPerCore) + " threads per core (SMT)"
	}
	return s
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// atoi is a non-negative decimal, 0 for anything else.
func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1<<20 {
			return 0
		}
		n = 10*n + int(c-'0')
	}
	return n
}

// Read describes the machine it runs on; on systems without /proc/cpuinfo
// the model is "unknown" and no flags are listed.
func Read() Info {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return Info{Model: "unknown", CPUs: runtime.NumCPU()}
	}
	defer f.Close()
	i := Parse(f)
	i.CPUs = runtime.NumCPU()
	return i
}

// Parse reads the first processor's "model name", "flags", "siblings" and
// "cpu cores" lines of a /proc/cpuinfo text (the last two are logical and
// physical CPUs per package, x86 only).
func Parse(r io.Reader) Info {
	info := Info{Model: "unknown"}
	var model, flags string
	var siblings, cores int
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && (model == "" || flags == "") {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		case "flags":
			if flags == "" {
				flags = v
			}
		case "siblings":
			if siblings == 0 {
				siblings = atoi(strings.TrimSpace(v))
			}
		case "cpu cores":
			if cores == 0 {
				cores = atoi(strings.TrimSpace(v))
			}
		}
	}
	if siblings > 0 && cores > 0 && siblings >= cores {
		info.ThreadsPerCore = siblings / cores
	}
	if model != "" {
		info.Model = model
	}
	have := map[string]bool{}
	for _, f := range strings.Fields(flags) {
		have[f] = true
	}
	for _, f := range flagsOfInterest {
		if have[f] {
			info.Flags = append(info.Flags, f)
		}
	}
	return info
}
