package pipeline

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/styleproxy/styleproxy/plugin"
)

// ErrorBody is the JSON body of every error response: {"error": "...", "status": N}.
type ErrorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// Status maps an error from any layer to its HTTP status and the message for the client: it is
// plugin.Status, the one table every route uses. The pipeline's own errors carry their status:
// *ForbiddenError 403, *OriginError 502, ErrQueueFull 503.
func Status(err error) (int, string) { return plugin.Status(err) }

// WriteError answers the request with status and a JSON ErrorBody (headers only for HEAD), with
// Cache-Control: no-store so that no cache keeps an error.
func WriteError(c echo.Context, status int, msg string) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	return c.JSON(status, ErrorBody{Error: msg, Status: status})
}

// WriteStatusError answers the request with err's status (see Status) and JSON body.
func WriteStatusError(c echo.Context, err error) error {
	status, msg := Status(err)
	return WriteError(c, status, msg)
}

// ErrorHandler is an echo.HTTPErrorHandler that renders errors as JSON ErrorBody values, for
// Echo servers that want every error (404 for unknown routes, 405, panics) in styleproxy's form.
func ErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(status)
		}
	} else {
		status, msg = Status(err)
	}
	if status >= http.StatusInternalServerError {
		slog.Error("request failed", "id", requestID(c), "path", c.Request().URL.Path, "status", status, "error", err.Error())
	}
	if werr := WriteError(c, status, msg); werr != nil {
		slog.Debug("writing an error response failed", "id", requestID(c), "error", werr.Error())
	}
}
