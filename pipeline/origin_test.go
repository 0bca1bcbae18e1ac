package pipeline_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/pipeline"
)

// origin is an httptest origin serving a copy of the image folder under /base/, with a few
// special paths:
//
//	/base/plain/NAME          NAME without validators (no ETag, no Last-Modified)
//	/base/nohead/NAME         405 to HEAD, NAME without validators to GET
//	/base/redirect/N/NAME     N redirects, then NAME
//	/base/away/NAME           a redirect to another origin
//	/base/status/CODE.jpg     that status
//	/base/slow.jpg            an answer after 2 s
//	/base/chunked/NAME        NAME streamed without a Content-Length
type origin struct {
	*httptest.Server
	dir   string
	away  string // another server's URL, for redirects off the origin
	gets  atomic.Int64
	heads atomic.Int64

	mu    sync.Mutex
	etags map[string]string // overrides of the content-hash ETag
}

func startOrigin(t testing.TB) *origin {
	o := &origin{dir: imageDir(t), etags: map[string]string{}}
	other := httptest.NewServer(http.FileServer(http.Dir(o.dir)))
	t.Cleanup(other.Close)
	o.away = other.URL
	o.Server = httptest.NewServer(http.HandlerFunc(o.handle))
	t.Cleanup(o.Close)
	return o
}

// handle answers as the table above says.
func (o *origin) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		o.heads.Add(1)
	} else {
		o.gets.Add(1)
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/base/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	validators := true
	switch {
	case strings.HasPrefix(p, "plain/"):
		p, validators = strings.TrimPrefix(p, "plain/"), false
	case strings.HasPrefix(p, "nohead/"):
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		p, validators = strings.TrimPrefix(p, "nohead/"), false
	case strings.HasPrefix(p, "redirect/"):
		rest := strings.TrimPrefix(p, "redirect/")
		n, name, _ := strings.Cut(rest, "/")
		k, _ := strconv.Atoi(n)
		target := "/base/" + name
		if k > 1 {
			target = fmt.Sprintf("/base/redirect/%d/%s", k-1, name)
		}
		http.Redirect(w, r, target, http.StatusFound)
		return
	case strings.HasPrefix(p, "away/"):
		http.Redirect(w, r, o.away+"/"+strings.TrimPrefix(p, "away/"), http.StatusFound)
		return
	case strings.HasPrefix(p, "status/"):
		code, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "status/"), ".jpg"))
		http.Error(w, "status", code)
		return
	case p == "slow.jpg":
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
		return
	case strings.HasPrefix(p, "chunked/"):
		data, err := os.ReadFile(filepath.Join(o.dir, strings.TrimPrefix(p, "chunked/")))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		for i := 0; i < len(data); i += 4096 {
			w.Write(data[i:min(i+4096, len(data))])
			w.(http.Flusher).Flush()
		}
		return
	}
	o.serveFile(w, r, p, validators)
}

