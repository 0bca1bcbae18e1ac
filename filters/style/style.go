// Package style is the style-transfer filter of the image pipeline: `style=NAME` paints the
// resized image in the style of a registered artwork, with `iters`, `strength` and
// `preserve_color` to tune it. It optimises at one of a fixed set of work shapes (buckets, compiled
// before the first request) and resizes the result to the output box with libvips, so a request's
// cost is bounded whatever output size it asks for.
package style

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
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
	DefaultIters int // `iters` when the URL gives none
	MaxWorkPx    int // longest side the optimisation runs at
	WorkStep     int // the shorter side of a work shape is a multiple of this (or MaxWorkPx)
	// OnIterations, if set, is told how many iterations each stylization ran and how long they
	// took (for metrics).
	OnIterations func(n int, d time.Duration)
	// OnWarm, if set, is told when StartWarmup has compiled a work shape, how long it took, and
	// any error.
	OnWarm func(b engine.Bucket, d time.Duration, err error)
}

// Defaults for a 2-core machine on the pure-Go backend: about 0.3 s an iteration at 256x192, so a
// default request (200 iterations) finishes in about a minute, inside the default 120 s timeout.
// A GPU host raises MaxWorkPx (XLA on an H100 takes under 2 ms an iteration at 192x256).
const (
	DefaultMaxIters     = 500
	DefaultDefaultIters = engine.DefaultIters
	DefaultMaxWorkPx    = 256
	DefaultWorkStep     = 32
)

// Filter is the style filter.
type Filter struct {
	lib  Library
	eng  *engine.Engine
	cfg  Config
	warm *warmer
}

// New returns the style filter computing with eng on styles from lib.
func New(lib Library, eng *engine.Engine, cfg Config) (*Filter, error) {
	if cfg.MaxIters == 0 {
		cfg.MaxIters = DefaultMaxIters
	}
	if cfg.DefaultIters == 0 {
		cfg.DefaultIters = DefaultDefaultIters
	}
	if cfg.MaxWorkPx == 0 {
		cfg.MaxWorkPx = DefaultMaxWorkPx
	}
	if cfg.WorkStep == 0 {
		cfg.WorkStep = DefaultWorkStep
	}
	switch {
	case cfg.MaxIters < 1:
		return nil, fmt.Errorf("style filter: max iterations must be at least 1, got %d", cfg.MaxIters)
	case cfg.DefaultIters < 1 || cfg.DefaultIters > cfg.MaxIters:
		return nil, fmt.Errorf("style filter: default iterations %d must be between 1 and the maximum %d", cfg.DefaultIters, cfg.MaxIters)
	case cfg.MaxWorkPx < engine.MinSide:
		return nil, fmt.Errorf("style filter: work size must be at least %d px, got %d", engine.MinSide, cfg.MaxWorkPx)
	case cfg.WorkStep < engine.MinSide || cfg.WorkStep > cfg.MaxWorkPx:
		return nil, fmt.Errorf("style filter: work step must be from %d to the work size %d px, got %d", engine.MinSide, cfg.MaxWorkPx, cfg.WorkStep)
	}
	return &Filter{lib: lib, eng: eng, cfg: cfg}, nil
}

