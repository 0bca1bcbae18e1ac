package pipeline_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/pipeline"
)

// decodeBody decodes a response body to pixels.
func decodeBody(t *testing.T, body []byte) *imaging.RGB {
	t.Helper()
	im, err := imaging.Decode(body, imaging.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	p, err := im.RGB()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pixel(p *imaging.RGB, x, y int) [3]int {
	i := 3 * (y*p.Width + x)
	return [3]int{int(p.Pix[i]), int(p.Pix[i+1]), int(p.Pix[i+2])}
}

func closeTo(c, want [3]int) bool {
	for i := range c {
		if d := c[i] - want[i]; d < -12 || d > 12 {
			return false
		}
	}
	return true
}

// Geometry: dpr, gravity (smart included), enlarge and rotate, through the real server.
func TestGeometryOptions(t *testing.T) {
	s := startServer(t, serverOpts{})
	img := func(q string) (imaging.Info, string, []byte) {
		t.Helper()
		resp, body := get(t, s.URL+"/img/kitten.jpg?"+q)
		return wantOK(t, resp, body), resp.Header.Get("ETag"), body
	}
	for _, tc := range []struct {
		query string
		w, h  int
	}{
		{"w=100&dpr=2", 200, 133},
		{"w=1500&dpr=2", 2048, 1362}, // dpr stops at --max-output-px
		{"w=800", 800, 532},          // enlarge defaults to true: existing URLs keep their size
		{"w=800&enlarge=false", 400, 266},
		{"w=800&h=800&fit=cover&enlarge=false", 266, 266},
		{"rotate=90", 266, 400},
		{"rotate=90&w=100", 100, 150}, // w is the rotated image's
		{"w=100&h=100&fit=cover&gravity=smart", 100, 100},
	} {
		if info, _, _ := img(tc.query); info.Width != tc.w || info.Height != tc.h {
			t.Errorf("%q: %dx%d, want %dx%d", tc.query, info.Width, info.Height, tc.w, tc.h)
		}
	}
	if _, a, _ := img("w=100&dpr=2"); a != func() string { _, e, _ := img("w=200"); return e }() {
		t.Error("w=100&dpr=2 and w=200 have different ETags")
	}
	// West and east crops of the landscape kitten differ, and each is the matching part of the
	// uncropped image.
	_, _, west := img("w=100&h=266&fit=cover&gravity=west")
	_, _, east := img("w=100&h=266&fit=cover&gravity=east")
	_, _, full := img("w=400&h=266&format=png")
	wp, ep, fp := decodeBody(t, west), decodeBody(t, east), decodeBody(t, full)
	if wp.Width != 100 || bytes.Equal(wp.Pix, ep.Pix) {
		t.Fatalf("west %dx%d, east equal to it: %v", wp.Width, wp.Height, bytes.Equal(wp.Pix, ep.Pix))
	}
	// The west crop of a 400x266 image into 100x266 keeps x in [0, 100) unscaled.
	if !closeTo(pixel(wp, 50, 130), pixel(fp, 50, 130)) || !closeTo(pixel(ep, 50, 130), pixel(fp, 350, 130)) {
		t.Errorf("gravity crops: west %v east %v, source %v and %v", pixel(wp, 50, 130), pixel(ep, 50, 130), pixel(fp, 50, 130), pixel(fp, 350, 130))
	}
	for _, q := range []string{"gravity=up", "rotate=45", "dpr=9", "enlarge=maybe"} {
		resp, body := get(t, s.URL+"/img/kitten.jpg?"+q)
		wantError(t, resp, body, 400, strings.Split(q, "=")[0])
	}
}

// Finishing: sharpen, pad, bg (padding and a transparent source's background).
func TestFinishingOptions(t *testing.T) {
	s := startServer(t, serverOpts{})
	m := image.NewNRGBA(image.Rect(0, 0, 40, 20)) // transparent, with an opaque green square
	for y := 5; y < 15; y++ {
		for x := 5; x < 15; x++ {
			m.SetNRGBA(x, y, color.NRGBA{0, 255, 0, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "clear.png"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	img := func(path, q string) *imaging.RGB {
		t.Helper()
		resp, body := get(t, s.URL+"/img/"+path+"?"+q)
		wantOK(t, resp, body)
		return decodeBody(t, body)
	}
	flat := img("clear.png", "format=png&bg=ff0000")
	if c := pixel(flat, 30, 10); c != [3]int{255, 0, 0} {
		t.Errorf("transparency flattened onto %v, want bg=ff0000", c)
	}
	if c := pixel(img("clear.png", "format=jpeg"), 30, 10); !closeTo(c, [3]int{255, 255, 255}) {
		t.Errorf("transparency without bg: %v, want white", c)
	}
	padded := img("kitten.jpg", "w=300&h=300&pad=true&bg=000&format=png")
	if padded.Width != 300 || padded.Height != 300 {
		t.Fatalf("pad: %dx%d, want the 300x300 box", padded.Width, padded.Height)
	}
	if c := pixel(padded, 150, 5); c != [3]int{} {
		t.Errorf("padding %v, want black", c)
	}
	if c := pixel(img("kitten.jpg", "w=300&h=300&pad=true&format=png"), 150, 5); c != [3]int{255, 255, 255} {
		t.Errorf("default padding %v, want white", c)
	}
	plain, sharp := img("kitten.jpg", "w=200&format=png"), img("kitten.jpg", "w=200&format=png&sharpen=2")
	if plain.Width != sharp.Width || bytes.Equal(plain.Pix, sharp.Pix) {
		t.Error("sharpen=2 changed nothing")
	}
	for _, q := range []string{"sharpen=0", "bg=%23fff", "pad=yes"} {
		resp, body := get(t, s.URL+"/img/kitten.jpg?"+q)
		name, _, _ := strings.Cut(q, "=")
		wantError(t, resp, body, 400, name)
	}
}

// Presets and cb, with signing on: the signature covers the URL as given, the cache key the
// expanded options.
func TestPresetsCacheBusterAndSigning(t *testing.T) {
	key := []byte("k")
	ps, err := pipeline.ParsePresets(strings.NewReader("thumb: w=120&h=90&fit=cover\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOpts{cfg: func(c *pipeline.Config) { c.SigningKey, c.Presets = key, ps }})
	signed := func(q string) string {
		t.Helper()
		u, err := pipeline.SignURL(key, s.URL+"/img/kitten.jpg?"+q)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	etag := func(u string) (imaging.Info, string) {
		t.Helper()
		resp, body := get(t, u)
		return wantOK(t, resp, body), resp.Header.Get("ETag")
	}
	info, presetTag := etag(signed("preset=thumb"))
	if info.Width != 120 || info.Height != 90 {
		t.Errorf("preset=thumb: %dx%d, want 120x90", info.Width, info.Height)
	}
	if _, e := etag(signed("w=120&h=90&fit=cover")); e != presetTag {
		t.Error("a preset and its expansion have different cache keys")
	}
	if info, _ := etag(signed("preset=thumb&h=60")); info.Width != 120 || info.Height != 60 {
		t.Errorf("preset=thumb&h=60: %dx%d, the URL's h should win", info.Width, info.Height)
	}
	// The expansion's signature does not sign the preset URL.
	sig := pipeline.Sign(key, "/img/kitten.jpg", url.Values{"w": {"120"}, "h": {"90"}, "fit": {"cover"}})
	resp, body := get(t, s.URL+"/img/kitten.jpg?preset=thumb&sig="+sig)
	wantError(t, resp, body, 403, "signature")
	resp, body = get(t, signed("preset=nope"))
	wantError(t, resp, body, 400, "preset")

	_, a := etag(signed("w=50&cb=1"))
	_, b := etag(signed("w=50&cb=2"))
	_, c := etag(signed("w=50"))
	if a == b || a == c || b == c {
		t.Error("cb does not change the cache key")
	}
	resp, body = get(t, signed("cb=a%20b"))
	wantError(t, resp, body, 400, "cb")

	bad := pipeline.NewDefaultConfig()
	bad.Source, bad.Presets = nil, pipeline.Presets{"x": {"nonsense": {"1"}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "Presets") {
		t.Errorf("Validate with an unknown parameter in a preset: %v", err)
	}
}

// Every option is covered by the signature: a signed URL is served, and changing, adding or
// dropping the option is refused. A blend's "," and ":" sign alike escaped or not.
func TestURLOptionsSigned(t *testing.T) {
	key := []byte("k2")
	s := startServer(t, serverOpts{cfg: func(c *pipeline.Config) { c.SigningKey = key }})
	for _, tc := range []struct{ q, tampered string }{
		{"w=100&dpr=2", "w=100&dpr=3"},
		{"w=60&h=60&fit=cover&gravity=north", "w=60&h=60&fit=cover&gravity=south"},
		{"w=60&h=60&fit=cover&gravity=smart", "w=60&h=60&fit=cover"},
		{"w=800&enlarge=false", "w=800"},
		{"rotate=90", "rotate=270"},
		{"sharpen=1", "sharpen=1.5"},
		{"w=60&h=60&pad=true&bg=000", "w=60&h=60&pad=true&bg=fff"},
		{"cb=1", "cb=2"},
	} {
		signed, err := pipeline.SignURL(key, s.URL+"/img/kitten.jpg?"+tc.q)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, signed)
		wantOK(t, resp, body)
		u, _ := url.Parse(signed)
		resp, body = get(t, s.URL+"/img/kitten.jpg?"+tc.tampered+"&sig="+u.Query().Get("sig"))
		wantError(t, resp, body, 403, "signature")
	}
	q := url.Values{"style": {"starry:0.7,scream:0.3"}, "w": {"10"}}
	sig := pipeline.Sign(key, "/img/a.jpg", q)
	for _, raw := range []string{"style=starry:0.7,scream:0.3&w=10", "style=starry%3A0.7%2Cscream%3A0.3&w=10"} {
		pq, _ := url.ParseQuery(raw + "&sig=" + sig)
		if !pipeline.Verify(key, "/img/a.jpg", pq) {
			t.Errorf("%s does not verify", raw)
		}
	}
}
