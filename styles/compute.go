package styles

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
)

const (
	// DefaultStyleSize is the shorter side, in pixels, a style image is scaled to before its Gram
	// targets are computed, when the caller does not choose (the CLI's and the HTTP API's default;
	// AddOptions.StyleSize 0 keeps the upload's size). It matches stylize's --style-size default
	// and the reference's scale: Gram matrices are normalised by the feature map's size, so the
	// style size sets the scale of the brush strokes rather than the targets' magnitude, and
	// registration stays a fraction of a second on a CPU.
	DefaultStyleSize = 192
	// MaxStyleSize is the largest style size accepted.
	MaxStyleSize = 4096
	// MaxNetworkPixels caps the pixels of the style image that go through the network (it
	// matters when StyleSize is 0 and the upload is kept at its own size).
	MaxNetworkPixels = MaxStyleSize * MaxStyleSize
	// DefaultPreset is the preset a registration gets when it names none.
	DefaultPreset = "starry_night"
	// ThumbnailSize is the largest side of a thumbnail, in pixels.
	ThumbnailSize = 256
	// MaxWeight bounds every loss weight.
	MaxWeight = 1e12

	thumbQuality = 85
)

// TargetComputer is what registration needs from the engine (*engine.Engine satisfies it).
type TargetComputer interface {
	StyleTargets(*engine.Image) (engine.StyleTargets, error)
}

// AddOptions are a registration's settings.
type AddOptions struct {
	// Preset names the base loss weights (engine.Presets; "" = DefaultPreset).
	Preset string
	// StyleSize is the shorter side the image is scaled to before computing its targets
	// (0 = keep the upload's size; callers wanting the default pass DefaultStyleSize).
	StyleSize int
	// Content, Style and TV override the preset's weights when not nil.
	Content *float64
	Style   *[4]float64
	TV      *float64
	// Replace allows registering a name that exists (giving it a new version).
	Replace bool
	// Limits bound the upload (bytes, and pixels as declared by its header).
	Limits imaging.Limits
}

// PresetNames are the preset names, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(engine.Presets))
	for n := range engine.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// settings are AddOptions resolved and checked.
type settings struct {
	preset  string
	size    int
	weights engine.Weights
}

func resolveOptions(o AddOptions) (settings, error) {
	s := settings{preset: o.Preset, size: o.StyleSize}
	if s.preset == "" {
		s.preset = DefaultPreset
	}
	switch {
	case s.size < 0 || s.size > MaxStyleSize:
		return s, fmt.Errorf("%w: style size must be between 0 and %d, got %d", ErrInvalidOptions, MaxStyleSize, s.size)
	case s.size != 0 && s.size < engine.MinSide:
		return s, fmt.Errorf("%w: style size must be at least %d (or 0 for the image's own size), got %d", ErrInvalidOptions, engine.MinSide, s.size)
	}
	w, err := ResolveWeights(s.preset, o.Content, o.Style, o.TV)
	s.weights = w
	return s, err
}

// ParseStyleWeights parses per-layer style weights as the CLI and the admin API take them:
// four comma-separated numbers, for layers 1, 4, 6 and 7 ("a,b,c,d"). ResolveWeights checks
// their range. Errors wrap ErrInvalidOptions.
func ParseStyleWeights(s string) (*[4]float64, error) {
	var w [4]float64
	parts := strings.Split(s, ",")
	if len(parts) != len(w) {
		return nil, fmt.Errorf("%w: needs %d comma-separated style weights, got %q", ErrInvalidOptions, len(w), s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: style weight %q is not a number", ErrInvalidOptions, p)
		}
		w[i] = v
	}
	return &w, nil
}

