package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/ensemble"
	"imet/internal/thresholds"
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
