// Package packed keeps a data set's images decoded, once, in one file of
// 8-bit RGB pixels that the loader memory-maps, so that an epoch reads
// pixels instead of decoding PNG and JPEG again (the idea of FFCV's
// .beton files; iMet's 109k PNGs cost more to inflate than to augment).
//
// Layout (little-endian; docs/data.md has the full table):
//
//	header   64 bytes: magic "IMETPACK", format version (uint32), header size
//	pixels   each image W*H*3 bytes (RGB, row-major, display orientation),
//	         starting on a 64-byte boundary
//	index    the pack's max side, then per image: key, offset, stored size,
//	         original size, CRC-32C of its pixels
//	trailer  32 bytes: index offset and length, CRC-32C of the index,
//	         image count, magic "IMETPEND"
//
// The index sits at the end so that the writer streams (through
// internal/base/atomicfile: a failed pack leaves the previous file whole),
// and a file cut short loses its trailer, which Open reports as truncated.
// Each image's checksum is verified the first time it is read, so a flipped
// bit on disk is an error naming the file and the image, not a silently
// different sample.
package packed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"imet/internal/vision/imageio"
)

// Version is the format version this build writes and reads. Open refuses
// any other: the remedy is to pack again, which is cheaper than guessing at
// an old layout.
const Version = 1

