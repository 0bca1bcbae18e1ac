package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/filters/style"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/internal/natstest"
)

// clusterServer is a serve --nats replica on srv.
func clusterServer(t *testing.T, srv *natstest.Server) *Server {
	t.Helper()
	cfg := testConfig(t)
	cfg.NATS = srv.URL()
	cfg.AdminToken = stylesTestToken
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func serveGet(s *Server, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// Two replicas on one NATS share the style library: a style registered through A's admin API
// is served by B within a second. /readyz fails while NATS is away and recovers with it.
func TestReplicasShareTheStyleLibrary(t *testing.T) {
	srv := natstest.Start(t)
	a, b := clusterServer(t, srv), clusterServer(t, srv)
	api := &stylesTestAPI{e: a.Echo}
	rec := api.upload(t, [][2]string{{"name", "wave"}, {"style_size", "64"}}, stylesTestImage(t, 96, 64, 1, imaging.PNG))
	if rec.Code != http.StatusCreated {
		t.Fatalf("register through A: %d %s", rec.Code, rec.Body)
	}
	registered := time.Now()
	for serveGet(b, "/styles/wave").Code != http.StatusOK {
		if time.Since(registered) > time.Second {
			t.Fatal("B does not serve the style A registered within 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if rec := serveGet(a, "/readyz"); rec.Code != http.StatusOK {
		t.Fatalf("/readyz with NATS up: %d %s", rec.Code, rec.Body)
	}
	srv.Stop()
	waitFor(t, "/readyz to report the lost connection", func() bool {
		rec := serveGet(a, "/readyz")
		return rec.Code == http.StatusServiceUnavailable && strings.Contains(rec.Body.String(), "NATS")
	})
	if rec := serveGet(b, "/styles/wave"); rec.Code != http.StatusOK {
		t.Errorf("the library in memory is not served while NATS is away: %d", rec.Code)
	}
	srv.Restart()
	waitFor(t, "/readyz to recover", func() bool { return serveGet(a, "/readyz").Code == http.StatusOK })
}

func TestClusterFlagsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		flag   string
	}{
		{"creds without nats", func(c *Config) { c.NATSCreds = "/tmp/x.creds" }, "--nats-creds"},
		{"worker without nats", func(c *Config) { c.Worker = true }, "--worker"},
		{"replicas", func(c *Config) { c.NATS, c.NATSReplicas = "nats://127.0.0.1:4222", 7 }, "--nats-replicas"},
		{"ack wait", func(c *Config) { c.NATS, c.NATSAckWait = "nats://127.0.0.1:4222", time.Millisecond }, "--nats-ack-wait"},
	} {
		c := testConfig(t)
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.flag)
		}
	}
	w := DefaultWorkerConfig()
	if err := w.Validate(); err == nil || !strings.Contains(err.Error(), "--nats") {
		t.Errorf("worker without --nats: %v", err)
	}
	w.NATS, w.MaxIters = "nats://127.0.0.1:4222", 0
	if err := w.Validate(); err == nil || !strings.Contains(err.Error(), "--max-iters") {
		t.Errorf("worker with --max-iters 0: %v", err)
	}
	// A GPU worker batches its jobs as serve batches its requests, under the same limit.
	w = DefaultWorkerConfig()
	w.NATS, w.GPUBatch = "nats://127.0.0.1:4222", style.MaxGPUBatch+1
	if err := w.Validate(); err == nil || !strings.Contains(err.Error(), "--gpu-batch") {
		t.Errorf("worker with --gpu-batch %d: %v", w.GPUBatch, err)
	}
	w.GPUBatch = 4
	if err := w.Validate(); err != nil {
		t.Errorf("worker with --gpu-batch 4: %v", err)
	}
	if sc := w.serveConfig(); sc.styleConfig(true).GPUBatch != 4 {
		t.Errorf("worker --gpu-batch 4 gives the style filter GPUBatch %d", sc.styleConfig(true).GPUBatch)
	}
}
