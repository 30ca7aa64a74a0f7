// Package pyref finds the reference Python interpreter that tests compare
// imet against: Debian's /usr/bin/python3 with the modules scripts/deps.sh
// installs (torch, torchvision, numpy, sklearn, PIL).
//
// References are computed live on the machine under test wherever the
// numbers depend on the CPU's kernels, so CI must not quietly lose them: a
// missing interpreter or module fails the test when CI is set (CI=true, as
// every CI service sets it, where scripts/deps.sh has run) and skips it,
// saying why, elsewhere.
package pyref

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Python is the reference interpreter: Debian's, whose torch is the same
// libtorch build the shim links, not whatever python3 comes first in PATH.
const Python = "/usr/bin/python3"

var (
	mu     sync.Mutex
	probed = map[string]error{}
)

// Require returns Python when it imports every one of modules. Otherwise it
// fails t under CI and skips it elsewhere. The probe runs once per module
// set and process: importing torch takes about a second.
func Require(t testing.TB, modules ...string) string {
	t.Helper()
	if err := probe(modules); err != nil {
		if InCI() {
			t.Fatalf("CI is set but the reference is missing (%v); scripts/deps.sh installs it", err)
		}
		t.Skipf("reference not available (%v); scripts/deps.sh installs it", err)
	}
	return Python
}

// Available says why Python cannot import every one of modules, or nil
// when it can: for a test that runs a part without the reference and
// calls Require where it needs it.
func Available(modules ...string) error { return probe(modules) }

// InCI reports whether the environment variable CI holds a true value.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

func probe(modules []string) error {
	key := strings.Join(modules, ",")
	mu.Lock()
	defer mu.Unlock()
	if err, ok := probed[key]; ok {
		return err
	}
	var err error
	args := append([]string{"-c", "import sys\nfor m in sys.argv[1:]: __import__(m)"}, modules...)
	if out, e := exec.Command(Python, args...).CombinedOutput(); e != nil {
		err = fmt.Errorf("%s cannot import %s: %v: %s", Python, key, e, strings.TrimSpace(lastLine(string(out))))
	}
	probed[key] = err
	return err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
