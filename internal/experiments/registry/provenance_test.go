package registry

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imet/internal/base/buildinfo"
)

// TestCodeVersionHelper prints CodeVersion in a fresh process; it does
// nothing unless started by TestCodeVersionIgnoresWorkingDirectory.
func TestCodeVersionHelper(t *testing.T) {
	if os.Getenv("IMET_CODE_VERSION_HELPER") == "" {
		t.Skip("only runs as the child of TestCodeVersionIgnoresWorkingDirectory")
	}
	c := CodeVersion()
	fmt.Printf("revision=%s dirty=%v\n", c.Revision, c.Dirty)
}

// TestCodeVersionIgnoresWorkingDirectory asks for the code version from
// inside another git repository: the answer must be the binary's own
// revision (here a test binary, which carries none), never that
// repository's HEAD, which says nothing about the code that runs.
func TestCodeVersionIgnoresWorkingDirectory(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := t.TempDir()
	for _, args := range [][]string{
		{"init", "-q"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "other project"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = repo
	head, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(exe, "-test.run=^TestCodeVersionHelper$", "-test.count=1")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "IMET_CODE_VERSION_HELPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	want := buildinfo.Read().Revision
	if want == "" {
		want = "unknown"
	}
	if strings.Contains(string(out), strings.TrimSpace(string(head))) {
		t.Fatalf("the code version is the HEAD of the working directory's repository:\n%s", out)
	}
	if !strings.Contains(string(out), "revision="+want+" ") {
		t.Fatalf("code version, want revision=%s:\n%s", want, out)
	}
}

// TestDataSetFingerprint: every file of the layout counts, test images
// included, and a data set without test/ still has a fingerprint.
func TestDataSetFingerprint(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("labels.csv", "attribute_id,attribute_name\n0,tag::a\n")
	write("train.csv", "id,attribute_ids\na,0\n")
	write("train/a.png", "png")
	fp := func() string {
		t.Helper()
		s, err := DataSetFingerprint(root, "folds.csv")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	seen := map[string]string{}
	step := func(what string) {
		t.Helper()
		s := fp()
		if prev, ok := seen[s]; ok {
			t.Errorf("%s: fingerprint unchanged since %s", what, prev)
		}
		seen[s] = what
	}
	step("no test/ directory")
	write("test/t.png", "png")
	step("a test image added")
	write("test/t.png", "png, re-encoded")
	step("the test image changed")
	write("sample_submission.csv", "id,attribute_ids\nt,0\n")
	step("sample_submission.csv added")
	write("folds.csv", "id,fold\na,0\n")
	step("folds.csv added")
	os.Rename(filepath.Join(root, "train/a.png"), filepath.Join(root, "test/a.png"))
	step("an image moved from train/ to test/")
	if fp() != fp() {
		t.Error("fingerprint unstable")
	}
}
