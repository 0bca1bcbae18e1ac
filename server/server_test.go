package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/styles"
)

// testConfig is a server on temporary folders with one sample photo, the test backend and small
// limits.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	dir := t.TempDir()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Source = filepath.Join(dir, "images")
	if err := os.MkdirAll(cfg.Source, 0o755); err != nil {
		t.Fatal(err)
	}
	photo, err := os.ReadFile(testutil.Shared(t, "images", "tubingen.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Source, "tubingen.jpg"), photo, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Weights = testutil.Weights(t)
	cfg.Backend = testutil.Backend()
	cfg.MaxWorkPx = 64
	cfg.AdminToken = "test-token"
	return cfg
}

func TestConfigValidate(t *testing.T) {
	good := testConfig(t)
	tests := []struct {
		name   string
		change func(*Config)
		flag   string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"bad addr", func(c *Config) { c.Addr = "8080" }, "--addr"},
		{"no workers", func(c *Config) { c.Workers = 0 }, "--workers"},
		{"negative queue", func(c *Config) { c.Queue = -1 }, "--queue"},
		{"default over max iters", func(c *Config) { c.DefaultIters = 600 }, "--default-iters"},
		{"tiny work size", func(c *Config) { c.MaxWorkPx = 8 }, "--max-work-px"},
		{"unknown convolutions", func(c *Config) { c.Convolutions = "fft" }, "--convolutions"},
		{"native convolutions", func(c *Config) { c.Convolutions = "native" }, ""},
		{"backend's work size", func(c *Config) { c.MaxWorkPx = 0 }, ""},
		{"step over the work size", func(c *Config) { c.WorkStep = 96 }, "--work-step"},
		{"tiny step", func(c *Config) { c.WorkStep = 8 }, "--work-step"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "--timeout"},
		{"missing source folder", func(c *Config) { c.Source = "/nonexistent/images" }, "--source"},
		{"ftp origin", func(c *Config) { c.Source = "ftp://example.com/" }, "--source"},
		{"http origin", func(c *Config) { c.Source = "https://origin.example/base/" }, ""},
		{"two signing keys", func(c *Config) { c.SigningKey, c.SigningKeyFile = "a", "/tmp/k" }, "--signing-key-file"},
		{"zero output size", func(c *Config) { c.MaxOutputPx = 0 }, "--max-output-px"},
		{"no queue", func(c *Config) { c.Queue = 0 }, ""},
		{"zero source side", func(c *Config) { c.MaxSourceSide = 0 }, "--max-source-side"},
		{"zero idle timeout", func(c *Config) { c.IdleTimeout = 0 }, "--idle-timeout"},
		{"zero write timeout", func(c *Config) { c.WriteTimeout = 0 }, "--write-timeout"},
		{"zero read timeout", func(c *Config) { c.ReadTimeout = 0 }, "--read-timeout"},
		{"admin on the public port", func(c *Config) { c.AdminAddr = c.Addr }, "--admin-addr"},
		{"admin port", func(c *Config) { c.AdminAddr = "127.0.0.1:9090" }, ""},
		{"missing presets file", func(c *Config) { c.Presets = "/nonexistent/presets" }, "--presets"},
		{"presets", func(c *Config) { c.Presets = presetsFile(t, "thumb: w=400&h=300&fit=cover&style=starry&iters=20\n") }, ""},
		{"malformed preset", func(c *Config) { c.Presets = presetsFile(t, "thumb w=400\n") }, "--presets"},
		{"preset with an unknown parameter", func(c *Config) { c.Presets = presetsFile(t, "a: width=400\n") }, "--presets"},
		{"preset with a bad value", func(c *Config) { c.Presets = presetsFile(t, "a: gravity=up\n") }, "--presets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			err := c.Validate()
			if (err == nil) != (tc.flag == "") || (err != nil && !strings.Contains(err.Error(), tc.flag)) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tc.flag)
			}
		})
	}
}

