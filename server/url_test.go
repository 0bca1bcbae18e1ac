package server

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/styles"
)

// The URL options with a real style library and engine: blends, presets, and which options
// share the optimisation (after it: sharpen, pad) and which do not (before it: gravity, rotate).
func TestURLOptionsWithStyles(t *testing.T) {
	cfg := testConfig(t)
	cfg.Presets = presetsFile(t, "painted: style=starry&iters=3&w=64&format=png\n")
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{"starry": "starry_night", "scream": "the_scream"} {
		img, err := os.ReadFile(testutil.Shared(t, "images", file+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Library.Add(context.Background(), name, img, styles.AddOptions{Preset: file, StyleSize: 64}); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(s.Echo)
	defer ts.Close()
	stylizations := func() float64 {
		return metricValue(t, ts.URL, `styleproxy_work_seconds_count{kind="stylization"}`)
	}
	img := func(q string) (etag, body string) {
		t.Helper()
		res, body := get(t, ts.URL+"/img/tubingen.jpg?"+q)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", q, res.StatusCode, body)
		}
		return res.Header.Get("ETag"), body
	}

	single, singleBody := img("style=starry&iters=3&w=64&format=png")
	if e, b := img("style=starry:1,scream:0&iters=3&w=64&format=png"); e != single || b != singleBody {
		t.Error("style=starry:1,scream:0 is not style=starry")
	}
	blend, blendBody := img("style=starry,scream&iters=3&w=64&format=png")
	if blend == single || blendBody == singleBody {
		t.Error("the even blend gave the single style's image")
	}
	if e, _ := img("style=scream:0.5,starry:0.5&iters=3&w=64&format=png"); e != blend {
		t.Error("equivalent blends have different ETags")
	}
	if e, _ := img("preset=painted"); e != single {
		t.Error("preset=painted is not its expansion")
	}

	// Sharpen and pad come after the optimisation and share it; rotate and gravity come before.
	before := stylizations()
	img("style=starry&iters=3&w=64&h=64&fit=cover&gravity=north")
	img("style=starry&iters=3&w=64&h=64&fit=cover&gravity=north&sharpen=1&format=png")
	img("style=starry&iters=3&w=64&h=64&fit=cover&gravity=north&cb=7")
	if n := stylizations() - before; n != 1 {
		t.Errorf("%v optimisations for one crop with different finishing, want 1", n)
	}
	img("style=starry&iters=3&w=64&h=64&fit=cover&gravity=south")
	img("style=starry&iters=3&w=64&h=64&fit=cover&gravity=north&rotate=90")
	if n := stylizations() - before; n != 3 {
		t.Errorf("%v optimisations, want 3: another gravity and a rotation are other inputs", n)
	}
	before = stylizations()
	img("style=starry&iters=4&w=64&h=40&pad=true")
	img("style=starry&iters=4&w=64&h=40&pad=true&bg=000")
	if n := stylizations() - before; n != 1 {
		t.Errorf("%v optimisations for two paddings, want 1", n)
	}

	for q, status := range map[string]int{"style=starry,nope": 404, "style=starry,starry": 400, "style=a,b,c,d,e": 400, "preset=nope": 400} {
		if res, body := get(t, ts.URL+"/img/tubingen.jpg?"+q); res.StatusCode != status {
			t.Errorf("%s: %d %s, want %d", q, res.StatusCode, body, status)
		}
	}
}
