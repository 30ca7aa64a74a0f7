// Package weights reads pretrained-weight files into named host tensors,
// without Python and without libtorch: PyTorch checkpoints in both the zip
// format torch.save has written since 1.6 and the legacy format older
// releases (and Cadene's pretrainedmodels files) use, safetensors files as
// timm and the Hugging Face hub publish them, and TensorFlow.js layer models
// with quantised shards (the Keras MobileNetV2 that ships inside nsfwjs).
//
// Every reader returns the same thing, a Set: parameter name to a dense,
// row-major float32 Tensor. Half, bfloat16, double and integer tensors are
// converted on the way in, because the model zoo trains in float32 and the
// engine casts to bfloat16 itself under autocast. Renaming keys (DataParallel
// prefixes, timm versus Cadene names, Keras versus torchvision names) is done
// on a Set with the helpers in remap.go before it is copied into a model.
package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"imet/internal/base/snippet"
)

// DType names the element type a tensor had in its file. The data is always
// held as float32; DType is kept so that reports can say what was converted.
type DType string

// The element types the readers understand.
const (
	Float32  DType = "float32"
	Float16  DType = "float16"
	BFloat16 DType = "bfloat16"
	Float64  DType = "float64"
	Int64    DType = "int64"
	Int32    DType = "int32"
	Int16    DType = "int16"
	Int8     DType = "int8"
	Uint8    DType = "uint8"
	Bool     DType = "bool"
)

// Tensor is one named array: a dense row-major copy of the values,
// whatever the strides and storage sharing were in the file.
type Tensor struct {
	Shape []int64
	// DType is the element type in the file (Data is float32 regardless).
	DType DType
	Data  []float32
}

// Numel is the number of elements the shape describes.
func (t *Tensor) Numel() int64 { return numel(t.Shape) }

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// ShapeString formats a shape the way PyTorch prints it, e.g. [64, 3, 7, 7].
func ShapeString(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Set maps parameter and buffer names to tensors.
type Set map[string]*Tensor

// Names returns the keys in sorted order, for stable reports.
func (s Set) Names() []string {
	names := make([]string, 0, len(s))
	for k := range s {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Format is a weight-file format that Load recognises.
type Format string

// The formats Detect can return.
const (
	FormatTorchZip    Format = "pytorch-zip"
	FormatTorchLegacy Format = "pytorch-legacy"
	FormatSafetensors Format = "safetensors"
	FormatTFJS        Format = "tfjs"
)

// Detect names the format of path from its first bytes, never from its
// extension: a .pth may be either PyTorch format, and .bin files are
// sometimes safetensors. A directory is a TensorFlow.js model if it holds
// model.json or model.min.js.
func Detect(path string) (Format, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		if _, err := findTFJSModel(path); err != nil {
			return "", fmt.Errorf("%s: a directory, but %w", path, err)
		}
		return FormatTFJS, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return FormatTorchZip, nil
	case len(head) >= 2 && head[0] == 0x80 && head[1] >= 2:
		// A pickle (protocol >= 2) at offset 0: the legacy format starts
		// with the pickled magic number.
		return FormatTorchLegacy, nil
	case len(head) >= 9 && head[8] == '{' && binary.LittleEndian.Uint64(head) < 1<<30:
		return FormatSafetensors, nil
	case bytes.HasPrefix(bytes.TrimSpace(head), []byte("{")) || bytes.HasPrefix(head, []byte("!function")):
		return FormatTFJS, nil
	}
	return "", fmt.Errorf("%s: not a PyTorch, safetensors or TensorFlow.js weight file (starts with %q)", path, head)
}

// Load reads any supported weight file, detected by content. For PyTorch
// checkpoints the state dict is found as described in ReadTorch.
func Load(path string) (set Set, err error) {
	// The readers check what they read; this is the net under them, so a
	// corrupt file can never take the process down.
	defer func() {
		if r := recover(); r != nil {
			set, err = nil, fmt.Errorf("%s: corrupt weight file (%v)", path, r)
		}
	}()
	format, err := Detect(path)
	if err != nil {
		return nil, err
	}
	switch format {
	case FormatTorchZip, FormatTorchLegacy:
		return ReadTorch(path)
	case FormatSafetensors:
		return ReadSafetensors(path)
	default:
		m, err := ReadTFJS(path)
		if err != nil {
			return nil, err
		}
		return m.Tensors, nil
	}
}

// halfToFloat converts IEEE 754 binary16 bits.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// elemSize is the size in bytes of one element of d.
func elemSize(d DType) int {
	switch d {
	case Float64, Int64:
		return 8
	case Float32, Int32:
		return 4
	case Float16, BFloat16, Int16:
		return 2
	}
	return 1
}

// decode converts n little- (or big-) endian elements of type d from b.
func decode(b []byte, d DType, order binary.ByteOrder) ([]float32, error) {
	size := elemSize(d)
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(b), d)
	}
	n := len(b) / size
	out := make([]float32, n)
	// The common case, little-endian float32, without the per-element
	// interface call through order (4x faster on a 100 MB file).
	if d == Float32 && order == binary.ByteOrder(binary.LittleEndian) {
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	}
	switch d {
	case Float32:
		for i := range out {
			out[i] = math.Float32frombits(order.Uint32(b[4*i:]))
		}
	case Float64:
		for i := range out {
			out[i] = float32(math.Float64frombits(order.Uint64(b[8*i:])))
		}
	case Float16:
		for i := range out {
			out[i] = halfToFloat(order.Uint16(b[2*i:]))
		}
	case BFloat16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(order.Uint16(b[2*i:])) << 16)
		}
	case Int64:
		for i := range out {
			out[i] = float32(int64(order.Uint64(b[8*i:])))
		}
	case Int32:
		for i := range out {
			out[i] = float32(int32(order.Uint32(b[4*i:])))
		}
	case Int16:
		for i := range out {
			out[i] = float32(int16(order.Uint16(b[2*i:])))
		}
	case Int8:
		for i := range out {
			out[i] = float32(int8(b[i]))
		}
	case Uint8, Bool:
		for i := range out {
			out[i] = float32(b[i])
		}
	default:
		return nil, fmt.Errorf("unsupported dtype %s", snippet.Quote(string(d)))
	}
	return out, nil
}

// baseName is used in error messages so they name the file a user passed.
func baseName(path string) string { return filepath.Base(path) }
