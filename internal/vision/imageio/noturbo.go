//go:build !cgo || noturbo

package imageio

const turboEnabled = false

// decodeJPEG without libjpeg-turbo: the standard library at full size (it
// has no reduced-scale decoding, so the hint is ignored).
func decodeJPEG(data []byte, _ Hint, _ *Image) (*Image, error) { return decodeStd(data) }

// decodePNG without cgo: the standard library.
func decodePNG(data []byte, _ *Image) (*Image, error) { return decodeStd(data) }
