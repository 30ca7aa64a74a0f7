package bundle

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// toyProgram builds, with the system C compiler, a program whose linkage
// exercises both halves of pruning:
//
//	main  -> liba, libunused        (libunused: overlinked, nothing used)
//	liba  -> libmid                 (liba calls b_value but does not list libb:
//	libmid -> libb                   underlinked, it works only through libmid)
//
// It returns the path of main, linked with the bundle run path; the
// libraries sit in lib/ beside it so $ORIGIN/lib finds them at build time.
func toyProgram(t *testing.T) string {
	t.Helper()
	return toyProgramLinked(t, "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib")
}

// toyProgramLinked is toyProgram with the given run path flag for main
// ("" for none: then lib/ is found through -rpath-link only at link time
// and LD_LIBRARY_PATH is needed to run it).
func toyProgramLinked(t *testing.T, rpathFlag string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) to build the test program")
	}
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	if err := os.Mkdir(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	src := map[string]string{
		"b.c":      "int b_value(void) { return 40; }\n",
		"mid.c":    "int mid_unused(void) { return 0; }\n",
		"a.c":      "int b_value(void);\nint a_value(void) { return b_value() + 2; }\n",
		"unused.c": "int unused_value(void) { return 1; }\n",
		"main.c":   "#include <stdio.h>\nint a_value(void);\nint main(void) { printf(\"answer %d\\n\", a_value()); return 0; }\n",
	}
	for n, s := range src {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(cc, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cc %v: %v\n%s", args, err, out)
		}
	}
	so := func(name, file string, libs ...string) {
		args := []string{"-shared", "-fPIC", "-o", "lib/" + name, "-Wl,-soname," + name, file, "-Llib", "-Wl,--no-as-needed"}
		run(append(args, libs...)...)
	}
	so("libb.so", "b.c")
	so("libmid.so", "mid.c", "-lb")
	so("liba.so", "a.c", "-lmid")
	so("libunused.so", "unused.c")
	args := []string{"-o", "main", "main.c", "-Llib", "-Wl,-rpath-link,lib", "-Wl,--no-as-needed", "-la", "-lunused"}
	if rpathFlag != "" {
		args = append(args, rpathFlag)
	}
	run(args...)
	return filepath.Join(dir, "main")
}

func names(ls []*Library) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	slices.Sort(out)
	return out
}

func TestLibrariesPrunesAndRestores(t *testing.T) {
	bin := toyProgram(t)
	c, err := Libraries(bin)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(c.Shipped), []string{"liba.so", "libb.so", "libmid.so"}; !slices.Equal(got, want) {
		t.Errorf("shipped %v, want %v", got, want)
	}
	if got, want := names(c.Dropped), []string{"libunused.so"}; !slices.Equal(got, want) {
		t.Errorf("dropped %v, want %v", got, want)
	}
	if !slices.Equal(c.Binary.Pruned, []string{"libunused.so"}) {
		t.Errorf("binary pruned %v, want [libunused.so]", c.Binary.Pruned)
	}
	for _, l := range c.Shipped {
		// liba references nothing of libmid, but needs it to reach libb:
		// restore must have put the entry back.
		if len(l.Pruned) != 0 {
			t.Errorf("%s: pruned %v, want none", l.Name, l.Pruned)
		}
	}
	if !slices.Contains(names(c.System), "libc.so.6") {
		t.Errorf("system %v lacks libc.so.6", names(c.System))
	}
	if !strings.HasPrefix(c.GlibcMin, "GLIBC_2.") {
		t.Errorf("GlibcMin %q", c.GlibcMin)
	}
	var rep strings.Builder
	if err := c.Report(&rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pruned from main: libunused.so", "libb.so", "libmid.so", "shipped 3 libraries", "naive closure 4 libraries", "1 libraries dropped", "libc.so.6"} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, rep.String())
		}
	}
	for _, l := range c.Shipped {
		if want := map[string]string{"liba.so": "", "libmid.so": "liba.so", "libb.so": "libmid.so"}[l.Name]; !slices.Equal(l.NeededBy, []string{want}) {
			t.Errorf("%s needed by %q, want [%q]", l.Name, l.NeededBy, want)
		}
	}
	// The naive closure is what ldd lists, glibc aside.
	if c.NaiveCount != len(lddNonGlibc(t, bin)) {
		t.Errorf("naive closure has %d libraries, ldd lists %v", c.NaiveCount, lddNonGlibc(t, bin))
	}
}

