package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

func TestPlainProxy(t *testing.T) {
	s := startServer(t, serverOpts{})
	resp, body := get(t, s.URL+"/img/kitten.jpg")
	info := wantOK(t, resp, body)
	if info.Width != 400 || info.Height != 266 || info.Format != imaging.JPEG {
		t.Errorf("kitten.jpg without options: %+v, want the 400x266 JPEG", info)
	}
	h := resp.Header
	if cc := h.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("Cache-Control %q", cc)
	}
	etag := h.Get("ETag")
	if len(etag) != 66 || etag[0] != '"' || etag[65] != '"' {
		t.Errorf("ETag %q is not a quoted SHA-256", etag)
	}
	if v := h.Values("Vary"); len(v) != 0 {
		t.Errorf("Vary %q without format=auto", v)
	}

	// HEAD: the same headers, no body.
	hresp, hbody := fetch(t, http.MethodHead, s.URL+"/img/kitten.jpg")
	if hresp.StatusCode != 200 || len(hbody) != 0 {
		t.Fatalf("HEAD: status %d, %d body bytes", hresp.StatusCode, len(hbody))
	}
	for _, k := range []string{"ETag", "Content-Type", "Content-Length", "Cache-Control"} {
		if hresp.Header.Get(k) != h.Get(k) {
			t.Errorf("HEAD %s %q, GET gave %q", k, hresp.Header.Get(k), h.Get(k))
		}
	}

	// If-None-Match: 304 with the validators and no body, for the strong, weak and listed forms.
	for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
		r, b := get(t, s.URL+"/img/kitten.jpg", "If-None-Match", inm)
		if r.StatusCode != http.StatusNotModified || len(b) != 0 {
			t.Errorf("If-None-Match %s: status %d, %d bytes", inm, r.StatusCode, len(b))
		}
		if r.Header.Get("ETag") != etag || r.Header.Get("Cache-Control") == "" {
			t.Errorf("304 headers: %v", r.Header)
		}
	}
	if r, _ := get(t, s.URL+"/img/kitten.jpg", "If-None-Match", `"other"`); r.StatusCode != 200 {
		t.Errorf("a different ETag gave %d", r.StatusCode)
	}

	// Paths: subfolders and symlinks inside the folder work.
	for _, p := range []string{"sub/kitten.jpg", "alias.jpg", "sub//kitten.jpg", "./sub/kitten.jpg"} {
		r, b := get(t, s.URL+"/img/"+p)
		wantOK(t, r, b)
	}
	// Unknown routes stay Echo's, in the JSON form.
	r, b := get(t, s.URL+"/nothing")
	wantError(t, r, b, 404, "")
}

