package bundle

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
)

// symRef is one undefined dynamic symbol of an object: what it expects some
// other object in the process to define, with the version it asks for and
// the file its version requirement (".gnu.version_r") names.
type symRef struct {
	name, version, lib string
	weak               bool
}

// dynEntry is one entry of the dynamic section, kept raw so a copy can be
// rewritten without touching anything else in the file.
type dynEntry struct {
	tag elf.DynTag
	val uint64
}

// object is what the bundler needs to know about one ELF file.
type object struct {
	path    string
	soname  string
	size    int64
	needed  []string // DT_NEEDED, in order (load order matters)
	rpath   []string // DT_RPATH, split on ':'
	runpath []string // DT_RUNPATH, split on ':'
	// verneedFiles are the files .gnu.version_r names: ld.so asserts each is
	// loaded, so an entry naming a library is never pruned.
	verneedFiles map[string]bool
	// versionsNeeded maps a file to the version names required from it,
	// e.g. "libc.so.6" -> GLIBC_2.34: this yields the minimum glibc.
	versionsNeeded map[string][]string
	undef          []symRef
	// defined holds every symbol this object exports to the global scope
	// (global, weak or unique binding, defined in a section), by name.
	// Versioned definitions are also stored as name@version.
	defined map[string]bool

	// Location of the dynamic section in the file, for rewriting copies.
	dynOff  int64
	dynSize int64
	dyn     []dynEntry
	order   binary.ByteOrder
	is64    bool
}

// readObject parses the dynamic linking information of the ELF file at path.
func readObject(path string) (*object, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_AARCH64 {
		// Other machines would work the same way but are untested.
		return nil, fmt.Errorf("%s: unsupported machine %v", path, f.Machine)
	}
	o := &object{
		path:           path,
		size:           st.Size(),
		verneedFiles:   map[string]bool{},
		versionsNeeded: map[string][]string{},
		defined:        map[string]bool{},
		order:          f.ByteOrder,
		is64:           f.Class == elf.ELFCLASS64,
	}
	if o.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return nil, fmt.Errorf("%s: DT_NEEDED: %w", path, err)
	}
	if s, _ := f.DynString(elf.DT_SONAME); len(s) > 0 {
		o.soname = s[0]
	}
	for _, s := range mustDyn(f, elf.DT_RPATH) {
		o.rpath = append(o.rpath, strings.Split(s, ":")...)
	}
	for _, s := range mustDyn(f, elf.DT_RUNPATH) {
		o.runpath = append(o.runpath, strings.Split(s, ":")...)
	}
	if vn, err := f.DynamicVersionNeeds(); err == nil {
		for _, n := range vn {
			o.verneedFiles[n.Name] = true
			for _, d := range n.Needs {
				o.versionsNeeded[n.Name] = append(o.versionsNeeded[n.Name], d.Dep)
			}
		}
	}
	syms, err := f.DynamicSymbols()
	if err != nil && err != elf.ErrNoSymbols {
		return nil, fmt.Errorf("%s: dynamic symbols: %w", path, err)
	}
	for _, s := range syms {
		bind := elf.ST_BIND(s.Info)
		typ := elf.ST_TYPE(s.Info)
		if s.Name == "" || typ == elf.STT_SECTION || typ == elf.STT_FILE {
			continue
		}
		if s.Section == elf.SHN_UNDEF {
			if bind == elf.STB_LOCAL {
				continue
			}
			o.undef = append(o.undef, symRef{name: s.Name, version: s.Version, lib: s.Library, weak: bind == elf.STB_WEAK})
			continue
		}
		if bind != elf.STB_GLOBAL && bind != elf.STB_WEAK && bind != stbGNUUnique {
			continue
		}
		if v := elf.ST_VISIBILITY(s.Other); v == elf.STV_HIDDEN || v == elf.STV_INTERNAL {
			continue
		}
		if s.Version != "" {
			o.defined[s.Name+"@"+s.Version] = true
			// A hidden (non-default, "foo@V") version satisfies only
			// references asking for that version.
			if s.HasVersion && s.VersionIndex.IsHidden() {
				continue
			}
		}
		o.defined[s.Name] = true
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_DYNAMIC {
			continue
		}
		o.dynOff, o.dynSize = int64(p.Off), int64(p.Filesz)
		raw := make([]byte, o.dynSize)
		if _, err := p.ReadAt(raw, 0); err != nil {
			return nil, fmt.Errorf("%s: read dynamic segment: %w", path, err)
		}
		o.dyn = decodeDyn(raw, o.order, o.is64)
	}
	// o.dyn is nil for a statically linked executable: nothing to load.
	return o, nil
}

func mustDyn(f *elf.File, tag elf.DynTag) []string {
	s, _ := f.DynString(tag)
	return s
}

func decodeDyn(raw []byte, order binary.ByteOrder, is64 bool) []dynEntry {
	var out []dynEntry
	if is64 {
		for i := 0; i+16 <= len(raw); i += 16 {
			out = append(out, dynEntry{elf.DynTag(order.Uint64(raw[i:])), order.Uint64(raw[i+8:])})
		}
	} else {
		for i := 0; i+8 <= len(raw); i += 8 {
			out = append(out, dynEntry{elf.DynTag(order.Uint32(raw[i:])), uint64(order.Uint32(raw[i+4:]))})
		}
	}
	return out
}

func encodeDyn(es []dynEntry, size int64, order binary.ByteOrder, is64 bool) []byte {
	raw := make([]byte, size)
	step := 8
	if is64 {
		step = 16
	}
	for i, e := range es {
		if (i+1)*step > len(raw) {
			break
		}
		if is64 {
			order.PutUint64(raw[i*16:], uint64(e.tag))
			order.PutUint64(raw[i*16+8:], e.val)
		} else {
			order.PutUint32(raw[i*8:], uint32(e.tag))
			order.PutUint32(raw[i*8+4:], uint32(e.val))
		}
	}
	// Remaining bytes stay zero: DT_NULL entries.
	return raw
}

// provides reports whether o has a definition that would satisfy r.
//
// ld.so matches a versioned reference by version name against every object
// in scope, not only the file its requirement names: since glibc 2.34,
// pthread_create@GLIBC_2.2.5 required from libpthread.so.0 is defined by
// libc.so.6. The named file matters only in that it must be loaded (see
// verneedFiles). ld.so also accepts a non-hidden definition under another or
// no version in some cases, so any exported definition of the name counts;
// erring this way keeps entries rather than dropping needed ones.
func (o *object) provides(r symRef) bool {
	if r.version != "" && o.defined[r.name+"@"+r.version] {
		return true
	}
	return o.defined[r.name]
}

// stbGNUUnique is STB_GNU_UNIQUE (10), the binding GCC gives to some C++
// template statics; debug/elf has no name for it.
const stbGNUUnique elf.SymBind = 10
