// Command gpubench measures the engine where it serves: compile time per work shape, the first
// transfer at never-seen aspect ratios after warm-up, the reference schedule at three sizes, and
// throughput with several transfers at once. It uses the standard library's PNG and JPEG decoders
// instead of libvips, so it runs on a GPU host that has only the PJRT plugin; bench/gpu.sh builds
// it, carries it there and runs it beside PyTorch (see README, Benchmarks).
//
// Every result is one line, a keyword and key=value pairs, for scripts to read.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/weights"
)

type config struct {
	weights, backend, content, style, inputs string
	conv                                     engine.Convolutions
	styleSize, work, step, iters, batchIters int
	sizes, batches                           []int
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gpubench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	c := config{}
	fs := flag.NewFlagSet("gpubench", flag.ContinueOnError)
	fs.StringVar(&c.weights, "weights", os.Getenv("STYLEPROXY_WEIGHTS"), "SqueezeNet 1.1 checkpoint (or a folder holding one)")
	fs.StringVar(&c.backend, "backend", engine.BackendAuto, "GoMLX backend: auto, go, xla:cuda,tf32, ...")
	conv := fs.String("conv", string(engine.Im2col), "how the 3x3 convolutions are computed: im2col or native")
	fs.StringVar(&c.content, "content", "", "content photo (PNG or JPEG)")
	fs.StringVar(&c.style, "style", "", "style image (PNG or JPEG)")
	fs.IntVar(&c.styleSize, "style-size", 256, "the style image's shorter side")
	fs.IntVar(&c.work, "work", 512, "work size whose shapes are compiled and used for first transfers and batches")
	fs.IntVar(&c.step, "step", 32, "work step (see --work-step)")
	fs.IntVar(&c.iters, "iters", engine.ReferenceIters, "iterations of the reference-schedule runs at each size")
	fs.IntVar(&c.batchIters, "batch-iters", 50, "iterations of each transfer in the throughput runs")
	sizes := fs.String("sizes", "192,512,1024", "shorter sides of the content for the reference-schedule runs")
	batches := fs.String("batches", "1,4,8", "transfers at once in the throughput runs")
	fs.StringVar(&c.inputs, "inputs", "", "write the content PNG at each size and the style PNG to this folder (for the reference)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err1, err2, err3 error
	c.sizes, err1 = ints(*sizes)
	c.batches, err2 = ints(*batches)
	c.conv, err3 = engine.ParseConvolutions(*conv)
	if err := errors.Join(err1, err2, err3); err != nil {
		return c, err
	}
	if c.content == "" || c.style == "" {
		return c, errors.New("--content and --style are required")
	}
	return c, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// bench is one run's engine, inputs and style.
type bench struct {
	cfg     config
	eng     *engine.Engine
	content image.Image
	style   engine.StyleTargets
	weights engine.Weights
}

func run(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	path, err := weights.Resolve(cfg.weights)
	if err != nil {
		return err
	}
	start := time.Now()
	eng, _, err := engine.Open(path, cfg.backend, engine.WithConvolutions(cfg.conv))
	if err != nil {
		return err
	}
	fmt.Printf("BACKEND name=%s cuda=%t convolutions=%s open_seconds=%.2f XLA_FLAGS=%q\n", eng.Backend(), eng.OnCUDA(),
		eng.Convolutions(), time.Since(start).Seconds(), os.Getenv("XLA_FLAGS"))
	b := &bench{cfg: cfg, eng: eng, weights: engine.Presets["starry_night"]}
	if err := b.load(); err != nil {
		return err
	}
	for _, step := range []func() error{b.compile, b.firstTransfers, b.schedule, b.throughput} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// load decodes the photos, computes the style targets and writes the reference's inputs.
func (b *bench) load() error {
	var err error
	if b.content, err = decode(b.cfg.content); err != nil {
		return err
	}
	styleImg, err := decode(b.cfg.style)
	if err != nil {
		return err
	}
	sw, sh := scaled(styleImg.Bounds(), b.cfg.styleSize)
	st := resize(styleImg, sw, sh)
	sim, err := toEngine(st)
	if err != nil {
		return err
	}
	if b.style, err = b.eng.StyleTargets(sim); err != nil {
		return err
	}
	if b.cfg.inputs == "" {
		return nil
	}
	if err := os.MkdirAll(b.cfg.inputs, 0o755); err != nil {
		return err
	}
	if err := writePNG(filepath.Join(b.cfg.inputs, "style.png"), st); err != nil {
		return err
	}
	for _, s := range b.cfg.sizes {
		w, h := scaled(b.content.Bounds(), s)
		if err := writePNG(filepath.Join(b.cfg.inputs, fmt.Sprintf("content_%d.png", s)), resize(b.content, w, h)); err != nil {
			return err
		}
	}
	return nil
}

// scaled is the size with shorter side short and r's aspect ratio (rounded as torchvision does).
func scaled(r image.Rectangle, short int) (w, h int) {
	if r.Dx() <= r.Dy() {
		return short, int(float64(r.Dy()) * float64(short) / float64(r.Dx()))
	}
	return int(float64(r.Dx()) * float64(short) / float64(r.Dy())), short
}

// compile times Warm for every work shape, one after another.
func (b *bench) compile() error {
	all := engine.Buckets(b.cfg.work, b.cfg.step)
	start := time.Now()
	for _, s := range all {
		t := time.Now()
		if err := b.eng.Warm(s.H, s.W); err != nil {
			return err
		}
		fmt.Printf("COMPILE shape=%s seconds=%.2f\n", s, time.Since(t).Seconds())
	}
	fmt.Printf("COMPILE_ALL shapes=%d seconds=%.2f compilations=%d\n", len(all), time.Since(start).Seconds(), b.eng.Compilations())
	return nil
}

// transfer runs opt's schedule on content resized to w×h.
func (b *bench) transfer(w, h int, opt engine.Options) (time.Duration, []engine.Losses, error) {
	im, err := toEngine(resize(b.content, w, h))
	if err != nil {
		return 0, nil, err
	}
	start := time.Now()
	_, hist, err := b.eng.Transfer(context.Background(), im, b.style, b.weights, opt, nil)
	return time.Since(start), hist, err
}

// firstTransfers stylizes three aspect ratios no earlier step used, at their (warm) buckets, as
// a default request does (the default schedule and iterations).
func (b *bench) firstTransfers() error {
	opt := engine.OptionsFor(engine.DefaultSchedule, engine.DefaultIters)
	for _, r := range [][2]int{{1000, 800}, {700, 1000}, {2100, 900}} {
		s := engine.BucketFor(r[0], r[1], b.cfg.work, b.cfg.step)
		before := b.eng.Compilations()
		d, _, err := b.transfer(s.W, s.H, opt)
		if err != nil {
			return err
		}
		fmt.Printf("FIRST aspect=%dx%d shape=%s schedule=%s iters=%d seconds=%.3f compilations=%d\n",
			r[0], r[1], s, opt.Schedule, opt.Iters, d.Seconds(), b.eng.Compilations()-before)
	}
	return nil
}

// schedule times the reference schedule at each size after a 12-iteration warm-up, as
// reference_cuda.py does.
func (b *bench) schedule() error {
	for _, short := range b.cfg.sizes {
		w, h := scaled(b.content.Bounds(), short)
		if _, _, err := b.transfer(w, h, engine.OptionsFor(engine.Reference, 12)); err != nil {
			return err
		}
		d, hist, err := b.transfer(w, h, engine.OptionsFor(engine.Reference, b.cfg.iters))
		if err != nil {
			return err
		}
		fmt.Printf("ENGINE size=%d shape=%dx%d iters=%d seconds=%.3f ms_per_iter=%.2f first_total=%.6g final_total=%.6g\n",
			short, h, w, b.cfg.iters, d.Seconds(), d.Seconds()*1000/float64(b.cfg.iters), hist[0].Total, hist[len(hist)-1].Total)
	}
	return nil
}

// throughput stylizes n images of the first work shape as one batch (TransferBatch, what
// --gpu-batch does) and reports images per second.
func (b *bench) throughput() error {
	s := engine.Buckets(b.cfg.work, b.cfg.step)[0]
	im, err := toEngine(resize(b.content, s.W, s.H))
	if err != nil {
		return err
	}
	var base float64
	for _, n := range b.cfg.batches {
		contents, styles, ws := make([]*engine.Image, n), make([]engine.StyleTargets, n), make([]engine.Weights, n)
		for i := range n {
			contents[i], styles[i], ws[i] = im, b.style, b.weights
		}
		opt := engine.OptionsFor(engine.Reference, b.cfg.batchIters)
		// The first batch of each size compiles its graph; the second is timed.
		if _, _, err := b.eng.TransferBatch(context.Background(), contents, styles, ws, engine.OptionsFor(engine.Reference, 1), nil); err != nil {
			return err
		}
		start := time.Now()
		if _, _, err := b.eng.TransferBatch(context.Background(), contents, styles, ws, opt, nil); err != nil {
			return err
		}
		d := time.Since(start)
		rate := float64(n) / d.Seconds()
		if base == 0 {
			base = rate
		}
		fmt.Printf("BATCH n=%d shape=%s iters=%d seconds=%.3f images_per_s=%.3f vs_first=%.2f\n",
			n, s, b.cfg.batchIters, d.Seconds(), rate, rate/base)
	}
	return nil
}
