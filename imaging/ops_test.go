package imaging

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"testing"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/styleproxy/styleproxy/internal/testutil"
)

func TestParseFit(t *testing.T) {
	for _, f := range []Fit{FitContain, FitCover, FitFill} {
		got, err := ParseFit(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFit(%q) = %v, %v", f.String(), got, err)
		}
	}
	for _, s := range []string{"", "Cover", "inside", "crop"} {
		if _, err := ParseFit(s); err == nil {
			t.Errorf("ParseFit(%q) accepted", s)
		}
	}
	if FitContain != 0 {
		t.Error("the zero Fit must be contain")
	}
}

func TestFitSize(t *testing.T) {
	for _, tc := range []struct {
		sw, sh, w, h int
		fit          Fit
		ow, oh       int
	}{
		{1024, 768, 300, 0, FitContain, 300, 225},
		{1024, 768, 0, 300, FitCover, 400, 300},
		{1024, 768, 0, 0, FitFill, 1024, 768},
		{1024, 768, 300, 300, FitContain, 300, 225},
		{768, 1024, 300, 300, FitContain, 225, 300},
		{1024, 768, 300, 300, FitCover, 300, 300},
		{1024, 768, 300, 100, FitFill, 300, 100},
		{1024, 768, 2048, 2048, FitContain, 2048, 1536}, // enlarges
		{400, 266, 100, 0, FitContain, 100, 67},         // 66.5 rounds up
		{1000, 1, 10, 0, FitContain, 10, 1},             // never below 1
		{1, 1000, 0, 10, FitContain, 1, 10},
		{1000, 1000, 300, 200, FitContain, 200, 200},
		{0, 10, 5, 5, FitContain, 0, 10}, // nonsense in, unchanged out
	} {
		ow, oh := FitSize(tc.sw, tc.sh, tc.w, tc.h, tc.fit)
		if ow != tc.ow || oh != tc.oh {
			t.Errorf("FitSize(%dx%d into %dx%d %v) = %dx%d, want %dx%d", tc.sw, tc.sh, tc.w, tc.h, tc.fit, ow, oh, tc.ow, tc.oh)
		}
	}
	// Contain always fits inside the box, with one side touching it.
	for sw := 1; sw < 60; sw += 7 {
		for sh := 1; sh < 60; sh += 5 {
			for _, box := range [][2]int{{1, 1}, {10, 3}, {3, 10}, {17, 17}, {100, 40}} {
				ow, oh := FitSize(sw, sh, box[0], box[1], FitContain)
				if ow > box[0] || oh > box[1] || (ow != box[0] && oh != box[1]) || ow < 1 || oh < 1 {
					t.Fatalf("contain %dx%d into %v gave %dx%d", sw, sh, box, ow, oh)
				}
			}
		}
	}
}

// quadrants is a w x h image whose four quadrants are red, green, blue and white, to see where a
// crop or a resize took its pixels from.
func quadrants(t testing.TB, w, h int) *Image {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	cols := []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 255}}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			q := 0
			if x >= w/2 {
				q++
			}
			if y >= h/2 {
				q += 2
			}
			m.SetNRGBA(x, y, cols[q])
		}
	}
	return decode(t, encodePNG(t, m))
}

func TestResizeFits(t *testing.T) {
	for _, tc := range []struct {
		w, h   int
		fit    Fit
		ow, oh int
	}{
		{100, 100, FitCover, 100, 100},
		{100, 100, FitContain, 100, 50},
		{100, 100, FitFill, 100, 100},
		{50, 0, FitCover, 50, 25},
		{0, 30, FitFill, 60, 30},
		{400, 300, FitContain, 400, 200}, // enlarges
		{0, 0, FitCover, 200, 100},
	} {
		t.Run(fmt.Sprintf("%dx%d-%v", tc.w, tc.h, tc.fit), func(t *testing.T) {
			im := quadrants(t, 200, 100)
			if err := im.Resize(tc.w, tc.h, tc.fit); err != nil {
				t.Fatal(err)
			}
			if w, h := im.Size(); w != tc.ow || h != tc.oh {
				t.Fatalf("got %dx%d, want %dx%d", w, h, tc.ow, tc.oh)
			}
		})
	}
	// Cover crops the centre: a 200x100 image into a 50x100 box keeps x in [75, 125), which
	// straddles the red/green border (top) and the blue/white one (bottom) in equal halves.
	im := quadrants(t, 200, 100)
	if err := im.Resize(50, 100, FitCover); err != nil {
		t.Fatal(err)
	}
	p := rgbOf(t, im)
	at := func(x, y int) [3]uint8 {
		i := 3 * (y*p.Width + x)
		return [3]uint8{p.Pix[i], p.Pix[i+1], p.Pix[i+2]}
	}
	if c := at(2, 2); c[0] < 200 || c[1] > 50 {
		t.Errorf("top-left of the cover crop is %v, want red", c)
	}
	if c := at(47, 2); c[1] < 200 || c[0] > 50 {
		t.Errorf("top-right of the cover crop is %v, want green", c)
	}
	if c := at(47, 97); c[0] < 200 || c[1] < 200 || c[2] < 200 {
		t.Errorf("bottom-right of the cover crop is %v, want white", c)
	}

	if err := quadrants(t, 20, 10).Resize(-1, 5, FitCover); !errors.Is(err, ErrZeroSize) {
		t.Errorf("negative side: %v, want ErrZeroSize", err)
	}
}

