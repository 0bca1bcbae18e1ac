package pipeline

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
)

// ErrorBody is the JSON body of every error response: {"error": "...", "status": N}.
type ErrorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// WriteError answers the request with status and a JSON ErrorBody (headers only for HEAD).
func WriteError(c echo.Context, status int, msg string) error {
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	return c.JSON(status, ErrorBody{Error: msg, Status: status})
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
	}
	if werr := WriteError(c, status, msg); werr != nil {
		c.Logger().Error(werr)
	}
}
