package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/styleproxy/styleproxy/internal/testutil"
)

func TestMain(m *testing.M) {
	Startup()
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// sharedImages are the photos in shared/images with their sizes (w x h).
var sharedImages = []struct {
	name string
	w, h int
}{
	{"composition_vii.jpg", 1071, 712},
	{"kitten.jpg", 400, 266},
	{"starry_night.jpg", 1280, 1014},
	{"stata.jpg", 600, 399},
	{"the_scream.jpg", 1200, 1528},
	{"tubingen.jpg", 1024, 768},
}

func decode(t testing.TB, data []byte) *Image {
	t.Helper()
	im, err := Decode(data, Limits{})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	t.Cleanup(im.Close)
	return im
}

func rgbOf(t testing.TB, im *Image) *RGB {
	t.Helper()
	p, err := im.RGB()
	if err != nil {
		t.Fatalf("RGB: %v", err)
	}
	return p
}

// toRGB converts a Go image to packed RGB (no alpha handling: for opaque images).
func toRGB(m image.Image) *RGB {
	b := m.Bounds()
	p := &RGB{Width: b.Dx(), Height: b.Dy(), Pix: make([]uint8, 0, 3*b.Dx()*b.Dy())}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			p.Pix = append(p.Pix, c.R, c.G, c.B)
		}
	}
	return p
}

// meanAbsDiff is the mean absolute difference of two same-size RGB images, per channel value.
func meanAbsDiff(t testing.TB, a, b *RGB) float64 {
	t.Helper()
	if a.Width != b.Width || a.Height != b.Height || len(a.Pix) != len(b.Pix) {
		t.Fatalf("size mismatch: %dx%d (%d bytes) vs %dx%d (%d bytes)", a.Width, a.Height, len(a.Pix), b.Width, b.Height, len(b.Pix))
	}
	var s float64
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		if d < 0 {
			d = -d
		}
		s += float64(d)
	}
	return s / float64(len(a.Pix))
}

