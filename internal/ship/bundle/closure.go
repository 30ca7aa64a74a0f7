package bundle

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Library is one shared library of a binary's dependency closure, named by
// the DT_NEEDED string that loads it (normally its soname), which is also
// its file name inside a bundle.
type Library struct {
	Name string // DT_NEEDED name, e.g. "libc10.so.1.13"
	Path string // where the loader finds it on this machine
	Size int64  // bytes (of the file Path points to)
	// Needed is the library's DT_NEEDED list as found on this machine;
	// Pruned the entries the bundled copy drops because this library
	// references no symbol any of them defines.
	Needed []string
	Pruned []string
	// NeededBy names the objects whose kept DT_NEEDED entries load this
	// library ("" is the binary): why it is shipped.
	NeededBy []string
	// GlibcMin is the highest GLIBC_x.y this file requires: when a target's
	// glibc is too old, it names the file to blame.
	GlibcMin string
}

// Closure is the set of shared libraries a binary needs at run time, split
// into what a bundle ships, what the target system provides (glibc, GPU
// drivers) and
// what the full ldd-style closure holds but is never used.
type Closure struct {
	Binary *Library // the executable itself; Pruned applies to it too
	// Shipped are the libraries a bundle carries, in the loader's
	// breadth-first load order.
	Shipped []*Library
	// System are the libraries the reduced closure loads from the target
	// system: glibc's, and GPU driver libraries, which must match the
	// target's kernel driver.
	System []*Library
	// Dropped are the libraries of the naive closure that no shipped object
	// needs once unreferenced DT_NEEDED entries are pruned.
	Dropped []*Library
	// GlibcMin is the highest GLIBC_x.y version any shipped object requires:
	// the oldest glibc the target may have.
	GlibcMin string
	// NaiveCount and NaiveBytes size the unpruned closure (what ldd lists,
	// system libraries excluded); ShippedBytes sizes Shipped.
	NaiveCount   int
	NaiveBytes   int64
	ShippedBytes int64

	objs map[string]*object // by DT_NEEDED name; "" is the binary
}

// glibcNames are the libraries glibc itself installs. They are tied to the
// dynamic loader of the target system and must come from there: a bundle
// never ships them.
var glibcNames = []string{
	"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "libc.so.6", "libm.so.6",
	"libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
	"libresolv.so.2", "libanl.so.1", "libmvec.so.1", "libBrokenLocale.so.1",
	"libthread_db.so.1", "libc_malloc_debug.so.0", "libnsl.so.1", "libnss_*",
}

// AlwaysKeep lists (path.Match patterns over DT_NEEDED names) libraries
// whose DT_NEEDED entries are never pruned even when no symbol of theirs is
// referenced: they matter through what they do when loaded. libtorch's
// backends register their operators from static constructors (PyTorch asks
// to link libtorch_cuda with --no-as-needed for exactly this reason); the
// OpenMP and BLAS runtimes set up thread pools. Add to it before calling
// Libraries for other such libraries.
var AlwaysKeep = []string{
	"libtorch*.so*", "libc10*.so*", "libgomp.so*", "libiomp5.so*",
	"libopenblas*.so*", "libblas.so*", "liblapack.so*", "libcudart*.so*",
}

// driverNames are user-space halves of GPU drivers. They must match the
// kernel driver of the machine they run on, so, like glibc, they come from
// the target and are never shipped.
var driverNames = []string{
	"libcuda.so*", "libnvidia-*.so*", "libnvcuvid.so*", "libamdhip64.so*", "libhsa-runtime64.so*",
}

func isGlibc(name string) bool { return matchAny(glibcNames, name) }

