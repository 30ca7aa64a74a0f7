package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bomb is a billion-laughs alias chain of depth levels (10^depth values
// from a few hundred bytes) under key top, its last anchor aliased at use.
func bomb(top string, depth int) (defs, last string) {
	var b strings.Builder
	b.WriteString(top + ":\n  l0: &l0 [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	return b.String(), fmt.Sprintf("*l%d", depth-1)
}

// The hostile and unlucky configurations of issue 16, each of which
// `imet config check` accepted or died on ("fatal error: out of memory"):
// every one is now an error naming the file (and the line where there is
// one), and `imet train` refuses it with the same message before it
// records or starts anything.
func TestHostileConfigurations(t *testing.T) {
	dir := t.TempDir()
	pipes := filepath.Join(dir, "pipes.yaml")
	pdefs, plast := bomb("x", 9)
	os.WriteFile(pipes, []byte(pdefs+"pipelines:\n  mine: "+plast+"\n"), 0o644)
	fdefs, flast := bomb("anchors", 9)
	bdefs, blast := bomb("anchors", 9)
	for _, tc := range []struct{ name, doc, want string }{
		{"alias bomb in frozen", "stages:\n  - name: a\n    epochs: 1\n    frozen: " + flast + "\n" + fdefs, "values once aliases are expanded"},
		{"alias bomb in betas", "stages:\n  - name: a\n    epochs: 1\n    optimizer: {name: adamw, betas: " + blast + "}\n" + bdefs, "values once aliases are expanded"},
		{"alias bomb in pipelines_file", "data: {pipeline: mine, pipelines_file: " + pipes + "}\n", "pipes.yaml:"},
		{"100k-deep list", "stages:\n  - name: a\n    epochs: 1\n    frozen: " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n", "c.yaml:4: nested more than 64 levels deep"},
		{"fractional batch", "stages:\n  - name: a\n    epochs: 1\n    batch_size: 8.5\n", "c.yaml:4: 8.5 is not an integer"},
		{"negative limit", "data:\n  limit: -5\n", "c.yaml:2: data.limit: -5: must be at least 0"},
		{"negative threads", "engine:\n  threads: -3\n", "c.yaml:2: engine.threads: -3: must be at least 0"},
		{"100000 threads", "engine:\n  threads: 100000\n", "c.yaml:2: engine.threads: 100000 threads on a machine with"},
		{"validation batch 1e8", "validation:\n  batch_size: 1e8\n", "c.yaml:2: validation.batch_size: 100000000 images of 256x256: one forward pass of resnet50 needs about"},
		{"frozen stage9", "stages:\n  - name: a\n    epochs: 1\n    frozen: [stage9]\n", `c.yaml:4: stages[0].frozen: stage 0 (a): frozen group "stage9" is not one of`},
		{"7 rates for 3 groups", "stages:\n  - name: a\n    epochs: 1\n    frozen: [stem, stage1, stage2]\n    lr: [1, 2, 3, 4, 5, 6, 7]\n", "c.yaml:5: stages[0].lr: stage a: 7 rates for 2 trainable body groups and the head"},
		{"resnet9999", "model:\n  arch: resnet9999\n", `c.yaml:2: model.arch: unknown architecture "resnet9999"`},
		{"every group frozen", "stages:\n  - name: a\n    epochs: 1\n    frozen: [stem, stage1, stage2, stage3, stage4, head]\n", "c.yaml:4: stages[0].frozen: stage 0 (a): every layer group is frozen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, "c.yaml")
			os.WriteFile(f, []byte(tc.doc), 0o644)
			code, _, errs := runCLI(t, "config", "check", f)
			if code == 0 || !strings.Contains(errs, tc.want) || len(errs) > 1000 {
				t.Fatalf("config check: exit %d, %.1000q; want an error containing %q", code, errs, tc.want)
			}
			code, _, terrs := runCLI(t, "train", "--config", f, "--no-registry", "--run-dir", filepath.Join(dir, "run"))
			if code == 0 || !strings.Contains(terrs, tc.want) {
				t.Fatalf("train: exit %d, %.1000q; want the check's error %q", code, terrs, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "run")); err == nil {
				t.Fatal("train created its run directory before refusing the configuration")
			}
		})
	}
}

// IMET_TELEGRAM_TOKEN exported without a notify file made every train
// fail; now the run trains, recorded, with one warning that names the
// variable and never the token.
func TestTrainWarnsOnceForATelegramTokenWithoutChat(t *testing.T) {
	const token = "123456:TOKEN-THAT-MUST-NOT-LEAK"
	t.Setenv("IMET_TELEGRAM_TOKEN", token)
	t.Setenv("IMET_NOTIFY_URLS", "")
	cfg := tinyRun(t)
	reg := filepath.Join(t.TempDir(), "registry.db")
	code, _, errs := runCLI(t, "train", "--config", cfg, "--run-dir", filepath.Join(t.TempDir(), "run"), "--registry", reg, "--time-budget", "1ns")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if n := strings.Count(errs, "IMET_TELEGRAM_TOKEN is set but telegram.chat_id is empty"); n != 1 || strings.Contains(errs, token) {
		t.Fatalf("%d warnings (want 1), token shown: %v\n%s", n, strings.Contains(errs, token), errs)
	}
}

// A stray fold number (one row of fold 3 in a 3-fold split) became an
// extra fold of one row; train now refuses it naming the line. A batch
// larger than the rows a data.limit leaves is clamped, with a log line.
func TestTrainFoldsAndBatchBounds(t *testing.T) {
	cfg := tinyRun(t)
	data := filepath.Join(filepath.Dir(cfg), "data")
	foldsPath := filepath.Join(data, "folds.csv")
	orig, err := os.ReadFile(foldsPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(orig), "\n")
	id, _, _ := strings.Cut(lines[5], ",")
	lines[5] = id + ",3"
	os.WriteFile(foldsPath, []byte(strings.Join(lines, "\n")), 0o644)
	code, _, errs := runCLI(t, "train", "--config", cfg, "--no-registry", "--run-dir", filepath.Join(t.TempDir(), "run"), "--time-budget", "1ns")
	if want := "folds.csv:6: fold 3 has 1 row(s), fewer than a batch of 8 (a stray fold number?"; code == 0 || !strings.Contains(errs, want) {
		t.Fatalf("stray fold: exit %d, %s; want %q", code, errs, want)
	}
	os.WriteFile(foldsPath, orig, 0o644)

	b, _ := os.ReadFile(cfg)
	// The warm-up goes: one step is all a 6-row fold leaves the stage.
	small := strings.Replace(string(b), "  workers: 2\n", "  workers: 2\n  limit: 10\n", 1)
	small = strings.Replace(small, "{name: cosine, warmup_steps: 1}", "{name: cosine}", 1)
	os.WriteFile(cfg, []byte(small), 0o644)
	code, _, errs = runCLI(t, "train", "--config", cfg, "--no-registry", "--run-dir", filepath.Join(t.TempDir(), "run"), "--time-budget", "1ns")
	if code != 0 || !strings.Contains(errs, "stage head: batch_size 8 clamped to the fold's") || !strings.Contains(errs, "validation.batch_size 16 clamped to the fold's") {
		t.Fatalf("limit 10: exit %d, want the clamps logged:\n%s", code, errs)
	}
}
