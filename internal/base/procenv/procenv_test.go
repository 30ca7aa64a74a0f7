package procenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMissingKeepsUserValues(t *testing.T) {
	got := Missing([]string{"OMP_WAIT_POLICY=ACTIVE", "PATH=/bin"})
	for _, kv := range got {
		if strings.HasPrefix(kv, "OMP_WAIT_POLICY=") {
			t.Fatalf("user's OMP_WAIT_POLICY overridden: %v", got)
		}
	}
	if len(got) != len(Defaults)-1 {
		t.Fatalf("missing %v, want the %d others", got, len(Defaults)-1)
	}
}

// The re-executed child sees the defaults; run as a child of the test binary.
func TestEnsureReexecutesWithDefaults(t *testing.T) {
	if os.Getenv("PROCENV_CHILD") == "1" {
		Ensure()
		if os.Getenv("OMP_WAIT_POLICY") != "PASSIVE" || os.Getenv("MALLOC_MMAP_MAX_") != "0" {
			os.Exit(3)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestEnsureReexecutesWithDefaults$")
	env := []string{"PROCENV_CHILD=1"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, isDefault := Defaults[k]; !isDefault && k != marker {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
