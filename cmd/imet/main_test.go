package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// asIMet, set in the environment, makes the test binary run as imet: cv
// --parallel starts its fold trainers as os.Executable(), which in tests is
// this binary.
const asIMet = "IMET_TEST_AS_IMET"

// TestMain keeps commands that record runs from writing a registry into the
// source tree: tests that care pass --registry themselves.
func TestMain(m *testing.M) {
	if os.Getenv(asIMet) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	dir, err := os.MkdirTemp("", "imet-cli-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("IMET_REGISTRY", filepath.Join(dir, "registry.db"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI runs the command line in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpListsCommands(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	if !strings.Contains(out, "version") {
		t.Fatalf("help does not list the version command:\n%s", out)
	}
}

func TestUnknownCommandFails(t *testing.T) {
	code, _, errs := runCLI(t, "no-such-command")
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(errs, "no-such-command") {
		t.Fatalf("error does not name the command: %q", errs)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "imet ") {
		t.Fatalf("version: code %d, output %q", code, out)
	}
}
