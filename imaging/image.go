package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"

	"github.com/davidbyttow/govips/v2/vips"
)

// RGB is a packed 8-bit sRGB image: row-major, 3 bytes (R, G, B) a pixel, no alpha, no padding.
// The pixel at (x, y) starts at Pix[3*(y*Width+x)].
type RGB struct {
	Width, Height int
	Pix           []uint8
}

// Image is a decoded image held by libvips: always 3-band 8-bit sRGB, upright, without alpha
// (see the package documentation). Operations are lazy where libvips allows, so a resize followed
// by an encode makes one pass over the pixels. Close it when done to free its memory promptly
// (a finalizer frees it otherwise).
type Image struct {
	ref *vips.ImageRef
}

// acceptedInputs are the formats Decode reads; others that libvips knows are refused.
var acceptedInputs = map[vips.ImageType]bool{
	vips.ImageTypeJPEG: true,
	vips.ImageTypePNG:  true,
	vips.ImageTypeWEBP: true,
	vips.ImageTypeGIF:  true,
	vips.ImageTypeTIFF: true,
	vips.ImageTypeHEIF: true,
	vips.ImageTypeAVIF: true,
}

// loadHeader sniffs data, hands libvips a private copy of it and checks the size its header
// declares against lim, for Decode and Probe. libvips reads the buffer in place, lazily: the
// copy lets the caller reuse data, and keeps anything else from changing the bytes under
// libvips. The load reads the header only (pixels are decoded on first access); FailOnError makes
// libvips refuse truncated or corrupt data instead of filling in grey. what names the caller's
// step in errors. The caller closes ref.
func loadHeader(data []byte, lim Limits, what string) (ref *vips.ImageRef, typ vips.ImageType, buf []byte, err error) {
	if typ, err = lim.sniff(data); err != nil {
		return nil, typ, nil, err
	}
	buf = bytes.Clone(data)
	params := vips.NewImportParams()
	params.FailOnError.Set(true)
	if ref, err = vips.LoadImageFromBuffer(buf, params); err != nil {
		return nil, typ, nil, vipsError(ErrNotImage, what+" "+vips.ImageTypes[typ], err)
	}
	if err := lim.check(ref.Width(), ref.Height()); err != nil {
		ref.Close()
		return nil, typ, nil, err
	}
	return ref, typ, buf, nil
}

// Decode decodes an encoded image (see the package documentation for the formats and the
// conversions applied). Errors wrap ErrNotImage (empty, unrecognised, corrupt or truncated
// input), ErrTooLarge (over a limit), ErrZeroSize or ErrUnsupportedFormat (a refused input
// format). Decode keeps its own copy of data. Transparency is flattened onto white.
func Decode(data []byte, lim Limits) (*Image, error) { return DecodeOn(data, lim, White) }

// DecodeOn is Decode flattening transparency onto bg.
func DecodeOn(data []byte, lim Limits, bg Color) (*Image, error) {
	ref, typ, buf, err := loadHeader(data, lim, "decode")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			ref.Close()
		}
	}()

	// Decode every pixel now (libvips keeps the decoded image for the later steps), so that corrupt
	// or truncated data fails here, as ErrNotImage, rather than in a later resize or encode.
	if _, err := ref.Average(); err != nil {
		return nil, vipsError(ErrNotImage, "decode "+vips.ImageTypes[typ], err)
	}
	if typ != vips.ImageTypeJPEG && typ != vips.ImageTypePNG {
		if err := strictDecode(buf); err != nil {
			return nil, vipsError(ErrNotImage, "decode "+vips.ImageTypes[typ], err)
		}
	}
	if err := toSRGB(ref, bg); err != nil {
		return nil, err
	}
	// No field of the source (EXIF, XMP, IPTC, comments) may reach an output: some savers keep
	// them even when told to strip (libvips 8.14's WebP keeps EXIF).
	if err := ref.RemoveMetadata(); err != nil {
		return nil, vipsError(ErrNotImage, "drop metadata", err)
	}
	ok = true
	return &Image{ref: ref}, nil
}

