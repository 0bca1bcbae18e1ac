// Package imaging decodes, resizes and encodes images with libvips (govips); it is the only package
// that talks to libvips.
//
// A decoded [Image] always holds 8-bit sRGB pixels with exactly three bands:
//
//   - the EXIF orientation is applied (the image is turned upright) and then dropped;
//   - an embedded ICC profile is applied, converting the pixels to sRGB (for the common sRGB
//     profiles this leaves every pixel unchanged); images without one are taken to be sRGB, as
//     browsers and PIL do;
//   - greyscale, CMYK, 16-bit and other colour spaces are converted to 8-bit sRGB;
//   - an alpha channel is flattened onto a white background (PIL's convert('RGB') drops alpha
//     instead; the two agree on opaque pixels).
//
// Accepted inputs are JPEG, PNG, WebP, GIF (first frame), TIFF (first page), HEIF and AVIF. Other
// formats that libvips could read (SVG, PDF, BMP, JPEG 2000, JPEG XL, anything ImageMagick knows)
// are refused with [ErrUnsupportedFormat]: they are needless attack surface for an image proxy.
//
// Every failure caused by the input or the arguments wraps one of the sentinel errors
// ([ErrNotImage], [ErrTooLarge], [ErrZeroSize], [ErrUnsupportedFormat], [ErrClosed]), so callers
// can classify it with errors.Is, e.g. to answer an HTTP request with 400, 413 or 415; the rest
// (a libvips failure while encoding, say) are plain errors, a 500. Hostile input yields an error,
// never a panic.
//
// Call [Startup] once before use (it is also called on first use) and [Shutdown] once at exit.
// An [Image] is not safe for concurrent use; distinct Images may be used from different
// goroutines.
package imaging

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is. DecodeFile's file system errors stay visible to errors.Is as
// well (fs.ErrNotExist and so on).
var (
	// ErrNotImage: the bytes are empty, not an image, or corrupt/truncated.
	ErrNotImage = errors.New("imaging: not a decodable image")
	// ErrTooLarge: the input is over Limits.MaxBytes or its header declares more than
	// Limits.MaxPixels pixels. The message gives the size and the limit.
	ErrTooLarge = errors.New("imaging: image too large")
	// ErrZeroSize: a requested or supplied size has no pixels (zero or negative width or height).
	ErrZeroSize = errors.New("imaging: zero image size")
	// ErrUnsupportedFormat: an input format that is refused, an unknown output format or
	// extension, or an output format this libvips build cannot encode.
	ErrUnsupportedFormat = errors.New("imaging: unsupported image format")
	// ErrClosed: the Image was used after Close, or libvips after Shutdown.
	ErrClosed = errors.New("imaging: image closed")
)

// vipsMessage returns the useful part of a govips error: govips appends a full Go stack trace to
// libvips' error buffer, which is noise in an error chain.
func vipsMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, "\nStack:"); i >= 0 {
		s = s[:i]
	}
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "libvips error"
	}
	return strings.Join(lines, "; ")
}

// vipsError wraps sentinel with context and the libvips message of err.
func vipsError(sentinel error, context string, err error) error {
	return fmt.Errorf("%w: %s: %s", sentinel, context, vipsMessage(err))
}