// isSystem reports whether name is taken from the target system.
func isSystem(name string) bool { return isGlibc(name) || matchAny(driverNames, name) }

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Libraries computes the dependency closure of the dynamically linked
// executable at binary, then the reduced closure a bundle ships: each
// DT_NEEDED entry, of the binary and of every library, is pruned when the
// library it names defines no symbol the depender references (the
// after-the-fact equivalent of linking with --as-needed), and pruning is
// undone wherever the reduced closure would leave a reference unresolved that
// the full closure resolved, until nothing changes.
//
// Libraries are located as ld.so does: the DT_RPATH of the depender and of
// the executable (unless the depender has a DT_RUNPATH), LD_LIBRARY_PATH,
// the depender's DT_RUNPATH, the ld.so cache, the default directories. So
// LD_LIBRARY_PATH=/opt/libtorch/lib bundles that libtorch, as running the
// binary with it would load it.
func Libraries(binary string) (*Closure, error) {
	r, err := newResolver()
	if err != nil {
		return nil, err
	}
	bin, err := readObject(binary)
	if err != nil {
		return nil, err
	}
	c := &Closure{objs: map[string]*object{"": bin}}
	c.Binary = &Library{Name: filepath.Base(binary), Path: binary, Size: bin.size, Needed: bin.needed}

	// Naive closure: everything ld.so would load, breadth first.
	paths := map[string]string{}
	queue := []string{""}
	for len(queue) > 0 {
		o := c.objs[queue[0]]
		queue = queue[1:]
		for _, n := range o.needed {
			if _, seen := paths[n]; seen {
				continue
			}
			p, err := r.find(n, o, bin)
			if err != nil && matchAny(driverNames, n) {
				// A GPU driver library absent here (bundling a CUDA build
				// on a machine without the driver): the target provides
				// it, and nothing can be learnt about it here.
				paths[n] = ""
				c.objs[n] = &object{path: n + " (target system, absent here)", soname: n, defined: map[string]bool{}}
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%s: needed by %s: %w", n, o.path, err)
			}
			paths[n] = p
			queue = append(queue, n)
			c.objs[n] = nil // placeholder; read below, in parallel
		}
		if err := c.readPending(paths); err != nil {
			return nil, err
		}
	}
	for n, o := range c.objs {
		if n != "" && !isSystem(n) {
			c.NaiveCount++
			c.NaiveBytes += o.size
		}
	}

	pruned := c.prune()
	if err := c.restore(pruned); err != nil {
		return nil, err
	}
	c.collect(pruned)
	return c, nil
}

// addPlugins merges into c each plugin (a library loaded with dlopen) and
// its reduced closure: the plugin is shipped as a library of its own name,
// its dependencies once each, in the order the loader would open them.
func (c *Closure) addPlugins(plugins []string) error {
	have := map[string]bool{}
	for _, l := range c.Shipped {
		have[l.Name] = true
	}
	sys := map[string]bool{}
	for _, l := range c.System {
		sys[l.Name] = true
	}
	for _, p := range plugins {
		pc, err := Libraries(p)
		if err != nil {
			return fmt.Errorf("plugin %s: %w", p, err)
		}
		self := *pc.Binary
		self.NeededBy = []string{"dlopen"}
		c.objs[self.Name] = pc.objs[""]
		libs := append([]*Library{&self}, pc.Shipped...)
		for _, l := range libs {
			if have[l.Name] {
				continue
			}
			have[l.Name] = true
			if l != &self {
				c.objs[l.Name] = pc.objs[l.Name]
			}
			c.Shipped = append(c.Shipped, l)
			c.ShippedBytes += l.Size
		}
		for _, l := range pc.System {
			if !sys[l.Name] {
				sys[l.Name] = true
				c.System = append(c.System, l)
			}
		}
		c.NaiveCount += pc.NaiveCount + 1
		c.NaiveBytes += pc.NaiveBytes + self.Size
		c.GlibcMin = maxGlibc([]string{c.GlibcMin, pc.GlibcMin, self.GlibcMin})
	}
	return nil
}

// readPending parses, in parallel, the objects queued but not yet read.
func (c *Closure) readPending(paths map[string]string) error {
	var todo []string
	for n, o := range c.objs {
		if o == nil {
			todo = append(todo, n)
		}
	}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, n := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func(n string) {
			defer wg.Done()
			defer func() { <-sem }()
			o, err := readObject(paths[n])
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			c.objs[n] = o
		}(n)
	}
	wg.Wait()
	return firstErr
}

// edge is a DT_NEEDED entry: from (a DT_NEEDED name, "" for the binary)
// needs to.
type edge struct{ from, to string }

// prune returns the DT_NEEDED entries whose library provides nothing the
// depender references. An entry survives when the depender has a version
// requirement on that file (ld.so asserts such files are loaded), when the
// library is glibc or in AlwaysKeep, or when it defines a symbol the
// depender references, weak references included (a weak reference that
// resolves changes behaviour, e.g. libstdc++ probing for pthreads).
func (c *Closure) prune() map[edge]bool {
	pruned := map[edge]bool{}
	for from, o := range c.objs {
		for _, to := range o.needed {
			if isSystem(to) || matchAny(AlwaysKeep, to) || o.verneedFiles[to] {
				continue
			}
			dep := c.objs[to]
			used := false
			for _, ref := range o.undef {
				if dep.provides(ref) {
					used = true
					break
				}
			}
			if !used {
				pruned[edge{from, to}] = true
			}
		}
	}
	return pruned
}

