// Package style is the style-transfer filter of the image pipeline: `style=NAME` paints the
// resized image in the style of a registered artwork, with `schedule`, `iters`, `strength` and
// `preserve_color` to tune it. It optimises at one of a fixed set of work shapes (buckets, compiled
// before the first request) and resizes the result to the output box with libvips, so a request's
// cost is bounded whatever output size it asks for.
package style

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/plugin"
	"github.com/styleproxy/styleproxy/styles"
)

// Library is what the filter needs of the style library.
type Library interface {
	// Get returns the style called name: styles.ErrInvalidName for a name no style can have,
	// styles.ErrNotFound for one that is not registered.
	Get(name string) (*styles.Style, error)
}

// Config bounds what a request may ask for.
type Config struct {
	MaxIters     int // largest `iters` accepted
	DefaultIters int // `iters` when the URL gives none (see engine.Options)
	MaxWorkPx    int // longest side the optimisation runs at
	WorkStep     int // the shorter side of a work shape is a multiple of this (or MaxWorkPx)
	// OnIterations, if set, is told how many iterations each stylization ran and how long they
	// took (for metrics).
	OnIterations func(n int, d time.Duration)
	// OnWarm, if set, is told when StartWarmup has compiled a work shape, how long it took, and
	// any error.
	OnWarm func(b engine.Bucket, d time.Duration, err error)
	// GPUBatch, if over 1, runs up to that many stylizations of one work shape and iteration
	// count together (see batcher); OnBatch, if set, is told each batch's size.
	GPUBatch int
	OnBatch  func(n int)
}

// Defaults for a 2-core machine on the pure-Go backend: the fast schedule's default steps at a
// 256 px work size finishes well inside the default timeout (README: "Backends and speed"). A
// GPU host raises MaxWorkPx.
const (
	DefaultMaxIters     = 500
	DefaultDefaultIters = engine.DefaultIters
	DefaultMaxWorkPx    = 256
	DefaultWorkStep     = 32
	// MaxGPUBatch bounds --gpu-batch: a batch's memory grows with its size.
	MaxGPUBatch = 64
)

// Filter is the style filter.
type Filter struct {
	lib   Library
	eng   *engine.Engine
	cfg   Config
	warm  *warmer
	batch *batcher
}

// NewDefaultConfig returns the defaults, for a CPU host.
func NewDefaultConfig() Config {
	return Config{MaxIters: DefaultMaxIters, DefaultIters: DefaultDefaultIters, MaxWorkPx: DefaultMaxWorkPx, WorkStep: DefaultWorkStep}
}

