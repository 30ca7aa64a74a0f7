package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"imet/internal/base/config"
	"imet/internal/engine/optim"
	"imet/internal/engine/torch"
	"imet/internal/experiments/notify"
	"imet/internal/training/losses"
	"imet/internal/training/plan"
	"imet/internal/training/schedule"
	"imet/internal/training/trainconfig"
	"imet/internal/vision/pipeline"
	"imet/internal/zoo/models"
	"imet/internal/zoo/weights"
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
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != out {
		have, want := strings.Split(string(doc), "\n"), strings.Split(out, "\n")
		for i := range max(len(have), len(want)) {
			h, w := "(end of file)", "(end of file)"
			if i < len(have) {
				h = have[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if h != w {
				t.Fatalf("docs/config.md is stale from line %d:\n  file:      %s\n  generated: %s\nregenerate: go run ./cmd/imet config reference > docs/config.md", i+1, h, w)
			}
		}
	}
}

// refRow is one key of the generated reference.
type refRow struct{ key, typ, def string }

// referenceRows are the rows of the reference between the headings from
// and to ("" for the end).
func referenceRows(t *testing.T, ref, from, to string) []refRow {
	t.Helper()
	_, ref, ok := strings.Cut(ref, from)
	if !ok {
		t.Fatalf("reference lacks %q", from)
	}
	if to != "" {
		ref, _, _ = strings.Cut(ref, to)
	}
	var rows []refRow
	for _, line := range strings.Split(ref, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		// Only the meaning may hold a (escaped) |.
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("row %q", line)
		}
		rows = append(rows, refRow{strings.Trim(strings.TrimSpace(cells[1]), "`"), strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])})
	}
	if len(rows) == 0 {
		t.Fatalf("no rows under %q", from)
	}
	return rows
}

// field is the field of struct v whose YAML key is name.
func field(t *testing.T, v reflect.Value, name string) reflect.Value {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		tag := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
		if tag == name {
			return v.Field(i)
		}
	}
	t.Fatalf("%s has no key %q", v.Type(), name)
	return reflect.Value{}
}

// emptyEntries is a YAML document with one entry written {} in each list
// of lists, e.g. stages: [{loss: [{}]}] for [stages loss].
func emptyEntries(lists []string) string {
	if len(lists) == 0 {
		return "{}"
	}
	s := "[" + emptyEntries(lists[1:]) + "]"
	parts := strings.Split(lists[0], ".")
	for i := len(parts) - 1; i >= 0; i-- {
		s = "{" + parts[i] + ": " + s + "}"
	}
	return s
}

// checkApplied checks each row's documented default against the value
// decode gives the key when a file leaves it out: for a key inside lists,
// a file holding one entry written {} in each.
func checkApplied(t *testing.T, rows []refRow, decode func(doc string) (reflect.Value, error)) {
	for _, r := range rows {
		if r.typ == "section" {
			continue
		}
		segs := strings.Split(r.key, "[].")
		doc := emptyEntries(segs[:len(segs)-1])
		v, err := decode(doc)
		if err != nil {
			t.Fatalf("%s: %s: %v", r.key, doc, err)
		}
		for i, s := range segs {
			for _, name := range strings.Split(s, ".") {
				v = field(t, v, name)
			}
			if i < len(segs)-1 {
				v = v.Index(0)
			}
		}
		cell := strings.Trim(r.def, "`")
		switch {
		case r.typ == "list of sections":
			var names []string
			for i := range v.Len() {
				names = append(names, field(t, v.Index(i), "name").String())
			}
			if got := "[" + strings.Join(names, ", ") + "]"; (cell != "" || v.Len() > 0) && got != cell {
				t.Errorf("%s: documented %s, a file that leaves it out gets %s", r.key, r.def, got)
			}
		case cell == "":
			if !v.IsZero() {
				t.Errorf("%s: documented without a default, a file that leaves it out gets %v", r.key, v.Interface())
			}
		default:
			want := reflect.New(v.Type())
			if err := yaml.Unmarshal([]byte(cell), want.Interface()); err != nil {
				t.Fatalf("%s: documented default %s does not read back: %v", r.key, r.def, err)
			}
			if !reflect.DeepEqual(want.Elem().Interface(), v.Interface()) {
				t.Errorf("%s: documented %s, a file that leaves it out gets %v", r.key, r.def, v.Interface())
			}
		}
	}
}

// Every default in docs/config.md is the one loading a file applies: the
// reference must not describe another value than the loader's (it once
// documented the default recipe's first stage as a stage's defaults).
func TestConfigReferenceDefaultsAreApplied(t *testing.T) {
	ref := configReference()
	checkApplied(t, referenceRows(t, ref, "## Run configuration", "### Default recipe"), func(doc string) (reflect.Value, error) {
		r, err := trainconfig.Decode("t.yaml", []byte(doc))
		return reflect.ValueOf(r), err
	})
	// As track.go loads --notify-file.
	checkApplied(t, referenceRows(t, ref, "## Notifications", ""), func(doc string) (reflect.Value, error) {
		c := notify.DefaultConfig()
		err := config.Decode("n.yaml", []byte(doc), &c)
		return reflect.ValueOf(c), err
	})
}