func TestResizeAndFormats(t *testing.T) {
	s := startServer(t, serverOpts{cfg: func(c *pipeline.Config) { c.MaxOutputPx = 1000 }})
	for _, tc := range []struct {
		path, query string
		w, h        int
		format      imaging.Format
	}{
		{"kitten.jpg", "w=200", 200, 133, imaging.JPEG},
		{"kitten.jpg", "h=133", 200, 133, imaging.JPEG},
		{"kitten.jpg", "w=100&h=100", 100, 67, imaging.JPEG}, // contain is the default
		{"kitten.jpg", "w=100&h=100&fit=contain", 100, 67, imaging.JPEG},
		{"kitten.jpg", "w=100&h=100&fit=cover", 100, 100, imaging.JPEG},
		{"kitten.jpg", "w=100&h=100&fit=fill", 100, 100, imaging.JPEG},
		{"kitten.jpg", "w=800", 800, 532, imaging.JPEG},       // enlarging is allowed up to the limit
		{"the_scream.jpg", "w=1000", 785, 1000, imaging.JPEG}, // the other side is bounded too
		{"starry_night.jpg", "", 1000, 792, imaging.JPEG},     // no size: shrunk to the limit
		{"kitten.jpg", "format=png", 400, 266, imaging.PNG},
		{"kitten.jpg", "format=webp&w=50", 50, 33, imaging.WebP},
		{"kitten.png", "", 400, 266, imaging.PNG},            // the source's format by default
		{"kitten.png", "format=jpg", 400, 266, imaging.JPEG}, // jpg is jpeg
	} {
		t.Run(tc.path+"?"+tc.query, func(t *testing.T) {
			resp, body := get(t, s.URL+"/img/"+tc.path+"?"+tc.query)
			info := wantOK(t, resp, body)
			if info.Width != tc.w || info.Height != tc.h || info.Format != tc.format {
				t.Errorf("got %dx%d %v, want %dx%d %v", info.Width, info.Height, info.Format, tc.w, tc.h, tc.format)
			}
		})
	}
	if imaging.CanEncode(imaging.AVIF) {
		resp, body := get(t, s.URL+"/img/kitten.jpg?format=avif&w=64")
		if wantOK(t, resp, body); resp.Header.Get("Content-Type") != "image/avif" {
			t.Errorf("format=avif gave %s", resp.Header.Get("Content-Type"))
		}
	} else {
		resp, body := get(t, s.URL+"/img/kitten.jpg?format=avif")
		wantError(t, resp, body, 400, "format")
	}

	// Quality changes the bytes (and the ETag); PNG ignores it.
	_, lo := get(t, s.URL+"/img/kitten.jpg?q=20")
	_, hi := get(t, s.URL+"/img/kitten.jpg?q=95")
	if len(lo) >= len(hi) {
		t.Errorf("q=20 gave %d bytes, q=95 %d", len(lo), len(hi))
	}
	a, _ := get(t, s.URL+"/img/kitten.jpg?format=png&q=10")
	b, _ := get(t, s.URL+"/img/kitten.jpg?format=png&q=90")
	if a.Header.Get("ETag") != b.Header.Get("ETag") {
		t.Error("q changed the ETag of a PNG")
	}
}

func TestCanonicalOptionsShareKeys(t *testing.T) {
	s := startServer(t, serverOpts{})
	etag := func(q string) string {
		t.Helper()
		resp, body := get(t, s.URL+"/img/kitten.jpg?"+q)
		wantOK(t, resp, body)
		return resp.Header.Get("ETag")
	}
	for _, group := range [][]string{
		{"w=100&h=50", "h=50&w=100", "w=0100&h=50", "w=100&h=50&fit=contain"},
		{"w=100", "w=100&fit=cover", "w=100&q=85"},
		{"format=jpeg", "format=jpg"},
		{"grayscale=1&blur=2", "blur=2.0&grayscale=true", "blur=2.04&grayscale=1"},
		{"", "grayscale=0"},
	} {
		want := etag(group[0])
		for _, q := range group[1:] {
			if got := etag(q); got != want {
				t.Errorf("%q and %q have different ETags", group[0], q)
			}
		}
	}
	seen := map[string]string{}
	for _, q := range []string{"", "w=100", "w=100&h=100", "w=100&h=100&fit=cover", "format=png", "grayscale=1", "blur=2", "blur=3", "q=50", "fake=1", "fake=2", "w=100&fake=1"} {
		e := etag(q)
		if other, ok := seen[e]; ok {
			t.Errorf("%q and %q share an ETag", q, other)
		}
		seen[e] = q
	}
}

func TestGrayscaleFilter(t *testing.T) {
	s := startServer(t, serverOpts{})
	resp, body := get(t, s.URL+"/img/kitten.jpg?grayscale=1&format=png&w=80")
	wantOK(t, resp, body)
	p := decodeBody(t, body)
	for i := 0; i < len(p.Pix); i += 3 {
		if p.Pix[i] != p.Pix[i+1] || p.Pix[i] != p.Pix[i+2] {
			t.Fatalf("pixel %d is %v: not grey", i/3, p.Pix[i:i+3])
		}
	}
	_, plain := get(t, s.URL+"/img/kitten.jpg?format=png&w=80")
	_, blurred := get(t, s.URL+"/img/kitten.jpg?format=png&w=80&blur=3")
	if bytes.Equal(plain, blurred) || len(blurred) >= len(plain) {
		t.Errorf("blur=3 gave %d PNG bytes, plain %d: expected fewer", len(blurred), len(plain))
	}
}

