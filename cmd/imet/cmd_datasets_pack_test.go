package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/postprocess/probs"
)

// A run reading a full-size pack trains on the very batches a run decoding
// the PNGs does: its out-of-fold probabilities are bit-identical.
func TestDatasetsPackTrainsIdentically(t *testing.T) {
	cfg := tinyRunOf(t, tinySpec{train: 32, test: 4, folds: 2, cultures: 2, tags: 3, headEpochs: 1, headLR: 1e-3})
	data := filepath.Join(filepath.Dir(cfg), "data")
	code, out, errs := runCLI(t, "datasets", "pack", data, "--workers", "2")
	if code != 0 || !strings.Contains(out, "36 images (0 capped") || !strings.Contains(errs, "packed 18 of 36 images") {
		t.Fatalf("pack: exit %d\n%s\n%s", code, out, errs)
	}
	body, _ := os.ReadFile(cfg)
	packedCfg := filepath.Join(filepath.Dir(cfg), "packed.yaml")
	os.WriteFile(packedCfg, []byte(strings.Replace(string(body), "  workers: 2\n", "  workers: 2\n  packed: images.pack\n", 1)), 0o644)
	oof := func(cfg string) []float32 {
		t.Helper()
		run := filepath.Join(t.TempDir(), "run")
		if code, _, errs := runCLI(t, "train", "--config", cfg, "--fold", "0", "--run-dir", run); code != 0 {
			t.Fatalf("train %s: exit %d: %s", cfg, code, errs)
		}
		p, err := probs.Load(filepath.Join(run, "oof_fold0.npy"))
		if err != nil {
			t.Fatal(err)
		}
		return p.Data
	}
	if a, b := oof(cfg), oof(packedCfg); !slices.Equal(a, b) {
		t.Fatal("training from the pack gave other out-of-fold probabilities than decoding")
	}

	// The run really reads the pack: a damaged image in it stops training,
	// naming the pack.
	pack := filepath.Join(data, "images.pack")
	pb, _ := os.ReadFile(pack)
	for i := 64; i < 64+1024; i++ {
		pb[i] ^= 0x5a
	}
	// A new file renamed over the old, as imet datasets pack replaces one.
	os.WriteFile(pack+".new", pb, 0o644)
	os.Rename(pack+".new", pack)
	code, _, errs = runCLI(t, "train", "--config", packedCfg, "--fold", "0", "--run-dir", filepath.Join(t.TempDir(), "run"))
	if code == 0 || !strings.Contains(errs, "checksum mismatch") || !strings.Contains(errs, pack) {
		t.Fatalf("damaged pack: exit %d: %s", code, errs)
	}

	// A pack of another data set is refused, not silently ignored.
	other := filepath.Join(t.TempDir(), "other")
	if code, _, errs := runCLI(t, "datasets", "synth", "--out", other, "--train", "6", "--test", "1", "--seed", "9"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := runCLI(t, "datasets", "pack", other, "--max-side", "40"); code != 0 {
		t.Fatal(errs)
	}
	os.WriteFile(packedCfg, []byte(strings.Replace(string(body), "  workers: 2\n", "  workers: 2\n  packed: "+filepath.Join(other, "images.pack")+"\n", 1)), 0o644)
	code, _, errs = runCLI(t, "train", "--config", packedCfg, "--fold", "0", "--run-dir", filepath.Join(t.TempDir(), "run"))
	if code == 0 || !strings.Contains(errs, "data.packed") || !strings.Contains(errs, "holds none of the") {
		t.Fatalf("foreign pack: exit %d: %s", code, errs)
	}
}

func TestDatasetsPackNamesBrokenImage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if code, _, errs := runCLI(t, "datasets", "synth", "--out", dir, "--train", "5", "--test", "1"); code != 0 {
		t.Fatal(errs)
	}
	imgs, _ := filepath.Glob(filepath.Join(dir, "train", "*.png"))
	data, _ := os.ReadFile(imgs[2])
	os.WriteFile(imgs[2], data[:len(data)/3], 0o644)
	code, _, errs := runCLI(t, "datasets", "pack", dir)
	if code != 1 || !strings.Contains(errs, imgs[2]) {
		t.Fatalf("exit %d, stderr %s: want the broken file named", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "images.pack")); !os.IsNotExist(err) {
		t.Fatalf("a failed pack left a file: %v", err)
	}
}
