// Package probs stores model outputs — one probability per image and label —
// as NumPy .npy files, so that predictions move freely between imet and a
// Python notebook (np.load / np.save), with the image ids and the label
// columns kept in small CSV sidecars next to the array.
//
// # Layout
//
// For a matrix saved as oof.npy:
//
//	oof.npy             float32, C order, shape (images, labels)
//	oof.ids.csv         header "id", then one image id per row, in row order
//	oof.labels.csv      header "attribute_id", one label id per column (optional)
//
// The sidecars are what let ensemble and submit check that two files talk
// about the same images and the same labels in the same order; an array
// without its ids sidecar is refused by Load, because a silently misaligned
// row costs more than writing the sidecar (see docs/postprocessing.md for the
// two lines of pandas that write one).
//
// Arrays are written as little-endian float32 in C order. Reading also
// accepts float64 and float16 (converted to float32) and big-endian data;
// Fortran-order arrays, other dtypes and other ranks are refused with an
// error naming the file and what was found.
package probs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unsafe"

	"imet/internal/base/atomicfile"
	"imet/internal/base/snippet"
)

// Matrix is a dense row-major float32 matrix: Data[i*Cols+j] is the
// probability of label column j for image i.
type Matrix struct {
	Rows, Cols int
	Data       []float32
}

// NewMatrix returns a zero matrix of the given shape.
func NewMatrix(rows, cols int) *Matrix {
	return &Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// Row returns image i's probabilities, sharing storage with m.
func (m *Matrix) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

var npyMagic = []byte("\x93NUMPY")

var (
	reDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	reFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	reShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// ReadNPY reads a 2-D .npy file. A 1-D array is read as a single column.
func ReadNPY(path string) (*Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	m, err := readNPY(bufio.NewReaderSize(f, 1<<20), size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// readNPY reads a .npy stream of size bytes (-1: unknown). A known size
// bounds what the header may ask to allocate: a shape of (10^6, 10^6) in a
// file of a few bytes is refused, not allocated.
func readNPY(r io.Reader, size int64) (*Matrix, error) {
	pre := make([]byte, 8)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, errors.New("not a .npy file (too short)")
	}
	if string(pre[:6]) != string(npyMagic) {
		return nil, errors.New("not a .npy file (bad magic bytes)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		b := make([]byte, 2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, errors.New("truncated .npy header")
		}
		hlen = int(binary.LittleEndian.Uint16(b))
	case 2, 3:
		b := make([]byte, 4)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, errors.New("truncated .npy header")
		}
		hlen = int(binary.LittleEndian.Uint32(b))
	default:
		return nil, fmt.Errorf("unsupported .npy format version %d.%d", pre[6], pre[7])
	}
	if hlen > 1<<20 {
		return nil, fmt.Errorf(".npy header of %d bytes is implausible", hlen)
	}
	hdrStart := int64(len(pre)) + 2 // the header follows the magic, the version and its length
	if pre[6] != 1 {
		hdrStart += 2
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, errors.New("truncated .npy header")
	}
	h := string(hb)
	d := reDescr.FindStringSubmatch(h)
	fo := reFortran.FindStringSubmatch(h)
	sh := reShape.FindStringSubmatch(h)
	if d == nil || fo == nil || sh == nil {
		return nil, fmt.Errorf("malformed .npy header %s", snippet.At(strings.TrimSpace(h), hdrStart))
	}
	if fo[1] == "True" {
		return nil, errors.New("array is in Fortran order; save it with np.save(path, np.ascontiguousarray(a, dtype=np.float32))")
	}
	var dims []int
	for _, s := range strings.Split(sh[1], ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bad shape (%s) in .npy header", sh[1])
		}
		dims = append(dims, v)
	}
	var rows, cols int
	switch len(dims) {
	case 1:
		rows, cols = dims[0], 1
	case 2:
		rows, cols = dims[0], dims[1]
	default:
		return nil, fmt.Errorf("array has shape (%s); want 2 dimensions (images, labels)", sh[1])
	}
	descr := d[1]
	elem := map[string]int64{"f4": 4, "f8": 8, "f2": 2}[strings.TrimLeft(descr, "<>=|")]
	if rows > 0 && cols > math.MaxInt32/rows {
		return nil, fmt.Errorf("array shape (%s) holds more than 2^31 values", sh[1])
	}
	if want := int64(rows) * int64(cols) * elem; size >= 0 && elem > 0 && want > size-hdrStart-int64(hlen) {
		return nil, fmt.Errorf("data truncated: the header's shape (%s) needs %d bytes of data, the file holds %d", sh[1], want, max(0, size-hdrStart-int64(hlen)))
	}
	var order binary.ByteOrder = binary.LittleEndian
	if strings.HasPrefix(descr, ">") {
		order = binary.BigEndian
	}
	kind := strings.TrimLeft(descr, "<>=|")
	m := NewMatrix(rows, cols)
	n := rows * cols
	switch kind {
	case "f4":
		buf := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(m.Data))), 4*n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("data truncated: want %d float32 values (%d x %d)", n, rows, cols)
		}
		if order == binary.BigEndian {
			for i := range m.Data {
				m.Data[i] = math.Float32frombits(binary.BigEndian.Uint32(buf[4*i:]))
			}
		}
	case "f8", "f2":
		size := 8
		if kind == "f2" {
			size = 2
		}
		buf := make([]byte, 1<<16*size)
		for done := 0; done < n; {
			k := min(n-done, 1<<16)
			if _, err := io.ReadFull(r, buf[:k*size]); err != nil {
				return nil, fmt.Errorf("data truncated: want %d %s values (%d x %d)", n, kind, rows, cols)
			}
			for i := range k {
				if size == 8 {
					m.Data[done+i] = float32(math.Float64frombits(order.Uint64(buf[8*i:])))
				} else {
					m.Data[done+i] = halfToFloat32(order.Uint16(buf[2*i:]))
				}
			}
			done += k
		}
	default:
		return nil, fmt.Errorf("dtype %s is not supported; want float32 ('<f4'), or float64/float16 to be converted", snippet.Quote(descr))
	}
	return m, nil
}

// halfToFloat32 widens an IEEE 754 binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal half: value = frac · 2^-24, exact in float32.
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// WriteNPY writes m as a version 1.0 .npy file (little-endian float32, C
// order), atomically.
func WriteNPY(path string, m *Matrix) error {
	if len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("write %s: matrix holds %d values, shape says %d x %d", path, len(m.Data), m.Rows, m.Cols)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return writeNPY(w, m) })
}

func writeNPY(w io.Writer, m *Matrix) error {
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", m.Rows, m.Cols)
	// Magic (6) + version (2) + length (2) + header + '\n' is padded to 64
	// bytes, as numpy does, so the data starts aligned.
	total := 10 + len(h) + 1
	pad := (64 - total%64) % 64
	h += strings.Repeat(" ", pad) + "\n"
	hdr := append([]byte{}, npyMagic...)
	hdr = append(hdr, 1, 0)
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(len(h)))
	hdr = append(hdr, h...)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if len(m.Data) == 0 {
		return nil
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(m.Data))), 4*len(m.Data))
	_, err := w.Write(buf)
	return err
}