func TestFormatAuto(t *testing.T) {
	s := startServer(t, serverOpts{})
	for _, tc := range []struct {
		accept string
		want   string
	}{
		{"image/webp,*/*", "image/webp"},
		{"text/html, image/webp;q=0.8", "image/webp"},
		{"image/webp;q=0", "image/jpeg"},
		{"*/*", "image/jpeg"},
		{"", "image/jpeg"},
	} {
		resp, body := get(t, s.URL+"/img/kitten.jpg?format=auto&w=60", "Accept", tc.accept)
		wantOK(t, resp, body)
		if ct := resp.Header.Get("Content-Type"); ct != tc.want {
			t.Errorf("Accept %q: %s, want %s", tc.accept, ct, tc.want)
		}
		if v := resp.Header.Get("Vary"); v != "Accept" {
			t.Errorf("Accept %q: Vary %q, want Accept", tc.accept, v)
		}
	}
	if imaging.CanEncode(imaging.AVIF) {
		resp, _ := get(t, s.URL+"/img/kitten.jpg?format=auto&w=60", "Accept", "image/avif,image/webp")
		if ct := resp.Header.Get("Content-Type"); ct != "image/avif" {
			t.Errorf("Accept avif: %s", ct)
		}
	}
	// The negotiated result is the explicit one: same bytes, same ETag, but only auto varies.
	a, ab := get(t, s.URL+"/img/kitten.jpg?format=auto&w=60", "Accept", "image/webp")
	w, wb := get(t, s.URL+"/img/kitten.jpg?format=webp&w=60")
	if !bytes.Equal(ab, wb) || a.Header.Get("ETag") != w.Header.Get("ETag") || w.Header.Get("Vary") != "" {
		t.Error("format=auto for a WebP client differs from format=webp, or format=webp varies")
	}
}

func TestRefusals(t *testing.T) {
	s := startServer(t, serverOpts{cfg: func(c *pipeline.Config) { c.MaxSourceBytes = 300_000; c.MaxSourcePixels = 1_000_000 }})
	for _, tc := range []struct {
		path    string
		status  int
		mention string
	}{
		// Parameters: unknown, malformed, over limits, repeated.
		{"kitten.jpg?foo=1", 400, "foo"},
		{"kitten.jpg?w=1&Style=x", 400, "Style"},
		{"kitten.jpg?w=0", 400, "w"},
		{"kitten.jpg?w=abc", 400, "w"},
		{"kitten.jpg?w=-5", 400, "w"},
		{"kitten.jpg?w=1e3", 400, "w"},
		{"kitten.jpg?w=", 400, "w"},
		{"kitten.jpg?w=2049", 400, "w"},
		{"kitten.jpg?h=99999999999", 400, "h"},
		{"kitten.jpg?w=10&w=20", 400, "w"},
		{"kitten.jpg?fit=crop&w=5&h=5", 400, "fit"},
		{"kitten.jpg?format=gif", 400, "format"},
		{"kitten.jpg?q=0", 400, "q"},
		{"kitten.jpg?q=101", 400, "q"},
		{"kitten.jpg?grayscale=2", 400, "grayscale"},
		{"kitten.jpg?blur=0", 400, "blur"},
		{"kitten.jpg?blur=NaN", 400, "blur"},
		{"kitten.jpg?blur=0x1p2", 400, "blur"},
		{"kitten.jpg?blur=1_0", 400, "blur"},
		{"kitten.jpg?blur=1e1", 400, "blur"},
		{"kitten.jpg?blur=-0", 400, "blur"},
		{"kitten.jpg?grayscale=yes", 400, "grayscale"},
		{"kitten.jpg?w=+2", 400, "w"},
		{"kitten.jpg?fake=x", 400, "fake"},
		{"kitten.jpg?w=%zz", 400, "query"},
		// Paths.
		{"../secret.jpg", 400, "path"},
		{"sub/../../secret.jpg", 400, "path"},
		{"%2e%2e/secret.jpg", 400, "path"},
		{"..%2fsecret.jpg", 400, "path"},
		{"/etc/passwd", 400, "path"},
		{"", 400, "path"},
		{"kitten%00.jpg", 400, "path"},
		{"escape.jpg", 403, "outside"},
		{"missing.jpg", 404, "missing.jpg"},
		{"sub/missing.jpg", 404, ""},
		{"kitten.jpg/x", 404, ""},
		{"folder", 404, ""},
		// Unknown style (the fake filter's stand-in).
		{"kitten.jpg?fake=missing", 404, "missing"},
		// Not images, too large.
		{"notimage.jpg", 415, ""},
		{"drawing.svg", 415, ""},
		{"starry_night.jpg", 413, "300000"}, // 625 kB, over 300 kB
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, body := fetch(t, method, s.URL+"/img/"+tc.path)
			wantError(t, resp, body, tc.status, tc.mention)
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: error Cache-Control %q", tc.path, resp.Header.Get("Cache-Control"))
			}
		}
	}
	// Pixel limit: the_scream.jpg is 217 kB but 1200x1528 = 1.8 megapixels.
	resp, body := get(t, s.URL+"/img/the_scream.jpg")
	wantError(t, resp, body, 413, "pixels")
	// The server is fine afterwards.
	resp, body = get(t, s.URL+"/img/kitten.jpg")
	wantOK(t, resp, body)
}

