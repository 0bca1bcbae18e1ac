package pipeline

import (
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// The query parameters the pipeline itself owns; filters may not claim them.
var coreParams = append(imageAppliers.Names(), "sig")

// DefaultQuality is the encoder quality (JPEG, WebP, AVIF) when a URL gives no q.
const DefaultQuality = 85

// ImageOptions are the pipeline's own parsed, validated and canonical options: the output size,
// fit, format and quality. The zero value means "as the source": its size (bounded by the
// pipeline's MaxOutputPx), its format (if the pipeline encodes it, else JPEG).
type ImageOptions struct {
	// Width and Height are the box (0 = not given). With one of them the image is scaled to it
	// keeping its aspect ratio; with both, Fit says how.
	Width, Height int
	// Fit applies when both Width and Height are given; canonically FitContain otherwise.
	Fit imaging.Fit
	// Format is the output format; 0 means the source's.
	Format imaging.Format
	// Auto is set for format=auto: Format was picked from the request's Accept header, and the
	// response varies by it.
	Auto bool
	// Quality is the encoder quality, 1-100; canonically 0 for PNG, which ignores it.
	Quality int
}

// Key is the canonical text of the options for the cache key. Options that give the same image
// give the same key: fit is left out unless both sides are given, q for PNG, and format=auto is
// keyed by the format it picked.
func (o ImageOptions) Key() string {
	var b strings.Builder
	b.WriteString("w=" + strconv.Itoa(o.Width))
	b.WriteString(",h=" + strconv.Itoa(o.Height))
	b.WriteString(",fit=" + o.Fit.String())
	if o.Format == 0 {
		b.WriteString(",format=source")
	} else {
		b.WriteString(",format=" + o.Format.String())
	}
	b.WriteString(",q=" + strconv.Itoa(o.Quality))
	return b.String()
}

// ParseImageOptions parses the pipeline's own parameters (w, h, fit, format, q) from q;
// accept is the request's Accept header, for format=auto. Sides over maxOutputPx are refused.
// Errors are *ParamErrors.
func ParseImageOptions(q url.Values, maxOutputPx int, accept string) (ImageOptions, error) {
	p := imageParse{o: ImageOptions{Quality: DefaultQuality}, maxOutputPx: maxOutputPx, accept: accept}
	if err := imageAppliers.Apply(&p, q); err != nil {
		return ImageOptions{}, err
	}
	if p.o.Width == 0 || p.o.Height == 0 {
		p.o.Fit = imaging.FitContain // fit only means something with both sides
	}
	if p.o.Format == imaging.PNG {
		p.o.Quality = 0
	}
	return p.o, nil
}

// imageParse is ImageOptions being parsed, with what its appliers need to know.
type imageParse struct {
	o           ImageOptions
	maxOutputPx int
	accept      string
}

var imageAppliers = plugin.Appliers[imageParse]{
	"w":      applyWidth,
	"h":      applyHeight,
	"fit":    applyFit,
	"format": applyFormat,
	"q":      applyQuality,
}

func applyWidth(p *imageParse, v string) (err error) {
	p.o.Width, err = plugin.Int("w", v, 1, p.maxOutputPx)
	return err
}

func applyHeight(p *imageParse, v string) (err error) {
	p.o.Height, err = plugin.Int("h", v, 1, p.maxOutputPx)
	return err
}

var fits = []imaging.Fit{imaging.FitCover, imaging.FitContain, imaging.FitFill}

func applyFit(p *imageParse, v string) error {
	i, err := plugin.Choice("fit", v, "cover", "contain", "fill")
	p.o.Fit = fits[i]
	return err
}

var formats = []imaging.Format{imaging.JPEG, imaging.JPEG, imaging.PNG, imaging.WebP, imaging.AVIF, 0}

func applyFormat(p *imageParse, v string) error {
	i, err := plugin.Choice("format", v, "jpeg", "jpg", "png", "webp", "avif", "auto")
	switch {
	case err != nil:
		return err
	case v == "auto":
		p.o.Auto, p.o.Format = true, NegotiateFormat(p.accept)
	case formats[i] == imaging.AVIF && !imaging.CanEncode(imaging.AVIF):
		return &plugin.ParamError{Param: "format", Reason: "avif is not available on this server"}
	default:
		p.o.Format = formats[i]
	}
	return nil
}

func applyQuality(p *imageParse, v string) (err error) {
	p.o.Quality, err = plugin.Int("q", v, 1, 100)
	return err
}

// NegotiateFormat picks the output format for format=auto from an Accept header: AVIF if the
// client takes it and this server encodes it, else WebP if the client takes it, else JPEG. Only
// explicit image/avif and image/webp entries count (with a q above 0), not wildcards.
func NegotiateFormat(accept string) imaging.Format {
	avif, webp := false, false
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		if mt != "image/avif" && mt != "image/webp" {
			continue
		}
		ok := true
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || x <= 0 {
					ok = false
				}
			}
		}
		if ok {
			avif = avif || mt == "image/avif"
			webp = webp || mt == "image/webp"
		}
	}
	switch {
	case avif && imaging.CanEncode(imaging.AVIF):
		return imaging.AVIF
	case webp:
		return imaging.WebP
	}
	return imaging.JPEG
}

// CleanPath checks and cleans the {path} of /img/{path}: it must be relative, without ".."
// segments, NUL or control characters; "." segments and repeated slashes are dropped. Errors are
// *ParamErrors for the parameter "path".
func CleanPath(p string) (string, error) {
	bad := func(reason string) (string, error) { return "", &plugin.ParamError{Param: "path", Reason: reason} }
	if p == "" {
		return bad("no image path given")
	}
	if strings.HasPrefix(p, "/") {
		return bad("must be relative")
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f {
			return bad("contains a control character")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return bad(`must not contain ".." segments`)
		}
	}
	c := path.Clean(p)
	if c == "." || c == "" {
		return bad("no image path given")
	}
	if len(c) > 1024 {
		return bad("is longer than 1024 bytes")
	}
	return c, nil
}

// targetBox is the resize the pipeline does for an sw x sh source: the box and fit for
// imaging.Resize, or ok false for none. One given side scales the other proportionally; the
// result's sides never exceed maxPx (the other side is bounded by it too), and an image without a
// requested size is only ever shrunk, to maxPx on its longer side.
func targetBox(sw, sh int, o ImageOptions, maxPx int) (w, h int, fit imaging.Fit, ok bool) {
	switch {
	case o.Width > 0 && o.Height > 0:
		return o.Width, o.Height, o.Fit, true
	case o.Width > 0:
		return o.Width, maxPx, imaging.FitContain, true
	case o.Height > 0:
		return maxPx, o.Height, imaging.FitContain, true
	case sw > maxPx || sh > maxPx:
		return maxPx, maxPx, imaging.FitContain, true
	}
	return 0, 0, 0, false
}
