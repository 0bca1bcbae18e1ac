package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

// metricsTestServer is a real pipeline (folder source, the blocking heavy filter) with the
// server's metrics middleware and hooks.
func metricsTestServer(t *testing.T, f *galleryBlockFilter) (*httptest.Server, *metrics) {
	t.Helper()
	dir := t.TempDir()
	galleryWrite(t, filepath.Join(dir, "cat.jpg"), stylesTestImage(t, 40, 30, 2, imaging.JPEG))
	src, err := pipeline.NewDirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	m := newMetrics()
	e := echo.New()
	e.HTTPErrorHandler = pipeline.ErrorHandler
	e.Use(m.middleware)
	cfg := pipeline.NewDefaultConfig()
	cfg.Source, cfg.Filters, cfg.Queue, cfg.Hooks = src, []plugin.Filter{f}, 4, m.hooks()
	if _, err := pipeline.Mount(e, cfg); err != nil {
		t.Fatal(err)
	}
	e.GET("/metrics", m.handler())
	m.setRoutes(e.Routes())
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, m
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestRunningCountsOnlyWorkHoldingAWorker(t *testing.T) {
	f := &galleryBlockFilter{started: make(chan struct{}), release: make(chan struct{})}
	srv, _ := metricsTestServer(t, f)
	done := make(chan struct{}, 2)
	for _, u := range []string{"/img/cat.jpg?block=1", "/img/cat.jpg?block=1&w=30"} {
		go func() {
			if resp, err := http.Get(srv.URL + u); err == nil {
				resp.Body.Close()
			}
			done <- struct{}{}
		}()
		if u == "/img/cat.jpg?block=1" {
			<-f.started
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(scrape(t, srv.URL), "styleproxy_queue_depth 1") {
		if time.Now().After(deadline) {
			t.Fatal("the second request never queued")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if body := scrape(t, srv.URL); !strings.Contains(body, "styleproxy_stylizations_running 1\n") {
		t.Errorf("with one running and one queued:\n%s", grep(body, "styleproxy_stylizations_running"))
	}
	close(f.release)
	<-done
	<-done
}

func TestMetricsLabelsAreBounded(t *testing.T) {
	f := &galleryBlockFilter{started: make(chan struct{}), release: make(chan struct{})}
	srv, _ := metricsTestServer(t, f)
	for i := range 50 {
		req, _ := http.NewRequest(fmt.Sprintf("M%d", i), fmt.Sprintf("%s/no/such/route/%d", srv.URL, i), nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	body := scrape(t, srv.URL)
	lines := grep(body, "styleproxy_http_requests_total{")
	if n := strings.Count(lines, "\n"); n > 3 {
		t.Errorf("%d request series after 50 random methods and paths:\n%s", n, lines)
	}
	if !strings.Contains(lines, `method="other"`) || !strings.Contains(lines, `route="other"`) {
		t.Errorf("unknown methods and routes should be labelled other:\n%s", lines)
	}
}

func grep(body, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
