package trainconfig

import (
	"fmt"
	"strings"
	"unicode"
)

// CheckName refuses a run name that is not one plain path component: the
// name becomes the run directory runs/<name>, and "../../etc", "a/b", ""
// or a hidden ".x" would put the run outside runs/, deeper, nowhere, or out
// of sight.
func CheckName(name string) error {
	why := ""
	switch {
	case name == "":
		why = "it is empty"
	case name == "." || name == "..":
		why = "it names a directory above or the current one"
	case strings.HasPrefix(name, "."):
		why = "it starts with '.' (a hidden directory)"
	case strings.ContainsAny(name, `/\`):
		why = "it holds a path separator"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		why = "it holds a control character"
	default:
		return nil
	}
	return fmt.Errorf("name %q: %s; a run name is one plain path component, the folder under runs/ (e.g. resnet50-3stage)", name, why)
}
