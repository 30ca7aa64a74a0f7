package weights

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"imet/internal/base/atomicfile"
	"imet/internal/base/snippet"
)

// safetensorsDTypes maps the format's dtype codes to ours.
var safetensorsDTypes = map[string]DType{
	"F64": Float64, "F32": Float32, "F16": Float16, "BF16": BFloat16,
	"I64": Int64, "I32": Int32, "I16": Int16, "I8": Int8, "U8": Uint8, "BOOL": Bool,
}

type safetensorsEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// ReadSafetensors reads a .safetensors file: an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range,
// then the raw little-endian data. The "__metadata__" entry is ignored.
func ReadSafetensors(path string) (Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var hlen uint64
	if err := binary.Read(f, binary.LittleEndian, &hlen); err != nil {
		return nil, fmt.Errorf("%s: header length: %w", path, err)
	}
	if hlen > uint64(fi.Size())-8 || hlen > 100<<20 {
		return nil, fmt.Errorf("%s: header length %d exceeds the file (%d bytes)", path, hlen, fi.Size())
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("%s: header is not JSON: %w", path, err)
	}
	dataStart := int64(8 + hlen)
	dataLen := fi.Size() - dataStart
	names := make([]string, 0, len(raw))
	for k := range raw {
		if k != "__metadata__" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	set := Set{}
	for _, name := range names {
		var e safetensorsEntry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		dt, ok := safetensorsDTypes[e.DType]
		if !ok {
			return nil, fmt.Errorf("%s: tensor %s: unsupported dtype %s", path, snippet.Quote(name), snippet.Quote(e.DType))
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		cnt, ok := checkedNumel(e.Shape)
		if !ok {
			return nil, fmt.Errorf("%s: tensor %s: bad shape %v", path, name, e.Shape)
		}
		want := cnt * int64(elemSize(dt))
		if begin < 0 || end < begin || end > dataLen || end-begin != want {
			return nil, fmt.Errorf("%s: tensor %s: byte range [%d, %d) does not hold %s %s (%d bytes; data section is %d bytes)",
				path, name, begin, end, e.DType, ShapeString(e.Shape), want, dataLen)
		}
		b := make([]byte, end-begin)
		if _, err := f.ReadAt(b, dataStart+begin); err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		vals, err := decode(b, dt, binary.LittleEndian)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		shape := e.Shape
		if shape == nil {
			shape = []int64{}
		}
		set[name] = &Tensor{Shape: shape, DType: dt, Data: vals}
	}
	return set, nil
}

// WriteSafetensors writes s as a .safetensors file, in name order: Int64
// tensors (BatchNorm counters) as I64, every other one as F32, which is
// what the Set holds. It serves stand-in weight files (a model's own
// tensors under the names a published file uses) and exports.
func WriteSafetensors(path string, s Set) error {
	header := map[string]safetensorsEntry{}
	var data []byte
	for _, n := range s.Names() {
		t := s[n]
		lo := int64(len(data))
		code := "F32"
		if t.DType == Int64 {
			code = "I64"
			for _, v := range t.Data {
				data = binary.LittleEndian.AppendUint64(data, uint64(int64(v)))
			}
		} else {
			for _, v := range t.Data {
				data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
			}
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		header[n] = safetensorsEntry{DType: code, Shape: shape, DataOffsets: [2]int64{lo, int64(len(data))}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(len(h))); err != nil {
			return err
		}
		if _, err := w.Write(h); err != nil {
			return err
		}
		_, err := w.Write(data)
		return err
	})
}
