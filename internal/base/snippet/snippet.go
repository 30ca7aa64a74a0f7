// Package snippet bounds what an error message quotes from its input: a
// reader that names the bad value helps, one that echoes a 10 MB
// single-line value onto stderr and into every log does not. Every reader
// of user files (CSV, JSON, NPY, weight files) quotes through here.
package snippet

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Max is the most bytes of a value an error message quotes.
const Max = 200

// Quote is s quoted (strconv.Quote); beyond Max bytes it is cut on a rune
// boundary and followed by its full length, so the reader sees that it
// was cut and by how much.
func Quote(s string) string {
	if len(s) <= Max {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(cut(s)), len(s))
}

// At is Quote for a value found at byte offset off of its file, for the
// readers of formats without lines (NPY headers, pickles, JSON).
func At(s string, off int64) string {
	return fmt.Sprintf("%s at byte offset %d", Quote(s), off)
}

func cut(s string) string {
	n := Max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
