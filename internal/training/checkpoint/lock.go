package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockName is the file in a run directory that a training session holds an
// exclusive flock on while it runs.
const LockName = "lock"

// ErrLocked is wrapped by LockRun's error when another session holds the
// run directory.
var ErrLocked = errors.New("run directory in use")

// RunLock is a session's exclusive hold on a run directory: two sessions
// writing one directory (two imet train, or a resume while the first is
// live) would interleave their checkpoints and outputs. The kernel drops
// the flock when the process dies, however it dies, so a lock is never
// stale; the file stays, holding the last holder's pid.
type RunLock struct {
	f *os.File
}

// LockRun takes the lock of the run directory dir (created if absent),
// or fails at once, naming the process that holds it.
func LockRun(dir string) (*RunLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking run directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		return nil, fmt.Errorf("%w: %s is being trained by %s; wait for that session to end, or stop it (it checkpoints on SIGTERM) and resume",
			ErrLocked, dir, holder(path))
	}
	// The holder's identity, for the message of whoever is refused.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	}
	return &RunLock{f: f}, nil
}

// holder describes the process named in a lock file.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "another process"
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return "another process (pid not yet written)"
	}
	if _, err := strconv.Atoi(fields[0]); err != nil {
		return "another process"
	}
	s := "another process, pid " + fields[0]
	if len(fields) > 1 {
		s += ", since " + fields[1]
	}
	return s
}

// Release drops the lock.
func (l *RunLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}

// RemoveStaleTemps removes the temporary files that an interrupted atomic
// write (internal/base/atomicfile: ".NAME.tmp-*") left in dir, and returns
// their names and total size. Call it only while holding the directory's
// RunLock: a live session's temporary file is not stale.
func RemoveStaleTemps(dir string) (removed []string, bytes int64, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, ".") || !strings.Contains(n, ".tmp-") {
			continue
		}
		info, _ := e.Info()
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return removed, bytes, err
		}
		removed = append(removed, n)
		if info != nil {
			bytes += info.Size()
		}
	}
	return removed, bytes, nil
}
