package imaging

import (
	"fmt"

	"github.com/davidbyttow/govips/v2/vips"
)

// Limits bounds what Decode accepts. A zero field means no limit.
type Limits struct {
	// MaxBytes caps the size of the encoded input. DecodeFile checks it against the file's size
	// before reading.
	MaxBytes int64
	// MaxPixels caps width*height as declared by the image header. It is checked after reading
	// only the header and before any pixel is decoded, so a decompression bomb (a small file that
	// declares a huge image) is refused without allocating its pixels.
	MaxPixels int64
	// MaxSide caps the longer side and MaxAspect the ratio of the longer side to the shorter, as
	// the header declares them: a 1x10,000,000 strip is few pixels but slow to resize.
	MaxSide   int
	MaxAspect int
}

// check refuses a w x h header over the limits.
func (lim Limits) check(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: header declares %dx%d", ErrZeroSize, w, h)
	}
	if px := int64(w) * int64(h); lim.MaxPixels > 0 && px > lim.MaxPixels {
		return fmt.Errorf("%w: %dx%d is %d pixels, over the limit of %d pixels", ErrTooLarge, w, h, px, lim.MaxPixels)
	}
	long, short := max(w, h), min(w, h)
	if lim.MaxSide > 0 && long > lim.MaxSide {
		return fmt.Errorf("%w: %dx%d has a side over the limit of %d pixels", ErrTooLarge, w, h, lim.MaxSide)
	}
	if lim.MaxAspect > 0 && int64(long) > int64(short)*int64(lim.MaxAspect) {
		return fmt.Errorf("%w: %dx%d is more than %d times longer than wide", ErrTooLarge, w, h, lim.MaxAspect)
	}
	return nil
}

// sniff checks data's size and kind before libvips reads it: ErrNotImage for empty or
// unrecognised data, ErrTooLarge over MaxBytes, ErrUnsupportedFormat for a refused kind.
func (lim Limits) sniff(data []byte) (vips.ImageType, error) {
	if err := ensureStarted(); err != nil {
		return 0, err
	}
	if len(data) == 0 {
		return 0, fmt.Errorf("%w: empty input", ErrNotImage)
	}
	if lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes, over the limit of %d bytes", ErrTooLarge, len(data), lim.MaxBytes)
	}
	typ := vips.DetermineImageType(data)
	if typ == vips.ImageTypeUnknown {
		return 0, fmt.Errorf("%w: unrecognised data (%d bytes)", ErrNotImage, len(data))
	}
	if !acceptedInputs[typ] {
		return 0, fmt.Errorf("%w: %s input is not accepted", ErrUnsupportedFormat, vips.ImageTypes[typ])
	}
	if !vips.IsTypeSupported(typ) {
		return 0, fmt.Errorf("%w: this libvips build cannot load %s", ErrUnsupportedFormat, vips.ImageTypes[typ])
	}
	if err := checkComplete(typ, data); err != nil {
		return 0, err
	}
	return typ, nil
}
