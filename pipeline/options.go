package pipeline

import (
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// The query parameters the pipeline itself owns; filters may not claim them.
var coreParams = append(imageAppliers.Names(), "sig", "preset")

// DefaultQuality is the encoder quality (JPEG, WebP, AVIF) when a URL gives no q.
const DefaultQuality = 85

// ImageOptions are the pipeline's own parsed, validated and canonical options: the output size,
// fit, format, quality and the geometry and finishing options around the filters. The zero value
// means "as the source": its size (bounded by the pipeline's MaxOutputPx), its format (if the
// pipeline encodes it, else JPEG), upright, enlarged if asked to, nothing added.
type ImageOptions struct {
	// Width and Height are the box (0 = not given), dpr already applied. With one of them the
	// image is scaled to it keeping its aspect ratio; with both, Fit says how.
	Width, Height int
	// Fit applies when both Width and Height are given; canonically FitContain otherwise.
	Fit imaging.Fit
	// Gravity is what FitCover keeps; canonically GravityCenter for other fits.
	Gravity imaging.Gravity
	// NoEnlarge (enlarge=false): a box larger than the source does not enlarge it.
	NoEnlarge bool
	// Rotate turns the image clockwise (0, 90, 180, 270) after its EXIF orientation, before the
	// resize: Width and Height are the rotated image's.
	Rotate int
	// Sharpen is the sigma of the sharpening applied after the filters (0 = none).
	Sharpen float64
	// Background, if HasBackground, is the colour of Pad's padding and of a transparent
	// source's background; else they are white. Canonically white is not HasBackground.
	Background    imaging.Color
	HasBackground bool
	// Pad (with FitContain and both sides) pads the fitted image to exactly the box.
	Pad bool
	// CacheBuster (cb) is opaque: it changes the cache key and nothing else.
	CacheBuster string
	// Format is the output format; 0 means the source's.
	Format imaging.Format
	// Auto is set for format=auto: Format was picked from the request's Accept header, and the
	// response varies by it.
	Auto bool
	// Quality is the encoder quality, 1-100; canonically 0 for PNG, which ignores it.
	Quality int
}

// Key is the canonical text of the options for the cache key. Options that give the same image
// give the same key: fit is left out unless both sides are given, q for PNG, format=auto is keyed
// by the format it picked, dpr is folded into the size, and options at their defaults add nothing
// (so the keys of URLs without them are what they were before those options existed).
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
	for _, f := range []struct {
		set  bool
		text string
	}{
		{o.Gravity != imaging.GravityCenter, ",gravity=" + o.Gravity.String()},
		{o.NoEnlarge, ",enlarge=false"},
		{o.Rotate != 0, ",rotate=" + strconv.Itoa(o.Rotate)},
		{o.Sharpen != 0, ",sharpen=" + strconv.FormatFloat(o.Sharpen, 'f', 1, 64)},
		{o.HasBackground, ",bg=" + o.Background.Hex()},
		{o.Pad, ",pad=true"},
		{o.CacheBuster != "", ",cb=" + strconv.Quote(o.CacheBuster)},
	} {
		if f.set {
			b.WriteString(f.text)
		}
	}
	return b.String()
}

