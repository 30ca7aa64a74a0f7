package buildinfo

import (
	"strings"
	"testing"
)

// A stamped revision wins over the toolchain's VCS data and keeps git
// describe's form; "-dirty" becomes the Dirty flag.
func TestStampedRevision(t *testing.T) {
	defer func(r string) { Revision = r }(Revision)
	for _, tc := range []struct {
		stamp, rev string
		dirty      bool
		shown      string
	}{
		{"v0.3-12-g1a2b3c4-dirty", "v0.3-12-g1a2b3c4", true, "rev v0.3-12-g1a2b3c4+dirty "},
		{"1a2b3c4", "1a2b3c4", false, "rev 1a2b3c4 "},
		{"0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567", false, "rev 0123456789ab "},
	} {
		Revision = tc.stamp
		i := Read()
		if i.Revision != tc.rev || i.Dirty != tc.dirty {
			t.Errorf("stamp %q: revision %q dirty %v", tc.stamp, i.Revision, i.Dirty)
		}
		if s := i.String(); !strings.Contains(s, tc.shown) {
			t.Errorf("stamp %q: %q lacks %q", tc.stamp, s, tc.shown)
		}
	}
	Revision = ""
	if s := Read().String(); !strings.HasPrefix(s, "imet ") {
		t.Errorf("unstamped: %q", s)
	}
}
