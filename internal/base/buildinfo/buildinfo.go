// Package buildinfo reports which code a binary was built from, so that every
// recorded run names the exact revision that produced it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Revision is stamped at link time by the Makefile with
//
//	-ldflags "-X imet/internal/buildinfo.Revision=$(git describe --always --dirty)"
//
// so that a binary knows its revision even where the Go toolchain embeds no
// VCS data (GOFLAGS=-buildvcs=false, a build outside the checkout). Empty
// in builds that did not stamp it.
var Revision string

// Info describes the running binary.
type Info struct {
	Version  string // module version, "(devel)" for a local build
	Revision string // VCS commit or git describe output, empty when unknown
	Dirty    bool   // the work tree had uncommitted changes at build time
	Go       string // Go toolchain version
}

// Read returns the running binary's build information: the stamped
// Revision when there is one, else the VCS data the Go toolchain embedded.
// It never asks git about the working directory, which is the user's
// project, not the code that runs.
func Read() Info {
	info := Info{Version: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok && bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	if r := strings.TrimSpace(Revision); r != "" {
		info.Revision, info.Dirty = strings.CutSuffix(r, "-dirty")
		return info
	}
	if !ok {
		return info
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
	if len(rev) == 40 && strings.Trim(rev, "0123456789abcdef") == "" {
		rev = rev[:12] // a full commit hash; git describe output is kept whole
	}
	if rev == "" {
		rev = "unknown"
	}
	if i.Dirty {
		rev += "+dirty"
	}
	return fmt.Sprintf("imet %s rev %s %s", i.Version, rev, i.Go)
}
