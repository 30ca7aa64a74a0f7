package packed

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"imet/internal/vision/imageio"
)

// Reader serves the images of a pack from a read-only memory mapping: the
// pages are the kernel's page cache, shared by every worker (and every
// process reading the same file), and nothing is copied until the
// augmentation reads them. Safe for concurrent use.
type Reader struct {
	path    string
	root    string // absolute and clean
	wd      string // the working directory at Open, for relative lookups
	data    []byte
	entries []Entry
	byKey   map[string]int
	maxSide int
	checked []atomic.Bool
}

// Open maps the pack at path and checks its header, version, index and
// bounds (not yet the pixels: see Image and Verify). root is the directory
// the keys are relative to (the data set root), which Lookup needs.
func Open(path, root string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, fmt.Errorf("pack %s: empty file", path)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("pack %s: %d bytes do not fit in memory", path, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("pack %s: mmap: %w", path, err)
	}
	r, err := newReader(path, root, data)
	if err != nil {
		syscall.Munmap(data)
		return nil, err
	}
	return r, nil
}

func newReader(path, root string, data []byte) (*Reader, error) {
	entries, maxSide, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	r := &Reader{path: path, root: abs, wd: wd, data: data, entries: entries, maxSide: maxSide,
		byKey: make(map[string]int, len(entries)), checked: make([]atomic.Bool, len(entries))}
	for i, e := range entries {
		r.byKey[e.Key] = i
	}
	return r, nil
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*Reader{}
)

// Shared is Open through a process-wide table: the folds of a
// cross-validation and the splits of a fold share one mapping and one
// record of verified images. A file replaced since (a new pack is written
// to a new file and renamed over the old one) gets a new reader; the old
// mapping stays valid for loaders still using it. Shared readers are never
// closed; the mappings go with the process.
func Shared(path, root string) (*Reader, error) {
	ap, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ar, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s\x00%s\x00%d\x00%d", ap, ar, st.Size(), st.ModTime().UnixNano())
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		key += fmt.Sprintf("\x00%d:%d", sys.Dev, sys.Ino)
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if r := shared[key]; r != nil {
		return r, nil
	}
	r, err := Open(path, root)
	if err != nil {
		return nil, err
	}
	shared[key] = r
	return r, nil
}

// Close unmaps the file. No image the reader returned may be used after.
func (r *Reader) Close() error {
	if r.data == nil {
		return nil
	}
	err := syscall.Munmap(r.data)
	r.data = nil
	return err
}

// Path is the pack file.
func (r *Reader) Path() string { return r.path }

// Len is the number of images.
func (r *Reader) Len() int { return len(r.entries) }

// MaxSide is the cap on the longest side the pack was made with (0: full
// size).
func (r *Reader) MaxSide() int { return r.maxSide }

// Entry describes image i.
func (r *Reader) Entry(i int) Entry { return r.entries[i] }

// Lookup finds the image whose file is path (absolute, or relative to the
// working directory the reader was opened in), or reports false when the
// pack does not hold it. A loader looks up each of its items once: with
// 109k items, os.Getwd per call (what filepath.Abs does) would cost
// seconds.
func (r *Reader) Lookup(path string) (int, bool) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.wd, path)
	} else {
		path = filepath.Clean(path)
	}
	rest, ok := strings.CutPrefix(path, r.root)
	if !ok {
		return 0, false
	}
	if r.root != string(filepath.Separator) {
		if rest, ok = strings.CutPrefix(rest, string(filepath.Separator)); !ok {
			return 0, false
		}
	}
	i, ok := r.byKey[filepath.ToSlash(rest)]
	return i, ok
}

// Image returns image i. Its pixels are the mapping itself: read-only
// (writing them faults), valid until Close. The first read of each image
// verifies its checksum.
func (r *Reader) Image(i int) (*imageio.Image, error) {
	if i < 0 || i >= len(r.entries) {
		return nil, fmt.Errorf("pack %s: image %d out of range (%d images)", r.path, i, len(r.entries))
	}
	e := r.entries[i]
	pix := r.data[e.off : e.off+3*int64(e.W)*int64(e.H) : e.off+3*int64(e.W)*int64(e.H)]
	if !r.checked[i].Load() {
		if crc32.Checksum(pix, castagnoli) != e.crc {
			return nil, &CorruptError{Pack: r.path, Index: i, Key: e.Key}
		}
		r.checked[i].Store(true)
	}
	return &imageio.Image{W: e.W, H: e.H, Pix: pix}, nil
}

// Verify checks every image's checksum and returns the first mismatch.
func (r *Reader) Verify() error {
	for i := range r.entries {
		if _, err := r.Image(i); err != nil {
			return err
		}
	}
	return nil
}

// CorruptError reports an image whose pixels do not match their checksum.
type CorruptError struct {
	Pack  string
	Index int
	Key   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("pack %s: image %d (%s): pixel checksum mismatch, the file is corrupt: pack the data set again with imet datasets pack", e.Pack, e.Index, e.Key)
}
