package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

// galleryTestServer mounts a real pipeline over a folder source (with filters) and the gallery.
func galleryTestServer(t *testing.T, dir string, filters ...plugin.Filter) (*echo.Echo, *pipeline.Pipeline) {
	t.Helper()
	src, err := pipeline.NewDirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	e := echo.New()
	e.HTTPErrorHandler = pipeline.ErrorHandler
	cfg := pipeline.NewDefaultConfig()
	cfg.Source, cfg.Filters, cfg.Queue = src, filters, 4
	p, err := pipeline.Mount(e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mountGallery(e, e, p, src, false, slog.Default())
	return e, p
}

func galleryGet(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func galleryWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGallerySamplesListsTheFolder(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "images")
	outside := filepath.Join(root, "outside")
	jpeg := stylesTestImage(t, 40, 30, 1, imaging.JPEG)
	galleryWrite(t, filepath.Join(dir, "a.jpg"), jpeg)
	for _, name := range []string{
		"B.PNG", "sub/c.webp", "sub/deeper/d.tiff", "with space.gif", "z.avif", "e.JPEG", "f.tif",
		// not listed: no image extension, hidden, inside a hidden folder
		"notes.txt", "noext", "jpg", ".hidden.jpg", ".git/g.jpg", "sub/.cache/h.png",
	} {
		galleryWrite(t, filepath.Join(dir, filepath.FromSlash(name)), []byte("x"))
	}
	// Symbolic links, to a file and a folder outside and to a file inside, are never listed.
	galleryWrite(t, filepath.Join(outside, "secret.jpg"), jpeg)
	for link, target := range map[string]string{
		"out.jpg":    filepath.Join(outside, "secret.jpg"),
		"outdir":     outside,
		"rel.jpg":    "a.jpg",
		"sub/up.png": "../../outside/secret.jpg",
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "folder.jpg"), 0o755); err != nil { // a folder, not an image
		t.Fatal(err)
	}

	e, _ := galleryTestServer(t, dir)
	want := []string{"B.PNG", "a.jpg", "e.JPEG", "f.tif", "sub/c.webp", "sub/deeper/d.tiff", "with space.gif", "z.avif"}
	// Query parameters are no way out of the folder: there are none, and they are ignored.
	for _, target := range []string{"/api/samples", "/api/samples?dir=..", "/api/samples?path=../outside"} {
		rec := galleryGet(t, e, target)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", target, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", target, ct)
		}
		var got []string
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v: %s", target, err, rec.Body)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", target, got, want)
		}
	}

	// A listed path is a path the pipeline serves.
	rec := galleryGet(t, e, "/img/a.jpg?w=20")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/jpeg" {
		t.Errorf("/img/a.jpg: status %d, %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	// Paths under /api/ that are not endpoints answer plugin's JSON 404.
	rec = galleryGet(t, e, "/api/samples/../../outside")
	if rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("a traversal reached the outside folder: %s", rec.Body)
	}
}

func TestGallerySamplesCapAndEmpty(t *testing.T) {
	dir := t.TempDir()
	e, _ := galleryTestServer(t, dir)
	rec := galleryGet(t, e, "/api/samples")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("empty folder: status %d, body %s; want 200 []", rec.Code, rec.Body)
	}

	for i := range 3 * galleryMaxSamples / 2 {
		galleryWrite(t, filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("img%04d.jpg", i)), nil)
	}
	rec = galleryGet(t, e, "/api/samples")
	var got []string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != galleryMaxSamples {
		t.Errorf("%d samples, want the cap of %d", len(got), galleryMaxSamples)
	}
	if !slices.IsSorted(got) {
		t.Error("samples are not sorted")
	}
}

// gallerySource is a Source that is not a folder.
type gallerySource struct{}

func (gallerySource) ID() string                                   { return "test:" }
func (gallerySource) Stat(context.Context, string) (string, error) { return "", nil }
func (gallerySource) Fetch(context.Context, string, int64) ([]byte, string, error) {
	return nil, "", &plugin.NotFoundError{What: "anything"}
}

func TestGallerySamplesOtherSource(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = pipeline.ErrorHandler
	cfg := pipeline.NewDefaultConfig()
	cfg.Source = gallerySource{}
	p, err := pipeline.Mount(e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mountGallery(e, e, p, gallerySource{}, false, slog.Default())
	rec := galleryGet(t, e, "/api/samples")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("status %d, body %s; want 200 []", rec.Code, rec.Body)
	}
}

// galleryBlockFilter is a heavy filter that reports step 3 of 7 and waits until release closes.
type galleryBlockFilter struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

type galleryBlockOptions struct{ f *galleryBlockFilter }

