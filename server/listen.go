package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/styleproxy/styleproxy/pipeline"
)

// newEcho is an Echo app with the server's middleware: request ids, one log line a request,
// metrics, JSON errors, panics turned into 500s (logged through slog), and /img's long writes.
func newEcho(cfg Config, log *slog.Logger, m *metrics) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = pipeline.ErrorHandler
	e.Use(middleware.RequestID())
	e.Use(requestLogger(log))
	e.Use(m.middleware)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic", "id", requestID(c), "path", c.Request().URL.Path, "error", err.Error(), "stack", string(stack))
			return err
		},
	}))
	e.Use(longWrites(cfg.Timeout + cfg.WriteTimeout))
	return e
}

// maxHeaderBytes bounds a request's header (431 beyond it); image URLs and their headers need
// far less.
const maxHeaderBytes = 64 << 10

// httpServer is the http.Server for one listener. ReadHeaderTimeout stops slowloris,
// ReadTimeout bounds a whole request (an upload included), IdleTimeout closes idle keep-alive
// connections, and WriteTimeout bounds writing an answer: /img's are extended (longWrites).
func (c Config) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, c.ReadTimeout),
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// longWrites gives an /img request limit to compute and write its answer: a stylization may take
// all of --timeout before its first byte, far beyond the server-wide WriteTimeout.
func longWrites(limit time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if strings.HasPrefix(c.Path(), "/img/") {
				rc := http.NewResponseController(c.Response().Writer)
				if err := rc.SetWriteDeadline(time.Now().Add(limit)); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return err
				}
			}
			return next(c)
		}
	}
}

// requestID is the request's X-Request-Id, as the RequestID middleware set it.
func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// requestLogger logs one line per request: its id, method, path and query (which variant was
// asked for), status, size and duration in seconds.
func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			req, res := c.Request(), c.Response()
			log.Info("request", "id", requestID(c), "method", req.Method, "path", req.URL.Path,
				"query", req.URL.RawQuery, "status", res.Status, "bytes", res.Size,
				"seconds", time.Since(start).Seconds())
			return nil
		}
	}
}

// serve serves h on ln until ctx ends, then shuts it down by drain's deadline. net/http's own
// errors leave in the JSON form too (jsonErrorListener).
func (c Config) serve(ctx context.Context, ln net.Listener, h http.Handler, drain func() context.Context) error {
	srv := c.httpServer(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(jsonErrorListener{ln}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if err := srv.Shutdown(drain()); err != nil {
		return fmt.Errorf("%s: %w", ln.Addr(), err)
	}
	return nil
}
