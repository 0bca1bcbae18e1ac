package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/styleproxy/styleproxy/plugin"
)

// ImmutableCacheControl is the Cache-Control of a response whose URL always gives the same
// bytes: cached by everyone, for a year, never revalidated.
const ImmutableCacheControl = "public, max-age=31536000, immutable"

// The defaults NewDefaultConfig sets.
const (
	DefaultMaxOutputPx     = 2048
	DefaultMaxSourceBytes  = 25 << 20   // 25 MiB
	DefaultMaxSourcePixels = 50_000_000 // 50 megapixels
	DefaultMaxSourceSide   = 16384      // pixels on the longer side
	DefaultMaxSourceAspect = 50         // longer side over shorter side
	DefaultWorkers         = 1
	DefaultQueue           = 16
	DefaultLightQueue      = 64
	DefaultTimeout         = 120 * time.Second
	DefaultWorkTimeout     = 10 * time.Minute
	DefaultCacheControl    = ImmutableCacheControl
	// DefaultCacheControlUnpinned lets caches keep a response that follows a style's current
	// version for an hour, and serve it stale for a day while they revalidate.
	DefaultCacheControlUnpinned = "public, max-age=3600, stale-while-revalidate=86400"
	DefaultRetryAfter           = 10 * time.Second
)

// NewDefaultConfig returns the defaults; set Source (required) and Filters, change what should
// differ, and give it to Mount, which validates it.
func NewDefaultConfig() Config {
	return Config{
		MaxOutputPx:          DefaultMaxOutputPx,
		MaxSourceBytes:       DefaultMaxSourceBytes,
		MaxSourcePixels:      DefaultMaxSourcePixels,
		MaxSourceSide:        DefaultMaxSourceSide,
		MaxSourceAspect:      DefaultMaxSourceAspect,
		Workers:              DefaultWorkers,
		Queue:                DefaultQueue,
		LightWorkers:         2 * runtime.GOMAXPROCS(0),
		LightQueue:           DefaultLightQueue,
		Timeout:              DefaultTimeout,
		WorkTimeout:          DefaultWorkTimeout,
		RetryAfter:           DefaultRetryAfter,
		CacheControl:         DefaultCacheControl,
		CacheControlUnpinned: DefaultCacheControlUnpinned,
		Logger:               slog.Default(),
	}
}

// Config configures a Pipeline: start from NewDefaultConfig.
type Config struct {
	// Source is where images come from: NewDirSource or NewHTTPSource. Required.
	Source Source
	// Filters are the filters a URL may ask for, run in this order after the resize.
	Filters []plugin.Filter

	// MaxOutputPx bounds the output's sides: w and h above it are refused (400), and a result
	// whose other side would exceed it is scaled down to fit.
	MaxOutputPx int
	// MaxSourceBytes and MaxSourcePixels bound the source image, checked before it is decoded
	// (413 beyond them).
	MaxSourceBytes  int64
	MaxSourcePixels int64
	// MaxSourceSide and MaxSourceAspect bound the source's longer side and the ratio of its
	// longer side to its shorter, checked before it is decoded (413 beyond them): a thin strip of
	// few pixels is still slow to resize.
	MaxSourceSide   int
	MaxSourceAspect int

	// Cache stores responses (nil: no caching).
	Cache *Cache
	// Offload, if set, computes staged filters' heavy stages elsewhere (a cluster's workers)
	// instead of on this process's Workers.
	Offload Offloader

	// Workers is how many heavy computations (those with a heavy filter) run at once.
	Workers int
	// Queue is how many more may wait for a worker (0: none); beyond that, requests for new
	// heavy work get 503 with Retry-After.
	Queue int
	// LightWorkers bounds light computations (decode, resize, light filters, encode) running at
	// once (default: twice GOMAXPROCS); LightQueue more may wait, beyond that 503 as for Queue.
	LightWorkers int
	LightQueue   int
	// Timeout bounds how long a request waits (504 beyond it). The computation it started or
	// joined runs detached from it and is cached when it finishes.
	Timeout time.Duration
	// WorkTimeout bounds a computation once it holds a worker (heavy work) or a slot (light
	// work); time in the queue does not count.
	WorkTimeout time.Duration
	// RetryAfter is the Retry-After of a 503 (whole seconds, at least 1).
	RetryAfter time.Duration

	// Presets are the named parameter sets a URL may use with preset=NAME (see Presets).
	Presets Presets
	// SigningKey turns on URL signing: every request needs a valid sig (see Sign), or gets 403.
	SigningKey []byte
	// CacheControl is the Cache-Control of successful responses whose URL pins everything they
	// depend on (style=NAME@VERSION, or no style).
	CacheControl string
	// CacheControlUnpinned is the Cache-Control of responses that follow something that may
	// change under the same URL (style=NAME follows the style's current version).
	CacheControlUnpinned string
	// KeySalt is mixed into every cache key and ETag: the server passes what else its results
	// depend on (the weights' hash, the engine's version).
	KeySalt string

	// Logger receives a line for each computation and each server-side failure (default
	// slog.Default()).
	Logger *slog.Logger
	// Hooks observe the pipeline, for metrics.
	Hooks Hooks
}

