package bundle

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"imet/internal/base/atomicfile"
	"imet/internal/base/snippet"
)

// Format identifies a bundle manifest; Write refuses to write into a
// non-empty directory whose manifest.json does not carry it.
const Format = "imet-bundle/1"

// BinaryName is the file name of the executable inside a bundle, and
// ManifestName the name of its manifest.
const (
	BinaryName   = "imet"
	ManifestName = "manifest.json"
	LibDir       = "lib"
)

// RPath is the run path the bundled binary must carry as DT_RPATH, so that
// ld.so finds every library, including those loaded by other libraries,
// in the bundle's lib/ folder. Build with BuildFlag to get it.
const RPath = "$ORIGIN/" + LibDir

// BuildFlag is the go build -ldflags value that gives a cgo binary the
// DT_RPATH a bundle needs: --disable-new-dtags makes the linker emit
// DT_RPATH, which ld.so also applies to the dependencies of dependencies,
// where a DT_RUNPATH would only cover the binary's own DT_NEEDED entries.
const BuildFlag = `-extldflags "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib"`

// File is an extra file a bundle carries (model weights, label names,
// thresholds, configuration): either copied from Source or holding Data.
// A library the binary opens with dlopen, which DT_NEEDED analysis cannot
// see, goes under "lib/", where the binary's run path finds it.
type File struct {
	Name   string      // slash-separated path inside the bundle, e.g. "model/weights.bin"
	Source string      // file to copy; used when Data is nil
	Data   []byte      // content, when not copied from a file
	Mode   fs.FileMode // permission bits; 0 means 0644
}

// ManifestFile records one file of a bundle.
type ManifestFile struct {
	Path   string `json:"path"` // slash-separated, relative to the bundle
	Kind   string `json:"kind"` // "binary", "library" or "extra"
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Origin is where the file came from on the machine that built the
	// bundle; Pruned the DT_NEEDED entries removed from a library's copy.
	Origin   string   `json:"origin,omitempty"`
	Pruned   []string `json:"pruned_needed,omitempty"`
	GlibcMin string   `json:"glibc_min,omitempty"`
}

// Build describes the bundled binary and the bundling run.
type Build struct {
	Module   string    `json:"module,omitempty"`
	Version  string    `json:"version,omitempty"`
	Revision string    `json:"revision,omitempty"`
	Dirty    bool      `json:"dirty,omitempty"`
	Go       string    `json:"go,omitempty"`
	OS       string    `json:"os"`
	Arch     string    `json:"arch"`
	Created  time.Time `json:"created"`
}

// Manifest is written to DIR/manifest.json and describes a bundle: every
// file with its hash, and what the target system must provide.
type Manifest struct {
	Format string `json:"format"`
	Binary string `json:"binary"`
	// GlibcMin is the oldest glibc the target may run (highest GLIBC_x.y
	// version any bundled object requires); SystemLibraries the glibc
	// libraries taken from the target.
	GlibcMin        string         `json:"glibc_min"`
	SystemLibraries []string       `json:"system_libraries"`
	Build           Build          `json:"build"`
	Files           []ManifestFile `json:"files"`
	// Dropped names the libraries of the naive closure left out; NaiveBytes
	// and LibraryBytes size the naive closure and the shipped libraries.
	Dropped      []string `json:"dropped"`
	NaiveBytes   int64    `json:"naive_bytes"`
	LibraryBytes int64    `json:"library_bytes"`
}

// Write makes dir a self-contained bundle of binary: the binary as
// dir/imet, the reduced closure of its shared libraries (see Libraries) in
// dir/lib/ with unused DT_NEEDED entries removed, the extra files, and
// dir/manifest.json. Write refuses a dir that is neither absent, empty,
// nor a bundle.
//
// The bundle is assembled in a hidden sibling folder (every file through
// internal/base/atomicfile), checked with Check, and only then swapped in place
// of dir by two renames: a failure at any point leaves dir as it was, and a
// reader never sees a mix of two bundles.
//
// The binary must carry DT_RPATH $ORIGIN/lib (build it with
// -ldflags=BuildFlag). If it does not, the copy is given one with patchelf
// when patchelf is installed, and Write fails otherwise.
//
// plugins are shared libraries the binary opens at run time with dlopen
// (imet's libimettorch.so): no DT_NEEDED names them, so each is shipped in
// lib/ under its file name together with its own reduced closure.
func Write(dir, binary string, extra []File, plugins ...string) (m *Manifest, err error) {
	dir = filepath.Clean(dir)
	if _, err := checkDir(dir); err != nil {
		return nil, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o755); err != nil {
		return nil, err
	}
	if m, err = assemble(stage, binary, extra, plugins); err != nil {
		return nil, err
	}
	if err := swapIn(stage, dir); err != nil {
		return nil, err
	}
	return m, nil
}

