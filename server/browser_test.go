package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/styles"
)

// galleryScreenshotCopy is where the browser test always leaves a copy of its screenshot.
const galleryScreenshotCopy = "/tmp/styleproxy-gallery.png"

// galleryChromium finds the browser: STYLEPROXY_CHROMIUM, else chromium on PATH. A missing browser
// fails the test: `make test` installs Debian's chromium.
func galleryChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STYLEPROXY_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (%v): install it with `apt-get install -y chromium` (make test does), "+
			"or point STYLEPROXY_CHROMIUM at a Chrome or Chromium binary", err)
	}
	return p
}

// galleryEval evaluates a JavaScript expression in the page through the DevTools protocol
// (Runtime.evaluate, which the page's Content-Security-Policy does not restrict).
func galleryEval[T any](ctx context.Context, t *testing.T, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// galleryWaitFor polls a JavaScript condition until it holds. chromedp.Poll would build the
// predicate with new Function, which the page's Content-Security-Policy forbids.
func galleryWaitFor(ctx context.Context, t *testing.T, what, cond string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+cond+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out after %s waiting for %s (%s); last error: %v", timeout, what, cond, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// galleryType replaces the text of an input with typed keys.
func galleryType(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		return chromedp.Do(ctx,
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel)),
			chromedp.SendKeys(chromedp.CSS(sel), text),
		)
	})
}

// TestGalleryInBrowser drives the gallery in headless Chromium against the real server (engine,
// style library, pipeline): it registers a style through the page's admin form (first with a
// wrong token, whose JSON error the page must show), picks the sample and the style, runs a
// 5-iteration stylization, waits for the result image and checks the progress display, the
// copyable URL and that the page loaded nothing from elsewhere. The screenshot goes to
// STYLEPROXY_SCREENSHOT (else a temporary folder) and to /tmp/styleproxy-gallery.png.
func TestGalleryInBrowser(t *testing.T) {
	chromium := galleryChromium(t)
	start := time.Now()

	// The real server, on a loopback port.
	cfg := testConfig(t)
	cfg.MaxWorkPx = DefaultConfig().MaxWorkPx // the gallery's real work size
	const token = "gallery-test-token"
	cfg.AdminToken = token
	var serverLog syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&serverLog, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Echo)
	defer ts.Close()
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog.String())
		}
	}()

	b := startGalleryBrowser(t, chromium)
	ctx := b.ctx
	browserStarted := time.Now()
	defer func() {
		if t.Failed() {
			b.screenshot(t) // what the page showed when it failed
		}
	}()

	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/")); err != nil {
		t.Fatal(err)
	}
	galleryWaitFor(ctx, t, "the page to load the styles and samples", `document.body.dataset.ready === "true"`, 30*time.Second)
	if got := galleryEval[string](ctx, t, `document.getElementById("sample").value`); got != "tubingen.jpg" {
		t.Fatalf("sample select shows %q, want tubingen.jpg from /api/samples", got)
	}
	if !galleryEval[bool](ctx, t, `!document.getElementById("styles-empty").hidden`) {
		t.Error("an empty library does not show the empty-state text")
	}
	// A second style, for the blend further on; the page lists it after the form's registration.
	scream, err := os.ReadFile(testutil.Shared(t, "images", "the_scream.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Library.Add(context.Background(), "scream", scream, styles.AddOptions{Preset: "the_scream", StyleSize: 128}); err != nil {
		t.Fatal(err)
	}

	galleryRegister(ctx, t, s, token)
	registered := time.Now()

	st, body := galleryStylize(ctx, t, s, ts.URL)
	stylized := time.Now()

	galleryBlend(ctx, t, s, ts.URL, st, body)

	b.screenshot(t)

	// A refused URL shows the server's JSON error message.
	if err := chromedp.Do(ctx, galleryType("#iters", "100000"), chromedp.Click(chromedp.CSS("#run"))); err != nil {
		t.Fatal(err)
	}
	galleryWaitFor(ctx, t, "the error of a refused URL", `!document.getElementById("result-error").hidden`, 30*time.Second)
	if msg := galleryEval[string](ctx, t, `document.getElementById("result-error").textContent`); !strings.Contains(msg, "400") || !strings.Contains(msg, "iters") {
		t.Errorf("the page shows %q for iters=100000, want the 400 JSON error naming iters", msg)
	}

	b.checkOffline(t, ts.URL)

	t.Logf("timings: server and browser start %.1fs, style registered %.1fs, stylized %.1fs, total %.1fs",
		browserStarted.Sub(start).Seconds(), registered.Sub(browserStarted).Seconds(),
		stylized.Sub(registered).Seconds(), time.Since(start).Seconds())
}

