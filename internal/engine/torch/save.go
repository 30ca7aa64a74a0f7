package torch

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"imet/internal/base/atomicfile"
)

// The named-tensor file: magic, count, then per tensor its name, dtype,
// shape and raw little-endian elements. Deliberately simple: checkpoints
// and parity fixtures need nothing more, and Python writes it in ten lines
// (scripts/parity/gen.py).
const magic = "IMETTNS1"

// Save writes the named tensors to path atomically, in name order.
func Save(path string, m map[string]*Tensor) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return Catch(func() {
			bw := bufio.NewWriter(w)
			put := func(v any) {
				if err := binary.Write(bw, binary.LittleEndian, v); err != nil {
					panic(&Error{Op: "save", Msg: err.Error()})
				}
			}
			put([]byte(magic))
			put(uint32(len(names)))
			for _, n := range names {
				t := m[n]
				i := t.info()
				put(uint32(len(n)))
				put([]byte(n))
				put(uint8(i.dtype))
				put(uint8(len(i.shape)))
				for _, d := range i.shape {
					put(int64(d))
				}
				put(t.Bytes())
			}
			if err := bw.Flush(); err != nil {
				panic(&Error{Op: "save", Msg: err.Error()})
			}
		})
	})
}

// Load reads a file written by Save. The tensors are CPU tensors owned by
// the current scope, if any.
func Load(path string) (map[string]*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Read(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Read decodes the named-tensor format from r.
func Read(r io.Reader) (map[string]*Tensor, error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil || string(head[:]) != magic {
		return nil, errors.New("not an imet tensor file (bad magic)")
	}
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("reading count: %w", err)
	}
	m := make(map[string]*Tensor, n)
	for k := 0; k < int(n); k++ {
		var nl uint32
		if err := binary.Read(r, binary.LittleEndian, &nl); err != nil || nl > 1<<16 {
			return nil, fmt.Errorf("tensor %d: bad name length", k)
		}
		name := make([]byte, nl)
		var dt, nd uint8
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, fmt.Errorf("tensor %d: %w", k, err)
		}
		if err := binary.Read(r, binary.LittleEndian, &dt); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := binary.Read(r, binary.LittleEndian, &nd); err != nil || nd > 16 {
			return nil, fmt.Errorf("%s: bad rank", name)
		}
		shape := make([]int64, nd)
		if err := binary.Read(r, binary.LittleEndian, shape); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		ds := DType(dt).Size()
		if ds == 0 {
			return nil, fmt.Errorf("%s: unknown dtype code %d", name, dt)
		}
		cnt := int64(1)
		for _, d := range shape {
			if d < 0 || d > 1<<40 {
				return nil, fmt.Errorf("%s: bad shape %v", name, shape)
			}
			cnt *= d
		}
		data := make([]byte, cnt*int64(ds))
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("%s: truncated data: %w", name, err)
		}
		sh := make([]int, nd)
		for i, d := range shape {
			sh[i] = int(d)
		}
		var t *Tensor
		if err := Catch(func() { t = FromBytes(data, DType(dt), sh...) }); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m[string(name)] = t
	}
	return m, nil
}
