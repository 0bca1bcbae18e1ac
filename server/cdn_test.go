package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/styles"
)

// TestCDNOrigin checks what a CDN in front of the server relies on: pinned URLs are immutable,
// unpinned ones follow the style's version with their own Cache-Control, responses carry purge
// keys, variants share one optimisation, and a replaced style changes the unpinned ETag.
func TestCDNOrigin(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	addStyle(t, s, "starry")
	old, err := s.Library.Get("starry")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Echo)
	defer ts.Close()

	pinned := ts.URL + "/img/tubingen.jpg?style=starry@" + old.Version + "&iters=3&w=96"
	unpinned := ts.URL + "/img/tubingen.jpg?style=starry&iters=3&w=96"
	pres, _ := get(t, pinned)
	ures, _ := get(t, unpinned)
	for _, c := range []struct {
		res       *http.Response
		want, key string
	}{
		{pres, pipeline.ImmutableCacheControl, "style:starry@" + old.Version},
		{ures, pipeline.DefaultCacheControlUnpinned, "style:starry"},
	} {
		if c.res.StatusCode != 200 {
			t.Fatalf("%s: status %d", c.res.Request.URL, c.res.StatusCode)
		}
		if cc := c.res.Header.Get("Cache-Control"); cc != c.want {
			t.Errorf("%s: Cache-Control %q, want %q", c.res.Request.URL, cc, c.want)
		}
		for _, h := range []string{"Surrogate-Key", "Xkey"} {
			if k := c.res.Header.Get(h); k != c.key+" source:tubingen.jpg" {
				t.Errorf("%s: %s %q, want the source path's and the style's keys", c.res.Request.URL, h, k)
			}
		}
	}
	if pres.Header.Get("ETag") != ures.Header.Get("ETag") {
		t.Error("the pinned and the unpinned URL of the current version have different ETags")
	}

	// Four formats and three strengths of one picture and style: one optimisation.
	getVariants(t, unpinned, []string{"100", "60", "30"})
	if n := metricValue(t, ts.URL, "styleproxy_optimisations_total"); n != 1 {
		t.Errorf("styleproxy_optimisations_total = %v after 2 URLs and 12 variants of one picture and style, want 1", n)
	}

	// Replacing the style changes the unpinned URL's ETag; the old pinned URL is a clear 404.
	scream, err := os.ReadFile(testutil.Shared(t, "images", "the_scream.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Library.Add(context.Background(), "starry", scream, styles.AddOptions{Preset: "the_scream", StyleSize: 64, Replace: true}); err != nil {
		t.Fatal(err)
	}
	res, _ := get(t, unpinned)
	if res.StatusCode != 200 || res.Header.Get("ETag") == ures.Header.Get("ETag") {
		t.Errorf("after --replace the unpinned URL gives %d with ETag %s, want a new ETag", res.StatusCode, res.Header.Get("ETag"))
	}
	res, body := get(t, pinned)
	if res.StatusCode != 404 || !strings.Contains(body, old.Version) || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the replaced version's pinned URL: %d %q %s, want a no-store 404 naming the version", res.StatusCode, res.Header.Get("Cache-Control"), body)
	}
}

// getVariants asks, all at once, for u in four formats (format=auto as a WebP browser) and
// each strength, and checks each answer's type.
func getVariants(t *testing.T, u string, strengths []string) {
	t.Helper()
	formats := map[string]string{"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "auto": "image/webp"}
	var wg sync.WaitGroup
	for f, ct := range formats {
		for _, strength := range strengths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodGet, u+"&format="+f+"&strength="+strength, nil)
				req.Header.Set("Accept", "image/webp,*/*")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || res.Header.Get("Content-Type") != ct {
					t.Errorf("format=%s strength=%s: %d %s %s", f, strength, res.StatusCode, res.Header.Get("Content-Type"), body)
				}
			}()
		}
	}
	wg.Wait()
}

