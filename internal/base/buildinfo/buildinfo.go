// Package buildinfo reports which code a binary was built from, so that every
// recorded run names the exact revision that produced it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info describes the running binary.
type Info struct {
	Version  string // module version, "(devel)" for a local build
	Revision string // VCS commit, empty when the build had no VCS data
	Dirty    bool   // the work tree had uncommitted changes at build time
	Go       string // Go toolchain version
}

// Read returns the build information embedded by the Go toolchain.
func Read() Info {
	info := Info{Version: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Dirty = s.Value == "true"
		}
	}
	return info
}

// String formats the information on one line, e.g.
// "imet (devel) rev 1a2b3c4d5e6f+dirty go1.26.8".
func (i Info) String() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		rev = "unknown"
	}
	if i.Dirty {
		rev += "+dirty"
	}
	return fmt.Sprintf("imet %s rev %s %s", i.Version, rev, i.Go)
}