// serveFile answers with the image at p, with an ETag when validators is set.
func (o *origin) serveFile(w http.ResponseWriter, r *http.Request, p string, validators bool) {
	data, err := os.ReadFile(filepath.Join(o.dir, filepath.FromSlash(p)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if validators {
		o.mu.Lock()
		etag, ok := o.etags[p]
		o.mu.Unlock()
		if !ok {
			etag = fmt.Sprintf(`"%x"`, sha256.Sum256(data))
		}
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

func httpServer(t testing.TB, o *origin, opts pipeline.HTTPSourceOptions, change func(*pipeline.Config)) *testServer {
	t.Helper()
	base := o.URL + "/base/"
	src, err := pipeline.NewHTTPSource(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, serverOpts{cfg: func(c *pipeline.Config) {
		c.Source = src
		if change != nil {
			change(c)
		}
	}})
}

func TestHTTPSource(t *testing.T) {
	o := startOrigin(t)
	s := httpServer(t, o, pipeline.HTTPSourceOptions{AllowPrivate: true, TotalTimeout: 500 * time.Millisecond},
		func(c *pipeline.Config) { c.MaxSourceBytes = 300_000 })

	resp, body := get(t, s.URL+"/img/kitten.jpg?w=100")
	if info := wantOK(t, resp, body); info.Width != 100 {
		t.Errorf("width %d", info.Width)
	}
	// A second request is a cache hit: a HEAD to the origin for the version, no GET.
	gets := o.gets.Load()
	resp2, body2 := get(t, s.URL+"/img/kitten.jpg?w=100")
	if !bytes.Equal(body, body2) || o.gets.Load() != gets || resp2.Header.Get("ETag") != resp.Header.Get("ETag") {
		t.Errorf("second request: %d GETs to the origin (want %d), same body %v", o.gets.Load(), gets, bytes.Equal(body, body2))
	}
	// The same image from a folder and from an origin are different cache entries but the same
	// bytes.
	dirServer := startServer(t, serverOpts{dir: o.dir})
	dresp, dbody := get(t, dirServer.URL+"/img/kitten.jpg?w=100")
	if !bytes.Equal(dbody, body) || dresp.Header.Get("ETag") == resp.Header.Get("ETag") {
		t.Error("the origin and the folder should give the same bytes under different keys")
	}

	// A new ETag at the origin is a new version.
	o.mu.Lock()
	o.etags["kitten.jpg"] = `"v2"`
	o.mu.Unlock()
	resp3, _ := get(t, s.URL+"/img/kitten.jpg?w=100")
	if resp3.Header.Get("ETag") == resp.Header.Get("ETag") {
		t.Error("a changed origin ETag kept the response's ETag")
	}

	// Origins without validators, or without HEAD: versioned by content.
	for _, p := range []string{"plain/kitten.jpg", "nohead/kitten.jpg", "chunked/kitten.jpg", "redirect/3/kitten.jpg", "sub/kitten.jpg"} {
		resp, body := get(t, s.URL+"/img/"+p+"?w=100")
		wantOK(t, resp, body)
		if !bytes.Equal(body, dbody) {
			t.Errorf("%s: different bytes from the same image", p)
		}
	}
	r1, _ := get(t, s.URL+"/img/plain/kitten.jpg?w=100")
	r2, _ := get(t, s.URL+"/img/plain/stata.jpg?w=100")
	if r1.Header.Get("ETag") == r2.Header.Get("ETag") {
		t.Error("two images without validators share an ETag")
	}

	for _, tc := range []struct {
		path    string
		status  int
		mention string
	}{
		{"missing.jpg", 404, "missing.jpg"},
		{"status/410.jpg", 404, ""},
		{"status/500.jpg", 502, "500"},
		{"status/403.jpg", 502, "403"},
		{"redirect/4/kitten.jpg", 502, "redirects"},
		{"away/kitten.jpg", 502, "origin"},
		{"slow.jpg", 504, "timed out"},
		{"notimage.jpg", 415, ""},
		{"starry_night.jpg", 413, ""},         // Content-Length over the limit
		{"chunked/starry_night.jpg", 413, ""}, // no Content-Length: counted while reading
		{"../x.jpg", 400, "path"},
	} {
		resp, body := get(t, s.URL+"/img/"+tc.path)
		wantError(t, resp, body, tc.status, tc.mention)
	}
	if err := os.WriteFile(filepath.Join(o.dir, "late.jpg"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body = get(t, s.URL+"/img/late.jpg")
	wantError(t, resp, body, 415, "")
}

// TestHTTPSourceSpecialPurposeRanges checks an address in each range the probe found
// passing as public, and the classic ones: an origin there is refused.
func TestHTTPSourceSpecialPurposeRanges(t *testing.T) {
	for _, host := range []string{
		"100.100.100.200", "100.64.0.1", // shared address space (cloud metadata)
		"0.1.2.3", "192.0.0.8", "198.18.0.1", "198.19.255.255", "240.0.0.1", "255.255.255.255",
		"[64:ff9b::a00:1]", "[2002:a00:1::1]", "[::127.0.0.1]", "[::ffff:127.0.0.1]",
		"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "224.0.0.1",
		"192.0.2.1", "[::1]", "[::]", "[fe80::1]", "[fc00::1]", "[ff02::1]", "[2001:db8::1]",
	} {
		if _, err := pipeline.NewHTTPSource("http://"+host+"/", pipeline.HTTPSourceOptions{}); err == nil {
			t.Errorf("NewHTTPSource accepted the non-public address %s", host)
		}
		if _, err := pipeline.NewHTTPSource("http://"+host+"/", pipeline.HTTPSourceOptions{AllowPrivate: true}); err != nil {
			t.Errorf("with AllowPrivate, %s: %v", host, err)
		}
	}
	for _, host := range []string{"93.184.216.34", "8.8.8.8:8080", "[2606:4700:4700::1111]"} {
		if _, err := pipeline.NewHTTPSource("http://"+host+"/", pipeline.HTTPSourceOptions{}); err != nil {
			t.Errorf("NewHTTPSource refused the public address %s: %v", host, err)
		}
	}
}

func TestHTTPSourcePrivateAddresses(t *testing.T) {
	o := startOrigin(t)
	port := o.URL[strings.LastIndex(o.URL, ":")+1:]

	// An origin given as a private address is refused outright...
	for _, base := range []string{o.URL + "/base/", "http://[::1]:" + port + "/", "http://10.0.0.1/", "http://169.254.169.254/", "http://0.0.0.0/"} {
		if _, err := pipeline.NewHTTPSource(base, pipeline.HTTPSourceOptions{}); err == nil {
			t.Errorf("NewHTTPSource(%s) accepted a private address", base)
		}
	}
	// ...and one whose name resolves to one is refused at connection time: 403, JSON.
	src, err := pipeline.NewHTTPSource("http://localhost:"+port+"/base/", pipeline.HTTPSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOpts{cfg: func(c *pipeline.Config) { c.Source = src }})
	resp, body := get(t, s.URL+"/img/kitten.jpg")
	wantError(t, resp, body, 403, "not public")
	if n := o.heads.Load() + o.gets.Load(); n != 0 {
		t.Errorf("the origin saw %d requests", n)
	}
	for _, bad := range []string{"ftp://x/", "http:///x", "http://x/?a=1", "not a url\x00"} {
		if _, err := pipeline.NewHTTPSource(bad, pipeline.HTTPSourceOptions{AllowPrivate: true}); err == nil {
			t.Errorf("NewHTTPSource(%q) accepted", bad)
		}
	}
}

// TestHTTPSourceRemembersAnswers: with VersionTTL and NotFoundTTL a cache hit asks the origin
// nothing, and a missing image is asked about once.
func TestHTTPSourceRemembersAnswers(t *testing.T) {
	o := startOrigin(t)
	s := httpServer(t, o, pipeline.HTTPSourceOptions{AllowPrivate: true, VersionTTL: time.Hour, NotFoundTTL: time.Hour},
		func(c *pipeline.Config) { c.MaxSourceBytes = 300_000 })
	resp, body := get(t, s.URL+"/img/kitten.jpg?w=100")
	wantOK(t, resp, body)
	heads, gets := o.heads.Load(), o.gets.Load()
	if heads != 1 {
		t.Errorf("first request: %d HEADs, want 1", heads)
	}
	resp2, body2 := get(t, s.URL+"/img/kitten.jpg?w=100")
	if !bytes.Equal(body, body2) || o.heads.Load() != heads || o.gets.Load() != gets {
		t.Errorf("cache hit: %d HEADs and %d GETs to the origin, want none", o.heads.Load()-heads, o.gets.Load()-gets)
	}
	// Another variant of the same image needs its bytes, but not its version.
	resp, body = get(t, s.URL+"/img/kitten.jpg?w=50")
	wantOK(t, resp, body)
	if o.heads.Load() != heads || o.gets.Load() != gets+1 {
		t.Errorf("new variant: %d HEADs and %d GETs, want 0 and 1", o.heads.Load()-heads, o.gets.Load()-gets)
	}
	// Within the TTL a change at the origin is not seen: that is the trade.
	o.mu.Lock()
	o.etags["kitten.jpg"] = `"v2"`
	o.mu.Unlock()
	if resp3, _ := get(t, s.URL+"/img/kitten.jpg?w=100"); resp3.Header.Get("ETag") != resp2.Header.Get("ETag") {
		t.Error("the version changed within its TTL")
	}

	before := o.heads.Load() + o.gets.Load()
	for range 3 {
		resp, body := get(t, s.URL+"/img/missing.jpg")
		wantError(t, resp, body, 404, "missing.jpg")
	}
	if n := o.heads.Load() + o.gets.Load() - before; n != 1 {
		t.Errorf("three requests for a missing image asked the origin %d times, want 1", n)
	}
	// Failures other than 404 are not remembered.
	before = o.heads.Load() + o.gets.Load()
	for range 2 {
		resp, body := get(t, s.URL+"/img/status/500.jpg")
		wantError(t, resp, body, 502, "500")
	}
	if n := o.heads.Load() + o.gets.Load() - before; n != 2 {
		t.Errorf("two requests for a failing image asked the origin %d times, want 2", n)
	}
}