// swapIn replaces dir, if present, by stage.
func swapIn(stage, dir string) error {
	old := stage + ".old"
	hadOld := false
	if err := os.Rename(dir, old); err == nil {
		hadOld = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(stage, dir); err != nil {
		if hadOld {
			os.Rename(old, dir)
		}
		return err
	}
	if d, err := os.Open(filepath.Dir(dir)); err == nil {
		d.Sync()
		d.Close()
	}
	if hadOld {
		return os.RemoveAll(old)
	}
	return nil
}

// assemble writes the bundle of binary into the empty folder dir.
func assemble(dir, binary string, extra []File, plugins []string) (*Manifest, error) {
	c, err := Libraries(binary)
	if err != nil {
		return nil, err
	}
	if err := c.addPlugins(plugins); err != nil {
		return nil, err
	}
	bin := c.objs[""]
	// A DT_RUNPATH would cover only the binary's own DT_NEEDED entries,
	// and it disables DT_RPATH: replace it. A statically linked binary has
	// no dynamic section to carry a run path (patchelf refuses it); it is
	// shipped as it is, with the plugins beside it.
	needPatchelf := len(c.Shipped) > 0 && bin.dyn != nil && (len(bin.runpath) > 0 || !slices.Contains(bin.rpath, RPath))
	taken := map[string]bool{}
	for _, l := range c.Shipped {
		taken[LibDir+"/"+l.Name] = true
	}
	for _, f := range extra {
		if err := checkName(f.Name); err != nil {
			return nil, err
		}
		if taken[f.Name] {
			return nil, fmt.Errorf("bundle: extra file %q clashes with another file of the bundle", f.Name)
		}
		taken[f.Name] = true
	}
	if err := os.MkdirAll(filepath.Join(dir, LibDir), 0o755); err != nil {
		return nil, err
	}
	m := &Manifest{
		Format:     Format,
		Binary:     BinaryName,
		GlibcMin:   c.GlibcMin,
		Build:      readBuild(binary),
		NaiveBytes: c.NaiveBytes,
	}
	for _, l := range c.System {
		m.SystemLibraries = append(m.SystemLibraries, l.Name)
	}
	for _, l := range c.Dropped {
		m.Dropped = append(m.Dropped, l.Name)
	}

	binFile := filepath.Join(dir, BinaryName)
	mf, err := writeELF(binFile, c.objs[""], c.Binary.Pruned, false, 0o755)
	if err != nil {
		return nil, err
	}
	if needPatchelf {
		if mf, err = setRPath(binFile, binary); err != nil {
			return nil, err
		}
	}
	mf.Path, mf.Kind, mf.Origin, mf.Pruned, mf.GlibcMin = BinaryName, "binary", binary, c.Binary.Pruned, c.Binary.GlibcMin
	m.Files = append(m.Files, mf)
	for _, l := range c.Shipped {
		mf, err := writeELF(filepath.Join(dir, LibDir, l.Name), c.objs[l.Name], l.Pruned, true, 0o644)
		if err != nil {
			return nil, err
		}
		mf.Path, mf.Kind, mf.Origin, mf.Pruned, mf.GlibcMin = LibDir+"/"+l.Name, "library", l.Path, l.Pruned, l.GlibcMin
		m.Files = append(m.Files, mf)
		m.LibraryBytes += mf.Size
	}
	for _, f := range extra {
		mf, err := writeExtra(dir, f)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, mf)
	}
	// Last line of defence before committing: would ld.so load it?
	if err := Check(dir); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, ManifestName), append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// ReadManifest reads the manifest of the bundle in dir.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestName)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%s: format %s, want %q", p, snippet.Quote(m.Format), Format)
	}
	return &m, nil
}

// Verify checks the bundle in dir against its manifest, e.g. after copying
// it to another machine and before every prediction: every file the
// manifest lists (the binary, each library under lib/, each extra file) is
// present with its recorded size and SHA-256, no listed path leaves dir,
// and lib/ holds nothing the manifest does not list, since ld.so and
// dlopen search lib/ through the binary's run path. The first problem is
// returned, naming the file.
func Verify(dir string) error {
	m, err := ReadManifest(dir)
	if err != nil {
		return err
	}
	manifest := filepath.Join(dir, ManifestName)
	listed := map[string]bool{}
	for _, f := range m.Files {
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return fmt.Errorf("%s: file path %s leaves the bundle", manifest, snippet.Quote(f.Path))
		}
		listed[f.Path] = true
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		fh, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("bundle %s: %w", dir, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || sum != f.SHA256 {
			return fmt.Errorf("%s: corrupt or modified: %d bytes, SHA-256 %s; %s records %d bytes, SHA-256 %s",
				p, n, sum[:12], manifest, f.Size, f.SHA256[:min(12, len(f.SHA256))])
		}
	}
	return filepath.WalkDir(filepath.Join(dir, LibDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("bundle %s: %w", dir, err)
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !listed[filepath.ToSlash(rel)] {
			return fmt.Errorf("%s: not listed in %s: the bundled binary could load it; remove it or export the bundle again", p, manifest)
		}
		return nil
	})
}

// checkDir returns the manifest of the bundle already in dir, nil when dir
// is absent or empty, and an error when dir holds anything else.
func checkDir(dir string) (*Manifest, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: not empty and not an imet bundle, refusing to write into it (%v)", dir, err)
	}
	return m, nil
}

