package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
)

// Why an image file is broken, as Verify classifies it.
const (
	ReasonEmpty      = "zero bytes"
	ReasonNotImage   = "not an image (neither JPEG nor PNG)"
	ReasonTruncated  = "truncated"
	ReasonCorrupt    = "corrupt"
	ReasonUnreadable = "unreadable"
)

// BrokenError is an image file that does not decode whole.
type BrokenError struct {
	Path   string
	Reason string // one of the Reason constants
	Err    error  // what the decoder or the file system said; nil for ReasonEmpty
}

func (e *BrokenError) Error() string {
	if e.Err == nil || e.Reason == ReasonNotImage {
		return e.Path + ": " + e.Reason
	}
	return fmt.Sprintf("%s: %s (%v)", e.Path, e.Reason, e.Err)
}

func (e *BrokenError) Unwrap() error { return e.Err }

// Verify decodes the image file at path at full size and checks that it
// is whole: it returns nil, or a *BrokenError saying why not. It is
// stricter than Decode, which accepts a PNG whose pixel data is complete
// but whose end (the IEND chunk) is cut off.
func Verify(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &BrokenError{Path: path, Reason: ReasonUnreadable, Err: err}
	}
	return verifyBytes(path, data)
}

var pngEnd = []byte("IEND\xaeB`\x82")

func verifyBytes(path string, data []byte) error {
	if len(data) == 0 {
		return &BrokenError{Path: path, Reason: ReasonEmpty}
	}
	isPNG := bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n"))
	_, err := decodeBytes(path, data, Hint{}, nil)
	switch {
	case errors.Is(err, ErrFormat):
		return &BrokenError{Path: path, Reason: ReasonNotImage, Err: ErrFormat}
	case err != nil:
		// The decoder's message, without the path it repeats.
		inner := err
		var de *DecodeError
		if errors.As(err, &de) {
			inner = de.Err
		}
		reason := ReasonCorrupt
		if truncated(data, isPNG, err) {
			reason = ReasonTruncated
		}
		return &BrokenError{Path: path, Reason: reason, Err: inner}
	case isPNG && !bytes.HasSuffix(data, pngEnd):
		return &BrokenError{Path: path, Reason: ReasonTruncated, Err: errors.New("no IEND chunk at the end of the PNG")}
	}
	return nil
}

// truncated tells a file cut short from one damaged inside: the decoders
// say they ran out of data, or the file lacks its format's end marker
// (PNG's IEND chunk; JPEG's EOI, allowing the zero padding some writers
// leave after it).
func truncated(data []byte, isPNG bool, err error) bool {
	msg := err.Error()
	for _, s := range []string{"Premature end", "read beyond end", "unexpected EOF", "not enough pixel data", "missing SOS"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	if isPNG {
		return !bytes.HasSuffix(data, pngEnd)
	}
	return !bytes.HasSuffix(bytes.TrimRight(data, "\x00"), []byte{0xFF, 0xD9})
}

// VerifyAll runs Verify on every path with workers goroutines (0: one per
// core) and returns the broken ones in the order of paths. progress, when
// set, is called after each file with the number done.
func VerifyAll(paths []string, workers int, progress func(done, total int)) []*BrokenError {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, len(paths))
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for range min(workers, max(1, len(paths))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = Verify(paths[i])
				if progress != nil {
					mu.Lock()
					done++
					progress(done, len(paths))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	var out []*BrokenError
	for _, err := range errs {
		var b *BrokenError
		if errors.As(err, &b) {
			out = append(out, b)
		}
	}
	return out
}