func channelMeans(p *RGB) [3]float64 {
	var s [3]float64
	for i, v := range p.Pix {
		s[i%3] += float64(v)
	}
	n := float64(p.Width * p.Height)
	return [3]float64{s[0] / n, s[1] / n, s[2] / n}
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeSharedImages(t *testing.T) {
	for _, tc := range sharedImages {
		t.Run(tc.name, func(t *testing.T) {
			data := testutil.ReadShared(t, filepath.Join("images", tc.name))
			im := decode(t, data)
			if w, h := im.Size(); w != tc.w || h != tc.h {
				t.Fatalf("Size = %dx%d, want %dx%d", w, h, tc.w, tc.h)
			}
			p := rgbOf(t, im)
			if p.Width != tc.w || p.Height != tc.h || len(p.Pix) != 3*tc.w*tc.h {
				t.Fatalf("RGB is %dx%d with %d bytes", p.Width, p.Height, len(p.Pix))
			}
			// Go's JPEG decoder differs from libjpeg in IDCT rounding and chroma upsampling only: same
			// orientation, channel order and colours.
			gm, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if d := meanAbsDiff(t, p, toRGB(gm)); d > 3 {
				t.Errorf("mean |libvips - image/jpeg| = %.3f, want <= 3", d)
			}

			fim, err := DecodeFile(testutil.Shared(t, "images", tc.name), Limits{MaxBytes: int64(len(data)), MaxPixels: int64(tc.w * tc.h)})
			if err != nil {
				t.Fatalf("DecodeFile at exactly the limits: %v", err)
			}
			defer fim.Close()
			if fp := rgbOf(t, fim); !bytes.Equal(fp.Pix, p.Pix) {
				t.Error("DecodeFile and Decode disagree")
			}
		})
	}
}

// torchvisionSize is torchvision.transforms.Resize(size)'s output size, written as the Python is:
// short, long = sorted; new_long = int(size * long / short) in floating point.
func torchvisionSize(w, h, size int) (int, int) {
	if w <= h {
		return size, int(float64(size) * float64(h) / float64(w))
	}
	return int(float64(size) * float64(w) / float64(h)), size
}

func TestShorterSideSize(t *testing.T) {
	for _, tc := range []struct{ w, h, px, ww, wh int }{
		{1024, 768, 192, 256, 192},
		{768, 1024, 192, 192, 256},
		{1071, 712, 192, 288, 192}, // 288.80 truncates
		{1200, 1528, 512, 512, 651},
		{400, 266, 512, 769, 512}, // upscale: 769.92
		{100, 100, 64, 64, 64},
		{640, 480, 0, 640, 480},
		{640, 480, -3, 640, 480},
		{3, 1, 1, 3, 1},
	} {
		if w, h := ShorterSideSize(tc.w, tc.h, tc.px); w != tc.ww || h != tc.wh {
			t.Errorf("ShorterSideSize(%d, %d, %d) = %dx%d, want %dx%d", tc.w, tc.h, tc.px, w, h, tc.ww, tc.wh)
		}
	}
	for w := 1; w < 300; w += 7 {
		for h := 1; h < 300; h += 11 {
			for _, px := range []int{1, 64, 192, 256, 299} {
				gw, gh := ShorterSideSize(w, h, px)
				ww, wh := torchvisionSize(w, h, px)
				if gw != ww || gh != wh {
					t.Fatalf("ShorterSideSize(%d, %d, %d) = %dx%d, torchvision gives %dx%d", w, h, px, gw, gh, ww, wh)
				}
			}
		}
	}
}

func TestResizeShorterSide(t *testing.T) {
	for _, tc := range sharedImages {
		for _, px := range []int{192, 512} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, px), func(t *testing.T) {
				im := decode(t, testutil.ReadShared(t, filepath.Join("images", tc.name)))
				before := channelMeans(rgbOf(t, im))
				if err := im.ResizeShorterSide(px); err != nil {
					t.Fatal(err)
				}
				ww, wh := torchvisionSize(tc.w, tc.h, px)
				if w, h := im.Size(); w != ww || h != wh {
					t.Fatalf("ResizeShorterSide(%d) of %dx%d gave %dx%d, torchvision gives %dx%d", px, tc.w, tc.h, w, h, ww, wh)
				}
				p := rgbOf(t, im)
				if p.Width != ww || p.Height != wh || len(p.Pix) != 3*ww*wh {
					t.Fatalf("RGB after resize is %dx%d with %d bytes", p.Width, p.Height, len(p.Pix))
				}
				after := channelMeans(p)
				for c := range 3 {
					if d := after[c] - before[c]; d > 2 || d < -2 {
						t.Errorf("channel %d mean moved from %.2f to %.2f", c, before[c], after[c])
					}
				}
			})
		}
	}

	// The brief's example, spelled out: tubingen (1024x768) to 192 is 256x192.
	im := decode(t, testutil.ReadShared(t, "images/tubingen.jpg"))
	if err := im.ResizeShorterSide(192); err != nil {
		t.Fatal(err)
	}
	if w, h := im.Size(); w != 256 || h != 192 {
		t.Fatalf("tubingen at 192 is %dx%d, want 256x192", w, h)
	}
	for _, px := range []int{0, -1} {
		if err := im.ResizeShorterSide(px); err != nil {
			t.Fatalf("ResizeShorterSide(%d): %v", px, err)
		}
		if w, h := im.Size(); w != 256 || h != 192 {
			t.Fatalf("ResizeShorterSide(%d) changed the size to %dx%d", px, w, h)
		}
	}
}

