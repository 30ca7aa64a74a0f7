//go:build cgo && !noturbo

package imageio

/*
#cgo LDFLAGS: -lpng
#include <stdlib.h>
#include <string.h>
#include <png.h>

// imet_png decodes a PNG held in memory to 8-bit RGB (or RGBA when the file
// has transparency, so the caller can drop alpha without compositing) in a
// malloc'd buffer the caller frees. The whole decode is one call, so libpng
// never holds the Go-owned input past it.
static unsigned char *imet_png(const unsigned char *data, size_t n, long max_pixels,
                               int *w, int *h, int *alpha, char *msg, int msglen) {
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&im, data, n)) {
		strncpy(msg, im.message, msglen - 1);
		return NULL;
	}
	if ((long)im.width * (long)im.height > max_pixels) {
		png_image_free(&im);
		snprintf(msg, msglen, "implausible image size %ux%u", im.width, im.height);
		return NULL;
	}
	*alpha = (im.format & PNG_FORMAT_FLAG_ALPHA) != 0;
	im.format = *alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
	unsigned char *buf = malloc(PNG_IMAGE_SIZE(im));
	if (buf == NULL) {
		png_image_free(&im);
		strncpy(msg, "out of memory", msglen - 1);
		return NULL;
	}
	if (!png_image_finish_read(&im, NULL, buf, 0, NULL)) {
		strncpy(msg, im.message, msglen - 1);
		free(buf);
		return NULL;
	}
	*w = im.width;
	*h = im.height;
	return buf;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// decodePNG uses libpng (with C zlib, about 1.5x faster to inflate than
// compress/flate) for 8-bit files and the standard library for 16-bit ones,
// whose libpng conversion to 8 bits would apply a gamma curve where PIL
// and the pure-Go path take the high byte.
func decodePNG(data []byte, dst *Image) (*Image, error) {
	// IHDR's bit depth is byte 24 of any PNG.
	if len(data) > 24 && data[24] == 16 {
		return decodeStd(data)
	}
	var w, h, alpha C.int
	var msg [256]C.char
	buf := C.imet_png((*C.uchar)(unsafe.Pointer(&data[0])), C.size_t(len(data)), C.long(maxPixels),
		&w, &h, &alpha, &msg[0], C.int(len(msg)))
	if buf == nil {
		return nil, errors.New("libpng: " + C.GoString(&msg[0]))
	}
	defer C.free(unsafe.Pointer(buf))
	out := newImage(dst, int(w), int(h))
	n := int(w) * int(h)
	if alpha == 0 {
		copy(out.Pix, unsafe.Slice((*byte)(unsafe.Pointer(buf)), 3*n))
		return out, nil
	}
	src := unsafe.Slice((*byte)(unsafe.Pointer(buf)), 4*n)
	for i := 0; i < n; i++ {
		out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = src[4*i], src[4*i+1], src[4*i+2]
	}
	return out, nil
}
