package probs

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// A malformed header of 1 MB was quoted whole; now its first 200 bytes,
// its length and where it starts.
func TestMalformedNPYHeaderIsCut(t *testing.T) {
	h := "{'descr': '<f4', " + strings.Repeat("x", 1<<20-100) + "}\n"
	var b bytes.Buffer
	b.Write(npyMagic)
	b.Write([]byte{2, 0})
	binary.Write(&b, binary.LittleEndian, uint32(len(h)))
	b.WriteString(h)
	_, err := readNPY(&b, int64(b.Len()))
	if err == nil || len(err.Error()) > 300 || !strings.HasPrefix(err.Error(), `malformed .npy header "{'descr': '<f4', xxx`) || !strings.HasSuffix(err.Error(), "at byte offset 12") {
		t.Fatalf("error of %d bytes: %.300v", len(err.Error()), err)
	}
}