// DecodeFile reads and decodes the file at path, refusing a file over lim.MaxBytes before reading
// it. File system errors are returned wrapped, so errors.Is(err, fs.ErrNotExist) works.
func DecodeFile(path string, lim Limits) (*Image, error) {
	if err := ensureStarted(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("imaging: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("imaging: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotImage, path)
	}
	if lim.MaxBytes > 0 && fi.Size() > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the limit of %d bytes", ErrTooLarge, path, fi.Size(), lim.MaxBytes)
	}
	r := io.Reader(f)
	if lim.MaxBytes > 0 {
		r = io.LimitReader(f, lim.MaxBytes+1) // the file may grow between Stat and Read
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("imaging: read %s: %w", path, err)
	}
	im, err := Decode(data, lim)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

// toSRGB turns a freshly loaded image into the package's canonical form: upright, sRGB, 3 bands,
// 8 bits, no alpha (flattened onto bg). The steps are lazy; the pixels were decoded already.
func toSRGB(ref *vips.ImageRef, bg Color) error {
	fail := func(step string, err error) error { return vipsError(ErrNotImage, step, err) }

	if err := ref.AutoRotate(); err != nil {
		return fail("apply EXIF orientation", err)
	}
	if ref.HasICCProfile() {
		// Convert with the embedded profile. A profile that libvips cannot use (broken, or for the
		// wrong colour space) is dropped and the pixels are taken as they are, as PIL would.
		if err := ref.TransformICCProfileWithFallback("srgb", "srgb"); err != nil {
			if err := ref.RemoveICCProfile(); err != nil {
				return fail("drop ICC profile", err)
			}
		}
	}
	// vips_colourspace guesses the source space from the bands when the label does not fit them
	// (e.g. a one-band page labelled multiband), so it also covers odd TIFFs.
	if ref.Interpretation() != vips.InterpretationSRGB || ref.Bands() < 3 {
		if err := ref.ToColorSpace(vips.InterpretationSRGB); err != nil {
			return fail(fmt.Sprintf("convert %d-band image to sRGB", ref.Bands()), err)
		}
	}
	if ref.HasAlpha() {
		if err := ref.Flatten(&vips.Color{R: bg.R, G: bg.G, B: bg.B}); err != nil {
			return fail("flatten alpha", err)
		}
	}
	if ref.Bands() > 3 {
		if err := ref.ExtractBand(0, 3); err != nil {
			return fail("drop extra bands", err)
		}
	}
	if ref.Bands() != 3 {
		return fmt.Errorf("%w: %d bands after conversion to sRGB", ErrNotImage, ref.Bands())
	}
	if ref.BandFormat() != vips.BandFormatUchar {
		if err := ref.Cast(vips.BandFormatUchar); err != nil {
			return fail("convert to 8 bits", err)
		}
	}
	return nil
}

// alive returns the libvips image, or ErrClosed.
func (im *Image) alive() (*vips.ImageRef, error) {
	if im == nil || im.ref == nil {
		return nil, ErrClosed
	}
	if err := ensureStarted(); err != nil {
		return nil, err
	}
	return im.ref, nil
}

// Size returns the width and height in pixels (0, 0 once closed).
func (im *Image) Size() (w, h int) {
	if im == nil || im.ref == nil {
		return 0, 0
	}
	return im.ref.Width(), im.ref.Height()
}

// ShorterSideSize returns the size torchvision.transforms.Resize(px) gives a w x h image: the
// shorter side becomes px and the longer int(px * long / short), truncated. px <= 0 or a
// non-positive size returns w, h unchanged.
func ShorterSideSize(w, h, px int) (nw, nh int) {
	if px <= 0 || w <= 0 || h <= 0 {
		return w, h
	}
	if w <= h {
		return px, int(int64(px) * int64(h) / int64(w))
	}
	return int(int64(px) * int64(w) / int64(h)), px
}

// ResizeShorterSide scales the image so that its shorter side is px pixels, keeping the aspect
// ratio with torchvision's rounding (see ShorterSideSize). px <= 0 is a no-op.
func (im *Image) ResizeShorterSide(px int) error {
	if px <= 0 {
		return nil
	}
	w, h := im.Size()
	nw, nh := ShorterSideSize(w, h, px)
	return im.ResizeExact(nw, nh)
}

