package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// Source is where the images named by /img/{path} come from: a local folder (DirSource) or an
// HTTP origin (HTTPSource). Paths given to a Source are already cleaned by the pipeline: relative,
// slash-separated, without "." or ".." segments.
//
// A Source reports a version for each object, a short string that changes whenever the object's
// bytes change; the version goes into the cache key, so a changed source image gets a new key
// (and a new ETag) while an unchanged one is served from the cache without being read.
type Source interface {
	// ID identifies the source in cache keys: the folder's absolute path, the origin's base URL.
	ID() string
	// Stat returns the version of the object at path without reading it where the source can.
	// An empty version means the source cannot tell cheaply; the pipeline then fetches the
	// object and uses a hash of its bytes.
	Stat(ctx context.Context, path string) (version string, err error)
	// Fetch returns the object's bytes, refusing more than maxBytes (if positive) with an error
	// wrapping imaging.ErrTooLarge, and its version as Stat gives it ("" as in Stat).
	Fetch(ctx context.Context, path string, maxBytes int64) (data []byte, version string, err error)
}

// ForbiddenError is a request the pipeline refuses to serve (a symlink out of the source folder,
// an origin address in a private range, a missing or wrong signature); it is answered with 403.
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string   { return "forbidden: " + e.Reason }
func (e *ForbiddenError) HTTPStatus() int { return http.StatusForbidden }

// OriginError is an HTTP origin that failed: it could not be reached, answered with an error
// status, or redirected too often or elsewhere; it is answered with 502. Timeouts are not
// OriginErrors: they are answered with 504.
type OriginError struct {
	Msg string // for the client: says what failed without naming the origin
	Err error  // the cause, for logs
}

func (e *OriginError) Error() string {
	if e.Err != nil {
		return "origin failure: " + e.Msg + ": " + e.Err.Error()
	}
	return "origin failure: " + e.Msg
}

func (e *OriginError) Unwrap() error         { return e.Err }
func (e *OriginError) HTTPStatus() int       { return http.StatusBadGateway }
func (e *OriginError) PublicMessage() string { return "origin failure: " + e.Msg }

func notFound(path string) error {
	return &plugin.NotFoundError{What: fmt.Sprintf("source image %q", path)}
}

// readLimited reads r to the end, refusing more than max bytes (if positive).
func readLimited(r io.Reader, max int64) ([]byte, error) {
	if max > 0 {
		r = io.LimitReader(r, max+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if max > 0 && int64(len(data)) > max {
		return nil, fmt.Errorf("%w: source image is over the limit of %d bytes", imaging.ErrTooLarge, max)
	}
	return data, nil
}