func TestResizeExact(t *testing.T) {
	data := testutil.ReadShared(t, "images/kitten.jpg")
	for _, tc := range []struct {
		w, h int
		want error
	}{
		{128, 96, nil},
		{400, 266, nil}, // same size
		{1, 1, nil},
		{37, 501, nil},
		{1000, 9, nil},
		{0, 10, ErrZeroSize},
		{10, 0, ErrZeroSize},
		{-5, 10, ErrZeroSize},
		{20_000_000, 10, ErrTooLarge},
	} {
		im := decode(t, data)
		err := im.ResizeExact(tc.w, tc.h)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("ResizeExact(%d, %d) = %v, want %v", tc.w, tc.h, err, tc.want)
			continue
		}
		if err != nil {
			if w, h := im.Size(); w != 400 || h != 266 {
				t.Errorf("failed ResizeExact(%d, %d) changed the size to %dx%d", tc.w, tc.h, w, h)
			}
			continue
		}
		if w, h := im.Size(); w != tc.w || h != tc.h {
			t.Errorf("ResizeExact(%d, %d) gave %dx%d", tc.w, tc.h, w, h)
		}
		if p := rgbOf(t, im); len(p.Pix) != 3*tc.w*tc.h {
			t.Errorf("ResizeExact(%d, %d): RGB has %d bytes", tc.w, tc.h, len(p.Pix))
		}
	}

	// A uniform image stays uniform: the resampler neither rings nor shifts levels.
	flat := image.NewRGBA(image.Rect(0, 0, 50, 30))
	for i := 0; i < len(flat.Pix); i += 4 {
		flat.Pix[i], flat.Pix[i+1], flat.Pix[i+2], flat.Pix[i+3] = 200, 100, 7, 255
	}
	im := decode(t, encodePNG(t, flat))
	if err := im.ResizeExact(13, 71); err != nil {
		t.Fatal(err)
	}
	p := rgbOf(t, im)
	for i := 0; i < len(p.Pix); i += 3 {
		if p.Pix[i] != 200 || p.Pix[i+1] != 100 || p.Pix[i+2] != 7 {
			t.Fatalf("pixel %d of a resized flat image is %v, want [200 100 7]", i/3, p.Pix[i:i+3])
		}
	}
}

func TestRGBRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	random := &RGB{Width: 61, Height: 37, Pix: make([]uint8, 3*61*37)}
	rng.Read(random.Pix)

	photo := decode(t, testutil.ReadShared(t, "images/tubingen.jpg"))
	if err := photo.ResizeShorterSide(96); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		in   *RGB
	}{
		{"random", random},
		{"photo", rgbOf(t, photo)},
		{"1x1", &RGB{Width: 1, Height: 1, Pix: []uint8{1, 2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := FromRGB(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if w, h := im.Size(); w != tc.in.Width || h != tc.in.Height {
				t.Fatalf("FromRGB size %dx%d, want %dx%d", w, h, tc.in.Width, tc.in.Height)
			}
			if p := rgbOf(t, im); !bytes.Equal(p.Pix, tc.in.Pix) {
				t.Fatal("FromRGB then RGB changed pixels")
			}
			enc, err := im.Encode(PNG, 0)
			if err != nil {
				t.Fatal(err)
			}
			back := decode(t, enc)
			p := rgbOf(t, back)
			if p.Width != tc.in.Width || p.Height != tc.in.Height || !bytes.Equal(p.Pix, tc.in.Pix) {
				t.Fatal("FromRGB -> Encode(PNG) -> Decode -> RGB changed pixels")
			}
			// Go's PNG decoder agrees too: the PNG is plain 8-bit RGB.
			gm, err := png.Decode(bytes.NewReader(enc))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(toRGB(gm).Pix, tc.in.Pix) {
				t.Fatal("image/png reads different pixels from Encode(PNG)")
			}
		})
	}
}

func TestFromRGBErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *RGB
		want error
	}{
		{"nil", nil, ErrZeroSize},
		{"zero width", &RGB{Width: 0, Height: 3}, ErrZeroSize},
		{"negative height", &RGB{Width: 3, Height: -1}, ErrZeroSize},
		{"short pixels", &RGB{Width: 2, Height: 2, Pix: make([]uint8, 11)}, nil},
		{"long pixels", &RGB{Width: 2, Height: 2, Pix: make([]uint8, 13)}, nil},
	} {
		im, err := FromRGB(tc.in)
		if err == nil {
			im.Close()
			t.Errorf("%s: FromRGB succeeded", tc.name)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: FromRGB = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestAlphaFlattenedOntoWhite(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 5, 1))
	m.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 255})   // opaque red
	m.SetNRGBA(1, 0, color.NRGBA{0, 255, 0, 0})     // transparent green
	m.SetNRGBA(2, 0, color.NRGBA{0, 0, 0, 128})     // half-transparent black
	m.SetNRGBA(3, 0, color.NRGBA{10, 20, 30, 255})  // opaque
	m.SetNRGBA(4, 0, color.NRGBA{200, 100, 50, 51}) // 20% opaque
	data := encodePNG(t, m)
	if !bytes.Contains(data[:40], []byte("IHDR")) || data[25] != 6 {
		t.Fatalf("test PNG has colour type %d, want 6 (RGBA)", data[25])
	}
	p := rgbOf(t, decode(t, data))
	want := []uint8{255, 0, 0, 255, 255, 255, 127, 127, 127, 10, 20, 30, 244, 224, 214}
	for i := range want {
		if d := int(p.Pix[i]) - int(want[i]); d > 1 || d < -1 {
			t.Fatalf("flattened pixels %v, want %v (+-1)", p.Pix, want)
		}
	}
}

