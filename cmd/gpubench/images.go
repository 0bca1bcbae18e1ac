package main

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decodes the JPEG photos of ../shared/images
	"image/png"
	"os"

	"github.com/styleproxy/styleproxy/engine"
)

// decode reads a PNG or JPEG with the standard library, so the GPU host needs no libvips.
func decode(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	im, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

// resize samples src bilinearly onto a w×h RGBA image: good enough for timing, and the reference
// reads the very same pixels from the PNGs writePNG saves.
func resize(src image.Image, w, h int) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	sx, sy := float64(b.Dx())/float64(w), float64(b.Dy())/float64(h)
	for y := range h {
		fy := max((float64(y)+0.5)*sy-0.5, 0)
		y0 := min(int(fy), b.Dy()-1)
		y1, ty := min(y0+1, b.Dy()-1), fy-float64(y0)
		for x := range w {
			fx := max((float64(x)+0.5)*sx-0.5, 0)
			x0 := min(int(fx), b.Dx()-1)
			x1, tx := min(x0+1, b.Dx()-1), fx-float64(x0)
			var c [3]float64
			for _, p := range []struct {
				x, y int
				wt   float64
			}{{x0, y0, (1 - tx) * (1 - ty)}, {x1, y0, tx * (1 - ty)}, {x0, y1, (1 - tx) * ty}, {x1, y1, tx * ty}} {
				r, g, bl, _ := src.At(b.Min.X+p.x, b.Min.Y+p.y).RGBA()
				c[0] += p.wt * float64(r>>8)
				c[1] += p.wt * float64(g>>8)
				c[2] += p.wt * float64(bl>>8)
			}
			dst.Set(x, y, color.RGBA{uint8(c[0] + 0.5), uint8(c[1] + 0.5), uint8(c[2] + 0.5), 255})
		}
	}
	return dst
}

// toEngine normalises an RGBA image for the engine.
func toEngine(im *image.RGBA) (*engine.Image, error) {
	w, h := im.Rect.Dx(), im.Rect.Dy()
	pix := make([]uint8, 0, 3*w*h)
	for i := 0; i < len(im.Pix); i += 4 {
		pix = append(pix, im.Pix[i], im.Pix[i+1], im.Pix[i+2])
	}
	return engine.FromRGB(w, h, pix)
}

func writePNG(path string, im image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, im); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
