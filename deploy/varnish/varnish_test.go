package varnish_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestVarnishInFront runs varnishd with deploy/varnish/styleproxy.vcl in front of a real
// `styleproxy serve` and checks what users of the CDN depend on.
func TestVarnishInFront(t *testing.T) {
	origin, originPort := startOrigin(t, "--workers", "1", "--queue", "0")
	v := startVarnish(t, originPort)
	if h := v.backendHealth(t); h != "healthy" {
		t.Fatalf("the origin is %q to varnishd, want healthy", h)
	}
	v1 := register(t, v.base, "starry", "starry_night.jpg", "starry_night", false)
	c := &cdn{
		origin: origin, v: v, v1: v1,
		pinned:   v.base + "/img/tubingen.jpg?style=starry@" + v1 + "&iters=5&w=96",
		unpinned: v.base + "/img/tubingen.jpg?style=starry&iters=5&w=96",
	}

	t.Run("miss then hit, and 304", c.missThenHit)
	t.Run("format=auto by Accept", c.formatAuto)
	t.Run("errors are not cached", c.errorsNotCached)
	t.Run("eight identical requests, one optimisation", c.coalesced)
	t.Run("a long stylization: the probe stays healthy, a second one is a 503 not cached", c.longStylization)
	t.Run("replace, purge the style, pinned URLs stay", c.replaceAndPurge)
}

// cdn is the running pair, and what one check leaves for the next.
type cdn struct {
	origin                   string // styleproxy serve, directly
	v                        *varnish
	v1                       string // the style's first version
	pinned, unpinned         string // one stylized picture, through Varnish
	pinnedBody               []byte
	pinnedETag, unpinnedETag string
}

// missThenHit: miss then hit, and 304.
func (c *cdn) missThenHit(t *testing.T) {
	for _, u := range []string{c.pinned, c.unpinned} {
		first, b1 := fetch(t, http.MethodGet, u)
		second, b2 := fetch(t, http.MethodGet, u)
		if first.StatusCode != 200 || first.Header.Get("X-Cache") != "MISS" || second.Header.Get("X-Cache") != "HIT" || !bytes.Equal(b1, b2) {
			t.Fatalf("%s: %d %s then %d %s, identical bytes %t; want a MISS then a HIT with the same bytes",
				u, first.StatusCode, first.Header.Get("X-Cache"), second.StatusCode, second.Header.Get("X-Cache"), bytes.Equal(b1, b2))
		}
		etag := first.Header.Get("ETag")
		res, _ := fetch(t, http.MethodGet, u, "If-None-Match", etag)
		if res.StatusCode != http.StatusNotModified || res.Header.Get("X-Cache") != "HIT" {
			t.Errorf("%s with If-None-Match: %d %s, want 304 from Varnish", u, res.StatusCode, res.Header.Get("X-Cache"))
		}
		if u == c.pinned {
			c.pinnedBody, c.pinnedETag = b1, etag
		} else {
			c.unpinnedETag = etag
		}
	}
}

// formatAuto: format=auto by Accept.
func (c *cdn) formatAuto(t *testing.T) {
	avif, _ := fetch(t, http.MethodGet, c.origin+"/img/kitten.jpg?w=80&format=avif")
	wantAVIF := "image/avif"
	if avif.StatusCode != 200 {
		wantAVIF = "image/webp" // this libvips cannot encode AVIF: the origin picks WebP
	}
	u := c.v.base + "/img/kitten.jpg?w=80&format=auto"
	misses := 0
	for _, b := range []struct{ browser, accept, want string }{
		{"Chrome", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", wantAVIF},
		{"Firefox", "image/avif,image/webp,*/*", wantAVIF},
		{"Safari 17", "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", wantAVIF},
		{"Safari 14", "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "image/webp"},
		{"Edge (old)", "image/webp,image/apng,image/*,*/*;q=0.8", "image/webp"},
		{"curl", "*/*", "image/jpeg"},
		{"IE 11", "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", "image/jpeg"},
		{"no Accept", "", "image/jpeg"},
		{"refuses AVIF", "image/avif;q=0,image/webp", "image/webp"},
	} {
		res, _ := fetch(t, http.MethodGet, u, "Accept", b.accept)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != b.want {
			t.Errorf("%s (Accept %q): %d %s, want %s", b.browser, b.accept, res.StatusCode, res.Header.Get("Content-Type"), b.want)
		}
		if res.Header.Get("X-Cache") == "MISS" {
			misses++
		}
	}
	if misses > 3 {
		t.Errorf("%d cached objects for one format=auto URL, want at most 3 (AVIF, WebP, JPEG)", misses)
	}
}

// errorsNotCached: errors are not cached.
func (c *cdn) errorsNotCached(t *testing.T) {
	for _, e := range []struct {
		path   string
		status int
	}{
		{"/img/tubingen.jpg?bogus=1", 400},
		{"/img/missing.jpg", 404},
		{"/img/tubingen.jpg?style=nope", 404},
		{"/styles/nope/thumbnail.jpg", 404},
		{"/no/such/route", 404},
	} {
		for range 2 {
			res, _ := fetch(t, http.MethodGet, c.v.base+e.path)
			if res.StatusCode != e.status || res.Header.Get("X-Cache") != "MISS" || res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %d %s %q, want %d, a MISS each time, no-store", e.path, res.StatusCode, res.Header.Get("X-Cache"), res.Header.Get("Cache-Control"), e.status)
			}
		}
	}
}

// coalesced: eight identical requests, one optimisation.
func (c *cdn) coalesced(t *testing.T) {
	before := metric(t, c.origin, "styleproxy_optimisations_total")
	u := c.v.base + "/img/tubingen.jpg?style=starry&iters=6&w=96"
	bodies := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, b := fetch(t, http.MethodGet, u)
			if res.StatusCode == 200 {
				bodies[i] = b
			}
		}()
	}
	wg.Wait()
	for i, b := range bodies {
		if b == nil || !bytes.Equal(b, bodies[0]) {
			t.Fatalf("response %d failed or differs", i)
		}
	}
	if n := metric(t, c.origin, "styleproxy_optimisations_total") - before; n != 1 {
		t.Errorf("eight identical requests through Varnish cost %v optimisations, want 1", n)
	}
}