func TestGreyscale(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 256, 3))
	for y := range 3 {
		for x := range 256 {
			g.SetGray(x, y, color.Gray{uint8(x)})
		}
	}
	g16 := image.NewGray16(image.Rect(0, 0, 256, 2))
	for x := range 256 {
		g16.SetGray16(x, 0, color.Gray16{uint16(x)<<8 | 0x7f})
		g16.SetGray16(x, 1, color.Gray16{uint16(x) << 8})
	}
	var gj bytes.Buffer
	if err := jpeg.Encode(&gj, g, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		data []byte
		tol  int
	}{
		{"png8", encodePNG(t, g), 0},
		{"png16", encodePNG(t, g16), 1},
		{"jpeg", gj.Bytes(), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := decode(t, tc.data)
			if im.ref.Bands() != 3 || im.ref.BandFormat() != vips.BandFormatUchar {
				t.Fatalf("decoded to %d bands of format %v, want 3 uchar", im.ref.Bands(), im.ref.BandFormat())
			}
			p := rgbOf(t, im)
			for i := 0; i < len(p.Pix); i += 3 {
				r, gg, b := p.Pix[i], p.Pix[i+1], p.Pix[i+2]
				if r != gg || gg != b {
					t.Fatalf("pixel %d is %d,%d,%d: grey must give R=G=B", i/3, r, gg, b)
				}
				if d := int(r) - (i/3)%256; d > tc.tol || d < -tc.tol {
					t.Fatalf("pixel %d is %d, want %d (+-%d)", i/3, r, (i/3)%256, tc.tol)
				}
			}
		})
	}
}

func TestRGB16PNG(t *testing.T) {
	m := image.NewRGBA64(image.Rect(0, 0, 256, 1))
	for x := range 256 {
		m.SetRGBA64(x, 0, color.RGBA64{uint16(x) << 8, uint16(255-x)<<8 | 0xff, 0x8000, 0xffff})
	}
	p := rgbOf(t, decode(t, encodePNG(t, m)))
	for x := range 256 {
		got := p.Pix[3*x : 3*x+3]
		want := []int{x, 255 - x, 128}
		for c := range 3 {
			if d := int(got[c]) - want[c]; d > 1 || d < -1 {
				t.Fatalf("16-bit pixel %d is %v, want %v (+-1)", x, got, want)
			}
		}
	}
}

// TestOrientation writes tubingen as a JPEG with an EXIF orientation tag and checks that Decode
// turns it upright.
func TestOrientation(t *testing.T) {
	data := testutil.ReadShared(t, "images/tubingen.jpg")
	up := rgbOf(t, decode(t, data))
	w, h := up.Width, up.Height

	for _, tc := range []struct {
		orientation int
		ow, oh      int
		// stored turns the upright image into what a camera writes with that orientation tag
		// (libvips angles are clockwise; tag 6 means "turn 90 degrees clockwise to display").
		stored func(ref *vips.ImageRef) error
	}{
		{3, w, h, func(r *vips.ImageRef) error { return r.Rotate(vips.Angle180) }},
		{6, w, h, func(r *vips.ImageRef) error { return r.Rotate(vips.Angle270) }},
		{8, w, h, func(r *vips.ImageRef) error { return r.Rotate(vips.Angle90) }},
	} {
		t.Run(fmt.Sprint(tc.orientation), func(t *testing.T) {
			ref, err := vips.NewImageFromBuffer(data)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			if err := tc.stored(ref); err != nil {
				t.Fatal(err)
			}
			if err := ref.SetOrientation(tc.orientation); err != nil {
				t.Fatal(err)
			}
			p := vips.NewJpegExportParams()
			p.Quality = 95
			enc, _, err := ref.ExportJpeg(p)
			if err != nil {
				t.Fatal(err)
			}
			got := rgbOf(t, decode(t, enc))
			if got.Width != tc.ow || got.Height != tc.oh {
				t.Fatalf("orientation %d decoded to %dx%d, want %dx%d", tc.orientation, got.Width, got.Height, tc.ow, tc.oh)
			}
			if d := meanAbsDiff(t, got, up); d > 3 {
				t.Errorf("orientation %d: mean |decoded - upright| = %.2f: not turned upright", tc.orientation, d)
			}
		})
	}
}

