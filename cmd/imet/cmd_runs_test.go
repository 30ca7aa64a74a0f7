package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"imet/internal/experiments/registry"
)

// seedRegistry records runs the way the training command does.
func seedRegistry(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	db, err := registry.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfgs := []string{
		"model:\n  arch: resnet50\noptim:\n  lr: 0.001\n  epochs: 20\n",
		"model:\n  arch: resnet101\noptim:\n  lr: 0.001\n  epochs: 30\nnotify:\n  bot_token: 111:SECRET\n",
	}
	for i, name := range []string{"r50", "r101"} {
		r, err := db.Start(registry.RunInfo{Name: name, Kind: registry.KindTrain, Args: []string{"imet", "train"}, Config: cfgs[i], DataFingerprint: "abcdef0123456789"})
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s < 10; s++ {
			r.Metric(s, float64(s)/10, "train_loss", 1/float64(s+1))
			r.Metric(s, float64(s)/10, "lr", 0.001)
		}
		r.Metric(9, 1, "val_f2", 0.5+0.05*float64(i))
		ck := filepath.Join(t.TempDir(), "ck.pt")
		os.WriteFile(ck, []byte("weights"), 0o644)
		r.Artifact("checkpoint", ck)
		r.Finish(registry.Summary{CVF2: 0.5 + 0.05*float64(i), GroupF2: map[string]float64{"culture": 0.4, "tag": 0.6}})
	}
	f, _ := db.Start(registry.RunInfo{Name: "broken", Kind: registry.KindPredict})
	f.Fail(errors.New("images/x.png: unexpected EOF"), []string{"loading test images", "decode failed"})
	return path
}

func TestRunsListShowTagLB(t *testing.T) {
	reg := seedRegistry(t)
	steps := []struct {
		args   []string
		code   int
		want   []string
		banned []string
	}{
		{[]string{"runs", "list", "--registry", reg}, 0, []string{"ID", "r50", "r101", "broken", "finished", "failed", "0.5500"}, nil},
		{[]string{"runs", "lb", "r101", "0.622", "--registry", reg}, 0, []string{"run 2: leaderboard 0.6220"}, nil},
		{[]string{"runs", "lb", "r101", "62.2", "--registry", reg}, 1, nil, nil},
		{[]string{"runs", "lb", "nosuch", "0.6", "--registry", reg}, 1, nil, nil},
		{[]string{"runs", "tag", "1", "baseline", "keep", "--registry", reg}, 0, []string{"baseline, keep"}, nil},
		{[]string{"runs", "tag", "1", "keep", "--remove", "--registry", reg}, 0, []string{"tags baseline"}, []string{"keep"}},
		{[]string{"runs", "list", "--tag", "baseline", "--registry", reg}, 0, []string{"r50"}, []string{"r101"}},
		{[]string{"runs", "list", "--status", "failed", "--registry", reg}, 0, []string{"broken"}, []string{"r50"}},
		{[]string{"runs", "show", "r101", "--config", "--registry", reg}, 0,
			[]string{"2 r101", "0.6220", "culture", "val_f2", "checkpoint", "sha256:", "abcdef0123456789", "resnet101", "<redacted>"}, []string{"SECRET"}},
		{[]string{"runs", "show", "3", "--registry", reg}, 0, []string{"failed", "unexpected EOF", "decode failed"}, []string{"finished"}},
		{[]string{"runs", "show", "42", "--registry", reg}, 1, nil, nil},
	}
	for _, s := range steps {
		code, out, errs := runCLI(t, s.args...)
		if code != s.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", s.args, code, s.code, out, errs)
			continue
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", s.args, w, out)
			}
		}
		for _, b := range s.banned {
			if strings.Contains(out, b) {
				t.Errorf("%v: output contains %q:\n%s", s.args, b, out)
			}
		}
	}
}

func TestRunsCompare(t *testing.T) {
	reg := seedRegistry(t)
	runCLI(t, "runs", "lb", "2", "0.622", "--registry", reg)
	code, out, errs := runCLI(t, "runs", "compare", "r50", "r101", "--registry", reg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for key, want := range map[string][]string{
		"model.arch":       {"resnet50", "resnet101"},
		"optim.epochs":     {"20", "30"},
		"leaderboard":      {"-", "0.6220"},
		"notify.bot_token": {"(absent)", "<redacted>"},
	} {
		l, ok := lines[key]
		if !ok {
			t.Errorf("compare lacks row %q:\n%s", key, out)
			continue
		}
		if f := strings.Fields(l); len(f) != 3 || f[1] != want[0] || f[2] != want[1] {
			t.Errorf("row %q = %q, want %v", key, l, want)
		}
	}
	if _, ok := lines["optim.lr"]; ok {
		t.Errorf("compare shows an identical key:\n%s", out)
	}
	if code, _, _ := runCLI(t, "runs", "compare", "r50", "--registry", reg); code == 0 {
		t.Error("compare of one run succeeded")
	}
}

// TestRunsHelperTrainer is not a test: re-executed with IMET_TEST_TRAINER
// set, it plays a trainer that starts a run and waits to be killed.
func TestRunsHelperTrainer(t *testing.T) {
	path := os.Getenv("IMET_TEST_TRAINER")
	if path == "" {
		return
	}
	db, err := registry.Open(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	r, _ := db.Start(registry.RunInfo{Name: "killed", Kind: registry.KindTrain})
	r.Metric(1, 0.1, "train_loss", 0.7)
	fmt.Println("started", r.ID())
	time.Sleep(time.Minute)
	os.Exit(3)
}

func TestRunsKilledShowsInterrupted(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunsHelperTrainer$")
	cmd.Env = append(os.Environ(), "IMET_TEST_TRAINER="+reg)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "started") {
		cmd.Process.Kill()
		t.Fatalf("trainer said %q", line)
	}
	_, o, _ := runCLI(t, "runs", "list", "--registry", reg)
	if !strings.Contains(o, "running") {
		t.Errorf("live run not listed as running:\n%s", o)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	_, o, _ = runCLI(t, "runs", "list", "--registry", reg)
	if !strings.Contains(o, "interrupted") || strings.Contains(o, "running") {
		t.Errorf("killed run not listed as interrupted:\n%s", o)
	}
}
