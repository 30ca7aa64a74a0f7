package pyref

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// recorder stands in for a test so that Require's Fatalf and Skipf can be
// observed without failing or skipping the real one.
type recorder struct {
	testing.TB
	verdict string
}

type stop struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(f string, a ...any) {
	r.verdict = "fail: " + fmt.Sprintf(f, a...)
	panic(stop{})
}
func (r *recorder) Skipf(f string, a ...any) {
	r.verdict = "skip: " + fmt.Sprintf(f, a...)
	panic(stop{})
}

func require(t *testing.T, modules ...string) (verdict string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(stop); !ok {
				panic(p)
			}
			verdict = r.verdict
		}
	}()
	Require(r, modules...)
	return "ok"
}

// A missing module fails the test under CI, where scripts/deps.sh has
// installed the references, and skips it elsewhere; either way the message
// names the interpreter and the module.
func TestMissingModule(t *testing.T) {
	const missing = "imet_no_such_module"
	for _, c := range []struct{ ci, want string }{{"true", "fail: "}, {"1", "fail: "}, {"", "skip: "}, {"false", "skip: "}} {
		t.Setenv("CI", c.ci)
		got := require(t, "json", missing)
		if !strings.HasPrefix(got, c.want) || !strings.Contains(got, missing) || !strings.Contains(got, Python) {
			t.Errorf("CI=%q: %q, want %q naming %s and %s", c.ci, got, c.want, Python, missing)
		}
	}
}

func TestPresentModule(t *testing.T) {
	if _, err := os.Stat(Python); err != nil && !InCI() {
		t.Skip(err)
	}
	t.Setenv("CI", "true")
	if got := require(t, "json"); got != "ok" {
		t.Errorf("the standard library's json: %s", got)
	}
}
