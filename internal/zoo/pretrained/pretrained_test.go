package pretrained_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"imet/internal/base/pyref"
	"imet/internal/engine/torch"
	"imet/internal/training/checkpoint"
	"imet/internal/training/train"
	"imet/internal/training/trainconfig"
	"imet/internal/zoo/models"
	"imet/internal/zoo/weights"
)

// export is a model's tensors as a weight file holding exactly that model
// would read them.
func export(t *testing.T, m models.Model) weights.Set {
	t.Helper()
	s, err := models.StateSet(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeSafetensors(t *testing.T, path string, s weights.Set) {
	t.Helper()
	if err := weights.WriteSafetensors(path, s); err != nil {
		t.Fatal(err)
	}
}

// torchSave writes ts with torch.save in format zip or legacy.
func torchSave(t *testing.T, py, path, format string, ts weights.Set) {
	t.Helper()
	st := path + ".safetensors"
	writeSafetensors(t, st, ts)
	out, err := exec.Command(py, "testdata/torch_save.py", st, path, format).CombinedOutput()
	if err != nil {
		t.Fatalf("torch_save.py: %v\n%s", err, out)
	}
}

func writeCheckpoint(t *testing.T, runDir string, model, ema weights.Set) string {
	t.Helper()
	c := &checkpoint.Checkpoint{Tensors: map[string]checkpoint.Tensor{}}
	put := func(prefix string, ts weights.Set) {
		for n, x := range ts {
			if x.DType == weights.Int64 {
				var b []byte
				for _, v := range x.Data {
					b = binary.LittleEndian.AppendUint64(b, uint64(int64(v)))
				}
				c.Tensors[prefix+n] = checkpoint.Tensor{DType: "int64", Shape: x.Shape, Data: b}
				continue
			}
			c.Tensors[prefix+n] = checkpoint.Float32(x.Shape, x.Data)
		}
	}
	put("model/", model)
	put("ema/", ema)
	c.State.GlobalStep = 7
	d := checkpoint.Dir{Path: filepath.Join(runDir, "checkpoints"), Keep: 1}
	name, err := d.Save(c, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(d.Path, filepath.Base(name))
}

func assets() string {
	if d := os.Getenv("IMET_ASSETS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", ".cache", "npm", "node_modules")
}

// loadThroughConfig is what a run does with a configuration's model
// section: config check's load, then training's BuildModel.
func loadThroughConfig(t *testing.T, model string, classes int) (train.Model, string, error) {
	t.Helper()
	yaml := "name: t\nmodel:\n" + model
	cfg, err := trainconfig.ParseChecked("recipe.yaml", []byte(yaml), trainconfig.ThisMachine())
	if err != nil {
		return nil, "", err
	}
	return train.BuildModel(&cfg, classes)
}

func source(t *testing.T, arch string, classes int) models.Model {
	t.Helper()
	torch.ManualSeed(3)
	m, err := models.New(arch, models.Options{NumClasses: classes})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// same requires m's tensor name to hold want.
func same(t *testing.T, m train.Model, name string, want []float32) {
	t.Helper()
	got := m.Store().Var(name).T.To(torch.Float32).Float32s()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s[%d] = %g, the file holds %g", name, i, got[i], want[i])
		}
	}
}

var mapping = regexp.MustCompile(`mapping (\w+) \((picked automatically|as named)\)`)

func picked(t *testing.T, report, want string) {
	t.Helper()
	m := mapping.FindStringSubmatch(report)
	if m == nil || m[1] != want {
		t.Fatalf("mapping %v, want %s; report:\n%s", m, want, report)
	}
}

// Every weight source imet reads loads through a run configuration's
// model section, as config check and training load it, and the model
// then holds the file's values.
func TestEveryWeightSourceLoadsThroughAConfig(t *testing.T) {
	dir := t.TempDir()
	t.Run("torchvision .pth (zip format)", func(t *testing.T) {
		py := pyref.Require(t, "torch", "numpy")
		src := export(t, source(t, "resnet18", 7))
		path := filepath.Join(dir, "resnet18.pth")
		torchSave(t, py, path, "zip", src)
		m, report, err := loadThroughConfig(t, fmt.Sprintf("  arch: resnet18\n  pretrained: %s\n", path), 5)
		if err != nil {
			t.Fatal(err)
		}
		picked(t, report, "torchvision")
		if !strings.Contains(report, "fc.weight: model [5, 512], file [7, 512]") {
			t.Errorf("head not reported re-initialised:\n%s", report)
		}
		same(t, m, "layer3.1.conv2.weight", src["layer3.1.conv2.weight"].Data)
		same(t, m, "bn1.running_var", src["bn1.running_var"].Data)
	})
	t.Run("Cadene .pth (legacy format) and timm .safetensors", func(t *testing.T) {
		py := pyref.Require(t, "torch", "numpy")
		src := export(t, source(t, "se_resnext50_32x4d", 3))
		cadene := filepath.Join(dir, "se_resnext50_32x4d-a260b3a4.pth")
		torchSave(t, py, cadene, "legacy", src)
		m, report, err := loadThroughConfig(t, fmt.Sprintf("  arch: se_resnext50_32x4d\n  pretrained: %s\n", cadene), 3)
		if err != nil {
			t.Fatal(err)
		}
		picked(t, report, "cadene")
		same(t, m, "layer0.conv1.weight", src["layer0.conv1.weight"].Data)
		same(t, m, "last_linear.weight", src["last_linear.weight"].Data)

		// timm's names (its squeeze-excitation layers are 1x1
		// convolutions too).
		timm := weights.Set{}
		for n, x := range src {
			n = strings.Replace(strings.Replace(n, "layer0.", "", 1), ".se_module.", ".se.", 1)
			timm[strings.Replace(n, "last_linear.", "fc.", 1)] = x
		}
		st := filepath.Join(dir, "model.safetensors")
		writeSafetensors(t, st, timm)
		for _, from := range []string{"  from: timm\n", ""} {
			m, report, err := loadThroughConfig(t, fmt.Sprintf("  arch: se_resnext50_32x4d\n  pretrained: %s\n%s", st, from), 3)
			if err != nil {
				t.Fatalf("%q: %v", from, err)
			}
			picked(t, report, "timm")
			same(t, m, "layer0.bn1.weight", src["layer0.bn1.weight"].Data)
			same(t, m, "layer2.1.se_module.fc1.weight", src["layer2.1.se_module.fc1.weight"].Data)
		}
	})
	t.Run("nsfwjs Keras models (tfjs)", func(t *testing.T) {
		for _, c := range []struct{ arch, dir, probe string }{
			{"mobilenet_v2", models.NSFWJSModelDir(assets()), "features.7.conv.1.0.weight"},
			{"inception_v3", models.NSFWJSInceptionDir(assets()), "Mixed_6b.branch7x7_2.conv.weight"},
		} {
			if _, err := os.Stat(c.dir); err != nil {
				t.Skipf("nsfwjs assets not installed (%v); run scripts/assets.sh or set IMET_ASSETS", err)
			}
			var want []float32
			if c.arch == "mobilenet_v2" {
				set, err := models.NSFWJSWeights(c.dir)
				if err != nil {
					t.Fatal(err)
				}
				want = set[c.probe].Data
			} else {
				ref, _, err := models.NewNSFWJSInception(c.dir)
				if err != nil {
					t.Fatal(err)
				}
				want = ref.Store().Var(c.probe).T.Float32s()
			}
			m, report, err := loadThroughConfig(t, fmt.Sprintf("  arch: %s\n  variant: keras\n  pretrained: %s\n", c.arch, c.dir), 4)
			if err != nil {
				t.Fatal(err)
			}
			picked(t, report, "keras")
			same(t, m, c.probe, want)
			if _, _, err := loadThroughConfig(t, fmt.Sprintf("  arch: %s\n  pretrained: %s\n", c.arch, c.dir), 4); err == nil || !strings.Contains(err.Error(), "set model.variant: keras") {
				t.Errorf("%s without variant keras: err = %v", c.arch, err)
			}
		}
	})
	t.Run("a previous imet run and its checkpoint", func(t *testing.T) {
		model := export(t, source(t, "mobilenet_v2", 4))
		ema := export(t, source(t, "mobilenet_v2", 4))
		for _, x := range ema { // a distinguishable average
			if x.DType != weights.Int64 {
				for i := range x.Data {
					x.Data[i] += 0.5
				}
			}
		}
		run := filepath.Join(dir, "run")
		ckpt := writeCheckpoint(t, run, model, nil)
		m, report, err := loadThroughConfig(t, fmt.Sprintf("  arch: mobilenet_v2\n  pretrained: %s\n", run), 4)
		if err != nil {
			t.Fatal(err)
		}
		picked(t, report, "imet")
		same(t, m, "features.3.conv.1.0.weight", model["features.3.conv.1.0.weight"].Data)
		same(t, m, "classifier.1.weight", model["classifier.1.weight"].Data)

		emaRun := filepath.Join(dir, "ema-run")
		emaCkpt := writeCheckpoint(t, emaRun, model, ema)
		for _, p := range []string{emaRun, emaCkpt} {
			m, _, err := loadThroughConfig(t, fmt.Sprintf("  arch: mobilenet_v2\n  pretrained: %s\n  from: imet\n", p), 4)
			if err != nil {
				t.Fatal(err)
			}
			same(t, m, "features.3.conv.1.0.weight", ema["features.3.conv.1.0.weight"].Data)
		}
		if _, _, err := loadThroughConfig(t, fmt.Sprintf("  arch: resnet18\n  pretrained: %s\n", ckpt), 4); err == nil || !strings.Contains(err.Error(), "map no tensor") {
			t.Errorf("a mobilenet_v2 run into resnet18: err = %v", err)
		}

		// A run of the Keras form continues only in that form.
		if err := os.WriteFile(filepath.Join(run, "config.yaml"), []byte("name: src\nmodel:\n  arch: mobilenet_v2\n  variant: keras\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{run, ckpt} {
			if _, _, err := loadThroughConfig(t, fmt.Sprintf("  arch: mobilenet_v2\n  pretrained: %s\n", p), 4); err == nil || !strings.Contains(err.Error(), "set model.variant: keras") {
				t.Errorf("a keras run continued in torchvision form: err = %v", err)
			}
			if _, _, err := loadThroughConfig(t, fmt.Sprintf("  arch: mobilenet_v2\n  variant: keras\n  pretrained: %s\n", p), 4); err != nil {
				t.Errorf("a keras run continued in its form: %v", err)
			}
		}
	})
}

// A source that maps no tensor, or lacks some, is refused by config check
// at the line naming it, with what was missing; nothing trains from
// random weights.
func TestSourcesThatDoNotFitAreRefusedAtCheck(t *testing.T) {
	dir := t.TempDir()
	src := export(t, source(t, "mobilenet_v2", 4))
	full := filepath.Join(dir, "mnv2.safetensors")
	writeSafetensors(t, full, src)
	partial := weights.Set{}
	for n, x := range src {
		if n != "features.5.conv.2.weight" && n != "features.18.1.running_mean" {
			partial[n] = x
		}
	}
	part := filepath.Join(dir, "partial.safetensors")
	writeSafetensors(t, part, partial)
	for _, c := range []struct {
		name, model string
		want        []string
	}{
		{"zero tensors", fmt.Sprintf("  arch: resnet18\n  pretrained: %s\n", full), []string{"recipe.yaml:4:", "model.pretrained", "map no tensor", "0 of 122 loaded"}},
		{"partial", fmt.Sprintf("  arch: mobilenet_v2\n  pretrained: %s\n", part), []string{"recipe.yaml:4:", "2 missing", "features.5.conv.2.weight", "features.18.1.running_mean"}},
		{"unknown mapping", fmt.Sprintf("  arch: mobilenet_v2\n  pretrained: %s\n  from: caffe\n", full), []string{"recipe.yaml:5:", "model.from", "caffe"}},
		{"mapping the architecture lacks", fmt.Sprintf("  arch: mobilenet_v2\n  pretrained: %s\n  from: timm\n", full), []string{"recipe.yaml:5:", "no mapping from timm"}},
		{"variant the architecture lacks", fmt.Sprintf("  arch: resnet18\n  variant: keras\n"), []string{"recipe.yaml:4:", "model.variant", "no variant"}},
		{"keras variant, torchvision weights", fmt.Sprintf("  arch: mobilenet_v2\n  variant: keras\n  pretrained: %s\n", full), []string{"recipe.yaml:4:", "model.variant", "variant keras is the network Keras weights need"}},
		{"missing file", "  arch: mobilenet_v2\n  pretrained: /nonexistent/w.pth\n", []string{"recipe.yaml:4:", "/nonexistent/w.pth"}},
	} {
		_, _, err := loadThroughConfig(t, c.model, 4)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q:\n%v", c.name, w, err)
			}
		}
	}
}
