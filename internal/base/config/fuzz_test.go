package config

import (
	"strings"
	"testing"
)

// FuzzDecode: whatever the document, Decode fills the struct or returns a
// *Error, within the bounds (no document makes it allocate without limit
// or recurse without end). Seeds: the shapes the bounds refuse, and
// ordinary configuration.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"name: a\nstages:\n  - name: s\n    epochs: 2\n    frozen: [stem]\n    shape: [1, 2]\n",
		"extra:\n  a: &a [x, x]\n  b: &b [*a, *a]\nstages:\n  - {name: s, frozen: *b}\n",
		"stages: [[[[[[]]]]]]\n", "- - - - x\n", "limit: 8.5\n", "by_name: {x: {epochs: 1e3}}\n",
		"a: &a\n  <<: *a\n", "? [a]\n: b\n", "name: !!binary aGVsbG8=\n", "---\nname: a\n---\nname: b\n",
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(laughs(4)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r boundsRun
		err := Decode("f.yaml", data, &r)
		if err == nil {
			return
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T is not a *config.Error: %v", err, err)
		}
		if !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