// ParseImageOptions parses the pipeline's own parameters (see imageAppliers) from q; accept is
// the request's Accept header, for format=auto. Sides over maxOutputPx are refused; dpr scales
// the sides, down to maxOutputPx where it would exceed it. Errors are *ParamErrors.
func ParseImageOptions(q url.Values, maxOutputPx int, accept string) (ImageOptions, error) {
	p := imageParse{o: ImageOptions{Quality: DefaultQuality}, dpr: 1, maxOutputPx: maxOutputPx, accept: accept}
	if err := imageAppliers.Apply(&p, q); err != nil {
		return ImageOptions{}, err
	}
	p.o.Width, p.o.Height = scaleByDPR(p.o.Width, p.o.Height, p.dpr, maxOutputPx)
	both := p.o.Width > 0 && p.o.Height > 0
	if !both {
		p.o.Fit = imaging.FitContain // fit only means something with both sides
	}
	if p.o.Fit != imaging.FitCover {
		p.o.Gravity = imaging.GravityCenter // only a crop has a gravity
	}
	if !both || p.o.Fit != imaging.FitContain {
		p.o.Pad = false // only a fitted image leaves room to pad
	}
	if p.o.Width == 0 && p.o.Height == 0 {
		p.o.NoEnlarge = false // without a box the image is only ever shrunk
	}
	if p.o.Background == imaging.White {
		p.o.Background, p.o.HasBackground = imaging.Color{}, false
	}
	if p.o.Format == imaging.PNG {
		p.o.Quality = 0
	}
	return p.o, nil
}

// background is the colour of padding and of a transparent source's background.
func (o ImageOptions) background() imaging.Color {
	if o.HasBackground {
		return o.Background
	}
	return imaging.White
}

// scaleByDPR multiplies the given sides by dpr, rounding, scaled down together so that neither
// exceeds maxPx: a device pixel ratio never makes a URL invalid.
func scaleByDPR(w, h int, dpr float64, maxPx int) (int, int) {
	if dpr == 1 {
		return w, h
	}
	if long := float64(max(w, h)); long*dpr > float64(maxPx) {
		dpr = float64(maxPx) / long
	}
	scale := func(v int) int {
		if v == 0 {
			return 0
		}
		return max(1, int(math.Round(float64(v)*dpr)))
	}
	return scale(w), scale(h)
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

// targetBox is the resize the pipeline does for an sw x sh source (as rotated): the box and fit
// for imaging.Resize, or ok false for none. One given side scales the other proportionally; the
// result's sides never exceed maxPx (the other side is bounded by it too), and an image without a
// requested size is only ever shrunk, to maxPx on its longer side. With NoEnlarge, a box that
// would enlarge the image shrinks, keeping its aspect ratio, until it does not.
func targetBox(sw, sh int, o ImageOptions, maxPx int) (w, h int, fit imaging.Fit, ok bool) {
	switch {
	case o.Width > 0 && o.Height > 0:
		w, h, fit, ok = o.Width, o.Height, o.Fit, true
	case o.Width > 0:
		w, h, fit, ok = o.Width, maxPx, imaging.FitContain, true
	case o.Height > 0:
		w, h, fit, ok = maxPx, o.Height, imaging.FitContain, true
	case sw > maxPx || sh > maxPx:
		return maxPx, maxPx, imaging.FitContain, true
	default:
		return 0, 0, 0, false
	}
	if o.NoEnlarge {
		w, h = shrinkOnly(sw, sh, w, h, fit)
	}
	return w, h, fit, ok
}

// shrinkOnly is the largest box no larger than w x h, of its aspect ratio, whose result (with
// fit) is no larger than the sw x sh source on either side.
func shrinkOnly(sw, sh, w, h int, fit imaging.Fit) (int, int) {
	if rw, rh := imaging.FitSize(sw, sh, w, h, fit); rw <= sw && rh <= sh {
		return w, h
	}
	if fit == imaging.FitContain {
		return sw, sh // a contained image larger than the source is the source's size scaled up
	}
	round := func(a, b, c int) int { return max(1, int((2*int64(a)*int64(b)+int64(c))/(2*int64(c)))) }
	if int64(sw)*int64(h) <= int64(sh)*int64(w) { // the width is the tighter bound
		return sw, min(sh, round(h, sw, w))
	}
	return min(sw, round(w, sh, h)), sh
}

// rotatedSize is an sw x sh image's size after turning it by degrees.
func rotatedSize(sw, sh, degrees int) (int, int) {
	if degrees%180 == 90 {
		return sh, sw
	}
	return sw, sh
}
