package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/imaging/imagingtest"
	"github.com/styleproxy/styleproxy/internal/testutil"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/styles"
)

const stylesTestToken = "test-admin-token-0123456789"

// stylesFakeEngine stands in for the network: fast, and its targets depend on the image.
type stylesFakeEngine struct{}

func (stylesFakeEngine) StyleTargets(im *engine.Image) (engine.StyleTargets, error) {
	var st engine.StyleTargets
	var sum float32
	for _, v := range im.Data {
		sum += v
	}
	for l := range st {
		st[l] = engine.Gram{C: 2, Data: []float32{sum, float32(im.H), float32(im.W), float32(l)}}
	}
	return st, nil
}

// stylesTestImage is a smooth picture (it compresses well) that depends on seed; a negative seed
// gives noise instead, which does not compress.
func stylesTestImage(t *testing.T, w, h, seed int, f imaging.Format) []byte {
	t.Helper()
	pix := make([]uint8, 3*w*h)
	rng := rand.New(rand.NewPCG(uint64(-seed), 1))
	for i := range pix {
		if seed < 0 {
			pix[i] = uint8(rng.Uint32())
		} else {
			x, y := (i/3)%w, (i/3)/w
			pix[i] = uint8(x*255/w + y*128/h + (i%3)*seed*40)
		}
	}
	return imagingtest.Encode(t, w, h, pix, f, 90)
}

type stylesTestAPI struct {
	e   *echo.Echo
	lib *styles.Library
	dir string
}

func newStylesTestAPI(t *testing.T, cfg StylesConfig) *stylesTestAPI {
	t.Helper()
	dir := t.TempDir()
	lib, err := styles.Open(dir, stylesFakeEngine{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	e := echo.New()
	e.HTTPErrorHandler = pipeline.ErrorHandler
	MountStyles(e, lib, cfg)
	return &stylesTestAPI{e: e, lib: lib, dir: dir}
}

// stylesForm is a multipart body: fields in order, then the image part (nil: none).
func stylesForm(t *testing.T, fields [][2]string, image []byte) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range fields {
		w.WriteField(f[0], f[1])
	}
	if image != nil {
		fw, err := w.CreateFormFile("image", "art.png")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(image)
	}
	w.Close()
	return &b, w.FormDataContentType()
}

func (a *stylesTestAPI) do(method, path, auth string, body io.Reader, contentType string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, req)
	return rec
}

func (a *stylesTestAPI) upload(t *testing.T, fields [][2]string, image []byte) *httptest.ResponseRecorder {
	t.Helper()
	body, ct := stylesForm(t, fields, image)
	return a.do(http.MethodPost, "/admin/styles", "Bearer "+stylesTestToken, body, ct)
}

// checkError checks that rec is the JSON error form with status want, and returns its message.
func checkError(t *testing.T, rec *httptest.ResponseRecorder, want int) string {
	t.Helper()
	if rec.Code != want {
		t.Errorf("status %d, want %d (body %s)", rec.Code, want, rec.Body)
	}
	var eb pipeline.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" || eb.Status != want {
		t.Errorf("body %q is not the JSON error form with status %d", rec.Body, want)
	}
	return eb.Error
}

// stylesTree lists what the library holds on disk (without the lock file).
func stylesTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, "styles")
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(root, p); rel != "." && rel != ".lock" {
			out = append(out, rel)
		}
		return err
	})
	sort.Strings(out)
	return out
}

func TestStylesAdminAuth(t *testing.T) {
	off := newStylesTestAPI(t, StylesConfig{})
	for _, r := range []struct{ method, path string }{{http.MethodPost, "/admin/styles"}, {http.MethodDelete, "/admin/styles/x"}} {
		rec := off.do(r.method, r.path, "Bearer anything", strings.NewReader(""), "")
		if msg := checkError(t, rec, http.StatusServiceUnavailable); !strings.Contains(msg, "admin API disabled: set") {
			t.Errorf("%s %s without a token configured: %q", r.method, r.path, msg)
		}
	}

	on := newStylesTestAPI(t, StylesConfig{AdminToken: stylesTestToken})
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"basic auth", "Basic " + stylesTestToken, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"wrong token", "Bearer not-the-token", http.StatusUnauthorized},
		{"token prefix", "Bearer " + stylesTestToken[:10], http.StatusUnauthorized},
		{"token plus more", "Bearer " + stylesTestToken + "x", http.StatusUnauthorized},
		{"right token", "Bearer " + stylesTestToken, http.StatusNotFound}, // through to the handler: no such style
		{"scheme in lower case", "bearer " + stylesTestToken, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := on.do(http.MethodDelete, "/admin/styles/nope", tc.auth, nil, "")
			checkError(t, rec, tc.want)
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a WWW-Authenticate: Bearer header")
			}
			body, ct := stylesForm(t, [][2]string{{"name", "x"}}, stylesTestImage(t, 60, 40, 1, imaging.PNG))
			rec = on.do(http.MethodPost, "/admin/styles", tc.auth, body, ct)
			if tc.want == http.StatusUnauthorized {
				checkError(t, rec, tc.want)
			} else if rec.Code != http.StatusCreated && rec.Code != http.StatusConflict {
				t.Errorf("POST with the right token: %d %s", rec.Code, rec.Body)
			}
		})
	}
	// The public routes need no token.
	if rec := on.do(http.MethodGet, "/styles", "", nil, ""); rec.Code != http.StatusOK {
		t.Errorf("GET /styles: %d", rec.Code)
	}
}

