package pipeline

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// wantParamError checks that query is refused with a ParamError naming param.
func wantParamError(t *testing.T, query, param string) {
	t.Helper()
	q, _ := url.ParseQuery(query)
	_, err := ParseImageOptions(q, 2048, "")
	var pe *plugin.ParamError
	if !errors.As(err, &pe) || pe.Param != param {
		t.Errorf("%q: %v, want a ParamError for %s", query, err, param)
	}
}

func parseOpts(t *testing.T, query string) ImageOptions {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseImageOptions(q, 2048, "")
	if err != nil {
		t.Fatalf("%q: %v", query, err)
	}
	return o
}

func TestURLOptionsValid(t *testing.T) {
	blue := imaging.Color{R: 0, G: 0x11, B: 0xff}
	for _, tc := range []struct {
		query string
		want  ImageOptions
	}{
		{"w=100&dpr=2", ImageOptions{Width: 200, Quality: 85}},
		{"w=100&h=30&dpr=1.5", ImageOptions{Width: 150, Height: 45, Quality: 85}},
		{"w=1500&h=300&dpr=2", ImageOptions{Width: 2048, Height: 410, Quality: 85}}, // bounded, aspect kept
		{"dpr=3", ImageOptions{Quality: 85}},                                        // nothing to multiply
		{"w=10&h=10&fit=cover&gravity=north_east", ImageOptions{Width: 10, Height: 10, Fit: imaging.FitCover, Gravity: imaging.GravityNorthEast, Quality: 85}},
		{"w=10&h=10&fit=cover&gravity=smart", ImageOptions{Width: 10, Height: 10, Fit: imaging.FitCover, Gravity: imaging.GravitySmart, Quality: 85}},
		{"w=10&h=10&gravity=smart", ImageOptions{Width: 10, Height: 10, Quality: 85}}, // no crop, no gravity
		{"w=10&enlarge=false", ImageOptions{Width: 10, NoEnlarge: true, Quality: 85}},
		{"w=10&enlarge=1", ImageOptions{Width: 10, Quality: 85}},
		{"enlarge=0", ImageOptions{Quality: 85}}, // without a box nothing is enlarged anyway
		{"rotate=270", ImageOptions{Rotate: 270, Quality: 85}},
		{"rotate=0", ImageOptions{Quality: 85}},
		{"sharpen=1.26", ImageOptions{Sharpen: 1.3, Quality: 85}},
		{"bg=0011FF", ImageOptions{Background: blue, HasBackground: true, Quality: 85}},
		{"bg=01f", ImageOptions{Background: blue, HasBackground: true, Quality: 85}},
		{"bg=fff", ImageOptions{Quality: 85}}, // white is the default
		{"w=10&h=10&pad=true", ImageOptions{Width: 10, Height: 10, Pad: true, Quality: 85}},
		{"w=10&h=10&fit=cover&pad=true", ImageOptions{Width: 10, Height: 10, Fit: imaging.FitCover, Quality: 85}},
		{"w=10&pad=1", ImageOptions{Width: 10, Quality: 85}}, // one side leaves no room
		{"cb=v2.1_a-b~c", ImageOptions{CacheBuster: "v2.1_a-b~c", Quality: 85}},
	} {
		if got := parseOpts(t, tc.query); got != tc.want {
			t.Errorf("%q: %+v\nwant %+v", tc.query, got, tc.want)
		}
	}
}

func TestURLOptionsInvalid(t *testing.T) {
	for _, tc := range []struct{ query, param string }{
		{"dpr=0", "dpr"}, {"dpr=0.5", "dpr"}, {"dpr=5", "dpr"}, {"dpr=2x", "dpr"}, {"dpr=1e0", "dpr"},
		{"gravity=top", "gravity"}, {"gravity=North", "gravity"}, {"gravity=", "gravity"},
		{"enlarge=yes", "enlarge"}, {"rotate=45", "rotate"}, {"rotate=-90", "rotate"}, {"rotate=360", "rotate"},
		{"sharpen=0", "sharpen"}, {"sharpen=11", "sharpen"}, {"sharpen=-1", "sharpen"},
		{"bg=%23ffffff", "bg"}, {"bg=fffff", "bg"}, {"bg=red", "bg"}, {"bg=ggg", "bg"},
		{"pad=2", "pad"}, {"cb=", "cb"}, {"cb=a%20b", "cb"}, {"cb=" + strings.Repeat("x", 65), "cb"},
	} {
		wantParamError(t, tc.query, tc.param)
	}
}

// Equivalent URLs give one key; every option that changes the output changes it.
func TestURLOptionsKeys(t *testing.T) {
	key := func(q string) string { return parseOpts(t, q).Key() }
	for _, group := range [][]string{
		{"w=200", "w=100&dpr=2", "w=200&dpr=1", "w=200&enlarge=true"},
		{"w=10&h=10", "w=10&h=10&gravity=north", "w=10&h=10&fit=contain&gravity=smart", "w=10&h=10&pad=false"},
		{"", "rotate=0", "bg=FFFFFF", "enlarge=false", "pad=true", "dpr=2"},
		{"sharpen=1.5", "sharpen=1.50", "sharpen=1.46"},
		{"bg=aabbcc", "bg=ABC"},
	} {
		want := key(group[0])
		for _, q := range group[1:] {
			if got := key(q); got != want {
				t.Errorf("%q and %q: keys %s and %s", group[0], q, want, got)
			}
		}
	}
	seen := map[string]string{}
	for _, q := range []string{"w=10&h=10&fit=cover", "w=10&h=10&fit=cover&gravity=north", "w=10&h=10&fit=cover&gravity=smart",
		"w=10", "w=10&enlarge=false", "rotate=90", "rotate=180", "sharpen=1", "sharpen=2", "bg=000", "w=10&h=10&pad=true",
		"w=10&h=10&pad=true&bg=000", "cb=1", "cb=2", "w=20"} {
		k := key(q)
		if other, ok := seen[k]; ok {
			t.Errorf("%q and %q share the key %s", q, other, k)
		}
		seen[k] = q
	}
	// Options at their defaults leave the key as it was before they existed.
	if k := key("w=300&h=200&fit=cover&format=webp&q=70&gravity=center&rotate=0&enlarge=1&bg=fff"); k != "w=300,h=200,fit=cover,format=webp,q=70" {
		t.Errorf("key with defaults: %s", k)
	}
}