// TestEveryErrorIsNotStored asks every route for its errors (the router, the styles and admin
// API, the pipeline) and checks each is JSON with Cache-Control: no-store.
func TestEveryErrorIsNotStored(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxUploadMB = 1
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addStyle(t, s, "starry")
	r := errorRequests{base: "http://" + runOnLoopback(t, s)}
	ct, badForm := multipartForm("name", "x", "colour", "red")
	ct2, exists := multipartForm("name", "starry", "image", "not really")
	for _, tc := range []struct {
		req    *http.Request
		status int
	}{
		{r.plain(http.MethodGet, "/no/such/route"), 404},
		{r.plain(http.MethodPost, "/healthz"), 405},
		{r.plain(http.MethodGet, "/styles/missing"), 404},
		{r.plain(http.MethodGet, "/styles/missing/thumbnail.jpg"), 404},
		{r.plain(http.MethodGet, "/img/tubingen.jpg?bogus=1"), 400},
		{r.plain(http.MethodGet, "/img/missing.jpg"), 404},
		{r.plain(http.MethodGet, "/img/tubingen.jpg?style=missing"), 404},
		{r.plain(http.MethodGet, "/img/tubingen.jpg?style=starry@0123456789abcdef"), 404},
		{r.plain(http.MethodPost, "/admin/styles"), 401},
		{r.admin(http.MethodPost, "/admin/styles", "text/plain", "hello"), 415},
		{r.admin(http.MethodPost, "/admin/styles", ct, badForm), 400},
		{r.admin(http.MethodPost, "/admin/styles", ct2, exists), 409},
		{r.admin(http.MethodPost, "/admin/styles", "multipart/form-data; boundary=B", strings.Repeat("x", 2<<20)), 413},
		{r.admin(http.MethodDelete, "/admin/styles/missing", "", ""), 404},
	} {
		res, err := http.DefaultClient.Do(tc.req)
		if err != nil {
			t.Errorf("%s %s: %v", tc.req.Method, tc.req.URL.Path, err)
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		checkStoredError(t, tc.req.Method+" "+tc.req.URL.String(), res, body, tc.status)
	}
}

// TestNetHTTPErrorsAreJSON: the answers net/http gives before any handler runs (a request line
// it cannot parse, headers too large) are JSON with no-store too.
func TestNetHTTPErrorsAreJSON(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := runOnLoopback(t, s)
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"bad escape", "GET /img/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"huge header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2*maxHeaderBytes) + "\r\n\r\n", 431},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go io.WriteString(c, tc.raw) // the server may answer before it has read it all
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			c.Close()
			continue
		}
		body, _ := io.ReadAll(res.Body)
		c.Close()
		checkStoredError(t, tc.name, res, body, tc.status)
	}
}

// runOnLoopback runs s.Run on a loopback listener until the test ends, and returns its address.
func runOnLoopback(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, 10*time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// errorRequests builds requests to a server at base.
type errorRequests struct{ base string }

func (r errorRequests) plain(method, path string) *http.Request {
	req, _ := http.NewRequest(method, r.base+path, nil)
	return req
}

// admin is a request with the test's admin token.
func (r errorRequests) admin(method, path, contentType, body string) *http.Request {
	req, _ := http.NewRequest(method, r.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-token")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// multipartForm is a multipart body of text fields, and its Content-Type.
func multipartForm(fields ...string) (contentType, body string) {
	var b strings.Builder
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, "--B\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", fields[i], fields[i+1])
	}
	b.WriteString("--B--\r\n")
	return "multipart/form-data; boundary=B", b.String()
}

func checkStoredError(t *testing.T, what string, res *http.Response, body []byte, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Errorf("%s: status %d, want %d (%s)", what, res.StatusCode, status, body)
		return
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: %d with Cache-Control %q, want no-store", what, status, cc)
	}
	var eb pipeline.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Status != status || eb.Error == "" {
		t.Errorf("%s: body %q is not the JSON error form with status %d", what, body, status)
	}
}
