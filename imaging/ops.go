package imaging

import (
	"fmt"
	"math"

	"github.com/davidbyttow/govips/v2/vips"
)

// Fit is how Resize fits an image into a w x h box.
type Fit int

// Fit modes. The zero value is FitContain.
const (
	// FitContain scales the image, keeping its aspect ratio, to the largest size that fits inside
	// the box: one side equals the box's, the other is at most the box's. Nothing is padded.
	FitContain Fit = iota
	// FitCover scales the image, keeping its aspect ratio, to cover the box and crops the
	// overflow evenly from both ends (centre crop): the result is exactly the box.
	FitCover
	// FitFill stretches the image to exactly the box, changing its aspect ratio as needed.
	FitFill
)

var fitNames = [...]string{FitContain: "contain", FitCover: "cover", FitFill: "fill"}

// String returns "contain", "cover" or "fill".
func (f Fit) String() string {
	if f >= 0 && int(f) < len(fitNames) {
		return fitNames[f]
	}
	return fmt.Sprintf("Fit(%d)", int(f))
}

// ParseFit returns the Fit named s ("contain", "cover" or "fill").
func ParseFit(s string) (Fit, error) {
	for i, n := range fitNames {
		if n == s {
			return Fit(i), nil
		}
	}
	return 0, fmt.Errorf("imaging: unknown fit %q (want contain, cover or fill)", s)
}

// scaleRound returns round(a * b / c) for positive ints, at least 1, in exact integer arithmetic
// (halves round up), so that the same sizes always give the same result on every platform.
func scaleRound(a, b, c int) int {
	n := (2*int64(a)*int64(b) + int64(c)) / (2 * int64(c))
	if n < 1 {
		n = 1
	}
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	return int(n)
}

// FitSize returns the size Resize(w, h, fit) gives an sw x sh image. A zero w (or h) is derived
// from the other side keeping the aspect ratio, and then every fit gives the same size; both
// zero leaves the size unchanged. Non-positive source sizes and negative box sides return the
// source size unchanged.
func FitSize(sw, sh, w, h int, fit Fit) (int, int) {
	if sw <= 0 || sh <= 0 || w < 0 || h < 0 || (w == 0 && h == 0) {
		return sw, sh
	}
	switch {
	case h == 0:
		return w, scaleRound(sh, w, sw)
	case w == 0:
		return scaleRound(sw, h, sh), h
	}
	if fit != FitContain {
		return w, h
	}
	// The side whose ratio to the box is the larger one limits the scale.
	if int64(sw)*int64(h) >= int64(sh)*int64(w) {
		return w, min(h, scaleRound(sh, w, sw))
	}
	return min(w, scaleRound(sw, h, sh)), h
}

// coverCrop returns the centred region of an sw x sh image with the aspect ratio of a w x h box:
// the part FitCover keeps.
func coverCrop(sw, sh, w, h int) (left, top, cw, ch int) {
	cw, ch = sw, sh
	switch a, b := int64(sw)*int64(h), int64(sh)*int64(w); {
	case a > b: // source is wider than the box: trim left and right
		cw = min(sw, scaleRound(sh, w, h))
	case a < b: // source is taller: trim top and bottom
		ch = min(sh, scaleRound(sw, h, w))
	}
	return (sw - cw) / 2, (sh - ch) / 2, cw, ch
}

// Resize scales the image into a w x h box with the given fit (see Fit and FitSize; a zero side
// follows from the other keeping the aspect ratio). It enlarges as readily as it shrinks: callers
// bound w and h. Resampling is libvips' Lanczos-3, as in ResizeExact. Errors: ErrZeroSize for
// negative sides, ErrTooLarge as in ResizeExact.
func (im *Image) Resize(w, h int, fit Fit) error { return im.ResizeAt(w, h, fit, GravityCenter) }

// ResizeAt is Resize whose FitCover crop keeps the part that g says (see CropAspect).
func (im *Image) ResizeAt(w, h int, fit Fit, g Gravity) error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	if w < 0 || h < 0 {
		return fmt.Errorf("%w: resize into %dx%d", ErrZeroSize, w, h)
	}
	if fit < FitContain || fit > FitFill {
		return fmt.Errorf("imaging: resize: unknown fit %d", int(fit))
	}
	if fit == FitCover && w > 0 && h > 0 {
		if err := im.CropAspect(w, h, g); err != nil {
			return err
		}
		return im.ResizeExact(w, h)
	}
	nw, nh := FitSize(ref.Width(), ref.Height(), w, h, fit)
	return im.ResizeExact(nw, nh)
}

