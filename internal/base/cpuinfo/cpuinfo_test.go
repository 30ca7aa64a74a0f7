package cpuinfo

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		model      string
		flags      []string
	}{
		{"amd", "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_2 avx avx2 fma\n\nprocessor\t: 1\nmodel name\t: other\n", "AMD EPYC 7B13", []string{"sse4_2", "avx", "avx2", "fma"}},
		{"intel", "model name : Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\nflags : avx512bw avx2 avx512f avx512_bf16 amx_tile\n", "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", []string{"avx2", "avx512f", "avx512bw", "avx512_bf16", "amx_tile"}},
		{"empty", "", "unknown", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(strings.NewReader(tc.text))
			if got.Model != tc.model || !reflect.DeepEqual(got.Flags, tc.flags) {
				t.Fatalf("Parse = %q %v, want %q %v", got.Model, got.Flags, tc.model, tc.flags)
			}
		})
	}
}

func TestThreadsPerCore(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
		line string
	}{
		{"model name : AMD EPYC 7B13\nsiblings : 2\ncpu cores : 1\nflags : avx2\n", 2, "cpu: AMD EPYC 7B13 [avx2], 0 logical CPUs, 2 threads per core (SMT)"},
		{"model name : AMD EPYC\nsiblings : 2\ncpu cores : 2\nflags : avx2\n", 1, "cpu: AMD EPYC [avx2], 0 logical CPUs"},
		{"model name : ARM\nflags : neon\n", 0, "cpu: ARM [], 0 logical CPUs"},
		{"model name : X\nsiblings : lots\ncpu cores : 1\n", 0, "cpu: X [], 0 logical CPUs"},
	} {
		got := Parse(strings.NewReader(tc.text))
		if got.ThreadsPerCore != tc.want || got.String() != tc.line {
			t.Errorf("Parse(%q): %d threads per core, %q; want %d, %q", tc.text, got.ThreadsPerCore, got.String(), tc.want, tc.line)
		}
	}
}

// TestReadThisMachine checks the live read agrees with the first model line
// of this machine's /proc/cpuinfo.
func TestReadThisMachine(t *testing.T) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip("no /proc/cpuinfo")
	}
	i := Read()
	if i.CPUs < 1 || !strings.Contains(string(b), i.Model) {
		t.Fatalf("Read() = %+v", i)
	}
	if !strings.HasPrefix(i.String(), "cpu: "+i.Model) {
		t.Fatalf("String() = %q", i.String())
	}
}