func TestCMYKJPEG(t *testing.T) {
	data := testutil.ReadShared(t, "images/kitten.jpg")
	up := rgbOf(t, decode(t, data))
	ref, err := vips.NewImageFromBuffer(data)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if err := ref.ToColorSpace(vips.InterpretationCMYK); err != nil {
		t.Fatal(err)
	}
	p := vips.NewJpegExportParams()
	p.Quality = 95
	p.StripMetadata = true // no profile: libvips must fall back to its built-in CMYK profile
	enc, _, err := ref.ExportJpeg(p)
	if err != nil {
		t.Fatal(err)
	}
	im := decode(t, enc)
	if im.ref.Bands() != 3 {
		t.Fatalf("CMYK JPEG decoded to %d bands", im.ref.Bands())
	}
	if d := meanAbsDiff(t, rgbOf(t, im), up); d > 16 {
		t.Errorf("CMYK round trip: mean |diff| = %.2f, want <= 16 (read as RGB it would be ~100)", d)
	}
}

// TestGoldenPNG checks that the reference's exact-size PNGs decode to the very pixels Go's PNG
// decoder (and PIL) reads, so that the engine reproduces the reference's numbers.
func TestGoldenPNG(t *testing.T) {
	for _, tc := range []struct {
		name string
		w, h int
	}{
		{"golden/content_tubingen_128x96.png", 128, 96}, // width 128, height 96
		{"golden/style_starry_96x80.png", 96, 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := testutil.ReadShared(t, tc.name)
			p := rgbOf(t, decode(t, data))
			if p.Width != tc.w || p.Height != tc.h {
				t.Fatalf("decoded to %dx%d, want %dx%d (w x h)", p.Width, p.Height, tc.w, tc.h)
			}
			gm, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			want := toRGB(gm)
			if want.Width != tc.w || want.Height != tc.h {
				t.Fatalf("image/png reads %dx%d", want.Width, want.Height)
			}
			for i := range want.Pix {
				if p.Pix[i] != want.Pix[i] {
					px := i / 3
					t.Fatalf("pixel (%d, %d) channel %d: libvips %d, image/png %d", px%tc.w, px/tc.w, i%3, p.Pix[i], want.Pix[i])
				}
			}
		})
	}
}

