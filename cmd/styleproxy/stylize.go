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
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/server"
)

// Limits on what a command line may ask for, so a typo cannot ask for hours of work or gigabytes.
const (
	maxSidePx     = 4096
	maxIters      = 100000
	maxInputPixel = 100_000_000
)

type stylizeFlags struct {
	content, style, out, report, weights, backend, preset, init string
	styleWeights                                                string
	size, styleSize, iters                                      int
	decayAt, clampUntil                                         autoInt
	lr, decayLR, contentWeight, tvWeight                        float64
	seed                                                        uint64
}

func stylizeCommand() *command {
	c := newCommand("stylize", "--content FILE --style FILE -o OUT [flags]",
		"Paint a content image in the style of another (the reference algorithm, run once).")
	var f stylizeFlags
	d := engine.DefaultOptions()
	fs := c.flags
	fs.StringVar(&f.content, "content", "", "content image (JPEG, PNG, WebP, ...)")
	fs.StringVar(&f.style, "style", "", "style image (the artwork)")
	fs.StringVar(&f.out, "o", "", "output image; the format follows the extension (.png, .jpg, .webp)")
	fs.StringVar(&f.report, "report", "", "write a JSON report (backend, timing, loss history) to this `FILE`")
	fs.StringVar(&f.weights, "weights", "", "SqueezeNet 1.1 checkpoint `FILE` (or a folder holding one); else the user cache")
	fs.StringVar(&f.backend, "backend", engine.BackendAuto, "GoMLX backend: auto, go, xla:cpu, xla:cuda")
	fs.StringVar(&f.preset, "preset", "starry_night", "loss weights preset: "+strings.Join(presetNames(), ", "))
	fs.StringVar(&f.init, "init", d.Init, "starting image: content or noise")
	fs.StringVar(&f.styleWeights, "style-weights", "", "per-layer style weights `a,b,c,d` (overrides the preset)")
	fs.IntVar(&f.size, "size", 192, "shorter side of the content image in pixels (0 = keep its exact size)")
	fs.IntVar(&f.styleSize, "style-size", 192, "shorter side of the style image in pixels (0 = keep its exact size)")
	fs.IntVar(&f.iters, "iters", d.Iters, "Adam iterations")
	f.decayAt, f.clampUntil = autoInt{auto: true}, autoInt{auto: true}
	fs.Var(&f.decayAt, "decay-at", "iteration at which the learning rate drops to --decay-lr (-1 = never; auto = 90% of --iters)")
	fs.Var(&f.clampUntil, "clamp-until", "clamp the image to [-1.5, 1.5] before each iteration below this one (auto = --iters - 10)")
	fs.Float64Var(&f.lr, "lr", d.LR, "Adam learning rate")
	fs.Float64Var(&f.decayLR, "decay-lr", d.DecayLR, "learning rate from --decay-at on")
	fs.Float64Var(&f.contentWeight, "content-weight", -1, "content loss weight (overrides the preset; -1 = preset's)")
	fs.Float64Var(&f.tvWeight, "tv-weight", -1, "total-variation loss weight (overrides the preset; -1 = preset's)")
	fs.Uint64Var(&f.seed, "seed", 0, "random seed for --init noise")
	c.run = func(positional []string) error {
		if len(positional) > 0 {
			return badInput("unexpected argument %q", positional[0])
		}
		return runStylize(f)
	}
	return c
}

func presetNames() []string { return []string{"starry_night", "the_scream", "composition_vii"} }