func (f *galleryBlockFilter) Name() string     { return "block" }
func (f *galleryBlockFilter) Params() []string { return []string{"block"} }
func (f *galleryBlockFilter) Parse(_ context.Context, q url.Values) (plugin.Options, error) {
	if !q.Has("block") {
		return nil, nil
	}
	return galleryBlockOptions{f}, nil
}
func (o galleryBlockOptions) Key() string { return "block" }
func (o galleryBlockOptions) Heavy() bool { return true }
func (o galleryBlockOptions) Apply(ctx context.Context, img *imaging.Image, progress plugin.Progress) (*imaging.Image, error) {
	progress(3, 7)
	o.f.once.Do(func() { close(o.f.started) })
	select {
	case <-o.f.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return img, nil
}

func TestGalleryProgress(t *testing.T) {
	dir := t.TempDir()
	galleryWrite(t, filepath.Join(dir, "photos", "cat.jpg"), stylesTestImage(t, 40, 30, 2, imaging.JPEG))
	f := &galleryBlockFilter{started: make(chan struct{}), release: make(chan struct{})}
	e, p := galleryTestServer(t, dir, f)

	type progress struct {
		Running []map[string]any `json:"running"`
		Queued  *int             `json:"queued"`
	}
	read := func() (progress, string) {
		t.Helper()
		rec := galleryGet(t, e, "/api/progress")
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		var pr progress
		if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil {
			t.Fatalf("%v: %s", err, rec.Body)
		}
		return pr, rec.Body.String()
	}

	idle, raw := read()
	if idle.Running == nil || len(idle.Running) != 0 || idle.Queued == nil || *idle.Queued != 0 {
		t.Fatalf("idle: %s, want {\"running\":[],\"queued\":0}", raw)
	}

	srv := httptest.NewServer(e)
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/img/photos/cat.jpg?block=1")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		done <- err
	}()
	select {
	case <-f.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the heavy filter never started")
	}
	busy, raw := read()
	if len(busy.Running) != 1 || busy.Queued == nil || *busy.Queued != 0 {
		t.Fatalf("busy: %s, want one running job", raw)
	}
	job := busy.Running[0]
	for field, want := range map[string]any{"path": "photos/cat.jpg", "step": float64(3), "total": float64(7)} {
		if job[field] != want {
			t.Errorf("job %s = %v, want %v (%s)", field, job[field], want, raw)
		}
	}
	if key, _ := job["key"].(string); len(key) != 64 {
		t.Errorf("job key %q, want the 64-hex cache key", key)
	}
	if got := p.Running(); len(got) != 1 {
		t.Errorf("Pipeline.Running has %d jobs", len(got))
	}
	close(f.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if after, raw := read(); len(after.Running) != 0 {
		t.Errorf("after: %s, want no running job", raw)
	}
}

func TestGalleryPageAndAssets(t *testing.T) {
	e, _ := galleryTestServer(t, t.TempDir())
	rec := galleryGet(t, e, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("/: status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("/: Content-Type %q", ct)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("/: Content-Security-Policy %q", csp)
	}
	page := rec.Body.String()
	for _, id := range []string{
		"styles", "sample", "style", "iters", "strength", "width", "preserve", "run", "progress",
		"original-img", "result-img", "result-url", "copy-url", "result-error",
		"admin-form", "admin-token", "admin-name", "admin-image", "admin-preset", "admin-submit", "admin-msg",
	} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("/ has no element with id %q", id)
		}
	}
	assets := map[string]string{"/gallery/gallery.js": "text/javascript", "/gallery/gallery.css": "text/css"}
	for path, ct := range assets {
		if !strings.Contains(page, `"`+path+`"`) {
			t.Errorf("/ does not load %s", path)
		}
		rec := galleryGet(t, e, path)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), ct) {
			t.Errorf("%s: status %d, Content-Type %q, want %s", path, rec.Code, rec.Header().Get("Content-Type"), ct)
		}
	}
	// Nothing is loaded from elsewhere: the page works offline.
	for path := range assets {
		body := galleryGet(t, e, path).Body.String() + page
		for _, ext := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(body, ext) {
				t.Errorf("%s or / mentions %q: the gallery must load nothing from elsewhere", path, ext)
			}
		}
	}
	for _, path := range []string{"/gallery/", "/gallery/index.html", "/gallery/../server.go", "/gallery/nope.js", "/gallery/.x"} {
		rec := galleryGet(t, e, path)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, rec.Code)
			continue
		}
		var body pipeline.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Status != http.StatusNotFound {
			t.Errorf("%s: not plugin's JSON error: %s", path, rec.Body)
		}
	}
}
