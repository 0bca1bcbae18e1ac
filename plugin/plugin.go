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
	// both when it is done with them, so Apply must not keep either. ctx carries the work's
	// deadline (the pipeline's WorkTimeout, counted from when the work got its worker) but not
	// the request's cancellation: the result is cached even if the requester left, so Apply
	// should stop only when ctx is done.
	Apply(ctx context.Context, img *imaging.Image, progress Progress) (*imaging.Image, error)
}

// Progress is told that step k of n of a long filter is done.
type Progress func(k, n int)

// Staged is implemented by options whose heavy work yields an intermediate image that many
// outputs share: the style filter's optimisation serves every format, quality, strength and
// colour option of one picture and style. The pipeline computes the intermediate once, caches it
// under its own key (with the other cache entries) and derives each output from it with Finish.
type Staged interface {
	Options
	// StageKey is the canonical text of everything besides its input image that the
	// intermediate depends on (a style's version, the iterations, the engine's version), or ""
	// when these options have no heavy stage; then the pipeline calls Apply.
	StageKey() string
	// StageSize is the size of the stage's input for an output of w x h pixels: the pipeline
	// scales the source to it, so that outputs of different sizes with the same stage size share
	// one intermediate. Errors are *ParamErrors (an output too small to stylize, say).
	StageSize(w, h int) (sw, sh int, err error)
	// Stage computes the intermediate from its input (the heavy part). It may change img in
	// place and return it, or return a new image.
	Stage(ctx context.Context, img *imaging.Image, progress Progress) (*imaging.Image, error)
	// Finish makes the filter's output from its input img (the resized image) and the
	// intermediate (the light part). It owns neither; the same rules as Apply hold.
	Finish(ctx context.Context, img, intermediate *imaging.Image) (*imaging.Image, error)
}

// Floating is implemented by options that follow something that may change under the same URL
// (style=NAME follows the style's current version); a response with floating options gets the
// pipeline's unpinned Cache-Control instead of the immutable one.
type Floating interface {
	Floating() bool
}

// Tagged is implemented by options that name what an operator may want to purge them by
// ("style:NAME"); the pipeline sends these purge keys, with the source path's, in the
// Surrogate-Key and xkey headers.
type Tagged interface {
	PurgeKeys() []string
}