// Validate reports every problem with c at once, each a *plugin.ConfigError naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &plugin.ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.MaxIters < 1 {
		bad("MaxIters", "must be at least 1, got %d", c.MaxIters)
	}
	if c.DefaultIters < 1 || c.DefaultIters > c.MaxIters {
		bad("DefaultIters", "must be from 1 to the largest iters %d, got %d", c.MaxIters, c.DefaultIters)
	}
	if c.MaxWorkPx < engine.MinSide {
		bad("MaxWorkPx", "must be at least %d, got %d", engine.MinSide, c.MaxWorkPx)
	}
	if c.WorkStep < engine.MinSide || c.WorkStep > c.MaxWorkPx {
		bad("WorkStep", "must be from %d to the work size %d, got %d", engine.MinSide, c.MaxWorkPx, c.WorkStep)
	}
	if c.GPUBatch < 0 || c.GPUBatch > MaxGPUBatch {
		bad("GPUBatch", "must be from 0 to %d, got %d", MaxGPUBatch, c.GPUBatch)
	}
	if len(errs) > 0 {
		return fmt.Errorf("style filter: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// New returns the style filter computing with eng on styles from lib; start cfg from
// NewDefaultConfig.
func New(lib Library, eng *engine.Engine, cfg Config) (*Filter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Filter{lib: lib, eng: eng, cfg: cfg}
	if cfg.GPUBatch > 1 {
		f.batch = newBatcher(eng, cfg.GPUBatch, cfg.OnBatch)
	}
	return f, nil
}

// StartWarmup compiles the engine for every work shape (Buckets) in the background. Until a
// shape is compiled, requests that need it wait for it (moving it to the front) instead of
// compiling it themselves. Without StartWarmup, a shape compiles at its first request.
func (f *Filter) StartWarmup() {
	if f.warm != nil {
		return
	}
	f.warm = newWarmer(engine.Buckets(f.cfg.MaxWorkPx, f.cfg.WorkStep), func(b engine.Bucket) error {
		if err := f.eng.Warm(b.H, b.W); err != nil || f.cfg.GPUBatch <= 1 {
			return err
		}
		return f.eng.WarmBatch(b.H, b.W, f.cfg.GPUBatch)
	}, f.cfg.OnWarm)
	f.warm.start(warmWorkers())
}

// Warming lists the work shapes StartWarmup has not compiled yet ("256x192"); empty when all are.
func (f *Filter) Warming() []string {
	if f.warm == nil {
		return nil
	}
	var out []string
	for _, b := range f.warm.warming() {
		out = append(out, b.String())
	}
	return out
}

// Name implements plugin.Filter.
func (f *Filter) Name() string { return "style" }

// Params implements plugin.Filter.
func (f *Filter) Params() []string { return styleAppliers.Names() }

// Options are one request's style parameters, resolved against the library.
type Options struct {
	parts         []part // the styles, sorted by name, with their shares (see mix.go)
	schedule      engine.Schedule
	iters         int
	strength      int // 0-100
	preserveColor bool
	workPx, step  int
	warm          *warmer
	batch         *batcher
	eng           *engine.Engine
	onIterations  func(n int, d time.Duration)
}

// Parse implements plugin.Filter: it refuses style parameters without `style`, an unknown style
// (404), and values outside their ranges.
func (f *Filter) Parse(_ context.Context, q url.Values) (plugin.Options, error) {
	if !q.Has("style") {
		for _, p := range f.Params() {
			if q.Has(p) {
				return nil, &plugin.ParamError{Param: p, Reason: "only applies with style=NAME"}
			}
		}
		return nil, nil
	}
	p := parse{cfg: f.cfg, o: Options{schedule: engine.DefaultSchedule, iters: f.cfg.DefaultIters, strength: 100, workPx: f.cfg.MaxWorkPx,
		step: f.cfg.WorkStep, warm: f.warm, batch: f.batch, eng: f.eng, onIterations: f.cfg.OnIterations}}
	if err := styleAppliers.Apply(&p, q); err != nil {
		return nil, err
	}
	var err error
	if p.o.parts, err = resolve(f.lib, p.o.parts); err != nil {
		return nil, err
	}
	return &p.o, nil
}

// versionPattern is what a style version looks like in style=NAME@VERSION.
var versionPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// parse is Options being parsed, with the limits.
type parse struct {
	o   Options
	cfg Config
}

var styleAppliers = plugin.Appliers[parse]{
	"style":          applyStyle,
	"schedule":       applySchedule,
	"iters":          applyIters,
	"strength":       applyStrength,
	"preserve_color": applyPreserveColor,
}

// applyStyle takes NAME (the current version), NAME@VERSION (that version, pinned), or a blend
// of up to MaxBlend of these with shares (see mix.go); the library checks the names.
func applyStyle(p *parse, v string) (err error) {
	p.o.parts, err = parseParts(v)
	return err
}

func applySchedule(p *parse, v string) error {
	i, err := plugin.Choice("schedule", v, engine.ScheduleNames()...)
	if err == nil {
		p.o.schedule = engine.Schedules[i]
	}
	return err
}

func applyIters(p *parse, v string) (err error) {
	p.o.iters, err = plugin.Int("iters", v, 1, p.cfg.MaxIters)
	return err
}

func applyStrength(p *parse, v string) (err error) {
	p.o.strength, err = plugin.Int("strength", v, 0, 100)
	return err
}

func applyPreserveColor(p *parse, v string) (err error) {
	p.o.preserveColor, err = plugin.Bool("preserve_color", v)
	return err
}

// Key implements plugin.Options: the style's version stands for its image, size and weights.
// Pinned or not, the same version gives the same key. Strength 0 is the resized original,
// whatever the iterations and colour option.
func (o *Options) Key() string {
	if o.strength == 0 {
		return fmt.Sprintf("style=%s;strength=0", mixKey(o.parts))
	}
	return fmt.Sprintf("style=%s;iters=%d%s;strength=%d;preserve_color=%t;work=%d/%d;engine=%s",
		mixKey(o.parts), o.iters, o.scheduleKey(), o.strength, o.preserveColor, o.workPx, o.step, engine.Version)
}

// scheduleKey is the schedule's part of the keys: nothing for the reference schedule, which every
// key written before schedules existed stands for, so those stay valid.
func (o *Options) scheduleKey() string {
	if o.schedule == engine.Reference {
		return ""
	}
	return ";schedule=" + string(o.schedule)
}

// Floating implements plugin.Floating: style=NAME follows the style's current version; a blend
// floats if any of its styles does.
func (o *Options) Floating() bool {
	return slices.ContainsFunc(o.parts, func(p part) bool { return !p.pinned })
}

// PurgeKeys implements plugin.Tagged: "style:NAME" on responses that follow the style's current
// version (purge it after replacing the style), "style:NAME@VERSION" on pinned ones, which a
// replacement leaves right and so untouched; one for each style of a blend.
func (o *Options) PurgeKeys() []string {
	keys := make([]string, len(o.parts))
	for i, p := range o.parts {
		keys[i] = "style:" + p.style.Name
		if p.pinned {
			keys[i] = "style:" + Pinned(p.style)
		}
	}
	return keys
}

// Pinned is the value of style= that pins the style's current version: NAME@VERSION.
func Pinned(s *styles.Style) string { return s.Name + "@" + s.Version }

// Heavy implements plugin.Options: stylization needs a worker slot (unless it is a no-op).
func (o *Options) Heavy() bool { return o.strength > 0 && o.iters > 0 }
