package engine

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// blendFixture is two styles' targets and weights and a content image 64 px on its short side.
type blendFixture struct {
	e       *Engine
	content *Image
	feat    FeatureMap
	parts   [2]BlendPart
}

func newBlendFixture(t *testing.T) blendFixture {
	t.Helper()
	e := newTestEngine(t)
	f := blendFixture{e: e, content: loadJPEGScaled(t, "tubingen.jpg", 64)}
	var err error
	if f.feat, err = e.ContentTarget(f.content); err != nil {
		t.Fatal(err)
	}
	for i, s := range []struct{ image, preset string }{{"starry_night.jpg", "starry_night"}, {"the_scream.jpg", "the_scream"}} {
		targets, err := e.StyleTargets(loadJPEGScaled(t, s.image, 96))
		if err != nil {
			t.Fatal(err)
		}
		f.parts[i] = BlendPart{Targets: targets, Weights: Presets[s.preset]}
	}
	return f
}

func (f blendFixture) mix(a, b float64) []BlendPart {
	p := f.parts
	p[0].Mix, p[1].Mix = a, b
	return p[:]
}

func TestBlendWithOneShareIsThatStyleExactly(t *testing.T) {
	f := newBlendFixture(t)
	targets, w, err := Blend(f.mix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(targets, f.parts[0].Targets) || w != f.parts[0].Weights {
		t.Fatalf("blend (1, 0) differs from the first style: weights %+v, want %+v", w, f.parts[0].Weights)
	}
	opt := OptionsFor(Reference, 4)
	single, _, err := f.e.Transfer(context.Background(), f.content, f.parts[0].Targets, f.parts[0].Weights, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	blended, _, err := f.e.Transfer(context.Background(), f.content, targets, w, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(single.Data, blended.Data) {
		t.Error("the (1, 0) blend's result is not the single style's, bit for bit")
	}
	if _, _, err := Blend(f.mix(0, 0)); err == nil {
		t.Error("Blend with no positive share: no error")
	}
}

// The blend's gradient is the mix of the styles' own gradients (content and TV included).
func TestBlendGradientIsTheMix(t *testing.T) {
	f := newBlendFixture(t)
	rng := rand.New(rand.NewPCG(1, 2))
	x := f.content.Clone()
	for i := range x.Data {
		x.Data[i] += float32(0.1 * rng.NormFloat64())
	}
	targets, w, err := Blend(f.mix(0.7, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := f.e.LossAndGradient(x, f.feat, targets, w)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, len(got.Data))
	for k, m := range []float64{0.7, 0.3} {
		_, g, err := f.e.LossAndGradient(x, f.feat, f.parts[k].Targets, f.parts[k].Weights)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range g.Data {
			want[i] += m * float64(v)
		}
	}
	var diff, norm float64
	for i, v := range got.Data {
		diff += (float64(v) - want[i]) * (float64(v) - want[i])
		norm += want[i] * want[i]
	}
	if rel := math.Sqrt(diff / norm); !(rel < 1e-3) {
		t.Errorf("blend gradient differs from the mix by %.2g (relative)", rel)
	}
}

// An even blend lowers both styles' own style losses from where they start.
func TestBlendHalfLowersBothStyleLosses(t *testing.T) {
	f := newBlendFixture(t)
	targets, w, err := Blend(f.mix(0.5, 0.5))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := f.e.Transfer(context.Background(), f.content, targets, w, OptionsFor(Reference, 40), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range f.parts {
		start, _, err := f.e.LossAndGradient(f.content, f.feat, p.Targets, p.Weights)
		if err != nil {
			t.Fatal(err)
		}
		end, _, err := f.e.LossAndGradient(out, f.feat, p.Targets, p.Weights)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("style %d: style loss %.4g -> %.4g", k, start.Style, end.Style)
		if !(end.Style < 0.8*start.Style) {
			t.Errorf("style %d: its style loss went from %.4g to %.4g, want it to fall", k, start.Style, end.Style)
		}
	}
}
