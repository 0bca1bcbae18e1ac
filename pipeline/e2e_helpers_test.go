package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/plugin"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/filters/grayscale"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/pipeline"
)

func TestMain(m *testing.M) {
	imaging.Startup()
	code := m.Run()
	imaging.Shutdown()
	os.Exit(code)
}

// imageDir makes a source folder with copies of the shared photos and a few odd files:
//
//	kitten.jpg ... (the shared JPEGs), sub/kitten.jpg, kitten.png (a PNG of the kitten),
//	notimage.jpg (text), drawing.svg, folder/ (a directory), alias.jpg (a symlink to
//	kitten.jpg inside the folder) and escape.jpg (a symlink to ../secret.jpg, outside it).
func imageDir(t testing.TB) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "images")
	src := testutil.Shared(t, "images")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "folder"), 0o755))
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".jpg") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		must(err)
		must(os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644))
	}
	kitten, err := os.ReadFile(filepath.Join(dir, "kitten.jpg"))
	must(err)
	must(os.WriteFile(filepath.Join(dir, "sub", "kitten.jpg"), kitten, 0o644))
	must(os.WriteFile(filepath.Join(base, "secret.jpg"), kitten, 0o644))
	im, err := imaging.Decode(kitten, imaging.Limits{})
	must(err)
	pngData, err := im.Encode(imaging.PNG, 0)
	im.Close()
	must(err)
	must(os.WriteFile(filepath.Join(dir, "kitten.png"), pngData, 0o644))
	must(os.WriteFile(filepath.Join(dir, "notimage.jpg"), []byte("this is not an image, just text\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "drawing.svg"), []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`), 0o644))
	must(os.Symlink("kitten.jpg", filepath.Join(dir, "alias.jpg")))
	must(os.Symlink("../secret.jpg", filepath.Join(dir, "escape.jpg")))
	return dir
}

// fakeHeavy is a heavy filter for tests, standing in for the style filter: fake=N asks for it
// (N digits; fake=missing answers 404 like an unknown style). Apply counts its calls, reports
// progress, optionally waits for gate (or ctx), sleeps for delay, and inverts nothing: it turns
// the image grey so that its output differs from the plain resize.
type fakeHeavy struct {
	applies atomic.Int64
	delay   time.Duration
	gate    chan struct{} // Apply waits for it to be closed, if non-nil

	mu      sync.Mutex
	started []string // the fake= values Apply was called with
}

func (f *fakeHeavy) Name() string     { return "fake" }
func (f *fakeHeavy) Params() []string { return []string{"fake"} }
func (f *fakeHeavy) Parse(_ context.Context, q url.Values) (plugin.Options, error) {
	v, ok := q["fake"]
	if !ok {
		return nil, nil
	}
	if v[0] == "missing" {
		return nil, &plugin.NotFoundError{What: `style "missing"`}
	}
	for _, c := range v[0] {
		if c < '0' || c > '9' {
			return nil, &plugin.ParamError{Param: "fake", Reason: "must be digits"}
		}
	}
	if v[0] == "" {
		return nil, &plugin.ParamError{Param: "fake", Reason: "must be digits"}
	}
	return fakeOptions{f: f, v: v[0]}, nil
}

type fakeOptions struct {
	f *fakeHeavy
	v string
}

func (o fakeOptions) Key() string { return "v=" + o.v }
func (o fakeOptions) Heavy() bool { return true }
func (o fakeOptions) Apply(ctx context.Context, img *imaging.Image, progress plugin.Progress) (*imaging.Image, error) {
	o.f.applies.Add(1)
	o.f.mu.Lock()
	o.f.started = append(o.f.started, o.v)
	o.f.mu.Unlock()
	progress(1, 3)
	if o.f.gate != nil {
		select {
		case <-o.f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if o.f.delay > 0 {
		select {
		case <-time.After(o.f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	progress(3, 3)
	return img, img.Grayscale()
}

// counters record the pipeline's hooks.
type counters struct {
	workStarts, workEnds atomic.Int64
	memHits, memMisses   atomic.Int64
	diskHits, diskMisses atomic.Int64
	requests             atomic.Int64
	maxQueue, maxRunning atomic.Int64
}

func (c *counters) hooks() pipeline.Hooks {
	return pipeline.Hooks{
		OnRequest:   func(string, int, time.Duration) { c.requests.Add(1) },
		OnWorkStart: func(bool) { c.workStarts.Add(1) },
		OnWorkEnd:   func(bool, time.Duration, error) { c.workEnds.Add(1) },
		OnCache: func(tier string, hit bool) {
			switch {
			case tier == pipeline.TierMemory && hit:
				c.memHits.Add(1)
			case tier == pipeline.TierMemory:
				c.memMisses.Add(1)
			case hit:
				c.diskHits.Add(1)
			default:
				c.diskMisses.Add(1)
			}
		},
		OnQueue: func(d, running int) {
			for {
				m := c.maxRunning.Load()
				if int64(running) <= m || c.maxRunning.CompareAndSwap(m, int64(running)) {
					break
				}
			}
			for {
				m := c.maxQueue.Load()
				if int64(d) <= m || c.maxQueue.CompareAndSwap(m, int64(d)) {
					return
				}
			}
		},
	}
}

// testServer is the pipeline mounted on a real Echo server listening on a loopback port.
type testServer struct {
	URL  string
	P    *pipeline.Pipeline
	Fake *fakeHeavy
	Dir  string // the source folder, for DirSource servers
	Hits *counters
}

type serverOpts struct {
	cfg      func(*pipeline.Config) // changes to the defaults; Source defaults to a DirSource on dir
	dir      string                 // source folder (default: a fresh imageDir)
	fake     *fakeHeavy
	noCache  bool
	cacheDir string
}

func startServer(t testing.TB, o serverOpts) *testServer {
	t.Helper()
	ts := &testServer{Fake: o.fake, Hits: &counters{}}
	if ts.Fake == nil {
		ts.Fake = &fakeHeavy{}
	}
	cfg := pipeline.NewDefaultConfig()
	cfg.Filters = nil
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if cfg.Source == nil {
		ts.Dir = o.dir
		if ts.Dir == "" {
			ts.Dir = imageDir(t)
		}
		src, err := pipeline.NewDirSource(ts.Dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		cfg.Source = src
	}
	if cfg.Filters == nil {
		cfg.Filters = []plugin.Filter{grayscale.New(), grayscale.NewBlur(), ts.Fake}
	}
	if cfg.Cache == nil && !o.noCache {
		c, err := pipeline.NewCache(pipeline.CacheConfig{MemBytes: 64 << 20, Dir: o.cacheDir, DiskBytes: 256 << 20})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Cache = c
	}
	if cfg.Logger == slog.Default() {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Hooks = ts.Hits.hooks()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = pipeline.ErrorHandler
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	p, err := pipeline.Mount(e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.P = p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Listener = ln
	go func() {
		if err := e.Start(""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("echo: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
		p.Wait(ctx)
	})
	ts.URL = "http://" + ln.Addr().String()
	return ts
}

var client = &http.Client{Timeout: 30 * time.Second}

// fetch sends a request and returns the response with its body read.
func fetch(t testing.TB, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return testutil.Fetch(t, client, method, url, header...)
}

func get(t testing.TB, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return fetch(t, http.MethodGet, url, header...)
}

// wantOK checks a 200 image response and returns what the body's header says.
func wantOK(t testing.TB, resp *http.Response, body []byte) imaging.Info {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d, body %s", resp.Request.URL, resp.StatusCode, body)
	}
	info, err := imaging.Probe(body, imaging.Limits{})
	if err != nil {
		t.Fatalf("%s: body is not an image: %v", resp.Request.URL, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != info.Format.MIMEType() {
		t.Errorf("%s: Content-Type %q for a %s body", resp.Request.URL, ct, info.Type)
	}
	if cl := resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(body)) {
		t.Errorf("%s: Content-Length %q for %d bytes", resp.Request.URL, cl, len(body))
	}
	return info
}

// wantError checks a JSON error response: the status, and that the message names what it
// should (when mention is not empty).
func wantError(t testing.TB, resp *http.Response, body []byte, status int, mention string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d; body %s", resp.Request.URL, resp.StatusCode, status, body)
	}
	if resp.Request.Method == http.MethodHead {
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error Content-Type %q", resp.Request.URL, ct)
	}
	var eb pipeline.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("%s: error body %q: %v", resp.Request.URL, body, err)
	}
	if eb.Status != status || eb.Error == "" {
		t.Errorf("%s: error body %+v", resp.Request.URL, eb)
	}
	if mention != "" && !strings.Contains(eb.Error, mention) {
		t.Errorf("%s: error %q does not mention %q", resp.Request.URL, eb.Error, mention)
	}
	if resp.Header.Get("ETag") != "" {
		t.Errorf("%s: an error carries an ETag", resp.Request.URL)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: error with Cache-Control %q, want no-store", resp.Request.URL, cc)
	}
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	return e
}

// claim is a filter that only claims parameters, for config validation tests.
type claim struct {
	name   string
	params []string
}

func (c claim) Name() string     { return c.name }
func (c claim) Params() []string { return c.params }
func (c claim) Parse(context.Context, url.Values) (plugin.Options, error) {
	return nil, nil
}
