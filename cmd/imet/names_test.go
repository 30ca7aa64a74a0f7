package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imet/internal/base/config"
	"imet/internal/experiments/notify"
	"imet/internal/postprocess/ensemble"
	"imet/internal/postprocess/thresholds"
)

// Flags that take names list them from the tables the code uses, and
// accept exactly those.
func TestFlagsListNamesFromTables(t *testing.T) {
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	_, th, _ := runCLI(t, "thresholds", "--help")
	if want := "Rules to search: " + strings.Join(thresholds.AllRules, ", ") + "."; !strings.Contains(flat(th), want) {
		t.Errorf("thresholds --help lacks %q:\n%s", want, th)
	}
	_, en, _ := runCLI(t, "ensemble", "--help")
	for _, m := range ensemble.Methods {
		if !strings.Contains(flat(en), string(m)) {
			t.Errorf("ensemble --help lacks method %s", m)
		}
	}
	_, cv, _ := runCLI(t, "cv", "--help")
	if want := "combined: " + strings.Join(foldMethods(), ", ") + "."; !strings.Contains(flat(cv), want) {
		t.Errorf("cv --help lacks %q:\n%s", want, cv)
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("name: x\n"), 0o644)
	code, _, errs := runCLI(t, "cv", "--config", cfg, "--ensemble", string(ensemble.Weighted))
	if code == 0 || !strings.Contains(errs, "--ensemble") || !strings.Contains(errs, `"geomean"`) {
		t.Errorf("cv --ensemble weighted: exit %d, %s", code, errs)
	}
}

// The commands that record runs are those embedding trackFlags; docs and
// the dashboard name exactly these (they once also named predict and
// thresholds, which record nothing).
func TestRecordingCommands(t *testing.T) {
	got := recordingCommands()
	if strings.Join(got, ",") != "cv,train" {
		t.Errorf("recording commands %v; if this changed on purpose, docs/registry.md's first paragraph says which", got)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "registry.md"))
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(doc)), " ")
	_, claim, _ := strings.Cut(flat, "Every ")
	claim, _, ok := strings.Cut(claim, " run is recorded")
	if !ok {
		t.Fatal(`docs/registry.md lacks "Every ... run is recorded"`)
	}
	var named []string
	for _, part := range strings.Split(claim, "`")[1:] {
		if c, ok := strings.CutPrefix(part, "imet "); ok {
			named = append(named, c)
		}
	}
	slices.Sort(named)
	if !slices.Equal(named, got) {
		t.Errorf("docs/registry.md says every %v run is recorded; the recording commands are %v", named, got)
	}
}

// The notification file shown in docs/registry.md is one --notify-file
// accepts.
func TestRegistryDocNotifyExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "registry.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, notif, _ := strings.Cut(string(doc), "## Notifications")
	_, block, _ := strings.Cut(notif, "```yaml\n")
	block, _, ok := strings.Cut(block, "```")
	if !ok {
		t.Fatal("no YAML example under ## Notifications")
	}
	c := notify.DefaultConfig()
	if err := config.Decode("registry.md", []byte(block), &c); err != nil {
		t.Fatal(err)
	}
	if c.Telegram.ChatID == "" || c.Telegram.TokenEnv != notify.DefaultConfig().Telegram.TokenEnv {
		t.Errorf("example decodes to %+v", c)
	}
}
