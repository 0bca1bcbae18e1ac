// Package styles is the style library: artworks registered once under a name, each stored with
// its Gram targets (computed by the engine at registration), loss weights and a thumbnail, so
// that a request only has to optimise the content image.
//
// The library keeps its styles in a Store: a data directory on one host (Open), safe for
// concurrent use by many goroutines and by several processes at once (a server and `styleproxy
// styles add`, say), or a cluster's (package cluster, on NATS JetStream). storetest is the
// conformance test both pass.
package styles

import (
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/styleproxy/styleproxy/engine"
)

// Style is one registered artwork, as a request uses it. A *Style handed out by the library is
// shared and immutable: callers must not modify it (Targets included).
type Style struct {
	Name string `json:"name"`
	// Version is a content hash of the image and the settings: re-registering a name with
	// anything different gives a new version, and cached results carry the version in their key.
	Version   string         `json:"version"`
	StyleSize int            `json:"style_size"` // shorter side the image was scaled to (0 = as uploaded)
	Preset    string         `json:"preset,omitempty"`
	Weights   engine.Weights `json:"weights"`
	Created   time.Time      `json:"created"`
	// Targets are the Gram matrices at the engine's style layers.
	Targets engine.StyleTargets `json:"-"`
}

// NamePattern is what a style name must match.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Errors callers classify with errors.Is. Each carries the HTTP status an API answers it with
// (see plugin.Status), so that every route reports the same failure the same way.
var (
	ErrNotFound    = &statusError{"style not found", http.StatusNotFound}
	ErrExists      = &statusError{"style already exists", http.StatusConflict}
	ErrInvalidName = &statusError{"invalid style name: use 1-64 of a-z, 0-9, _ and -, starting with a letter or digit", http.StatusBadRequest}
	// ErrInvalidOptions: an unknown preset, a weight that is negative or not a number, or a
	// style size out of range. Bad input, like ErrInvalidName.
	ErrInvalidOptions = &statusError{"invalid style options", http.StatusBadRequest}
	// ErrTooSmall: the image (after scaling to the style size) is smaller than the network's
	// minimum of engine.MinSide pixels a side. Bad input.
	ErrTooSmall = &statusError{"style image too small", http.StatusBadRequest}
	// ErrReadOnly: Add on a library opened without a TargetComputer.
	ErrReadOnly = errors.New("style library opened without an engine: it cannot register styles")
)

// statusError is a sentinel error with the HTTP status it is answered with.
type statusError struct {
	msg    string
	status int
}

func (e *statusError) Error() string   { return e.msg }
func (e *statusError) HTTPStatus() int { return e.status }
