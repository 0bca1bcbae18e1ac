// Package grayscale holds two small libvips filters for the image pipeline, which show that the
// plugin API is not made for the style filter alone: Grayscale (?grayscale=1) and Blur
// (?blur=SIGMA, a Gaussian blur). Both are light: they run without a worker slot.
//
// Mount them with the pipeline:
//
//	cfg := pipeline.NewDefaultConfig()
//	cfg.Source, cfg.Filters = src, []plugin.Filter{grayscale.New(), grayscale.NewBlur()}
//	pipeline.Mount(e, cfg)
package grayscale

import (
	"context"
	"math"
	"net/url"
	"strconv"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// Grayscale turns images grey: grayscale=true (or 1); false (or 0) is the same as leaving it out.
type Grayscale struct{}

// New returns the grayscale filter.
func New() *Grayscale { return &Grayscale{} }

// Name returns "grayscale".
func (*Grayscale) Name() string { return "grayscale" }

// Params returns the one parameter, "grayscale".
func (*Grayscale) Params() []string { return grayAppliers.Names() }

var grayAppliers = plugin.Appliers[bool]{
	"grayscale": func(on *bool, v string) (err error) {
		*on, err = plugin.Bool("grayscale", v)
		return err
	},
}

// Parse reads grayscale=BOOL.
func (*Grayscale) Parse(_ context.Context, q url.Values) (plugin.Options, error) {
	var on bool
	if err := grayAppliers.Apply(&on, q); err != nil || !on {
		return nil, err
	}
	return grayOptions{}, nil
}

type grayOptions struct{}

func (grayOptions) Key() string { return "on" }
func (grayOptions) Heavy() bool { return false }
func (grayOptions) Apply(_ context.Context, img *imaging.Image, _ plugin.Progress) (*imaging.Image, error) {
	return img, img.Grayscale()
}

// MaxBlur is the largest sigma Blur accepts: a light filter must stay cheap on a 2048-pixel
// image.
const MaxBlur = 20

// Blur applies a Gaussian blur: blur=SIGMA, the standard deviation in output pixels, from 0.1
// to MaxBlur, rounded to one decimal (blur=2, blur=2.0 and blur=2.04 are the same blur).
type Blur struct{}

// NewBlur returns the blur filter.
func NewBlur() *Blur { return &Blur{} }

// Name returns "blur".
func (*Blur) Name() string { return "blur" }

// Params returns the one parameter, "blur".
func (*Blur) Params() []string { return blurAppliers.Names() }

var blurAppliers = plugin.Appliers[float64]{
	"blur": func(sigma *float64, v string) (err error) {
		*sigma, err = plugin.Decimal("blur", v, 0.1, MaxBlur)
		return err
	},
}

// Parse reads blur=SIGMA.
func (*Blur) Parse(_ context.Context, q url.Values) (plugin.Options, error) {
	sigma := 0.0
	if err := blurAppliers.Apply(&sigma, q); err != nil || sigma == 0 {
		return nil, err
	}
	return blurOptions{sigma: math.Round(sigma*10) / 10}, nil
}

type blurOptions struct{ sigma float64 }

func (o blurOptions) text() string { return strconv.FormatFloat(o.sigma, 'f', -1, 64) }
func (o blurOptions) Key() string  { return "sigma=" + o.text() }
func (blurOptions) Heavy() bool    { return false }
func (o blurOptions) Apply(_ context.Context, img *imaging.Image, _ plugin.Progress) (*imaging.Image, error) {
	return img, img.Blur(o.sigma)
}
