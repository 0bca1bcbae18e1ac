package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// statusClientGone is reported to hooks for requests whose client left before the answer.
const statusClientGone = 499

func (p *Pipeline) handle(c echo.Context) error {
	start := time.Now()
	status := p.serve(c)
	if h := p.cfg.Hooks.OnRequest; h != nil {
		h(c.Request().Method, status, time.Since(start))
	}
	return nil
}

func (p *Pipeline) serve(c echo.Context) int {
	req := c.Request()
	ctx, cancel := context.WithTimeout(req.Context(), p.cfg.Timeout)
	defer cancel()

	r, err := p.prepare(ctx, c)
	if err != nil {
		return p.fail(c, ctx, err)
	}
	etag := `"` + r.key + `"`
	h := c.Response().Header()
	success := func() {
		h.Set("Cache-Control", p.cfg.CacheControl)
		if r.floating {
			h.Set("Cache-Control", p.cfg.CacheControlUnpinned)
		}
		h.Set("ETag", etag)
		if r.image.Auto {
			h.Add("Vary", "Accept")
		}
		// Purge keys: Fastly reads Surrogate-Key, Varnish's xkey module xkey.
		keys := strings.Join(r.purgeKeys, " ")
		h.Set("Surrogate-Key", keys)
		h.Set("Xkey", keys)
	}
	if ETagMatch(req.Header.Get("If-None-Match"), etag) {
		success()
		c.Response().WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	e, ok := p.lookup(r.key)
	if !ok {
		if e, err = p.await(ctx, r); err != nil {
			return p.fail(c, ctx, err)
		}
	}
	success()
	h.Set("Content-Type", e.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	h.Set("X-Content-Type-Options", "nosniff")
	c.Response().WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		c.Response().Write(e.Body)
	}
	return http.StatusOK
}

// ETagMatch implements If-None-Match's weak comparison of an If-None-Match header against a
// strong etag (quoted); "*" matches any.
func ETagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// fail answers the request with err's status and JSON body.
func (p *Pipeline) fail(c echo.Context, ctx context.Context, err error) int {
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		return statusClientGone // nobody to answer
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && c.Request().Context().Err() != nil {
		return statusClientGone
	}
	status, msg := Status(err)
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(p.cfg.RetryAfter.Round(time.Second)/time.Second))))
	}
	lvl := slog.LevelDebug
	if status >= 500 {
		lvl = slog.LevelWarn
		if status == http.StatusInternalServerError {
			lvl = slog.LevelError
		}
	}
	p.cfg.Logger.Log(ctx, lvl, "image request failed", "id", requestID(c), "path", c.Request().URL.Path,
		"query", c.Request().URL.RawQuery, "status", status, "error", err.Error())
	if werr := WriteError(c, status, msg); werr != nil {
		p.cfg.Logger.Debug("writing an error response failed", "id", requestID(c), "error", werr.Error())
	}
	return status
}

// requestID is the request's X-Request-Id where a middleware set one, for log lines.
func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }
