package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// savedDir writes checkpoints at steps 10, 20 and 30, keeping all three,
// with the best F2 at step 20.
func savedDir(t *testing.T) *Dir {
	t.Helper()
	d := &Dir{Path: t.TempDir(), Keep: 3}
	for i, f2 := range []float64{0.4, 0.7, 0.5} {
		if _, err := d.Save(sample(int64(i+1)*10), f2); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o644)
}

// A corrupt newest checkpoint is skipped for the previous one that
// verifies, with the reason, and the index is repaired; a deleted one is
// skipped the same way instead of leaving the index pointing at nothing.
func TestResumableFallsBackAndRepairsIndex(t *testing.T) {
	d := savedDir(t)
	p := func(step int) string { return filepath.Join(d.Path, fmt.Sprintf("step-%09d.ckpt", step)) }
	flipByte(t, p(30))
	c, path, skipped, err := d.Resumable("")
	if err != nil {
		t.Fatal(err)
	}
	if path != p(20) || c.State.GlobalStep != 20 {
		t.Fatalf("resumed from %s (step %d), want %s", path, c.State.GlobalStep, p(20))
	}
	if len(skipped) != 1 || skipped[0].Path != p(30) || !strings.Contains(skipped[0].Reason, "checksum mismatch") {
		t.Fatalf("skipped %v", skipped)
	}
	ix, _ := d.ReadIndex()
	if ix.Latest != "step-000000020.ckpt" || !slices.Equal(ix.Recent, []string{"step-000000010.ckpt", "step-000000020.ckpt"}) || ix.Best != "step-000000020.ckpt" {
		t.Fatalf("index not repaired: %+v", ix)
	}
	// The next save removes the corrupt file, which no index names.
	if _, err := d.Save(sample(21), 0.1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p(30)); !os.IsNotExist(err) {
		t.Errorf("corrupt %s still there after a save: %v", p(30), err)
	}

	os.Remove(p(21))
	c, path, skipped, err = d.Resumable("")
	if err != nil || path != p(20) || c.State.GlobalStep != 20 {
		t.Fatalf("after deleting the newest: %s, %v", path, err)
	}
	if len(skipped) != 1 || skipped[0].Path != p(21) || !strings.Contains(skipped[0].Reason, "missing") {
		t.Fatalf("skipped %v", skipped)
	}
	if ix, _ := d.ReadIndex(); ix.Latest != "step-000000020.ckpt" || slices.Contains(ix.Recent, "step-000000021.ckpt") {
		t.Fatalf("index still names the deleted file: %+v", ix)
	}
}

// A whole checkpoint newer than the index's latest (a crash between the
// checkpoint's rename and the index's) is the one to resume from.
func TestResumableTakesAnUnlistedNewerCheckpoint(t *testing.T) {
	d := savedDir(t)
	if err := Write(filepath.Join(d.Path, "step-000000040.ckpt"), sample(40)); err != nil {
		t.Fatal(err)
	}
	_, path, skipped, err := d.Resumable("")
	if err != nil || filepath.Base(path) != "step-000000040.ckpt" || len(skipped) != 0 {
		t.Fatalf("%s %v %v", path, skipped, err)
	}
	if ix, _ := d.ReadIndex(); ix.Latest != "step-000000040.ckpt" {
		t.Errorf("index %+v", ix)
	}
}

func TestResumableNothingVerifies(t *testing.T) {
	d := savedDir(t)
	for _, s := range []int{10, 20, 30} {
		flipByte(t, filepath.Join(d.Path, fmt.Sprintf("step-%09d.ckpt", s)))
	}
	_, _, skipped, err := d.Resumable("")
	if err == nil || len(skipped) != 3 || strings.Count(err.Error(), "checksum mismatch") != 3 {
		t.Fatalf("skipped %v, err %v", skipped, err)
	}
	if _, path, _, err := (&Dir{Path: t.TempDir()}).Resumable(""); err != nil || path != "" {
		t.Errorf("empty directory: %q %v", path, err)
	}
}

// An explicit checkpoint is used as it is (no fallback), must belong to
// the directory, and the checkpoints after it leave the index.
func TestResumableExplicit(t *testing.T) {
	d := savedDir(t)
	first := filepath.Join(d.Path, "step-000000010.ckpt")
	c, path, _, err := d.Resumable(first)
	if err != nil || path != first || c.State.GlobalStep != 10 {
		t.Fatalf("%s %v", path, err)
	}
	ix, _ := d.ReadIndex()
	if ix.Latest != "step-000000010.ckpt" || !slices.Equal(ix.Recent, []string{"step-000000010.ckpt"}) || ix.Best != "" {
		t.Fatalf("index %+v", ix)
	}
	flipByte(t, first)
	if _, _, _, err := d.Resumable(first); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("corrupt explicit checkpoint: %v", err)
	}
	other := filepath.Join(t.TempDir(), "step-000000010.ckpt")
	Write(other, sample(10))
	if _, _, _, err := d.Resumable(other); err == nil || !strings.Contains(err.Error(), "is not in") {
		t.Errorf("checkpoint of another directory: %v", err)
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".step-000000002.ckpt.tmp-123"), make([]byte, 1000), 0o644)
	os.WriteFile(filepath.Join(dir, ".index.json.tmp-9"), []byte("{"), 0o644)
	os.WriteFile(filepath.Join(dir, "step-000000002.ckpt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.tmp-1"), []byte("x"), 0o644)
	removed, n, err := RemoveStaleTemps(dir)
	slices.Sort(removed)
	if err != nil || n != 1001 || !slices.Equal(removed, []string{".index.json.tmp-9", ".step-000000002.ckpt.tmp-123"}) {
		t.Fatalf("removed %v (%d bytes), %v", removed, n, err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 2 {
		t.Errorf("left %v", left)
	}
}

// TestLockHelper holds a run directory's lock in a child process until
// its stdin closes.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv("IMET_TEST_LOCK_DIR")
	if dir == "" {
		t.Skip("helper process for TestLockRunRefusesSecondSession")
	}
	l, err := LockRun(dir)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	l.Release()
}

// A second session on a run directory is refused at once with the
// holder's pid; when the holder dies, the kernel drops its lock.
func TestLockRunRefusesSecondSession(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$")
	cmd.Env = append(os.Environ(), "IMET_TEST_LOCK_DIR="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("helper: %q", line)
	}
	_, err := LockRun(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second session: %v (holder pid %d)", err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := LockRun(dir)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	// In one process too: a second open of the file is a second holder.
	if _, err := LockRun(dir); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second lock in the same process: %v", err)
	}
	l.Release()
	if l2, err := LockRun(dir); err != nil {
		t.Errorf("after Release: %v", err)
	} else {
		l2.Release()
	}
}
