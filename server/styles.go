package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/filters/style"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/styles"
)

// StylesConfig configures the style library's HTTP API.
type StylesConfig struct {
	// AdminToken is the bearer token the admin routes require. Empty: the admin routes answer
	// 503 (the API is off, never open).
	AdminToken string
	// MaxUploadBytes caps a registration's image (default 20 MB); the request body may exceed it
	// by the multipart framing and the text fields, at most 64 KiB.
	MaxUploadBytes int64
	// MaxUploadPixels caps the image's width×height as its header declares it, checked before
	// decoding (default 40 megapixels).
	MaxUploadPixels int64
	// Logger receives server-side failures (default slog.Default()).
	Logger *slog.Logger
	// Admin is the app the /admin routes go on (default: the one MountStyles is given).
	Admin *echo.Echo
}

const (
	stylesDefaultUploadBytes  = 20 << 20
	stylesDefaultUploadPixels = 40_000_000
	stylesFormOverhead        = 64 << 10 // multipart framing and text fields beyond the image
	stylesMaxFieldBytes       = 1 << 10

	// stylesAdminDisabled is the 503 message when no admin token is configured.
	stylesAdminDisabled = "admin API disabled: set STYLEPROXY_ADMIN_TOKEN or --admin-token-file"
)

// MountStyles serves the style library on e:
//
//	POST   /admin/styles                  register (multipart: name, image, preset, style_size,
//	                                      content_weight, style_weights, tv_weight, replace) -> 201
//	DELETE /admin/styles/{name}           remove -> 204
//	GET    /styles                        every style, as a JSON array sorted by name
//	GET    /styles/{name}                 one style
//	GET    /styles/{name}/thumbnail.jpg   its thumbnail (ETag: the version)
//
// The admin routes need "Authorization: Bearer <cfg.AdminToken>". Every error is plugin's JSON
// error form.
func MountStyles(e *echo.Echo, lib *styles.Library, cfg StylesConfig) {
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = stylesDefaultUploadBytes
	}
	if cfg.MaxUploadPixels <= 0 {
		cfg.MaxUploadPixels = stylesDefaultUploadPixels
	}
	a := &stylesAPI{lib: lib, cfg: cfg, token: sha256.Sum256([]byte(cfg.AdminToken)), log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	admin := cfg.Admin
	if admin == nil {
		admin = e
	}
	admin.POST("/admin/styles", a.create, a.requireAdmin)
	admin.DELETE("/admin/styles/:name", a.remove, a.requireAdmin)
	get := []string{http.MethodGet, http.MethodHead}
	e.Match(get, "/styles", a.list)
	e.Match(get, "/styles/:name", a.get)
	e.Match(get, "/styles/:name/thumbnail.jpg", a.thumbnail)
}

type stylesAPI struct {
	lib   *styles.Library
	cfg   StylesConfig
	token [32]byte // SHA-256 of the token: compared in constant time, whatever its length
	log   *slog.Logger
}

// styleJSON is a style as the API shows it.
type styleJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Pinned is the style= value that pins this version: NAME@VERSION.
	Pinned       string         `json:"pinned"`
	StyleSize    int            `json:"style_size"`
	Preset       string         `json:"preset,omitempty"`
	Weights      engine.Weights `json:"weights"`
	Created      time.Time      `json:"created"`
	ThumbnailURL string         `json:"thumbnail_url"`
}

func toStyleJSON(s *styles.Style) styleJSON {
	return styleJSON{
		Name: s.Name, Version: s.Version, Pinned: style.Pinned(s), StyleSize: s.StyleSize, Preset: s.Preset, Weights: s.Weights,
		Created: s.Created, ThumbnailURL: "/styles/" + s.Name + "/thumbnail.jpg?v=" + s.Version,
	}
}

func (a *stylesAPI) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.cfg.AdminToken == "" {
			return pipeline.WriteError(c, http.StatusServiceUnavailable, stylesAdminDisabled)
		}
		scheme, tok, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="styleproxy admin"`)
			return pipeline.WriteError(c, http.StatusUnauthorized, "missing admin token: send Authorization: Bearer <token>")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="styleproxy admin", error="invalid_token"`)
			return pipeline.WriteError(c, http.StatusUnauthorized, "invalid admin token")
		}
		return next(c)
	}
}

