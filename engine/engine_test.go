package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	ok := OptionsFor(Reference, ReferenceIters)
	tests := []struct {
		name   string
		change func(*Options)
		want   string // "" = valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"no iterations", func(o *Options) { o.Iters = 0 }, ""},
		{"negative iterations", func(o *Options) { o.Iters = -1 }, "iterations"},
		{"zero learning rate", func(o *Options) { o.LR = 0 }, "learning rate"},
		{"NaN learning rate", func(o *Options) { o.LR = nan() }, "learning rate"},
		{"decay without a rate", func(o *Options) { o.DecayLR = 0 }, "decay learning rate"},
		{"never decay, no decay rate", func(o *Options) { o.DecayAt, o.DecayLR = -1, 0 }, ""},
		{"decay-at below -1", func(o *Options) { o.DecayAt = -2 }, "decay-at"},
		{"unknown init", func(o *Options) { o.Init = "zeros" }, "init"},
		{"no schedule", func(o *Options) { o.Schedule = "" }, "schedule"},
		{"fast", func(o *Options) { *o = DefaultOptions() }, ""},
		{"fast with a learning rate", func(o *Options) { *o = DefaultOptions(); o.LR = 3 }, "fast schedule sets its own"},
		{"fast with clamping", func(o *Options) { *o = DefaultOptions(); o.ClampUntil = 5 }, "fast schedule sets its own"},
		{"fast, negative budget", func(o *Options) { *o = OptionsFor(Fast, -1) }, "iterations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.change(&o)
			err := o.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestOptionsForScalesTheSchedule(t *testing.T) {
	for _, tc := range []struct{ iters, decayAt, clampUntil int }{{200, 180, 190}, {100, 90, 90}, {10, 9, 0}} {
		o := OptionsFor(Reference, tc.iters)
		if o.DecayAt != tc.decayAt || o.ClampUntil != tc.clampUntil || o.LR != 3 || o.DecayLR != 0.1 {
			t.Errorf("OptionsFor(%d) = %+v, want decay at %d, clamp until %d", tc.iters, o, tc.decayAt, tc.clampUntil)
		}
	}
}

func TestRGBRoundTrip(t *testing.T) {
	pix := make([]uint8, 3*4*3)
	for i := range pix {
		pix[i] = uint8(i * 7)
	}
	im, err := FromRGB(4, 3, pix)
	if err != nil {
		t.Fatal(err)
	}
	if im.W != 4 || im.H != 3 {
		t.Fatalf("size %dx%d, want 4x3", im.W, im.H)
	}
	// Red of pixel (x=1, y=0) is pix[3]: normalised with channel 0's mean and std.
	if want := (float32(pix[3])/255 - Mean[0]) / Std[0]; im.Data[1] != want {
		t.Errorf("normalised red = %v, want %v", im.Data[1], want)
	}
	if back := im.RGB(); !slices.Equal(back, pix) {
		t.Errorf("round trip changed pixels:\n%v\n%v", back, pix)
	}
	for _, bad := range []struct{ w, h, n int }{{0, 3, 0}, {4, 3, 35}, {-1, -1, 3}} {
		if _, err := FromRGB(bad.w, bad.h, make([]uint8, bad.n)); err == nil {
			t.Errorf("FromRGB(%d, %d, %d bytes) succeeded", bad.w, bad.h, bad.n)
		}
	}
}

func TestTransferNoiseInitIsSeeded(t *testing.T) {
	e, gc := newTestEngine(t), loadGolden(t)
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	run := func(seed uint64) []float32 {
		opt := OptionsFor(Reference, 2)
		opt.Init, opt.Seed = "noise", seed
		out, _, err := e.Transfer(context.Background(), gc.content, st, Presets["the_scream"], opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out.Data
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different images")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same image")
	}
}

func TestTransferStopsWhenCancelled(t *testing.T) {
	e, gc := newTestEngine(t), loadGolden(t)
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	_, hist, err := e.Transfer(ctx, gc.content, st, Presets["starry_night"], OptionsFor(Reference, 50), func(k, n int, _ Losses) {
		steps = k
		if k == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || steps != 3 || len(hist) != 3 {
		t.Errorf("err %v after %d steps (%d losses), want context.Canceled after 3", err, steps, len(hist))
	}
}

func TestEngineRefusesTooSmallImages(t *testing.T) {
	e := newTestEngine(t)
	if _, err := e.StyleTargets(NewImage(MinSide-1, 100)); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Errorf("StyleTargets on a %dx100 image: %v, want a size error", MinSide-1, err)
	}
	if _, err := e.StyleTargets(NewImage(MinSide, MinSide)); err != nil {
		t.Errorf("StyleTargets on the smallest allowed image: %v", err)
	}
}

// The loss graph checks its targets' shapes against the features they are compared with, so a
// target computed for another image size is an error, not a silent broadcast or a crash.
func TestLossAndGradientRefusesMismatchedTargets(t *testing.T) {
	e, gc := newTestEngine(t), loadGolden(t)
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := e.ContentTarget(gc.style) // the style image's size, not the content's
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.LossAndGradient(gc.content, ct, st, Presets["starry_night"])
	if err == nil || !strings.Contains(err.Error(), "AssertDims") {
		t.Errorf("LossAndGradient with a content target of another size: %v, want a shape error", err)
	}
}
