package imaging

import (
	"fmt"

	"github.com/davidbyttow/govips/v2/vips"
)

// Color is an opaque 8-bit sRGB colour: a background for padding and for flattening alpha.
type Color struct{ R, G, B uint8 }

// White is the background Decode flattens transparency onto.
var White = Color{255, 255, 255}

// Hex is the colour as six lower-case hex digits ("ff8800").
func (c Color) Hex() string { return fmt.Sprintf("%02x%02x%02x", c.R, c.G, c.B) }

// Gravity is which part of an image FitCover keeps when it crops.
type Gravity int

// Gravities. The zero value is GravityCenter; the compass points keep that edge or corner;
// GravitySmart keeps the region libvips's attention measure finds most interesting (edges,
// skin tones and saturated colour).
const (
	GravityCenter Gravity = iota
	GravityNorth
	GravitySouth
	GravityEast
	GravityWest
	GravityNorthEast
	GravityNorthWest
	GravitySouthEast
	GravitySouthWest
	GravitySmart
)

// GravityNames are the gravities' names, in Gravity order: what String returns and URLs say.
var GravityNames = []string{"center", "north", "south", "east", "west", "north_east", "north_west", "south_east", "south_west", "smart"}

func (g Gravity) String() string {
	if g >= 0 && int(g) < len(GravityNames) {
		return GravityNames[g]
	}
	return fmt.Sprintf("Gravity(%d)", int(g))
}

// anchor is where a compass gravity puts the kept region along each axis: 0 start, 1 middle,
// 2 end.
func (g Gravity) anchor() (x, y int) {
	x, y = 1, 1
	switch g {
	case GravityNorth, GravityNorthEast, GravityNorthWest:
		y = 0
	case GravitySouth, GravitySouthEast, GravitySouthWest:
		y = 2
	}
	switch g {
	case GravityWest, GravityNorthWest, GravitySouthWest:
		x = 0
	case GravityEast, GravityNorthEast, GravitySouthEast:
		x = 2
	}
	return x, y
}

// CropAspect crops the image to the largest region with the aspect ratio of a w x h box, placed
// by gravity: the part FitCover keeps before it scales. It crops nothing when the aspect ratio is
// already the box's.
func (im *Image) CropAspect(w, h int, g Gravity) error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: crop to the aspect of %dx%d", ErrZeroSize, w, h)
	}
	sw, sh := ref.Width(), ref.Height()
	_, _, cw, ch := coverCrop(sw, sh, w, h)
	if cw == sw && ch == sh {
		return nil
	}
	if g == GravitySmart {
		if err := ref.SmartCrop(cw, ch, vips.InterestingAttention); err != nil {
			return fmt.Errorf("imaging: smart crop to %dx%d: %s", cw, ch, vipsMessage(err))
		}
		return nil
	}
	ax, ay := g.anchor()
	return im.Crop((sw-cw)*ax/2, (sh-ch)*ay/2, cw, ch)
}

// Rotate turns the image clockwise by 0, 90, 180 or 270 degrees.
func (im *Image) Rotate(degrees int) error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	angles := map[int]vips.Angle{90: vips.Angle90, 180: vips.Angle180, 270: vips.Angle270}
	a, ok := angles[degrees]
	switch {
	case degrees == 0:
		return nil
	case !ok:
		return fmt.Errorf("imaging: rotate by %d degrees: want 0, 90, 180 or 270", degrees)
	}
	if err := ref.Rotate(a); err != nil {
		return fmt.Errorf("imaging: rotate by %d: %s", degrees, vipsMessage(err))
	}
	return nil
}

// MaxSharpenSigma is the largest sigma Sharpen accepts.
const MaxSharpenSigma = 10

// Sharpen sharpens the image with libvips's unsharp mask on lightness, of Gaussian sigma pixels
// (0 < sigma <= MaxSharpenSigma), with libvips's default thresholds.
func (im *Image) Sharpen(sigma float64) error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	if !(sigma > 0 && sigma <= MaxSharpenSigma) {
		return fmt.Errorf("imaging: sharpen sigma %v is outside (0, %d]", sigma, MaxSharpenSigma)
	}
	if err := ref.Sharpen(sigma, 2, 3); err != nil {
		return fmt.Errorf("imaging: sharpen sigma %v: %s", sigma, vipsMessage(err))
	}
	if ref.Interpretation() != vips.InterpretationSRGB {
		if err := ref.ToColorSpace(vips.InterpretationSRGB); err != nil {
			return fmt.Errorf("imaging: sharpen: back to sRGB: %s", vipsMessage(err))
		}
	}
	return im.canonical("sharpen")
}

// Extend places the image in the middle of a w x h canvas of colour bg (a side smaller than the
// image's keeps the image's).
func (im *Image) Extend(w, h int, bg Color) error {
	ref, err := im.alive()
	if err != nil {
		return err
	}
	iw, ih := ref.Width(), ref.Height()
	w, h = max(w, iw), max(h, ih)
	if w == iw && h == ih {
		return nil
	}
	if err := ref.EmbedBackground((w-iw)/2, (h-ih)/2, w, h, &vips.Color{R: bg.R, G: bg.G, B: bg.B}); err != nil {
		return fmt.Errorf("imaging: extend to %dx%d: %s", w, h, vipsMessage(err))
	}
	return im.canonical("extend")
}