// Crop keeps the w x h region whose top-left corner is (left, top). Errors: ErrZeroSize for an
// empty region, and an error for one that is not inside the image.
func (im *Image) Crop(left, top, w, h int) error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: crop to %dx%d", ErrZeroSize, w, h)
	}
	iw, ih := ref.Width(), ref.Height()
	if left < 0 || top < 0 || left+w > iw || top+h > ih {
		return fmt.Errorf("imaging: crop %dx%d at (%d,%d) is outside the %dx%d image", w, h, left, top, iw, ih)
	}
	if left == 0 && top == 0 && w == iw && h == ih {
		return nil
	}
	if err := ref.ExtractArea(left, top, w, h); err != nil {
		return fmt.Errorf("imaging: crop %dx%d at (%d,%d): %s", w, h, left, top, vipsMessage(err))
	}
	return nil
}

// Grayscale turns the image grey (libvips' B_W colour space, luminance from CIE L*) and keeps it
// in the package's canonical form: three equal sRGB bands.
func (im *Image) Grayscale() error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	if err := ref.ToColorSpace(vips.InterpretationBW); err != nil {
		return fmt.Errorf("imaging: grayscale: %s", vipsMessage(err))
	}
	if err := ref.ToColorSpace(vips.InterpretationSRGB); err != nil {
		return fmt.Errorf("imaging: grayscale back to sRGB: %s", vipsMessage(err))
	}
	return im.canonical("grayscale")
}

// MaxBlurSigma is the largest sigma Blur accepts: beyond it the mask outgrows any sensible image.
const MaxBlurSigma = 100

// Blur applies a Gaussian blur with standard deviation sigma pixels (0 < sigma <= MaxBlurSigma),
// computed by libvips in integer precision, so the result is exact and repeatable.
func (im *Image) Blur(sigma float64) error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	if !(sigma > 0 && sigma <= MaxBlurSigma) {
		return fmt.Errorf("imaging: blur sigma %v is outside (0, %d]", sigma, MaxBlurSigma)
	}
	if err := ref.GaussianBlur(sigma); err != nil {
		return fmt.Errorf("imaging: blur sigma %v: %s", sigma, vipsMessage(err))
	}
	return im.canonical("blur")
}

// canonical checks that an operation left the image 3-band 8-bit, casting back if needed.
func (im *Image) canonical(op string) error {
	ref := im.ref
	if ref.Bands() != 3 {
		return fmt.Errorf("imaging: %s gave %d bands, want 3", op, ref.Bands())
	}
	if ref.BandFormat() != vips.BandFormatUchar {
		if err := ref.Cast(vips.BandFormatUchar); err != nil {
			return fmt.Errorf("imaging: %s: convert to 8 bits: %s", op, vipsMessage(err))
		}
	}
	return nil
}

// Info is what an image's header says, read without decoding any pixel.
type Info struct {
	// Width and Height are the size Decode would give: upright, after the EXIF orientation.
	Width, Height int
	// Alpha: the image has an alpha channel, which Decode flattens onto a background colour.
	Alpha bool
	// Type is the input format's name as libvips knows it ("jpeg", "png", "gif", "heif", ...).
	Type string
	// Format is the output format of the same kind (JPEG for a JPEG input, and so on), or zero
	// when the input is of a kind Encode does not write (GIF, TIFF, HEIF).
	Format Format
}

// Probe reads an encoded image's header: its size and format, without decoding the pixels, so a
// caller can refuse an image before paying for it. It accepts what Decode accepts and applies
// lim the same way; a header that passes may still fail Decode if the data is corrupt further on.
// Errors wrap ErrNotImage, ErrTooLarge, ErrZeroSize or ErrUnsupportedFormat.
func Probe(data []byte, lim Limits) (Info, error) {
	ref, typ, _, err := loadHeader(data, lim, "read the header of")
	if err != nil {
		return Info{}, err
	}
	defer ref.Close()
	name := vips.ImageTypes[typ]
	w, h := ref.Width(), ref.Height()
	if o := ref.Orientation(); o >= 5 && o <= 8 { // the EXIF orientations that turn by 90 degrees
		w, h = h, w
	}
	info := Info{Width: w, Height: h, Type: name, Alpha: ref.HasAlpha()}
	switch typ {
	case vips.ImageTypeJPEG:
		info.Format = JPEG
	case vips.ImageTypePNG:
		info.Format = PNG
	case vips.ImageTypeWEBP:
		info.Format = WebP
	case vips.ImageTypeAVIF:
		info.Format = AVIF
	}
	return info, nil
}