func TestDeterministicAcrossRestarts(t *testing.T) {
	dir := imageDir(t)
	cacheDir := t.TempDir()
	const q = "/img/tubingen.jpg?w=300&h=200&fit=cover&format=webp&q=70&grayscale=1&blur=1.5"

	// No cache at all: two computations, identical bytes.
	s0 := startServer(t, serverOpts{dir: dir, noCache: true})
	r1, b1 := get(t, s0.URL+q)
	wantOK(t, r1, b1)
	r2, b2 := get(t, s0.URL+q)
	if !bytes.Equal(b1, b2) || r1.Header.Get("ETag") != r2.Header.Get("ETag") {
		t.Fatal("the same URL gave different bytes")
	}
	if n := s0.Hits.workStarts.Load(); n != 2 {
		t.Errorf("uncached server computed %d times, want 2", n)
	}

	// A cached server, then a fresh one on the same cache folder: same bytes, from disk.
	s1 := startServer(t, serverOpts{dir: dir, cacheDir: cacheDir})
	r3, b3 := get(t, s1.URL+q)
	if !bytes.Equal(b1, b3) || r3.Header.Get("ETag") != r1.Header.Get("ETag") {
		t.Fatal("a second server gave different bytes or ETag")
	}
	s2 := startServer(t, serverOpts{dir: dir, cacheDir: cacheDir})
	r4, b4 := get(t, s2.URL+q)
	if !bytes.Equal(b1, b4) || r4.Header.Get("ETag") != r1.Header.Get("ETag") {
		t.Fatal("after a restart the bytes or ETag changed")
	}
	if s2.Hits.workStarts.Load() != 0 || s2.Hits.diskHits.Load() != 1 {
		t.Errorf("restarted server: %d computations, %d disk hits; want 0 and 1", s2.Hits.workStarts.Load(), s2.Hits.diskHits.Load())
	}
	get(t, s2.URL+q)
	if s2.Hits.memHits.Load() != 1 {
		t.Errorf("a disk hit was not promoted to memory: %d memory hits", s2.Hits.memHits.Load())
	}

	// Changing the source changes the key.
	kitten, _ := os.ReadFile(filepath.Join(dir, "kitten.jpg"))
	if err := os.WriteFile(filepath.Join(dir, "tubingen.jpg"), kitten, 0o644); err != nil {
		t.Fatal(err)
	}
	r5, b5 := get(t, s2.URL+q)
	wantOK(t, r5, b5)
	if r5.Header.Get("ETag") == r1.Header.Get("ETag") || bytes.Equal(b5, b1) {
		t.Error("a changed source image kept its ETag or bytes")
	}
}