func TestEncode(t *testing.T) {
	im := decode(t, testutil.ReadShared(t, "images/stata.jpg"))
	if err := im.ResizeShorterSide(128); err != nil {
		t.Fatal(err)
	}
	src := rgbOf(t, im)
	for _, tc := range []struct {
		format  Format
		quality int
		magic   string
		maxDiff float64
	}{
		{JPEG, 0, "\xff\xd8\xff", 3},
		{JPEG, 50, "\xff\xd8\xff", 8},
		{PNG, 0, "\x89PNG\r\n\x1a\n", 0},
		{PNG, 100, "\x89PNG\r\n\x1a\n", 0},
		{WebP, 0, "RIFF", 4},
		{WebP, 100, "RIFF", 3},
		{AVIF, 0, "", 6},
		{AVIF, 90, "", 4},
	} {
		t.Run(tc.format.String(), func(t *testing.T) {
			if tc.format == AVIF && !CanEncode(AVIF) {
				_, err := im.Encode(AVIF, tc.quality)
				if !errors.Is(err, ErrUnsupportedFormat) {
					t.Fatalf("Encode(AVIF) without support = %v, want ErrUnsupportedFormat", err)
				}
				t.Logf("this libvips cannot encode AVIF: %v", err)
				return
			}
			enc, err := im.Encode(tc.format, tc.quality)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(enc), tc.magic) {
				t.Fatalf("%v output starts %q", tc.format, enc[:min(12, len(enc))])
			}
			if tc.format == AVIF && string(enc[4:12]) != "ftypavif" {
				t.Fatalf("AVIF output starts %q", enc[:12])
			}
			back := decode(t, enc)
			d := meanAbsDiff(t, rgbOf(t, back), src)
			if d > tc.maxDiff {
				t.Errorf("%v q%d: mean |decoded - source| = %.3f, want <= %v", tc.format, tc.quality, d, tc.maxDiff)
			}
			t.Logf("%v q%d: %d bytes, mean |diff| %.3f", tc.format, tc.quality, len(enc), d)
		})
	}

	for _, tc := range []struct {
		format  Format
		quality int
		want    error
	}{
		{0, 80, ErrUnsupportedFormat},
		{Format(99), 80, ErrUnsupportedFormat},
		{JPEG, -1, nil},
		{JPEG, 101, nil},
	} {
		if _, err := im.Encode(tc.format, tc.quality); err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Encode(%v, %d) = %v, want an error (%v)", tc.format, tc.quality, err, tc.want)
		}
	}
	if !CanEncode(JPEG) || !CanEncode(PNG) || !CanEncode(WebP) || CanEncode(0) {
		t.Error("CanEncode: JPEG, PNG and WebP must be encodable, the zero Format not")
	}
	t.Logf("libvips %s; AVIF encode supported: %v", VipsVersion(), CanEncode(AVIF))
}

func TestFormatFromExt(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Format
		ok   bool
	}{
		{"out.jpg", JPEG, true},
		{"/a/b/OUT.JPEG", JPEG, true},
		{"x.png", PNG, true},
		{"x.Png", PNG, true},
		{"x.webp", WebP, true},
		{"x.avif", AVIF, true},
		{"x.gif", 0, false},
		{"x.tiff", 0, false},
		{"noext", 0, false},
		{"dir.jpg/noext", 0, false},
		{"", 0, false},
	} {
		f, err := FormatFromExt(tc.path)
		if tc.ok && (err != nil || f != tc.want) {
			t.Errorf("FormatFromExt(%q) = %v, %v; want %v", tc.path, f, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("FormatFromExt(%q) = %v, %v; want ErrUnsupportedFormat", tc.path, f, err)
		}
	}
	for f, want := range map[Format][3]string{
		JPEG: {"jpeg", ".jpg", "image/jpeg"},
		PNG:  {"png", ".png", "image/png"},
		WebP: {"webp", ".webp", "image/webp"},
		AVIF: {"avif", ".avif", "image/avif"},
	} {
		if got := [3]string{f.String(), f.Ext(), f.MIMEType()}; got != want {
			t.Errorf("%d: got %v, want %v", int(f), got, want)
		}
	}
}

// jpegClaiming rewrites the frame header (SOF0/SOF2) of a JPEG to declare w x h; the scan data is
// left as it is, far too little for that size.
func jpegClaiming(t testing.TB, jpg []byte, w, h int) []byte {
	t.Helper()
	out := bytes.Clone(jpg)
	for i := 2; i+9 < len(out); {
		if out[i] != 0xff {
			t.Fatalf("JPEG marker expected at %d", i)
		}
		marker, n := out[i+1], int(binary.BigEndian.Uint16(out[i+2:]))
		if marker == 0xc0 || marker == 0xc2 {
			binary.BigEndian.PutUint16(out[i+5:], uint16(h))
			binary.BigEndian.PutUint16(out[i+7:], uint16(w))
			return out
		}
		i += 2 + n
	}
	t.Fatal("no SOF0/SOF2 marker")
	return nil
}

