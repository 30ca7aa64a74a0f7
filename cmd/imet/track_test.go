package main

import (
	"os"
	"path/filepath"
	"testing"

	"imet/internal/registry"
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
