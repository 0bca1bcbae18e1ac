package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/internal/atomicfile"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/server"
	"github.com/styleproxy/styleproxy/styles"
)

// Limits on what a command line may ask for, so a typo cannot ask for hours of work or gigabytes.
const (
	maxSidePx     = 4096
	maxIters      = 100000
	maxInputPixel = 100_000_000
	// defaultContentSize is stylize's --size: the reference's scale, matching the style size.
	defaultContentSize = styles.DefaultStyleSize
)

// stylizeCmd's fields start as newStylizeCmd sets them, which makes those the defaults.
type stylizeCmd struct {
	Content     string   `required:"" placeholder:"FILE" env:"-" help:"content image (JPEG, PNG, WebP, GIF, TIFF, HEIF, AVIF)"`
	Style       string   `required:"" placeholder:"FILE" env:"-" help:"style image (the artwork)"`
	Output      string   `required:"" short:"o" placeholder:"FILE" env:"-" help:"output image; the format follows the extension (.png, .jpg, .webp, .avif)"`
	Size        int      `help:"shorter side of the content image in pixels (0 = keep its exact size)"`
	StyleSize   int      `help:"shorter side of the style image in pixels (0 = keep its exact size)"`
	Schedule    string   `enum:"${schedules}" default:"${default_schedule}" help:"optimisation schedule: fast (a gentle learning rate, fast-forgetting Adam moments) or reference (the reference's loop, exactly)"`
	Iters       int      `help:"Adam iterations (the fast schedule takes fewer for the same quality)"`
	LR          *float64 `name:"lr" placeholder:"RATE" help:"Adam learning rate (--schedule reference only; default 3)"`
	DecayAt     autoInt  `default:"auto" help:"iteration at which the learning rate drops to --decay-lr (--schedule reference only; -1 = never; auto = 90% of --iters)"`
	DecayLR     *float64 `name:"decay-lr" placeholder:"RATE" help:"learning rate from --decay-at on (--schedule reference only; default 0.1)"`
	ClampUntil  autoInt  `default:"auto" help:"clamp the image to [-1.5, 1.5] before each iteration below this one (--schedule reference only; auto = --iters - 10)"`
	weightFlags `embed:""`
	Init        string `enum:"content,noise" default:"content" help:"starting image: ${enum}"`
	Seed        uint64 `placeholder:"N" help:"random seed for --init noise"`
	Weights     string `placeholder:"FILE" help:"SqueezeNet 1.1 checkpoint (or a folder holding one); else the user cache"`
	Backend     string `help:"GoMLX backend: auto, go, xla:cpu, xla:cuda"`
	Report      string `placeholder:"FILE" env:"-" help:"write a JSON report (backend, timing, loss history) to this file"`
}

func newStylizeCmd() stylizeCmd {
	d := engine.DefaultOptions()
	return stylizeCmd{Size: defaultContentSize, StyleSize: styles.DefaultStyleSize, Iters: d.Iters,
		Backend: engine.BackendAuto}
}

// weightFlags choose the loss weights: a preset, and overrides of its weights.
type weightFlags struct {
	Preset        string   `enum:"${presets}" default:"${default_preset}" help:"loss weights preset: ${enum}"`
	ContentWeight *float64 `placeholder:"W" help:"content loss weight (overrides the preset's)"`
	StyleWeights  string   `placeholder:"A,B,C,D" help:"per-layer style weights for layers 1, 4, 6, 7 (overrides the preset's)"`
	TVWeight      *float64 `name:"tv-weight" placeholder:"W" help:"total-variation loss weight (overrides the preset's)"`
}

// resolve returns the preset's weights with the overrides, and the --style-weights override as
// the library takes it. The library checks each override; its complaint names the flag.
func (f *weightFlags) resolve() (engine.Weights, *[4]float64, error) {
	var sw *[4]float64
	if f.StyleWeights != "" {
		var err error
		if sw, err = styles.ParseStyleWeights(f.StyleWeights); err != nil {
			return engine.Weights{}, nil, badInput("--style-weights: %v", err)
		}
	}
	for _, o := range []struct {
		flag        string
		content, tv *float64
		style       *[4]float64
	}{{"--content-weight", f.ContentWeight, nil, nil}, {"--style-weights", nil, nil, sw}, {"--tv-weight", nil, f.TVWeight, nil}} {
		if _, err := styles.ResolveWeights(f.Preset, o.content, o.style, o.tv); err != nil {
			return engine.Weights{}, nil, badInput("%s: %v", o.flag, err)
		}
	}
	w, err := styles.ResolveWeights(f.Preset, f.ContentWeight, sw, f.TVWeight)
	return w, sw, err
}