// reach returns the names loaded from start following DT_NEEDED entries
// that are not in pruned, in breadth-first order.
func (c *Closure) reach(start string, pruned map[edge]bool) []string {
	seen := map[string]bool{start: true}
	order := []string{start}
	for i := 0; i < len(order); i++ {
		from := order[i]
		for _, to := range c.objs[from].needed {
			if !seen[to] && !pruned[edge{from, to}] {
				seen[to] = true
				order = append(order, to)
			}
		}
	}
	return order
}

// restore undoes pruning until every symbol reference of every object in
// the reduced closure that the full closure resolves is resolved again.
// This catches underlinked libraries, which use symbols of a library they
// do not list themselves but reach through one of their DT_NEEDED entries.
func (c *Closure) restore(pruned map[edge]bool) error {
	all := map[string]bool{}
	for _, n := range c.reach("", nil) {
		all[n] = true
	}
	for round := 0; ; round++ {
		if round > len(c.objs)+1 {
			return fmt.Errorf("bundle: pruning did not reach a fixed point")
		}
		in := c.reach("", pruned)
		inSet := map[string]bool{}
		for _, n := range in {
			inSet[n] = true
		}
		changed := false
		for _, from := range in {
			for _, ref := range c.objs[from].undef {
				if c.providedBy(ref, inSet) != "" {
					continue
				}
				prov := c.providedBy(ref, all)
				if prov == "" {
					continue // unresolved in the full closure too
				}
				if c.unprune(from, prov, inSet, pruned) {
					changed = true
				} else {
					return fmt.Errorf("bundle: %s references %s from %s but no pruned DT_NEEDED leads there", c.objs[from].path, ref.name, prov)
				}
			}
		}
		if !changed {
			return nil
		}
	}
}