// The stage's key holds what comes before the optimisation (gravity, rotation, a transparent
// source's background) and nothing that comes after it (sharpen, pad, an opaque source's bg).
func TestStageInputKey(t *testing.T) {
	in := stageInput{w: 256, h: 192, fit: imaging.FitCover, aw: 400, ah: 300}
	base := in.key(parseOpts(t, "w=400&h=300&fit=cover"))
	if base != "256x192 cover" {
		t.Errorf("plain stage key %q changed", base)
	}
	for _, q := range []string{"w=400&h=300&fit=cover&sharpen=2", "w=400&h=300&fit=cover&bg=000", "w=400&h=300&fit=cover&format=png&cb=7"} {
		if k := in.key(parseOpts(t, q)); k != base {
			t.Errorf("%q: stage key %q, want %q", q, k, base)
		}
	}
	alpha := in
	alpha.alpha = true
	north := in
	north.gravity = imaging.GravityNorth
	smart := in
	smart.gravity = imaging.GravitySmart
	smart2 := smart
	smart2.aw, smart2.ah = 800, 600 // the same aspect ratio
	for _, tc := range []struct {
		in    stageInput
		query string
	}{{in, "w=400&h=300&fit=cover&rotate=90"}, {alpha, "w=400&h=300&fit=cover&bg=000"}, {north, "w=400&h=300&fit=cover"}, {smart, "w=400&h=300&fit=cover"}} {
		if k := tc.in.key(parseOpts(t, tc.query)); k == base {
			t.Errorf("%+v %q: stage key %q is the plain one", tc.in, tc.query, k)
		}
	}
	o := parseOpts(t, "w=400&h=300&fit=cover")
	if smart.key(o) != smart2.key(o) {
		t.Errorf("smart crops of one aspect ratio: %q and %q", smart.key(o), smart2.key(o))
	}
}

func TestTargetBoxEnlarge(t *testing.T) {
	for _, tc := range []struct {
		query        string
		sw, sh       int
		wantW, wantH int // the result's size
	}{
		{"w=800", 400, 266, 800, 532},
		{"w=800&enlarge=false", 400, 266, 400, 266},
		{"w=200&enlarge=false", 400, 266, 200, 133},
		{"w=800&h=800&fit=cover&enlarge=false", 400, 266, 266, 266},
		{"w=800&h=400&fit=cover&enlarge=false", 400, 266, 400, 200},
		{"w=800&h=400&fit=fill&enlarge=false", 400, 266, 400, 200},
		{"w=800&h=800&enlarge=false", 400, 266, 400, 266},
	} {
		o := parseOpts(t, tc.query)
		w, h, fit, ok := targetBox(tc.sw, tc.sh, o, 2048)
		rw, rh := imaging.FitSize(tc.sw, tc.sh, w, h, fit)
		if !ok || rw != tc.wantW || rh != tc.wantH {
			t.Errorf("%q on %dx%d: %dx%d, want %dx%d", tc.query, tc.sw, tc.sh, rw, rh, tc.wantW, tc.wantH)
		}
	}
}

func TestParsePresets(t *testing.T) {
	ps, err := ParsePresets(strings.NewReader("# thumbnails\n\nthumb: w=400&h=300&fit=cover\n  small_webp : w=100&format=webp\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps["thumb"].Get("fit") != "cover" || ps["small_webp"].Get("format") != "webp" {
		t.Errorf("presets %v", ps)
	}
	for _, bad := range []string{"thumb w=1", "Thumb: w=1", "a: w=1\na: w=2", "a: w=1&w=2", "a: sig=x", "a: preset=b", "a:", "a: %zz"} {
		if _, err := ParsePresets(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: %v, want an error naming the line", bad, err)
		}
	}
	owner := owners(nil)
	if err := (Presets{"a": {"style": {"x"}}}).check(owner, 2048); err == nil {
		t.Error("a preset with a parameter nobody owns passed")
	}
	if err := (Presets{"a": {"w": {"0"}}}).check(owner, 2048); err == nil {
		t.Error("a preset with w=0 passed")
	}
	q := url.Values{"preset": {"thumb"}, "w": {"50"}}
	if err := ps.expand(q); err != nil || q.Get("w") != "50" || q.Get("h") != "300" || q.Has("preset") {
		t.Errorf("expand: %v, %v: the URL's w should win, the preset's h fill in", q, err)
	}
	var pe *plugin.ParamError
	if err := ps.expand(url.Values{"preset": {"nope"}}); !errors.As(err, &pe) || pe.Param != "preset" {
		t.Errorf("unknown preset: %v", err)
	}
}