// ResolveWeights starts from the preset's loss weights and applies the overrides that are not
// nil, checking each against MaxWeight. Errors wrap ErrInvalidOptions.
func ResolveWeights(preset string, content *float64, style *[4]float64, tv *float64) (engine.Weights, error) {
	w, ok := engine.Presets[preset]
	if !ok {
		return w, fmt.Errorf("%w: unknown preset %q (known: %s)", ErrInvalidOptions, preset, strings.Join(PresetNames(), ", "))
	}
	check := func(what string, v float64) error {
		if !(v >= 0 && v <= MaxWeight) {
			return fmt.Errorf("%w: %s must be a number between 0 and %g, got %v", ErrInvalidOptions, what, MaxWeight, v)
		}
		return nil
	}
	if content != nil {
		if err := check("content weight", *content); err != nil {
			return w, err
		}
		w.Content = *content
	}
	if tv != nil {
		if err := check("TV weight", *tv); err != nil {
			return w, err
		}
		w.TV = *tv
	}
	if style != nil {
		for i, v := range style {
			if err := check(fmt.Sprintf("style weight %d", i+1), v); err != nil {
				return w, err
			}
		}
		w.Style = *style
	}
	return w, nil
}

// prepare decodes the upload, computes its Gram targets at the style size and its thumbnail: a
// Record whose Style has only its Targets.
// Errors about the image wrap the imaging sentinels, ErrTooSmall or ErrInvalidOptions.
func prepare(ctx context.Context, tc TargetComputer, data []byte, size int, lim imaging.Limits) (*Record, error) {
	im, err := imaging.Decode(data, lim)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	w, h := im.Size()
	if nw, nh := imaging.ShorterSideSize(w, h, size); int64(nw)*int64(nh) > MaxNetworkPixels {
		if size == 0 {
			return nil, fmt.Errorf("%w: %dx%d is over %d pixels: give a style size to scale it down", imaging.ErrTooLarge, w, h, MaxNetworkPixels)
		}
		return nil, fmt.Errorf("%w: at style size %d the image is %dx%d, over %d pixels", ErrInvalidOptions, size, nw, nh, MaxNetworkPixels)
	}
	if err := im.ResizeShorterSide(size); err != nil {
		return nil, err
	}
	rgb, err := im.RGB()
	if err != nil {
		return nil, err
	}
	if rgb.Width < engine.MinSide || rgb.Height < engine.MinSide {
		how := "as uploaded"
		if size > 0 {
			how = fmt.Sprintf("at style size %d", size)
		}
		return nil, fmt.Errorf("%w: %dx%d %s, the network needs at least %dx%d pixels", ErrTooSmall, rgb.Width, rgb.Height, how, engine.MinSide, engine.MinSide)
	}
	eim, err := engine.FromRGB(rgb.Width, rgb.Height, rgb.Pix)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	targets, err := tc.StyleTargets(eim)
	if err != nil {
		return nil, fmt.Errorf("styles: compute targets: %w", err)
	}
	thumb, err := thumbnail(data, lim)
	if err != nil {
		return nil, err
	}
	ext, mt := sniffImage(data)
	return &Record{Style: &Style{Targets: targets}, Image: data, ImageExt: ext, ImageType: mt, Thumb: thumb, Width: rgb.Width, Height: rgb.Height}, nil
}

// thumbnail scales the image to fit in ThumbnailSize×ThumbnailSize (never enlarging it) as JPEG.
func thumbnail(data []byte, lim imaging.Limits) ([]byte, error) {
	im, err := imaging.Decode(data, lim)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	w, h := im.Size()
	if long := max(w, h); long > ThumbnailSize {
		nw := max(1, int(math.Round(float64(w)*ThumbnailSize/float64(long))))
		nh := max(1, int(math.Round(float64(h)*ThumbnailSize/float64(long))))
		if err := im.ResizeExact(nw, nh); err != nil {
			return nil, err
		}
	}
	return im.Encode(imaging.JPEG, thumbQuality)
}

// sniffImage names the upload's format for its file name and media type (the bytes were decoded
// already, so this only labels them).
func sniffImage(b []byte) (ext, mimeType string) {
	switch {
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return ".jpg", "image/jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return ".png", "image/png"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return ".gif", "image/gif"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return ".webp", "image/webp"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return ".tiff", "image/tiff"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		switch string(b[8:12]) {
		case "avif", "avis":
			return ".avif", "image/avif"
		default:
			return ".heic", "image/heif"
		}
	}
	return ".bin", "application/octet-stream"
}