// lddNonGlibc lists the non-glibc libraries ldd reports for bin.
func lddNonGlibc(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Skipf("ldd: %v", err)
	}
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[1] == "=>" && !isSystem(f[0]) {
			libs = append(libs, f[0])
		}
	}
	return libs
}

func TestWriteRunsFromCopy(t *testing.T) {
	bin := toyProgram(t)
	want, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "b")
	m, err := Write(dir, bin, []File{{Name: "model/labels.txt", Data: []byte("a\nb\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if m.GlibcMin == "" || len(m.Files) != 5 {
		t.Errorf("manifest glibc %q, %d files, want 5", m.GlibcMin, len(m.Files))
	}
	// The copy of main no longer asks for libunused, which is not shipped.
	f, err := elf.Open(filepath.Join(dir, BinaryName))
	if err != nil {
		t.Fatal(err)
	}
	needed, _ := f.DynString(elf.DT_NEEDED)
	f.Close()
	if slices.Contains(needed, "libunused.so") || !slices.Contains(needed, "liba.so") {
		t.Errorf("bundled binary DT_NEEDED %v", needed)
	}
	// Take the build directory away, move the bundle: it must still run.
	os.RemoveAll(filepath.Dir(bin))
	moved := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := Verify(moved); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(filepath.Join(moved, BinaryName)).CombinedOutput()
	if err != nil || string(got) != string(want) {
		t.Fatalf("bundled run: %v, output %q, want %q", err, got, want)
	}
	// A symlink to the bundled binary works too: ld.so takes $ORIGIN from
	// the resolved executable.
	link := filepath.Join(t.TempDir(), "imet-link")
	if err := os.Symlink(filepath.Join(moved, BinaryName), link); err != nil {
		t.Fatal(err)
	}
	if got, err := exec.Command(link).CombinedOutput(); err != nil || string(got) != string(want) {
		t.Errorf("run through a symlink: %v, output %q", err, got)
	}
	// Bundling the bundled binary (imet export run from a bundle) finds
	// its libraries through $ORIGIN/lib and yields the same bundle.
	again := filepath.Join(t.TempDir(), "again")
	m2, err := Write(again, filepath.Join(moved, BinaryName), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m2.Files) != len(m.Files)-1 || m2.LibraryBytes != m.LibraryBytes {
		t.Errorf("re-bundle: %d files, %d library bytes; first bundle %d files (one extra), %d bytes", len(m2.Files), m2.LibraryBytes, len(m.Files), m.LibraryBytes)
	}
	for _, f := range m2.Files {
		if f.Kind == "library" && !strings.HasPrefix(f.Origin, moved) {
			t.Errorf("re-bundle took %s from %s, not from the bundle", f.Path, f.Origin)
		}
	}
}

func TestWriteDirectoryRules(t *testing.T) {
	bin := toyProgram(t)
	t.Run("refuses a foreign directory", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "thesis.tex"), []byte("x"), 0o644)
		if _, err := Write(dir, bin, nil); err == nil || !strings.Contains(err.Error(), "not an imet bundle") {
			t.Fatalf("err %v, want refusal", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("refused directory was changed: %d entries", len(ents))
		}
	})
	t.Run("replaces a bundle and drops stale files", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := Write(dir, bin, []File{{Name: "old.txt", Data: []byte("old")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := Write(dir, bin, []File{{Name: "new.txt", Data: []byte("new")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "old.txt")); !os.IsNotExist(err) {
			t.Errorf("stale old.txt still there: %v", err)
		}
		if err := Verify(dir); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a failed rewrite leaves the old bundle whole", func(t *testing.T) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "b")
		if _, err := Write(dir, bin, []File{{Name: "w.bin", Data: []byte("v1")}}); err != nil {
			t.Fatal(err)
		}
		_, err := Write(dir, bin, []File{{Name: "w.bin", Data: []byte("v2")}, {Name: "x", Source: filepath.Join(parent, "missing")}})
		if err == nil {
			t.Fatal("Write with a missing extra source succeeded")
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "w.bin")); string(got) != "v1" {
			t.Errorf("w.bin = %q after failed rewrite, want v1", got)
		}
		if err := Verify(dir); err != nil {
			t.Error(err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Errorf("leftovers beside the bundle: %v", ents)
		}
	})
	t.Run("reserved extra names", func(t *testing.T) {
		for _, fs := range [][]File{
			{{Name: "imet"}}, {{Name: "manifest.json"}}, {{Name: "lib"}}, {{Name: "lib/liba.so"}},
			{{Name: "../x"}}, {{Name: "/abs"}}, {{Name: ""}}, {{Name: "x"}, {Name: "x"}},
		} {
			if _, err := Write(filepath.Join(t.TempDir(), "b"), bin, fs); err == nil {
				t.Errorf("extra files %v accepted", fs)
			}
		}
		// A dlopen-ed plugin may go beside the libraries.
		if _, err := Write(filepath.Join(t.TempDir(), "b"), bin, []File{{Name: "lib/libplugin.so", Data: []byte("x")}}); err != nil {
			t.Error(err)
		}
	})
	t.Run("verify catches a changed file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := Write(dir, bin, []File{{Name: "w.bin", Data: []byte("weights")}}); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "w.bin"), []byte("Weights"), 0o644)
		if err := Verify(dir); err == nil {
			t.Fatal("Verify accepted a modified file")
		}
	})
	// The libraries are in the manifest and verified like any other file,
	// and lib/ holds nothing else: ld.so would load it.
	t.Run("verify catches a changed or added library", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "b")
		m, err := Write(dir, bin, nil)
		if err != nil {
			t.Fatal(err)
		}
		libs, _ := filepath.Glob(filepath.Join(dir, LibDir, "*"))
		hashed := map[string]bool{}
		for _, f := range m.Files {
			if f.SHA256 != "" && f.Size > 0 {
				hashed[f.Path] = true
			}
		}
		if len(libs) == 0 {
			t.Fatal("the toy bundle ships no library")
		}
		for _, l := range libs {
			if !hashed[LibDir+"/"+filepath.Base(l)] {
				t.Errorf("%s is not hashed in the manifest", l)
			}
		}
		b, _ := os.ReadFile(libs[0])
		b[len(b)/2] ^= 1
		os.WriteFile(libs[0], b, 0o644)
		if err := Verify(dir); err == nil || !strings.Contains(err.Error(), libs[0]+": corrupt or modified") {
			t.Errorf("flipped byte in %s: %v", libs[0], err)
		}
		b[len(b)/2] ^= 1
		os.WriteFile(libs[0], b, 0o644)
		if err := Verify(dir); err != nil {
			t.Fatal(err)
		}
		extra := filepath.Join(dir, LibDir, "libevil.so")
		os.WriteFile(extra, []byte("\x7fELF"), 0o644)
		if err := Verify(dir); err == nil || !strings.Contains(err.Error(), extra+": not listed in") {
			t.Errorf("unlisted library: %v", err)
		}
		os.Remove(extra)
		// A manifest path leaving the bundle is refused, not read.
		data, _ := os.ReadFile(filepath.Join(dir, ManifestName))
		os.WriteFile(filepath.Join(dir, ManifestName), bytes.Replace(data, []byte(`"path": "imet"`), []byte(`"path": "../../etc/passwd"`), 1), 0o644)
		if err := Verify(dir); err == nil || !strings.Contains(err.Error(), "leaves the bundle") {
			t.Errorf("manifest path ../../etc/passwd: %v", err)
		}
	})
}