// styleError answers err from the library with its status (plugin.Status, the table every
// route uses).
func (a *stylesAPI) styleError(c echo.Context, err error) error {
	if errors.Is(err, styles.ErrExists) {
		err = fmt.Errorf("%w: send replace=true to replace it", err)
	}
	if status, _ := pipeline.Status(err); status >= http.StatusInternalServerError {
		a.log.Error("style request failed", "id", requestID(c), "path", c.Request().URL.Path, "status", status, "error", err.Error())
	}
	return pipeline.WriteStatusError(c, err)
}

func (a *stylesAPI) create(c echo.Context) error {
	req := c.Request()
	limit := a.cfg.MaxUploadBytes + stylesFormOverhead
	if req.ContentLength > limit {
		return pipeline.WriteError(c, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", req.ContentLength, limit))
	}
	mt, params, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEMultipartForm || params["boundary"] == "" {
		return pipeline.WriteError(c, http.StatusUnsupportedMediaType,
			"want a multipart/form-data body with the fields name and image")
	}
	body := http.MaxBytesReader(c.Response(), req.Body, limit)
	form, err := readStyleForm(multipart.NewReader(body, params["boundary"]), a.cfg.MaxUploadBytes)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return pipeline.WriteError(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes", limit))
	case errors.Is(err, errFormTooLarge):
		return pipeline.WriteError(c, http.StatusRequestEntityTooLarge, err.Error())
	case err != nil:
		return pipeline.WriteError(c, http.StatusBadRequest, "bad multipart form: "+err.Error())
	}
	name, ok := form.fields["name"]
	if !ok {
		return pipeline.WriteError(c, http.StatusBadRequest, "field name is required")
	}
	if !form.seen {
		return pipeline.WriteError(c, http.StatusBadRequest, "field image is required (the artwork, as a file)")
	}
	if err := styles.CheckName(name); err != nil { // before the options, as the library checks
		return a.styleError(c, err)
	}
	o, err := a.addOptions(form)
	if err != nil {
		return a.styleError(c, err)
	}
	s, err := a.lib.Add(req.Context(), name, form.image, o)
	if err != nil {
		return a.styleError(c, err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/styles/"+s.Name)
	return c.JSON(http.StatusCreated, toStyleJSON(s))
}

func (a *stylesAPI) remove(c echo.Context) error {
	if err := a.lib.Remove(c.Param("name")); err != nil {
		return a.styleError(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *stylesAPI) list(c echo.Context) error {
	list, err := a.lib.List()
	if err != nil {
		return a.styleError(c, err)
	}
	out := make([]styleJSON, 0, len(list))
	for _, s := range list {
		out = append(out, toStyleJSON(s))
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
	return c.JSON(http.StatusOK, out)
}

func (a *stylesAPI) get(c echo.Context) error {
	s, err := a.lib.Get(c.Param("name"))
	if err != nil {
		return a.styleError(c, err)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
	return c.JSON(http.StatusOK, toStyleJSON(s))
}

// thumbnail serves the current version's thumbnail. Its URL in the JSON carries ?v=VERSION, so
// that URL may be cached for good; without it (or with another version) clients revalidate
// against the ETag.
func (a *stylesAPI) thumbnail(c echo.Context) error {
	s, thumb, err := a.lib.GetThumbnail(c.Param("name"))
	if err != nil {
		return a.styleError(c, err)
	}
	h := c.Response().Header()
	etag := `"` + s.Version + `"`
	h.Set("ETag", etag)
	if c.QueryParam("v") == s.Version {
		h.Set(echo.HeaderCacheControl, pipeline.ImmutableCacheControl)
	} else {
		h.Set(echo.HeaderCacheControl, "public, no-cache")
	}
	if pipeline.ETagMatch(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "image/jpeg", thumb)
}
