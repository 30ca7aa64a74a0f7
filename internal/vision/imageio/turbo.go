//go:build cgo && !noturbo

package imageio

/*
#cgo LDFLAGS: -lturbojpeg
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

const turboEnabled = true

// handles holds decompressor handles for reuse; creating one costs a few
// allocations inside libjpeg, which adds up over 100k images. Handles are
// never freed: there are at most cap(handles) idle ones.
var handles = make(chan C.tjhandle, 64)

func getHandle() (C.tjhandle, error) {
	select {
	case h := <-handles:
		return h, nil
	default:
	}
	h := C.tjInitDecompress()
	if h == nil {
		return nil, errors.New("libjpeg-turbo: cannot create a decompressor")
	}
	return h, nil
}

func putHandle(h C.tjhandle) {
	select {
	case handles <- h:
	default:
		C.tjDestroy(h)
	}
}

var scalingFactors = func() []C.tjscalingfactor {
	var n C.int
	p := C.tjGetScalingFactors(&n)
	return unsafe.Slice(p, int(n))
}()

func scaled(dim int, sf C.tjscalingfactor) int {
	return (dim*int(sf.num) + int(sf.denom) - 1) / int(sf.denom)
}

// pickScale chooses the smallest reduction whose output still satisfies
// the hint, among 1/2, 1/4 and 1/8 only: libjpeg-turbo's other factors
// (3/8, 5/8, ...) run a scalar IDCT that is slower than the SIMD full-size
// one (measured: 5/8 of an 800x600 costs 2.3 ms, full size 2.0, 1/2 1.7).
func pickScale(w, h int, hint Hint) C.tjscalingfactor {
	best := C.tjscalingfactor{num: 1, denom: 1}
	if hint.Zero() {
		return best
	}
	bestW := w
	for _, sf := range scalingFactors {
		if sf.num != 1 || (sf.denom != 2 && sf.denom != 4 && sf.denom != 8) {
			continue
		}
		sw, sh := scaled(w, sf), scaled(h, sf)
		if hint.accepts(sw, sh) && sw < bestW {
			best, bestW = sf, sw
		}
	}
	return best
}

func decodeJPEG(data []byte, hint Hint, dst *Image) (img *Image, err error) {
	h, err := getHandle()
	if err != nil {
		return nil, err
	}
	// A handle that failed keeps state from the broken file: the next
	// image decoded with it fails too ("Unsupported marker type 0x07" after
	// a file of 0x07 bytes). Only a handle whose last call succeeded cleanly
	// goes back to the pool.
	clean := false
	defer func() {
		if clean {
			putHandle(h)
		} else {
			freeHandle(h)
		}
	}()
	// Go memory is passed straight to libjpeg (no copies): it holds no Go
	// pointers and libjpeg uses it only during each call.
	buf := unsafe.Pointer(&data[0])
	var w, hh, subsamp, cs C.int
	if C.tjDecompressHeader3(h, (*C.uchar)(buf), C.ulong(len(data)), &w, &hh, &subsamp, &cs) != 0 {
		return nil, turboErr(h)
	}
	if w <= 0 || hh <= 0 || int64(w)*int64(hh) > maxPixels {
		return nil, fmt.Errorf("implausible JPEG size %dx%d", int(w), int(hh))
	}
	if cs == C.TJCS_CMYK || cs == C.TJCS_YCCK {
		// libjpeg-turbo 2.x cannot convert these to RGB; the standard
		// decoder knows Adobe's inverted CMYK.
		clean = true
		return decodeStd(data)
	}
	sf := pickScale(int(w), int(hh), hint)
	ow, oh := scaled(int(w), sf), scaled(int(hh), sf)
	out := newImage(dst, ow, oh)
	cpix := unsafe.Pointer(&out.Pix[0])
	rc := C.tjDecompress2(h, (*C.uchar)(buf), C.ulong(len(data)), (*C.uchar)(cpix),
		C.int(ow), C.int(3*ow), C.int(oh), C.TJPF_RGB, 0)
	if rc != 0 {
		err := turboErr(h)
		// Warnings are tolerated (extraneous bytes and the like, which PIL
		// ignores too) except a premature end: that is a truncated file whose
		// missing part libjpeg would fill with grey.
		if C.tjGetErrorCode(h) != C.TJERR_WARNING || strings.Contains(err.Error(), "Premature end") {
			return nil, err
		}
		return out, nil
	}
	clean = true
	return out, nil
}

func turboErr(h C.tjhandle) error {
	return errors.New("libjpeg-turbo: " + C.GoString(C.tjGetErrorStr2(h)))
}

// freeHandle frees a handle that must not be reused.
func freeHandle(h C.tjhandle) { C.tjDestroy(h) }