// ResizeExact scales the image to exactly w x h pixels (the aspect ratio may change) with
// libvips' Lanczos-3 resampler, which antialiases when shrinking. The same size is a no-op.
// Errors: ErrZeroSize for a non-positive size, ErrTooLarge for one over libvips' 10,000,000
// pixel side limit.
func (im *Image) ResizeExact(w, h int) error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: resize to %dx%d", ErrZeroSize, w, h)
	}
	const maxSide = 10_000_000 // VIPS_MAX_COORD
	if w > maxSide || h > maxSide {
		return fmt.Errorf("%w: resize to %dx%d, over libvips' limit of %d pixels a side", ErrTooLarge, w, h, maxSide)
	}
	ow, oh := ref.Width(), ref.Height()
	if w == ow && h == oh {
		return nil
	}
	hs, vs := scaleFor(ow, w), scaleFor(oh, h)
	if err := ref.ResizeWithVScale(hs, vs, vips.KernelLanczos3); err != nil {
		return fmt.Errorf("imaging: resize %dx%d to %dx%d: %s", ow, oh, w, h, vipsMessage(err))
	}
	if gw, gh := ref.Width(), ref.Height(); gw != w || gh != h {
		return fmt.Errorf("imaging: resize %dx%d to %dx%d gave %dx%d", ow, oh, w, h, gw, gh)
	}
	return nil
}

// scaleFor returns the factor that takes a side of from pixels to exactly to pixels in
// vips_resize, which rounds from*scale to the nearest integer, so float error in to/from cannot
// move the result (checked over thousands of sizes; ResizeExact verifies the result anyway).
func scaleFor(from, to int) float64 {
	return float64(to) / float64(from)
}

// RGB returns a copy of the pixels as packed 8-bit sRGB.
func (im *Image) RGB() (*RGB, error) {
	ref, err := im.alive()
	if err != nil {
		return nil, err
	}
	w, h := ref.Width(), ref.Height()
	pix, err := ref.ToBytes()
	if err != nil {
		return nil, fmt.Errorf("imaging: read %dx%d pixels: %s", w, h, vipsMessage(err))
	}
	if len(pix) != 3*w*h {
		return nil, fmt.Errorf("imaging: read %dx%d pixels: got %d bytes, want %d", w, h, len(pix), 3*w*h)
	}
	return &RGB{Width: w, Height: h, Pix: pix}, nil
}

// FromRGB makes an Image from packed 8-bit sRGB pixels (copied). Errors: ErrZeroSize for a
// non-positive size, and an error when len(Pix) is not 3*Width*Height.
func FromRGB(p *RGB) (*Image, error) {
	if err := ensureStarted(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w: nil RGB", ErrZeroSize)
	}
	if p.Width <= 0 || p.Height <= 0 {
		return nil, fmt.Errorf("%w: RGB image is %dx%d", ErrZeroSize, p.Width, p.Height)
	}
	n := int64(p.Width) * int64(p.Height) * 3
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("%w: RGB image is %dx%d", ErrTooLarge, p.Width, p.Height)
	}
	if int64(len(p.Pix)) != n {
		return nil, fmt.Errorf("imaging: RGB image is %dx%d with %d bytes of pixels, want %d", p.Width, p.Height, len(p.Pix), n)
	}
	// govips has no constructor from raw memory, so the pixels go through an uncompressed PNG
	// (stored zlib blocks, no filtering): a copy and two checksums, lossless.
	rgba := image.NewRGBA(image.Rect(0, 0, p.Width, p.Height))
	for i, j := 0, 0; i < len(p.Pix); i, j = i+3, j+4 {
		rgba.Pix[j], rgba.Pix[j+1], rgba.Pix[j+2], rgba.Pix[j+3] = p.Pix[i], p.Pix[i+1], p.Pix[i+2], 0xff
	}
	var b bytes.Buffer
	b.Grow(int(n) + p.Height + 1024)
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&b, rgba); err != nil {
		return nil, fmt.Errorf("imaging: wrap RGB pixels: %w", err)
	}
	ref, err := vips.LoadImageFromBuffer(b.Bytes(), vips.NewImportParams())
	if err != nil {
		return nil, fmt.Errorf("imaging: load RGB pixels: %s", vipsMessage(err))
	}
	if ref.Bands() != 3 || ref.Width() != p.Width || ref.Height() != p.Height {
		ref.Close()
		return nil, fmt.Errorf("imaging: load RGB pixels: got %dx%d with %d bands", ref.Width(), ref.Height(), ref.Bands())
	}
	return &Image{ref: ref}, nil
}

// Close frees the image. It is idempotent; other methods return ErrClosed afterwards.
func (im *Image) Close() {
	if im == nil || im.ref == nil {
		return
	}
	im.ref.Close()
	im.ref = nil
}