func presetsFile(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "presets")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// metricValue reads one sample from the Prometheus text exposition.
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestServerEndToEnd runs the real server (engine, library, pipeline, metrics) on a loopback
// port: health, readiness, a plain and a stylized image, caching, JSON errors and metrics.
func TestServerEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addStyle(t, s, "starry")
	ts := httptest.NewServer(s.Echo)
	defer ts.Close()

	if res, body := get(t, ts.URL+"/healthz"); res.StatusCode != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %s", res.StatusCode, body)
	}
	if res, body := get(t, ts.URL+"/readyz"); res.StatusCode != 200 || !strings.Contains(body, `"backend"`) {
		t.Errorf("/readyz: %d %s", res.StatusCode, body)
	}

	plain := ts.URL + "/img/tubingen.jpg?w=120"
	res, first := get(t, plain)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" || res.Header.Get("ETag") == "" {
		t.Fatalf("plain resize: %d %v", res.StatusCode, res.Header)
	}
	hitsBefore := metricValue(t, ts.URL, `styleproxy_cache_lookups_total{result="hit",tier="memory"}`)
	if _, second := get(t, plain); second != first {
		t.Error("the same URL gave different bytes")
	}
	if hits := metricValue(t, ts.URL, `styleproxy_cache_lookups_total{result="hit",tier="memory"}`); hits != hitsBefore+1 {
		t.Errorf("memory cache hits went from %v to %v, want one more", hitsBefore, hits)
	}

	// Every filter the README documents is mounted.
	for _, q := range []string{"grayscale=1", "blur=2"} {
		if res, body := get(t, ts.URL+"/img/tubingen.jpg?w=64&"+q); res.StatusCode != 200 {
			t.Errorf("%s: %d %s", q, res.StatusCode, body)
		}
	}

	res, body := get(t, ts.URL+"/img/tubingen.jpg?style=starry&iters=3&w=96&format=png")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("stylized: %d %s", res.StatusCode, body)
	}
	if n := metricValue(t, ts.URL, "styleproxy_iterations_total"); n != 3 {
		t.Errorf("styleproxy_iterations_total = %v, want 3", n)
	}
	if n := metricValue(t, ts.URL, `styleproxy_work_seconds_count{kind="stylization"}`); n != 1 {
		t.Errorf("stylizations timed = %v, want 1", n)
	}
	if n := metricValue(t, ts.URL, `styleproxy_http_requests_total{method="GET",route="/img/*",status="200"}`); n < 3 {
		t.Errorf("/img 200s counted = %v, want at least 3", n)
	}

	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/img/tubingen.jpg?style=unknown", 404},
		{"/img/tubingen.jpg?style=starry&iters=9999", 400},
		{"/img/missing.jpg", 404},
		{"/no/such/route", 404},
	} {
		res, body := get(t, ts.URL+tc.path)
		if res.StatusCode != tc.status || !strings.Contains(body, `"status":`+strconv.Itoa(tc.status)) {
			t.Errorf("%s: %d %s, want %d with a JSON error", tc.path, res.StatusCode, body, tc.status)
		}
	}
	if n := metricValue(t, ts.URL, `styleproxy_http_requests_total{method="GET",route="/img/*",status="404"}`); n != 2 {
		t.Errorf("/img 404s counted = %v, want 2", n)
	}
}