// lossWeights starts from the preset and applies explicit overrides.
func lossWeights(preset string, contentW, tvW float64, styleW string) (engine.Weights, error) {
	w, ok := engine.Presets[preset]
	if !ok {
		return w, badInput("unknown preset %q (known: %s)", preset, strings.Join(presetNames(), ", "))
	}
	if contentW != -1 {
		if !(contentW >= 0) {
			return w, badInput("--content-weight must be >= 0, got %v", contentW)
		}
		w.Content = contentW
	}
	if tvW != -1 {
		if !(tvW >= 0) {
			return w, badInput("--tv-weight must be >= 0, got %v", tvW)
		}
		w.TV = tvW
	}
	if styleW != "" {
		parts := strings.Split(styleW, ",")
		if len(parts) != len(w.Style) {
			return w, badInput("--style-weights needs %d comma-separated numbers, got %q", len(w.Style), styleW)
		}
		for i, p := range parts {
			v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || !(v >= 0) || v > 1e12 {
				return w, badInput("--style-weights: %q is not a weight between 0 and 1e12", p)
			}
			w.Style[i] = v
		}
	}
	return w, nil
}

func (f stylizeFlags) validate() error {
	switch {
	case f.content == "":
		return badInput("--content is required")
	case f.style == "":
		return badInput("--style is required")
	case f.out == "":
		return badInput("-o is required")
	case f.size < 0 || f.size > maxSidePx:
		return badInput("--size must be between 0 and %d, got %d", maxSidePx, f.size)
	case f.size != 0 && f.size < engine.MinSide:
		return badInput("--size must be at least %d (or 0), got %d", engine.MinSide, f.size)
	case f.styleSize < 0 || f.styleSize > maxSidePx:
		return badInput("--style-size must be between 0 and %d, got %d", maxSidePx, f.styleSize)
	case f.styleSize != 0 && f.styleSize < engine.MinSide:
		return badInput("--style-size must be at least %d (or 0), got %d", engine.MinSide, f.styleSize)
	case f.iters < 0 || f.iters > maxIters:
		return badInput("--iters must be between 0 and %d, got %d", maxIters, f.iters)
	}
	if _, err := imaging.FormatFromExt(f.out); err != nil {
		return badInput("-o %s: %v", f.out, err)
	}
	opt := f.options()
	if err := opt.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

func (f stylizeFlags) options() engine.Options {
	opt := engine.OptionsFor(f.iters)
	opt.LR, opt.DecayLR, opt.Init, opt.Seed = f.lr, f.decayLR, f.init, f.seed
	if !f.decayAt.auto {
		opt.DecayAt = f.decayAt.v
	}
	if !f.clampUntil.auto {
		opt.ClampUntil = f.clampUntil.v
	}
	return opt
}

// autoInt is an integer flag whose default, "auto", is derived from other flags.
type autoInt struct {
	v    int
	auto bool
}

func (a *autoInt) String() string {
	if a.auto {
		return "auto"
	}
	return strconv.Itoa(a.v)
}

func (a *autoInt) Set(s string) error {
	if s == "auto" {
		*a = autoInt{auto: true}
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want an integer or auto")
	}
	*a = autoInt{v: v}
	return nil
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

func runStylize(f stylizeFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	w, err := lossWeights(f.preset, f.contentWeight, f.tvWeight, f.styleWeights)
	if err != nil {
		return err
	}
	format, _ := imaging.FormatFromExt(f.out)
	eng, _, err := server.OpenEngine(f.weights, f.backend)
	if err != nil {
		return engineInputError(err, f.weights)
	}
	content, err := loadForEngine(f.content, f.size)
	if err != nil {
		return err
	}
	style, err := loadForEngine(f.style, f.styleSize)
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
	out, hist, err := eng.Transfer(ctx, content, targets, w, f.options(), bar.iteration)
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
	data, err := img.Encode(format, 0)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(f.out, data); err != nil {
		return err
	}
	if f.report != "" {
		r := report{Backend: eng.Backend(), Seconds: seconds, ContentShape: [2]int{content.H, content.W},
			StyleShape: [2]int{style.H, style.W}, Weights: w, LossHistory: hist}
		if seconds > 0 {
			r.ItersPerSecond = float64(len(hist)) / seconds
		}
		js, err := json.MarshalIndent(r, "", " ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(f.report, append(js, '\n')); err != nil {
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

// writeFileAtomic writes through a temporary file in the same folder and renames it into place,
// so a crash never leaves a half-written output.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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