// galleryBrowser is headless Chromium with a fresh profile, talking to nothing but the test
// server, recording every request the page makes and every console message.
type galleryBrowser struct {
	ctx      context.Context
	out      syncBuffer
	mu       sync.Mutex
	requests []string
	console  []chromedp.ConsoleMessage
	shotPath string
}

func startGalleryBrowser(t *testing.T, chromium string) *galleryBrowser {
	b := &galleryBrowser{shotPath: os.Getenv("STYLEPROXY_SCREENSHOT")}
	if b.shotPath == "" {
		b.shotPath = filepath.Join(t.TempDir(), "gallery.png")
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(&b.out),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.requests = append(b.requests, ev.Request.URL)
			b.mu.Unlock()
		}
	}))
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v\n%s", chromium, err, b.out.String())
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	b.ctx = ctx
	return b
}

// screenshot writes the page to shotPath and to galleryScreenshotCopy.
func (b *galleryBrowser) screenshot(t *testing.T) {
	t.Helper()
	shotCtx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(shotCtx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	for _, p := range []string{b.shotPath, galleryScreenshotCopy} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Errorf("writing the screenshot: %v", err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Errorf("writing the screenshot: %v", err)
		}
	}
	t.Logf("screenshot: %s (copy in %s)", b.shotPath, galleryScreenshotCopy)
}

// checkOffline checks that every request went to the test server at base (or a blob: of the
// page's own) and that the console shows no exception and no Content Security Policy report.
func (b *galleryBrowser) checkOffline(t *testing.T, base string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range b.requests {
		if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "blob:") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s, outside the server", u)
		}
	}
	t.Logf("%d requests, all to the server", len(b.requests))
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			t.Errorf("page console: %s: %s", m.Type, m.Text)
		}
	}
}

// galleryRegister registers the style "starry" through the page's admin form: a wrong token
// first, whose JSON error the page must show, then token.
func galleryRegister(ctx context.Context, t *testing.T, s *Server, token string) {
	// Register a style through the admin form: a wrong token first, whose JSON error shows.
	artwork := testutil.Shared(t, "images", "starry_night.jpg")
	if err := chromedp.Do(ctx,
		galleryType("#admin-token", "wrong-token"),
		galleryType("#admin-name", "starry"),
		chromedp.SetUploadFiles(chromedp.CSS("#admin-image"), []string{artwork}),
		chromedp.Click(chromedp.CSS("#admin-submit")),
	); err != nil {
		t.Fatal(err)
	}
	galleryWaitFor(ctx, t, "the admin error", `document.getElementById("admin-msg").textContent.includes("invalid admin token")`, 30*time.Second)
	if cls := galleryEval[string](ctx, t, `document.getElementById("admin-msg").className`); cls != "error" {
		t.Errorf("the admin error has class %q, want error", cls)
	}
	if err := chromedp.Do(ctx,
		galleryType("#admin-token", token),
		chromedp.Click(chromedp.CSS("#admin-submit")),
	); err != nil {
		t.Fatal(err)
	}
	galleryWaitFor(ctx, t, "the registration", `document.getElementById("admin-msg").textContent.includes("Registered")`, 60*time.Second)
	galleryWaitFor(ctx, t, "the style's thumbnail",
		`(() => { const i = document.querySelector('.style-card[data-name="starry"] img'); return i && i.complete && i.naturalWidth > 0; })()`, 30*time.Second)
	if _, err := s.Library.Get("starry"); err != nil {
		t.Fatalf("the admin form did not register the style: %v", err)
	}
}