func checkName(name string) error {
	if name == "" || name == "." || !fs.ValidPath(name) || name == BinaryName || name == ManifestName || name == LibDir {
		return fmt.Errorf("bundle: invalid or reserved extra file name %q", name)
	}
	return nil
}

// writeELF copies o to dst with the DT_NEEDED entries in pruned removed
// from its dynamic section and, for a library (dropRunPath), any
// DT_RPATH/DT_RUNPATH other than "$ORIGIN" removed, so that its
// dependencies are searched through the binary's DT_RPATH, i.e. in the
// bundle. Removed entries are closed up and the freed slots at the end of
// the section become DT_NULL; nothing else in the file changes.
func writeELF(dst string, o *object, pruned []string, dropRunPath bool, perm fs.FileMode) (ManifestFile, error) {
	f, err := elf.Open(o.path)
	if err != nil {
		return ManifestFile{}, err
	}
	// DT_NEEDED strings, in the order of the entries.
	names, _ := f.DynString(elf.DT_NEEDED)
	f.Close()
	i := 0
	drop := map[string]bool{}
	for _, p := range pruned {
		drop[p] = true
	}
	var out []dynEntry
	for _, e := range o.dyn {
		switch e.tag {
		case elf.DT_NEEDED:
			name := names[i]
			i++
			if drop[name] {
				continue
			}
		case elf.DT_RPATH, elf.DT_RUNPATH:
			keepOrigin := e.tag == elf.DT_RUNPATH && slices.Equal(o.runpath, []string{"$ORIGIN"}) ||
				e.tag == elf.DT_RPATH && slices.Equal(o.rpath, []string{"$ORIGIN"})
			if dropRunPath && !keepOrigin {
				continue
			}
		}
		out = append(out, e)
		if e.tag == elf.DT_NULL {
			break
		}
	}
	if o.dyn == nil { // statically linked
		return copyPatched(dst, o.path, 0, nil, perm)
	}
	dyn := encodeDyn(out, o.dynSize, o.order, o.is64)
	return copyPatched(dst, o.path, o.dynOff, dyn, perm)
}

// copyPatched copies src to dst atomically, replacing the bytes at off with
// patch, and returns size and hash of what it wrote.
func copyPatched(dst, src string, off int64, patch []byte, perm fs.FileMode) (ManifestFile, error) {
	in, err := os.Open(src)
	if err != nil {
		return ManifestFile{}, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return ManifestFile{}, err
	}
	var r io.Reader = in
	if patch != nil {
		r = io.MultiReader(io.NewSectionReader(in, 0, off), bytes.NewReader(patch),
			io.NewSectionReader(in, off+int64(len(patch)), st.Size()-off-int64(len(patch))))
	}
	return writeHashed(dst, r, perm)
}

func writeHashed(dst string, r io.Reader, perm fs.FileMode) (ManifestFile, error) {
	h := sha256.New()
	var n int64
	err := atomicfile.Write(dst, perm, func(w io.Writer) error {
		var err error
		n, err = io.Copy(io.MultiWriter(w, h), r)
		return err
	})
	if err != nil {
		return ManifestFile{}, err
	}
	return ManifestFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func writeExtra(dir string, f File) (ManifestFile, error) {
	dst := filepath.Join(dir, filepath.FromSlash(f.Name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return ManifestFile{}, err
	}
	perm := f.Mode.Perm()
	if perm == 0 {
		perm = 0o644
	}
	var r io.Reader
	origin := f.Source
	if f.Data != nil {
		r, origin = bytes.NewReader(f.Data), ""
	} else {
		in, err := os.Open(f.Source)
		if err != nil {
			return ManifestFile{}, err
		}
		defer in.Close()
		r = in
	}
	mf, err := writeHashed(dst, r, perm)
	mf.Path, mf.Kind, mf.Origin = f.Name, "extra", origin
	return mf, err
}

// setRPath gives the bundled binary at path DT_RPATH $ORIGIN/lib with
// patchelf, for binaries not linked with BuildFlag.
func setRPath(path, origin string) (ManifestFile, error) {
	pe, err := exec.LookPath("patchelf")
	if err != nil {
		return ManifestFile{}, fmt.Errorf("%s: lacks DT_RPATH %s; relink with go build -ldflags='%s' or install patchelf", origin, RPath, BuildFlag)
	}
	// patchelf rewrites in place; work on a copy so path stays whole.
	work := path + ".rpath"
	if _, err := copyPatched(work, path, 0, nil, 0o755); err != nil {
		return ManifestFile{}, err
	}
	defer os.Remove(work)
	if out, err := exec.Command(pe, "--force-rpath", "--set-rpath", RPath, work).CombinedOutput(); err != nil {
		return ManifestFile{}, fmt.Errorf("patchelf %s: %v: %s", origin, err, out)
	}
	return copyPatched(path, work, 0, nil, 0o755)
}

func readBuild(binary string) Build {
	b := Build{OS: runtime.GOOS, Arch: runtime.GOARCH, Created: time.Now().UTC().Truncate(time.Second)}
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return b
	}
	b.Module, b.Version, b.Go = bi.Main.Path, bi.Main.Version, bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Dirty = s.Value == "true"
		}
	}
	return b
}
