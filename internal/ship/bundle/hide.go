package bundle

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// SystemLibDir is the system library directory HideSystemLibraries hides
// (Debian-style multiarch layout, x86-64).
const SystemLibDir = "/usr/lib/x86_64-linux-gnu"

// CanHideSystemLibraries says why HideSystemLibraries cannot work on this
// machine, or nil when it can: it needs root, unshare(1) with mount
// namespaces, and glibc in SystemLibDir.
func CanHideSystemLibraries() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: cannot hide the system libraries in a mount namespace")
	}
	if err := exec.Command("unshare", "--mount", "true").Run(); err != nil {
		return fmt.Errorf("unshare --mount unavailable: %v", err)
	}
	if _, err := os.Stat(filepath.Join(SystemLibDir, "libc.so.6")); err != nil {
		return fmt.Errorf("no %s/libc.so.6: not a Debian-style multiarch layout", SystemLibDir)
	}
	return nil
}

// hideScript replaces $lib by a tmpfs holding only the glibc files, each
// bound from the original. mount itself needs libmount, so the directory
// is swapped in by the last mount, and the command then exec'd.
const hideScript = `set -e
lib="$HIDE_LIB"
mkdir -p "$T/orig" "$T/fake"
mount --bind "$lib" "$T/orig"
mount -t tmpfs tmpfs "$T/fake"
for g in $KEEP; do
  [ -e "$T/orig/$g" ] || continue
  : > "$T/fake/$g"
  mount --bind "$T/orig/$g" "$T/fake/$g"
done
mount --rbind "$T/fake" "$lib"
exec "$@"`

// HideSystemLibraries returns a command that runs name with args in a
// private mount namespace (unshare --mount, as root) where SystemLibDir
// holds nothing but glibc: the test that a bundle needs no other library
// from the machine it runs on. scratch is an empty directory for the mount
// points. Check CanHideSystemLibraries first.
func HideSystemLibraries(scratch, name string, args ...string) *exec.Cmd {
	var keep []string
	for _, n := range glibcNames {
		if !strings.Contains(n, "*") {
			keep = append(keep, n)
		}
	}
	c := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", hideScript, "sh", name}, args...)...)
	c.Env = append(os.Environ(), "T="+scratch, "KEEP="+strings.Join(keep, " "), "HIDE_LIB="+SystemLibDir)
	return c
}