func TestDecompressionBomb(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		dims string
	}{
		{"valid 20000x20000", testutil.BombPNG(20000, 20000, 20000), "20000x20000"},
		{"header 50000x50000", testutil.BombPNG(50000, 50000, 1), "50000x50000"},
		{"jpeg header 60000x60000", jpegClaiming(t, testutil.ReadShared(t, "images/kitten.jpg"), 60000, 60000), "60000x60000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("%d bytes on disk", len(tc.data))
			var before, after vips.MemoryStats
			vips.ReadVipsMemStats(&before)
			start := time.Now()
			im, err := Decode(tc.data, Limits{MaxBytes: 10 << 20, MaxPixels: 50_000_000})
			elapsed := time.Since(start)
			vips.ReadVipsMemStats(&after)
			if err == nil {
				im.Close()
				t.Fatal("decompression bomb decoded")
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decode = %v, want ErrTooLarge", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.dims) || !strings.Contains(msg, "50000000") {
				t.Errorf("error %q should give the size (%s) and the limit (50000000)", msg, tc.dims)
			}
			if elapsed > time.Second {
				t.Errorf("refusal took %v: the pixels were decoded", elapsed)
			}
			if grew := after.MemHigh - before.MemHigh; grew > 16<<20 {
				t.Errorf("libvips memory high-water grew by %d bytes: the pixels were allocated", grew)
			}
			t.Logf("refused in %v: %v", elapsed, err)
		})
	}
	// A modest valid "bomb" under the limit still decodes, to white-on-black nothing.
	im := decode(t, testutil.BombPNG(300, 200, 200))
	if w, h := im.Size(); w != 300 || h != 200 {
		t.Fatalf("small 1-bit PNG decoded to %dx%d", w, h)
	}
	for i, v := range rgbOf(t, im).Pix {
		if v != 0 {
			t.Fatalf("byte %d of an all-zero 1-bit PNG is %d", i, v)
		}
	}
}

func TestRefusals(t *testing.T) {
	jpg := testutil.ReadShared(t, "images/tubingen.jpg")
	rng := rand.New(rand.NewSource(7))
	random := make([]byte, 4096)
	rng.Read(random)

	corruptPNG := encodePNG(t, image.NewGray(image.Rect(0, 0, 64, 64)))
	corruptPNG = bytes.Clone(corruptPNG)
	if i := bytes.Index(corruptPNG, []byte("IDAT")); i > 0 {
		for j := i + 4; j < i+12 && j < len(corruptPNG); j++ {
			corruptPNG[j] ^= 0x5a
		}
	}

	for _, tc := range []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"nil", nil, Limits{}, ErrNotImage},
		{"empty", []byte{}, Limits{}, ErrNotImage},
		{"one byte", []byte{0xff}, Limits{}, ErrNotImage},
		{"random", random, Limits{}, ErrNotImage},
		{"text", []byte("hello, this is not an image at all\n"), Limits{}, ErrNotImage},
		{"jpeg magic only", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00"), Limits{}, ErrNotImage},
		{"truncated jpeg 100 bytes", jpg[:100], Limits{}, ErrNotImage},
		{"truncated jpeg half", jpg[:len(jpg)/2], Limits{}, ErrNotImage},
		{"png signature only", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x00"), Limits{}, ErrNotImage},
		{"corrupt png data", corruptPNG, Limits{}, ErrNotImage},
		{"gif header only", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00"), Limits{}, ErrNotImage},
		{"zero-size png", testutil.BombPNG(0, 0, 1), Limits{}, nil}, // ErrNotImage or ErrZeroSize
		{"svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>`), Limits{}, ErrUnsupportedFormat},
		{"pdf", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"), Limits{}, ErrUnsupportedFormat},
		{"bmp", append([]byte("BM"), make([]byte, 64)...), Limits{}, ErrUnsupportedFormat},
		{"over MaxBytes", jpg, Limits{MaxBytes: int64(len(jpg)) - 1}, ErrTooLarge},
		{"over MaxPixels by one", jpg, Limits{MaxPixels: 1024*768 - 1}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := Decode(tc.data, tc.lim)
			if err == nil {
				im.Close()
				t.Fatal("Decode succeeded")
			}
			if tc.want == nil {
				if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrZeroSize) {
					t.Fatalf("Decode = %v, want ErrNotImage or ErrZeroSize", err)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), "Stack:") {
				t.Errorf("error carries a stack trace: %q", err)
			}
			t.Logf("%v", err)
		})
	}

	// Limits name the size and the limit.
	_, err := Decode(jpg, Limits{MaxBytes: 1000})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes", len(jpg))) || !strings.Contains(err.Error(), "1000 bytes") {
		t.Errorf("MaxBytes error %v should name the size and the limit", err)
	}
	_, err = Decode(jpg, Limits{MaxPixels: 1000})
	if err == nil || !strings.Contains(err.Error(), "1024x768") || !strings.Contains(err.Error(), "1000 pixels") {
		t.Errorf("MaxPixels error %v should name the size and the limit", err)
	}
}

