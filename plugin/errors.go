package plugin

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/styleproxy/styleproxy/imaging"
)

// StatusCoder is an error that carries the HTTP status it is answered with from the moment it
// is made. Packages below plugin (the style library) implement it without importing plugin.
type StatusCoder interface {
	error
	HTTPStatus() int
}

// publicMessager is a server-side error (5xx) with a message fit for the client; other 5xx
// errors are answered "internal error", with the details only in the log.
type publicMessager interface {
	PublicMessage() string
}

// Error is an error with its HTTP status and the message the client may see.
type Error struct {
	Status int    // the HTTP status
	Msg    string // for the client
	Err    error  // the cause, for logs (may be nil)
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error         { return e.Err }
func (e *Error) HTTPStatus() int       { return e.Status }
func (e *Error) PublicMessage() string { return e.Msg }

// ParamError is a bad query parameter: 400, with a message naming the parameter.
type ParamError struct {
	Param, Reason string
}

func (e *ParamError) Error() string   { return "parameter " + e.Param + ": " + e.Reason }
func (e *ParamError) HTTPStatus() int { return http.StatusBadRequest }

// NotFoundError is something a request names that does not exist (an unknown style): 404.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string   { return e.What + " not found" }
func (e *NotFoundError) HTTPStatus() int { return http.StatusNotFound }

// Status is styleproxy's one table from an error to its HTTP status and the message for the
// client; every route answers errors with it:
//
//	a StatusCoder (ParamError 400, NotFoundError 404,
//	the pipeline's and the style library's errors)    its own status
//	imaging.ErrTooLarge                                413 (byte and pixel limits)
//	imaging.ErrNotImage, ErrUnsupportedFormat,
//	ErrZeroSize                                        415
//	context.DeadlineExceeded                           504
//	context.Canceled                                   503
//	anything else                                      500 ("internal error"; details only in the log)
//
// A client error's message is the error's text; a server error's is its public message.
func Status(err error) (int, string) {
	status := http.StatusInternalServerError
	var sc StatusCoder
	switch {
	case errors.As(err, &sc):
		status = sc.HTTPStatus()
	case errors.Is(err, imaging.ErrTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, imaging.ErrNotImage), errors.Is(err, imaging.ErrUnsupportedFormat), errors.Is(err, imaging.ErrZeroSize):
		status = http.StatusUnsupportedMediaType
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timed out"
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "cancelled"
	}
	if status < http.StatusInternalServerError {
		return status, strings.ReplaceAll(err.Error(), "imaging: ", "")
	}
	var pm publicMessager
	if errors.As(err, &pm) {
		return status, pm.PublicMessage()
	}
	return status, "internal error"
}

// ConfigError is a bad setting in a filter's or the pipeline's Config, naming its field; a
// command line maps the field to its flag.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Reason }
