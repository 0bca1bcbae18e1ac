package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/server"
	"github.com/styleproxy/styleproxy/styles"
)

// stylesMaxImageBytes bounds the image file `styles add` reads.
const stylesMaxImageBytes = 256 << 20

const dataFlagUsage = "data `DIR` holding the style library (the one styleproxy serve uses)"

func stylesAddCommand() *command {
	// A running styleproxy serve on the same data folder serves the new style without a restart.
	c := newCommand("styles add", "NAME IMAGE [flags]",
		"Register IMAGE as the style NAME, computing its Gram targets once (serve picks it up live).")
	fs := c.flags
	data := fs.String("data", "./data", dataFlagUsage)
	wf := fs.String("weights", "", "SqueezeNet 1.1 checkpoint `FILE` (or a folder holding one); else the user cache")
	backend := fs.String("backend", engine.BackendAuto, "GoMLX backend: auto, go, xla:cpu, xla:cuda")
	preset := fs.String("preset", styles.DefaultPreset, "loss weights preset: "+strings.Join(presetNames(), ", "))
	styleSize := fs.Int("style-size", styles.DefaultStyleSize, "shorter side the style image is scaled to, in pixels (0 = keep its exact size)")
	contentW := fs.Float64("content-weight", -1, "content loss weight (overrides the preset; -1 = preset's)")
	styleW := fs.String("style-weights", "", "per-layer style weights `a,b,c,d` (overrides the preset)")
	tvW := fs.Float64("tv-weight", -1, "total-variation loss weight (overrides the preset; -1 = preset's)")
	replace := fs.Bool("replace", false, "replace the style if NAME exists (it gets a new version)")
	c.run = func(positional []string) error {
		if len(positional) != 2 {
			return badInput("want NAME IMAGE, got %d argument(s)", len(positional))
		}
		name, path := positional[0], positional[1]
		if !styles.NamePattern.MatchString(name) {
			return badInput("%v (got %q)", styles.ErrInvalidName, name)
		}
		switch {
		case *styleSize < 0 || *styleSize > styles.MaxStyleSize:
			return badInput("--style-size must be between 0 and %d, got %d", styles.MaxStyleSize, *styleSize)
		case *styleSize != 0 && *styleSize < engine.MinSide:
			return badInput("--style-size must be at least %d (or 0), got %d", engine.MinSide, *styleSize)
		}
		w, err := lossWeights(*preset, *contentW, *tvW, *styleW)
		if err != nil {
			return err
		}
		img, err := readStyleImage(path)
		if err != nil {
			return err
		}
		// The engine (weights, backend) is opened only once the image has been checked, so bad
		// input is refused at once.
		tc := &lazyEngine{open: func() (*engine.Engine, error) {
			e, _, err := server.OpenEngine(*wf, *backend)
			return e, engineInputError(err, *wf)
		}}
		lib, err := styles.Open(*data, tc, stylesLogger())
		if err != nil {
			return err
		}
		defer lib.Close()
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		s, err := lib.Add(ctx, name, img, styles.AddOptions{
			Preset: *preset, StyleSize: *styleSize, Content: &w.Content, Style: &w.Style, TV: &w.TV,
			Replace: *replace, Limits: imaging.Limits{MaxBytes: stylesMaxImageBytes, MaxPixels: maxInputPixel},
		})
		if err != nil {
			if isImageError(err) {
				err = fmt.Errorf("%s: %w", path, err)
			}
			return stylesCLIError(err)
		}
		fmt.Fprintf(c.out, "added %s version %s (preset %s, style size %d)\n", s.Name, s.Version, s.Preset, s.StyleSize)
		return nil
	}
	return c
}

func stylesListCommand() *command {
	c := newCommand("styles list", "[flags]", "List the registered styles: a table, or JSON with --json.")
	data := c.flags.String("data", "./data", dataFlagUsage)
	asJSON := c.flags.Bool("json", false, "print a JSON array (name, version, style_size, preset, weights, created)")
	c.run = func(positional []string) error {
		if len(positional) > 0 {
			return badInput("unexpected argument %q", positional[0])
		}
		var list []*styles.Style
		// A data folder without a library lists nothing, and is not created for that.
		if _, err := os.Stat(filepath.Join(*data, "styles")); err == nil {
			lib, err := styles.Open(*data, nil, stylesLogger())
			if err != nil {
				return err
			}
			defer lib.Close()
			if list, err = lib.List(); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if *asJSON {
			if list == nil {
				list = []*styles.Style{}
			}
			b, err := json.MarshalIndent(list, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, string(b))
			return nil
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVERSION\tSTYLE_SIZE\tPRESET\tCREATED")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, s.Version, s.StyleSize, s.Preset, s.Created.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return c
}

func stylesRmCommand() *command {
	c := newCommand("styles rm", "NAME [flags]", "Remove the style NAME from the library.")
	data := c.flags.String("data", "./data", dataFlagUsage)
	c.run = func(positional []string) error {
		if len(positional) != 1 {
			return badInput("want NAME, got %d argument(s)", len(positional))
		}
		name := positional[0]
		if !styles.NamePattern.MatchString(name) {
			return badInput("%v (got %q)", styles.ErrInvalidName, name)
		}
		if _, err := os.Stat(filepath.Join(*data, "styles")); errors.Is(err, fs.ErrNotExist) {
			return badInput("%v: %q (no style library in %s)", styles.ErrNotFound, name, *data)
		}
		lib, err := styles.Open(*data, nil, stylesLogger())
		if err != nil {
			return err
		}
		defer lib.Close()
		if err := lib.Remove(name); err != nil {
			return stylesCLIError(err)
		}
		fmt.Fprintf(c.out, "removed %s\n", name)
		return nil
	}
	return c
}

// stylesLogger reports damaged library entries on stderr.
func stylesLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// readStyleImage reads the image file, refusing a missing, unreadable or oversized one as bad
// input.
func readStyleImage(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError{err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, badInput("%s is not a regular file", path)
	}
	if fi.Size() > stylesMaxImageBytes {
		return nil, badInput("%s is %d bytes, over the limit of %d", path, fi.Size(), stylesMaxImageBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, stylesMaxImageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// isImageError reports whether err is about the image's content (to name the file in it).
func isImageError(err error) bool {
	for _, e := range []error{styles.ErrTooSmall, imaging.ErrNotImage, imaging.ErrTooLarge, imaging.ErrZeroSize, imaging.ErrUnsupportedFormat} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// stylesCLIError marks the library's bad-input errors as such (exit status 2).
func stylesCLIError(err error) error {
	switch {
	case errors.Is(err, styles.ErrExists):
		return usageError{fmt.Errorf("%w (use --replace to replace it)", err)}
	case isImageError(err), errors.Is(err, styles.ErrInvalidName), errors.Is(err, styles.ErrInvalidOptions),
		errors.Is(err, styles.ErrNotFound):
		return usageError{err}
	}
	return err
}

// lazyEngine is a styles.TargetComputer that opens the engine on first use.
type lazyEngine struct {
	open func() (*engine.Engine, error)
	once sync.Once
	eng  *engine.Engine
	err  error
}

func (l *lazyEngine) StyleTargets(im *engine.Image) (engine.StyleTargets, error) {
	l.once.Do(func() { l.eng, l.err = l.open() })
	if l.err != nil {
		return engine.StyleTargets{}, l.err
	}
	return l.eng.StyleTargets(im)
}