func TestStylesRegisterListGetReplaceDelete(t *testing.T) {
	a := newStylesTestAPI(t, StylesConfig{AdminToken: stylesTestToken})
	img1, img2 := stylesTestImage(t, 300, 200, 1, imaging.JPEG), stylesTestImage(t, 300, 200, 2, imaging.PNG)

	rec := a.upload(t, [][2]string{{"name", "starry"}, {"preset", "the_scream"}, {"style_size", "64"}, {"tv_weight", "0.5"}}, img1)
	created := checkCreated(t, rec)
	// Defaults: style size DefaultStyleSize, the default preset.
	if rec := a.upload(t, [][2]string{{"name", "plain"}}, img2); rec.Code != http.StatusCreated ||
		!strings.Contains(rec.Body.String(), `"style_size":192`) || !strings.Contains(rec.Body.String(), `"preset":"starry_night"`) {
		t.Errorf("POST with defaults: %d %s", rec.Code, rec.Body)
	}

	// List and get.
	rec = a.do(http.MethodGet, "/styles", "", nil, "")
	var list []styleJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != http.StatusOK || len(list) != 2 ||
		list[0].Name != "plain" || list[1] != created {
		t.Errorf("GET /styles: %d %s", rec.Code, rec.Body)
	}
	rec = a.do(http.MethodGet, "/styles/starry", "", nil, "")
	var one styleJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil || one != created {
		t.Errorf("GET /styles/starry: %d %s", rec.Code, rec.Body)
	}
	checkError(t, a.do(http.MethodGet, "/styles/nope", "", nil, ""), http.StatusNotFound)
	checkError(t, a.do(http.MethodGet, "/styles/nope/thumbnail.jpg", "", nil, ""), http.StatusNotFound)
	if rec := a.do(http.MethodHead, "/styles/starry", "", nil, ""); rec.Code != http.StatusOK {
		t.Errorf("HEAD /styles/starry: %d", rec.Code)
	}

	checkThumbnail(t, a, created)

	// The name is taken, unless replacing: then a new version.
	msg := checkError(t, a.upload(t, [][2]string{{"name", "starry"}}, img2), http.StatusConflict)
	if !strings.Contains(msg, "replace=true") {
		t.Errorf("409 message %q does not say how to replace", msg)
	}
	rec = a.upload(t, [][2]string{{"name", "starry"}, {"replace", "true"}}, img2)
	var replaced styleJSON
	if json.Unmarshal(rec.Body.Bytes(), &replaced); rec.Code != http.StatusCreated || replaced.Version == created.Version {
		t.Fatalf("replace: %d %s", rec.Code, rec.Body)
	}
	rec = a.do(http.MethodGet, "/styles/starry/thumbnail.jpg", "", nil, "")
	if rec.Header().Get("ETag") != `"`+replaced.Version+`"` {
		t.Errorf("thumbnail ETag %s after replacing, want the new version %s", rec.Header().Get("ETag"), replaced.Version)
	}

	// A style that another process (styleproxy styles add) writes is served at once.
	other, err := styles.Open(a.dir, stylesFakeEngine{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Add(context.Background(), "from-cli", img1, styles.AddOptions{StyleSize: 32}); err != nil {
		t.Fatal(err)
	}
	if rec := a.do(http.MethodGet, "/styles/from-cli", "", nil, ""); rec.Code != http.StatusOK {
		t.Errorf("style added by another Library: %d %s", rec.Code, rec.Body)
	}

	// Delete.
	for _, name := range []string{"starry", "plain", "from-cli"} {
		if rec := a.do(http.MethodDelete, "/admin/styles/"+name, "Bearer "+stylesTestToken, nil, ""); rec.Code != http.StatusNoContent {
			t.Errorf("DELETE %s: %d %s", name, rec.Code, rec.Body)
		}
	}
	checkError(t, a.do(http.MethodDelete, "/admin/styles/starry", "Bearer "+stylesTestToken, nil, ""), http.StatusNotFound)
	checkError(t, a.do(http.MethodDelete, "/admin/styles/Bad%20Name", "Bearer "+stylesTestToken, nil, ""), http.StatusBadRequest)
	checkError(t, a.do(http.MethodGet, "/styles/starry", "", nil, ""), http.StatusNotFound)
	if rec := a.do(http.MethodGet, "/styles", "", nil, ""); strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("empty list: %s", rec.Body)
	}
}

// checkCreated checks the answer to registering "starry" with the_scream's preset, style size 64
// and a TV weight of 0.5, and returns the style it describes.
func checkCreated(t *testing.T, rec *httptest.ResponseRecorder) styleJSON {
	t.Helper()
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	var created styleJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	wantW := engine.Presets["the_scream"]
	wantW.TV = 0.5
	if created.Name != "starry" || len(created.Version) != 16 || created.StyleSize != 64 || created.Preset != "the_scream" ||
		created.Weights != wantW || created.Created.IsZero() || created.ThumbnailURL != "/styles/starry/thumbnail.jpg?v="+created.Version {
		t.Errorf("created %+v", created)
	}
	if loc := rec.Header().Get("Location"); loc != "/styles/starry" {
		t.Errorf("Location %q", loc)
	}
	for _, k := range []string{`"name"`, `"version"`, `"thumbnail_url"`, `"weights"`, `"content_weight"`, `"style_weights"`, `"tv_weight"`, `"created"`} {
		if !strings.Contains(rec.Body.String(), k) {
			t.Errorf("JSON lacks %s: %s", k, rec.Body)
		}
	}
	return created
}

// checkThumbnail checks created's thumbnail: cacheable for good under its versioned URL only,
// 256 px wide, and answering If-None-Match with its version.
func checkThumbnail(t *testing.T, a *stylesTestAPI, created styleJSON) {
	t.Helper()
	rec := a.do(http.MethodGet, created.ThumbnailURL, "", nil, "")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/jpeg" ||
		rec.Header().Get("ETag") != `"`+created.Version+`"` || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("thumbnail: %d %v", rec.Code, rec.Header())
	}
	if im, err := imaging.Decode(rec.Body.Bytes(), imaging.Limits{}); err != nil {
		t.Errorf("thumbnail does not decode: %v", err)
	} else {
		if w, h := im.Size(); w != 256 || h != 171 {
			t.Errorf("thumbnail %dx%d, want 256x171", w, h)
		}
		im.Close()
	}
	if rec := a.do(http.MethodGet, "/styles/starry/thumbnail.jpg", "", nil, ""); strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Error("the unversioned thumbnail URL is cached for good")
	}
	req := httptest.NewRequest(http.MethodGet, "/styles/starry/thumbnail.jpg", nil)
	req.Header.Set("If-None-Match", `"`+created.Version+`"`)
	rec = httptest.NewRecorder()
	a.e.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match with the current version: %d", rec.Code)
	}

}

