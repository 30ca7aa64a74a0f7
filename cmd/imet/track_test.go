package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"imet/internal/experiments/registry"
	"imet/internal/training/train"
)

// recordOf reads run id from the registry file reg.
func recordOf(t *testing.T, reg string, id int64) *registry.Record {
	t.Helper()
	db, err := registry.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The data fingerprint a run records covers the test images too: the
// submission depends on them.
func TestDataFingerprintCoversTestImages(t *testing.T) {
	cfg := tinyRun(t)
	reg := filepath.Join(t.TempDir(), "registry.db")
	train := func() string {
		run := filepath.Join(t.TempDir(), "run")
		if code, _, errs := runCLI(t, "train", "--config", cfg, "--run-dir", run, "--registry", reg, "--time-budget", "1ns", "-q"); code != 0 {
			t.Fatal(errs)
		}
		db, err := registry.Open(reg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		runs, err := db.List(registry.Filter{})
		if err != nil || len(runs) == 0 {
			t.Fatalf("no run recorded: %v", err)
		}
		return runs[0].DataFingerprint
	}
	before := train()
	if before == "" {
		t.Fatal("no data fingerprint recorded")
	}
	tests, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg), "data", "test", "*"))
	if len(tests) == 0 {
		t.Fatal("no test images")
	}
	f, err := os.OpenFile(tests[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	if after := train(); after == before {
		t.Errorf("changing test image %s left the data fingerprint at %s", filepath.Base(tests[0]), after)
	}
}

// fakeWebhook is a generic webhook on loopback keeping the messages that
// Shoutrrr posts to it; onMessage, when set, runs before it answers.
type fakeWebhook struct {
	mu        sync.Mutex
	msgs      []string
	onMessage func(string)
	srv       *httptest.Server
}

func newFakeWebhook(t *testing.T) *fakeWebhook {
	f := &fakeWebhook{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		json.NewDecoder(r.Body).Decode(&m)
		f.mu.Lock()
		f.msgs = append(f.msgs, m["message"])
		on := f.onMessage
		f.mu.Unlock()
		if on != nil {
			on(m["message"])
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// url is the Shoutrrr URL that posts to the fake.
func (f *fakeWebhook) url() string {
	return "generic://" + strings.TrimPrefix(f.srv.URL, "http://") + "/hook?template=json&disabletls=yes"
}

func (f *fakeWebhook) messages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.msgs...)
}

// resumeIn returns the command an interruption message says to run.
func resumeIn(t *testing.T, msg string) string {
	t.Helper()
	_, cmd, ok := strings.Cut(msg, "resume with:\n")
	if !ok || !strings.Contains(msg, "interrupted") {
		t.Fatalf("not an interruption message: %q", msg)
	}
	return strings.TrimSpace(cmd)
}

// foreignRepo makes a git repository with one commit, standing for the
// user's project, and returns it with its HEAD.
func foreignRepo(t *testing.T) (dir, head string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir = t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "the user's project")
	return dir, git("rev-parse", "HEAD")
}

// TestTrainSignalStopsResumablyAndNotifies runs the real imet binary,
// stamped with a revision as the Makefile stamps it, from inside another
// git repository, and sends it SIGTERM (then, in a second run, SIGINT)
// during a training session. It must stop cleanly and exit 0, log the
// signal as the reason, record the run as interrupted with the binary's
// revision (not the repository's HEAD), and notify with the command that
// resumes it, which must work as given.
func TestTrainSignalStopsResumablyAndNotifies(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the imet binary")
	}
	const stamp = "v0.0-test-g0123abc-dirty"
	bin := filepath.Join(t.TempDir(), "imet")
	build := exec.Command("go", "build", "-ldflags=-X imet/internal/base/buildinfo.Revision="+stamp, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	repo, head := foreignRepo(t)
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.Contains(string(out), "rev v0.0-test-g0123abc+dirty ") {
		t.Errorf("imet version: %v %q", err, out)
	}
	cfg := tinyRun(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		name := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}[sig]
		t.Run(name, func(t *testing.T) {
			reg := filepath.Join(t.TempDir(), "registry.db")
			run := filepath.Join(t.TempDir(), "run")
			hook := newFakeWebhook(t)
			cmd := exec.Command(bin, "train", "--config", cfg, "--run-dir", run, "--registry", reg)
			cmd.Dir = repo
			cmd.Env = append(os.Environ(), "IMET_NOTIFY_URLS="+hook.url(), "IMET_TELEGRAM_TOKEN=")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			// The start notification is sent once the command listens for
			// signals and before the first step, so a signal sent while it
			// is being delivered stops the session after exactly one step.
			started := make(chan *os.Process, 1)
			hook.onMessage = func(m string) {
				if strings.Contains(m, "started") {
					(<-started).Signal(sig)
				}
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			started <- cmd.Process
			if err := cmd.Wait(); err != nil {
				t.Fatalf("imet train after %s: %v\nstdout:\n%s\nstderr:\n%s", name, err, &stdout, &stderr)
			}
			if errs := stderr.String(); !strings.Contains(errs, "event=stopped step=1 ") || !strings.Contains(errs, "reason="+name+"\n") || strings.Contains(errs, "time-budget") {
				t.Errorf("log does not say the session stopped at step 1 by %s:\n%s", name, errs)
			}
			if !strings.Contains(stdout.String(), "stopped at step 1 ("+name+")") {
				t.Errorf("report:\n%s", &stdout)
			}
			msgs := hook.messages()
			if len(msgs) != 2 || !strings.Contains(msgs[1], "interrupted ("+name+")") {
				t.Fatalf("notifications %q, want started and interrupted (%s)", msgs, name)
			}
			resume := resumeIn(t, msgs[1])
			if want := "imet train --resume " + run + " --registry " + reg; resume != want {
				t.Errorf("resume command %q, want %q", resume, want)
			}
			rec := recordOf(t, reg, 1)
			if rec.Status != registry.StatusInterrupted || !strings.Contains(rec.Note, name) || !strings.Contains(rec.Note, resume) {
				t.Errorf("recorded %s with note %q", rec.Status, rec.Note)
			}
			if rec.CodeVersion == head || rec.CodeVersion != "v0.0-test-g0123abc" || !rec.CodeDirty {
				t.Errorf("code version %q dirty %v, want the binary's stamp %q (the repository's HEAD is %s)", rec.CodeVersion, rec.CodeDirty, stamp, head)
			}
			if sig != syscall.SIGTERM {
				return
			}
			args := strings.Fields(resume)
			code, out, errs := runCLI(t, args[1:]...)
			if code != 0 || !strings.Contains(out, "done at step") {
				t.Fatalf("%s: exit %d\n%s%s", resume, code, out, errs)
			}
			if rec := recordOf(t, reg, 2); rec.Status != registry.StatusFinished {
				t.Errorf("the resumed run is %s", rec.Status)
			}
		})
	}
}

// A session stopped by its time budget is announced as interrupted, with
// the reason and the command that continues it, budget included.
func TestTrainBudgetStopNotifies(t *testing.T) {
	cfg := tinyRun(t)
	hook := newFakeWebhook(t)
	t.Setenv("IMET_NOTIFY_URLS", hook.url())
	t.Setenv("IMET_TELEGRAM_TOKEN", "")
	reg := filepath.Join(t.TempDir(), "registry.db")
	run := filepath.Join(t.TempDir(), "run")
	code, out, errs := runCLI(t, "train", "--config", cfg, "--run-dir", run, "--registry", reg, "--time-budget", "1ns")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := "imet train --resume " + run + " --time-budget 1ns --registry " + reg
	if !strings.Contains(errs, "reason=time-budget\nresume with: "+want+"\n") {
		t.Errorf("log:\n%s", errs)
	}
	if !strings.Contains(out, "stopped at step 1 (time-budget)") || !strings.Contains(out, "\n  "+want+"\n") {
		t.Errorf("report:\n%s", out)
	}
	msgs := hook.messages()
	if len(msgs) != 2 || !strings.Contains(msgs[1], "interrupted (time-budget)") {
		t.Fatalf("notifications %q", msgs)
	}
	if got := resumeIn(t, msgs[1]); got != want {
		t.Errorf("resume command %q, want %q", got, want)
	}
	if rec := recordOf(t, reg, 1); rec.Status != registry.StatusInterrupted || !strings.Contains(rec.Note, want) {
		t.Errorf("recorded %s with note %q", rec.Status, rec.Note)
	}
}

// panicOnStep stands for a bug anywhere in a training session.
type panicOnStep struct{ train.Observers }

func (panicOnStep) OnStep(train.StepEvent) { panic("injected fault") }

// A panic in training is recovered at the top of the command: the run is
// recorded as failed with the stack, a failure is announced, and the
// command returns an error (exit status 1).
func TestTrainPanicIsRecordedAsFailure(t *testing.T) {
	cfg := tinyRun(t)
	hook := newFakeWebhook(t)
	t.Setenv("IMET_NOTIFY_URLS", hook.url())
	t.Setenv("IMET_TELEGRAM_TOKEN", "")
	reg := filepath.Join(t.TempDir(), "registry.db")
	c := &trainCmd{Config: cfg, RunDir: filepath.Join(t.TempDir(), "run")}
	c.Registry = reg
	var out, errb bytes.Buffer
	err := c.run(&Globals{Stdout: &out, Stderr: &errb}, panicOnStep{})
	var pe *train.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v, want a recovered panic", err)
	}
	rec := recordOf(t, reg, 1)
	if rec.Status != registry.StatusFailed {
		t.Errorf("recorded %s", rec.Status)
	}
	for _, want := range []string{"panic: injected fault", "goroutine ", "panicOnStep.OnStep", "track_test.go"} {
		if !strings.Contains(rec.Error, want) {
			t.Errorf("recorded error lacks %q:\n%s", want, rec.Error)
		}
	}
	msgs := hook.messages()
	if len(msgs) != 2 || !strings.Contains(msgs[1], "FAILED") || !strings.Contains(msgs[1], "panic: injected fault") {
		t.Errorf("notifications %q", msgs)
	}
}

// cv stopped by its budget is announced as interrupted with its own
// continue command.
func TestCVBudgetStopNotifies(t *testing.T) {
	cfg := tinyRun(t)
	hook := newFakeWebhook(t)
	t.Setenv("IMET_NOTIFY_URLS", hook.url())
	t.Setenv("IMET_TELEGRAM_TOKEN", "")
	reg := filepath.Join(t.TempDir(), "registry.db")
	out := filepath.Join(t.TempDir(), "cv")
	code, stdout, errs := runCLI(t, "cv", "--config", cfg, "--out", out, "--folds", "0", "--registry", reg, "--time-budget", "1ns")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	msgs := hook.messages()
	if len(msgs) != 2 || !strings.Contains(msgs[1], "interrupted (time-budget)") {
		t.Fatalf("notifications %q", msgs)
	}
	if got := resumeIn(t, msgs[1]); !strings.Contains(stdout, "\n  "+got+"\n") || !strings.HasPrefix(got, "imet cv --config "+cfg) {
		t.Errorf("resume command %q; report:\n%s", got, stdout)
	}
}
