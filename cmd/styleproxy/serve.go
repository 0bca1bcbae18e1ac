package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/styleproxy/styleproxy/filters/style"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/server"
	"github.com/styleproxy/styleproxy/styles"
)

// serveCmd's flags are server.Config's tagged fields; newServeCmd starts them at
// server.DefaultConfig(), which makes those the defaults.
type serveCmd struct {
	server.Config `embed:""`
	Drain         time.Duration `default:"10s" help:"on SIGTERM, how long in-flight requests may finish"`
}

func newServeCmd() serveCmd { return serveCmd{Config: server.DefaultConfig()} }

func (c *serveCmd) Run() error {
	cfg := c.Config
	cfg.Logger = jsonLogger()
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	srv, err := server.New(cfg)
	if err != nil {
		return engineInputError(err, cfg.Weights)
	}
	return listenAndRun(cfg.Addr, func(ctx context.Context, ln net.Listener) error {
		return srv.Run(ctx, ln, c.Drain)
	})
}

// jsonLogger is the log of the commands that serve: JSON lines on stderr. It becomes slog's
// default too, so that libvips's messages and Echo's last-resort errors use the same lines.
func jsonLogger() *slog.Logger {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)
	return log
}

// listenAndRun listens on addr and runs run on the listener until SIGINT or SIGTERM cancels ctx.
func listenAndRun(addr string, run func(ctx context.Context, ln net.Listener) error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, ln)
}

type signCmd struct {
	URL            string `arg:"" help:"a full URL, or /img/path?query"`
	SigningKey     string `help:"the server's signing key (prefer the environment variable or --signing-key-file)"`
	SigningKeyFile string `placeholder:"FILE" help:"read the signing key from this file"`
	Data           string `default:"./data" help:"data folder holding the style library: style=NAME is pinned to its current version"`
	Unpinned       bool   `help:"sign style=NAME as given, following the style's future versions"`
}

func (c *signCmd) Run(io *stdio) error {
	k := c.SigningKey
	if c.SigningKeyFile != "" {
		b, err := os.ReadFile(c.SigningKeyFile)
		if err != nil {
			return badInput("--signing-key-file: %v", err)
		}
		k = strings.TrimSpace(string(b))
	}
	if k == "" {
		return badInput("no signing key: set STYLEPROXY_SIGNING_KEY or pass --signing-key-file")
	}
	if !strings.HasPrefix(c.URL, "/") && !strings.Contains(c.URL, "://") {
		return badInput("%q is not a URL or an absolute path", c.URL)
	}
	u := c.URL
	if !c.Unpinned {
		var err error
		if u, err = pinStyle(u, c.Data); err != nil {
			return err
		}
	}
	signed, err := pipeline.SignURL([]byte(k), u)
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintln(io.out, signed)
	return nil
}

// pinStyle rewrites style=NAME in rawURL to style=NAME@VERSION, the current version in the
// style library under dataDir, so that the signed URL may be cached for good.
func pinStyle(rawURL, dataDir string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", badInput("%q: %v", rawURL, err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil || len(q["style"]) != 1 || !strings.Contains(q.Get("style"), ",") && strings.Contains(q.Get("style"), "@") {
		return rawURL, nil // nothing to pin (the server judges the rest)
	}
	name := q.Get("style")
	if _, err := os.Stat(filepath.Join(dataDir, "styles")); err != nil {
		return "", badInput("style %q: no style library in --data %s to pin its version (or pass --unpinned)", name, dataDir)
	}
	lib, err := styles.Open(dataDir, nil, stylesLogger())
	if err != nil {
		return "", err
	}
	defer lib.Close()
	pinned, err := style.Pin(lib, name)
	if err != nil {
		return "", badInput("style %q: %v (in --data %s; or pass --unpinned)", name, err, dataDir)
	}
	q.Set("style", pinned)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