const (
	magic        = "IMETPACK"
	trailerMagic = "IMETPEND"
	headerSize   = 64
	trailerSize  = 32
	align        = 64
	// maxKey bounds a key's length (a path inside the data set).
	maxKey = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry describes one stored image.
type Entry struct {
	// Key is the image's path relative to the data set root, with forward
	// slashes (train/abc.png).
	Key string
	// W and H are the stored size; OrigW and OrigH the size the image
	// decodes to at full scale (equal unless the pack capped it).
	W, H, OrigW, OrigH int
	off                int64
	crc                uint32
}

// Full reports whether the image is stored at its full decoded size.
func (e Entry) Full() bool { return e.W == e.OrigW && e.H == e.OrigH }

// Writer streams images into a pack. Not safe for concurrent use.
type Writer struct {
	w       io.Writer
	n       int64
	maxSide int
	entries []Entry
	keys    map[string]bool
	err     error
}

// NewWriter starts a pack on w; maxSide is recorded in the index (0 means
// images are stored at full size).
func NewWriter(w io.Writer, maxSide int) (*Writer, error) {
	pw := &Writer{w: w, maxSide: maxSide, keys: map[string]bool{}}
	var h [headerSize]byte
	copy(h[:], magic)
	binary.LittleEndian.PutUint32(h[8:], Version)
	binary.LittleEndian.PutUint32(h[12:], headerSize)
	return pw, pw.write(h[:])
}

func (pw *Writer) write(b []byte) error {
	if pw.err != nil {
		return pw.err
	}
	n, err := pw.w.Write(b)
	pw.n += int64(n)
	pw.err = err
	return err
}

var zeros [align]byte

// Add appends img under key; origW and origH are its full decoded size.
func (pw *Writer) Add(key string, img *imageio.Image, origW, origH int) error {
	if key == "" || len(key) > maxKey {
		return fmt.Errorf("pack: key %q: want 1 to %d bytes", key, maxKey)
	}
	if pw.keys[key] {
		return fmt.Errorf("pack: %s added twice", key)
	}
	if img.W <= 0 || img.H <= 0 || len(img.Pix) != 3*img.W*img.H || img.W > math.MaxUint32 || img.H > math.MaxUint32 {
		return fmt.Errorf("pack: %s: malformed %dx%d image with %d bytes", key, img.W, img.H, len(img.Pix))
	}
	if pad := (align - pw.n%align) % align; pad > 0 {
		if err := pw.write(zeros[:pad]); err != nil {
			return err
		}
	}
	e := Entry{Key: key, W: img.W, H: img.H, OrigW: origW, OrigH: origH, off: pw.n, crc: crc32.Checksum(img.Pix, castagnoli)}
	if err := pw.write(img.Pix); err != nil {
		return err
	}
	pw.keys[key] = true
	pw.entries = append(pw.entries, e)
	return nil
}

// Close writes the index and the trailer. It does not close the
// underlying writer.
func (pw *Writer) Close() error {
	idx := binary.LittleEndian.AppendUint32(nil, uint32(pw.maxSide))
	for _, e := range pw.entries {
		idx = binary.LittleEndian.AppendUint16(idx, uint16(len(e.Key)))
		idx = append(idx, e.Key...)
		idx = binary.LittleEndian.AppendUint64(idx, uint64(e.off))
		for _, v := range []int{e.W, e.H, e.OrigW, e.OrigH} {
			idx = binary.LittleEndian.AppendUint32(idx, uint32(v))
		}
		idx = binary.LittleEndian.AppendUint32(idx, e.crc)
	}
	off := pw.n
	if err := pw.write(idx); err != nil {
		return err
	}
	var t [trailerSize]byte
	binary.LittleEndian.PutUint64(t[0:], uint64(off))
	binary.LittleEndian.PutUint64(t[8:], uint64(len(idx)))
	binary.LittleEndian.PutUint32(t[16:], crc32.Checksum(idx, castagnoli))
	binary.LittleEndian.PutUint32(t[20:], uint32(len(pw.entries)))
	copy(t[24:], trailerMagic)
	return pw.write(t[:])
}

// ErrVersion is wrapped by Open's error for a pack of another format
// version.
var ErrVersion = errors.New("unsupported pack format version")

// parse checks data as a whole pack file and returns its index; name is
// used in errors.
func parse(name string, data []byte) (entries []Entry, maxSide int, err error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("pack %s: %s", name, fmt.Sprintf(format, a...))
	}
	if len(data) < 8 || string(data[:8]) != magic {
		return nil, 0, bad("not an image pack (no IMETPACK header)")
	}
	if len(data) < headerSize {
		return nil, 0, bad("truncated: %d bytes, shorter than the header", len(data))
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != Version {
		return nil, 0, fmt.Errorf("pack %s: %w %d (this build reads version %d): pack the data set again with imet datasets pack", name, ErrVersion, v, Version)
	}
	if hs := binary.LittleEndian.Uint32(data[12:]); hs != headerSize {
		return nil, 0, bad("header size %d, want %d", hs, headerSize)
	}
	if len(data) < headerSize+trailerSize || string(data[len(data)-8:]) != trailerMagic {
		return nil, 0, bad("truncated: no trailer at the end of its %d bytes (an interrupted copy?)", len(data))
	}
	t := data[len(data)-trailerSize:]
	ioff, ilen := binary.LittleEndian.Uint64(t[0:]), binary.LittleEndian.Uint64(t[8:])
	icrc, count := binary.LittleEndian.Uint32(t[16:]), binary.LittleEndian.Uint32(t[20:])
	end := uint64(len(data) - trailerSize)
	if ioff < headerSize || ioff > end || ilen != end-ioff {
		return nil, 0, bad("index at %d+%d does not end at the trailer (%d)", ioff, ilen, end)
	}
	idx := data[ioff:end]
	if crc32.Checksum(idx, castagnoli) != icrc {
		return nil, 0, bad("index checksum mismatch: the file is corrupt")
	}
	if len(idx) < 4 {
		return nil, 0, bad("index of %d bytes", len(idx))
	}
	maxSide = int(binary.LittleEndian.Uint32(idx))
	idx = idx[4:]
	// Each entry takes at least 2+1+8+20 bytes: a forged count cannot make
	// us allocate more than the index could describe.
	if uint64(count) > uint64(len(idx))/31 {
		return nil, 0, bad("index claims %d images in %d bytes", count, len(idx))
	}
	entries = make([]Entry, 0, count)
	seen := make(map[string]bool, count)
	for i := range int(count) {
		if len(idx) < 2 {
			return nil, 0, bad("index entry %d cut short", i)
		}
		kl := int(binary.LittleEndian.Uint16(idx))
		if kl == 0 || len(idx) < 2+kl+28 {
			return nil, 0, bad("index entry %d cut short", i)
		}
		e := Entry{Key: string(idx[2 : 2+kl])}
		p := idx[2+kl:]
		off := binary.LittleEndian.Uint64(p)
		e.W, e.H = int(binary.LittleEndian.Uint32(p[8:])), int(binary.LittleEndian.Uint32(p[12:]))
		e.OrigW, e.OrigH = int(binary.LittleEndian.Uint32(p[16:])), int(binary.LittleEndian.Uint32(p[20:]))
		e.crc = binary.LittleEndian.Uint32(p[24:])
		idx = p[28:]
		size := 3 * uint64(e.W) * uint64(e.H)
		if e.W <= 0 || e.H <= 0 || uint64(e.W)*uint64(e.H) > 1<<28 || off < headerSize || off > ioff || size > ioff-off {
			return nil, 0, bad("image %d (%s): %dx%d pixels at offset %d fall outside the pixel area", i, e.Key, e.W, e.H, off)
		}
		if seen[e.Key] {
			return nil, 0, bad("image %d (%s): key listed twice", i, e.Key)
		}
		seen[e.Key] = true
		e.off = int64(off)
		entries = append(entries, e)
	}
	if len(idx) != 0 {
		return nil, 0, bad("%d stray bytes after the index's %d entries", len(idx), count)
	}
	return entries, maxSide, nil
}