// providedBy names an object in set that satisfies ref, or "".
func (c *Closure) providedBy(ref symRef, set map[string]bool) string {
	if ref.lib != "" && set[ref.lib] && c.objs[ref.lib].provides(ref) {
		return ref.lib
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic choice
	for _, n := range names {
		if c.objs[n].provides(ref) {
			return n
		}
	}
	return ""
}

// unprune restores one pruned entry so that prov gets loaded, preferring an
// entry of from itself, else any pruned entry out of the reduced closure
// whose library's own full closure contains prov.
func (c *Closure) unprune(from, prov string, inSet map[string]bool, pruned map[edge]bool) bool {
	candidates := []string{from}
	for n := range inSet {
		if n != from {
			candidates = append(candidates, n)
		}
	}
	sort.Strings(candidates[1:])
	for _, f := range candidates {
		for _, to := range c.objs[f].needed {
			e := edge{f, to}
			if !pruned[e] {
				continue
			}
			for _, n := range c.reach(to, nil) {
				if n == prov {
					delete(pruned, e)
					return true
				}
			}
		}
	}
	return false
}

// collect fills the exported fields from the final pruning.
func (c *Closure) collect(pruned map[edge]bool) {
	in := c.reach("", pruned)
	inSet := map[string]bool{}
	for _, n := range in {
		inSet[n] = true
	}
	lib := func(n string) *Library {
		o := c.objs[n]
		l := &Library{Name: n, Path: o.path, Size: o.size, Needed: o.needed, GlibcMin: o.glibcMin()}
		for _, to := range o.needed {
			if pruned[edge{n, to}] {
				l.Pruned = append(l.Pruned, to)
			}
		}
		return l
	}
	neededBy := map[string][]string{}
	for _, from := range in {
		for _, to := range c.objs[from].needed {
			if !pruned[edge{from, to}] {
				neededBy[to] = append(neededBy[to], from)
			}
		}
	}
	c.Binary.Pruned = lib("").Pruned
	c.Binary.GlibcMin = c.objs[""].glibcMin()
	for _, n := range in {
		if n == "" {
			continue
		}
		if isSystem(n) {
			c.System = append(c.System, lib(n))
			continue
		}
		l := lib(n)
		l.NeededBy = neededBy[n]
		c.Shipped = append(c.Shipped, l)
		c.ShippedBytes += l.Size
	}
	var versions []string
	for _, n := range in {
		if !isSystem(n) {
			versions = append(versions, c.objs[n].glibcMin())
		}
	}
	c.GlibcMin = maxGlibc(versions)
	var dropped []string
	for n := range c.objs {
		if n != "" && !inSet[n] && !isSystem(n) {
			dropped = append(dropped, n)
		}
	}
	sort.Strings(dropped)
	for _, n := range dropped {
		c.Dropped = append(c.Dropped, lib(n))
	}
}

// glibcMin is the highest glibc version o requires.
func (o *object) glibcMin() string {
	var versions []string
	for file, vs := range o.versionsNeeded {
		if isGlibc(file) {
			versions = append(versions, vs...)
		}
	}
	return maxGlibc(versions)
}

// Report writes a human-readable account of c: each shipped library with
// its size and what loads it, the pruned DT_NEEDED entries, and the totals
// against the naive closure.
func (c *Closure) Report(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-32s %10s  %s\n", "shipped library", "bytes", "loaded by")
	for _, l := range c.Shipped {
		by := make([]string, len(l.NeededBy))
		for i, n := range l.NeededBy {
			by[i] = n
			if n == "" {
				by[i] = c.Binary.Name
			}
		}
		fmt.Fprintf(&b, "%-32s %10d  %s\n", l.Name, l.Size, strings.Join(by, " "))
	}
	pruned := 0
	for _, l := range append([]*Library{c.Binary}, c.Shipped...) {
		if len(l.Pruned) > 0 {
			pruned += len(l.Pruned)
			fmt.Fprintf(&b, "pruned from %s: %s\n", l.Name, strings.Join(l.Pruned, " "))
		}
	}
	var sys []string
	for _, l := range c.System {
		sys = append(sys, l.Name)
	}
	fmt.Fprintf(&b, "shipped %d libraries, %.1f MB; naive closure %d libraries, %.1f MB; %d DT_NEEDED entries pruned, %d libraries dropped\n",
		len(c.Shipped), float64(c.ShippedBytes)/(1<<20), c.NaiveCount, float64(c.NaiveBytes)/(1<<20), pruned, len(c.Dropped))
	fmt.Fprintf(&b, "from the target system: %s (glibc >= %s)\n", strings.Join(sys, " "), strings.TrimPrefix(c.GlibcMin, "GLIBC_"))
	_, err := io.WriteString(w, b.String())
	return err
}

// maxGlibc returns the highest "GLIBC_x.y[.z]" among versions, ignoring
// GLIBC_PRIVATE and other names.
func maxGlibc(versions []string) string {
	best, bestKey := "", []int(nil)
	for _, v := range versions {
		num, ok := strings.CutPrefix(v, "GLIBC_")
		if !ok {
			continue
		}
		var key []int
		for _, p := range strings.Split(num, ".") {
			x, err := strconv.Atoi(p)
			if err != nil {
				key = nil
				break
			}
			key = append(key, x)
		}
		if key == nil {
			continue
		}
		if bestKey == nil || lessVersion(bestKey, key) {
			best, bestKey = v, key
		}
	}
	return best
}

func lessVersion(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// resolver finds libraries by DT_NEEDED name the way ld.so does.
type resolver struct {
	cache    map[string]string // ld.so.cache: name -> path, native ABI only
	defaults []string
}

func newResolver() (*resolver, error) {
	r := &resolver{cache: map[string]string{}}
	r.defaults = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	ldconfig, err := exec.LookPath("ldconfig")
	if err != nil {
		ldconfig = "/sbin/ldconfig"
	}
	out, err := exec.Command(ldconfig, "-p").Output()
	if err != nil {
		// No cache: the default directories still work.
		return r, nil
	}
	for _, line := range strings.Split(string(out), "\n") {
		// "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1"
		name, rest, ok := strings.Cut(strings.TrimSpace(line), " (")
		if !ok {
			continue
		}
		abi, p, ok := strings.Cut(rest, ") => ")
		if !ok || !strings.Contains(abi, "x86-64") {
			continue
		}
		if _, dup := r.cache[name]; !dup { // first entry wins, as in ld.so
			r.cache[name] = p
		}
	}
	return r, nil
}

// find locates needed for the object from inside executable bin.
func (r *resolver) find(needed string, from, bin *object) (string, error) {
	if strings.Contains(needed, "/") {
		return needed, nil
	}
	var dirs []string
	expand := func(o *object, ds []string) {
		for _, d := range ds {
			d = strings.ReplaceAll(d, "${ORIGIN}", "$ORIGIN")
			d = strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(o.path))
			dirs = append(dirs, d)
		}
	}
	if len(from.runpath) == 0 {
		expand(from, from.rpath)
		if from != bin && len(bin.runpath) == 0 {
			expand(bin, bin.rpath)
		}
	}
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	expand(from, from.runpath)
	for _, d := range dirs {
		p := filepath.Join(d, needed)
		if isFile(p) {
			return p, nil
		}
	}
	if p, ok := r.cache[needed]; ok && isFile(p) {
		return p, nil
	}
	for _, d := range r.defaults {
		p := filepath.Join(d, needed)
		if isFile(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found (searched rpath/runpath, ld.so cache, %s)", strings.Join(r.defaults, ":"))
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
