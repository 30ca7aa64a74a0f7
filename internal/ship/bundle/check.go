package bundle

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Check verifies statically that the bundle in dir is self-contained: the
// binary and every library under lib/ find each DT_NEEDED entry either in
// lib/ or among the system libraries (glibc, GPU driver; taken from this
// machine, standing in for the target's), and every non-weak symbol any of them references is
// defined by one of the objects so loaded. It is what ld.so would check at
// start-up (and at the first call of each lazily bound function), without
// running anything, so a bundle that would fail on the target fails here.
func Check(dir string) error {
	r, err := newResolver()
	if err != nil {
		return err
	}
	libDir := filepath.Join(dir, LibDir)
	bin, err := readObject(filepath.Join(dir, BinaryName))
	if err != nil {
		return err
	}
	objs := map[string]*object{"": bin}
	order := []string{""}
	var problems []string
	// opaque objects need a GPU driver library absent from this machine:
	// their symbols cannot be checked.
	opaque := map[string]bool{}
	for i := 0; i < len(order); i++ {
		o := objs[order[i]]
		for _, n := range o.needed {
			if _, seen := objs[n]; seen {
				continue
			}
			var p string
			if isSystem(n) {
				if p, err = r.find(n, o, o); err != nil && !isGlibc(n) {
					objs[n] = nil // a GPU driver absent here
					opaque[order[i]] = true
					continue
				} else if err != nil {
					problems = append(problems, fmt.Sprintf("%s (system) needed by %s: %v", n, filepath.Base(o.path), err))
					objs[n] = nil
					continue
				}
			} else {
				p = filepath.Join(libDir, n)
				if !isFile(p) {
					problems = append(problems, fmt.Sprintf("%s needed by %s is not in %s", n, filepath.Base(o.path), libDir))
					objs[n] = nil
					continue
				}
			}
			lo, err := readObject(p)
			if err != nil {
				return err
			}
			objs[n] = lo
			order = append(order, n)
		}
	}
	names := make([]string, 0, len(objs))
	for n, o := range objs {
		if o != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		o := objs[n]
		if isSystem(n) || opaque[n] {
			continue
		}
		for _, ref := range o.undef {
			if ref.weak || resolved(ref, objs, names) {
				continue
			}
			problems = append(problems, fmt.Sprintf("%s: undefined symbol %s", filepath.Base(o.path), refString(ref)))
		}
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("... and %d more", len(problems)-10))
		}
		return fmt.Errorf("bundle %s is not self-contained:\n  %s", dir, strings.Join(problems, "\n  "))
	}
	return nil
}

func resolved(ref symRef, objs map[string]*object, names []string) bool {
	if o := objs[ref.lib]; ref.lib != "" && o != nil && o.provides(ref) {
		return true
	}
	for _, n := range names {
		if objs[n].provides(ref) {
			return true
		}
	}
	return false
}

func refString(r symRef) string {
	if r.version != "" {
		return r.name + "@" + r.version + " (" + r.lib + ")"
	}
	return r.name
}
