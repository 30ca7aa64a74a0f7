package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"imet/internal/training/checkpoint"
	"imet/internal/training/train"
)

// holdOnFirstStep blocks the session in its first step until released,
// saying when it got there.
type holdOnFirstStep struct {
	train.Observers
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (h *holdOnFirstStep) OnStep(train.StepEvent) {
	h.once.Do(func() {
		close(h.reached)
		<-h.release
	})
}

// While a session trains a run directory, a second session on it (a fresh
// train, or a resume) is refused at once, naming the holder's pid; once the
// first ends, the resume goes ahead.
func TestSecondSessionOnARunDirIsRefused(t *testing.T) {
	cfg := tinyRun(t)
	run := filepath.Join(t.TempDir(), "run")
	h := &holdOnFirstStep{reached: make(chan struct{}), release: make(chan struct{})}
	c := &trainCmd{Config: cfg, RunDir: run, TimeBudget: 1}
	c.NoRegistry = true
	done := make(chan error, 1)
	var out, errb bytes.Buffer
	go func() { done <- c.run(&Globals{Stdout: &out, Stderr: &errb}, h) }()
	select {
	case <-h.reached:
	case err := <-done:
		t.Fatalf("first session ended before its first step: %v\n%s", err, &errb)
	}
	pid := "pid " + strconv.Itoa(os.Getpid())
	for _, args := range [][]string{
		{"train", "--config", cfg, "--run-dir", run, "--no-registry"},
		{"train", "--resume", run, "--no-registry"},
	} {
		code, _, errs := runCLI(t, args...)
		if code == 0 || !strings.Contains(errs, "in use") || !strings.Contains(errs, pid) || !strings.Contains(errs, run) {
			t.Errorf("%v while another session trains: exit %d, %s", args, code, errs)
		}
	}
	close(h.release)
	if err := <-done; err != nil {
		t.Fatalf("first session: %v\n%s", err, &errb)
	}
	if code, _, errs := runCLI(t, "train", "--resume", run, "--no-registry", "--time-budget", "1ns"); code != 0 {
		t.Fatalf("resume after the first session ended: %s", errs)
	}
}

// A resume skips a corrupt or deleted newest checkpoint for the previous
// one that verifies, says so, repairs index.json, and removes the
// temporary files interrupted writes left; --resume FILE continues from
// that checkpoint.
func TestResumeFallsBackToAValidCheckpoint(t *testing.T) {
	cfg := tinyRun(t)
	run := filepath.Join(t.TempDir(), "run")
	ck := func(step int) string {
		return filepath.Join(run, "checkpoints", "step-00000000"+strconv.Itoa(step)+".ckpt")
	}
	step := func(args ...string) (string, string) {
		t.Helper()
		code, out, errs := runCLI(t, append(args, "--no-registry", "--time-budget", "1ns")...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errs)
		}
		return out, errs
	}
	step("train", "--config", cfg, "--run-dir", run)
	step("train", "--resume", run)
	if _, err := checkpoint.Read(ck(2)); err != nil {
		t.Fatalf("two sessions should leave a checkpoint at step 2: %v", err)
	}

	b, _ := os.ReadFile(ck(2))
	b[len(b)/2] ^= 1
	os.WriteFile(ck(2), b, 0o644)
	stale := filepath.Join(run, "checkpoints", ".step-000000003.ckpt.tmp-12345")
	os.WriteFile(stale, make([]byte, 1<<20), 0o644)
	_, errs := step("train", "--resume", run)
	for _, want := range []string{
		"warning: skipped checkpoint " + ck(2) + ": checksum mismatch",
		"event=resume run=" + run + " fold=0 step=1 ",
		"from=" + ck(1) + "\n",
		"removed 1 stale temporary file(s)",
		".step-000000003.ckpt.tmp-12345",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("log lacks %q:\n%s", want, errs)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	// The session redid step 2 over the corrupt file.
	if _, err := checkpoint.Read(ck(2)); err != nil {
		t.Errorf("step 2 after the resume: %v", err)
	}

	os.Remove(ck(2))
	_, errs = step("train", "--resume", run)
	if !strings.Contains(errs, "warning: skipped checkpoint "+ck(2)+": listed in index.json but missing") || !strings.Contains(errs, "from="+ck(1)+"\n") {
		t.Errorf("deleted newest checkpoint:\n%s", errs)
	}
	d := checkpoint.Dir{Path: filepath.Join(run, "checkpoints")}
	if ix, _ := d.ReadIndex(); ix.Latest != filepath.Base(ck(2)) {
		t.Errorf("index after the resume: %+v", ix)
	}

	_, errs = step("train", "--resume", ck(1))
	if !strings.Contains(errs, "event=resume run="+run+" fold=0 step=1 ") || !strings.Contains(errs, "from="+ck(1)+"\n") || strings.Contains(errs, "warning") {
		t.Errorf("--resume %s:\n%s", ck(1), errs)
	}
	if code, _, errs := runCLI(t, "train", "--resume", filepath.Join(run, "config.yaml"), "--no-registry"); code == 0 || !strings.Contains(errs, "not a checkpoint of a run directory") {
		t.Errorf("--resume of a file that is no checkpoint: exit %d, %s", code, errs)
	}
}

// name: ../../etc would put the run outside runs/: refused before
// anything is written.
func TestRunNameCannotLeaveRuns(t *testing.T) {
	cfg := tinyRun(t)
	data, _ := os.ReadFile(cfg)
	bad := filepath.Join(filepath.Dir(cfg), "bad.yaml")
	os.WriteFile(bad, bytes.Replace(data, []byte("name: tiny"), []byte("name: ../../escaped"), 1), 0o644)
	work := filepath.Join(t.TempDir(), "a", "b")
	os.MkdirAll(work, 0o755)
	t.Chdir(work)
	code, _, errs := runCLI(t, "train", "--config", bad, "--no-registry")
	if code == 0 || !strings.Contains(errs, bad) || !strings.Contains(errs, "one plain path component") {
		t.Errorf("exit %d: %s", code, errs)
	}
	// runs/../../escaped is ../escaped from the working directory.
	if _, err := os.Stat(filepath.Join(work, "..", "escaped")); !os.IsNotExist(err) {
		t.Errorf("the run escaped runs/: %v", err)
	}
}