func TestMaxGlibc(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"GLIBC_2.2.5", "GLIBC_2.14", "GLIBC_2.3.4"}, "GLIBC_2.14"},
		{[]string{"GLIBC_2.34", "GLIBC_PRIVATE", "GLIBCXX_3.4.30", "GLIBC_2.4"}, "GLIBC_2.34"},
		{[]string{"GLIBC_2.3", "GLIBC_2.3.2"}, "GLIBC_2.3.2"},
	} {
		if got := maxGlibc(tc.in); got != tc.want {
			t.Errorf("maxGlibc(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A binary linked without the bundle run path, or with a DT_RUNPATH (which
// ld.so does not apply to the libraries' own dependencies), gets DT_RPATH
// $ORIGIN/lib from patchelf in its bundled copy.
func TestWriteSetsRunPathWithPatchelf(t *testing.T) {
	if _, err := exec.LookPath("patchelf"); err != nil {
		t.Skip("patchelf not installed (scripts/deps.sh installs it)")
	}
	for _, flag := range []string{"", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib"} {
		bin := toyProgramLinked(t, flag)
		// Without DT_RPATH the libraries are found, as by ld.so, through
		// LD_LIBRARY_PATH.
		t.Setenv("LD_LIBRARY_PATH", filepath.Join(filepath.Dir(bin), "lib"))
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := Write(dir, bin, nil); err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(filepath.Join(dir, BinaryName))
		if err != nil {
			t.Fatal(err)
		}
		rpath, _ := f.DynString(elf.DT_RPATH)
		runpath, _ := f.DynString(elf.DT_RUNPATH)
		f.Close()
		if !slices.Equal(rpath, []string{RPath}) || len(runpath) != 0 {
			t.Errorf("%s: bundled binary has DT_RPATH %q DT_RUNPATH %q, want DT_RPATH %q only", flag, rpath, runpath, RPath)
		}
		os.RemoveAll(filepath.Dir(bin))
		os.Unsetenv("LD_LIBRARY_PATH")
		out, err := exec.Command(filepath.Join(dir, BinaryName)).CombinedOutput()
		if err != nil || string(out) != "answer 42\n" {
			t.Errorf("%s: bundled run: %v %q", flag, err, out)
		}
	}
}

func TestCheckFindsMissingLibrary(t *testing.T) {
	bin := toyProgram(t)
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := Write(dir, bin, nil); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); err != nil {
		t.Fatalf("fresh bundle: %v", err)
	}
	// libb is needed only by libmid; without it b_value is undefined too.
	os.Remove(filepath.Join(dir, LibDir, "libb.so"))
	err := Check(dir)
	if err == nil || !strings.Contains(err.Error(), "libb.so needed by libmid.so") || !strings.Contains(err.Error(), "undefined symbol b_value") {
		t.Fatalf("Check after removing libb.so: %v", err)
	}
}

// A GPU driver library (libnvidia-*, libcuda) is never shipped, and may be
// absent from the machine that bundles: it must match the target's kernel
// driver.
func TestDriverLibraryStaysOnTarget(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc)")
	}
	dir := t.TempDir()
	src := map[string]string{
		"drv.c":  "int drv_version(void) { return 525; }\n",
		"main.c": "#include <stdio.h>\nint drv_version(void);\nint main(void) { printf(\"%d\\n\", drv_version()); return 0; }\n",
	}
	for n, s := range src {
		os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "lib"), 0o755)
	for _, args := range [][]string{
		{"-shared", "-fPIC", "-o", "lib/libnvidia-fake.so.1", "-Wl,-soname,libnvidia-fake.so.1", "drv.c"},
		{"-o", "main", "main.c", "-Llib", "-l:libnvidia-fake.so.1", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib"},
	} {
		cmd := exec.Command(cc, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cc %v: %v\n%s", args, err, out)
		}
	}
	bin := filepath.Join(dir, "main")
	for _, present := range []bool{true, false} {
		if !present {
			os.Remove(filepath.Join(dir, "lib", "libnvidia-fake.so.1"))
		}
		out := filepath.Join(t.TempDir(), "b")
		m, err := Write(out, bin, nil)
		if err != nil {
			t.Fatalf("driver present %v: %v", present, err)
		}
		if !slices.Contains(m.SystemLibraries, "libnvidia-fake.so.1") {
			t.Errorf("driver present %v: system libraries %v", present, m.SystemLibraries)
		}
		if _, err := os.Stat(filepath.Join(out, LibDir, "libnvidia-fake.so.1")); err == nil {
			t.Errorf("driver present %v: driver library shipped", present)
		}
	}
}

// A statically linked binary (a pure Go build) needs no libraries: the
// bundle is the binary alone.
func TestWriteStaticBinary(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module static\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"static ok\") }\n"), 0o644)
	bin := filepath.Join(dir, "static")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(t.TempDir(), "b")
	m, err := Write(out, bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 1 || len(m.SystemLibraries) != 0 || m.GlibcMin != "" {
		t.Errorf("manifest %+v", m)
	}
	if got, err := exec.Command(filepath.Join(out, BinaryName)).CombinedOutput(); err != nil || string(got) != "static ok\n" {
		t.Errorf("run: %v %q", err, got)
	}
}
