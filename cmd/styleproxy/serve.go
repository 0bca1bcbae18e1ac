package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/server"
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
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(cfg.Logger) // libvips's messages and Echo's last-resort errors use the same lines
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	srv, err := server.New(cfg)
	if err != nil {
		return engineInputError(err, cfg.Weights)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Run(ctx, ln, c.Drain)
}

type signCmd struct {
	URL            string `arg:"" help:"a full URL, or /img/path?query"`
	SigningKey     string `help:"the server's signing key (prefer the environment variable or --signing-key-file)"`
	SigningKeyFile string `placeholder:"FILE" help:"read the signing key from this file"`
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
	signed, err := pipeline.SignURL([]byte(k), c.URL)
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintln(io.out, signed)
	return nil
}