func (c *stylizeCmd) validate() error {
	for _, f := range [][2]string{{"--content", c.Content}, {"--style", c.Style}, {"--output", c.Output}} {
		if f[1] == "" { // "--content" last on the line, or given as --content=
			return badInput("%s needs a file name", f[0])
		}
	}
	if err := checkSide("--size", c.Size); err != nil {
		return err
	}
	if err := checkSide("--style-size", c.StyleSize); err != nil {
		return err
	}
	if c.Iters < 0 || c.Iters > maxIters {
		return badInput("--iters must be between 0 and %d, got %d", maxIters, c.Iters)
	}
	if _, err := imaging.FormatFromExt(c.Output); err != nil {
		return badInput("--output %s: %v", c.Output, err)
	}
	if engine.Schedule(c.Schedule) != engine.Reference {
		for _, f := range []struct {
			flag string
			set  bool
		}{{"--lr", c.LR != nil}, {"--decay-at", !c.DecayAt.auto}, {"--decay-lr", c.DecayLR != nil}, {"--clamp-until", !c.ClampUntil.auto}} {
			if f.set {
				return badInput("%s applies only with --schedule reference (the %s schedule sets its own)", f.flag, c.Schedule)
			}
		}
	}
	opt := c.options()
	if err := opt.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// checkSide checks a shorter-side flag: 0 (exact size) or between the network's minimum and
// maxSidePx.
func checkSide(flag string, px int) error {
	switch {
	case px < 0 || px > maxSidePx:
		return badInput("%s must be between 0 and %d, got %d", flag, maxSidePx, px)
	case px != 0 && px < engine.MinSide:
		return badInput("%s must be at least %d (or 0), got %d", flag, engine.MinSide, px)
	}
	return nil
}

func (c *stylizeCmd) options() engine.Options {
	opt := engine.OptionsFor(engine.Schedule(c.Schedule), c.Iters)
	opt.Init, opt.Seed = c.Init, c.Seed
	if c.LR != nil {
		opt.LR = *c.LR
	}
	if c.DecayLR != nil {
		opt.DecayLR = *c.DecayLR
	}
	if !c.DecayAt.auto {
		opt.DecayAt = c.DecayAt.v
	}
	if !c.ClampUntil.auto {
		opt.ClampUntil = c.ClampUntil.v
	}
	return opt
}

// report is what --report writes.
type report struct {
	Backend        string          `json:"backend"`
	Seconds        float64         `json:"seconds"`
	ItersPerSecond float64         `json:"iters_per_second"`
	ContentShape   [2]int          `json:"content_shape"`
	StyleShape     [2]int          `json:"style_shape"`
	Weights        engine.Weights  `json:"weights"`
	LossHistory    []engine.Losses `json:"loss_history"`
}

func (c *stylizeCmd) Run() error {
	if err := c.validate(); err != nil {
		return err
	}
	w, _, err := c.resolve()
	if err != nil {
		return err
	}
	format, _ := imaging.FormatFromExt(c.Output)
	eng, _, err := server.OpenEngine(c.Weights, c.Backend)
	if err != nil {
		return engineInputError(err, c.Weights)
	}
	content, err := loadForEngine(c.Content, c.Size)
	if err != nil {
		return err
	}
	style, err := loadForEngine(c.Style, c.StyleSize)
	if err != nil {
		return err
	}
	targets, err := eng.StyleTargets(style)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bar := newProgressBar(os.Stderr)
	start := time.Now()
	out, hist, err := eng.Transfer(ctx, content, targets, w, c.options(), bar.iteration)
	bar.done()
	if err != nil {
		return err
	}
	seconds := time.Since(start).Seconds()

	img, err := imaging.FromRGB(&imaging.RGB{Width: out.W, Height: out.H, Pix: out.RGB()})
	if err != nil {
		return err
	}
	defer img.Close()
	data, err := img.Encode(format, pipeline.DefaultQuality)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.Output, data); err != nil {
		return err
	}
	if c.Report != "" {
		r := report{Backend: eng.Backend(), Seconds: seconds, ContentShape: [2]int{content.H, content.W},
			StyleShape: [2]int{style.H, style.W}, Weights: w, LossHistory: hist}
		if seconds > 0 {
			r.ItersPerSecond = float64(len(hist)) / seconds
		}
		js, err := json.MarshalIndent(r, "", " ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(c.Report, append(js, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// loadForEngine decodes an image file, scales its shorter side to px (0 = exact size) and
// normalises it for the engine. Problems with the file itself are bad input.
func loadForEngine(path string, px int) (*engine.Image, error) {
	im, err := imaging.DecodeFile(path, imaging.Limits{MaxPixels: maxInputPixel})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, imaging.ErrNotImage) || errors.Is(err, imaging.ErrTooLarge) ||
			errors.Is(err, imaging.ErrZeroSize) || errors.Is(err, imaging.ErrUnsupportedFormat) || errors.Is(err, fs.ErrPermission) {
			return nil, usageError{err}
		}
		return nil, err
	}
	defer im.Close()
	if err := im.ResizeShorterSide(px); err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	rgb, err := im.RGB()
	if err != nil {
		return nil, err
	}
	if rgb.Width < engine.MinSide || rgb.Height < engine.MinSide {
		return nil, badInput("%s: %dx%d is too small: the network needs at least %dx%d pixels",
			path, rgb.Width, rgb.Height, engine.MinSide, engine.MinSide)
	}
	return engine.FromRGB(rgb.Width, rgb.Height, rgb.Pix)
}

// progressBar draws "[=====>    ] k/n" on a terminal and stays silent otherwise.
type progressBar struct {
	w     io.Writer
	on    bool
	start time.Time
}

func newProgressBar(f *os.File) *progressBar {
	st, err := f.Stat()
	return &progressBar{w: f, on: err == nil && st.Mode()&os.ModeCharDevice != 0, start: time.Now()}
}

// step shows k of n done, with a short detail after the bar.
func (p *progressBar) step(k, n int, detail string) {
	if !p.on || n <= 0 {
		return
	}
	const width = 30
	filled := width * min(k, n) / n
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	fmt.Fprintf(p.w, "\r[%s] %d/%d %s ", bar, k, n, detail)
}

// iteration is an engine.Progress that shows the speed and the loss.
func (p *progressBar) iteration(k, n int, l engine.Losses) {
	rate := float64(k) / time.Since(p.start).Seconds()
	p.step(k, n, fmt.Sprintf(" %.2f it/s  loss %.4g", rate, l.Total))
}

func (p *progressBar) done() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}
