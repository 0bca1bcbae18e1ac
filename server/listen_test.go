package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// serveOn serves h with cfg's http.Server on a loopback port.
func serveOn(t *testing.T, cfg Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.httpServer(h)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestIdleConnectionsClose(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	addr := serveOn(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// Idle now: the server must close the connection soon after IdleTimeout.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle keep-alive connection is still open (read: %v)", err)
	}
}

// TestWriteTimeoutSparesImages: a slow answer on another route is cut at WriteTimeout, while
// /img answers (a stylization may take all of --timeout) are written whole.
func TestWriteTimeoutSparesImages(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WriteTimeout, cfg.Timeout = 200*time.Millisecond, 5*time.Second
	e := newEcho(cfg, slog.New(slog.DiscardHandler), newMetrics())
	slow := func(c echo.Context) error {
		time.Sleep(600 * time.Millisecond)
		return c.String(http.StatusOK, "done")
	}
	e.GET("/img/*", slow)
	e.GET("/styles", slow)
	addr := serveOn(t, cfg, e)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Get("http://" + addr + "/img/x.jpg")
	if err != nil {
		t.Fatalf("/img answer cut short: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "done" {
		t.Errorf("/img body %q", body)
	}
	if res, err := client.Get("http://" + addr + "/styles"); err == nil {
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil && string(body) == "done" {
			t.Error("a slow non-image answer outlived --write-timeout")
		}
	}
}

func TestRequestLogLine(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	e := newEcho(DefaultConfig(), log, newMetrics())
	e.GET("/img/*", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/img/a.jpg?w=100&style=starry", nil))
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &line); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	if line["query"] != "w=100&style=starry" || line["id"] == "" || line["id"] == nil {
		t.Errorf("request line %v: want the query and the request id", line)
	}
	if _, ok := line["seconds"].(float64); !ok {
		t.Errorf("request line %v: want the duration in seconds", line)
	}
}

// TestAdminListener: with --admin-addr the operator surfaces leave the public app, and with
// signing on the public app lists no source files; Run serves the admin app on its address.
func TestAdminListener(t *testing.T) {
	cfg := testConfig(t)
	port, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminAddr = port.Addr().String()
	port.Close()
	cfg.SigningKey = "k"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	status := func(h http.Handler, method, target string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, target, nil)
		req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, r := range [][2]string{{"GET", "/metrics"}, {"GET", "/api/progress"}, {"DELETE", "/admin/styles/x"}} {
		if code, _ := status(s.Echo, r[0], r[1]); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("public %s %s: %d, want no such route", r[0], r[1], code)
		}
		if code, body := status(s.Admin, r[0], r[1]); code == http.StatusNotFound && !strings.Contains(body, "style") {
			t.Errorf("admin %s %s: %d %s", r[0], r[1], code, body)
		}
	}
	if _, body := status(s.Echo, "GET", "/api/samples"); strings.TrimSpace(body) != "[]" {
		t.Errorf("public /api/samples with signing on: %s, want []", body)
	}
	if _, body := status(s.Admin, "GET", "/api/samples"); !strings.Contains(body, "tubingen.jpg") {
		t.Errorf("admin /api/samples: %s", body)
	}
	for _, h := range []http.Handler{s.Echo, s.Admin} {
		if code, _ := status(h, "GET", "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz: %d", code)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, 5*time.Second) }()
	waitFor(t, "the admin listener", func() bool {
		res, err := http.Get("http://" + cfg.AdminAddr + "/metrics")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
