package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDashboardRefusesOpenBindWithoutToken(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry.db")
	t.Setenv("IMET_DASHBOARD_TOKEN", "")
	code, _, errs := runCLI(t, "dashboard", "--addr", "0.0.0.0:0", "--registry", reg)
	if code != 1 || !strings.Contains(errs, "token") {
		t.Errorf("open bind without token: exit %d, %q", code, errs)
	}
	t.Setenv("IMET_DASHBOARD_TOKEN", "x")
	code, _, errs = runCLI(t, "dashboard", "--addr", "127.0.0.1:0", "--registry", reg)
	if code != 1 || !strings.Contains(errs, "at least 16") {
		t.Errorf("1-character token: exit %d, %q", code, errs)
	}
	t.Setenv("IMET_DASHBOARD_TOKEN", "")
	code, _, errs = runCLI(t, "dashboard", "--addr", "0.0.0.0:0", "--token-file", filepath.Join(t.TempDir(), "nope"), "--registry", reg)
	if code != 1 || !strings.Contains(errs, "nope") {
		t.Errorf("missing token file: exit %d, %q", code, errs)
	}
}
