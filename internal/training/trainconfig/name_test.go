package trainconfig

import (
	"strings"
	"testing"
)

// The run name becomes runs/<name>: anything but one plain path component
// is refused when the configuration is read, naming the file.
func TestRunNameIsOnePathComponent(t *testing.T) {
	for _, name := range []string{`"../../etc"`, `".."`, `"."`, `"a/b"`, `'a\b'`, `""`, `".hidden"`, `"/abs"`, `"x\ty"`} {
		_, err := Parse("x.yaml", []byte("name: "+name+"\n"))
		if err == nil || !strings.Contains(err.Error(), "x.yaml") || !strings.Contains(err.Error(), "one plain path component") {
			t.Errorf("name %s: %v", name, err)
		}
	}
	for _, name := range []string{"resnet50-3stage", "r.v2", "run_1", "Ölgemälde"} {
		if _, err := Parse("x.yaml", []byte("name: "+name+"\n")); err != nil {
			t.Errorf("name %s refused: %v", name, err)
		}
	}
}
