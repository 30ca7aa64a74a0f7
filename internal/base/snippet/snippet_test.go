package snippet

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuoteBoundsLongValues(t *testing.T) {
	if got := Quote("a,b"); got != `"a,b"` {
		t.Fatalf("short value: %s", got)
	}
	long := strings.Repeat("é", 5<<20) // 10 MB, two bytes a rune
	got := Quote(long)
	if len(got) > Max+40 || !strings.HasSuffix(got, "... (10485760 bytes)") || !utf8.ValidString(got) {
		t.Fatalf("%d bytes: %.80s...%s", len(got), got, got[len(got)-30:])
	}
	if got := At(strings.Repeat("x", 300), 12); !strings.HasSuffix(got, "(300 bytes) at byte offset 12") {
		t.Fatalf("At: %s", got)
	}
}
