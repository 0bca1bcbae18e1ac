package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/weights"
)

// testEngines holds one engine per Convolutions for the package's tests, each built once.
var testEngines = map[Convolutions]*struct {
	once sync.Once
	e    *Engine
	err  error
}{Im2col: {}, Native: {}}

// newTestEngine builds one engine for the package's tests, as testengine.Open does for the
// others (which the engine's own tests cannot import).
func newTestEngine(t testing.TB) *Engine { return newTestEngineWith(t, Im2col) }

// newTestEngineWith is newTestEngine computing its 3x3 convolutions as conv says.
func newTestEngineWith(t testing.TB, conv Convolutions) *Engine {
	t.Helper()
	te := testEngines[conv]
	te.once.Do(func() {
		var path string
		if path, te.err = weights.Resolve(testutil.Weights(t)); te.err == nil {
			te.e, _, te.err = Open(path, testutil.Backend(), WithConvolutions(conv))
		}
	})
	if te.err != nil {
		t.Fatal(te.err)
	}
	return te.e
}

func loadPNG(t testing.TB, path string) *Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := src.Bounds()
	pix := make([]uint8, 0, 3*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := src.At(x, y).RGBA()
			pix = append(pix, uint8(r>>8), uint8(g>>8), uint8(bl>>8))
		}
	}
	im, err := FromRGB(b.Dx(), b.Dy(), pix)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

type golden struct {
	Content, Style string  // the PNGs' file names, beside the JSON file
	Params         Weights `json:"params"`
	Features       []struct {
		Index int     `json:"index"`
		Shape []int   `json:"shape"`
		Sum   float64 `json:"sum"`
		SumSq float64 `json:"sum_sq"`
	} `json:"features"`
	StyleGramSums []float64 `json:"style_gram_sums"`
	LossAtContent struct {
		TV float64 `json:"tv"`
	} `json:"loss_at_content"`
	LossAtX Losses `json:"loss_at_x"`
	GradAtX struct {
		L2     float64 `json:"l2"`
		Sum    float64 `json:"sum"`
		Probes []struct {
			Y, X int
			RGB  [3]float64 `json:"rgb"`
		} `json:"probes"`
	} `json:"grad_at_x"`
	Adam struct {
		LossHistory []float64 `json:"loss_history"`
	} `json:"adam_lr3_10_iters_from_content"`
}

type goldenCase struct {
	name           string
	g              golden
	content, style *Image
}

// goldenFiles are every golden value file: the shared photo pair and the procedural, tie-heavy
// pairs in testdata/golden (flat colour areas and odd sizes; see testdata/golden/README.md).
func goldenFiles(t testing.TB) []string {
	t.Helper()
	files := []string{testutil.Shared(t, "golden", "tubingen_starry.json")}
	own, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(own) == 0 {
		t.Fatalf("no golden files in testdata/golden: %v", err)
	}
	return append(files, own...)
}

func loadGoldenFile(t testing.TB, path string) goldenCase {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gc := goldenCase{name: strings.TrimSuffix(filepath.Base(path), ".json")}
	if err := json.Unmarshal(raw, &gc.g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	dir := filepath.Dir(path)
	gc.content = loadPNG(t, filepath.Join(dir, gc.g.Content))
	gc.style = loadPNG(t, filepath.Join(dir, gc.g.Style))
	return gc
}

// loadGolden is the shared photo pair, for tests that need one realistic pair.
func loadGolden(t testing.TB) goldenCase { return loadGoldenFile(t, goldenFiles(t)[0]) }

// forEachGolden runs fn as a subtest on every golden case, with each way of computing the
// convolutions.
func forEachGolden(t *testing.T, fn func(t *testing.T, e *Engine, gc goldenCase)) {
	for _, conv := range []Convolutions{Im2col, Native} {
		e := newTestEngineWith(t, conv)
		for _, path := range goldenFiles(t) {
			gc := loadGoldenFile(t, path)
			t.Run(string(conv)+"/"+gc.name, func(t *testing.T) { fn(t, e, gc) })
		}
	}
}

// perturbed is the golden file's x: content + 0.1*sin(0.37*x + 0.71*y + 1.3*c).
func perturbed(im *Image) *Image {
	x := im.Clone()
	for c := 0; c < 3; c++ {
		for y := 0; y < im.H; y++ {
			for xx := 0; xx < im.W; xx++ {
				i := (c*im.H+y)*im.W + xx
				x.Data[i] += float32(0.1 * math.Sin(0.37*float64(xx)+0.71*float64(y)+1.3*float64(c)))
			}
		}
	}
	return x
}

// largestDifference is the largest |a[i] - b[i]|.
func largestDifference(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
	}
	return worst
}

func assertClose(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if d := math.Abs(got - want); d > rel*math.Abs(want) || math.IsNaN(got) {
		t.Errorf("%s = %.7g, want %.7g (relative error %.2g > %.0g)", what, got, want, d/math.Abs(want), rel)
	}
}

