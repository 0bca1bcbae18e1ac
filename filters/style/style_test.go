package style

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/internal/testutil/testengine"
	"github.com/styleproxy/styleproxy/plugin"
	"github.com/styleproxy/styleproxy/styles"
)

type fakeLibrary map[string]*styles.Style

// Get answers as styles.Library.Get does.
func (l fakeLibrary) Get(name string) (*styles.Style, error) {
	if !styles.NamePattern.MatchString(name) {
		return nil, styles.ErrInvalidName
	}
	if s, ok := l[name]; ok {
		return s, nil
	}
	return nil, styles.ErrNotFound
}

func TestParse(t *testing.T) {
	lib := fakeLibrary{"starry": {Name: "starry", Version: "v1"}}
	cfg := NewDefaultConfig()
	cfg.MaxIters = 300
	f, err := New(lib, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query   string
		wantNil bool
		wantKey string // substring of Key()
		param   string // ParamError's parameter
		missing bool   // NotFoundError
	}{
		{query: "", wantNil: true},
		{query: "w=100", wantNil: true},
		{query: "style=starry", wantKey: fmt.Sprintf("style=starry@v1;iters=%d;schedule=fast;strength=100;preserve_color=false", engine.DefaultIters)},
		{query: "style=starry&schedule=fast", wantKey: fmt.Sprintf("style=starry@v1;iters=%d;schedule=fast;", engine.DefaultIters)},
		// The reference schedule keeps the key every URL had before schedules existed.
		{query: "style=starry&schedule=reference&iters=200", wantKey: "style=starry@v1;iters=200;strength=100;"},
		{query: "style=starry&schedule=slow", param: "schedule"},
		{query: "style=starry&schedule=Fast", param: "schedule"},
		{query: "style=starry&schedule=", param: "schedule"},
		{query: "schedule=fast", param: "schedule"},
		{query: "style=starry&iters=50&strength=40&preserve_color=true", wantKey: "iters=50;schedule=fast;strength=40;preserve_color=true"},
		{query: "style=starry&preserve_color=0", wantKey: "preserve_color=false"},
		{query: "iters=50", param: "iters"},
		{query: "strength=10", param: "strength"},
		{query: "style=starry&iters=0", param: "iters"},
		{query: "style=starry&iters=301", param: "iters"},
		{query: "style=starry&iters=ten", param: "iters"},
		{query: "style=starry&strength=101", param: "strength"},
		{query: "style=starry&strength=-1", param: "strength"},
		{query: "style=starry&preserve_color=maybe", param: "preserve_color"},
		{query: "style=starry&preserve_color=yes", param: "preserve_color"},
		{query: "style=starry&preserve_color=TRUE", param: "preserve_color"},
		{query: "style=starry&iters=+2", param: "iters"},
		{query: "style=starry&iters=2.0", param: "iters"},
		{query: "style=starry&iters= 2", param: "iters"},
		{query: "style=starry&strength=-0", param: "strength"},
		{query: "style=starry&strength=1e1", param: "strength"},
		{query: "style=Starry", param: "style"},
		{query: "style=", param: "style"},
		{query: "style=mona", missing: true},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			o, err := f.Parse(context.Background(), q)
			var pe *plugin.ParamError
			var nf *plugin.NotFoundError
			switch {
			case tc.param != "":
				if !errors.As(err, &pe) || pe.Param != tc.param {
					t.Errorf("Parse: %v, want a ParamError for %s", err, tc.param)
				}
			case tc.missing:
				if !errors.As(err, &nf) {
					t.Errorf("Parse: %v, want a NotFoundError", err)
				}
			case tc.wantNil:
				if err != nil || o != nil {
					t.Errorf("Parse = %v, %v; want no options", o, err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(o.Key(), tc.wantKey) {
					t.Errorf("Key() = %q, want it to contain %q", o.Key(), tc.wantKey)
				}
			}
		})
	}
}

