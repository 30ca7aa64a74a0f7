package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/config.md is generated; regenerate it with
//
//	go run ./cmd/imet config reference > docs/config.md
func TestConfigReferenceIsCurrent(t *testing.T) {
	code, out, errs := runCLI(t, "config", "reference")
	if code != 0 {
		t.Fatal(errs)
	}
	for _, want := range []string{"`stages[].lr`", "`model.arch`", "`engine.threads`", "`telegram.chat_id`"} {
		if !strings.Contains(out, want) {
			t.Errorf("reference lacks %s", want)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil || string(doc) != out {
		t.Fatalf("docs/config.md is stale; regenerate: go run ./cmd/imet config reference > docs/config.md")
	}
}

func TestConfigCheck(t *testing.T) {
	good := filepath.Join("..", "..", "configs", "imet-resnet50.yaml")
	if code, out, errs := runCLI(t, "config", "check", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("%s: %d %s", good, code, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nstages:\n  - epochs: 1\n    lr_max: 3\n"), 0o644)
	code, _, errs := runCLI(t, "config", "check", bad)
	if code == 0 || !strings.Contains(errs, "bad.yaml:4") || !strings.Contains(errs, "lr_max") {
		t.Fatalf("misspelt key: exit %d, %s", code, errs)
	}
	for doc, want := range map[string]string{
		"name: x\nengine:\n  precision: fp16\n":               "bad.yaml:3: engine.precision: fp16 needs a CUDA device",
		"name: x\nengine:\n  device: gpu\n":                   `bad.yaml:3: engine.device: device "gpu": want cpu, cuda or cuda:N`,
		"name: x\nengine:\n  bf16: true\n  precision: fp32\n": "bad.yaml:3: engine.bf16: true (deprecated) means precision bf16",
	} {
		os.WriteFile(bad, []byte(doc), 0o644)
		if code, _, errs := runCLI(t, "config", "check", bad); code == 0 || !strings.Contains(errs, want) {
			t.Errorf("%q: exit %d, %s", doc, code, errs)
		}
	}
	// A GPU configuration checks on a machine without one: the device is
	// looked for when training starts.
	os.WriteFile(bad, []byte("name: x\nengine: {device: 'cuda:1', precision: fp16}\n"), 0o644)
	if code, _, errs := runCLI(t, "config", "check", bad); code != 0 {
		t.Errorf("GPU config: exit %d, %s", code, errs)
	}
}