// Every refused upload answers its status with the JSON error form and writes nothing.
func TestStylesUploadRefusals(t *testing.T) {
	const maxBytes = 50_000
	a := newStylesTestAPI(t, StylesConfig{AdminToken: stylesTestToken, MaxUploadBytes: maxBytes, MaxUploadPixels: 1_000_000})
	empty := stylesTree(t, a.dir)
	png := stylesTestImage(t, 60, 40, 1, imaging.PNG)
	big := stylesTestImage(t, 400, 400, -1, imaging.PNG) // noise: over maxBytes
	if len(big) <= maxBytes+stylesFormOverhead {
		t.Fatalf("test image of %d bytes is not over the limit", len(big))
	}
	justOver := bytes.Repeat([]byte{0}, maxBytes+10) // over the image limit, under the body limit
	name := [2]string{"name", "ok"}
	tests := []struct {
		name   string
		fields [][2]string
		image  []byte
		want   int
		msg    string
	}{
		{"invalid name", [][2]string{{"name", "Bad Name"}}, png, http.StatusBadRequest, "invalid style name"},
		{"name with a slash", [][2]string{{"name", "../etc"}}, png, http.StatusBadRequest, "invalid style name"},
		{"name too long", [][2]string{{"name", strings.Repeat("a", 65)}}, png, http.StatusBadRequest, "invalid style name"},
		{"no name", nil, png, http.StatusBadRequest, "name is required"},
		{"no image", [][2]string{name}, nil, http.StatusBadRequest, "image is required"},
		{"empty image", [][2]string{name}, []byte{}, http.StatusUnsupportedMediaType, "empty"},
		{"not an image", [][2]string{name}, []byte("just some text, honestly"), http.StatusUnsupportedMediaType, "not a decodable image"},
		{"truncated image", [][2]string{name}, png[:len(png)/2], http.StatusUnsupportedMediaType, "not a decodable image"},
		{"unknown preset", [][2]string{name, {"preset", "mona_lisa"}}, png, http.StatusBadRequest, "unknown preset"},
		{"style size not a number", [][2]string{name, {"style_size", "big"}}, png, http.StatusBadRequest, "style_size"},
		{"style size below the minimum", [][2]string{name, {"style_size", "5"}}, png, http.StatusBadRequest, "at least 27"},
		{"negative style size", [][2]string{name, {"style_size", "-1"}}, png, http.StatusBadRequest, "style size"},
		{"three style weights", [][2]string{name, {"style_weights", "1,2,3"}}, png, http.StatusBadRequest, "style_weights"},
		{"style weight not a number", [][2]string{name, {"style_weights", "1,2,x,4"}}, png, http.StatusBadRequest, "style_weights"},
		{"negative content weight", [][2]string{name, {"content_weight", "-1"}}, png, http.StatusBadRequest, "content weight"},
		{"NaN TV weight", [][2]string{name, {"tv_weight", "NaN"}}, png, http.StatusBadRequest, "TV weight"},
		{"bad replace", [][2]string{name, {"replace", "maybe"}}, png, http.StatusBadRequest, "replace"},
		{"unknown field", [][2]string{name, {"colour", "red"}}, png, http.StatusBadRequest, "unknown field"},
		{"field twice", [][2]string{name, name}, png, http.StatusBadRequest, "twice"},
		{"too small for the network", [][2]string{name, {"style_size", "0"}}, stylesTestImage(t, 20, 20, 1, imaging.PNG), http.StatusBadRequest, "too small"},
		{"body over the limit", [][2]string{name}, big, http.StatusRequestEntityTooLarge, "limit"},
		{"image over the limit", [][2]string{name}, justOver, http.StatusRequestEntityTooLarge, "limit"},
		{"decompression bomb", [][2]string{name}, testutil.BombPNG(30000, 30000, 1), http.StatusRequestEntityTooLarge, "30000x30000"},
		{"over the pixel limit", [][2]string{name}, testutil.BombPNG(1001, 1000, 1), http.StatusRequestEntityTooLarge, "1001000 pixels"},
		{"svg", [][2]string{name}, []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>`), http.StatusUnsupportedMediaType, "unsupported"},
		{"bmp", [][2]string{name}, append([]byte("BM"), make([]byte, 64)...), http.StatusUnsupportedMediaType, "unsupported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := checkError(t, a.upload(t, tc.fields, tc.image), tc.want)
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not mention %q", msg, tc.msg)
			}
			if got := stylesTree(t, a.dir); !slices.Equal(got, empty) {
				t.Errorf("files written: %v", got)
			}
		})
	}

	t.Run("body over the limit, length unknown", func(t *testing.T) {
		body, ct := stylesForm(t, [][2]string{name}, big)
		rec := a.do(http.MethodPost, "/admin/styles", "Bearer "+stylesTestToken, io.MultiReader(body), ct) // no Content-Length
		checkError(t, rec, http.StatusRequestEntityTooLarge)
	})
	t.Run("not multipart", func(t *testing.T) {
		rec := a.do(http.MethodPost, "/admin/styles", "Bearer "+stylesTestToken, strings.NewReader(`{"name":"ok"}`), "application/json")
		checkError(t, rec, http.StatusUnsupportedMediaType)
	})
	t.Run("broken multipart", func(t *testing.T) {
		rec := a.do(http.MethodPost, "/admin/styles", "Bearer "+stylesTestToken, strings.NewReader("--xyz\r\nnonsense"), "multipart/form-data; boundary=xyz")
		checkError(t, rec, http.StatusBadRequest)
	})
	if got := stylesTree(t, a.dir); !slices.Equal(got, empty) {
		t.Errorf("files written: %v", got)
	}
	// And the same API still takes a good upload.
	if rec := a.upload(t, [][2]string{name}, png); rec.Code != http.StatusCreated {
		t.Errorf("good upload after the refusals: %d %s", rec.Code, rec.Body)
	}
}
