//go:build !cgo || noturbo

package imageio

const turboEnabled = false

// decodeJPEG without libjpeg-turbo: the standard library at full size (it
// has no reduced-scale decoding, so the hint is ignored).
func decodeJPEG(data []byte, _ Hint) (*Image, error) { return decodeStd(data) }