// longStylization: a long stylization: the probe stays healthy, a second one is a 503 not cached.
func (c *cdn) longStylization(t *testing.T) {
	long := make(chan int, 1)
	go func() {
		res, _ := fetch(t, http.MethodGet, c.v.base+"/img/stata.jpg?style=starry&iters=500&w=64")
		long <- res.StatusCode
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !running(t, c.origin) {
		if time.Now().After(deadline) {
			t.Fatal("the long stylization never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 2 {
		res, _ := fetch(t, http.MethodGet, c.v.base+"/img/kitten.jpg?style=starry&iters=4&w=64")
		if res.StatusCode != 503 || res.Header.Get("X-Cache") != "MISS" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("a second stylization with --queue 0: %d %s %q, want 503, a MISS each time, no-store",
				res.StatusCode, res.Header.Get("X-Cache"), res.Header.Get("Cache-Control"))
		}
	}
	start, polls := time.Now(), 0
	for done := false; !done; {
		select {
		case st := <-long:
			if st != 200 {
				t.Errorf("the long stylization: %d", st)
			}
			done = true
		case <-time.After(300 * time.Millisecond):
			polls++
			if h := c.v.backendHealth(t); h != "healthy" {
				t.Fatalf("the origin turned %q to varnishd while stylizing", h)
			}
			if res, _ := fetch(t, http.MethodGet, c.v.base+"/img/kitten.jpg?w=40"); res.StatusCode != 200 {
				t.Errorf("a plain resize while stylizing: %d", res.StatusCode)
			}
		}
	}
	t.Logf("healthy through %d polls over %s of stylization", polls, time.Since(start).Round(time.Second))
}

// replaceAndPurge: replace, purge the style, pinned URLs stay.
func (c *cdn) replaceAndPurge(t *testing.T) {
	v2 := register(t, c.v.base, "starry", "the_scream.jpg", "the_scream", true)
	if v2 == c.v1 {
		t.Fatal("the replacement has the old version")
	}
	res, _ := fetch(t, http.MethodGet, c.unpinned)
	if res.Header.Get("X-Cache") != "HIT" || res.Header.Get("ETag") != c.unpinnedETag {
		t.Errorf("before the purge: %s %s, want the cached old answer", res.Header.Get("X-Cache"), res.Header.Get("ETag"))
	}
	purge, body := fetch(t, "PURGE", c.v.base+"/", "xkey-purge", "style:starry")
	if purge.StatusCode != 200 {
		t.Fatalf("PURGE: %d %s", purge.StatusCode, body)
	}
	res, _ = fetch(t, http.MethodGet, c.unpinned)
	if res.StatusCode != 200 || res.Header.Get("X-Cache") != "MISS" || res.Header.Get("ETag") == c.unpinnedETag {
		t.Errorf("after the purge: %d %s %s, want a MISS with the new version's ETag", res.StatusCode, res.Header.Get("X-Cache"), res.Header.Get("ETag"))
	}
	res, b := fetch(t, http.MethodGet, c.pinned)
	if res.StatusCode != 200 || res.Header.Get("X-Cache") != "HIT" || res.Header.Get("ETag") != c.pinnedETag || !bytes.Equal(b, c.pinnedBody) {
		t.Errorf("the old version's c.pinned URL after the purge: %d %s, same bytes %t; want the cached old image",
			res.StatusCode, res.Header.Get("X-Cache"), bytes.Equal(b, c.pinnedBody))
	}
	// Once it leaves the cache, the origin answers as the README says: a 404 naming it.
	fetch(t, "PURGE", c.v.base+"/", "xkey-purge", "style:starry@"+c.v1)
	res, b = fetch(t, http.MethodGet, c.pinned)
	if res.StatusCode != 404 || !bytes.Contains(b, []byte(c.v1)) {
		t.Errorf("the old version's c.pinned URL at the origin: %d %s, want 404 naming %s", res.StatusCode, b, c.v1)
	}
}