// galleryStylize picks "starry" by its thumbnail, runs a 5-iteration stylization at 256 px and
// checks the result, the progress display and the copyable URL, which it fetches; it returns the
// style and the image.
func galleryStylize(ctx context.Context, t *testing.T, s *Server, base string) (*styles.Style, []byte) {
	// Pick the style by its thumbnail, set 5 iterations, strength 80 and 256 px, and run.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.style-card[data-name="starry"]`)),
		galleryType("#iters", "5"),
		galleryType("#width", "256"),
		chromedp.Evaluate[chromedp.Void](`(() => { const r = document.getElementById("strength"); r.value = "80"; r.dispatchEvent(new Event("input")); })()`),
	); err != nil {
		t.Fatal(err)
	}
	if got := galleryEval[string](ctx, t, `document.getElementById("style").value`); got != "starry" {
		t.Fatalf("style select shows %q after clicking the thumbnail", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#run"))); err != nil {
		t.Fatal(err)
	}
	galleryWaitFor(ctx, t, "the progress display", `!document.getElementById("progress").hidden`, 10*time.Second)
	galleryWaitFor(ctx, t, "the result image",
		`(() => { const i = document.getElementById("result-img"); return !i.hidden && i.complete && i.naturalWidth > 0; })()`, 120*time.Second)

	if msg := galleryEval[string](ctx, t, `document.getElementById("result-error").hidden ? "" : document.getElementById("result-error").textContent`); msg != "" {
		t.Errorf("the page shows an error: %s", msg)
	}
	st, err := s.Library.Get("starry")
	if err != nil {
		t.Fatal(err)
	}
	wantURL := base + "/img/tubingen.jpg?style=starry@" + st.Version + "&iters=5&strength=80&w=256" // pinned
	if got := galleryEval[string](ctx, t, `document.getElementById("result-url").value`); got != wantURL {
		t.Errorf("result URL field shows %q, want %q", got, wantURL)
	}
	if w := galleryEval[int](ctx, t, `document.getElementById("result-img").naturalWidth`); w != 256 {
		t.Errorf("result is %d px wide, want 256", w)
	}
	if w := galleryEval[int](ctx, t, `document.getElementById("original-img").naturalWidth`); w != 256 {
		t.Errorf("original is %d px wide, want 256", w)
	}
	if !galleryEval[bool](ctx, t, `document.body.dataset.progressSeen === "true"`) {
		t.Error("the page never saw its stylization in /api/progress")
	}
	progressText := galleryEval[string](ctx, t, `document.getElementById("progress-text").textContent`)
	if !strings.HasPrefix(progressText, "Done in ") {
		t.Errorf("progress shows %q after the result, want Done in ...", progressText)
	}
	t.Logf("progress display: %q", progressText)

	// The URL the page shows serves the same image (from the cache now).
	res, err := http.Get(wantURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/jpeg" || len(body) == 0 {
		t.Errorf("the copied URL answers %d %s (%d bytes)", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}

	return st, body
}

// galleryBlend blends "starry" (st) 70 / 30 with "scream" and checks the pinned URL and that it
// serves another image than the single style's (single).
func galleryBlend(ctx context.Context, t *testing.T, s *Server, base string, st *styles.Style, single []byte) {
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.getElementById("style2"); s.value = "scream"; s.dispatchEvent(new Event("change"));
		const m = document.getElementById("mix"); m.value = "70"; m.dispatchEvent(new Event("input"));
	})()`)); err != nil {
		t.Fatal(err)
	}
	if got := galleryEval[string](ctx, t, `document.getElementById("mix-out").textContent`); got != "70 / 30" {
		t.Errorf("the mix shows %q, want 70 / 30", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#run"))); err != nil {
		t.Fatal(err)
	}
	galleryWaitFor(ctx, t, "the blended result",
		`document.getElementById("progress-text").textContent.startsWith("Done in ") && !document.getElementById("result-img").hidden`, 120*time.Second)
	sc, err := s.Library.Get("scream")
	if err != nil {
		t.Fatal(err)
	}
	blendURL := base + "/img/tubingen.jpg?style=starry@" + st.Version + ":0.7,scream@" + sc.Version + ":0.3&iters=5&strength=80&w=256"
	if got := galleryEval[string](ctx, t, `document.getElementById("result-url").value`); got != blendURL {
		t.Errorf("blend URL field shows %q, want %q", got, blendURL)
	}
	res, err := http.Get(blendURL)
	if err != nil {
		t.Fatal(err)
	}
	blended, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(blended) == 0 || string(blended) == string(single) {
		t.Errorf("the blend URL answers %d (%d bytes; the single style's image: %t)", res.StatusCode, len(blended), string(blended) == string(single))
	}
}

// syncBuffer is a bytes buffer for writers on other goroutines (the server's log, the browser's
// output).
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