func TestGoldenFeatures(t *testing.T) { forEachGolden(t, checkGoldenFeatures) }

func checkGoldenFeatures(t *testing.T, e *Engine, gc goldenCase) {
	feats, err := e.Features(gc.content)
	if err != nil {
		t.Fatal(err)
	}
	if len(feats) != len(gc.g.Features) {
		t.Fatalf("%d feature maps, want %d", len(feats), len(gc.g.Features))
	}
	for i, want := range gc.g.Features {
		f := feats[i]
		wantShape := want.Shape[1:] // golden shapes are NCHW with N = 1
		if len(f.Shape) != 3 || f.Shape[0] != wantShape[0] || f.Shape[1] != wantShape[1] || f.Shape[2] != wantShape[2] {
			t.Errorf("features[%d] shape %v, want %v", i, f.Shape, wantShape)
			continue
		}
		var sum, sq float64
		for _, v := range f.Data {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		assertClose(t, fmt.Sprintf("sum of features[%d]", i), sum, want.Sum, 1e-3)
		assertClose(t, fmt.Sprintf("sum of squares of features[%d]", i), sq, want.SumSq, 1e-3)
	}
}

func TestGoldenStyleGrams(t *testing.T) { forEachGolden(t, checkGoldenStyleGrams) }

func checkGoldenStyleGrams(t *testing.T, e *Engine, gc goldenCase) {
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range gc.g.StyleGramSums {
		var sum float64
		for _, v := range st[i].Data {
			sum += float64(v)
		}
		assertClose(t, fmt.Sprintf("Gram sum at style layer %d", StyleLayers[i]), sum, want, 1e-3)
	}
}

func TestGoldenLossAndGradient(t *testing.T) { forEachGolden(t, checkGoldenLossAndGradient) }

func checkGoldenLossAndGradient(t *testing.T, e *Engine, gc goldenCase) {
	w := gc.g.Params
	ct, err := e.ContentTarget(gc.content)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	l, grad, err := e.LossAndGradient(perturbed(gc.content), ct, st, w)
	if err != nil {
		t.Fatal(err)
	}
	want := gc.g.LossAtX
	assertClose(t, "content loss", l.Content, want.Content, 1e-3)
	assertClose(t, "style loss", l.Style, want.Style, 1e-3)
	assertClose(t, "TV loss", l.TV, want.TV, 1e-3)
	assertClose(t, "total loss", l.Total, want.Total, 1e-3)

	var l2, sum float64
	for _, v := range grad.Data {
		l2 += float64(v) * float64(v)
		sum += float64(v)
	}
	assertClose(t, "gradient L2 norm", math.Sqrt(l2), gc.g.GradAtX.L2, 1e-3)
	assertClose(t, "gradient sum", sum, gc.g.GradAtX.Sum, 1e-3)
	// Probes are compared relative to the gradient's typical size: one probe sits where the
	// gradient is float noise around zero, which no relative tolerance of its own can hold.
	scale := math.Sqrt(l2 / float64(len(grad.Data)))
	plane := grad.H * grad.W
	for _, p := range gc.g.GradAtX.Probes {
		for c, want := range p.RGB {
			got := float64(grad.Data[c*plane+p.Y*grad.W+p.X])
			if d := math.Abs(got - want); d > 1e-3*max(math.Abs(want), scale) {
				t.Errorf("gradient at (y=%d, x=%d, c=%d) = %.7g, want %.7g", p.Y, p.X, c, got, want)
			}
		}
	}

	// At the content image itself the content loss vanishes and the TV loss is the golden one.
	l0, _, err := e.LossAndGradient(gc.content, ct, st, w)
	if err != nil {
		t.Fatal(err)
	}
	if l0.Content != 0 {
		t.Errorf("content loss at the content image = %g, want 0", l0.Content)
	}
	assertClose(t, "TV loss at the content image", l0.TV, gc.g.LossAtContent.TV, 1e-3)
}

func TestGoldenAdamHistory(t *testing.T) { forEachGolden(t, checkGoldenAdamHistory) }

func checkGoldenAdamHistory(t *testing.T, e *Engine, gc goldenCase) {
	st, err := e.StyleTargets(gc.style)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Schedule: Reference, Iters: 10, LR: 3, DecayAt: -1, ClampUntil: 10, Init: "content"}
	var seen int
	_, hist, err := e.Transfer(context.Background(), gc.content, st, gc.g.Params, opt,
		func(k, n int, _ Losses) {
			seen++
			if k != seen || n != 10 {
				t.Errorf("progress(%d, %d), want (%d, 10)", k, n, seen)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	want := gc.g.Adam.LossHistory
	if len(hist) != len(want) {
		t.Fatalf("%d losses, want %d", len(hist), len(want))
	}
	for i, w := range want {
		tol := 0.05 // later steps drift: see ../shared/golden/README.md
		if i < 2 {
			tol = 1e-3
		}
		assertClose(t, fmt.Sprintf("loss before step %d", i), hist[i].Total, w, tol)
	}
}
