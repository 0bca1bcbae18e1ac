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

func serveCommand() *command {
	c := newCommand("serve", "[flags]", "Serve restyled images over HTTP: the origin a CDN pulls from.")
	cfg := server.DefaultConfig()
	fs := c.flags
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data `DIR`: the style library, and the disk cache unless --cache-dir")
	fs.StringVar(&cfg.Source, "source", cfg.Source, "where /img/{path} comes from: a folder, or an http(s) origin URL")
	fs.StringVar(&cfg.Weights, "weights", cfg.Weights, "SqueezeNet 1.1 checkpoint `FILE` (or a folder holding one); else the user cache")
	fs.StringVar(&cfg.Backend, "backend", cfg.Backend, "GoMLX backend: auto, go, xla:cpu, xla:cuda")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "stylizations running at once")
	fs.IntVar(&cfg.Queue, "queue", cfg.Queue, "stylizations waiting for a worker; beyond that requests get 503")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "time limit for a request's work (504 after it)")
	fs.IntVar(&cfg.MaxIters, "max-iters", cfg.MaxIters, "largest iters a URL may ask for")
	fs.IntVar(&cfg.DefaultIters, "default-iters", cfg.DefaultIters, "iters when a URL gives none")
	fs.IntVar(&cfg.MaxWorkPx, "max-work-px", cfg.MaxWorkPx, "longest side the optimisation runs at; larger outputs are scaled up")
	fs.IntVar(&cfg.MaxOutputPx, "max-output-px", cfg.MaxOutputPx, "largest w or h a URL may ask for")
	fs.IntVar(&cfg.MaxSourceMB, "max-source-mb", cfg.MaxSourceMB, "largest source image in MB")
	fs.IntVar(&cfg.MaxSourceMP, "max-source-mp", cfg.MaxSourceMP, "largest source image in megapixels (checked before decoding)")
	fs.BoolVar(&cfg.AllowPrivateSources, "allow-private-sources", cfg.AllowPrivateSources, "let an HTTP origin resolve to loopback, private or link-local addresses")
	fs.IntVar(&cfg.CacheMemMB, "cache-mem-mb", cfg.CacheMemMB, "in-memory cache budget in MB (0 = off)")
	fs.StringVar(&cfg.CacheDir, "cache-dir", cfg.CacheDir, "disk cache `DIR` (default DATA/cache)")
	fs.IntVar(&cfg.CacheDiskMB, "cache-disk-mb", cfg.CacheDiskMB, "disk cache budget in MB (0 = off)")
	fs.StringVar(&cfg.CacheControl, "cache-control", cfg.CacheControl, "Cache-Control header of image responses")
	fs.StringVar(&cfg.SigningKey, "signing-key", cfg.SigningKey, "require URLs signed with this key (prefer the environment variable or --signing-key-file)")
	fs.StringVar(&cfg.SigningKeyFile, "signing-key-file", cfg.SigningKeyFile, "read the signing key from this `FILE`")
	fs.StringVar(&cfg.AdminToken, "admin-token", cfg.AdminToken, "bearer token for /admin (prefer the environment variable or --admin-token-file; unset = admin API off)")
	fs.StringVar(&cfg.AdminTokenFile, "admin-token-file", cfg.AdminTokenFile, "read the admin token from this `FILE`")
	fs.IntVar(&cfg.MaxUploadMB, "max-upload-mb", cfg.MaxUploadMB, "largest style upload in MB")
	fs.IntVar(&cfg.MaxUploadMP, "max-upload-mp", cfg.MaxUploadMP, "largest style upload in megapixels")
	drain := fs.Duration("drain", 10*time.Second, "on SIGTERM, how long in-flight requests may finish")
	c.run = func(positional []string) error {
		if len(positional) > 0 {
			return badInput("unexpected argument %q", positional[0])
		}
		if err := cfg.Validate(); err != nil {
			return usageError{err}
		}
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
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
		return srv.Run(ctx, ln, *drain)
	}
	return c
}

func signCommand() *command {
	c := newCommand("sign", "URL [flags]", "Print URL (a full URL or /img/path?query) signed for a server run with --signing-key.")
	key := c.flags.String("signing-key", "", "the server's signing key (prefer the environment variable or --signing-key-file)")
	keyFile := c.flags.String("signing-key-file", "", "read the signing key from this `FILE`")
	c.run = func(positional []string) error {
		if len(positional) != 1 {
			return badInput("want exactly one URL, got %d arguments", len(positional))
		}
		k := *key
		if *keyFile != "" {
			b, err := os.ReadFile(*keyFile)
			if err != nil {
				return badInput("--signing-key-file: %v", err)
			}
			k = strings.TrimSpace(string(b))
		}
		if k == "" {
			return badInput("no signing key: set STYLEPROXY_SIGNING_KEY or pass --signing-key-file")
		}
		if !strings.HasPrefix(positional[0], "/") && !strings.Contains(positional[0], "://") {
			return badInput("%q is not a URL or an absolute path", positional[0])
		}
		signed, err := pipeline.SignURL([]byte(k), positional[0])
		if err != nil {
			return usageError{err}
		}
		fmt.Fprintln(c.out, signed)
		return nil
	}
	return c
}