func TestSigning(t *testing.T) {
	key := []byte("secret key")
	s := startServer(t, serverOpts{cfg: func(c *pipeline.Config) { c.SigningKey = key }})
	q := url.Values{"w": {"120"}, "grayscale": {"1"}}
	sig := pipeline.Sign(key, "/img/kitten.jpg", q)

	ok := func(u string) {
		t.Helper()
		resp, body := get(t, u)
		wantOK(t, resp, body)
	}
	ok(s.URL + "/img/kitten.jpg?w=120&grayscale=1&sig=" + sig)
	ok(s.URL + "/img/kitten.jpg?sig=" + sig + "&grayscale=1&w=120") // order does not matter
	signed, err := pipeline.SignURL(key, s.URL+"/img/sub/kitten.jpg?w=64&format=png")
	if err != nil {
		t.Fatal(err)
	}
	ok(signed)

	for _, u := range []string{
		"/img/kitten.jpg?w=120&grayscale=1",                            // no signature
		"/img/kitten.jpg?w=121&grayscale=1&sig=" + sig,                 // changed parameter
		"/img/kitten.jpg?w=120&sig=" + sig,                             // dropped parameter
		"/img/sub/kitten.jpg?w=120&grayscale=1&sig=" + sig,             // other path
		"/img/kitten.jpg?w=120&grayscale=1&sig=" + sig + "x",           // mangled
		"/img/kitten.jpg?w=120&grayscale=1&sig=" + sig + "&sig=" + sig, // twice
		"/img/kitten.jpg?w=120&grayscale=1&sig=" + pipeline.Sign([]byte("other"), "/img/kitten.jpg", q),
		"/img/kitten.jpg?w=120&grayscale=1&sig=" + sig + "=",  // padded: not the canonical spelling
		"/img/kitten.jpg?w=120&grayscale=1&sig=" + sig + "==", // padded twice
	} {
		resp, body := get(t, s.URL+u)
		wantError(t, resp, body, 403, "signature")
	}
	// Stray separators would let one signed URL be spelt many ways (and cached many times).
	for _, u := range []string{
		"/img/kitten.jpg?w=120&&grayscale=1&sig=" + sig,
		"/img/kitten.jpg?&w=120&grayscale=1&sig=" + sig,
		"/img/kitten.jpg?w=120&grayscale=1&sig=" + sig + "&",
	} {
		resp, body := get(t, s.URL+u)
		wantError(t, resp, body, 400, "query")
	}
}

func TestConcurrentIdenticalRequestsComputeOnce(t *testing.T) {
	fake := &fakeHeavy{delay: 300 * time.Millisecond}
	s := startServer(t, serverOpts{fake: fake})
	const n = 50
	u := s.URL + "/img/tubingen.jpg?w=256&fake=7"
	bodies := make([][]byte, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Get(u)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			statuses[i] = resp.StatusCode
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			bodies[i] = b.Bytes()
		}()
	}
	close(start)
	wg.Wait()
	if got := fake.applies.Load(); got != 1 {
		t.Errorf("the heavy filter ran %d times for %d identical requests, want 1", got, n)
	}
	if got := s.Hits.workStarts.Load(); got != 1 {
		t.Errorf("%d computations, want 1", got)
	}
	for i := range n {
		if statuses[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) || len(bodies[i]) == 0 {
			t.Fatalf("response %d: status %d, %d bytes; differs from response 0", i, statuses[i], len(bodies[i]))
		}
	}
}