func TestDecodeFileErrors(t *testing.T) {
	path := testutil.Shared(t, "images", "tubingen.jpg")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecodeFile(path, Limits{MaxBytes: fi.Size() - 1})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("DecodeFile over MaxBytes = %v, want ErrTooLarge", err)
	}
	_, err = DecodeFile(filepath.Join(t.TempDir(), "missing.jpg"), Limits{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DecodeFile of a missing file = %v, want fs.ErrNotExist", err)
	}
	_, err = DecodeFile(t.TempDir(), Limits{})
	if !errors.Is(err, ErrNotImage) {
		t.Errorf("DecodeFile of a directory = %v, want ErrNotImage", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.png")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = DecodeFile(empty, Limits{})
	if !errors.Is(err, ErrNotImage) {
		t.Errorf("DecodeFile of an empty file = %v, want ErrNotImage", err)
	}
}

func TestClosed(t *testing.T) {
	im := decode(t, testutil.ReadShared(t, "images/kitten.jpg"))
	im.Close()
	im.Close()
	if w, h := im.Size(); w != 0 || h != 0 {
		t.Errorf("Size after Close = %dx%d", w, h)
	}
	if _, err := im.RGB(); !errors.Is(err, ErrClosed) {
		t.Errorf("RGB after Close = %v", err)
	}
	if _, err := im.Encode(PNG, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Encode after Close = %v", err)
	}
	if err := im.ResizeExact(10, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("ResizeExact after Close = %v", err)
	}
	if err := im.ResizeShorterSide(10); !errors.Is(err, ErrClosed) {
		t.Errorf("ResizeShorterSide after Close = %v", err)
	}
	var nilIm *Image
	if _, err := nilIm.RGB(); !errors.Is(err, ErrClosed) {
		t.Errorf("RGB on nil = %v", err)
	}
	nilIm.Close()
}

// TestMutatedInputs flips bytes in real files: Decode may fail but must not panic or crash.
func TestMutatedInputs(t *testing.T) {
	seeds := [][]byte{
		testutil.ReadShared(t, "images/kitten.jpg"),
		testutil.ReadShared(t, "golden/style_starry_96x80.png"),
	}
	if w, err := decode(t, seeds[0]).Encode(WebP, 50); err == nil {
		seeds = append(seeds, w)
	}
	rng := rand.New(rand.NewSource(3))
	n := 0
	for _, seed := range seeds {
		for range 60 {
			data := bytes.Clone(seed)
			for range 1 + rng.Intn(8) {
				data[rng.Intn(len(data))] = byte(rng.Intn(256))
			}
			if rng.Intn(3) == 0 {
				data = data[:rng.Intn(len(data))]
			}
			im, err := Decode(data, Limits{MaxPixels: 4 << 20})
			if err != nil {
				if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrZeroSize) && !errors.Is(err, ErrUnsupportedFormat) {
					t.Errorf("unclassified error: %v", err)
				}
				continue
			}
			n++
			if _, err := im.RGB(); err != nil {
				t.Errorf("decoded, then RGB failed: %v", err)
			}
			im.Close()
		}
	}
	t.Logf("%d of %d mutated inputs still decoded", n, 60*len(seeds))
}

func TestConcurrentUse(t *testing.T) {
	data := testutil.ReadShared(t, "images/stata.jpg")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	results := make([][]byte, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			im, err := Decode(data, Limits{})
			if err != nil {
				errs <- err
				return
			}
			defer im.Close()
			if err := im.ResizeShorterSide(100); err != nil {
				errs <- err
				return
			}
			p, err := im.RGB()
			if err != nil {
				errs <- err
				return
			}
			results[i] = p.Pix
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 1; i < len(results); i++ {
		if !bytes.Equal(results[i], results[0]) {
			t.Fatal("concurrent decodes of the same bytes differ")
		}
	}
}
