package pipeline_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/imaging/imagingtest"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

// TestTruncatedSourcesRefused: a source cut short is a 415 in every input format, never an
// image with its missing part filled in (and cached for a year).
func TestTruncatedSourcesRefused(t *testing.T) {
	dir := t.TempDir()
	samples := imagingtest.Samples(t, 96, 64)
	for name, data := range samples {
		if err := os.WriteFile(filepath.Join(dir, "cut."+name), data[:len(data)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "whole."+name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, serverOpts{dir: dir})
	for name := range samples {
		for range 2 { // and again: the refusal was not cached
			resp, body := get(t, s.URL+"/img/cut."+name)
			wantError(t, resp, body, http.StatusUnsupportedMediaType, "")
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s: Cache-Control %q", name, cc)
			}
		}
		resp, body := get(t, s.URL+"/img/whole."+name+"?format=png")
		wantOK(t, resp, body)
	}
}

func grayPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSourceSideAndAspectLimits: few pixels, but a side or a shape that is slow to resize: 413
// from the header, before decoding.
func TestSourceSideAndAspectLimits(t *testing.T) {
	dir := t.TempDir()
	for name, wh := range map[string][2]int{"wide.png": {3000, 100}, "strip.png": {10000, 1}, "ok.png": {1000, 100}} {
		if err := os.WriteFile(filepath.Join(dir, name), grayPNG(t, wh[0], wh[1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, serverOpts{dir: dir, cfg: func(c *pipeline.Config) { c.MaxSourceSide = 2000 }})
	resp, body := get(t, s.URL+"/img/wide.png")
	wantError(t, resp, body, http.StatusRequestEntityTooLarge, "2000")
	resp, body = get(t, s.URL+"/img/strip.png")
	wantError(t, resp, body, http.StatusRequestEntityTooLarge, "")
	resp, body = get(t, s.URL+"/img/ok.png")
	wantOK(t, resp, body)
}

// gateFilter is a light filter (gate=N) that holds its computation until release closes.
type gateFilter struct {
	started chan string
	release chan struct{}
}

type gateOptions struct {
	f *gateFilter
	v string
}

func (f *gateFilter) Name() string     { return "gate" }
func (f *gateFilter) Params() []string { return []string{"gate"} }
func (f *gateFilter) Parse(_ context.Context, q url.Values) (plugin.Options, error) {
	if !q.Has("gate") {
		return nil, nil
	}
	return gateOptions{f, q.Get("gate")}, nil
}
func (o gateOptions) Key() string { return o.v }
func (o gateOptions) Heavy() bool { return false }
func (o gateOptions) Apply(ctx context.Context, img *imaging.Image, _ plugin.Progress) (*imaging.Image, error) {
	o.f.started <- o.v
	<-o.f.release
	return img, nil
}

// TestLightQueueFull: light work beyond its slots and queue is refused with 503 and
// Retry-After, so slow plain work cannot pile up without bound.
func TestLightQueueFull(t *testing.T) {
	f := &gateFilter{started: make(chan string, 4), release: make(chan struct{})}
	s := startServer(t, serverOpts{cfg: func(c *pipeline.Config) {
		c.Filters = []plugin.Filter{f}
		c.LightWorkers, c.LightQueue = 1, 0
	}})
	var wg sync.WaitGroup
	codes := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := client.Get(s.URL + "/img/kitten.jpg?gate=1")
		if err == nil {
			resp.Body.Close()
			codes <- resp.StatusCode
		}
	}()
	<-f.started // it holds the one slot, and no one may wait: the next is refused
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := fetch(t, method, s.URL+"/img/kitten.jpg?gate=2")
		wantError(t, resp, body, http.StatusServiceUnavailable, "")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	close(f.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("an admitted light request got %d", c)
		}
	}
}
