package imaging

import (
	"image"
	"image/color"
	"testing"
)

func pixelAt(t *testing.T, im *Image, x, y int) [3]uint8 {
	t.Helper()
	p := rgbOf(t, im)
	i := 3 * (y*p.Width + x)
	return [3]uint8{p.Pix[i], p.Pix[i+1], p.Pix[i+2]}
}

func near(c, want [3]uint8) bool {
	for i := range c {
		if d := int(c[i]) - int(want[i]); d < -40 || d > 40 {
			return false
		}
	}
	return true
}

var (
	red, green, blue, white = [3]uint8{255, 0, 0}, [3]uint8{0, 255, 0}, [3]uint8{0, 0, 255}, [3]uint8{255, 255, 255}
)

// A 200x100 quadrant image cropped to a square keeps its left half (west), right half (east) or
// middle (center); a 100x200 one cropped to a square keeps its top (north) or bottom (south).
func TestCropAspectGravity(t *testing.T) {
	for _, tc := range []struct {
		g            Gravity
		w, h         int
		topLeft, btm [3]uint8 // the colours at the crop's top-left and bottom-right
	}{
		{GravityWest, 200, 100, red, blue},
		{GravityEast, 200, 100, green, white},
		{GravityNorthWest, 200, 100, red, blue},
		{GravitySouthEast, 200, 100, green, white},
		{GravityNorth, 100, 200, red, green},
		{GravitySouth, 100, 200, blue, white},
		{GravityNorthEast, 100, 200, red, green},
	} {
		t.Run(tc.g.String(), func(t *testing.T) {
			im := quadrants(t, tc.w, tc.h)
			if err := im.ResizeAt(50, 50, FitCover, tc.g); err != nil {
				t.Fatal(err)
			}
			if w, h := im.Size(); w != 50 || h != 50 {
				t.Fatalf("size %dx%d, want 50x50", w, h)
			}
			if c := pixelAt(t, im, 2, 2); !near(c, tc.topLeft) {
				t.Errorf("top-left %v, want %v", c, tc.topLeft)
			}
			if c := pixelAt(t, im, 47, 47); !near(c, tc.btm) {
				t.Errorf("bottom-right %v, want %v", c, tc.btm)
			}
		})
	}
}

// Smart crop finds the one detailed patch in a flat grey image, wherever it is; a centre crop
// would miss it.
func TestCropAspectSmart(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 300, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 300; x++ {
			c := color.NRGBA{128, 128, 128, 255}
			if x >= 220 && x < 290 && y >= 20 && y < 80 && (x/4+y/4)%2 == 0 {
				c = color.NRGBA{255, 0, 40, 255}
			}
			m.SetNRGBA(x, y, c)
		}
	}
	im := decode(t, encodePNG(t, m))
	if err := im.CropAspect(1, 1, GravitySmart); err != nil {
		t.Fatal(err)
	}
	if w, h := im.Size(); w != 100 || h != 100 {
		t.Fatalf("size %dx%d, want 100x100", w, h)
	}
	p := rgbOf(t, im)
	reds := 0
	for i := 0; i < len(p.Pix); i += 3 {
		if p.Pix[i] > 200 && p.Pix[i+1] < 60 {
			reds++
		}
	}
	if reds < 1500 {
		t.Errorf("smart crop kept %d red pixels of the patch's ~2100", reds)
	}
}

func TestRotate(t *testing.T) {
	for _, tc := range []struct {
		deg     int
		w, h    int
		topLeft [3]uint8
	}{{0, 200, 100, red}, {90, 100, 200, blue}, {180, 200, 100, white}, {270, 100, 200, green}} {
		im := quadrants(t, 200, 100)
		if err := im.Rotate(tc.deg); err != nil {
			t.Fatal(err)
		}
		if w, h := im.Size(); w != tc.w || h != tc.h {
			t.Errorf("rotate %d: size %dx%d, want %dx%d", tc.deg, w, h, tc.w, tc.h)
		}
		if c := pixelAt(t, im, 2, 2); !near(c, tc.topLeft) {
			t.Errorf("rotate %d: top-left %v, want %v", tc.deg, c, tc.topLeft)
		}
	}
	if err := quadrants(t, 20, 10).Rotate(45); err == nil {
		t.Error("rotate 45: no error")
	}
}

func TestSharpenAndExtend(t *testing.T) {
	m := image.NewGray(image.Rect(0, 0, 64, 64)) // black left half, white right half
	for y := 0; y < 64; y++ {
		for x := 32; x < 64; x++ {
			m.SetGray(x, y, color.Gray{255})
		}
	}
	im := decode(t, encodePNG(t, m))
	if err := im.Blur(2); err != nil {
		t.Fatal(err)
	}
	blurred := rgbOf(t, im)
	if err := im.Sharpen(2); err != nil {
		t.Fatal(err)
	}
	sharp := rgbOf(t, im)
	// Sharpening steepens the blurred edge: the step across it grows.
	edge := func(p *RGB) int { return int(p.Pix[3*(16*64+34)]) - int(p.Pix[3*(16*64+29)]) }
	if edge(sharp) < edge(blurred)+20 {
		t.Errorf("edge step: blurred %d, sharpened %d", edge(blurred), edge(sharp))
	}
	if err := im.Sharpen(0); err == nil {
		t.Error("sharpen 0: no error")
	}
	if err := im.Extend(100, 64, Color{0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if w, h := im.Size(); w != 100 || h != 64 {
		t.Fatalf("extend: %dx%d, want 100x64", w, h)
	}
	if c := pixelAt(t, im, 2, 30); c != [3]uint8{} {
		t.Errorf("padding is %v, want black", c)
	}
	if c := pixelAt(t, im, 80, 2); !near(c, white) {
		t.Errorf("image's right half after padding is %v, want white", c)
	}
}

func TestDecodeOnFlattensOntoBackground(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 8, 8)) // fully transparent
	data := encodePNG(t, m)
	info, err := Probe(data, Limits{})
	if err != nil || !info.Alpha {
		t.Fatalf("Probe: %+v, %v; want Alpha", info, err)
	}
	im, err := DecodeOn(data, Limits{}, Color{0, 128, 255})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if c := pixelAt(t, im, 3, 3); c != [3]uint8{0, 128, 255} {
		t.Errorf("flattened pixel %v, want the background", c)
	}
}