func TestResizeDeterministic(t *testing.T) {
	data := testutil.ReadShared(t, "images/tubingen.jpg")
	var first []byte
	for i := 0; i < 3; i++ {
		im := decode(t, data)
		if err := im.Resize(333, 222, FitCover); err != nil {
			t.Fatal(err)
		}
		if err := im.Blur(1.5); err != nil {
			t.Fatal(err)
		}
		out, err := im.Encode(WebP, 80)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = out
		} else if string(out) != string(first) {
			t.Fatal("the same resize, blur and encode gave different bytes")
		}
	}
}

func TestCrop(t *testing.T) {
	im := quadrants(t, 20, 10)
	if err := im.Crop(10, 5, 10, 5); err != nil {
		t.Fatal(err)
	}
	p := rgbOf(t, im)
	if p.Width != 10 || p.Height != 5 {
		t.Fatalf("cropped to %dx%d", p.Width, p.Height)
	}
	for i, v := range p.Pix {
		if v != 255 {
			t.Fatalf("byte %d of the white quadrant is %d", i, v)
		}
	}
	for _, r := range [][4]int{{-1, 0, 5, 5}, {0, 0, 11, 6}, {8, 0, 5, 5}} {
		if err := quadrants(t, 10, 5).Crop(r[0], r[1], r[2], r[3]); err == nil {
			t.Errorf("crop %v of a 10x5 image accepted", r)
		}
	}
	if err := quadrants(t, 10, 5).Crop(0, 0, 0, 5); !errors.Is(err, ErrZeroSize) {
		t.Errorf("empty crop: %v, want ErrZeroSize", err)
	}
}

func TestGrayscaleAndBlur(t *testing.T) {
	im := decode(t, testutil.ReadShared(t, "images/kitten.jpg"))
	if err := im.Grayscale(); err != nil {
		t.Fatal(err)
	}
	p := rgbOf(t, im)
	if p.Width != 400 || p.Height != 266 {
		t.Fatalf("grayscale changed the size to %dx%d", p.Width, p.Height)
	}
	for i := 0; i < len(p.Pix); i += 3 {
		if p.Pix[i] != p.Pix[i+1] || p.Pix[i] != p.Pix[i+2] {
			t.Fatalf("pixel %d is %v after grayscale", i/3, p.Pix[i:i+3])
		}
	}

	// A blur spreads a hard edge: the column beside a black/white border turns grey.
	m := image.NewNRGBA(image.Rect(0, 0, 40, 10))
	for y := 0; y < 10; y++ {
		for x := 0; x < 40; x++ {
			v := uint8(0)
			if x >= 20 {
				v = 255
			}
			m.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
		}
	}
	im = decode(t, encodePNG(t, m))
	if err := im.Blur(2); err != nil {
		t.Fatal(err)
	}
	p = rgbOf(t, im)
	if w, h := im.Size(); w != 40 || h != 10 {
		t.Fatalf("blur changed the size to %dx%d", w, h)
	}
	if v := p.Pix[3*(5*40+19)]; v < 60 || v > 195 {
		t.Errorf("pixel left of the edge is %d after blur, want grey", v)
	}
	if v := p.Pix[3*(5*40+2)]; v != 0 {
		t.Errorf("pixel far from the edge is %d after blur, want 0", v)
	}
	for _, s := range []float64{0, -1, MaxBlurSigma + 1} {
		if err := im.Blur(s); err == nil {
			t.Errorf("Blur(%v) accepted", s)
		}
	}
}

func TestProbe(t *testing.T) {
	for _, si := range sharedImages {
		info, err := Probe(testutil.ReadShared(t, "images/"+si.name), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", si.name, err)
		}
		if info.Width != si.w || info.Height != si.h || info.Type != "jpeg" || info.Format != JPEG {
			t.Errorf("%s: Probe = %+v, want %dx%d jpeg", si.name, info, si.w, si.h)
		}
	}
	png := encodePNG(t, image.NewGray(image.Rect(0, 0, 7, 3)))
	if info, err := Probe(png, Limits{}); err != nil || info.Format != PNG || info.Width != 7 || info.Height != 3 {
		t.Errorf("PNG: Probe = %+v, %v", info, err)
	}

	// The EXIF orientation is applied to the size, as Decode applies it.
	ref, err := vips.NewImageFromBuffer(testutil.ReadShared(t, "images/kitten.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if err := ref.SetOrientation(6); err != nil {
		t.Fatal(err)
	}
	turned, _, err := ref.ExportJpeg(vips.NewJpegExportParams())
	if err != nil {
		t.Fatal(err)
	}
	info, err := Probe(turned, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if w, h := decode(t, turned).Size(); info.Width != w || info.Height != h || w != 266 {
		t.Errorf("orientation 6: Probe says %dx%d, Decode gives %dx%d", info.Width, info.Height, w, h)
	}

	// Limits and refusals, without decoding pixels.
	start := time.Now()
	if _, err := Probe(testutil.BombPNG(50000, 50000, 1), Limits{MaxPixels: 50_000_000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("bomb: %v, want ErrTooLarge", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing the bomb took %v", d)
	}
	if _, err := Probe(png, Limits{MaxBytes: 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over MaxBytes: %v, want ErrTooLarge", err)
	}
	for name, data := range map[string][]byte{"empty": nil, "text": []byte("hello, this is not an image")} {
		if _, err := Probe(data, Limits{}); !errors.Is(err, ErrNotImage) {
			t.Errorf("%s: %v, want ErrNotImage", name, err)
		}
	}
	if _, err := Probe([]byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`), Limits{}); !errors.Is(err, ErrUnsupportedFormat) && !errors.Is(err, ErrNotImage) {
		t.Errorf("svg: %v, want a refusal", err)
	}
}