func TestQueueFull(t *testing.T) {
	fake := &fakeHeavy{gate: make(chan struct{})}
	s := startServer(t, serverOpts{fake: fake, cfg: func(c *pipeline.Config) { c.Workers = 1; c.Queue = 2; c.RetryAfter = 7 * time.Second }})
	// The three requests go one at a time, each once the previous is where it should be, so the
	// queue's depth moves 1 (admitted), 0 (the first holds the worker), 1, 2 and never beyond.
	var wg sync.WaitGroup
	results := make([]int, 3)
	states := []func() bool{
		func() bool { r := s.P.Running(); return len(r) == 1 && r[0].Step == 1 && s.P.Queued() == 0 },
		func() bool { return s.P.Queued() == 1 },
		func() bool { return s.P.Queued() == 2 },
	}
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(fmt.Sprintf("%s/img/kitten.jpg?fake=%d", s.URL, i+1))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			results[i] = resp.StatusCode
		}()
		eventually(t, fmt.Sprintf("request %d running or queued", i+1), states[i])
	}
	if r := s.P.Running(); len(r) != 1 || s.P.Queued() != 2 || s.P.Waiting() != 3 {
		t.Fatalf("%d running, %d queued, %d waiting; want 1, 2, 3", len(r), s.P.Queued(), s.P.Waiting())
	}
	if !s.P.QueueFull() {
		t.Error("QueueFull is false with 1 running and 2 queued")
	}
	jobs := s.P.Running()
	if j := jobs[0]; j.Path != "kitten.jpg" || j.Step != 1 || j.Total != 3 || len(j.Key) != 64 {
		t.Errorf("running job %+v", j)
	}

	checkQueueRefuses(t, s)
	// A request for work already queued joins it rather than being refused.
	joined := make(chan int, 1)
	go func() {
		resp, err := client.Get(s.URL + "/img/kitten.jpg?fake=2")
		if err != nil {
			joined <- 0
			return
		}
		resp.Body.Close()
		joined <- resp.StatusCode
	}()
	// It waits (for the flight it joined: the gate is shut, so that flight cannot have ended).
	eventually(t, "the fourth request to wait", func() bool { return s.P.Waiting() == 4 })
	if m := s.Hits.maxQueue.Load(); m != 2 {
		t.Errorf("OnQueue peaked at %d, want 2", m)
	}
	if m := s.Hits.maxRunning.Load(); m != 1 {
		t.Errorf("OnQueue reported up to %d running with one worker, want 1", m)
	}
	if s.P.Queued() != 2 {
		t.Errorf("%d queued after a request joined queued work, want 2", s.P.Queued())
	}

	close(fake.gate)
	wg.Wait()
	for i, st := range results {
		if st != 200 {
			t.Errorf("queued request %d: status %d", i+1, st)
		}
	}
	if st := <-joined; st != 200 {
		t.Errorf("the request that joined queued work: status %d", st)
	}
	if n := fake.applies.Load(); n != 3 {
		t.Errorf("heavy filter ran %d times, want 3", n)
	}
	if s.P.QueueFull() || s.P.Queued() != 0 || len(s.P.Running()) != 0 {
		t.Error("the queue did not drain")
	}
	resp, body := get(t, s.URL+"/img/kitten.jpg?fake=99") // room again
	wantOK(t, resp, body)
}

// checkQueueRefuses: beyond a full queue, new heavy work gets 503 with Retry-After, for GET and
// HEAD, while the server stays healthy and light work goes on.
func checkQueueRefuses(t *testing.T, s *testServer) {
	t.Helper()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		resp, body := fetch(t, m, s.URL+"/img/kitten.jpg?fake=99")
		wantError(t, resp, body, 503, "queue")
		if ra := resp.Header.Get("Retry-After"); ra != "7" {
			t.Errorf("Retry-After %q, want 7", ra)
		}
	}
	start := time.Now()
	if resp, body := get(t, s.URL+"/healthz"); resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("healthz while the queue is full: %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, s.URL+"/img/kitten.jpg?w=99") // light work does not queue
	wantOK(t, resp, body)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("light requests took %v while the queue was full", d)
	}
}

func TestTimeout(t *testing.T) {
	fake := &fakeHeavy{gate: make(chan struct{})} // never opened: Apply waits for its deadline
	s := startServer(t, serverOpts{fake: fake, cfg: func(c *pipeline.Config) { c.Timeout, c.WorkTimeout = 300*time.Millisecond, time.Second }})
	start := time.Now()
	resp, body := get(t, s.URL+"/img/kitten.jpg?fake=1")
	wantError(t, resp, body, 504, "timed out")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("504 after %v", d)
	}
	eventually(t, "the job to end at WorkTimeout", func() bool { return !s.P.QueueFull() && len(s.P.Running()) == 0 })
	resp, body = get(t, s.URL+"/img/kitten.jpg?w=50")
	wantOK(t, resp, body)
}