// TestRunShutsDownGracefully serves on a real listener, starts a stylization whose client then
// leaves, and stops: Run must return only after that detached work finished and was cached.
func TestRunShutsDownGracefully(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	addStyle(t, s, "starry")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, 60*time.Second) }()
	if res, _ := get(t, base+"/healthz"); res.StatusCode != 200 {
		t.Errorf("/healthz: %d", res.StatusCode)
	}

	const u = "/img/tubingen.jpg?style=starry&iters=40&w=64"
	reqCtx, leave := context.WithCancel(context.Background())
	go func() {
		req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, base+u, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	waitFor(t, "the stylization to start", func() bool { return len(s.Pipeline.Running()) == 1 })
	leave()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if r := s.Pipeline.Running(); len(r) != 0 {
		t.Fatalf("Run returned with detached work still running: %+v", r)
	}
	ts := httptest.NewServer(s.Echo)
	defer ts.Close()
	if res, body := get(t, ts.URL+u); res.StatusCode != 200 {
		t.Fatalf("after shutdown: %d %s", res.StatusCode, body)
	}
	if n := metricValue(t, ts.URL, `styleproxy_work_seconds_count{kind="stylization"}`); n != 1 {
		t.Errorf("%v stylizations, want 1: the detached one was not cached before Run returned", n)
	}
}

// addStyle registers the shared starry_night artwork under name, small.
func addStyle(t *testing.T, s *Server, name string) {
	t.Helper()
	img, err := os.ReadFile(testutil.Shared(t, "images", "starry_night.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Library.Add(context.Background(), name, img, styles.AddOptions{Preset: "starry_night", StyleSize: 64}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWorkPxDefaultsByBackend(t *testing.T) {
	for _, tc := range []struct {
		flag   int
		onCUDA bool
		want   int
	}{{0, false, 256}, {0, true, 512}, {384, true, 384}, {128, false, 128}} {
		if got := workPx(tc.flag, tc.onCUDA); got != tc.want {
			t.Errorf("workPx(%d, cuda=%t) = %d, want %d", tc.flag, tc.onCUDA, got, tc.want)
		}
	}
}

// TestReadyzWhileWarming: after StartWarmup, /readyz is 503 naming the shapes left (and /healthz
// 200) until every work shape is compiled; then a stylized request compiles nothing.
func TestReadyzWhileWarming(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	addStyle(t, s, "starry")
	ts := httptest.NewServer(s.Echo)
	defer ts.Close()
	s.StartWarmup()
	res, body := get(t, ts.URL+"/readyz")
	// Some shapes may have compiled by now (the first one takes a fraction of a second), not all.
	if res.StatusCode != 503 || !regexp.MustCompile(`"warming":\["\d+x\d+"`).MatchString(body) || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("/readyz right after StartWarmup: %d %s, want 503 listing the shapes", res.StatusCode, body)
	}
	if res, _ := get(t, ts.URL+"/healthz"); res.StatusCode != 200 {
		t.Errorf("/healthz while warming: %d", res.StatusCode)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		res, body := get(t, ts.URL+"/readyz")
		if res.StatusCode == 200 {
			break
		}
		if res.StatusCode != 503 || !strings.Contains(body, "warming") || time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s", res.StatusCode, body)
		}
	}
	before := s.Engine.Compilations()
	if res, body := get(t, ts.URL+"/img/tubingen.jpg?style=starry&iters=2&w=90&h=40&fit=fill"); res.StatusCode != 200 {
		t.Fatalf("stylized: %d %s", res.StatusCode, body)
	}
	if n := s.Engine.Compilations() - before; n != 0 {
		t.Errorf("a request after warm-up compiled %d programs, want none", n)
	}
}

// TestConvolutionsFlagReachesTheEngine: --convolutions native gives the engine the backend's
// convolution op; the default keeps im2col.
func TestConvolutionsFlagReachesTheEngine(t *testing.T) {
	for _, want := range []engine.Convolutions{engine.Im2col, engine.Native} {
		c := testConfig(t)
		c.Convolutions = want
		e, _, err := OpenEngine(c.Weights, c.Backend, c.engineOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Convolutions(); got != want {
			t.Errorf("--convolutions %s: the engine computes with %s", want, got)
		}
	}
	if got := DefaultConfig().Convolutions; got != engine.Im2col {
		t.Errorf("default --convolutions %s, want im2col", got)
	}
}
