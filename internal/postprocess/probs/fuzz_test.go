package probs

import (
	"bytes"
	"testing"
)

// FuzzReadNPY: whatever the bytes, the reader returns a matrix whose data
// matches its shape, or an error; never a panic or an allocation the
// header alone asks for.
func FuzzReadNPY(f *testing.F) {
	var b bytes.Buffer
	if err := writeNPY(&b, &Matrix{Rows: 2, Cols: 3, Data: []float32{1, 2, 3, 4, 5, 6}}); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte("\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }" + string(make([]byte, 8))))
	f.Add([]byte("\x93NUMPY\x02\x00\x10\x00\x00\x00{'descr': '<f2'}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := readNPY(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if len(m.Data) != m.Rows*m.Cols {
			t.Fatalf("%d values for %dx%d", len(m.Data), m.Rows, m.Cols)
		}
	})
}
