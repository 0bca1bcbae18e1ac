package pipeline

import (
	"slices"
	"sync"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"github.com/styleproxy/styleproxy/plugin"
)

// keyVersion names the pipeline's own semantics in every cache key: change it when the same
// options would give different bytes (a new resize rule, a new encoder setting).
const keyVersion = "styleproxy-pipeline/2"

// stageKeyVersion is keyVersion for the intermediates of staged filters.
const stageKeyVersion = "styleproxy-stage/1"

// Pipeline serves images: parse the query, look up the cache, or fetch, decode, resize, filter and
// encode once for all the requests that ask for the same result at the same time. Make one with
// Mount.
//
// Its files each hold one job: handler.go (HTTP), request.go (parse, sign, cache key),
// scheduler.go (singleflight, admission and the queue, progress, Wait), processing.go (the
// steps from source bytes to encoded image) and errors.go (the JSON error form).
type Pipeline struct {
	cfg   Config
	owner map[string]bool // every parameter someone owns
	sf    singleflight.Group
	light chan struct{} // light computation slots
	heavy chan struct{} // worker slots

	mu            sync.Mutex
	admitted      int             // heavy computations admitted: waiting or running
	lightAdmitted int             // light computations admitted: waiting or running
	running       int             // heavy computations holding a worker
	jobs          map[string]*job // heavy computations by key
	inflight      int             // computations of any kind
	waiting       int             // requests waiting for a computation
	idle          chan struct{}   // closed when inflight drops to 0
}

// Mount validates cfg, makes a Pipeline and serves it on e at GET and HEAD /img/{path}.
//
// A request is answered in this order: the path is cleaned (400 if it tries to leave the
// source), the signature checked (403) on the query as given, a preset=NAME expanded (see
// Presets), the query parsed by the pipeline and each filter (400, or 404 for an unknown style),
// the source versioned (404, 403, 502, 504), the cache key computed; If-None-Match with the
// key's ETag gives 304 without any work, a cache hit is served, and a miss joins or starts the one
// computation for that key.
//
// The cache key, also the strong ETag ("<hex>"), is the SHA-256 of, each length-prefixed: the
// pipeline's key version, Config.KeySalt, the libvips version, MaxOutputPx, the source's ID (the
// folder's absolute path or the origin's base URL), the cleaned path, the source object's version
// (see Source), ImageOptions.Key (format=auto keyed by the format it picked), and each active
// filter's Name and Options.Key in Config.Filters order. Everything that changes the bytes is in
// it, so the same URL gives the same bytes, across restarts too, for as long as the source image
// is unchanged.
//
// A staged first filter (plugin.Staged, the style filter's optimisation) has its intermediate
// computed once per stage key and cached beside the responses; every output that shares the
// stage is derived from it. The stage is the heavy, queued work; the outputs are light.
//
// Successful responses carry Cache-Control (Config.CacheControl, or CacheControlUnpinned when
// a filter's options float: plugin.Floating), ETag, the purge keys Surrogate-Key and Xkey
// ("source:PATH" and each plugin.Tagged key), Content-Type, Content-Length,
// X-Content-Type-Options: nosniff and, for format=auto only, Vary: Accept.
// Errors are JSON ErrorBody values with Cache-Control: no-store; see plugin.Status for the codes.
func Mount(e *echo.Echo, cfg Config) (*Pipeline, error) {
	p, err := newPipeline(cfg)
	if err != nil {
		return nil, err
	}
	e.GET("/img/*", p.handle)
	e.HEAD("/img/*", p.handle)
	return p, nil
}

func newPipeline(cfg Config) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Filters = slices.Clone(cfg.Filters)
	p := &Pipeline{
		cfg:   cfg,
		light: make(chan struct{}, cfg.LightWorkers),
		heavy: make(chan struct{}, cfg.Workers),
		jobs:  map[string]*job{},
	}
	p.owner = owners(cfg.Filters)
	return p, nil
}

// owners is every parameter someone owns: the pipeline or one of the filters.
func owners(filters []plugin.Filter) map[string]bool {
	owner := map[string]bool{}
	for _, q := range coreParams {
		owner[q] = true
	}
	for _, f := range filters {
		if f == nil {
			continue // Validate refuses it
		}
		for _, q := range f.Params() {
			owner[q] = true
		}
	}
	return owner
}
