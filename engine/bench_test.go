package engine

import (
	"context"
	"image"
	_ "image/jpeg"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/internal/testutil"
)

// loadJPEGScaled decodes a JPEG from the shared images and scales it (nearest neighbour, which is
// all a timing needs) so its shorter side is short pixels, like torchvision.transforms.Resize.
func loadJPEGScaled(tb testing.TB, name string, short int) *Image {
	tb.Helper()
	f, err := os.Open(testutil.Shared(tb, "images", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	src, _, err := image.Decode(f)
	if err != nil {
		tb.Fatal(err)
	}
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < h {
		w, h = short, h*short/w
	} else {
		w, h = w*short/h, short
	}
	pix := make([]uint8, 0, 3*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := src.At(b.Min.X+x*b.Dx()/w, b.Min.Y+y*b.Dy()/h).RGBA()
			pix = append(pix, uint8(r>>8), uint8(g>>8), uint8(bl>>8))
		}
	}
	im, err := FromRGB(w, h, pix)
	if err != nil {
		tb.Fatal(err)
	}
	return im
}

// processCPU is the CPU time (user and system) this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIteration times one full iteration (forward, backward, Adam) on a 192x256 content
// image with the reference's default loss setup (starry_night weights, style image at 192 px):
// the figure to hold against the reference's per-iteration time (bench/compare.sh).
func BenchmarkIteration(b *testing.B) {
	e := newTestEngine(b)
	content := loadJPEGScaled(b, "tubingen.jpg", 192)
	style, err := e.StyleTargets(loadJPEGScaled(b, "starry_night.jpg", 192))
	if err != nil {
		b.Fatal(err)
	}
	opt := OptionsFor(Reference, 1)
	opt.Iters, opt.DecayAt = 1, -1
	ctx := context.Background()
	w := Presets["starry_night"]
	// The first call compiles the graph for this size.
	if _, _, err := e.Transfer(ctx, content, style, w, opt, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := processCPU()
	opt.Iters = b.N
	if _, _, err := e.Transfer(ctx, content, style, w, opt, nil); err != nil {
		b.Fatal(err)
	}
	// CPU time beside wall time: on a shared machine the wall time counts other processes' turns.
	b.ReportMetric(float64((processCPU()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(content.H), "height")
	b.ReportMetric(float64(content.W), "width")
}
