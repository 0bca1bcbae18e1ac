package imaging

import (
	"bytes"
	"fmt"

	"github.com/davidbyttow/govips/v2/vips"
)

// checkComplete refuses a JPEG or PNG whose end marker is missing, before any pixel is decoded.
// libvips's fail-on-error option catches most files cut short, but for these two loaders it
// reports the truncation from its decoding threads and now and then lets a file cut near its end
// through; the end markers settle it from the bytes alone.
func checkComplete(typ vips.ImageType, data []byte) error {
	switch typ {
	case vips.ImageTypeJPEG:
		// Entropy-coded data escapes 0xFF, so the last start-of-scan marker is the last scan's,
		// and a complete file has an end-of-image marker after it (trailing bytes may follow).
		sos := bytes.LastIndex(data, []byte{0xff, 0xda})
		if sos < 0 || bytes.LastIndex(data, []byte{0xff, 0xd9}) < sos {
			return fmt.Errorf("%w: JPEG data ends before its end-of-image marker (truncated)", ErrNotImage)
		}
	case vips.ImageTypePNG:
		// IEND is the last chunk: its length (0), type and CRC.
		if iend := bytes.LastIndex(data, []byte("\x00\x00\x00\x00IEND")); iend < 0 || len(data) < iend+12 {
			return fmt.Errorf("%w: PNG data ends before its IEND chunk (truncated)", ErrNotImage)
		}
	}
	return nil
}