// The default recipe, as the reference writes it, is the recipe a file
// without stages gets.
func TestConfigReferenceRecipeIsTheDefault(t *testing.T) {
	_, block, _ := strings.Cut(configReference(), "### Default recipe")
	_, block, _ = strings.Cut(block, "```yaml\n")
	block, _, ok := strings.Cut(block, "```")
	if !ok {
		t.Fatal("no recipe block")
	}
	r, err := trainconfig.Parse("recipe.yaml", []byte(block))
	if err != nil {
		t.Fatalf("%v\n%s", err, block)
	}
	if want := trainconfig.Default().Stages; !reflect.DeepEqual(r.Stages, want) {
		t.Fatalf("recipe reads back as\n%+v\nnot\n%+v", r.Stages, want)
	}
}

// Every recipe in configs/ passes config check, run from a copy of the
// repository's layout: its pretrained files are stand-ins of the right
// architecture under the names it gives (the published files are not
// here), the nsfwjs MobileNetV2 the real one from the npm assets.
func TestConfigRecipes(t *testing.T) {
	recipes, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if len(recipes) < 5 {
		t.Fatalf("%d recipes in configs/", len(recipes))
	}
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "configs"), os.DirFS(filepath.Join("..", "..", "configs"))); err != nil {
		t.Fatal(err)
	}
	assets := os.Getenv("IMET_ASSETS")
	if assets == "" {
		assets = filepath.Join("..", "..", ".cache", "npm", "node_modules")
	}
	if abs, err := filepath.Abs(assets); err == nil {
		os.MkdirAll(filepath.Join(root, ".cache", "npm"), 0o755)
		os.Symlink(abs, filepath.Join(root, ".cache", "npm", "node_modules"))
	}
	t.Chdir(root)
	for _, r := range recipes {
		name := filepath.Base(r)
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("configs", name)
			if strings.HasPrefix(name, "plan-") {
				// A plan of cv runs, not a run configuration: its parts are
				// recipes checked here on their own.
				p, err := plan.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Parts) < 2 {
					t.Fatalf("%s: %d parts", path, len(p.Parts))
				}
				return
			}
			cfg, err := trainconfig.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			m := cfg.Model
			if m.Variant == models.VariantKeras {
				if _, err := os.Stat(m.Pretrained); err != nil {
					t.Skipf("nsfwjs assets not installed (%v); run scripts/assets.sh or set IMET_ASSETS", err)
				}
			} else if m.Pretrained != "" {
				standIn(t, m.Arch, m.Pretrained)
			}
			if code, out, errs := runCLI(t, "config", "check", path); code != 0 || !strings.Contains(out, "ok") {
				t.Fatalf("%s: exit %d %s", path, code, errs)
			}
		})
	}
}

// standIn writes a freshly initialised arch at path, unless one is there.
func standIn(t *testing.T, arch, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	m, err := models.New(arch, models.Options{NumClasses: 1000})
	if err != nil {
		t.Fatal(err)
	}
	set, err := models.StateSet(m)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := weights.WriteSafetensors(path, set); err != nil {
		t.Fatal(err)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
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

// Names are checked against the tables the code builds from, and the
// error lists what is known.
func TestConfigCheckNames(t *testing.T) {
	dir := t.TempDir()
	pipes := filepath.Join(dir, "pipes.yaml")
	os.WriteFile(pipes, []byte("pipelines:\n  mine:\n    train: [{op: Resize, height: 8, width: 8}]\n    eval: [{op: Resize, height: 8, width: 8}]\n    tta: {mode: flip}\n"), 0o644)
	known := func(names []string) string { return "(known: " + strings.Join(names, ", ") + ")" }
	for _, c := range []struct{ name, doc, want string }{
		{"loss", "stages:\n  - {epochs: 1, loss: [{name: dice}]}\n", `loss[0]: unknown loss "dice" ` + known(losses.Names())},
		{"optimizer", "stages:\n  - {epochs: 1, optimizer: {name: lamb}}\n", `optimizer: unknown optimizer "lamb" ` + known(optim.Names())},
		{"schedule", "stages:\n  - {epochs: 1, schedule: {name: poly}}\n", `unknown schedule "poly" ` + known(schedule.Names())},
		{"arch", "model: {arch: resnet51}\n", `model.arch: unknown architecture "resnet51" ` + known(models.Names())},
		{"pool", "model: {pool: sum}\n", `pool "sum"`},
		{"pipeline", "data: {pipeline: aggressive265}\n", `data.pipeline: unknown pipeline "aggressive265" ` + known(pipeline.Names(nil))},
		{"pipeline from file", "data: {pipeline: theirs, pipelines_file: " + pipes + "}\n", `data.pipeline: unknown pipeline "theirs" ` + known(slices.Sorted(slices.Values(append(pipeline.Names(nil), "mine"))))},
		{"device", "engine: {device: gpu}\n", `engine.device: device "gpu": want ` + torch.DeviceSyntax},
		{"device index", "engine: {device: \"cuda:x\"}\n", `engine.device: device "cuda:x"`},
	} {
		f := filepath.Join(dir, "c.yaml")
		os.WriteFile(f, []byte(c.doc), 0o644)
		code, _, errs := runCLI(t, "config", "check", f)
		if code == 0 || !strings.Contains(errs, c.want) || !strings.Contains(errs, "c.yaml") {
			t.Errorf("%s: exit %d, %q; want an error naming c.yaml and %q", c.name, code, errs, c.want)
		}
	}
	for _, doc := range []string{
		"engine: {device: cuda}\n", "engine: {device: \"cuda:1\"}\n",
		"data: {pipeline: mine, pipelines_file: " + pipes + "}\n",
	} {
		f := filepath.Join(dir, "ok.yaml")
		os.WriteFile(f, []byte(doc), 0o644)
		if code, _, errs := runCLI(t, "config", "check", f); code != 0 {
			t.Errorf("%q refused: %s", doc, errs)
		}
	}
}