// TestWorkOutlivesItsRequest: work longer than Timeout gets its requester a 504, goes on, and
// is cached: the next request is a hit, computed once.
func TestWorkOutlivesItsRequest(t *testing.T) {
	fake := &fakeHeavy{delay: 3 * time.Second}
	s := startServer(t, serverOpts{fake: fake, cfg: func(c *pipeline.Config) { c.Timeout = time.Second }})
	u := s.URL + "/img/kitten.jpg?fake=3&w=200"
	resp, body := get(t, u)
	wantError(t, resp, body, 504, "timed out")
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("504 with Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if len(s.P.Running()) != 1 {
		t.Fatal("the work stopped with its request")
	}
	// The work needs about 2 s more; its worker is given back only once it is cached.
	eventually(t, "the work to finish", func() bool { return len(s.P.Running()) == 0 })
	resp, body = get(t, u)
	wantOK(t, resp, body)
	if n := fake.applies.Load(); n != 1 {
		t.Errorf("the work ran %d times, want 1", n)
	}
	if n := s.Hits.memHits.Load(); n != 1 {
		t.Errorf("%d memory hits, want 1: the second request was not served from the cache", n)
	}
}

func TestClientLeavesWorkGoesOn(t *testing.T) {
	fake := &fakeHeavy{gate: make(chan struct{})}
	s := startServer(t, serverOpts{fake: fake})
	u := s.URL + "/img/kitten.jpg?fake=5&w=120"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	eventually(t, "the job to start", func() bool { return len(s.P.Running()) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client request: %v, want canceled", err)
	}
	time.Sleep(50 * time.Millisecond)
	close(fake.gate) // the work finishes with nobody waiting
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := s.P.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, u)
	wantOK(t, resp, body)
	if n := fake.applies.Load(); n != 1 {
		t.Errorf("heavy filter ran %d times, want 1: the abandoned result was not cached", n)
	}
	if s.Hits.memHits.Load() != 1 {
		t.Errorf("the second request was not a memory hit")
	}
}

func TestMountValidates(t *testing.T) {
	src, err := pipeline.NewDirSource(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for name, change := range map[string]func(*pipeline.Config){
		"no source": func(c *pipeline.Config) { c.Source = nil },
		"claims w":  func(c *pipeline.Config) { c.Filters = []plugin.Filter{claim{"x", []string{"w"}}} },
		"two owners": func(c *pipeline.Config) {
			c.Filters = []plugin.Filter{claim{"a", []string{"p"}}, claim{"b", []string{"p"}}}
		},
		"duplicate names": func(c *pipeline.Config) {
			c.Filters = []plugin.Filter{claim{"a", []string{"p"}}, claim{"a", []string{"r"}}}
		},
		"nil filter":       func(c *pipeline.Config) { c.Filters = []plugin.Filter{nil} },
		"negative":         func(c *pipeline.Config) { c.Workers = -1 },
		"zero workers":     func(c *pipeline.Config) { c.Workers = 0 },
		"negative queue":   func(c *pipeline.Config) { c.Queue = -1 },
		"no timeout":       func(c *pipeline.Config) { c.Timeout = 0 },
		"no side limit":    func(c *pipeline.Config) { c.MaxSourceSide = 0 },
		"no cache control": func(c *pipeline.Config) { c.CacheControl = "" },
	} {
		cfg := pipeline.NewDefaultConfig()
		cfg.Source = src
		change(&cfg)
		if _, err := pipeline.Mount(newEcho(), cfg); err == nil {
			t.Errorf("%s: Mount accepted the config", name)
		} else if !strings.Contains(err.Error(), "invalid config") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Zero waiting room is a setting, not "the default": --queue 0 means no queue.
	cfg := pipeline.NewDefaultConfig()
	cfg.Source, cfg.Queue, cfg.LightQueue = src, 0, 0
	if _, err := pipeline.Mount(newEcho(), cfg); err != nil {
		t.Errorf("no queues: %v", err)
	}
	if _, err := pipeline.NewDirSource(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("NewDirSource accepted a missing folder")
	}
}
