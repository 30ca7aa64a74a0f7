package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"imet/internal/base/pyref"
	"imet/internal/training/checkpoint"
)

// distRun is tinyRun with a longer second stage (three epochs of four
// steps), so that a rank can be killed mid-epoch, on 16-pixel images.
func distRun(t *testing.T) string {
	t.Helper()
	cfg := tinyRun(t)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "  - name: all\n    epochs: 1\n", "  - name: all\n    epochs: 3\n", 1)
	if s == string(b) {
		t.Fatal("tinyRun's recipe changed: no second stage of one epoch to lengthen")
	}
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	// 16-pixel images: a quarter of the work, the same code paths.
	pipes := filepath.Join(filepath.Dir(cfg), "pipelines.yaml")
	p, err := os.ReadFile(pipes)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pipes, []byte(strings.ReplaceAll(string(p), "height: 32, width: 32", "height: 16, width: 16")), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// torchrun starts `imet train --auto-resume` on nproc ranks under
// PyTorch's own launcher (torch.distributed.run --no_python), which
// restarts the whole group up to maxRestarts times when a rank dies. The
// test binary stands in for imet (TestMain).
func torchrun(t *testing.T, ctx context.Context, nproc, maxRestarts int, cfg, runDir string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.CommandContext(ctx, pyref.Python, "-m", "torch.distributed.run", "--nproc_per_node", strconv.Itoa(nproc),
		"--max_restarts", strconv.Itoa(maxRestarts), "--monitor_interval", "0.2", "--master_addr", "127.0.0.1",
		"--master_port", strconv.Itoa(port),
		// Debian's torch 1.13 under Python 3.11 cannot parse the default
		// "0" (nor "3") for these: its Std.from_str iterates an IntFlag,
		// which leaves the zero member out since 3.11. "2" (stderr) works.
		"--redirects", "2", "--tee", "2", "--no_python",
		os.Args[0], "train", "--config", cfg, "--run-dir", runDir, "--auto-resume", "--no-registry")
	cmd.Env = append(os.Environ(), asIMet+"=1", "GLOO_SOCKET_IFNAME=lo", "IMET_DIST_TIMEOUT=60s", "OMP_NUM_THREADS=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// workerWithRank finds the process torchrun started as rank (its
// environment says RANK=rank) among the descendants of pid.
func workerWithRank(pid, rank int) (int, error) {
	want := []byte("RANK=" + strconv.Itoa(rank) + "\x00")
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, c := range strings.Fields(string(b)) {
				child, _ := strconv.Atoi(c)
				env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", child))
				if bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...)) {
					if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child)); bytes.Contains(cmdline, []byte("train")) {
						return child, nil
					}
				}
				queue = append(queue, child)
			}
		}
	}
	return 0, fmt.Errorf("no rank %d under pid %d", rank, pid)
}

// TestTrainUnderTorchrunSurvivesAKilledRank runs a two-rank training under
// torchrun straight through, then again with rank 1 killed (SIGKILL)
// mid-epoch: torchrun restarts the group, the same command resumes from
// rank 0's last checkpoint, and the run ends bit-identical to the
// uninterrupted one (every tensor of the final checkpoint, the OOF and
// test probabilities).
func TestTrainUnderTorchrunSurvivesAKilledRank(t *testing.T) {
	pyref.Require(t, "torch")
	cfg := distRun(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	straight := filepath.Join(t.TempDir(), "straight")
	cmd, out := torchrun(t, ctx, 2, 0, cfg, straight)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("torchrun: %v\n%s", err, tail(out.String()))
	}
	if !strings.Contains(out.String(), "done at step") || !strings.Contains(out.String(), "world=2") {
		t.Fatalf("the straight run did not train on two ranks to the end:\n%s", tail(out.String()))
	}

	cut := filepath.Join(t.TempDir(), "cut")
	cmd, out = torchrun(t, ctx, 2, 1, cfg, cut)
	d := checkpoint.Dir{Path: filepath.Join(cut, "checkpoints")}
	killedAt := int64(-1)
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline) && killedAt < 0; time.Sleep(2 * time.Millisecond) {
		ix, err := d.ReadIndex()
		if err != nil || ix.Latest == "" {
			continue
		}
		var step int64
		fmt.Sscanf(ix.Latest, "step-%d.ckpt", &step)
		if step < 10 { // stage 2, epoch 2 of 3, half-way
			continue
		}
		pid, err := workerWithRank(cmd.Process.Pid, 1)
		if err != nil {
			t.Fatalf("%v:\n%s", err, tail(out.String()))
		}
		syscall.Kill(pid, syscall.SIGKILL)
		killedAt = step
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("torchrun after rank 1 was killed at step %d: %v\n%s", killedAt, err, tail(out.String()))
	}
	if killedAt < 0 {
		t.Fatalf("never reached step 10:\n%s", tail(out.String()))
	}
	if !strings.Contains(out.String(), "event=resume") || !strings.Contains(out.String(), "done at step") {
		t.Fatalf("the restarted group did not resume and finish:\n%s", tail(out.String()))
	}
	ds := checkpoint.Dir{Path: filepath.Join(straight, "checkpoints")}
	la, _ := ds.Latest()
	lb, _ := d.Latest()
	a, err := checkpoint.Read(la)
	if err != nil {
		t.Fatal(err)
	}
	b, err := checkpoint.Read(lb)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range a.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) != len(b.Tensors) || a.State.GlobalStep != b.State.GlobalStep {
		t.Fatalf("%d tensors at step %d straight, %d at step %d after the kill", len(names), a.State.GlobalStep, len(b.Tensors), b.State.GlobalStep)
	}
	for _, n := range names {
		if !bytes.Equal(a.Tensors[n].Data, b.Tensors[n].Data) {
			t.Errorf("%s differs after rank 1 was killed at step %d", n, killedAt)
		}
	}
	for _, f := range []string{"oof_fold0.npy", "test_fold0.npy"} {
		x, _ := os.ReadFile(filepath.Join(straight, f))
		y, _ := os.ReadFile(filepath.Join(cut, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs", f)
		}
	}
	t.Logf("rank 1 killed after step %d of %d; torchrun restarted the group; %d tensors bit-identical", killedAt, a.State.GlobalStep, len(names))
}

func tail(s string) string {
	if len(s) > 6000 {
		return "..." + s[len(s)-6000:]
	}
	return s
}
