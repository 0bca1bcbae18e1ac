package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"github.com/styleproxy/styleproxy/plugin"
)

// ImmutableCacheControl is the Cache-Control of a response whose URL always gives the same
// bytes: cached by everyone, for a year, never revalidated.
const ImmutableCacheControl = "public, max-age=31536000, immutable"

// Defaults for the zero values of Config.
const (
	DefaultMaxOutputPx     = 2048
	DefaultMaxSourceBytes  = 32 << 20   // 32 MiB
	DefaultMaxSourcePixels = 50_000_000 // 50 megapixels
	DefaultWorkers         = 1
	DefaultQueue           = 16
	DefaultTimeout         = 120 * time.Second
	DefaultCacheControl    = ImmutableCacheControl
	DefaultRetryAfter      = 10 * time.Second
)

// Config configures a Pipeline. Zero fields take the defaults above.
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

	// Cache stores responses (nil: no caching).
	Cache *Cache

	// Workers is how many heavy computations (those with a heavy filter) run at once.
	Workers int
	// Queue is how many more may wait for a worker; beyond that, requests for new heavy work get
	// 503 with Retry-After. Zero is the default; negative means no waiting at all.
	Queue int
	// LightWorkers bounds light computations (decode, resize, light filters, encode) running at
	// once; the rest wait (no 503). Default: twice GOMAXPROCS.
	LightWorkers int
	// Timeout bounds each request (504 beyond it), and each computation, which runs detached
	// from the requests waiting for it.
	Timeout time.Duration
	// RetryAfter is the Retry-After of a 503 (whole seconds, at least 1).
	RetryAfter time.Duration

	// SigningKey turns on URL signing: every request needs a valid sig (see Sign), or gets 403.
	SigningKey []byte
	// CacheControl is the Cache-Control of successful responses.
	CacheControl string
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
	// OnQueue: the number of heavy computations waiting for a worker changed to depth.
	OnQueue func(depth int)
	// OnWorkStart and OnWorkEnd bracket each computation (one per cache miss, however many
	// requests share it); heavy says whether it needed a worker. err is nil on success.
	OnWorkStart func(heavy bool)
	OnWorkEnd   func(heavy bool, d time.Duration, err error)
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Source == nil {
		bad("no Source")
	}
	setDefault(&c.MaxOutputPx, DefaultMaxOutputPx, "MaxOutputPx", bad)
	setDefault(&c.MaxSourceBytes, DefaultMaxSourceBytes, "MaxSourceBytes", bad)
	setDefault(&c.MaxSourcePixels, DefaultMaxSourcePixels, "MaxSourcePixels", bad)
	setDefault(&c.Workers, DefaultWorkers, "Workers", bad)
	setDefault(&c.LightWorkers, 2*runtime.GOMAXPROCS(0), "LightWorkers", bad)
	setDefault(&c.Timeout, DefaultTimeout, "Timeout", bad)
	setDefault(&c.RetryAfter, DefaultRetryAfter, "RetryAfter", bad)
	switch {
	case c.Queue == 0:
		c.Queue = DefaultQueue
	case c.Queue < 0:
		c.Queue = 0
	}
	if c.CacheControl == "" {
		c.CacheControl = DefaultCacheControl
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	owner := map[string]string{}
	for _, p := range coreParams {
		owner[p] = "the pipeline"
	}
	names := map[string]bool{}
	c.Filters = slices.Clone(c.Filters)
	for i, f := range c.Filters {
		if f == nil {
			bad("filter %d is nil", i)
			continue
		}
		name := f.Name()
		switch {
		case name == "":
			bad("filter %d has no name", i)
		case names[name]:
			bad("two filters are named %q", name)
		}
		names[name] = true
		for _, p := range f.Params() {
			if o, ok := owner[p]; ok {
				bad("filter %q claims parameter %q, which %s owns", name, p, o)
			}
			owner[p] = "filter " + name
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("plugin: invalid config: %w", errors.Join(errs...))
	}
	return c, nil
}

func setDefault[T int | int64 | time.Duration](v *T, def T, name string, bad func(string, ...any)) {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		bad("%s is negative", name)
	}
}
