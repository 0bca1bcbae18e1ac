// Package plugin is styleproxy's public API for image filters, at the bottom of the tree: the
// Filter interface, the parameter helpers filters parse their values with, and the typed errors
// that carry their HTTP status from birth. Filters import it the way a database driver imports
// database/sql/driver; the pipeline (package pipeline) runs them, and this package imports
// neither.
//
// A filter implements Filter: it owns some query parameters, parses them into its own Options,
// contributes those options to the cache key and transforms an image.
package plugin

import (
	"context"
	"net/url"

	"github.com/styleproxy/styleproxy/imaging"
)

// Filter is an image filter that a URL can ask for.
type Filter interface {
	// Name identifies the filter in cache keys and logs ("style", "grayscale").
	Name() string
	// Params lists the query parameters the filter owns; the parser refuses any parameter that
	// neither the pipeline nor a filter owns.
	Params() []string
	// Parse reads the filter's parameters from the query. It returns nil options when the query
	// does not ask for the filter, and a *ParamError naming the parameter when a value is bad.
	Parse(ctx context.Context, q url.Values) (Options, error)
}

// Options are one filter's parsed, validated parameters for one request.
type Options interface {
	// Key is the canonical text of the options for the cache key: equal options give equal
	// keys, and anything that changes the output (a style's version, say) changes the key.
	Key() string
	// Heavy reports whether applying the options needs one of the limited worker slots.
	Heavy() bool
	// Apply transforms the image, reporting progress for long work (progress may be nil).
	// It may change img in place and return it, or return a new image; the pipeline closes
	// both when it is done with them, so Apply must not keep either. ctx carries the request's
	// deadline (the pipeline's Timeout) but not its cancellation: the result is cached even if
	// the requester left, so Apply should stop only when ctx is done.
	Apply(ctx context.Context, img *imaging.Image, progress Progress) (*imaging.Image, error)
}

// Progress is told that step k of n of a long filter is done.
type Progress func(k, n int)
