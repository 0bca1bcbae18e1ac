package imaging

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/davidbyttow/govips/v2/vips"
)

// Format is an output format for Encode. The zero value is no format.
type Format int

// Output formats.
const (
	JPEG Format = iota + 1
	PNG
	WebP
	AVIF
)

var formatInfo = map[Format]struct{ name, ext, mime string }{
	JPEG: {"jpeg", ".jpg", "image/jpeg"},
	PNG:  {"png", ".png", "image/png"},
	WebP: {"webp", ".webp", "image/webp"},
	AVIF: {"avif", ".avif", "image/avif"},
}

// String returns the format's lower-case name ("jpeg", "png", "webp", "avif").
func (f Format) String() string {
	if i, ok := formatInfo[f]; ok {
		return i.name
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Ext returns the canonical file extension, with its dot (".jpg", ".png", ".webp", ".avif"), or
// "" for an unknown format.
func (f Format) Ext() string { return formatInfo[f].ext }

// MIMEType returns the media type for Content-Type headers, or "" for an unknown format.
func (f Format) MIMEType() string { return formatInfo[f].mime }

// FormatFromExt returns the output format for path's extension (case-insensitive .jpg, .jpeg,
// .png, .webp, .avif), or an error wrapping ErrUnsupportedFormat.
func FormatFromExt(path string) (Format, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".jpg", ".jpeg":
		return JPEG, nil
	case ".png":
		return PNG, nil
	case ".webp":
		return WebP, nil
	case ".avif":
		return AVIF, nil
	case "":
		return 0, fmt.Errorf("%w: %q has no extension (want .jpg, .jpeg, .png, .webp or .avif)", ErrUnsupportedFormat, path)
	default:
		return 0, fmt.Errorf("%w: extension %q (want .jpg, .jpeg, .png, .webp or .avif)", ErrUnsupportedFormat, ext)
	}
}

// Default qualities, used when Encode is given quality 0.
const (
	DefaultJPEGQuality = 90
	DefaultWebPQuality = 85
	DefaultAVIFQuality = 60
)

// AVIFEffort is the AV1 encoder's effort (0-9): the default 4 makes one large, detailed image a
// CPU-bound encode of many seconds that any caller can ask for; 1 keeps it to a fraction of that.
const AVIFEffort = 1

// Encode encodes the image. quality (1-100) applies to JPEG, WebP and AVIF; 0 picks the format's
// default (DefaultJPEGQuality and so on); PNG ignores it and is lossless. Metadata (EXIF, XMP,
// ICC) is stripped: the pixels are sRGB, which is what readers assume without a profile.
// Errors: ErrUnsupportedFormat for an unknown format or one this libvips build cannot encode
// (see CanEncode).
func (im *Image) Encode(format Format, quality int) ([]byte, error) {
	ref, err := im.alive()
	if err != nil {
		return nil, err
	}
	if _, ok := formatInfo[format]; !ok {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedFormat, format)
	}
	if quality < 0 || quality > 100 {
		return nil, fmt.Errorf("imaging: encode %v: quality %d is outside 0-100", format, quality)
	}
	if format == AVIF {
		if err := avifSupport(); err != nil {
			return nil, err
		}
	}
	buf, err := encode(ref, format, quality)
	if err != nil {
		return nil, fmt.Errorf("imaging: encode %dx%d %v: %s", ref.Width(), ref.Height(), format, vipsMessage(err))
	}
	return buf, nil
}

func encode(ref *vips.ImageRef, format Format, quality int) ([]byte, error) {
	var (
		buf []byte
		err error
	)
	switch format {
	case JPEG:
		p := vips.NewJpegExportParams()
		p.Quality = orDefault(quality, DefaultJPEGQuality)
		p.StripMetadata = true
		p.Interlace = false
		p.OptimizeCoding = true
		p.SubsampleMode = vips.VipsForeignSubsampleAuto // 4:2:0 below quality 90, 4:4:4 from 90
		buf, _, err = ref.ExportJpeg(p)
	case PNG:
		p := vips.NewPngExportParams()
		p.StripMetadata = true
		p.Compression = 6
		p.Filter = vips.PngFilterAll
		buf, _, err = ref.ExportPng(p)
	case WebP:
		p := vips.NewWebpExportParams()
		p.Quality = orDefault(quality, DefaultWebPQuality)
		p.StripMetadata = true
		buf, _, err = ref.ExportWebp(p)
	case AVIF:
		p := vips.NewAvifExportParams()
		p.Quality = orDefault(quality, DefaultAVIFQuality)
		p.StripMetadata = true
		p.Effort = AVIFEffort
		buf, _, err = ref.ExportAvif(p)
	}
	return buf, err
}

func orDefault(q, def int) int {
	if q == 0 {
		return def
	}
	return q
}

// CanEncode reports whether this libvips build can encode format. JPEG and PNG always can; WebP
// and AVIF depend on how libvips was built (Debian's can encode both, AVIF through libheif with
// an AV1 encoder).
func CanEncode(format Format) bool {
	if ensureStarted() != nil {
		return false
	}
	switch format {
	case JPEG, PNG, WebP:
		return true
	case AVIF:
		return avifSupport() == nil
	}
	return false
}

var (
	avifOnce sync.Once
	avifErr  error
)

// avifSupport probes once whether libvips can write AVIF: it needs libheif built with an AV1
// encoder, which many builds lack. A failing probe becomes ErrUnsupportedFormat.
func avifSupport() error {
	avifOnce.Do(func() {
		ref, err := vips.Black(16, 16)
		if err == nil {
			defer ref.Close()
			err = ref.ToColorSpace(vips.InterpretationSRGB)
		}
		if err == nil {
			_, err = encode(ref, AVIF, 50)
		}
		if err != nil {
			avifErr = fmt.Errorf("%w: this libvips build cannot encode avif: %s", ErrUnsupportedFormat, vipsMessage(err))
		}
	})
	return avifErr
}
