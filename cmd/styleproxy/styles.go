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

// DataFlag is where the style library is, shared by the styles commands: the data folder, or
// a cluster's JetStream with --nats.
type DataFlag struct {
	Data      string `default:"./data" help:"data folder holding the style library (the one styleproxy serve uses)"`
	NATS      string `name:"nats" placeholder:"URL" help:"use the style library in this NATS JetStream cluster instead of --data (the one serve --nats uses)"`
	NATSCreds string `name:"nats-creds" placeholder:"FILE" help:"NATS credentials file (user JWT and seed)"`
}

// open opens the library; tc as for styles.Open.
func (d DataFlag) open(tc styles.TargetComputer) (*styles.Library, error) {
	if d.NATS == "" {
		return styles.Open(d.Data, tc, stylesLogger())
	}
	cl, store, err := server.OpenClusterStyles(server.ClusterConfig{URL: d.NATS, Creds: d.NATSCreds}, "styleproxy styles", stylesLogger())
	if err != nil {
		return nil, err
	}
	return styles.New(closing{store, cl.Close}, tc), nil
}

// closing is a store that also closes its connection.
type closing struct {
	styles.Store
	after func()
}

func (c closing) Close() error {
	err := c.Store.Close()
	c.after()
	return err
}

type stylesAddCmd struct {
	Name        string `arg:"" help:"the style's name (lower case letters, digits, _ and -)"`
	Image       string `arg:"" help:"the style image file"`
	DataFlag    `embed:""`
	Weights     string `placeholder:"FILE" help:"SqueezeNet 1.1 checkpoint (or a folder holding one); else the user cache"`
	Backend     string `help:"GoMLX backend: auto, go, xla:cpu, xla:cuda"`
	weightFlags `embed:""`
	StyleSize   int  `help:"shorter side the style image is scaled to, in pixels (0 = keep its exact size)"`
	Replace     bool `env:"-" help:"replace the style if NAME exists (it gets a new version)"`
}

func newStylesAddCmd() stylesAddCmd {
	return stylesAddCmd{Backend: engine.BackendAuto, StyleSize: styles.DefaultStyleSize}
}

// Run registers the style. A running styleproxy serve on the same data folder serves it without
// a restart.
func (c *stylesAddCmd) Run(io *stdio) error {
	if err := styles.CheckName(c.Name); err != nil {
		return badInput("%v", err)
	}
	if err := checkSide("--style-size", c.StyleSize); err != nil {
		return err
	}
	_, sw, err := c.resolve()
	if err != nil {
		return err
	}
	opts := styles.AddOptions{Preset: c.Preset, StyleSize: c.StyleSize, Content: c.ContentWeight, Style: sw, TV: c.TVWeight,
		Replace: c.Replace, Limits: imaging.Limits{MaxBytes: stylesMaxImageBytes, MaxPixels: maxInputPixel}}
	img, err := readStyleImage(c.Image)
	if err != nil {
		return err
	}
	// The engine (weights, backend) is opened only once the image has been checked, so bad
	// input is refused at once.
	tc := &lazyEngine{open: func() (*engine.Engine, error) {
		e, _, err := server.OpenEngine(c.Weights, c.Backend)
		return e, engineInputError(err, c.Weights)
	}}
	lib, err := c.open(tc)
	if err != nil {
		return err
	}
	defer lib.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := lib.Add(ctx, c.Name, img, opts)
	if err != nil {
		if isImageError(err) {
			err = fmt.Errorf("%s: %w", c.Image, err)
		}
		return stylesCLIError(err)
	}
	fmt.Fprintf(io.out, "added %s version %s (preset %s, style size %d)\n", s.Name, s.Version, s.Preset, s.StyleSize)
	return nil
}

type stylesListCmd struct {
	DataFlag `embed:""`
	JSON     bool `name:"json" env:"-" help:"print a JSON array (name, version, style_size, preset, weights, created)"`
}

func (c *stylesListCmd) Run(io *stdio) error {
	var list []*styles.Style
	// A data folder without a library lists nothing, and is not created for that.
	if _, err := os.Stat(filepath.Join(c.Data, "styles")); err == nil || c.NATS != "" {
		lib, err := c.open(nil)
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
	if c.JSON {
		if list == nil {
			list = []*styles.Style{}
		}
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(io.out, string(b))
		return nil
	}
	tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tSTYLE_SIZE\tPRESET\tCREATED")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, s.Version, s.StyleSize, s.Preset, s.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

type stylesRmCmd struct {
	Name     string `arg:"" help:"the style to remove"`
	DataFlag `embed:""`
}

func (c *stylesRmCmd) Run(io *stdio) error {
	if err := styles.CheckName(c.Name); err != nil {
		return badInput("%v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Data, "styles")); errors.Is(err, fs.ErrNotExist) && c.NATS == "" {
		return badInput("%v: %q (no style library in %s)", styles.ErrNotFound, c.Name, c.Data)
	}
	lib, err := c.open(nil)
	if err != nil {
		return err
	}
	defer lib.Close()
	if err := lib.Remove(c.Name); err != nil {
		return stylesCLIError(err)
	}
	fmt.Fprintf(io.out, "removed %s\n", c.Name)
	return nil
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