// Hooks are optional callbacks for metrics; each may be nil. They are called synchronously, from
// many goroutines at once: keep them fast and safe for concurrent use.
type Hooks struct {
	// OnRequest: an /img request was answered with status after d.
	OnRequest func(method string, status int, d time.Duration)
	// OnCache: a cache tier (TierMemory, TierDisk) was looked up and hit or missed. A request
	// that misses memory and hits disk reports both.
	OnCache func(tier string, hit bool)
	// OnQueue: the heavy computations waiting for a worker (queued) or holding one (running)
	// changed.
	OnQueue func(queued, running int)
	// OnWorkStart and OnWorkEnd bracket each computation (one per cache miss, however many
	// requests share it); heavy says whether it needed a worker (a heavy filter's Stage, or
	// Apply without one). err is nil on success.
	OnWorkStart func(heavy bool)
	OnWorkEnd   func(heavy bool, d time.Duration, err error)
}

// Validate reports every problem with c at once, each a *plugin.ConfigError naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &plugin.ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.Source == nil {
		bad("Source", "is required")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxOutputPx", int64(c.MaxOutputPx)}, {"MaxSourceBytes", c.MaxSourceBytes}, {"MaxSourcePixels", c.MaxSourcePixels},
		{"MaxSourceSide", int64(c.MaxSourceSide)}, {"MaxSourceAspect", int64(c.MaxSourceAspect)}, {"Workers", int64(c.Workers)},
		{"LightWorkers", int64(c.LightWorkers)}, {"Timeout", int64(c.Timeout)}, {"WorkTimeout", int64(c.WorkTimeout)}, {"RetryAfter", int64(c.RetryAfter)},
	} {
		if f.v < 1 {
			bad(f.name, "must be positive, got %d", f.v)
		}
	}
	if c.Queue < 0 {
		bad("Queue", "must be 0 or more, got %d", c.Queue)
	}
	if c.LightQueue < 0 {
		bad("LightQueue", "must be 0 or more, got %d", c.LightQueue)
	}
	if c.CacheControl == "" {
		bad("CacheControl", "is required")
	}
	if c.CacheControlUnpinned == "" {
		bad("CacheControlUnpinned", "is required")
	}
	if c.Logger == nil {
		bad("Logger", "is required")
	}
	c.validateFilters(bad)
	if err := c.Presets.check(owners(c.Filters), c.MaxOutputPx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// validateFilters checks that every filter has a name of its own and claims parameters nobody
// else owns.
func (c *Config) validateFilters(bad func(field, format string, args ...any)) {
	owner := map[string]string{}
	for _, p := range coreParams {
		owner[p] = "the pipeline"
	}
	names := map[string]bool{}
	for i, f := range c.Filters {
		if f == nil {
			bad("Filters", "filter %d is nil", i)
			continue
		}
		name := f.Name()
		switch {
		case name == "":
			bad("Filters", "filter %d has no name", i)
		case names[name]:
			bad("Filters", "two filters are named %q", name)
		}
		names[name] = true
		for _, p := range f.Params() {
			if o, ok := owner[p]; ok {
				bad("Filters", "filter %q claims parameter %q, which %s owns", name, p, o)
			}
			owner[p] = "filter " + name
		}
	}
}
