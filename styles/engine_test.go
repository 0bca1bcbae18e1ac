package styles

import (
	"context"
	"math"
	"testing"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/internal/testutil/testengine"
)

// These tests run the real network: testengine.Open's engine (STYLEPROXY_WEIGHTS,
// STYLEPROXY_BACKEND).

// maxRelDiff is max|a-b| / max|b| over each layer, the largest over the layers.
func maxRelDiff(t *testing.T, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d values vs %d", len(a), len(b))
	}
	var diff, scale float64
	for i := range a {
		diff = max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = max(scale, math.Abs(float64(b[i])))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}

// registerStarry registers the reference's Starry Night at the default style size and returns
// the style as a freshly opened library reads it back from disk.
func registerStarry(t *testing.T, eng *engine.Engine) (*Style, []byte) {
	t.Helper()
	img := testutil.ReadShared(t, "images", "starry_night.jpg")
	dir := t.TempDir()
	lib, _ := openLib(t, dir, eng)
	if _, err := lib.Add(context.Background(), "starry", img, AddOptions{StyleSize: DefaultStyleSize}); err != nil {
		t.Fatal(err)
	}
	again, _ := openLib(t, dir, nil)
	s, err := again.Get("starry")
	if err != nil {
		t.Fatal(err)
	}
	return s, img
}

func TestStoredTargetsEqualEngine(t *testing.T) {
	eng := testengine.Open(t)
	s, img := registerStarry(t, eng)
	want := expectedTargets(t, eng, img, DefaultStyleSize)
	for i := range want {
		if s.Targets[i].C != want[i].C {
			t.Fatalf("layer %d: C=%d, want %d", i, s.Targets[i].C, want[i].C)
		}
		if d := maxRelDiff(t, s.Targets[i].Data, want[i].Data); d > 1e-5 {
			t.Errorf("layer %d: stored targets differ from the engine's by %.3g (relative)", i, d)
		}
	}
}

func TestStylizeWithStoredStyle(t *testing.T) {
	eng := testengine.Open(t)
	s, img := registerStarry(t, eng)
	fresh := expectedTargets(t, eng, img, DefaultStyleSize)

	cim, err := imaging.Decode(testutil.ReadShared(t, "images", "tubingen.jpg"), imaging.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer cim.Close()
	if err := cim.ResizeShorterSide(48); err != nil {
		t.Fatal(err)
	}
	rgb, err := cim.RGB()
	if err != nil {
		t.Fatal(err)
	}
	content, err := engine.FromRGB(rgb.Width, rgb.Height, rgb.Pix)
	if err != nil {
		t.Fatal(err)
	}
	opt := engine.OptionsFor(engine.Reference, 2)
	stored, lossStored, err := eng.Transfer(context.Background(), content, s.Targets, s.Weights, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	direct, lossDirect, err := eng.Transfer(context.Background(), content, fresh, engine.Presets[DefaultPreset], opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(t, stored.Data, content.Data); d < 1e-3 {
		t.Fatalf("two steps left the image almost unchanged (%.3g): the comparison below would prove nothing", d)
	}
	if d := maxRelDiff(t, stored.Data, direct.Data); d > 1e-5 {
		t.Errorf("stylizing with the stored style differs from stylizing with the image by %.3g (relative)", d)
	}
	for i := range lossStored {
		if math.Abs(lossStored[i].Total-lossDirect[i].Total) > 1e-5*math.Abs(lossDirect[i].Total) {
			t.Errorf("loss before step %d: %v with the stored style, %v with the image", i, lossStored[i], lossDirect[i])
		}
	}
}
