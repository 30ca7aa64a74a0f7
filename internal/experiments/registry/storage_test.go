package registry

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// smallDisk mounts a tmpfs of size bytes, the real thing a full disk is:
// root only (CI runs as root); elsewhere the test is skipped.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill takes every free byte of the file system holding dir.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	return path
}

// On a full disk the registry said "disk I/O error (4874)" and a run that
// finished stayed "running", then was shown as interrupted. Now its errors
// say "no space left on device", and the final status kept in the lock
// file is recorded by the next Open once there is room.
func TestFullDisk(t *testing.T) {
	dir := smallDisk(t, "2m")
	path := filepath.Join(dir, "registry.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	run, err := db.Start(RunInfo{Name: "r", Kind: KindTrain})
	if err != nil {
		t.Fatal(err)
	}
	filler := fill(t, dir)
	var merr error
	for i := 0; i < 10000 && merr == nil; i++ {
		merr = run.Metric(i, 0, "loss", float64(i))
	}
	if merr == nil || !errors.Is(merr, ErrNoSpace) || !strings.Contains(merr.Error(), "no space left on device") {
		t.Fatalf("metric on a full disk: %v, want no space left on device", merr)
	}
	t.Log(merr)
	ferr := run.Finish(Summary{CVF2: 0.625})
	t.Log(ferr)
	if ferr == nil || !strings.Contains(ferr.Error(), "no space left on device") || !strings.Contains(ferr.Error(), "the finished status is kept in") {
		t.Fatalf("finish on a full disk: %v", ferr)
	}
	db.Close()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := db.Get(run.ID())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusFinished || rec.CVF2 == nil || *rec.CVF2 != 0.625 {
		t.Fatalf("after the disk has room again: status %s, cv_f2 %v", rec.Status, rec.CVF2)
	}
	locks, _ := filepath.Glob(filepath.Join(dir, "registry.locks", "*.lock"))
	if len(locks) != 0 {
		t.Errorf("lock files left: %v", locks)
	}
}
