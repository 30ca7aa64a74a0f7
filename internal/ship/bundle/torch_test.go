package bundle

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildTorchProg compiles testdata/torchprog, a cgo program that links
// libtorch, with the bundle run path. The Go build cache keeps the compiled
// C++ between runs, so only the first run pays for it (about 15 s).
func buildTorchProg(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the libtorch bundle test")
	}
	if _, err := os.Stat("/usr/include/ATen/ATen.h"); err != nil {
		t.Skip("libtorch-dev not installed (scripts/deps.sh installs it)")
	}
	bin := filepath.Join(t.TempDir(), "torchprog")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags="+BuildFlag, "./testdata/torchprog")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build torchprog: %v\n%s", err, out)
	}
	return bin
}

// TestTorchBundleRunsWithoutSystemLibtorch bundles a libtorch program,
// copies the bundle to a fresh directory, and runs it there (1) with the
// loader traced, checking every library it maps outside glibc comes from
// the bundle, and (2) as root, in a private mount namespace where the
// system library directory holds nothing but glibc, checking the output
// matches the unbundled run; the unbundled binary must fail there, which
// shows the hiding works.
func TestTorchBundleRunsWithoutSystemLibtorch(t *testing.T) {
	bin := buildTorchProg(t)
	want, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("unbundled run: %v", err)
	}
	if testing.Verbose() {
		c, err := Libraries(bin)
		if err != nil {
			t.Fatal(err)
		}
		var rep strings.Builder
		c.Report(&rep)
		t.Log("\n" + rep.String())
	}
	built := filepath.Join(t.TempDir(), "bundle")
	m, err := Write(built, bin, []File{{Name: "model/arch.txt", Data: []byte("toy\n")}})
	if err != nil {
		t.Fatal(err)
	}
	shipped := len(m.Files) - 2
	t.Logf("bundle: %d libraries, %.1f MB; naive closure %d libraries, %.1f MB; glibc >= %s",
		shipped, float64(m.LibraryBytes)/(1<<20), shipped+len(m.Dropped), float64(m.NaiveBytes)/(1<<20), m.GlibcMin)
	dir := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", built, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	os.RemoveAll(built)
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, BinaryName)

	// (1) Which files does the loader map?
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "LD_DEBUG=libs")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("bundled run: %v\n%s", err, tail(stderr.String()))
	}
	if string(got) != string(want) {
		t.Errorf("bundled output %q, want %q", got, want)
	}
	loaded := 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		_, p, ok := strings.Cut(sc.Text(), "calling init: ")
		if !ok {
			continue
		}
		loaded++
		if !strings.HasPrefix(p, filepath.Join(dir, LibDir)+"/") && !isGlibc(filepath.Base(p)) {
			t.Errorf("loaded from outside the bundle: %s", p)
		}
	}
	if loaded < 10 {
		t.Errorf("LD_DEBUG reported only %d initialised libraries; trace not understood", loaded)
	}

	// (2) Hide the originals.
	if err := CanHideSystemLibraries(); err != nil {
		t.Skip(err)
	}
	hidden := func(prog string) ([]byte, error) {
		return HideSystemLibraries(t.TempDir(), prog).CombinedOutput()
	}
	if out, err := hidden(bin); err == nil {
		t.Fatalf("unbundled binary ran with the system libraries hidden: %s", out)
	} else {
		t.Logf("unbundled binary, system libraries hidden: %s", bytes.TrimSpace(out))
	}
	out, err := hidden(exe)
	if err != nil || string(out) != string(want) {
		t.Fatalf("bundled run with system libraries hidden: %v\noutput %q\nwant %q", err, out, want)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// BenchmarkLibrariesTorch times the closure analysis of a libtorch binary
// (reading ~280 ELF files' dynamic symbol tables, pruning, restoring) side
// by side with ldd, which only lists the naive closure.
func BenchmarkLibrariesTorch(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "torchprog")
	if _, err := os.Stat("/usr/include/ATen/ATen.h"); err != nil {
		b.Skip("libtorch-dev not installed")
	}
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags="+BuildFlag, "./testdata/torchprog")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build torchprog: %v\n%s", err, out)
	}
	b.Run("Libraries", func(b *testing.B) {
		for b.Loop() {
			if _, err := Libraries(bin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ldd", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("ldd", bin).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