// StartWarmup compiles the engine for every work shape (Buckets) in the background. Until a
// shape is compiled, requests that need it wait for it (moving it to the front) instead of
// compiling it themselves. Without StartWarmup, a shape compiles at its first request.
func (f *Filter) StartWarmup() {
	if f.warm != nil {
		return
	}
	f.warm = newWarmer(engine.Buckets(f.cfg.MaxWorkPx, f.cfg.WorkStep), func(b engine.Bucket) error {
		return f.eng.Warm(b.H, b.W)
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
	style         *styles.Style
	iters         int
	strength      int // 0-100
	preserveColor bool
	workPx, step  int
	warm          *warmer
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
	p := parse{cfg: f.cfg, o: Options{iters: f.cfg.DefaultIters, strength: 100, workPx: f.cfg.MaxWorkPx,
		step: f.cfg.WorkStep, warm: f.warm, eng: f.eng, onIterations: f.cfg.OnIterations}}
	if err := styleAppliers.Apply(&p, q); err != nil {
		return nil, err
	}
	st, err := f.lib.Get(p.name)
	switch {
	case errors.Is(err, styles.ErrInvalidName):
		return nil, &plugin.ParamError{Param: "style", Reason: fmt.Sprintf("%q is not a style name", p.name)}
	case errors.Is(err, styles.ErrNotFound):
		return nil, &plugin.NotFoundError{What: fmt.Sprintf("style %q", p.name)}
	case err != nil:
		return nil, fmt.Errorf("style %q: %w", p.name, err)
	}
	p.o.style = st
	return &p.o, nil
}

// parse is Options being parsed, with the style's name and the limits.
type parse struct {
	name string
	o    Options
	cfg  Config
}

var styleAppliers = plugin.Appliers[parse]{
	"style":          applyStyle,
	"iters":          applyIters,
	"strength":       applyStrength,
	"preserve_color": applyPreserveColor,
}

func applyStyle(p *parse, v string) error {
	p.name = v // the library checks the name
	return nil
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
func (o *Options) Key() string {
	return fmt.Sprintf("style=%s@%s;iters=%d;strength=%d;preserve_color=%t;work=%d/%d;engine=%s",
		o.style.Name, o.style.Version, o.iters, o.strength, o.preserveColor, o.workPx, o.step, engine.Version)
}

// Heavy implements plugin.Options: stylization needs a worker slot (unless it is a no-op).
func (o *Options) Heavy() bool { return o.strength > 0 && o.iters > 0 }

// Apply implements plugin.Options.
func (o *Options) Apply(ctx context.Context, img *imaging.Image, progress plugin.Progress) (*imaging.Image, error) {
	if o.strength == 0 {
		return img, nil // strength 0 is the resized original
	}
	orig, err := img.RGB()
	if err != nil {
		return nil, err
	}
	work, err := o.workImage(ctx, orig)
	if err != nil {
		return nil, err
	}
	content, err := engine.FromRGB(work.Width, work.Height, work.Pix)
	if err != nil {
		return nil, err
	}
	opt := engine.OptionsFor(o.iters)
	start := time.Now()
	out, hist, err := o.eng.Transfer(ctx, content, o.style.Targets, o.style.Weights, opt, func(k, n int, _ engine.Losses) {
		if progress != nil {
			progress(k, n)
		}
	})
	if o.onIterations != nil {
		o.onIterations(len(hist), time.Since(start))
	}
	if err != nil {
		return nil, err
	}
	styled := &imaging.RGB{Width: out.W, Height: out.H, Pix: out.RGB()}
	if styled.Width != orig.Width || styled.Height != orig.Height {
		if styled, err = resizeRGB(styled, orig.Width, orig.Height); err != nil {
			return nil, err
		}
	}
	if o.preserveColor {
		keepColor(styled, orig)
	}
	if o.strength < 100 {
		blend(styled, orig, o.strength)
	}
	return imaging.FromRGB(styled)
}

// workImage is the image the optimisation runs on: the input resized to its bucket (see
// engine.BucketFor), once that bucket is compiled.
func (o *Options) workImage(ctx context.Context, orig *imaging.RGB) (*imaging.RGB, error) {
	w, h := orig.Width, orig.Height
	if min(w, h)*o.workPx/max(w, h) < engine.MinSide {
		return nil, &plugin.ParamError{Param: "w", Reason: fmt.Sprintf("the image's aspect ratio leaves under %d px on its short side at the %d px work size", engine.MinSide, o.workPx)}
	}
	b := engine.BucketFor(w, h, o.workPx, o.step)
	if o.warm != nil {
		if err := o.warm.wait(ctx, b); err != nil {
			return nil, err
		}
	}
	if b.W == w && b.H == h {
		return orig, nil
	}
	return resizeRGB(orig, b.W, b.H)
}

func resizeRGB(p *imaging.RGB, w, h int) (*imaging.RGB, error) {
	im, err := imaging.FromRGB(p)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	if err := im.ResizeExact(w, h); err != nil {
		return nil, err
	}
	return im.RGB()
}

// blend mixes the stylized pixels with the original: strength 100 is all style, 0 the original.
func blend(styled, orig *imaging.RGB, strength int) {
	s := float32(strength) / 100
	for i, v := range styled.Pix {
		styled.Pix[i] = clampByte(s*float32(v) + (1-s)*float32(orig.Pix[i]))
	}
}

// keepColor keeps the stylized image's luminance and takes the original's chroma (BT.601 YCbCr),
// so the result shows the style's brush strokes in the photo's colours.
func keepColor(styled, orig *imaging.RGB) {
	for i := 0; i+2 < len(styled.Pix); i += 3 {
		y := luma(styled.Pix[i:])
		or, og, ob := float32(orig.Pix[i]), float32(orig.Pix[i+1]), float32(orig.Pix[i+2])
		cb := -0.168736*or - 0.331264*og + 0.5*ob
		cr := 0.5*or - 0.418688*og - 0.081312*ob
		styled.Pix[i] = clampByte(y + 1.402*cr)
		styled.Pix[i+1] = clampByte(y - 0.344136*cb - 0.714136*cr)
		styled.Pix[i+2] = clampByte(y + 1.772*cb)
	}
}

func luma(p []uint8) float32 {
	return 0.299*float32(p[0]) + 0.587*float32(p[1]) + 0.114*float32(p[2])
}

func clampByte(v float32) uint8 {
	return uint8(min(max(v+0.5, 0), 255))
}
