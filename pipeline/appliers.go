package pipeline

import (
	"math"
	"regexp"
	"strconv"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// imageParse is ImageOptions being parsed, with what its appliers need to know.
type imageParse struct {
	o           ImageOptions
	dpr         float64
	maxOutputPx int
	accept      string
}

// imageAppliers are the pipeline's own parameters, one short applier each (the README's table
// documents them).
var imageAppliers = plugin.Appliers[imageParse]{
	"w":       applyWidth,
	"h":       applyHeight,
	"dpr":     applyDPR,
	"fit":     applyFit,
	"gravity": applyGravity,
	"enlarge": applyEnlarge,
	"rotate":  applyRotate,
	"sharpen": applySharpen,
	"bg":      applyBackground,
	"pad":     applyPad,
	"cb":      applyCacheBuster,
	"format":  applyFormat,
	"q":       applyQuality,
}

func applyWidth(p *imageParse, v string) (err error) {
	p.o.Width, err = plugin.Int("w", v, 1, p.maxOutputPx)
	return err
}

func applyHeight(p *imageParse, v string) (err error) {
	p.o.Height, err = plugin.Int("h", v, 1, p.maxOutputPx)
	return err
}

// MaxDPR is the largest device pixel ratio a URL may give.
const MaxDPR = 4

func applyDPR(p *imageParse, v string) (err error) {
	p.dpr, err = plugin.Decimal("dpr", v, 1, MaxDPR)
	return err
}

var fits = []imaging.Fit{imaging.FitCover, imaging.FitContain, imaging.FitFill}

func applyFit(p *imageParse, v string) error {
	i, err := plugin.Choice("fit", v, "cover", "contain", "fill")
	p.o.Fit = fits[i]
	return err
}

func applyGravity(p *imageParse, v string) error {
	i, err := plugin.Choice("gravity", v, imaging.GravityNames...)
	p.o.Gravity = imaging.Gravity(i)
	return err
}

func applyEnlarge(p *imageParse, v string) error {
	enlarge, err := plugin.Bool("enlarge", v)
	p.o.NoEnlarge = !enlarge
	return err
}

func applyRotate(p *imageParse, v string) error {
	i, err := plugin.Choice("rotate", v, "0", "90", "180", "270")
	p.o.Rotate = 90 * i
	return err
}

// applySharpen takes a sigma, rounded to one decimal (the key's precision).
func applySharpen(p *imageParse, v string) error {
	s, err := plugin.Decimal("sharpen", v, 0.1, imaging.MaxSharpenSigma)
	p.o.Sharpen = math.Round(s*10) / 10
	return err
}

var hexColor = regexp.MustCompile(`^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// applyBackground takes RGB or RRGGBB in hex, without a '#'.
func applyBackground(p *imageParse, v string) error {
	if !hexColor.MatchString(v) {
		return &plugin.ParamError{Param: "bg", Reason: "must be a hex colour, RGB or RRGGBB (no #)"}
	}
	if len(v) == 3 {
		v = string([]byte{v[0], v[0], v[1], v[1], v[2], v[2]})
	}
	n, _ := strconv.ParseUint(v, 16, 32)
	p.o.Background, p.o.HasBackground = imaging.Color{R: uint8(n >> 16), G: uint8(n >> 8), B: uint8(n)}, true
	return nil
}

func applyPad(p *imageParse, v string) (err error) {
	p.o.Pad, err = plugin.Bool("pad", v)
	return err
}

// maxCacheBuster bounds cb: it is stored in every key.
const maxCacheBuster = 64

var cacheBuster = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,` + strconv.Itoa(maxCacheBuster) + `}$`)

func applyCacheBuster(p *imageParse, v string) error {
	if !cacheBuster.MatchString(v) {
		return &plugin.ParamError{Param: "cb", Reason: "must be 1 to " + strconv.Itoa(maxCacheBuster) + " of A-Z, a-z, 0-9, '.', '_', '~' and '-'"}
	}
	p.o.CacheBuster = v
	return nil
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