func TestKeyChangesWithTheStyleVersion(t *testing.T) {
	lib := fakeLibrary{"starry": {Name: "starry", Version: "v1"}}
	f, _ := New(lib, nil, NewDefaultConfig())
	q := url.Values{"style": {"starry"}}
	a, _ := f.Parse(context.Background(), q)
	lib["starry"] = &styles.Style{Name: "starry", Version: "v2"}
	b, _ := f.Parse(context.Background(), q)
	if a.Key() == b.Key() {
		t.Errorf("re-registered style kept the key %q", a.Key())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, change := range map[string]func(*Config){
		"negative max":       func(c *Config) { c.MaxIters = -1 },
		"default over max":   func(c *Config) { c.MaxIters, c.DefaultIters = 10, 20 },
		"tiny work size":     func(c *Config) { c.MaxWorkPx = 10 },
		"zero (no defaults)": func(c *Config) { *c = Config{} },
		"step over work":     func(c *Config) { c.WorkStep = c.MaxWorkPx + 1 },
	} {
		cfg := NewDefaultConfig()
		change(&cfg)
		if _, err := New(fakeLibrary{}, nil, cfg); err == nil {
			t.Errorf("%s: New(%+v) succeeded", name, cfg)
		}
	}
	if _, err := New(fakeLibrary{}, nil, NewDefaultConfig()); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestBlendAndKeepColor(t *testing.T) {
	orig := &imaging.RGB{Width: 2, Height: 1, Pix: []uint8{200, 100, 50, 10, 20, 30}}
	styled := &imaging.RGB{Width: 2, Height: 1, Pix: []uint8{0, 0, 0, 110, 120, 130}}
	blend(styled, orig, 25)
	want := []uint8{150, 75, 38, 35, 45, 55} // 0.25*styled + 0.75*orig, rounded
	for i := range want {
		if d := int(styled.Pix[i]) - int(want[i]); d < -1 || d > 1 {
			t.Fatalf("blend = %v, want %v", styled.Pix, want)
		}
	}
	// keepColor: the luminance follows the stylized image, the chroma the original.
	grey := &imaging.RGB{Width: 1, Height: 1, Pix: []uint8{90, 90, 90}}
	colour := &imaging.RGB{Width: 1, Height: 1, Pix: []uint8{200, 60, 40}}
	keepColor(grey, colour)
	if y := luma(grey.Pix); math.Abs(float64(y)-90) > 1.5 {
		t.Errorf("luma after keepColor = %.1f, want 90", y)
	}
	if !(grey.Pix[0] > grey.Pix[1] && grey.Pix[1] >= grey.Pix[2]) {
		t.Errorf("keepColor gave %v: want the original's reddish hue", grey.Pix)
	}
}

// TestApply stylizes a real photo at a small work size and checks sizes, strength and the
// work-size cap.
func TestApply(t *testing.T) {
	e := testengine.Open(t)
	decode := func(name string, short int) *imaging.Image {
		im, err := imaging.DecodeFile(testutil.Shared(t, "images", name), imaging.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if err := im.ResizeShorterSide(short); err != nil {
			t.Fatal(err)
		}
		return im
	}
	styleImg := decode("starry_night.jpg", 64)
	rgb, _ := styleImg.RGB()
	sim, _ := engine.FromRGB(rgb.Width, rgb.Height, rgb.Pix)
	targets, err := e.StyleTargets(sim)
	if err != nil {
		t.Fatal(err)
	}
	lib := fakeLibrary{"starry": {Name: "starry", Version: "v1", Targets: targets, Weights: engine.Presets["starry_night"]}}
	cfg := NewDefaultConfig()
	cfg.MaxWorkPx = 64
	f, err := New(lib, e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	content := decode("tubingen.jpg", 97) // about 129x97: over the work size, and no work shape
	orig, _ := content.RGB()
	// The optimisation must run at the capped work shape. With that shape compiled beforehand a
	// run at it compiles nothing, while a run at the content's own size would compile its graphs.
	b := engine.BucketFor(orig.Width, orig.Height, 64, DefaultWorkStep)
	if max(b.W, b.H) != 64 || b.W == orig.Width {
		t.Fatalf("work shape %v for a %dx%d image: want its longer side capped at 64", b, orig.Width, orig.Height)
	}
	if err := e.Warm(b.H, b.W); err != nil {
		t.Fatal(err)
	}
	compiled := e.Compilations()
	for _, tc := range []struct {
		query     string
		identical bool
	}{
		{"style=starry&iters=3", false},
		{"style=starry&iters=3&preserve_color=1&strength=50", false},
		{"style=starry&iters=3&strength=0", true},
	} {
		q, _ := url.ParseQuery(tc.query)
		o, err := f.Parse(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		steps := 0
		out, err := o.Apply(context.Background(), content, func(k, n int) { steps = k })
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		got, _ := out.RGB()
		if got.Width != orig.Width || got.Height != orig.Height {
			t.Errorf("%s: output %dx%d, want the input's %dx%d", tc.query, got.Width, got.Height, orig.Width, orig.Height)
		}
		same := string(got.Pix) == string(orig.Pix)
		if same != tc.identical {
			t.Errorf("%s: output identical to the input = %t, want %t", tc.query, same, tc.identical)
		}
		if !tc.identical && steps != 3 {
			t.Errorf("%s: progress reached %d, want 3", tc.query, steps)
		}
	}
	if n := e.Compilations() - compiled; n != 0 {
		t.Errorf("Apply compiled %d programs: the optimisation did not run at the %dx%d work shape", n, b.W, b.H)
	}
}

// TestWarmupThenNewAspectsCompileNothing: StartWarmup compiles every bucket once (two programs
// each: content target and Adam step), /readyz's list empties, and requests for aspect ratios
// never seen before then compile nothing.
func TestWarmupThenNewAspectsCompileNothing(t *testing.T) {
	e := testengine.Open(t)
	targets, err := e.StyleTargets(engine.NewImage(64, 64))
	if err != nil {
		t.Fatal(err)
	}
	lib := fakeLibrary{"starry": {Name: "starry", Version: "v1", Targets: targets, Weights: engine.Presets["starry_night"]}}
	const work = 96 // no other test uses this work size, so its shapes are new to the engine
	var mu sync.Mutex
	warmed := 0
	cfg := NewDefaultConfig()
	cfg.MaxWorkPx = work
	cfg.OnWarm = func(b engine.Bucket, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("warming %v: %v", b, err)
		}
		warmed++
	}
	f, err := New(lib, e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := e.Compilations()
	f.StartWarmup()
	if len(f.Warming()) == 0 {
		t.Error("Warming() is empty right after StartWarmup")
	}
	for deadline := time.Now().Add(2 * time.Minute); len(f.Warming()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still warming %v", f.Warming())
		}
	}
	n := len(engine.Buckets(work, DefaultWorkStep))
	if got := e.Compilations() - before; got != int64(2*n) || warmed != n {
		t.Errorf("warm-up compiled %d programs over %d buckets, want %d over %d", got, warmed, 2*n, n)
	}
	before = e.Compilations()
	q, _ := url.ParseQuery("style=starry&iters=2")
	o, err := f.Parse(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range [][2]int{{137, 100}, {50, 121}, {300, 97}} {
		pix := make([]uint8, 3*size[0]*size[1])
		for i := range pix {
			pix[i] = uint8(i * 31)
		}
		img, err := imaging.FromRGB(&imaging.RGB{Width: size[0], Height: size[1], Pix: pix})
		if err != nil {
			t.Fatal(err)
		}
		out, err := o.Apply(context.Background(), img, nil)
		if err != nil {
			t.Fatalf("%dx%d: %v", size[0], size[1], err)
		}
		if got, _ := out.RGB(); got.Width != size[0] || got.Height != size[1] {
			t.Errorf("%dx%d came back %dx%d", size[0], size[1], got.Width, got.Height)
		}
	}
	if got := e.Compilations() - before; got != 0 {
		t.Errorf("requests for new aspect ratios after warm-up compiled %d programs, want none", got)
	}
}

// The schedule is part of the result's key and of the optimisation stage's key: the same iterations
// on another schedule is another picture.
func TestScheduleKeys(t *testing.T) {
	f, err := New(fakeLibrary{"starry": {Name: "starry", Version: "v1"}}, nil, NewDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	parse := func(q string) *Options {
		t.Helper()
		v, _ := url.ParseQuery(q)
		o, err := f.Parse(context.Background(), v)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*Options)
	}
	def, fast, ref := parse("style=starry&iters=30"), parse("style=starry&iters=30&schedule=fast"), parse("style=starry&iters=30&schedule=reference")
	if def.Key() != fast.Key() || def.StageKey() != fast.StageKey() {
		t.Errorf("the default schedule and schedule=fast have different keys: %q, %q", def.Key(), fast.Key())
	}
	if fast.Key() == ref.Key() || fast.StageKey() == ref.StageKey() {
		t.Errorf("schedule=fast and schedule=reference share a key: %q, %q", fast.StageKey(), ref.StageKey())
	}
}
